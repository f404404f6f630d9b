//! Airlock's trust root: a versioned, threshold-signed document (in the style of TUF's root role)
//! naming the keys that may sign which attestations for which repositories, and the decision
//! whether one attestation is trusted.
//!
//! ```
//! use airlock_dsse::{Algorithm, Envelope, IN_TOTO_PAYLOAD_TYPE, PrivateKey, Statement};
//! use airlock_model::{RepoName, Timestamp};
//! use airlock_trust::{Pattern, RepoPattern, Root, RootDocument, RootLimits, SignerRule, TrustedRoot, sign_root};
//!
//! let (root_key, ci) = (PrivateKey::generate(Algorithm::Ed25519)?, PrivateKey::generate(Algorithm::Ed25519)?);
//! let now = Timestamp::from_millis(1_780_272_000_000); // 2026-06-01, read from a `Clock`
//! let days = |n: u64| n * 86_400_000;
//!
//! // Version 1: one root key, and signer `ci` for provenance in `dev/payments/**` for 90 days.
//! let root = Root {
//!     version: 1,
//!     expires: now.plus_millis(days(365)),
//!     keys: [&root_key, &ci].map(|k| (k.public_key().keyid().clone(), k.public_key().clone())).into(),
//!     root_keyids: vec![root_key.public_key().keyid().clone()],
//!     root_threshold: 1,
//!     signers: vec![SignerRule {
//!         name: "ci".into(),
//!         keyids: vec![ci.public_key().keyid().clone()],
//!         predicate_types: vec![Pattern::parse("https://slsa.dev/provenance/*")?],
//!         repositories: vec![RepoPattern::parse("dev/payments/**")?],
//!         not_before: now,
//!         not_after: now.plus_millis(days(90)),
//!     }],
//!     thresholds: vec![],
//!     revoked: vec![],
//!     policy: None,
//! };
//! let document = sign_root(&root, &[&root_key])?;
//! let trusted = TrustedRoot::bootstrap(RootDocument::parse(&document, &RootLimits::default())?, now)?;
//!
//! // `ci` signs a provenance attestation; the caller read its predicate type from the statement.
//! let statement = Statement::new(vec![], "https://slsa.dev/provenance/v1", &serde_json::json!({}));
//! let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_json(), &[&ci])?;
//! let repo = RepoName::parse("dev/payments/api")?;
//! let decision = trusted.evaluate(&envelope, &statement.predicate_type, &repo, now);
//! assert!(decision.trusted);
//! assert_eq!(decision.signers, ["ci"]);
//!
//! // Out of its repositories, `ci` does not count.
//! let decision = trusted.evaluate(&envelope, &statement.predicate_type, &RepoName::parse("dev/billing/api")?, now);
//! assert!(!decision.trusted);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The document
//!
//! A trust root is JSON, `{"signed": {...}, "signatures": [...]}` (see [`RootDocument`] for the
//! fields). Its signatures cover the bytes of `signed` exactly as received, which must already be
//! RFC 8785 canonical JSON; a document whose `signed` member is not canonical is refused, so
//! verification never re-serializes signed content. Every key is listed under the key id computed
//! from it (hex SHA-256 of its SPKI DER), never under one it claims. Unknown fields are refused.
//! Times are RFC 3339 in UTC (`2027-11-26T00:00:00Z`).
//!
//! # Trusting a root
//!
//! - The first root is installed out of band and must be signed by a threshold of its own root
//!   keys and not be expired ([`TrustedRoot::bootstrap`]).
//! - Version N+1 replaces version N only if it is signed by a threshold of N's root keys *and* a
//!   threshold of its own, its version is exactly N+1, and it is not expired
//!   ([`TrustedRoot::update`], TUF 1.0 §5.3.4, §5.3.5, §5.3.10).
//! - A threshold of 0, or above the number of distinct root keys, is refused.
//! - Each key counts once toward a threshold: keys are compared by
//!   [`airlock_dsse::PublicKey::fingerprint`], so the same key under two key ids, in two
//!   encodings, or signing twice is one key.
//! - An expired root fails closed, at update and at every use ([`TrustedRoot::check_fresh`],
//!   [`TrustedRoot::evaluate`]).
//!
//! # Trusting an attestation
//!
//! [`TrustedRoot::evaluate`] returns an [`Evaluation`], data with every reason. A signature counts
//! for a signer rule only if it was made by one of the rule's keys, the key is not revoked, now is
//! within the rule's `[not_before, not_after]`, and the rule's patterns (see [`Pattern`] and [`RepoPattern`]) match the
//! predicate type and the repository. A predicate type that matches a `thresholds` entry needs
//! that many distinct signer rules, each satisfied by a distinct key (the largest entry wins when
//! several match); any other needs one.
//!
//! # Revocation
//!
//! A revocation names a key and the instant since which it is believed compromised
//! (`revoked_at`). A signature made before that instant would be safe to accept, but only if its
//! time were proven by a trusted time source, such as an RFC 3161 timestamp authority; a time the
//! signer states itself proves nothing, because whoever holds the stolen key can state any time.
//! Airlock has no such time source, so **every signature by a revoked key is rejected**, whenever
//! it was made and whatever `revoked_at` says, and `revoked_at` is kept for the record. A revoked
//! key stays listed in `keys`, so the revocation applies to the key in any encoding.
//!
//! # Policy signers
//!
//! A root may name a `policy` role, like TUF's targets role: the keys that sign policy bundles
//! and how many distinct ones must sign one ([`PolicyRole`]). [`TrustedRoot::policy_signers`]
//! gives the role's keys in force (revoked keys left out) for the policy crate to count. A root
//! without the role stays valid; its bundles are then unsigned code, loaded with a warning.
//!
//! # Limits
//!
//! Everything an attacker can make this crate do is bounded by [`RootLimits`], whose defaults are
//! named constants ([`ROOT_MAX_BYTES`], [`ROOT_MAX_KEYS`], [`ROOT_MAX_SIGNATURES`], ...). Nothing
//! here panics on untrusted input.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod document;
mod error;
mod evaluate;
mod verify;

pub use airlock_model::pattern::{PATTERN_MAX_LEN, Pattern, PatternError, REPO_PATTERN_MAX_LEN, RepoPattern};
pub use document::{
    PolicyRole, PredicateThreshold, REVOCATION_REASON_MAX_LEN, ROOT_MAX_BYTES, ROOT_MAX_KEYS, ROOT_MAX_PATTERNS,
    ROOT_MAX_REVOKED, ROOT_MAX_SIGNATURES, ROOT_MAX_SIGNERS, ROOT_MAX_THRESHOLDS, ROOT_TYPE, Revocation, Root,
    RootDocument, RootLimits, RootSignature, SIGNER_NAME_MAX_LEN, SignerRule, add_signature, sign_root,
};
pub use error::TrustError;
pub use evaluate::{Evaluation, PREDICATE_TYPE_MAX_LEN, UntrustedReason, VerifiedKey};
pub use verify::TrustedRoot;
