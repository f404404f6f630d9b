//! Airlock-signed tokens: EdDSA JWTs (RFC 7519, RFC 8037) that Airlock mints for registry clients
//! (Docker token authentication) and API callers, and verifies strictly against an injected
//! clock.
//!
//! A token names its signing key by `kid`, the hex SHA-256 of the key's SubjectPublicKeyInfo DER;
//! a [`Verifier`] holds the current and previous public keys, so keys rotate without refusing
//! tokens still alive. A token also carries its principal's `epoch`: a role change or a disabled
//! principal moves or removes the epoch, and every token issued before is refused at once.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use airlock_access::token::{
//!     Access, Claims, PrincipalKind, TokenKey, TokenKind, Verifier, VerifyingKeys, mint,
//! };
//!
//! let key = TokenKey::generate();
//! let now = 1_767_225_600;
//! let mut claims =
//!     Claims::new("https://airlock.example.com", "airlock-registry", "alice", PrincipalKind::User, 3, TokenKind::Registry, now);
//! claims.access.push(Access { kind: "repository".into(), name: "dev/app".into(), actions: vec!["pull".into()] });
//! let token = mint(&key, &claims)?;
//!
//! let keys: VerifyingKeys = [key.public().clone()].into_iter().collect();
//! let verifier = Verifier::new(keys, "https://airlock.example.com", "airlock-registry");
//! let epochs = BTreeMap::from([("alice".to_owned(), 3)]);
//! assert_eq!(verifier.verify(&token, TokenKind::Registry, now + 10, &epochs)?, claims);
//! # Ok::<(), airlock_access::token::TokenError>(())
//! ```
//!
//! CI workload identity, tokens that GitHub Actions or GitLab sign, is in [`oidc`].

mod error;
mod jws;
mod key;
pub mod oidc;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use error::TokenError;
use jws::{Compact, check_validity, echo};
pub use key::{TokenKey, TokenPublicKey, VerifyingKeys};

/// Lifetime of a registry token, in seconds: Docker clients fetch a new one per operation.
pub const REGISTRY_TOKEN_TTL_SECS: u64 = 300;
/// Lifetime of an API token, in seconds.
pub const API_TOKEN_TTL_SECS: u64 = 900;
/// The most clock skew a [`Verifier`] allows, in seconds, and its default.
pub const MAX_LEEWAY_SECS: u64 = 60;
/// Longest token accepted, in bytes, checked before anything is parsed. An Airlock token with a
/// handful of access entries is under 1 KiB; a GitHub Actions OIDC token is about 1.5 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The one algorithm Airlock signs its tokens with (RFC 8037 §3.1).
const ALGORITHM: &str = "EdDSA";

/// What a token is for. A token of one kind is refused where the other is required.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A Docker registry token (`/token`), carrying `access` entries.
    Registry,
    /// An Airlock API token, carrying `scopes`.
    Api,
}

impl TokenKind {
    /// The claim's value: `registry` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Registry => "registry",
            TokenKind::Api => "api",
        }
    }

    /// The longest a token of this kind may live (`exp` minus `iat`), in seconds.
    pub fn ttl_secs(self) -> u64 {
        match self {
            TokenKind::Registry => REGISTRY_TOKEN_TTL_SECS,
            TokenKind::Api => API_TOKEN_TTL_SECS,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a token's subject is (`user` or `service_account` on the wire).
pub use airlock_model::PrincipalKind;

/// One entry of a registry token's `access` claim, in the shape of Docker's token authentication
/// specification: `{"type": "repository", "name": "dev/app", "actions": ["pull", "push"]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// The resource type, e.g. `repository`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource name, e.g. `dev/app`.
    pub name: String,
    /// The actions granted on it, e.g. `pull`.
    pub actions: Vec<String>,
}

/// The claims of an Airlock token. Unknown claims are ignored when verifying; a claim given twice
/// is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the Airlock that minted the token.
    pub iss: String,
    /// Audience: the one service the token is for.
    pub aud: String,
    /// Subject: the principal's id.
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Not before, in seconds since the Unix epoch.
    pub nbf: u64,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: u64,
    /// Token id: 128 random bits in lowercase hex.
    pub jti: String,
    /// What the token is for.
    pub kind: TokenKind,
    /// Whether the subject is a user or a service account.
    pub principal_kind: PrincipalKind,
    /// The principal's epoch when the token was issued.
    pub epoch: u64,
    /// Registry access granted (Docker's `access` claim); empty for API tokens.
    #[serde(default)]
    pub access: Vec<Access>,
    /// API scopes granted; may be empty.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When the principal last proved a second factor (Unix seconds), for API tokens issued
    /// after one; decisions that need a fresh second factor compare it with their window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_at: Option<u64>,
}

