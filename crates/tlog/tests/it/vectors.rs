//! Published test vectors, used as published: the RFC 6962 tree of transparency-dev/merkle, the
//! signed note of Go's `golang.org/x/mod/sumdb/note`, and a checkpoint signed by sum.golang.org.

use std::collections::HashMap;

use airlock_tlog::{
    Checkpoint, CompactRange, Hash, NodeId, Note, ProofError, Signer, Verifier, assemble, consistency_plan, empty_root,
    inclusion_plan, leaf_hash, root, sign, verify_consistency, verify_inclusion,
};

use crate::reference;

fn h(hex: &str) -> Hash {
    Hash::from_slice(&hex::decode(hex).unwrap()).unwrap()
}

// transparency-dev/merkle, testonly/constants.go: `LeafInputs`.
const LEAVES: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

// transparency-dev/merkle, testonly/constants.go: `RootHashes`, by tree size from 0.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

// transparency-dev/merkle, testonly/constants.go: `NodeHashes`, by level, then index.
const NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

// transparency-dev/merkle, proof/verify_test.go: `inclusionProofs` as (leaf index, tree size,
// proof). The Go table numbers leaves from 1; these indexes are from 0.
const INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

// transparency-dev/merkle, proof/verify_test.go: `consistencyProofs` as (old size, new size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// The eight-leaf tree, built by appending: every node it stores, and its root at every size.
fn tree() -> (HashMap<NodeId, Hash>, Vec<Hash>) {
    let mut range = CompactRange::new();
    let mut nodes = HashMap::new();
    let mut roots = vec![range.root()];
    for leaf in LEAVES {
        nodes.extend(range.push(leaf_hash(&hex::decode(leaf).unwrap())));
        roots.push(range.root());
    }
    (nodes, roots)
}

fn hashes(hex: &[&str]) -> Vec<Hash> {
    hex.iter().map(|x| h(x)).collect()
}

#[test]
fn rfc6962_roots_and_nodes() {
    let (nodes, roots) = tree();
    assert_eq!(roots, hashes(&ROOTS));
    assert_eq!(empty_root(), h(ROOTS[0]));
    let leaves: Vec<Hash> = LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())).collect();
    for (level, row) in NODES.iter().enumerate() {
        for (index, hash) in row.iter().enumerate() {
            let id = NodeId { level: level as u8, index: index as u64 };
            assert_eq!(nodes[&id], h(hash), "{id:?}");
        }
    }
    assert_eq!(nodes.len(), 15, "a tree of 8 leaves has 15 complete subtrees");
    for size in 0..=8u64 {
        assert_eq!(root(size, |id| nodes.get(&id).copied()).unwrap(), h(ROOTS[size as usize]));
        assert_eq!(reference::mth(&leaves[..size as usize]), h(ROOTS[size as usize]));
    }
}

/// transparency-dev/merkle's `CompactTrees`: the right edge at every size.
#[test]
fn compact_ranges() {
    let n = |level: usize, index: usize| h(NODES[level][index]);
    let want: [Vec<Hash>; 9] = [
        vec![],
        vec![n(0, 0)],
        vec![n(1, 0)],
        vec![n(1, 0), n(0, 2)],
        vec![n(2, 0)],
        vec![n(2, 0), n(0, 4)],
        vec![n(2, 0), n(1, 2)],
        vec![n(2, 0), n(1, 2), n(0, 6)],
        vec![n(3, 0)],
    ];
    let mut range = CompactRange::new();
    for (size, want) in want.iter().enumerate() {
        assert_eq!(range.hashes(), want.as_slice(), "size {size}");
        assert_eq!(CompactRange::from_parts(size as u64, want.clone()).unwrap(), range);
        if let Some(leaf) = LEAVES.get(size) {
            range.push(leaf_hash(&hex::decode(leaf).unwrap()));
        }
    }
}

