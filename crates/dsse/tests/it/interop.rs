//! Interop with an independent implementation: Python's securesystemslib (DSSE envelopes,
//! CryptoSigner) and in-toto (its DSSE envelope class), through `scripts/dsse_interop.py`, in
//! both directions, for Ed25519 and P-256, with keys written by either side.
//!
//! The Python is `AIRLOCK_TEST_PYTHON`, or else `target/venv/bin/python`, which `scripts/test`
//! creates with `scripts/requirements-test.txt`. Without it the tests fail; they never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlock_dsse::{Algorithm, Envelope, EnvelopeLimits, IN_TOTO_PAYLOAD_TYPE, PrivateKey, PublicKey, StatementLimits};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

fn python() -> PathBuf {
    let path = std::env::var_os("AIRLOCK_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python"));
    assert!(
        path.exists(),
        "no Python at `{}` for the securesystemslib/in-toto interop tests: run scripts/test, which creates \
         target/venv with scripts/requirements-test.txt (or set AIRLOCK_TEST_PYTHON)",
        path.display()
    );
    path
}

/// Runs `dsse_interop.py ARGS`; returns its exit code and the JSON object it printed.
fn interop(args: &[&str]) -> (i32, Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dsse_interop.py");
    let Output { status, stdout, stderr } = Command::new(python()).arg(script).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&stderr);
    let code = status.code().unwrap_or(-1);
    let json = serde_json::from_slice(&stdout).unwrap_or_else(|e| {
        panic!(
            "dsse_interop.py {args:?} exited {code} without a JSON answer ({e}); if a module is missing, run \
             scripts/test\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&stdout)
        )
    });
    (code, json)
}

struct Pair {
    private: PathBuf,
    public: PathBuf,
}

/// A key pair written by Airlock into `dir`.
fn airlock_key(dir: &Path, algorithm: Algorithm) -> (PrivateKey, Pair) {
    let key = PrivateKey::generate(algorithm).unwrap();
    let pair = Pair {
        private: dir.join(format!("airlock-{algorithm}.pem")),
        public: dir.join(format!("airlock-{algorithm}.pub.pem")),
    };
    std::fs::write(&pair.private, key.to_pkcs8_pem().unwrap()).unwrap();
    std::fs::write(&pair.public, key.public_key().to_pem()).unwrap();
    (key, pair)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Airlock signs; securesystemslib and in-toto verify, and agree on Airlock's key id.
fn airlock_signs_python_verifies(algorithm: Algorithm) {
    let dir = tempfile::tempdir().unwrap();
    let (key, pair) = airlock_key(dir.path(), algorithm);
    let payload = std::fs::read(crate::data("provenance.json")).unwrap();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &payload, &[&key]).unwrap();
    let file = dir.path().join("envelope.json");
    std::fs::write(&file, envelope.to_json()).unwrap();

    let (code, answer) = interop(&["verify", "--key", path(&pair.public), "--envelope", path(&file)]);
    assert_eq!(code, 0, "{algorithm}: Python did not verify Airlock's envelope: {answer}");
    let ours = key.public_key().keyid().as_str();
    assert_eq!(answer["airlock_keyid"], ours, "{algorithm}: Python computes Airlock's key id differently");
    assert_eq!(answer["securesystemslib_verified_keyid"], ours);
    assert_eq!(answer["in_toto_verified_keyid"], ours);
    // securesystemslib's own key id convention differs (SHA-256 of its canonical JSON key dict).
    assert_ne!(answer["securesystemslib_keyid"], ours);

    // A tampered payload fails in Python too.
    let mut tampered: Value = serde_json::from_slice(&envelope.to_json()).unwrap();
    let mut bytes = payload.clone();
    let at = bytes.iter().position(|&b| b == b'5').unwrap();
    bytes[at] = b'6';
    tampered["payload"] = Value::String(STANDARD.encode(&bytes));
    std::fs::write(&file, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let (code, answer) = interop(&["verify", "--key", path(&pair.public), "--envelope", path(&file)]);
    assert_eq!(code, 1, "{algorithm}: Python accepted a tampered envelope: {answer}");
    assert_eq!(answer["verified"], false);
}

/// securesystemslib signs with a key Python generated; Airlock reads the key files and verifies,
/// whichever key id convention the hint follows.
fn python_signs_airlock_verifies(algorithm: Algorithm) {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("python.pem");
    let public = dir.path().join("python.pub.pem");
    let (code, generated) =
        interop(&["keygen", "--algorithm", algorithm.as_str(), "--private", path(&private), "--public", path(&public)]);
    assert_eq!(code, 0);
    let key = PublicKey::from_pem(&std::fs::read_to_string(&public).unwrap()).unwrap();
    assert_eq!(generated["airlock_keyid"], key.keyid().as_str());
    let private_key = PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&private).unwrap()).unwrap();
    assert_eq!(private_key.public_key(), &key, "{algorithm}: Airlock reads Python's PKCS#8 as another key");

    let payload = crate::data("provenance.json");
    for convention in ["airlock", "securesystemslib"] {
        let out = dir.path().join(format!("{convention}.json"));
        let (code, signed) = interop(&[
            "sign",
            "--key",
            path(&private),
            "--payload",
            path(&payload),
            "--out",
            path(&out),
            "--keyid-convention",
            convention,
        ]);
        assert_eq!(code, 0);
        let envelope = Envelope::parse(&std::fs::read(&out).unwrap(), &EnvelopeLimits::default()).unwrap();
        assert_eq!(envelope.signatures[0].keyid.as_ref(), signed["keyid"].as_str().map(str::to_owned).as_ref());
        let (statement, keys) = envelope
            .verify_in_toto(&[&key], 1, &StatementLimits::default())
            .unwrap_or_else(|e| panic!("{algorithm}, {convention} key ids: {e}"));
        assert_eq!(keys, [&key]);
        assert_eq!(statement.predicate_type, "https://slsa.dev/provenance/v1");
        assert_eq!(envelope.payload, std::fs::read(&payload).unwrap(), "the payload is the bytes signed");

        // And Airlock-made PEM keys sign in Python too.
        let (_, pair) = airlock_key(dir.path(), algorithm);
        let (code, _) =
            interop(&["sign", "--key", path(&pair.private), "--payload", path(&payload), "--out", path(&out)]);
        assert_eq!(code, 0);
        let ours = PublicKey::from_pem(&std::fs::read_to_string(&pair.public).unwrap()).unwrap();
        let envelope = Envelope::parse(&std::fs::read(&out).unwrap(), &EnvelopeLimits::default()).unwrap();
        assert_eq!(envelope.verified_keys(&[&key, &ours]), [&ours]);
    }
}

#[test]
fn airlock_signs_python_verifies_ed25519() {
    airlock_signs_python_verifies(Algorithm::Ed25519);
}

#[test]
fn airlock_signs_python_verifies_p256() {
    airlock_signs_python_verifies(Algorithm::EcdsaP256Sha256);
}

#[test]
fn python_signs_airlock_verifies_ed25519() {
    python_signs_airlock_verifies(Algorithm::Ed25519);
}

#[test]
fn python_signs_airlock_verifies_p256() {
    python_signs_airlock_verifies(Algorithm::EcdsaP256Sha256);
}
