//! Exhaustive proof properties for every tree of 1 to 300 leaves: each inclusion proof (every
//! index) and each consistency proof (every old size), built from the nodes that
//! `CompactRange::push` reports, equals the naive RFC 6962 reference, verifies, and stops
//! verifying when any bit, index, size or length is wrong.

use std::collections::HashMap;

use airlock_tlog::{
    CompactRange, Hash, NodeId, assemble, consistency_plan, inclusion_plan, leaf_hash, root, verify_consistency,
    verify_inclusion,
};

use crate::reference;

const MAX_SIZE: u64 = 300;
/// Up to this size every one of a proof hash's 256 bits is flipped in turn; beyond it, one
/// pseudo-random bit per proof hash.
const ALL_BITS_UP_TO: u64 = 32;

struct Tree {
    leaves: Vec<Hash>,
    nodes: HashMap<NodeId, Hash>,
    /// The root at every size from 0.
    roots: Vec<Hash>,
}

fn tree() -> Tree {
    let mut range = CompactRange::new();
    let mut tree = Tree { leaves: Vec::new(), nodes: HashMap::new(), roots: vec![range.root()] };
    for i in 0..MAX_SIZE {
        let leaf = leaf_hash(format!("leaf {i}").as_bytes());
        let completed = range.push(leaf);
        assert_eq!(completed[0], (NodeId::leaf(i), leaf));
        for (id, hash) in completed {
            assert!(tree.nodes.insert(id, hash).is_none(), "{id:?} reported twice");
        }
        tree.leaves.push(leaf);
        tree.roots.push(range.root());
    }
    tree
}

/// A small deterministic generator, so a failure names a reproducible bit.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Every proof with one bit flipped, per the rule of [`ALL_BITS_UP_TO`].
fn bit_flips(proof: &[Hash], size: u64, rng: &mut SplitMix) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    for i in 0..proof.len() {
        let bits: Vec<usize> =
            if size <= ALL_BITS_UP_TO { (0..256).collect() } else { vec![(rng.next() % 256) as usize] };
        for bit in bits {
            let mut wrong = proof.to_vec();
            wrong[i].0[bit / 8] ^= 1 << (bit % 8);
            out.push(wrong);
        }
    }
    out
}

/// Proofs one hash too short, one too long at either end.
fn wrong_lengths(proof: &[Hash], extra: Hash) -> Vec<Vec<Hash>> {
    let mut out = vec![[proof, &[extra]].concat(), [&[extra], proof].concat()];
    if let Some((_, rest)) = proof.split_first() {
        out.push(rest.to_vec());
        out.push(proof[..proof.len() - 1].to_vec());
    }
    out
}

#[test]
fn every_inclusion_proof_up_to_300_leaves() {
    let tree = tree();
    let lookup = |id: NodeId| tree.nodes.get(&id).copied();
    let mut rng = SplitMix(6962);
    let mut checked = 0u64;
    for size in 1..=MAX_SIZE {
        let n = size as usize;
        let root_hash = tree.roots[n];
        assert_eq!(root(size, lookup).unwrap(), root_hash);
        assert_eq!(reference::mth(&tree.leaves[..n]), root_hash);
        for index in 0..size {
            let leaf = tree.leaves[index as usize];
            let plan = inclusion_plan(index, size).unwrap();
            assert!(plan.iter().map(Vec::len).sum::<usize>() <= 2 * 64);
            let proof = assemble(&plan, lookup).unwrap();
            assert_eq!(proof, reference::path(index as usize, &tree.leaves[..n]), "index {index} size {size}");
            verify_inclusion(&leaf, index, size, &proof, &root_hash).unwrap();
            checked += 1;

            let refused = |leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash, what: &str| {
                assert!(
                    verify_inclusion(leaf, index, size, proof, root).is_err(),
                    "{what}: index {index} size {size} verified"
                );
            };
            for wrong in bit_flips(&proof, size, &mut rng) {
                refused(&leaf, index, size, &wrong, &root_hash, "flipped bit");
            }
            for wrong in wrong_lengths(&proof, root_hash) {
                refused(&leaf, index, size, &wrong, &root_hash, "wrong length");
            }
            if index > 0 {
                refused(&leaf, index - 1, size, &proof, &root_hash, "index - 1");
            }
            refused(&leaf, index + 1, size, &proof, &root_hash, "index + 1");
            refused(&leaf, index + size, size, &proof, &root_hash, "index + size");
            // A wrong size changes the proof's length or the order of its hashes...
            refused(&leaf, index, size * 2, &proof, &root_hash, "size * 2");
            refused(&leaf, index, size / 2, &proof, &root_hash, "size / 2");
            refused(&leaf, index, u64::MAX, &proof, &root_hash, "size u64::MAX");
            // ...but RFC 9162 binds the size only through that shape, so a neighbouring size
            // with the same root is not always refused (see `verify_inclusion`). With that
            // size's own root, as a signed checkpoint pairs them, it is.
            for other in [size - 1, size + 1] {
                if other > index && other <= MAX_SIZE {
                    refused(&leaf, index, other, &proof, &tree.roots[other as usize], "neighbouring size");
                }
            }
            refused(&tree.leaves[(index as usize + 1) % n.max(2)], index, size, &proof, &root_hash, "other leaf");
            refused(&leaf, index, size, &proof, &tree.roots[n - 1], "older root");
            if let Some(newer) = tree.roots.get(n + 1) {
                refused(&leaf, index, size, &proof, newer, "newer root");
            }
        }
    }
    assert_eq!(checked, MAX_SIZE * (MAX_SIZE + 1) / 2);
}

