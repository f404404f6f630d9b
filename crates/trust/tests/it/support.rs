//! Shared test helpers: the committed fixture keys, times, root builders, and the writers that
//! turn a (possibly hostile) `signed` member into a signed document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airlock_dsse::{Algorithm, Envelope, IN_TOTO_PAYLOAD_TYPE, KeyId, PrivateKey, Statement, StatementSubject};
use airlock_model::Timestamp;
use airlock_model::jcs::canonicalize;
use airlock_trust::{Pattern, RepoPattern, Root, SignerRule};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The fixture keys under `tests/data/keys/`, all Ed25519 but `p256`.
pub const KEY_NAMES: &[&str] = &[
    "root-1", "root-2", "root-3", "root-4", "root-5", "ci", "ci-new", "qa", "release", "stolen", "old-ci", "outsider",
    "p256",
];

/// The instant every fixture is judged at.
pub const NOW: &str = "2026-06-01T00:00:00Z";

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn key_path(name: &str) -> PathBuf {
    data_dir().join("keys").join(format!("{name}.pem"))
}

/// The algorithm a fixture key was generated with.
pub fn algorithm(name: &str) -> Algorithm {
    if name == "p256" { Algorithm::EcdsaP256Sha256 } else { Algorithm::Ed25519 }
}

/// A committed fixture key.
pub fn key(name: &str) -> PrivateKey {
    let pem = std::fs::read_to_string(key_path(name))
        .unwrap_or_else(|e| panic!("fixture key `{name}` missing ({e}); run with UPDATE_FIXTURES=1"));
    PrivateKey::from_pkcs8_pem(&pem).unwrap()
}

pub fn kid(name: &str) -> KeyId {
    key(name).public_key().keyid().clone()
}

/// An RFC 3339 time.
pub fn at(text: &str) -> Timestamp {
    Timestamp::from_millis(chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis())
}

pub fn now() -> Timestamp {
    at(NOW)
}

pub fn patterns(texts: &[&str]) -> Vec<Pattern> {
    texts.iter().map(|t| Pattern::parse(t).unwrap()).collect()
}

pub fn repo_patterns(texts: &[&str]) -> Vec<RepoPattern> {
    texts.iter().map(|t| RepoPattern::parse(t).unwrap()).collect()
}

/// A signer rule valid through 2026.
pub fn signer(name: &str, keys: &[&str], predicate_types: &[&str], repositories: &[&str]) -> SignerRule {
    SignerRule {
        name: name.to_owned(),
        keyids: keys.iter().map(|k| kid(k)).collect(),
        predicate_types: patterns(predicate_types),
        repositories: repo_patterns(repositories),
        not_before: at("2026-01-01T00:00:00Z"),
        not_after: at("2027-01-01T00:00:00Z"),
    }
}

/// A root listing `keys`, with `root_keys` as its root role.
pub fn root(version: u64, keys: &[&str], root_keys: &[&str], threshold: u32) -> Root {
    Root {
        version,
        expires: at("2027-11-26T00:00:00Z"),
        keys: keys.iter().map(|k| (kid(k), key(k).public_key().clone())).collect(),
        root_keyids: root_keys.iter().map(|k| kid(k)).collect(),
        root_threshold: threshold,
        signers: Vec::new(),
        thresholds: Vec::new(),
        revoked: Vec::new(),
        policy: None,
    }
}

/// The base trust root, version 1: root keys `root-1..3` (2 of 3) and signer `ci` for
/// provenance in `dev/payments/**`.
pub fn base_root() -> Root {
    let mut r = root(1, &["root-1", "root-2", "root-3", "ci"], &["root-1", "root-2", "root-3"], 2);
    r.signers.push(signer("ci", &["ci"], &["https://slsa.dev/provenance/*"], &["dev/payments/**"]));
    r
}

/// `root` as a `serde_json::Value`, to be tampered with.
pub fn root_value(root: &Root) -> Value {
    serde_json::from_slice(&root.to_signed_bytes().unwrap()).unwrap()
}