impl Claims {
    /// Claims issued at `now_secs` for the full lifetime of `kind`, with a fresh `jti` and no
    /// access or scopes yet.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        subject: impl Into<String>,
        principal_kind: PrincipalKind,
        epoch: u64,
        kind: TokenKind,
        now_secs: u64,
    ) -> Claims {
        Claims {
            iss: issuer.into(),
            aud: audience.into(),
            sub: subject.into(),
            exp: now_secs.saturating_add(kind.ttl_secs()),
            nbf: now_secs,
            iat: now_secs,
            jti: new_jti(),
            kind,
            principal_kind,
            epoch,
            access: Vec::new(),
            scopes: Vec::new(),
            mfa_at: None,
        }
    }
}

/// A fresh token id: 128 bits from the operating system's random number generator, in lowercase
/// hex.
pub fn new_jti() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The claims as they arrive, the time claims optional so their absence has its own error.
#[derive(Deserialize)]
struct ReceivedClaims {
    iss: String,
    aud: String,
    sub: String,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: String,
    kind: TokenKind,
    principal_kind: PrincipalKind,
    epoch: u64,
    #[serde(default)]
    access: Vec<Access>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    mfa_at: Option<u64>,
}

/// The JOSE header Airlock writes: `{"alg":"EdDSA","typ":"JWT","kid":...}`.
#[derive(Serialize)]
struct MintedHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// Signs `claims` with `key` as a JWT: `{"alg":"EdDSA","typ":"JWT","kid":...}`. Refuses claims
/// that live longer than their kind allows, or that would make a token a [`Verifier`] refuses for
/// its size.
pub fn mint(key: &TokenKey, claims: &Claims) -> Result<String, TokenError> {
    let lifetime = claims.exp.saturating_sub(claims.iat);
    if lifetime > claims.kind.ttl_secs() {
        return Err(TokenError::Lifetime { kind: claims.kind, lifetime, max: claims.kind.ttl_secs() });
    }
    let header = serde_json::to_vec(&MintedHeader { alg: ALGORITHM, typ: "JWT", kid: key.kid() })
        .map_err(|source| TokenError::Encode { source })?;
    let payload = serde_json::to_vec(claims).map_err(|source| TokenError::Encode { source })?;
    let mut token = String::with_capacity(256);
    URL_SAFE_NO_PAD.encode_string(header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature = key.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge { len: token.len(), max: MAX_TOKEN_BYTES });
    }
    Ok(token)
}

/// Where a verifier reads a principal's live epoch. The epoch moves whenever the principal's roles
/// or credentials change, so tokens issued before are refused.
pub trait EpochSource {
    /// The principal's epoch now, or `None` if it is unknown or disabled (its tokens are then
    /// refused).
    fn live_epoch(&self, subject: &str) -> Option<u64>;
}

impl<S: BuildHasher> EpochSource for HashMap<String, u64, S> {
    fn live_epoch(&self, subject: &str) -> Option<u64> {
        self.get(subject).copied()
    }
}

impl EpochSource for BTreeMap<String, u64> {
    fn live_epoch(&self, subject: &str) -> Option<u64> {
        self.get(subject).copied()
    }
}

/// Verifies Airlock tokens for one issuer and audience under a set of keys. The clock is always
/// passed in; verification never reads the system time.
///
/// A token is usually presented many times in its short life (a registry client sends it with
/// every request), so a verifier remembers the digests of the last [`SIGNATURES_REMEMBERED`]
/// tokens whose signature verified under its keys, and skips only that one step for them: the
/// bytes must be identical, and every other check (issuer, audience, lifetime, kind, epoch)
/// runs each time. The memory belongs to this set of keys; a verifier with other keys starts
/// empty.
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: VerifyingKeys,
    issuer: String,
    audience: String,
    leeway_secs: u64,
    verified: Arc<VerifiedSignatures>,
}

/// How many tokens whose signatures verified a [`Verifier`] remembers (32 bytes each). Past
/// this the memory starts again.
pub const SIGNATURES_REMEMBERED: usize = 8192;

/// The SHA-256 digests of tokens whose signature verified, bounded by [`SIGNATURES_REMEMBERED`].
#[derive(Debug, Default)]
struct VerifiedSignatures(Mutex<HashSet<[u8; 32]>>);

impl VerifiedSignatures {
    fn contains(&self, digest: &[u8; 32]) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).contains(digest)
    }

    fn insert(&self, digest: [u8; 32]) {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= SIGNATURES_REMEMBERED {
            seen.clear();
        }
        seen.insert(digest);
    }
}

