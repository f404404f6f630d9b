//! CI workload identity: OIDC ID tokens that CI systems (GitHub Actions, GitLab CI) sign for a
//! job, verified against the issuer's JWKS and mapped by claim rules to an Airlock service
//! account.
//!
//! The JWKS arrives as bytes: fetching `jwks_uri` is the caller's job, and so is refreshing it.
//! Only asymmetric algorithms are accepted (`RS256`, `ES256`, `EdDSA`), each only with a key of
//! its own type; the clock is passed in; a rule maps a token only if every claim it names is a
//! string that its [`ClaimPattern`] matches: exactly, or by a glob whose `*` stays within one
//! `/`-segment (the repository pattern grammar, README.md "Repository patterns").

use std::collections::BTreeMap;

use airlock_model::pattern::{Pattern, PatternError, RepoPattern};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jws::{Compact, check_validity, echo};
use super::{MAX_LEEWAY_SECS, TokenError};

/// Largest JWKS document accepted, in bytes. GitHub's holds a few RSA keys in about 2 KiB.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most keys a JWKS may hold.
pub const MAX_JWKS_KEYS: usize = 32;
/// Smallest RSA modulus accepted, in bits (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits, which bounds the work of one verification.
pub const MAX_RSA_BITS: usize = 4096;
/// The algorithms a CI token may be signed with: asymmetric only.
pub const OIDC_ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// How [`TokenError::Algorithm`] says what CI tokens may use.
const ALLOWED: &str = "ci tokens must be signed with `RS256`, `ES256` or `EdDSA`";

/// A CI system whose tokens Airlock accepts: its issuer URL (`iss`), the audience its tokens must
/// name (`aud`), and its signing keys.
#[derive(Clone, Debug)]
pub struct OidcIssuer {
    issuer: String,
    audience: String,
    jwks: JwkSet,
}

impl OidcIssuer {
    /// An issuer with its JWKS (RFC 7517 §5) read from `jwks_json`, the document its `jwks_uri`
    /// serves. Refused: a document over [`MAX_JWKS_BYTES`] or holding over [`MAX_JWKS_KEYS`]
    /// keys, one that does not parse, or one that holds a `kid` twice.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks_json: &[u8],
    ) -> Result<OidcIssuer, TokenError> {
        if jwks_json.len() > MAX_JWKS_BYTES {
            return Err(TokenError::JwksTooLarge { len: jwks_json.len(), max: MAX_JWKS_BYTES });
        }
        let jwks: JwkSet = serde_json::from_slice(jwks_json)
            .map_err(|error| TokenError::JwksMalformed { reason: echo(&error.to_string()) })?;
        if jwks.keys.len() > MAX_JWKS_KEYS {
            return Err(TokenError::JwksTooManyKeys { count: jwks.keys.len(), max: MAX_JWKS_KEYS });
        }
        let mut seen = std::collections::BTreeSet::new();
        for kid in jwks.keys.iter().filter_map(|key| key.common.key_id.as_deref()) {
            if !seen.insert(kid) {
                return Err(TokenError::JwksDuplicateKid { kid: echo(kid) });
            }
        }
        Ok(OidcIssuer { issuer: issuer.into(), audience: audience.into(), jwks })
    }

    /// The issuer URL, exactly as its tokens' `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience its tokens must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Its signing keys.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }
}

/// Maps verified CI tokens of one issuer to a service account: every claim named must be present,
/// a string, and match its pattern: the exact value, or a glob whose `*` matches any run of
/// characters within one `/`-segment (`acme/*` matches `acme/app`, not `acme/app/x`). A rule that
/// names no claims matches nothing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    /// The issuer whose tokens this rule maps, exactly as [`OidcIssuer::issuer`].
    pub issuer: String,
    /// Claim name to pattern, e.g. `repository` to `acme/payments-api`.
    pub claims: BTreeMap<String, ClaimPattern>,
    /// The service account a matching token acts as.
    pub service_account: String,
    /// The API scopes it is granted; the repository pattern of a `repository:<pattern>:<actions>`
    /// scope is checked when the rule is read ([`check_scope`]).
    #[serde(default, deserialize_with = "checked_scopes")]
    pub scopes: Vec<String>,
}

