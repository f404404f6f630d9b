//! Table tests of `TrustedRoot::evaluate` against the evaluation root of the fixtures: who counts
//! for which predicate type and repository, and when.

use airlock_model::{RepoName, Timestamp};
use expect_test::{Expect, expect};

use crate::fixtures::trusted;
use crate::support::*;

const PROVENANCE: &str = "https://slsa.dev/provenance/v1";
const SUMMARY: &str = "https://slsa.dev/verification_summary/v1";

/// Evaluates an attestation of `predicate_type` for `repository`, signed by `signers`, at `now`.
fn check_at(now: Timestamp, predicate_type: &str, repository: &str, signers: &[&str], expect: Expect) {
    let root = trusted("valid/evaluate-root.json");
    let repo = RepoName::parse(repository).unwrap();
    let envelope = envelope(predicate_type, signers);
    let e = root.evaluate(&envelope, predicate_type, &repo, now);
    // The same decision over signatures verified once and kept: identical, reasons and all.
    let kept = root.signed_by(&envelope);
    assert_eq!(root.evaluate_signed(predicate_type, &repo, now, || kept.clone()), e);
    assert_eq!(e.root_version, 1);
    let mut out = format!("{} [{}]", if e.trusted { "trusted" } else { "untrusted" }, e.signers.join(", "));
    for reason in &e.reasons {
        out.push_str(&format!("\n{}: {}", reason.code(), names(&reason.to_string())));
    }
    expect.assert_eq(&out);
}

fn check(predicate_type: &str, repository: &str, signers: &[&str], expect: Expect) {
    check_at(now(), predicate_type, repository, signers, expect);
}

