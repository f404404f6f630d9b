//! The generator of the committed fixtures under `tests/data/`. `UPDATE_FIXTURES=1 cargo test -p
//! airlock-trust` writes them (and the fixture keys, if missing); a plain run checks that every
//! committed fixture with deterministic signatures (Ed25519) is what the generator makes.

use std::path::PathBuf;

use airlock_dsse::PrivateKey;
use airlock_trust::{PredicateThreshold, Revocation};
use serde_json::json;

use crate::support::*;

/// One fixture file: where it goes, its bytes, and whether regenerating it gives the same bytes.
pub struct Fixture {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub deterministic: bool,
}

fn fixture(path: &str, bytes: Vec<u8>) -> Fixture {
    Fixture { path: data_dir().join(path), bytes, deterministic: true }
}

/// The trust root every evaluation fixture is judged by.
pub fn evaluate_root() -> airlock_trust::Root {
    let keys = ["root-1", "root-2", "root-3", "ci", "qa", "release", "stolen", "old-ci"];
    let mut r = root(1, &keys, &["root-1", "root-2", "root-3"], 2);
    let provenance = "https://slsa.dev/provenance/*";
    let summary = "https://slsa.dev/verification_summary/*";
    r.signers = vec![
        signer("ci", &["ci", "stolen"], &[provenance, summary], &["dev/payments/**"]),
        signer("qa", &["qa"], &[summary], &["dev/**"]),
        signer("release", &["release", "ci"], &[summary], &["dev/**"]),
        {
            let mut old = signer("old-ci", &["old-ci"], &[provenance], &["dev/**"]);
            old.not_before = at("2025-01-01T00:00:00Z");
            old.not_after = at("2026-01-01T00:00:00Z");
            old
        },
    ];
    r.thresholds = vec![PredicateThreshold { predicate_type: patterns(&[summary]).remove(0), signers: 2 }];
    r.revoked = vec![Revocation {
        keyid: kid("stolen"),
        revoked_at: at("2026-05-01T00:00:00Z"),
        reason: "laptop stolen".to_owned(),
    }];
    r
}

/// An evaluation case: the repository the attestation is for, and the envelope as received.
fn case(repository: &str, predicate_type: &str, signers: &[&str]) -> Vec<u8> {
    let envelope = String::from_utf8(envelope(predicate_type, signers).to_json()).unwrap();
    format!("{{\"repository\":{},\n\"envelope\":{envelope}}}\n", json!(repository)).into_bytes()
}

