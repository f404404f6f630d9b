//! Why a trust root document was refused, parsed, verified or signed: one variant per check.

use airlock_dsse::{KeyError, KeyId, SignatureError};

use airlock_model::pattern::PatternError;

/// Why a trust root was refused. Each check of [`crate::RootDocument::parse`],
/// [`crate::TrustedRoot::bootstrap`] and [`crate::TrustedRoot::update`] has its own variant.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    // Bounds on the work a document can cause.
    #[error("trust root is {size} bytes; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("trust root has {count} signatures; the limit is {max}")]
    TooManySignatures { count: usize, max: usize },
    #[error("trust root lists {count} keys; the limit is {max}")]
    TooManyKeys { count: usize, max: usize },
    #[error("trust root has {count} signer rules; the limit is {max}")]
    TooManySigners { count: usize, max: usize },
    #[error("trust root has {count} predicate-type thresholds; the limit is {max}")]
    TooManyThresholds { count: usize, max: usize },
    #[error("trust root lists {count} revocations; the limit is {max}")]
    TooManyRevoked { count: usize, max: usize },
    #[error("signer `{signer}` lists {count} patterns in `{field}`; the limit is {max}")]
    TooManyPatterns { signer: String, field: &'static str, count: usize, max: usize },

    // The document's shape.
    #[error("trust root is malformed: {source}; a trust root is `{{\"signed\": {{...}}, \"signatures\": [...]}}`")]
    Malformed {
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "trust root member `signed` is not RFC 8785 canonical JSON (it differs from its canonical form at byte {offset}); signatures cover the exact bytes, so write `signed` canonically with `airlock trust` and sign it again"
    )]
    NotCanonical { offset: usize },
    #[error("trust root member `signed` has no canonical form: {source}")]
    NoCanonicalForm {
        #[source]
        source: airlock_model::jcs::CanonicalError,
    },
    #[error("trust root member `signed` is malformed: {source}")]
    MalformedSigned {
        #[source]
        source: serde_json::Error,
    },
    #[error("trust root {what} is not a JSON object; write it as an object with named members")]
    NotAnObject { what: &'static str },
    #[error("trust root `_type` is `{found}`; a trust root has `_type` `airlock-trust-root`")]
    WrongType { found: String },
    #[error("trust root version is 0; versions start at 1")]
    VersionZero,
    #[error("trust root field `{field}` is `{value}`; write times in RFC 3339 UTC, like `2027-11-26T00:00:00Z`")]
    Time { field: String, value: String },
    #[error("trust root field `{field}` holds a time outside years 0 to 9999")]
    TimeOutOfRange { field: String },

    // Keys.
    #[error("trust root lists an invalid key id: {source}")]
    BadKeyId {
        keyid: String,
        #[source]
        source: KeyError,
    },
    #[error("public key `{keyid}` is unreadable: {source}")]
    BadPublicKey {
        keyid: KeyId,
        #[source]
        source: KeyError,
    },
    #[error(
        "key listed as `{stated}` has key id `{computed}`; a key id is the hex SHA-256 of the key's SPKI DER, so list the key under `{computed}`"
    )]
    KeyIdMismatch { stated: KeyId, computed: KeyId },
    #[error(
        "key listed as `{listed_as}` is the key listed as `{keyid}` (perhaps in another encoding); list each key once, under `{keyid}`"
    )]
    SameKeyTwice { keyid: KeyId, listed_as: KeyId },
    #[error("key `{keyid}` is listed as algorithm `{stated}` but is an `{actual}` key")]
    AlgorithmMismatch { keyid: KeyId, stated: String, actual: String },

    // The root role.
    #[error("`root.keyids` names key `{keyid}`, which is not in `keys`; add the key or remove the key id")]
    UnknownRootKey { keyid: KeyId },
    #[error("`root.keyids` lists key `{keyid}` twice; list each root key once")]
    DuplicateRootKey { keyid: KeyId },
    #[error("root threshold is 0, so any document would be trusted; set `root.threshold` to at least 1")]
    RootThresholdZero,
    #[error(
        "root threshold is {threshold} but `root.keyids` holds only {keys} distinct keys, so no document could ever be trusted; lower the threshold or add root keys"
    )]
    RootThresholdAboveKeyCount { threshold: u64, keys: usize },

    // The policy role (who signs policy bundles).
    #[error("`policy.keyids` is empty; name at least one policy signer key, or leave `policy` out")]
    PolicyWithoutKeys,
    #[error("`policy.keyids` names key `{keyid}`, which is not in `keys`; add the key or remove the key id")]
    UnknownPolicyKey { keyid: KeyId },
    #[error("`policy.keyids` lists key `{keyid}` twice; list each policy key once")]
    DuplicatePolicyKey { keyid: KeyId },
    #[error("policy threshold is 0, so any bundle would be trusted; set `policy.threshold` to at least 1")]
    PolicyThresholdZero,
    #[error(
        "policy threshold is {threshold} but `policy.keyids` holds only {keys} distinct keys, so no bundle could ever be trusted; lower the threshold or add policy keys"
    )]
    PolicyThresholdAboveKeyCount { threshold: u64, keys: usize },

    // Signer rules.
    #[error("signer name `{name}` is invalid: use 1 to 64 letters, digits, `.`, `_` and `-`")]
    SignerName { name: String },
    #[error("signer `{name}` is defined twice; give each signer rule its own name")]
    DuplicateSigner { name: String },
    #[error("signer `{signer}` lists no keys; give it at least one key id")]
    SignerWithoutKeys { signer: String },
    #[error("signer `{signer}` names key `{keyid}`, which is not in `keys`; add the key or remove the key id")]
    UnknownSignerKey { signer: String, keyid: KeyId },
    #[error("signer `{signer}` lists key `{keyid}` twice; list each key once")]
    DuplicateSignerKey { signer: String, keyid: KeyId },
    #[error("signer `{signer}` has no `{field}` patterns, so it could sign nothing; add at least one")]
    EmptyPatterns { signer: String, field: &'static str },
    #[error("signer `{signer}` has an invalid pattern in `{field}`: {source}")]
    SignerPattern {
        signer: String,
        field: &'static str,
        #[source]
        source: PatternError,
    },
    #[error(
        "signer `{signer}` has `not_before` {not_before} after `not_after` {not_after}; its validity window is empty"
    )]
    SignerWindow { signer: String, not_before: String, not_after: String },

    // Predicate-type thresholds.
    #[error("threshold for predicate type `{predicate_type}` is invalid: {source}")]
    ThresholdPattern {
        predicate_type: String,
        #[source]
        source: PatternError,
    },
    #[error("threshold for predicate type `{predicate_type}` is 0; a threshold needs at least 1 signer")]
    ThresholdZero { predicate_type: String },
    #[error(
        "threshold for predicate type `{predicate_type}` needs {required} signers but the trust root has only {signers} signer rules, so it could never be met"
    )]
    ThresholdUnreachable { predicate_type: String, required: u64, signers: usize },
    #[error("predicate type `{predicate_type}` has two thresholds; keep one")]
    DuplicateThreshold { predicate_type: String },

    // Revocations.
    #[error(
        "revocation names key `{keyid}`, which is not in `keys`; keep a revoked key's public key in `keys` so the revocation applies to it in every encoding"
    )]
    UnknownRevokedKey { keyid: KeyId },
    #[error("key `{keyid}` is revoked twice; keep one revocation")]
    DuplicateRevocation { keyid: KeyId },
    #[error("revocation of key `{keyid}` needs a reason of 1 to 512 characters on one line")]
    RevocationReason { keyid: KeyId },

    // Signatures on the document.
    #[error("trust root signature `sig` by key `{keyid}` is not standard base64")]
    SignatureBase64 { keyid: KeyId },

    // Verification (TUF 5.3).
    #[error(
        "trust root version {version} is signed by {got} of the root keys of trusted version {trusted_version}; it needs {required}: a new version must be signed by a threshold of the previous version's root keys; collect their signatures with `airlock trust sign`"
    )]
    NotSignedByTrustedRoot { version: u64, trusted_version: u64, got: usize, required: u32 },
    #[error(
        "trust root version {version} is signed by {got} of its own root keys; it needs {required}; collect more signatures with `airlock trust sign`"
    )]
    NotSelfSigned { version: u64, got: usize, required: u32 },
    #[error(
        "trust root version {found} does not follow trusted version {trusted}; versions are applied one at a time, so apply version {expected} first"
    )]
    VersionNotNext { trusted: u64, found: u64, expected: u64 },
    #[error(
        "trust root version {version} expired at {expired_at}; nothing it lists is trusted until a new version with a later `expires`, signed by the root keys, is applied with `airlock trust apply`"
    )]
    Expired { version: u64, expired_at: String },

    // Signing.
    #[error("trust root is already signed by key `{keyid}`")]
    AlreadySigned { keyid: KeyId },
    #[error("signing the trust root with key `{keyid}` failed: {source}")]
    Sign {
        keyid: KeyId,
        #[source]
        source: SignatureError,
    },
}
