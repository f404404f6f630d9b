//! Table tests of bootstrap and update (TUF 1.0 §5.3): which signatures count toward a threshold,
//! version steps, and expiry at update and at use.

use airlock_model::Timestamp;
use airlock_trust::{Root, RootDocument, RootLimits, TrustedRoot};
use expect_test::{Expect, expect};

use crate::support::*;

fn doc(bytes: &[u8]) -> RootDocument {
    RootDocument::parse(bytes, &RootLimits::default()).unwrap()
}

fn base() -> TrustedRoot {
    TrustedRoot::bootstrap(doc(&sign(&base_root(), &["root-1", "root-2"])), now()).unwrap()
}

fn show(result: Result<TrustedRoot, airlock_trust::TrustError>) -> String {
    match result {
        Ok(root) => format!("trusted version {}", root.version()),
        Err(e) => names(&e.to_string()),
    }
}

/// Bootstraps `bytes` at `NOW`.
fn check_bootstrap(bytes: &[u8], expect: Expect) {
    expect.assert_eq(&show(TrustedRoot::bootstrap(doc(bytes), now())));
}

/// Updates the base root (version 1) to `bytes` at `NOW`.
fn check_update(bytes: &[u8], expect: Expect) {
    expect.assert_eq(&show(base().update(doc(bytes), now())));
}

fn version(n: u64) -> Root {
    let mut root = base_root();
    root.version = n;
    root
}

#[test]
fn bootstrap() {
    let v1 = base_root();
    check_bootstrap(&sign(&v1, &["root-1", "root-2"]), expect!["trusted version 1"]);
    check_bootstrap(&sign(&v1, &["root-3", "root-1", "ci"]), expect!["trusted version 1"]);
    check_bootstrap(
        &sign(&v1, &["root-1"]),
        expect![
            "trust root version 1 is signed by 1 of its own root keys; it needs 2; collect more signatures with `airlock trust sign`"
        ],
    );
    // A key the root lists, but not as a root key, does not count.
    check_bootstrap(
        &sign(&v1, &["root-1", "ci"]),
        expect![
            "trust root version 1 is signed by 1 of its own root keys; it needs 2; collect more signatures with `airlock trust sign`"
        ],
    );
    check_bootstrap(
        &sign(&v1, &[]),
        expect![
            "trust root version 1 is signed by 0 of its own root keys; it needs 2; collect more signatures with `airlock trust sign`"
        ],
    );
    // A root key's signature over other bytes (here, the next version) does not count.
    let signed = v1.to_signed_bytes().unwrap();
    let other = version(2).to_signed_bytes().unwrap();
    let stolen = key("root-2").sign(&other).unwrap();
    check_bootstrap(
        &assemble(&signed, &[(kid("root-1"), key("root-1").sign(&signed).unwrap()), (kid("root-2"), stolen)]),
        expect![
            "trust root version 1 is signed by 1 of its own root keys; it needs 2; collect more signatures with `airlock trust sign`"
        ],
    );
    // A key id only names the key to try: root-2's signature labelled as root-3's does not count.
    check_bootstrap(
        &assemble(
            &signed,
            &[
                (kid("root-1"), key("root-1").sign(&signed).unwrap()),
                (kid("root-3"), key("root-2").sign(&signed).unwrap()),
            ],
        ),
        expect![
            "trust root version 1 is signed by 1 of its own root keys; it needs 2; collect more signatures with `airlock trust sign`"
        ],
    );
    // The same key under a key id the root does not list (its point compressed) counts once.
    let signed = root(1, &["p256", "root-2"], &["p256", "root-2"], 2).to_signed_bytes().unwrap();
    let p256 = key("p256");
    let compressed = airlock_dsse::KeyId::parse(&compressed_p256(&p256).1).unwrap();
    check_bootstrap(
        &assemble(&signed, &[(kid("p256"), p256.sign(&signed).unwrap()), (compressed, p256.sign(&signed).unwrap())]),
        expect![
            "trust root version 1 is signed by 1 of its own root keys; it needs 2; collect more signatures with `airlock trust sign`"
        ],
    );
    // An expired root fails closed; the instant of expiry is already expired.
    let mut expired = base_root();
    expired.expires = now();
    check_bootstrap(
        &sign(&expired, &["root-1", "root-2"]),
        expect![
            "trust root version 1 expired at 2026-06-01T00:00:00.000Z; nothing it lists is trusted until a new version with a later `expires`, signed by the root keys, is applied with `airlock trust apply`"
        ],
    );
}