/// Every fixture, as the generator makes it today.
pub fn fixtures() -> Vec<Fixture> {
    let base = base_root();
    let mut out = vec![
        fixture("valid/root-v1.json", sign(&base, &["root-1", "root-2"])),
        fixture("valid/evaluate-root.json", sign(&evaluate_root(), &["root-1", "root-2"])),
    ];

    // Refused roots. Version 1 is bootstrapped; any other version is an update of root-v1.
    let base_signed = base.to_signed_bytes().unwrap();
    out.push(fixture("root/duplicate-keyid-threshold.json", sign_bytes(&base_signed, &["root-1", "root-1"])));

    let p256 = key("p256");
    let (compressed_pem, compressed_id) = compressed_p256(&p256);
    let mut two = root_value(&root(1, &["root-1", "root-2", "p256"], &["p256", "root-2"], 2));
    two["keys"][compressed_id.as_str()] = json!({"algorithm": "ecdsa-p256", "public_key": compressed_pem});
    two["root"]["keyids"].as_array_mut().unwrap().push(json!(compressed_id));
    let signed = airlock_model::jcs::canonicalize(&two).unwrap();
    let sigs = vec![
        (kid("p256"), p256.sign(&signed).unwrap()),
        (airlock_dsse::KeyId::parse(&compressed_id).unwrap(), p256.sign(&signed).unwrap()),
    ];
    out.push(Fixture {
        path: data_dir().join("root/same-key-two-encodings-threshold.json"),
        bytes: assemble(&signed, &sigs),
        deterministic: false,
    });

    let mut skip = base.clone();
    skip.version = 3;
    out.push(fixture("root/root-version-skip.json", sign(&skip, &["root-1", "root-2"])));

    let mut fresh = root(2, &["root-4", "root-5", "ci"], &["root-4", "root-5"], 2);
    fresh.signers = base.signers.clone();
    out.push(fixture("root/root-signed-by-new-keys-only.json", sign(&fresh, &["root-4", "root-5"])));
    out.push(fixture("root/root-signed-by-old-keys-only.json", sign(&fresh, &["root-1", "root-2"])));

    let mut zero = root_value(&base);
    zero["root"]["threshold"] = json!(0);
    out.push(fixture("root/root-threshold-zero.json", sign_value(&zero, &["root-1", "root-2"])));

    let mut above = root_value(&base);
    above["root"]["threshold"] = json!(4);
    out.push(fixture("root/root-threshold-above-key-count.json", sign_value(&above, &["root-1", "root-2"])));

    let mut expired = base.clone();
    expired.expires = at("2026-01-01T00:00:00Z");
    out.push(fixture("root/expired-root.json", sign(&expired, &["root-1", "root-2"])));

    let pretty = serde_json::to_vec_pretty(&root_value(&base)).unwrap();
    out.push(fixture("root/non-canonical-signed.json", sign_bytes(&pretty, &["root-1", "root-2"])));

    // The attacker's key, listed under the key id of root key `root-1`.
    let mut hijack = root_value(&base);
    let root_1 = kid("root-1");
    hijack["keys"][root_1.as_str()]["public_key"] = json!(key("outsider").public_key().to_pem());
    let signed = airlock_model::jcs::canonicalize(&hijack).unwrap();
    let sigs =
        vec![(root_1, key("outsider").sign(&signed).unwrap()), (kid("root-2"), key("root-2").sign(&signed).unwrap())];
    out.push(fixture("root/keyid-mismatch.json", assemble(&signed, &sigs)));

    let mut unknown = root_value(&base);
    unknown["delegations"] = json!({"roles": [{"name": "everyone", "keyids": [], "threshold": 0}]});
    out.push(fixture("root/unknown-field.json", sign_value(&unknown, &["root-1", "root-2"])));

    // Refused attestations, judged by evaluate-root.json.
    let provenance = "https://slsa.dev/provenance/v1";
    let summary = "https://slsa.dev/verification_summary/v1";
    for (name, repository, predicate_type, signers) in [
        ("revoked-key", "dev/payments/api", provenance, &["stolen"][..]),
        ("expired-signer", "dev/payments/api", provenance, &["old-ci"]),
        ("signer-outside-repository-scope", "dev/billing/api", provenance, &["ci"]),
        ("predicate-type-not-allowed", "dev/payments/api", "https://cyclonedx.org/bom", &["ci"]),
        ("untrusted-key", "dev/payments/api", provenance, &["outsider"]),
        ("below-predicate-threshold", "dev/payments/api", summary, &["qa"]),
        ("one-key-two-signer-rules", "dev/payments/api", summary, &["ci"]),
    ] {
        out.push(fixture(&format!("evaluate/{name}.json"), case(repository, predicate_type, signers)));
    }
    out
}

/// Writes the fixture keys that are missing (never replacing one).
fn write_missing_keys() {
    std::fs::create_dir_all(data_dir().join("keys")).unwrap();
    for name in KEY_NAMES {
        let path = key_path(name);
        if !path.exists() {
            let pem = PrivateKey::generate(algorithm(name)).unwrap().to_pkcs8_pem().unwrap();
            std::fs::write(&path, pem).unwrap();
        }
    }
}

#[test]
fn committed_fixtures_are_what_the_generator_makes() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    if update {
        write_missing_keys();
    }
    for f in fixtures() {
        if update {
            std::fs::create_dir_all(f.path.parent().unwrap()).unwrap();
            std::fs::write(&f.path, &f.bytes).unwrap();
        } else if f.deterministic {
            let committed = std::fs::read(&f.path).unwrap();
            assert!(committed == f.bytes, "{} is stale; run with UPDATE_FIXTURES=1", f.path.display());
        } else {
            assert!(f.path.exists(), "{} is missing; run with UPDATE_FIXTURES=1", f.path.display());
        }
    }
}