#[test]
fn inclusion_vectors() {
    let (nodes, roots) = tree();
    for (index, size, proof) in INCLUSION {
        let proof = hashes(proof);
        let leaf = leaf_hash(&hex::decode(LEAVES[index as usize]).unwrap());
        let root = roots[size as usize];
        verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
        let built = assemble(&inclusion_plan(index, size).unwrap(), |id| nodes.get(&id).copied()).unwrap();
        assert_eq!(built, proof, "{index} {size}");
        // proof/verify_test.go's corruptInclusionProof.
        let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
        let mut probes = vec![
            (index.wrapping_sub(1), size, leaf, proof.clone(), root),
            (index + 1, size, leaf, proof.clone(), root),
            (index ^ 2, size, leaf, proof.clone(), root),
            (index, size * 2, leaf, proof.clone(), root),
            (index, size / 2, leaf, proof.clone(), root),
            (index, size, leaf_hash(b"WrongLeaf"), proof.clone(), root),
            (index, size, leaf, proof.clone(), empty_root()),
            (index, size, leaf, proof.clone(), some),
            (index, size, leaf, [proof.clone(), vec![root]].concat(), root),
            (index, size, leaf, [vec![root], proof.clone()].concat(), root),
        ];
        for i in 0..proof.len() {
            let mut wrong = proof.clone();
            wrong[i].0[0] ^= 8;
            probes.push((index, size, leaf, wrong, root));
        }
        probes.push((index, size, leaf, proof[..proof.len() - 1].to_vec(), root));
        if proof.len() > 1 {
            probes.push((index, size, leaf, [vec![proof[0], some], proof[1..].to_vec()].concat(), root));
        }
        for (i, s, l, p, r) in probes {
            assert!(verify_inclusion(&l, i, s, &p, &r).is_err(), "{i} {s} {p:?}");
        }
    }
}

#[test]
fn consistency_vectors() {
    let (nodes, roots) = tree();
    for (old, new, proof) in CONSISTENCY {
        let proof = hashes(proof);
        let (old_root, new_root) = (roots[old as usize], roots[new as usize]);
        verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();
        let built = assemble(&consistency_plan(old, new).unwrap(), |id| nodes.get(&id).copied()).unwrap();
        assert_eq!(built, proof, "{old} {new}");
        assert_eq!(reference::proof(old as usize, &tree_leaves()[..new as usize]), proof);
        if proof.is_empty() {
            continue;
        }
        // proof/verify_test.go's corruptConsistencyProof.
        let wrong_root = leaf_hash(b"WrongRoot");
        let mut probes = vec![
            (old - 1, new, old_root, new_root, proof.clone()),
            (old + 1, new, old_root, new_root, proof.clone()),
            (old ^ 2, new, old_root, new_root, proof.clone()),
            (old, new * 2, old_root, new_root, proof.clone()),
            (old, new / 2, old_root, new_root, proof.clone()),
            (old, new, wrong_root, new_root, proof.clone()),
            (old, new, old_root, wrong_root, proof.clone()),
            (old, new, new_root, old_root, proof.clone()),
            (old, new, old_root, new_root, vec![]),
            (old, new, old_root, new_root, [proof.clone(), vec![old_root]].concat()),
            (old, new, old_root, new_root, [proof.clone(), vec![new_root]].concat()),
            (old, new, old_root, new_root, [vec![old_root], proof.clone()].concat()),
            (old, new, old_root, new_root, [vec![new_root], proof.clone()].concat()),
            (old, new, old_root, new_root, [vec![proof[0]], proof.clone()].concat()),
            (old, new, old_root, new_root, proof[..proof.len() - 1].to_vec()),
        ];
        for i in 0..proof.len() {
            let mut wrong = proof.clone();
            wrong[i].0[0] ^= 16;
            probes.push((old, new, old_root, new_root, wrong));
        }
        for (o, n, or, nr, p) in probes {
            assert!(verify_consistency(o, n, &or, &nr, &p).is_err(), "{o} {n} {p:?}");
        }
    }
}

fn tree_leaves() -> Vec<Hash> {
    LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())).collect()
}

/// proof/verify_test.go's TestVerifyConsistency edge cases, as this crate answers them: an old
/// size of 0 is refused outright rather than accepted with any roots.
#[test]
fn consistency_edge_cases() {
    let (a, b) = (leaf_hash(b"don't care 1"), leaf_hash(b"don't care 2"));
    assert_eq!(
        verify_consistency(1, 1, &a, &b, &[]),
        Err(ProofError::SameSizeRootsDiffer { size: 1, old_root: a, new_root: b })
    );
    assert_eq!(verify_consistency(1, 1, &b, &b, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 1, &a, &b, &[]), Err(ProofError::EmptyOldTree));
    assert_eq!(verify_consistency(2, 1, &a, &b, &[]), Err(ProofError::SizeRegression { old_size: 2, new_size: 1 }));
    assert_eq!(verify_consistency(1, 2, &a, &b, &[]), Err(ProofError::ProofLength { expected: 1, actual: 0 }));
    let e = empty_root();
    assert_eq!(verify_consistency(1, 1, &e, &e, &[e]), Err(ProofError::ProofLength { expected: 0, actual: 1 }));
}