#[test]
fn every_consistency_proof_up_to_300_leaves() {
    let tree = tree();
    let lookup = |id: NodeId| tree.nodes.get(&id).copied();
    let mut rng = SplitMix(9162);
    let mut checked = 0u64;
    for new in 1..=MAX_SIZE {
        let new_root = tree.roots[new as usize];
        for old in 1..=new {
            let old_root = tree.roots[old as usize];
            let plan = consistency_plan(old, new).unwrap();
            assert!(plan.iter().map(Vec::len).sum::<usize>() <= 2 * 64);
            let proof = assemble(&plan, lookup).unwrap();
            assert_eq!(proof, reference::proof(old as usize, &tree.leaves[..new as usize]), "{old} -> {new}");
            verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();
            checked += 1;

            let refused = |old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash], what: &str| {
                assert!(
                    verify_consistency(old, new, old_root, new_root, proof).is_err(),
                    "{what}: {old} -> {new} verified"
                );
            };
            for wrong in bit_flips(&proof, new, &mut rng) {
                refused(old, new, &old_root, &new_root, &wrong, "flipped bit");
            }
            for wrong in wrong_lengths(&proof, new_root) {
                refused(old, new, &old_root, &new_root, &wrong, "wrong length");
            }
            refused(old, new, &tree.roots[old as usize - 1], &new_root, &proof, "older old root");
            refused(old, new, &old_root, &tree.roots[new as usize - 1], &proof, "older new root");
            if old == new {
                continue;
            }
            refused(old, new, &new_root, &old_root, &proof, "swapped roots");
            // As for inclusion: a wrong size that changes the proof's length is refused whatever
            // the roots; a neighbouring size is refused when it comes with its own root.
            refused(old, new * 2, &old_root, &new_root, &proof, "new * 2");
            refused(old, u64::MAX, &old_root, &new_root, &proof, "new u64::MAX");
            refused(0, new, &old_root, &new_root, &proof, "old 0");
            for other in [old - 1, old + 1] {
                if other >= 1 && other <= new {
                    refused(other, new, &tree.roots[other as usize], &new_root, &proof, "neighbouring old size");
                }
            }
            for other in [new - 1, new + 1] {
                if other >= old && other <= MAX_SIZE {
                    refused(old, other, &old_root, &tree.roots[other as usize], &proof, "neighbouring new size");
                }
            }
        }
    }
    assert_eq!(checked, MAX_SIZE * (MAX_SIZE + 1) / 2);
}

/// RFC 9162's verification binds a tree size only through the proof's shape. The proof from 1 to
/// 4 leaves has the shape of a proof from 1 to 3, so it verifies for size 3 against the root of
/// size 4; against the real root of size 3 it does not. Callers must take sizes and roots from one
/// signed checkpoint, as `verify_consistency` documents.
#[test]
fn sizes_are_bound_only_through_the_proof_shape() {
    let tree = tree();
    let proof = assemble(&consistency_plan(1, 4).unwrap(), |id| tree.nodes.get(&id).copied()).unwrap();
    assert!(verify_consistency(1, 3, &tree.roots[1], &tree.roots[4], &proof).is_ok());
    assert!(verify_consistency(1, 3, &tree.roots[1], &tree.roots[3], &proof).is_err());
    let proof = assemble(&inclusion_plan(0, 5).unwrap(), |id| tree.nodes.get(&id).copied()).unwrap();
    assert!(verify_inclusion(&tree.leaves[0], 0, 6, &proof, &tree.roots[5]).is_ok());
    assert!(verify_inclusion(&tree.leaves[0], 0, 6, &proof, &tree.roots[6]).is_err());
}