/// The pattern a claim of a [`ClaimRule`] must match: a [`Pattern`] (any characters but control
/// ones, since claims name other systems' repositories and refs) without a final `**`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ClaimPattern(Pattern);

/// Why a claim pattern or a claim rule's scope was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimPatternError {
    /// Outside the pattern grammar.
    #[error(transparent)]
    Grammar(#[from] PatternError),
    /// A final `**`, which claim rules used to read as one segment.
    #[error(
        "pattern `{pattern}` ends in `**`, which in `access.claim_rules` used to match within one `/` segment and would now match every name below; write `*` for one segment"
    )]
    DoubleStar { pattern: String },
}

impl ClaimPattern {
    /// Parses a claim pattern: the pattern grammar, refusing a final `**` (see
    /// [`ClaimPatternError::DoubleStar`]).
    pub fn parse(text: &str) -> Result<ClaimPattern, ClaimPatternError> {
        let pattern = Pattern::parse(text)?;
        if pattern.ends_below() {
            return Err(ClaimPatternError::DoubleStar { pattern: echo(text) });
        }
        Ok(ClaimPattern(pattern))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the claim value `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        self.0.matches(value)
    }
}

impl TryFrom<String> for ClaimPattern {
    type Error = ClaimPatternError;

    fn try_from(text: String) -> Result<ClaimPattern, ClaimPatternError> {
        ClaimPattern::parse(&text)
    }
}

/// Checks the repository pattern of a `repository:<pattern>:<actions>` scope of a claim rule: a
/// [`RepoPattern`] over full repository names, refusing a final `**` as claim patterns do. Other
/// scopes pass unchanged.
pub fn check_scope(scope: &str) -> Result<(), ClaimPatternError> {
    let Some((pattern, _actions)) = scope.strip_prefix("repository:").and_then(|rest| rest.rsplit_once(':')) else {
        return Ok(());
    };
    let parsed = RepoPattern::parse(pattern)?;
    if parsed.pattern().ends_below() {
        return Err(ClaimPatternError::DoubleStar { pattern: echo(pattern) });
    }
    Ok(())
}

/// `scopes` of a claim rule, each checked with [`check_scope`].
fn checked_scopes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let scopes = Vec::<String>::deserialize(deserializer)?;
    for scope in &scopes {
        check_scope(scope).map_err(|e| serde::de::Error::custom(format!("scope `{}`: {e}", echo(scope))))?;
    }
    Ok(scopes)
}

impl ClaimRule {
    /// Whether this rule maps a token from `issuer` with these verified claims.
    fn matches(&self, issuer: &str, claims: &Map<String, Value>) -> bool {
        self.issuer == issuer
            && !self.claims.is_empty()
            && self.claims.iter().all(|(name, pattern)| {
                claims.get(name).and_then(Value::as_str).is_some_and(|value| pattern.matches(value))
            })
    }
}

/// Who a verified CI token is: its issuer and subject, the service account its rule maps it to,
/// and all its claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiIdentity {
    /// The configured issuer that signed the token.
    pub issuer: String,
    /// The token's `sub`, e.g. `repo:acme/payments-api:ref:refs/heads/main`.
    pub subject: String,
    /// The service account of the first matching rule.
    pub service_account: String,
    /// The scopes of that rule.
    pub scopes: Vec<String>,
    /// Every claim of the token, verified.
    pub claims: BTreeMap<String, Value>,
}

/// An algorithm a CI token may be signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CiAlgorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl CiAlgorithm {
    fn parse(alg: &str) -> Option<CiAlgorithm> {
        match alg {
            "RS256" => Some(CiAlgorithm::Rs256),
            "ES256" => Some(CiAlgorithm::Es256),
            "EdDSA" => Some(CiAlgorithm::EdDsa),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            CiAlgorithm::Rs256 => "RS256",
            CiAlgorithm::Es256 => "ES256",
            CiAlgorithm::EdDsa => "EdDSA",
        }
    }

    fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            CiAlgorithm::Rs256 => KeyAlgorithm::RS256,
            CiAlgorithm::Es256 => KeyAlgorithm::ES256,
            CiAlgorithm::EdDsa => KeyAlgorithm::EdDSA,
        }
    }
}

/// Verifies a CI system's OIDC ID token at `now_secs` (seconds since the Unix epoch) allowing
/// `leeway_secs` of clock skew (clamped to [`MAX_LEEWAY_SECS`]), and maps it by the first matching
/// rule to a service account. Each step has its own [`TokenError`]; no input panics.
pub fn verify_ci_token(
    token: &str,
    issuers: &[OidcIssuer],
    rules: &[ClaimRule],
    now_secs: u64,
    leeway_secs: u64,
) -> Result<CiIdentity, TokenError> {
    let leeway = leeway_secs.min(MAX_LEEWAY_SECS);
    // 1. Bound the work, split the compact serialization (RFC 7515 §7.1), parse the header.
    let parts = Compact::split(token)?;
    let header = parts.header()?;
    // 2. The `iss` claim, read before the signature is checked only to choose whose keys to check
    //    it with (OpenID Connect Core §3.1.3.7 step 2): it must name a configured issuer.
    let claims: Map<String, Value> = parts.payload()?;
    let iss = string_claim(&claims, "iss")?;
    let issuer = issuers
        .iter()
        .find(|issuer| issuer.issuer == iss)
        .ok_or_else(|| TokenError::UnknownIssuer { iss: echo(iss) })?;
    // 3. RFC 8725 §3.1: the algorithm is one of the asymmetric ones allowed.
    let alg = CiAlgorithm::parse(&header.alg)
        .ok_or_else(|| TokenError::Algorithm { alg: echo(&header.alg), allowed: ALLOWED })?;
    // 4. The `kid` names a key of that issuer, of the algorithm's type.
    let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
    let jwk = issuer
        .jwks
        .find(&kid)
        .ok_or_else(|| TokenError::UnknownJwk { issuer: issuer.issuer.clone(), kid: echo(&kid) })?;
    // 5. RFC 7515 §5.2 step 8: the signature over the bytes as received.
    verify_signature(issuer, &kid, jwk, alg, &parts)?;
    // 6. RFC 7519 §4.1.3: the audience is ours, alone or among others.
    check_audience(&claims, &issuer.audience)?;
    // 7. RFC 7519 §4.1.4-§4.1.6 against the injected clock: `exp` required, `nbf`, `iat` if given.
    let exp = time_claim(&claims, "exp")?.ok_or(TokenError::MissingClaim { claim: "exp" })?;
    check_validity(exp, time_claim(&claims, "nbf")?, time_claim(&claims, "iat")?, now_secs, leeway)?;
    // 8. The first rule of this issuer whose every claim matches gives the identity.
    let subject = string_claim(&claims, "sub")?;
    let rule = rules
        .iter()
        .find(|rule| rule.matches(&issuer.issuer, &claims))
        .ok_or_else(|| TokenError::NoClaimRule { issuer: issuer.issuer.clone(), subject: echo(subject) })?;
    Ok(CiIdentity {
        issuer: issuer.issuer.clone(),
        subject: subject.to_owned(),
        service_account: rule.service_account.clone(),
        scopes: rule.scopes.clone(),
        claims: claims.into_iter().collect(),
    })
}

/// A string claim: absent is [`TokenError::MissingClaim`], another type is malformed.
fn string_claim<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, TokenError> {
    match claims.get(name) {
        None => Err(TokenError::MissingClaim { claim: name }),
        Some(value) => value
            .as_str()
            .ok_or_else(|| TokenError::Malformed { part: "payload", reason: format!("`{name}` is not a string") }),
    }
}

/// A time claim (RFC 7519 §2 NumericDate), if present: whole seconds only.
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, TokenError> {
    claims
        .get(name)
        .map(|value| {
            value.as_u64().ok_or_else(|| TokenError::Malformed {
                part: "payload",
                reason: format!("`{name}` is not a whole number of seconds"),
            })
        })
        .transpose()
}

/// RFC 7519 §4.1.3: `aud` is the audience, or an array of strings that holds it.
fn check_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), TokenError> {
    let wrong = |found: String| TokenError::Audience { expected: audience.to_owned(), found: echo(&found) };
    match claims.get("aud") {
        None => Err(TokenError::MissingClaim { claim: "aud" }),
        Some(Value::String(aud)) if aud == audience => Ok(()),
        Some(Value::Array(auds)) if auds.iter().any(|aud| aud.as_str() == Some(audience)) => Ok(()),
        Some(Value::String(aud)) => Err(wrong(aud.clone())),
        Some(other) => Err(wrong(other.to_string())),
    }
}

/// Checks the token's signature with `jwk`: the key's type (and its `alg`, `use` if given) must
/// fit `alg`, and the key must be sound, before any cryptography runs.
fn verify_signature(
    issuer: &OidcIssuer,
    kid: &str,
    jwk: &Jwk,
    alg: CiAlgorithm,
    parts: &Compact<'_>,
) -> Result<(), TokenError> {
    let mismatch = |key: String| TokenError::KeyTypeMismatch {
        issuer: issuer.issuer.clone(),
        kid: echo(kid),
        alg: alg.as_str(),
        key,
    };
    let unusable = |reason: &str| TokenError::InvalidJwk {
        issuer: issuer.issuer.clone(),
        kid: echo(kid),
        reason: reason.to_owned(),
    };
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg != alg.key_algorithm()
    {
        return Err(mismatch(format!("a key for `{key_alg:?}`")));
    }
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
        return Err(unusable("its `use` is not `sig`"));
    }
    let verified = match (alg, &jwk.algorithm) {
        (CiAlgorithm::EdDsa, AlgorithmParameters::OctetKeyPair(okp)) if okp.curve == EllipticCurve::Ed25519 => {
            let x: [u8; 32] = decode_exact(&okp.x).ok_or_else(|| unusable("`x` is not 32 bytes of base64url"))?;
            let key = VerifyingKey::from_bytes(&x).map_err(|_| unusable("`x` is not a point on ed25519"))?;
            if key.is_weak() {
                return Err(unusable("it has small order, so it would verify forged signatures"));
            }
            let signature = parts.signature::<64>()?;
            key.verify_strict(parts.signing_input.as_bytes(), &Signature::from_bytes(&signature)).is_ok()
        }
        (CiAlgorithm::Es256, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
            if decode_exact::<32>(&ec.x).is_none() || decode_exact::<32>(&ec.y).is_none() {
                return Err(unusable("`x` or `y` is not 32 bytes of base64url"));
            }
            let key =
                DecodingKey::from_ec_components(&ec.x, &ec.y).map_err(|_| unusable("`x` and `y` are not base64url"))?;
            // RFC 7518 §3.4: `R || S`, 32 bytes each.
            parts.signature::<64>()?;
            verify_with(&key, parts, Algorithm::ES256).map_err(|_| unusable("it is not a point on p-256"))?
        }
        (CiAlgorithm::Rs256, AlgorithmParameters::RSA(rsa)) => {
            let n = URL_SAFE_NO_PAD.decode(&rsa.n).map_err(|_| unusable("`n` is not base64url"))?;
            let e = URL_SAFE_NO_PAD.decode(&rsa.e).map_err(|_| unusable("`e` is not base64url"))?;
            let bits = modulus_bits(&n);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(unusable(&format!(
                    "its modulus has {bits} bits; airlock accepts {MIN_RSA_BITS} to {MAX_RSA_BITS}"
                )));
            }
            if e.is_empty() || e.len() > 4 {
                return Err(unusable("its exponent is not 1 to 4 bytes"));
            }
            // RFC 8017 §8.2.2: as long as the modulus; the length is checked with the signature.
            parts.signature_bytes()?;
            let key = DecodingKey::from_rsa_raw_components(&n, &e);
            verify_with(&key, parts, Algorithm::RS256).map_err(|_| unusable("it is not a valid rsa public key"))?
        }
        (_, other) => return Err(mismatch(key_type(other))),
    };
    if verified { Ok(()) } else { Err(TokenError::BadSignature { kid: echo(kid) }) }
}

/// jsonwebtoken's verification of the signature with `key`: `Ok(false)` if it does not verify,
/// `Err` if the key is unusable (the signature's base64url was checked before).
fn verify_with(key: &DecodingKey, parts: &Compact<'_>, alg: Algorithm) -> Result<bool, jsonwebtoken::errors::Error> {
    jsonwebtoken::crypto::verify(parts.signature, parts.signing_input.as_bytes(), key, alg)
}

/// `text` decoded from base64url without padding, if it is exactly `N` bytes.
fn decode_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()
}

/// The bit length of a big-endian unsigned integer.
fn modulus_bits(n: &[u8]) -> usize {
    let significant = n.iter().position(|&byte| byte != 0).and_then(|start| n.get(start..)).unwrap_or_default();
    significant.first().map_or(0, |&top| {
        let top_bits = usize::try_from(u8::BITS.saturating_sub(top.leading_zeros())).unwrap_or(0);
        significant.len().saturating_sub(1).saturating_mul(8).saturating_add(top_bits)
    })
}

/// What a JWK is, for [`TokenError::KeyTypeMismatch`].
fn key_type(parameters: &AlgorithmParameters) -> String {
    match parameters {
        AlgorithmParameters::EllipticCurve(ec) => format!("an ec key on `{:?}`", ec.curve),
        AlgorithmParameters::RSA(_) => "an rsa key".to_owned(),
        AlgorithmParameters::OctetKey(_) => "a symmetric key".to_owned(),
        AlgorithmParameters::OctetKeyPair(okp) => format!("an okp key on `{:?}`", okp.curve),
        _ => "a key of an unknown type".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{ClaimPattern, check_scope, modulus_bits};

    fn glob_matches(pattern: &str, value: &str) -> bool {
        ClaimPattern::parse(pattern).is_ok_and(|p| p.matches(value))
    }

    #[test]
    fn globs_stay_within_a_segment() {
        let cases = [
            ("acme/payments-api", "acme/payments-api", true),
            ("acme/payments-api", "acme/payments-api-evil", false),
            ("acme/payments-api", "acme/payments-ap", false),
            ("acme/*", "acme/payments-api", true),
            ("acme/*", "acme/", true),
            ("acme/*", "acme/payments-api/x", false),
            ("acme/*", "evil/acme/x", false),
            ("refs/heads/main", "refs/heads/main2", false),
            ("refs/heads/*", "refs/heads/main", true),
            ("refs/heads/*", "refs/heads/feature/x", false),
            ("refs/heads/release-*", "refs/heads/release-1.2", true),
            ("refs/heads/release-*", "refs/heads/main", false),
            (
                "*/.github/workflows/release.yml@refs/heads/main",
                "acme/.github/workflows/release.yml@refs/heads/main",
                true,
            ),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*", "", true),
            ("*", "a/b", false),
            // The empty pattern is refused (below), so it matches nothing.
            ("", "", false),
            ("", "x", false),
            ("é*", "éü", true),
            ("*ü", "éü", true),
            ("ac*", "ab", false),
        ];
        for (pattern, value, expected) in cases {
            assert_eq!(glob_matches(pattern, value), expected, "`{pattern}` against `{value}`");
        }
    }

    /// Claim rules read `**` as one segment before the grammar was shared: refused, not widened.
    #[test]
    fn patterns_that_would_change_meaning_are_refused() {
        let refused = |text: &str| ClaimPattern::parse(text).unwrap_err().to_string();
        assert_eq!(
            refused("refs/heads/**"),
            "pattern `refs/heads/**` ends in `**`, which in `access.claim_rules` used to match within one `/` segment and would now match every name below; write `*` for one segment"
        );
        assert!(refused("**").starts_with("pattern `**` ends in `**`"));
        assert!(refused("refs/**/main").contains("other than as its whole last segment"));
        assert!(refused("").starts_with("pattern is empty"));
        assert!(refused("a\nb").contains("control character"));
        assert!(check_scope("repository:dev/payments/*:pull,push").is_ok());
        assert!(check_scope("promotions:write").is_ok());
        assert!(
            check_scope("repository:dev/**:pull").unwrap_err().to_string().starts_with("pattern `dev/**` ends in `**`")
        );
        assert!(check_scope("repository:Dev/app:pull").unwrap_err().to_string().contains("lowercase letters"));
        assert!(check_scope("repository:dev/../prod/app:pull").is_err());
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(200);
        let value = "a".repeat(199) + "b";
        assert!(!glob_matches(&pattern, &value));
    }

    #[test]
    fn modulus_bit_lengths() {
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        assert_eq!(modulus_bits(&[0, 1]), 1);
        assert_eq!(modulus_bits(&[0x80; 256]), 2048);
        assert_eq!(modulus_bits(&[0x7f; 256]), 2047);
    }
}