// golang.org/x/mod, sumdb/note/note.go (package example) and note_test.go.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str =
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str =
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

#[test]
fn go_note_example() {
    let peter = Verifier::parse(PETER_VKEY).unwrap();
    let enoch = Verifier::parse(ENOCH_VKEY).unwrap();
    assert_eq!((peter.name(), peter.key_hash()), ("PeterNeumann", 0xc74f20a3));
    assert_eq!((enoch.name(), enoch.key_hash()), ("EnochRoot", 0xaf0cfe78));

    // The published signature verifies.
    let published = format!("{TEXT}\n{PETER_SIG}");
    let note = Note::parse(published.as_bytes()).unwrap();
    assert_eq!(note.text, TEXT);
    assert_eq!(note.verify(&[&peter]).unwrap(), ["PeterNeumann"]);

    // Signing with the published private key reproduces it byte for byte (Ed25519 is deterministic).
    let signer = Signer::from_private_key(PETER_SKEY).unwrap();
    assert_eq!(signer.private_key(), PETER_SKEY);
    assert_eq!(signer.verifier().to_vkey(), PETER_VKEY);
    assert_eq!(sign(TEXT, &[&signer]).unwrap(), published);

    // The package documentation's doubly-signed note: both signatures verify.
    let doubly = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let note = Note::parse(doubly.as_bytes()).unwrap();
    assert_eq!(note.verify(&[&enoch, &peter]).unwrap(), ["PeterNeumann", "EnochRoot"]);
    assert_eq!(note.verify(&[&enoch]).unwrap(), ["EnochRoot"]);

    // Any change to the text breaks the signature.
    let altered = published.replace("cryptography", "cryptographY");
    assert_eq!(
        Note::parse(altered.as_bytes()).unwrap().verify(&[&peter]).unwrap_err().to_string(),
        "signature by trusted key `PeterNeumann+c74f20a3` does not verify; the note was altered or signed by another key"
    );
}

/// A checkpoint signed by a real log, sum.golang.org, with its published key: from
/// sigsum/sigsum-go, pkg/checkpoint/checkpoint_test.go (`TestGoSumDBCheckpoint`, "Retrieved from
/// https://sum.golang.org/latest, 2024-09-23"); the key is golang/go's
/// src/cmd/go/internal/modfetch/key.go.
#[test]
fn sum_golang_org_checkpoint() {
    const NOTE: &str = "go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\n— sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n";
    const VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    let verifier = Verifier::parse(VKEY).unwrap();
    // sum.golang.org predates the convention that a log's key is named after its origin, so
    // `Checkpoint::open`, which holds Airlock's logs to it, refuses the pair; the note and the
    // checkpoint text are each still read correctly.
    let refused = Checkpoint::open(NOTE.as_bytes(), &verifier).unwrap_err();
    assert!(matches!(refused, airlock_tlog::CheckpointError::OriginMismatch { .. }), "{refused}");
    let note = Note::parse(NOTE.as_bytes()).unwrap();
    assert_eq!(note.verify(&[&verifier]).unwrap(), ["sum.golang.org"]);
    let checkpoint = Checkpoint::parse(&note.text).unwrap();
    assert_eq!(checkpoint.origin, "go.sum database tree");
    assert_eq!(checkpoint.size, 30055305);
    assert_eq!(checkpoint.root.to_base64(), "mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=");
    assert!(checkpoint.extensions.is_empty());
    assert_eq!(checkpoint.to_text(), NOTE.split_once("\n\n").unwrap().0.to_owned() + "\n");
    let tampered = NOTE.replace("30055305", "30055306");
    assert!(Note::parse(tampered.as_bytes()).unwrap().verify(&[&verifier]).is_err());
}

/// The example of c2sp.org/tlog-checkpoint (its key is not published, so only the text).
#[test]
fn c2sp_checkpoint_example_text() {
    let text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let checkpoint = Checkpoint::parse(text).unwrap();
    assert_eq!((checkpoint.origin.as_str(), checkpoint.size), ("example.com/behind-the-sofa", 20852163));
    assert_eq!(checkpoint.to_text(), text);
    let note = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
    let parsed = Note::parse(note.as_bytes()).unwrap();
    assert_eq!(parsed.text, text);
    assert_eq!(parsed.signatures[0].name, "example.com/behind-the-sofa");
}