impl Verifier {
    /// A verifier with the default leeway, [`MAX_LEEWAY_SECS`].
    pub fn new(keys: VerifyingKeys, issuer: impl Into<String>, audience: impl Into<String>) -> Verifier {
        Verifier {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: MAX_LEEWAY_SECS,
            verified: Arc::default(),
        }
    }

    /// The same verifier allowing `leeway_secs` of clock skew, clamped to [`MAX_LEEWAY_SECS`].
    #[must_use]
    pub fn with_leeway(mut self, leeway_secs: u64) -> Verifier {
        self.leeway_secs = leeway_secs.min(MAX_LEEWAY_SECS);
        self
    }

    /// The keys it accepts.
    pub fn keys(&self) -> &VerifyingKeys {
        &self.keys
    }

    /// The `iss` it requires.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` it requires.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The clock skew it allows, in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }

    /// Verifies `token` as a token of kind `expected` at `now_secs` (seconds since the Unix
    /// epoch) and returns its claims. Each step has its own [`TokenError`]; no input panics.
    pub fn verify(
        &self,
        token: &str,
        expected: TokenKind,
        now_secs: u64,
        epochs: &impl EpochSource,
    ) -> Result<Claims, TokenError> {
        // 1. Bound the work, then split the compact serialization (RFC 7515 §7.1).
        let parts = Compact::split(token)?;
        // 2. RFC 7515 §5.2 steps 2-4: the header, and RFC 8725 §3.1: its `alg` is exactly the one
        //    Airlock signs with, never taken from the token's say-so (`none`, HMAC keyed with the
        //    public key, RSA, ECDSA).
        let header = parts.header()?;
        if header.alg != ALGORITHM {
            return Err(TokenError::Algorithm {
                alg: echo(&header.alg),
                allowed: "airlock tokens are signed with `EdDSA`; request a token from airlock",
            });
        }
        // 3. The `kid` names one of the verifying keys.
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let key = self.keys.get(&kid).ok_or_else(|| TokenError::UnknownKey { kid: echo(&kid) })?;
        // 4. RFC 7515 §5.2 step 8: the signature over the bytes as received, or these very
        //    bytes verified under these keys before.
        let signature = parts.signature::<64>()?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if !self.verified.contains(&digest) {
            if !key.verifies(parts.signing_input.as_bytes(), &signature) {
                return Err(TokenError::BadSignature { kid: key.kid().to_owned() });
            }
            self.verified.insert(digest);
        }
        // 5. RFC 7519 §7.2 step 10: the claims, only now that they are known to be Airlock's.
        let claims: ReceivedClaims = parts.payload()?;
        // 6. RFC 7519 §4.1.1 and §4.1.3: this issuer, this audience.
        if claims.iss != self.issuer {
            return Err(TokenError::Issuer { expected: self.issuer.clone(), found: echo(&claims.iss) });
        }
        if claims.aud != self.audience {
            return Err(TokenError::Audience { expected: self.audience.clone(), found: echo(&claims.aud) });
        }
        // 7. RFC 7519 §4.1.4-§4.1.6 against the injected clock: all three time claims present.
        let exp = claims.exp.ok_or(TokenError::MissingClaim { claim: "exp" })?;
        let nbf = claims.nbf.ok_or(TokenError::MissingClaim { claim: "nbf" })?;
        let iat = claims.iat.ok_or(TokenError::MissingClaim { claim: "iat" })?;
        check_validity(exp, Some(nbf), Some(iat), now_secs, self.leeway_secs)?;
        let lifetime = exp.saturating_sub(iat);
        if lifetime > claims.kind.ttl_secs() {
            return Err(TokenError::Lifetime { kind: claims.kind, lifetime, max: claims.kind.ttl_secs() });
        }
        // 8. RFC 8725 §3.12: a registry token is not an API token, nor the other way round.
        if claims.kind != expected {
            return Err(TokenError::KindMismatch { expected, found: claims.kind });
        }
        // 9. The principal exists, is enabled, and its roles have not changed since.
        let live_epoch =
            epochs.live_epoch(&claims.sub).ok_or_else(|| TokenError::UnknownPrincipal { sub: echo(&claims.sub) })?;
        if live_epoch != claims.epoch {
            return Err(TokenError::StaleEpoch { sub: echo(&claims.sub), token_epoch: claims.epoch, live_epoch });
        }
        Ok(Claims {
            iss: claims.iss,
            aud: claims.aud,
            sub: claims.sub,
            exp,
            nbf,
            iat,
            jti: claims.jti,
            kind: claims.kind,
            principal_kind: claims.principal_kind,
            epoch: claims.epoch,
            access: claims.access,
            scopes: claims.scopes,
            mfa_at: claims.mfa_at,
        })
    }
}
