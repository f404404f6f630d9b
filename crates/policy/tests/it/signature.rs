//! Signed bundles: each attack on a bundle's signature is a fixture directory under
//! `tests/data/bundle-signature/`, named after the attack, and must not verify, with the reason
//! snapshotted in its `expected.txt`. The fixtures are written by this test from fixed keys
//! (Ed25519 is deterministic) when `UPDATE_FIXTURES=1`, and otherwise must be what it writes.

use std::path::{Path, PathBuf};

use airlock_dsse::{Envelope, EnvelopeLimits, PrivateKey, PublicKey};
use airlock_policy::{Bundle, SIGNATURE_FILE, sign_bundle, verify_bundle};

const POLICY: &str = "package airlock\n\nimport rego.v1\n\ndeny contains \"no\" if input.no\n";
const DATA: &str = "{\"airlock\": {\"allowed\": [\"a\"]}}\n";

/// Policy signer `n`, from a fixed seed.
fn signer(n: u8) -> PrivateKey {
    PrivateKey::from_ed25519_seed(&[n; 32])
}

fn keys(ns: &[u8]) -> Vec<PublicKey> {
    ns.iter().map(|n| signer(*n).public_key().clone()).collect()
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bundle-signature")
}

/// The files of the bundle everything starts from.
fn base_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![("policy.rego", POLICY.as_bytes().to_vec()), ("data.json", DATA.as_bytes().to_vec())]
}

fn bundle(files: &[(&str, Vec<u8>)]) -> Bundle {
    Bundle::from_files(files.iter().map(|(p, b)| ((*p).to_owned(), b.clone())).collect()).unwrap()
}

/// The signature file of the base bundle, signed by each of `signers` in turn.
fn signed_by(signers: &[u8]) -> Vec<u8> {
    let base = bundle(&base_files());
    let mut sig: Option<Vec<u8>> = None;
    for n in signers {
        sig = Some(sign_bundle(&base, sig.as_deref(), &signer(*n)).unwrap());
    }
    sig.unwrap_or_default()
}

/// A fixture: the files of a bundle directory, and the policy keys and threshold it is judged by.
struct Fixture {
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    keys: Vec<u8>,
    threshold: u32,
}

fn fixtures() -> Vec<Fixture> {
    let sig = |s: Vec<u8>| (SIGNATURE_FILE, s);
    let with = |extra: Vec<(&'static str, Vec<u8>)>| {
        let mut files = base_files();
        for (path, bytes) in extra {
            files.retain(|(p, _)| *p != path);
            files.push((path, bytes));
        }
        files
    };
    // The same key signing twice, under two key id hints: one key, so under a threshold of 2.
    let twice = {
        let mut envelope = Envelope::parse(&signed_by(&[1]), &EnvelopeLimits::default()).unwrap();
        let mut again = envelope.signatures[0].clone();
        again.keyid = Some("another-hint".to_owned());
        envelope.signatures.push(again);
        envelope.to_json()
    };
    // A valid signature by policy key 1 over a statement, not a bundle manifest.
    let wrong_type = {
        let base = bundle(&base_files());
        Envelope::sign("application/vnd.in-toto+json", &base.manifest(), &[&signer(1)]).unwrap().to_json()
    };
    vec![
        Fixture {
            name: "signed-by-threshold",
            files: with(vec![sig(signed_by(&[1, 2]))]),
            keys: vec![1, 2, 3],
            threshold: 2,
        },
        Fixture { name: "unsigned", files: base_files(), keys: vec![1], threshold: 1 },
        Fixture {
            name: "tampered-file-changed",
            files: with(vec![sig(signed_by(&[1])), ("policy.rego", b"package airlock\n\ndeny := set()\n".to_vec())]),
            keys: vec![1],
            threshold: 1,
        },
        Fixture {
            name: "tampered-file-added",
            files: with(vec![sig(signed_by(&[1])), ("allow_all.rego", b"package airlock.extra\n".to_vec())]),
            keys: vec![1],
            threshold: 1,
        },
        Fixture {
            name: "tampered-file-removed",
            files: with(vec![sig(signed_by(&[1]))]).into_iter().filter(|(p, _)| *p != "data.json").collect(),
            keys: vec![1],
            threshold: 1,
        },
        Fixture { name: "under-threshold", files: with(vec![sig(signed_by(&[1]))]), keys: vec![1, 2, 3], threshold: 2 },
        Fixture {
            name: "same-key-twice-under-threshold",
            files: with(vec![sig(twice)]),
            keys: vec![1, 2],
            threshold: 2,
        },
        Fixture {
            name: "signed-by-a-key-the-root-does-not-name",
            files: with(vec![sig(signed_by(&[9]))]),
            keys: vec![1],
            threshold: 1,
        },
        Fixture { name: "wrong-payload-type", files: with(vec![sig(wrong_type)]), keys: vec![1], threshold: 1 },
        Fixture {
            name: "signature-not-an-envelope",
            files: with(vec![sig(b"{\"signatures\":[]}".to_vec())]),
            keys: vec![1],
            threshold: 1,
        },
    ]
}

