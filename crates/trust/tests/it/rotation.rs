//! The rotation story end to end: a signer's key is stolen, the root keys rotate it out and
//! revoke it in version 2, signing one after another, and version 3 needs version 2's root keys.

use airlock_model::RepoName;
use airlock_trust::{RootDocument, RootLimits, TrustedRoot, UntrustedReason, add_signature};
use expect_test::expect;

use crate::support::*;

const PROVENANCE: &str = "https://slsa.dev/provenance/v1";

fn doc(bytes: &[u8]) -> RootDocument {
    RootDocument::parse(bytes, &RootLimits::default()).unwrap()
}

#[test]
fn rotate_a_stolen_signer_key() {
    let limits = RootLimits::default();
    let repo = RepoName::parse("dev/payments/api").unwrap();

    // Version 1: root keys 2 of 3, signer `ci` for provenance in `dev/payments/**`.
    let v1 = TrustedRoot::bootstrap(doc(&sign(&base_root(), &["root-1", "root-2"])), now()).unwrap();
    let old = envelope(PROVENANCE, &["ci"]);
    let e = v1.evaluate(&old, PROVENANCE, &repo, now());
    assert!(e.trusted, "{e:?}");
    assert_eq!(e.signers, ["ci"]);

    // Version 2 moves `ci` to a new key, revokes the old one, and swaps root key 1 for root key 4.
    let mut next =
        root(2, &["root-1", "root-2", "root-3", "root-4", "ci", "ci-new"], &["root-2", "root-3", "root-4"], 2);
    next.signers = vec![signer("ci", &["ci-new"], &["https://slsa.dev/provenance/*"], &["dev/payments/**"])];
    next.revoked = vec![airlock_trust::Revocation {
        keyid: kid("ci"),
        revoked_at: at("2026-05-20T00:00:00Z"),
        reason: "laptop stolen".to_owned(),
    }];
    // The root key holders sign one after another (`airlock trust sign`).
    let proposal = sign(&next, &["root-1"]);
    let refused = v1.update(doc(&proposal), now()).unwrap_err();
    expect!["trust root version 2 is signed by 1 of the root keys of trusted version 1; it needs 2: a new version must be signed by a threshold of the previous version's root keys; collect their signatures with `airlock trust sign`"]
        .assert_eq(&refused.to_string());
    let proposal = add_signature(&proposal, &key("root-2"), &limits).unwrap();
    let refused = v1.update(doc(&proposal), now()).unwrap_err();
    expect!["trust root version 2 is signed by 1 of its own root keys; it needs 2; collect more signatures with `airlock trust sign`"]
        .assert_eq(&refused.to_string());
    let proposal = add_signature(&proposal, &key("root-4"), &limits).unwrap();
    let v2 = v1.update(doc(&proposal), now()).unwrap();
    assert_eq!(v2.version(), 2);

    // The old key's envelope is now refused as revoked; the new key's is trusted.
    let e = v2.evaluate(&old, PROVENANCE, &repo, now());
    assert!(!e.trusted);
    assert!(matches!(
        &e.reasons[0],
        UntrustedReason::RevokedKey { keyid, signer: None, reason, .. } if *keyid == kid("ci") && reason == "laptop stolen"
    ));
    expect![[r#"
        signature by key `<ci>` does not count: the key is revoked (laptop stolen; compromised since 2026-05-20T00:00:00.000Z), and with no trusted timestamp to prove a signature older than that, every signature by a revoked key is rejected; sign again with a current key
        predicate type `https://slsa.dev/provenance/v1` needs a signature by a trusted signer; none counted"#]]
    .assert_eq(&e.reasons.iter().map(|r| names(&r.to_string())).collect::<Vec<_>>().join("\n"));
    let e = v2.evaluate(&envelope(PROVENANCE, &["ci-new"]), PROVENANCE, &repo, now());
    assert!(e.trusted, "{e:?}");
    assert_eq!(e.signers, ["ci"]);

    // Version 3 signed by one root key is refused; root key 1 no longer counts; two of version
    // 2's root keys are enough.
    let mut v3 = next.clone();
    v3.version = 3;
    let refused = v2.update(doc(&sign(&v3, &["root-2"])), now()).unwrap_err();
    expect!["trust root version 3 is signed by 1 of the root keys of trusted version 2; it needs 2: a new version must be signed by a threshold of the previous version's root keys; collect their signatures with `airlock trust sign`"]
        .assert_eq(&refused.to_string());
    assert!(v2.update(doc(&sign(&v3, &["root-1", "root-2"])), now()).is_err());
    assert_eq!(v2.update(doc(&sign(&v3, &["root-3", "root-4"])), now()).unwrap().version(), 3);
}