#[test]
fn signers_within_their_rules_are_trusted() {
    check(
        PROVENANCE,
        "dev/payments/api",
        &["ci"],
        expect![[r#"
        trusted [ci]
        predicate-type-not-allowed: signer `release` may not sign predicate type `https://slsa.dev/provenance/v1`"#]],
    );
    check(
        PROVENANCE,
        "dev/payments/api/v2",
        &["ci"],
        expect![[r#"
        trusted [ci]
        predicate-type-not-allowed: signer `release` may not sign predicate type `https://slsa.dev/provenance/v1`"#]],
    );
    check(
        "https://slsa.dev/provenance/v0.2",
        "dev/payments/api",
        &["ci"],
        expect![[r#"
        trusted [ci]
        predicate-type-not-allowed: signer `release` may not sign predicate type `https://slsa.dev/provenance/v0.2`"#]],
    );
    // Two distinct signers, each with its own key, meet the summary threshold of 2.
    check(SUMMARY, "dev/payments/api", &["qa", "release"], expect!["trusted [qa, release]"]);
    // Key `ci` serves rules `ci` and `release`; with `qa` that is two signers on two keys.
    check(SUMMARY, "dev/payments/api", &["ci", "qa"], expect!["trusted [ci, qa, release]"]);
    // A revoked key alongside a valid one: the valid one carries it; the record keeps the other.
    check(
        PROVENANCE,
        "dev/payments/api",
        &["ci", "stolen"],
        expect![[r#"
            trusted [ci]
            revoked-key: signature by key `<stolen>` of signer `ci` does not count: the key is revoked (laptop stolen; compromised since 2026-05-01T00:00:00.000Z), and with no trusted timestamp to prove a signature older than that, every signature by a revoked key is rejected; sign again with a current key
            predicate-type-not-allowed: signer `release` may not sign predicate type `https://slsa.dev/provenance/v1`"#]],
    );
    // The same key signing twice is one signature.
    check(
        SUMMARY,
        "dev/payments/api",
        &["qa", "qa"],
        expect![[r#"
        untrusted [qa]
        below-threshold: predicate type `https://slsa.dev/verification_summary/v1` needs 2 distinct trusted signers, each with its own key; 1 counted"#]],
    );
}

#[test]
fn signatures_outside_their_rules_do_not_count() {
    check(
        PROVENANCE,
        "dev/payments",
        &["ci"],
        expect![[r#"
        untrusted []
        repository-out-of-scope: signer `ci` may not sign for repository `dev/payments`
        predicate-type-not-allowed: signer `release` may not sign predicate type `https://slsa.dev/provenance/v1`
        below-threshold: predicate type `https://slsa.dev/provenance/v1` needs a signature by a trusted signer; none counted"#]],
    );
    check(
        PROVENANCE,
        "prod/payments/api",
        &["ci"],
        expect![[r#"
        untrusted []
        repository-out-of-scope: signer `ci` may not sign for repository `prod/payments/api`
        predicate-type-not-allowed: signer `release` may not sign predicate type `https://slsa.dev/provenance/v1`
        below-threshold: predicate type `https://slsa.dev/provenance/v1` needs a signature by a trusted signer; none counted"#]],
    );
    check(
        "https://slsa.dev/provenance/v1/x",
        "dev/payments/api",
        &["ci"],
        expect![[r#"
        untrusted []
        predicate-type-not-allowed: signer `ci` may not sign predicate type `https://slsa.dev/provenance/v1/x`
        predicate-type-not-allowed: signer `release` may not sign predicate type `https://slsa.dev/provenance/v1/x`
        below-threshold: predicate type `https://slsa.dev/provenance/v1/x` needs a signature by a trusted signer; none counted"#]],
    );
    check(
        "https://evil.example/\u{1b}[31m",
        "dev/payments/api",
        &["qa"],
        expect![[r#"
        untrusted []
        predicate-type-not-allowed: signer `qa` may not sign predicate type `https://evil.example/\u{1b}[31m`
        below-threshold: predicate type `https://evil.example/\u{1b}[31m` needs a signature by a trusted signer; none counted"#]],
    );
    let long = format!("https://slsa.dev/provenance/{}", "v".repeat(airlock_trust::PREDICATE_TYPE_MAX_LEN));
    check(
        &long,
        "dev/payments/api",
        &["ci"],
        expect![[r#"
        untrusted []
        predicate-type-too-long: predicate type is 1052 bytes long; the limit is 1024"#]],
    );
    check(
        PROVENANCE,
        "dev/payments/api",
        &["ci-new", "root-1"],
        expect![[r#"
        untrusted []
        no-signature-by-known-key: no signature verifies with a key of a signer in the trust root; sign with a key that a signer rule lists
        below-threshold: predicate type `https://slsa.dev/provenance/v1` needs a signature by a trusted signer; none counted"#]],
    );
}

#[test]
fn time_windows() {
    check_at(
        at("2025-12-31T23:59:59.999Z"),
        PROVENANCE,
        "dev/payments/api",
        &["ci"],
        expect![[r#"
        untrusted []
        signer-not-yet-valid: signer `ci` is not valid before 2026-01-01T00:00:00.000Z
        signer-not-yet-valid: signer `release` is not valid before 2026-01-01T00:00:00.000Z
        below-threshold: predicate type `https://slsa.dev/provenance/v1` needs a signature by a trusted signer; none counted"#]],
    );
    // Both ends of a window are inside it.
    check_at(
        at("2026-01-01T00:00:00Z"),
        PROVENANCE,
        "dev/payments/api",
        &["ci"],
        expect![[r#"
        trusted [ci]
        predicate-type-not-allowed: signer `release` may not sign predicate type `https://slsa.dev/provenance/v1`"#]],
    );
    check_at(
        at("2027-01-01T00:00:00Z"),
        PROVENANCE,
        "dev/payments/api",
        &["ci"],
        expect![[r#"
        trusted [ci]
        predicate-type-not-allowed: signer `release` may not sign predicate type `https://slsa.dev/provenance/v1`"#]],
    );
    check_at(at("2025-06-01T00:00:00Z"), PROVENANCE, "dev/payments/api", &["old-ci"], expect!["trusted [old-ci]"]);
    check_at(
        at("2027-11-26T00:00:00Z"),
        PROVENANCE,
        "dev/payments/api",
        &["ci"],
        expect![[r#"
            untrusted []
            expired-root: trust root version 1 expired at 2027-11-26T00:00:00.000Z; no attestation is trusted until a new version is applied: sign version 2 with the root keys and apply it with `airlock trust apply`"#]],
    );
}

#[test]
fn the_evaluation_names_each_key_that_signed_once_with_the_rules_it_satisfied() {
    let root = trusted("valid/evaluate-root.json");
    let repo = RepoName::parse("dev/payments/api").unwrap();
    // Key `ci` is listed under signer rules `ci` and `release`: one key, two names.
    let e = root.evaluate(&envelope(SUMMARY, &["ci", "qa"]), SUMMARY, &repo, now());
    let mut keys: Vec<String> =
        e.keys.iter().map(|k| format!("{} [{}]", names(&format!("`{}`", k.keyid)), k.signers.join(", "))).collect();
    keys.sort();
    assert_eq!(keys, ["`<ci>` [ci, release]", "`<qa>` [qa]"]);
    // A key that verified but counts for no rule here is listed with no signers.
    let e = root.evaluate(&envelope(PROVENANCE, &["qa"]), PROVENANCE, &repo, now());
    assert!(!e.trusted);
    assert_eq!(e.keys.len(), 1);
    assert!(e.keys.iter().all(|k| k.signers.is_empty() && k.keyid == kid("qa")));
}

#[test]
fn allows_applies_the_signer_rules_to_keys_that_already_verified() {
    let root = trusted("valid/evaluate-root.json");
    let payments = RepoName::parse("dev/payments/api").unwrap();
    let billing = RepoName::parse("dev/billing/api").unwrap();
    assert!(root.allows(&[kid("ci")], PROVENANCE, &payments, now()));
    // Outside the rule's repositories, predicate types or window, and below a threshold: no.
    assert!(!root.allows(&[kid("ci")], PROVENANCE, &billing, now()));
    assert!(!root.allows(&[kid("qa")], PROVENANCE, &payments, now()));
    assert!(!root.allows(&[kid("ci")], PROVENANCE, &payments, at("2027-06-01T00:00:00Z")));
    assert!(!root.allows(&[kid("qa")], SUMMARY, &payments, now()));
    assert!(root.allows(&[kid("qa"), kid("release")], SUMMARY, &payments, now()));
    // One key under two signer names, named twice, is still one key.
    assert!(!root.allows(&[kid("ci"), kid("ci")], SUMMARY, &payments, now()));
    // Revoked keys and keys the root does not list count for nothing.
    assert!(!root.allows(&[kid("stolen")], PROVENANCE, &payments, now()));
    assert!(!root.allows(&[], PROVENANCE, &payments, now()));
}

/// An attestation judged by an expired root is untrusted because the root expired, and the
/// reason says which version, since when, and that a new version must be applied; not that no
/// signature verifies. The expired root stays the one in force after a restart (`reload`), and
/// the next version is applied over it under the usual rules.
#[test]
fn expired_root_says_so() {
    use airlock_trust::{RootDocument, RootLimits, TrustedRoot, UntrustedReason};
    let root = trusted("valid/evaluate-root.json");
    let expired_at = at("2027-11-26T00:00:00Z");
    let later = at("2028-01-01T00:00:00Z");
    let repo = RepoName::parse("dev/payments/api").unwrap();
    let e = root.evaluate(&envelope(PROVENANCE, &["ci"]), PROVENANCE, &repo, later);
    assert!(!e.trusted);
    assert_eq!(e.reasons, [UntrustedReason::ExpiredRoot { version: 1, expired_at }]);
    expect!["trust root version 1 expired at 2027-11-26T00:00:00.000Z; no attestation is trusted until a new version is applied: sign version 2 with the root keys and apply it with `airlock trust apply`"]
        .assert_eq(&e.reasons[0].to_string());

    // Read back after a restart, the expired root is still the one in force and still says so.
    let stored = RootDocument::parse(root.document().raw(), &RootLimits::default()).unwrap();
    let bootstrapped = TrustedRoot::bootstrap(stored.clone(), later).map(|_| ()).unwrap_err().to_string();
    assert!(bootstrapped.contains("expired at 2027-11-26T00:00:00.000Z"), "{bootstrapped}");
    let reloaded = TrustedRoot::reload(stored).unwrap();
    let e = reloaded.evaluate(&envelope(PROVENANCE, &["ci"]), PROVENANCE, &repo, later);
    assert_eq!(e.reasons, [UntrustedReason::ExpiredRoot { version: 1, expired_at }]);
}

/// Signatures verified once and kept are judged again on every decision: a key's rule that
/// expires, a repository out of its scope, an expired root, all apply to the kept answer.
#[test]
fn kept_signatures_are_judged_again_at_each_decision() {
    let root = trusted("valid/evaluate-root.json");
    let payments = RepoName::parse("dev/payments/api").unwrap();
    let billing = RepoName::parse("dev/billing/api").unwrap();
    let signed = root.signed_by(&envelope(PROVENANCE, &["ci"]));
    assert_eq!(signed, [kid("ci")]);
    assert!(root.evaluate_signed(PROVENANCE, &payments, now(), || signed.clone()).trusted);
    assert!(!root.evaluate_signed(PROVENANCE, &billing, now(), || signed.clone()).trusted);
    assert!(!root.evaluate_signed(PROVENANCE, &payments, at("2027-06-01T00:00:00Z"), || signed.clone()).trusted);
    // An expired root decides before any signature: the kept answer is not even asked for.
    let e = root.evaluate_signed(PROVENANCE, &payments, at("2028-01-01T00:00:00Z"), || -> Vec<_> {
        unreachable!("an expired root reads no signature")
    });
    assert!(!e.trusted);
    // A revoked key verifies, and counts for nothing.
    let stolen = root.signed_by(&envelope(PROVENANCE, &["stolen"]));
    assert_eq!(stolen, [kid("stolen")]);
    let e = root.evaluate_signed(PROVENANCE, &payments, now(), || stolen.clone());
    assert!(!e.trusted);
    assert!(e.reasons.iter().any(|r| r.code() == "revoked-key"), "{:?}", e.reasons);
}