/// A document whose `signed` member is exactly `signed`, with `signatures` as given.
pub fn assemble(signed: &[u8], signatures: &[(KeyId, Vec<u8>)]) -> Vec<u8> {
    let list: Vec<Value> = signatures
        .iter()
        .map(|(keyid, sig)| serde_json::json!({"keyid": keyid.as_str(), "sig": STANDARD.encode(sig)}))
        .collect();
    let mut out = b"{\"signatures\":".to_vec();
    out.extend_from_slice(&canonicalize(&Value::Array(list)).unwrap());
    out.extend_from_slice(b",\"signed\":");
    out.extend_from_slice(signed);
    out.push(b'}');
    out
}

/// A document whose `signed` member is exactly `signed`, signed by the named keys.
pub fn sign_bytes(signed: &[u8], signers: &[&str]) -> Vec<u8> {
    let signatures: Vec<(KeyId, Vec<u8>)> = signers
        .iter()
        .map(|name| {
            let k = key(name);
            (k.public_key().keyid().clone(), k.sign(signed).unwrap())
        })
        .collect();
    assemble(signed, &signatures)
}

/// A document with `value`, canonicalized, as its `signed` member, signed by the named keys.
/// Unlike `airlock_trust::sign_root`, it signs whatever it is given.
pub fn sign_value(value: &Value, signers: &[&str]) -> Vec<u8> {
    sign_bytes(&canonicalize(value).unwrap(), signers)
}

/// A document for `root`, signed by the named keys.
pub fn sign(root: &Root, signers: &[&str]) -> Vec<u8> {
    let keys: Vec<PrivateKey> = signers.iter().map(|n| key(n)).collect();
    airlock_trust::sign_root(root, &keys.iter().collect::<Vec<_>>()).unwrap()
}

/// A DSSE envelope holding an in-toto statement of `predicate_type`, signed by the named keys.
pub fn envelope(predicate_type: &str, signers: &[&str]) -> Envelope {
    let subject = StatementSubject {
        name: "api".to_owned(),
        digest: [("sha256".to_owned(), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".to_owned())]
            .into(),
    };
    let statement = Statement::new(vec![subject], predicate_type, &serde_json::json!({}));
    let keys: Vec<PrivateKey> = signers.iter().map(|n| key(n)).collect();
    Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_json(), &keys.iter().collect::<Vec<_>>()).unwrap()
}

/// The PEM and key id of `key`'s P-256 public key with its point compressed: the same key in a
/// second encoding. The key id is what a verifier that hashed the DER as received would compute.
pub fn compressed_p256(key: &PrivateKey) -> (String, String) {
    let der = key.public_key().spki_der();
    // The uncompressed SPKI ends in the 65-byte point 0x04 || X || Y.
    let point = &der[der.len() - 65..];
    let (x, y) = (&point[1..33], &point[33..]);
    let mut compressed = vec![0x30, 0x39, 0x30, 0x13];
    compressed.extend_from_slice(&[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
    compressed.extend_from_slice(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    compressed.extend_from_slice(&[0x03, 0x22, 0x00, if y[31] & 1 == 0 { 0x02 } else { 0x03 }]);
    compressed.extend_from_slice(x);
    let body = STANDARD.encode(&compressed);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"));
    (pem, hex::encode(Sha256::digest(&compressed)))
}

/// `text` with every fixture key id replaced by `<name>`, so snapshots stay readable.
pub fn names(text: &str) -> String {
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for name in KEY_NAMES {
        if let Ok(pem) = std::fs::read_to_string(key_path(name)) {
            let k = PrivateKey::from_pkcs8_pem(&pem).unwrap();
            ids.insert(k.public_key().keyid().to_string(), format!("<{name}>"));
            if *name == "p256" {
                ids.insert(compressed_p256(&k).1, "<p256-compressed>".to_owned());
            }
        }
    }
    ids.iter().fold(text.to_owned(), |acc, (id, name)| acc.replace(id.as_str(), name))
}