fn verdict(dir: &Path, keys: &[PublicKey], threshold: u32) -> String {
    match Bundle::load_dir(dir) {
        Err(e) => format!("unreadable: {e}"),
        Ok(bundle) => match verify_bundle(&bundle, keys, threshold) {
            Ok(signers) => format!("trusted: {} signer(s)\n", signers.len()),
            Err(e) => format!("refused: {e}\n"),
        },
    }
}

#[test]
fn every_signature_attack_is_refused() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    for fixture in fixtures() {
        let dir = data_dir().join(fixture.name);
        if update {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (path, bytes) in &fixture.files {
                std::fs::write(dir.join(path), bytes).unwrap();
            }
        }
        for (path, bytes) in &fixture.files {
            let on_disk = std::fs::read(dir.join(path))
                .unwrap_or_else(|e| panic!("{}/{path}: {e}; run with UPDATE_FIXTURES=1", fixture.name));
            assert_eq!(&on_disk, bytes, "{}/{path} is not what the generator writes", fixture.name);
        }
        let actual = verdict(&dir, &keys(&fixture.keys), fixture.threshold);
        let expected_file = dir.join("expected.txt");
        if update {
            std::fs::write(&expected_file, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_file).unwrap();
        assert_eq!(actual, expected, "{}", fixture.name);
        let trusted = fixture.name == "signed-by-threshold";
        assert_eq!(actual.starts_with("trusted"), trusted, "{}: {actual}", fixture.name);
    }
}

#[test]
fn the_signature_file_is_outside_the_bundle() {
    let with_sig = data_dir().join("signed-by-threshold");
    let loaded = Bundle::load_dir(&with_sig).unwrap();
    assert_eq!(loaded.digest(), bundle(&base_files()).digest(), "`bundle.sig` is not in the digest");
    assert!(loaded.files().all(|(p, _, _)| p != SIGNATURE_FILE), "nor among the files Rego loads");
    assert!(loaded.signature().is_some());
}

#[test]
fn signing_adds_signatures_and_refuses_a_stale_file_or_a_second_signature() {
    let base = bundle(&base_files());
    let one = sign_bundle(&base, None, &signer(1)).unwrap();
    let two = sign_bundle(&base, Some(&one), &signer(2)).unwrap();
    let envelope = Envelope::parse(&two, &EnvelopeLimits::default()).unwrap();
    assert_eq!(envelope.signatures.len(), 2);
    assert_eq!(verify_bundle(&base.clone().with_signature(two.clone()), &keys(&[1, 2]), 2).unwrap().len(), 2);
    let again = sign_bundle(&base, Some(&two), &signer(1)).unwrap_err().to_string();
    assert!(again.contains("has already signed this bundle"), "{again}");
    let changed = bundle(&[("policy.rego", b"package airlock\n".to_vec())]);
    let stale = sign_bundle(&changed, Some(&two), &signer(3)).unwrap_err().to_string();
    assert!(stale.contains("signs other contents"), "{stale}");
    assert!(stale.contains("file `data.json` removed"), "{stale}");
}

#[test]
fn signature_files_are_bounded() {
    let base = bundle(&base_files());
    let huge = base.clone().with_signature(vec![b' '; airlock_policy::SIGNATURE_MAX_BYTES + 1]);
    let err = verify_bundle(&huge, &keys(&[1]), 1).unwrap_err().to_string();
    assert!(err.contains(&format!("the limit is {}", airlock_policy::SIGNATURE_MAX_BYTES)), "{err}");
    let mut envelope = Envelope::parse(&signed_by(&[1]), &EnvelopeLimits::default()).unwrap();
    let one = envelope.signatures[0].clone();
    envelope.signatures = vec![one; airlock_policy::SIGNATURE_MAX_SIGNATURES + 1];
    let many = base.with_signature(envelope.to_json());
    let err = verify_bundle(&many, &keys(&[1]), 1).unwrap_err().to_string();
    assert!(err.contains("is not a DSSE envelope"), "{err}");
}
