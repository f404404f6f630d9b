//! Why a token was not minted or was refused: one variant per verification step, each naming
//! what a person needs to act on it.

use ed25519_dalek::pkcs8;

use super::TokenKind;

/// Why a token or a key was refused. Messages quote untrusted input in backticks, cut to one short
/// line, and never include key material.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token is longer than [`MAX_TOKEN_BYTES`](super::MAX_TOKEN_BYTES); refused before
    /// parsing.
    #[error("token is {len} bytes, over the {max}-byte limit; send the token exactly as it was issued")]
    TooLarge {
        /// Length of the token, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is not a JWS compact serialization of JSON objects: wrong number of parts, bad
    /// base64url, JSON that does not parse, or a claim of the wrong type.
    #[error("token is malformed ({part}: {reason}); send the token exactly as it was issued")]
    Malformed {
        /// Which part: `compact serialization`, `header`, `payload` or `signature`.
        part: &'static str,
        /// What is wrong with it, untrusted input quoted and cut short.
        reason: String,
    },
    /// The header lists `crit` extensions (RFC 7515 §4.1.11), none of which Airlock implements.
    #[error(
        "token header marks extensions critical (`crit`) that airlock does not implement; request a token without them"
    )]
    CriticalHeader,
    /// The header's `alg` is not an accepted algorithm (`none`, HMAC and the like are never).
    #[error("token algorithm `{alg}` is not accepted; {allowed}")]
    Algorithm {
        /// The `alg` the token names, quoted and cut short.
        alg: String,
        /// Which algorithms are accepted, as a sentence fragment.
        allowed: &'static str,
    },
    /// The header names no key (`kid`).
    #[error("token header names no key (`kid`); request a new token from its issuer")]
    MissingKeyId,
    /// The `kid` is not among Airlock's token verifying keys (never was, or rotated out).
    #[error("token key `{kid}` is not a current airlock token key; request a new token")]
    UnknownKey {
        /// The `kid` the token names, quoted and cut short.
        kid: String,
    },
    /// The signature does not verify under the key the `kid` names.
    #[error("token signature does not verify under key `{kid}`; request a new token from its issuer")]
    BadSignature {
        /// The key's id.
        kid: String,
    },
    /// The `iss` claim is not this verifier's issuer.
    #[error("token issuer is `{found}`, not `{expected}`; request a token from `{expected}`")]
    Issuer {
        /// The issuer this verifier accepts.
        expected: String,
        /// The token's `iss`, quoted and cut short.
        found: String,
    },
    /// The `aud` claim does not name this verifier's audience.
    #[error("token audience is `{found}`, not `{expected}`; request a token for `{expected}`")]
    Audience {
        /// The audience this verifier accepts.
        expected: String,
        /// The token's `aud`, quoted and cut short.
        found: String,
    },
    /// A required claim is absent.
    #[error("token has no `{claim}` claim; request a new token from its issuer")]
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// The token expired longer ago than the leeway allows.
    #[error("token expired at {exp}, {ago} s ago (leeway {leeway} s); request a new token", ago = now.saturating_sub(*exp))]
    Expired {
        /// The `exp` claim, in seconds since the Unix epoch.
        exp: u64,
        /// This server's time, in seconds since the Unix epoch.
        now: u64,
        /// The clock skew allowed, in seconds.
        leeway: u64,
    },
    /// The token's `nbf` or `iat` is further in the future than the leeway allows.
    #[error(
        "token `{claim}` is {at}, {ahead} s ahead of this server's clock (leeway {leeway} s); check the clocks of the issuer and this server",
        ahead = at.saturating_sub(*now)
    )]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// The claim's value, in seconds since the Unix epoch.
        at: u64,
        /// This server's time, in seconds since the Unix epoch.
        now: u64,
        /// The clock skew allowed, in seconds.
        leeway: u64,
    },
    /// The token lives longer (`exp` minus `iat`) than tokens of its kind may.
    #[error("`{kind}` token lives {lifetime} s, over the {max} s limit for its kind; request a new token")]
    Lifetime {
        /// The token's kind.
        kind: TokenKind,
        /// `exp` minus `iat`, in seconds.
        lifetime: u64,
        /// The limit for the kind: [`TokenKind::ttl_secs`].
        max: u64,
    },
    /// A registry token was presented where an API token is required, or the other way round.
    #[error("token kind is `{found}`, but `{expected}` is required here; request a token of kind `{expected}`")]
    KindMismatch {
        /// The kind this call requires.
        expected: TokenKind,
        /// The token's `kind` claim.
        found: TokenKind,
    },
    /// The principal is unknown or disabled.
    #[error("principal `{sub}` is unknown or disabled; ask an administrator to enable it, then request a new token")]
    UnknownPrincipal {
        /// The token's `sub`, quoted and cut short.
        sub: String,
    },
    /// The principal's roles or credentials changed since the token was issued.
    #[error(
        "token for `{sub}` was issued at epoch {token_epoch}, but the principal is now at epoch {live_epoch} (its roles or credentials changed); request a new token"
    )]
    StaleEpoch {
        /// The token's `sub`, quoted and cut short.
        sub: String,
        /// The `epoch` claim.
        token_epoch: u64,
        /// The principal's epoch now.
        live_epoch: u64,
    },
    /// A token signing key is not an Ed25519 PKCS#8 private key (or its embedded public key does
    /// not match).
    #[error(
        "token signing key is not an ed25519 pkcs#8 private key: {source}; generate one with `openssl genpkey -algorithm ed25519`"
    )]
    PrivateKey {
        /// What the PKCS#8 decoder said.
        #[source]
        source: pkcs8::Error,
    },
    /// A token signing key could not be written as PKCS#8.
    #[error("cannot encode the token signing key as pkcs#8: {source}")]
    PrivateKeyEncode {
        /// What the PKCS#8 encoder said.
        #[source]
        source: pkcs8::Error,
    },
    /// A token verifying key is not an Ed25519 SubjectPublicKeyInfo.
    #[error(
        "token verifying key is not an ed25519 subjectPublicKeyInfo: {source}; export it with `openssl pkey -pubout -outform der`"
    )]
    PublicKey {
        /// What the SPKI decoder said.
        #[source]
        source: pkcs8::spki::Error,
    },
    /// A token verifying key has small order, so it would verify forged signatures.
    #[error("token verifying key has small order, so it would verify forged signatures; generate a new key")]
    WeakKey,
    /// The claims could not be written as JSON.
    #[error("cannot encode token claims as json: {source}")]
    Encode {
        /// What the JSON encoder said.
        #[source]
        source: serde_json::Error,
    },
    /// A JWKS document is larger than [`MAX_JWKS_BYTES`](super::oidc::MAX_JWKS_BYTES).
    #[error("jwks is {len} bytes, over the {max}-byte limit; check that the url serves the issuer's jwks")]
    JwksTooLarge {
        /// Length of the document, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A JWKS document holds more keys than [`MAX_JWKS_KEYS`](super::oidc::MAX_JWKS_KEYS).
    #[error("jwks holds {count} keys, over the limit of {max}; check that the url serves the issuer's jwks")]
    JwksTooManyKeys {
        /// How many keys it holds.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A JWKS document is not a JSON Web Key Set (RFC 7517 §5).
    #[error("jwks is not a json web key set (rfc 7517 §5): {reason}; check that the url serves the issuer's jwks")]
    JwksMalformed {
        /// What the JSON decoder said, cut short.
        reason: String,
    },
    /// A JWKS document holds two keys with one `kid`, so a token's `kid` would be ambiguous.
    #[error("jwks holds key `{kid}` more than once; check that the url serves the issuer's jwks")]
    JwksDuplicateKid {
        /// The repeated key id, quoted and cut short.
        kid: String,
    },
    /// The (unverified) `iss` of a CI token names no configured issuer.
    #[error(
        "ci token issuer `{iss}` is not configured; add an oidc issuer for it, or request a token from a configured one"
    )]
    UnknownIssuer {
        /// The token's `iss`, quoted and cut short.
        iss: String,
    },
    /// A CI token's `kid` is not in its issuer's JWKS.
    #[error("key `{kid}` is not in the jwks of `{issuer}`; refresh the jwks from the issuer's `jwks_uri`")]
    UnknownJwk {
        /// The configured issuer.
        issuer: String,
        /// The token's `kid`, quoted and cut short.
        kid: String,
    },
    /// A CI token's `alg` does not fit the type of the JWK its `kid` names (or the JWK's own
    /// `alg`).
    #[error(
        "token algorithm `{alg}` does not fit key `{kid}` of `{issuer}` ({key}); the token was not signed by that key"
    )]
    KeyTypeMismatch {
        /// The configured issuer.
        issuer: String,
        /// The key's id.
        kid: String,
        /// The token's `alg`.
        alg: &'static str,
        /// What the key is, e.g. `an rsa key` or `a key for `RS256``.
        key: String,
    },
    /// The JWK a CI token's `kid` names cannot verify anything: wrong lengths, too short an RSA
    /// modulus, a weak key, or a key not meant for signatures.
    #[error(
        "key `{kid}` in the jwks of `{issuer}` is unusable ({reason}); ask the issuer's operator or refresh the jwks"
    )]
    InvalidJwk {
        /// The configured issuer.
        issuer: String,
        /// The key's id.
        kid: String,
        /// What is wrong with the key.
        reason: String,
    },
    /// A verified CI token matches no claim rule, so it maps to no service account.
    #[error(
        "no claim rule maps `{subject}` from `{issuer}` to a service account; add a rule whose claims match the token's"
    )]
    NoClaimRule {
        /// The configured issuer.
        issuer: String,
        /// The token's `sub`, quoted and cut short.
        subject: String,
    },
}