#[test]
fn update() {
    check_update(&sign(&version(2), &["root-1", "root-2"]), expect!["trusted version 2"]);
    check_update(&sign(&version(2), &["root-2", "root-3"]), expect!["trusted version 2"]);
    check_update(
        &sign(&version(2), &["root-3"]),
        expect![
            "trust root version 2 is signed by 1 of the root keys of trusted version 1; it needs 2: a new version must be signed by a threshold of the previous version's root keys; collect their signatures with `airlock trust sign`"
        ],
    );
    // Replay of the trusted version, and rollback below it.
    check_update(
        &sign(&version(1), &["root-1", "root-2"]),
        expect![
            "trust root version 1 does not follow trusted version 1; versions are applied one at a time, so apply version 2 first"
        ],
    );
    let v3 = base().update(doc(&sign(&version(2), &["root-1", "root-2"])), now()).unwrap();
    expect!["trust root version 2 does not follow trusted version 2; versions are applied one at a time, so apply version 3 first"]
        .assert_eq(&show(v3.update(doc(&sign(&version(2), &["root-1", "root-3"])), now())));
    // Root keys rotate: 2 of the old and 2 of the new must sign.
    let mut rotated = root(2, &["root-3", "root-4", "root-5", "ci"], &["root-3", "root-4", "root-5"], 2);
    rotated.signers = base_root().signers;
    check_update(&sign(&rotated, &["root-1", "root-2", "root-4", "root-5"]), expect!["trusted version 2"]);
    // root-3 is in both versions, so it counts for both.
    check_update(&sign(&rotated, &["root-1", "root-3", "root-4"]), expect!["trusted version 2"]);
    check_update(
        &sign(&rotated, &["root-1", "root-3"]),
        expect![
            "trust root version 2 is signed by 1 of its own root keys; it needs 2; collect more signatures with `airlock trust sign`"
        ],
    );
    // A new version's own threshold is its own: raising it to 3 needs 3 new signatures.
    rotated.root_threshold = 3;
    check_update(
        &sign(&rotated, &["root-1", "root-2", "root-4", "root-5"]),
        expect![
            "trust root version 2 is signed by 2 of its own root keys; it needs 3; collect more signatures with `airlock trust sign`"
        ],
    );
    let mut expired = version(2);
    expired.expires = at("2026-05-01T00:00:00Z");
    check_update(
        &sign(&expired, &["root-1", "root-2"]),
        expect![
            "trust root version 2 expired at 2026-05-01T00:00:00.000Z; nothing it lists is trusted until a new version with a later `expires`, signed by the root keys, is applied with `airlock trust apply`"
        ],
    );
}

#[test]
fn a_chain_may_pass_through_expired_versions() {
    let mut v2 = version(2);
    v2.expires = at("2026-03-01T00:00:00Z");
    let v2 = sign(&v2, &["root-1", "root-2"]);
    let v3 = sign(&version(3), &["root-1", "root-2"]);
    // TUF 5.3.6: an intermediate root may have expired since; only the last must be fresh.
    expect!["trusted version 3"].assert_eq(&show(base().update_chain([doc(&v2), doc(&v3)], now())));
    expect!["trust root version 2 expired at 2026-03-01T00:00:00.000Z; nothing it lists is trusted until a new version with a later `expires`, signed by the root keys, is applied with `airlock trust apply`"]
        .assert_eq(&show(base().update_chain([doc(&v2)], now())));
    expect!["trust root version 3 does not follow trusted version 1; versions are applied one at a time, so apply version 2 first"]
        .assert_eq(&show(base().update_chain([doc(&v3)], now())));
}

#[test]
fn expiry_is_checked_at_use() {
    let root = base();
    assert!(root.check_fresh(now()).is_ok());
    assert!(root.check_fresh(at("2027-11-25T23:59:59.999Z")).is_ok());
    let err = root.check_fresh(at("2027-11-26T00:00:00Z")).unwrap_err();
    expect!["trust root version 1 expired at 2027-11-26T00:00:00.000Z; nothing it lists is trusted until a new version with a later `expires`, signed by the root keys, is applied with `airlock trust apply`"]
        .assert_eq(&err.to_string());
    assert!(root.check_fresh(Timestamp::from_millis(i64::MAX)).is_err());
    assert_eq!(root.document().raw(), sign(&base_root(), &["root-1", "root-2"]));
}

#[test]
fn policy_signers_leave_revoked_keys_out() {
    assert!(base().policy_signers().is_none(), "a root without the role names nobody");
    let mut v1 = base_root();
    v1.policy = Some(airlock_trust::PolicyRole { keyids: vec![kid("ci"), kid("root-3")], threshold: 1 });
    v1.revoked =
        vec![airlock_trust::Revocation { keyid: kid("ci"), revoked_at: now(), reason: "laptop stolen".to_owned() }];
    let trusted = TrustedRoot::bootstrap(doc(&sign(&v1, &["root-1", "root-2"])), now()).unwrap();
    let (keys, threshold) = trusted.policy_signers().unwrap();
    let ids: Vec<_> = keys.iter().map(|k| k.keyid().clone()).collect();
    assert_eq!(ids, [kid("root-3")], "a revoked policy key never counts");
    assert_eq!(threshold, 1);
}
