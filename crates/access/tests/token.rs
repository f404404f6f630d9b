//! Airlock-signed tokens and CI workload-identity tokens: round trips, interop with jsonwebtoken
//! as an independent JWT implementation, one test per attack asserting its own refusal, OIDC
//! fixtures signed by pyca/cryptography (`tests/data/oidc/generate.py`), and property tests that
//! no input panics and no change to a valid token is accepted.
//!
//! The injected clock is 2026-01-01, long before this suite runs: a verifier that read the system
//! clock would refuse every token here as expired.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airlock_access::token::{
    API_TOKEN_TTL_SECS, Access, Claims, EpochSource, MAX_LEEWAY_SECS, MAX_TOKEN_BYTES, PrincipalKind,
    REGISTRY_TOKEN_TTL_SECS, TokenError, TokenKey, TokenKind, TokenPublicKey, Verifier, VerifyingKeys, mint,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use expect_test::expect;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// 2026-01-01T00:00:00Z: the injected clock.
const NOW: u64 = 1_767_225_600;
const ISSUER: &str = "https://airlock.example.com";
const AUDIENCE: &str = "airlock-registry";
const ALICE: &str = "alice";
const ALICE_EPOCH: u64 = 7;
/// The RFC 8032 §7.1 TEST 1 secret key, so key ids in the pinned messages stay put.
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(path)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An Ed25519 PKCS#8 v1 private key (RFC 8410 §7) with this seed.
fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let prefix = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    [&prefix[..], seed].concat()
}

fn fixed_key() -> TokenKey {
    TokenKey::from_pkcs8_der(&pkcs8(&hex::decode(SEED).unwrap().try_into().unwrap())).unwrap()
}

fn verifier_for(keys: &[&TokenKey]) -> Verifier {
    Verifier::new(keys.iter().map(|key| key.public().clone()).collect(), ISSUER, AUDIENCE)
}

fn epochs() -> BTreeMap<String, u64> {
    BTreeMap::from([(ALICE.to_owned(), ALICE_EPOCH), ("bob".to_owned(), 1)])
}

/// Registry claims for alice issued at `NOW`, with three access entries.
fn registry_claims() -> Claims {
    let mut claims = Claims::new(ISSUER, AUDIENCE, ALICE, PrincipalKind::User, ALICE_EPOCH, TokenKind::Registry, NOW);
    claims.access = vec![
        Access { kind: "repository".into(), name: "dev/app".into(), actions: vec!["pull".into(), "push".into()] },
        Access { kind: "repository".into(), name: "staging/app".into(), actions: vec!["pull".into()] },
        Access { kind: "repository".into(), name: "prod/app".into(), actions: vec!["pull".into()] },
    ];
    claims
}

fn api_claims() -> Claims {
    let mut claims = Claims::new(ISSUER, AUDIENCE, ALICE, PrincipalKind::User, ALICE_EPOCH, TokenKind::Api, NOW);
    claims.scopes = vec!["promotions:write".into()];
    claims
}

/// Verifies as a registry token at `now` under the fixed key.
fn verify_at(token: &str, now: u64) -> Result<Claims, TokenError> {
    verifier_for(&[&fixed_key()]).verify(token, TokenKind::Registry, now, &epochs())
}

fn verify(token: &str) -> Result<Claims, TokenError> {
    verify_at(token, NOW + 10)
}

/// A JWS signed by `key` over exactly these header and payload JSON texts, for claims `mint`
/// would never write.
fn sign_raw(key: &TokenKey, header: &str, payload: &str) -> String {
    let signing = ed25519_dalek::SigningKey::from_pkcs8_der(key.to_pkcs8_der().unwrap().as_bytes()).unwrap();
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = signing.sign(input.as_bytes());
    format!("{input}.{}", b64(signature.to_bytes()))
}

fn airlock_header(key: &TokenKey) -> String {
    json!({"alg": "EdDSA", "typ": "JWT", "kid": key.kid()}).to_string()
}

/// `registry_claims()` as JSON with `change` applied, signed by the fixed key.
fn signed_with(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let key = fixed_key();
    let mut payload = serde_json::to_value(registry_claims()).unwrap();
    change(payload.as_object_mut().unwrap());
    sign_raw(&key, &airlock_header(&key), &payload.to_string())
}

fn token_parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

// Round trips and keys.

#[test]
fn registry_token_round_trips() {
    let claims = registry_claims();
    let token = mint(&fixed_key(), &claims).unwrap();
    assert_eq!(verify(&token).unwrap(), claims);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&token_parts(&token)[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "EdDSA", "typ": "JWT", "kid": fixed_key().kid()}));
    assert_eq!(claims.exp - claims.iat, REGISTRY_TOKEN_TTL_SECS);
    assert_eq!(claims.jti.len(), 32);
    assert!(claims.jti.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}

#[test]
fn api_token_round_trips() {
    let claims = api_claims();
    let token = mint(&fixed_key(), &claims).unwrap();
    let verified = verifier_for(&[&fixed_key()]).verify(&token, TokenKind::Api, NOW, &epochs()).unwrap();
    assert_eq!(verified, claims);
    assert_eq!(claims.exp - claims.iat, API_TOKEN_TTL_SECS);
}

#[test]
fn claims_are_docker_shaped_on_the_wire() {
    let payload = serde_json::to_value(registry_claims()).unwrap();
    assert_eq!(payload["kind"], "registry");
    assert_eq!(payload["principal_kind"], "user");
    assert_eq!(payload["access"][0], json!({"type": "repository", "name": "dev/app", "actions": ["pull", "push"]}));
    let mut service = api_claims();
    service.principal_kind = PrincipalKind::ServiceAccount;
    assert_eq!(serde_json::to_value(service).unwrap()["principal_kind"], "service_account");
}

#[test]
fn unknown_claims_are_harmless() {
    let token = signed_with(|claims| {
        claims.insert("admin".into(), json!(true));
        claims.insert("groups".into(), json!(["root"]));
    });
    assert_eq!(verify(&token).unwrap(), registry_claims_of(&token));
}

/// The claims of a token as minted (for tokens built by `signed_with`).
fn registry_claims_of(token: &str) -> Claims {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&token_parts(token)[1]).unwrap()).unwrap()
}

#[test]
fn kid_is_the_sha256_of_the_spki_der() {
    let key = TokenKey::generate();
    // ed25519-dalek's own SPKI encoder, independent of Airlock's.
    let der = ed25519_dalek::VerifyingKey::from_bytes(key.public().as_bytes()).unwrap().to_public_key_der().unwrap();
    assert_eq!(key.public().to_spki_der(), der.as_bytes());
    assert_eq!(key.kid(), hex::encode(Sha256::digest(der.as_bytes())));
    assert_eq!(key.kid(), key.public().kid());
    assert_eq!(TokenPublicKey::from_spki_der(der.as_bytes()).unwrap(), *key.public());
    assert_ne!(TokenKey::generate().kid(), key.kid());
}

#[test]
fn pkcs8_round_trips() {
    let key = TokenKey::generate();
    let again = TokenKey::from_pkcs8_der(key.to_pkcs8_der().unwrap().as_bytes()).unwrap();
    assert_eq!(again.kid(), key.kid());
    let token = mint(&again, &registry_claims()).unwrap();
    assert!(verifier_for(&[&key]).verify(&token, TokenKind::Registry, NOW, &epochs()).is_ok());
    assert!(matches!(TokenKey::from_pkcs8_der(b"not a key"), Err(TokenError::PrivateKey { .. })));
    assert!(matches!(TokenPublicKey::from_spki_der(b"not a key"), Err(TokenError::PublicKey { .. })));
    // Debug never shows key material.
    assert_eq!(format!("{key:?}"), format!("TokenKey {{ kid: {:?}, .. }}", key.kid()));
}

#[test]
fn small_order_public_keys_are_refused() {
    // The identity point: it "verifies" a forged signature for every message.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let der = [&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], &identity].concat();
    assert!(matches!(TokenPublicKey::from_spki_der(&der), Err(TokenError::WeakKey)));
}

// Interop with jsonwebtoken, an independent JWT implementation.

#[test]
fn jsonwebtoken_verifies_what_airlock_mints() {
    let key = fixed_key();
    let claims = registry_claims();
    let token = mint(&key, &claims).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false; // It would read the system clock.
    validation.required_spec_claims.clear();
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    let decoding = jsonwebtoken::DecodingKey::from_ed_der(key.public().as_bytes());
    let decoded = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).unwrap();
    assert_eq!(decoded.claims, claims);
    assert_eq!(decoded.header.kid.as_deref(), Some(key.kid()));
}

#[test]
fn airlock_verifies_what_jsonwebtoken_signs() {
    let key = fixed_key();
    let claims = registry_claims();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(key.kid().to_owned());
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes());
    let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
    assert_eq!(verify(&token).unwrap(), claims);
}

// Attacks on the header and signature.

#[test]
fn alg_none_is_refused() {
    let key = fixed_key();
    let payload = serde_json::to_string(&registry_claims()).unwrap();
    for header in [json!({"alg": "none", "kid": key.kid()}), json!({"alg": "none"})] {
        let token = format!("{}.{}.", b64(header.to_string()), b64(&payload));
        assert!(matches!(verify(&token), Err(TokenError::Algorithm { alg, .. }) if alg == "none"));
    }
    // Signed properly, but still naming `none`.
    let signed = sign_raw(&key, &json!({"alg": "none", "kid": key.kid()}).to_string(), &payload);
    assert!(matches!(verify(&signed), Err(TokenError::Algorithm { .. })));
}

/// The classic key-confusion attack: HS256 keyed with the public key, which a library that takes
/// the algorithm from the token would check with the verifying key's bytes as an HMAC secret.
#[test]
fn hs256_keyed_with_the_public_key_is_refused() {
    let key = fixed_key();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.kid().to_owned());
    for secret in [key.public().as_bytes().to_vec(), key.public().to_spki_der()] {
        let encoding = jsonwebtoken::EncodingKey::from_secret(&secret);
        let token = jsonwebtoken::encode(&header, &registry_claims(), &encoding).unwrap();
        assert!(matches!(verify(&token), Err(TokenError::Algorithm { alg, .. }) if alg == "HS256"));
    }
}

#[test]
fn other_algorithms_are_refused() {
    let key = fixed_key();
    let payload = serde_json::to_string(&registry_claims()).unwrap();
    for alg in ["RS256", "ES256", "PS256", "HS512", "ES384", "eddsa", "EdDSA ", "Ed25519"] {
        let token = sign_raw(&key, &json!({"alg": alg, "kid": key.kid()}).to_string(), &payload);
        assert!(matches!(verify(&token), Err(TokenError::Algorithm { .. })), "{alg}");
    }
}

/// `token` with one bit of its signature flipped, still canonical base64url.
fn flip_signature(token: &str) -> String {
    let mut parts = token_parts(token);
    let mut signature = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    signature[10] ^= 0x01;
    parts[2] = b64(signature);
    parts.join(".")
}

#[test]
fn bad_signature_is_refused() {
    let token = mint(&fixed_key(), &registry_claims()).unwrap();
    assert!(matches!(verify(&flip_signature(&token)), Err(TokenError::BadSignature { .. })));
}

#[test]
fn payload_changed_after_signing_is_refused() {
    let token = mint(&fixed_key(), &registry_claims()).unwrap();
    let mut parts = token_parts(&token);
    let mut claims = registry_claims();
    claims.access[2].actions.push("push".into());
    parts[1] = b64(serde_json::to_vec(&claims).unwrap());
    assert!(matches!(verify(&parts.join(".")), Err(TokenError::BadSignature { .. })));
}

#[test]
fn header_changed_after_signing_is_refused() {
    let key = fixed_key();
    let token = mint(&key, &registry_claims()).unwrap();
    let mut parts = token_parts(&token);
    parts[0] = b64(json!({"kid": key.kid(), "alg": "EdDSA", "typ": "JWT"}).to_string());
    assert!(matches!(verify(&parts.join(".")), Err(TokenError::BadSignature { .. })));
}

#[test]
fn signature_by_another_key_under_our_kid_is_refused() {
    let key = fixed_key();
    let token =
        sign_raw(&TokenKey::generate(), &airlock_header(&key), &serde_json::to_string(&registry_claims()).unwrap());
    assert!(matches!(verify(&token), Err(TokenError::BadSignature { .. })));
}

/// A verifier remembers the tokens whose signatures verified; the attacks below are tried on
/// one verifier that has just accepted the genuine token, so only its memory stands between
/// them and acceptance.
fn warm_verifier(token: &str) -> Verifier {
    let verifier = verifier_for(&[&fixed_key()]);
    for _ in 0..3 {
        verifier.verify(token, TokenKind::Registry, NOW, &epochs()).unwrap();
    }
    verifier
}

#[test]
fn a_remembered_token_does_not_vouch_for_a_changed_one() {
    let token = mint(&fixed_key(), &registry_claims()).unwrap();
    let verifier = warm_verifier(&token);
    let check = |t: &str| verifier.verify(t, TokenKind::Registry, NOW, &epochs());
    assert!(matches!(check(&flip_signature(&token)), Err(TokenError::BadSignature { .. })));
    let mut parts = token_parts(&token);
    let mut claims = registry_claims();
    claims.access[2].actions.push("push".into());
    parts[1] = b64(serde_json::to_vec(&claims).unwrap());
    assert!(matches!(check(&parts.join(".")), Err(TokenError::BadSignature { .. })));
    // The genuine token's signature under a forged payload.
    let forged = sign_raw(&TokenKey::generate(), &airlock_header(&fixed_key()), &token_parts(&token)[1]);
    assert!(matches!(check(&forged), Err(TokenError::BadSignature { .. })));
    assert!(check(&token).is_ok());
}

#[test]
fn a_remembered_token_is_still_judged_on_time_kind_and_epoch() {
    let token = mint(&fixed_key(), &registry_claims()).unwrap();
    let verifier = warm_verifier(&token);
    let expired = NOW + REGISTRY_TOKEN_TTL_SECS + MAX_LEEWAY_SECS + 1;
    assert!(matches!(
        verifier.verify(&token, TokenKind::Registry, expired, &epochs()),
        Err(TokenError::Expired { .. })
    ));
    assert!(matches!(verifier.verify(&token, TokenKind::Api, NOW, &epochs()), Err(TokenError::KindMismatch { .. })));
    let mut after_role_change = epochs();
    after_role_change.insert(ALICE.to_owned(), ALICE_EPOCH + 1);
    assert!(matches!(
        verifier.verify(&token, TokenKind::Registry, NOW, &after_role_change),
        Err(TokenError::StaleEpoch { .. })
    ));
    let disabled = BTreeMap::from([("bob".to_owned(), 1)]);
    assert!(matches!(
        verifier.verify(&token, TokenKind::Registry, NOW, &disabled),
        Err(TokenError::UnknownPrincipal { .. })
    ));
}

#[test]
fn a_verifier_without_the_key_refuses_a_token_another_remembers() {
    let token = mint(&fixed_key(), &registry_claims()).unwrap();
    let _warm = warm_verifier(&token);
    let rotated_away = verifier_for(&[&TokenKey::generate()]);
    assert!(matches!(
        rotated_away.verify(&token, TokenKind::Registry, NOW, &epochs()),
        Err(TokenError::UnknownKey { .. })
    ));
}

#[test]
fn unknown_kid_is_refused() {
    let stranger = TokenKey::generate();
    let token = mint(&stranger, &registry_claims()).unwrap();
    assert!(matches!(verify(&token), Err(TokenError::UnknownKey { kid }) if kid == stranger.kid()));
}

#[test]
fn missing_kid_is_refused() {
    let key = fixed_key();
    let token = sign_raw(&key, r#"{"alg":"EdDSA","typ":"JWT"}"#, &serde_json::to_string(&registry_claims()).unwrap());
    assert!(matches!(verify(&token), Err(TokenError::MissingKeyId)));
}

#[test]
fn critical_header_extensions_are_refused() {
    let key = fixed_key();
    let header = json!({"alg": "EdDSA", "kid": key.kid(), "crit": ["exp"], "exp": 1}).to_string();
    let token = sign_raw(&key, &header, &serde_json::to_string(&registry_claims()).unwrap());
    assert!(matches!(verify(&token), Err(TokenError::CriticalHeader)));
}

#[test]
fn a_header_member_given_twice_is_refused() {
    let key = fixed_key();
    let header = format!(r#"{{"alg":"none","alg":"EdDSA","kid":"{}"}}"#, key.kid());
    let token = sign_raw(&key, &header, &serde_json::to_string(&registry_claims()).unwrap());
    assert!(matches!(verify(&token), Err(TokenError::Malformed { part: "header", .. })));
}

// Attacks on the claims.

#[test]
fn wrong_audience_is_refused() {
    let mut claims = registry_claims();
    claims.aud = "airlock-api".into();
    let token = mint(&fixed_key(), &claims).unwrap();
    assert!(matches!(verify(&token), Err(TokenError::Audience { found, .. }) if found == "airlock-api"));
    // An array holding our audience is not one string.
    let token = signed_with(|claims| {
        claims.insert("aud".into(), json!([AUDIENCE]));
    });
    assert!(matches!(verify(&token), Err(TokenError::Malformed { part: "payload", .. })));
}

#[test]
fn wrong_issuer_is_refused() {
    let mut claims = registry_claims();
    claims.iss = "https://evil.example.com".into();
    let token = mint(&fixed_key(), &claims).unwrap();
    assert!(matches!(verify(&token), Err(TokenError::Issuer { found, .. }) if found == "https://evil.example.com"));
}

#[test]
fn expired_by_61_seconds_is_refused() {
    let claims = registry_claims();
    let token = mint(&fixed_key(), &claims).unwrap();
    assert!(matches!(verify_at(&token, claims.exp + 61), Err(TokenError::Expired { .. })));
}

#[test]
fn expiry_within_the_leeway_is_accepted() {
    let claims = registry_claims();
    let token = mint(&fixed_key(), &claims).unwrap();
    assert!(verify_at(&token, claims.exp + 30).is_ok());
    assert!(verify_at(&token, claims.exp + MAX_LEEWAY_SECS - 1).is_ok());
    // RFC 7519 §4.1.4: not on or after `exp` (plus the leeway).
    assert!(matches!(verify_at(&token, claims.exp + MAX_LEEWAY_SECS), Err(TokenError::Expired { .. })));
    let strict = verifier_for(&[&fixed_key()]).with_leeway(0);
    assert!(strict.verify(&token, TokenKind::Registry, claims.exp - 1, &epochs()).is_ok());
    assert!(matches!(
        strict.verify(&token, TokenKind::Registry, claims.exp, &epochs()),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn leeway_is_clamped() {
    let verifier = verifier_for(&[&fixed_key()]).with_leeway(3600);
    assert_eq!(verifier.leeway_secs(), MAX_LEEWAY_SECS);
    assert_eq!(verifier_for(&[&fixed_key()]).leeway_secs(), MAX_LEEWAY_SECS);
    let claims = registry_claims();
    let token = mint(&fixed_key(), &claims).unwrap();
    assert!(matches!(
        verifier.verify(&token, TokenKind::Registry, claims.exp + 120, &epochs()),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn nbf_in_the_future_beyond_the_leeway_is_refused() {
    let token = mint(&fixed_key(), &registry_claims()).unwrap();
    assert!(verify_at(&token, NOW - 60).is_ok());
    assert!(matches!(verify_at(&token, NOW - 61), Err(TokenError::NotYetValid { claim: "nbf", .. })));
}

#[test]
fn iat_in_the_future_beyond_the_leeway_is_refused() {
    let token = signed_with(|claims| {
        claims.insert("iat".into(), json!(NOW + 100));
    });
    assert!(matches!(verify(&token), Err(TokenError::NotYetValid { claim: "iat", .. })));
}

#[test]
fn missing_time_claims_are_refused() {
    for claim in ["exp", "nbf", "iat"] {
        let token = signed_with(|claims| {
            claims.remove(claim);
        });
        assert!(matches!(verify(&token), Err(TokenError::MissingClaim { claim: c }) if c == claim), "{claim}");
    }
    let token = signed_with(|claims| {
        claims.insert("exp".into(), json!("tomorrow"));
    });
    assert!(matches!(verify(&token), Err(TokenError::Malformed { part: "payload", .. })));
}

#[test]
fn a_lifetime_over_the_kinds_ttl_is_refused() {
    let token = signed_with(|claims| {
        claims.insert("exp".into(), json!(NOW + REGISTRY_TOKEN_TTL_SECS + 1));
    });
    assert!(matches!(verify(&token), Err(TokenError::Lifetime { kind: TokenKind::Registry, .. })));
    let mut claims = registry_claims();
    claims.exp += 1;
    assert!(matches!(mint(&fixed_key(), &claims), Err(TokenError::Lifetime { .. })));
}

#[test]
fn a_registry_token_is_not_an_api_token() {
    let token = mint(&fixed_key(), &registry_claims()).unwrap();
    let refused = verifier_for(&[&fixed_key()]).verify(&token, TokenKind::Api, NOW, &epochs());
    assert!(matches!(refused, Err(TokenError::KindMismatch { expected: TokenKind::Api, found: TokenKind::Registry })));
}

#[test]
fn an_api_token_is_not_a_registry_token() {
    let token = mint(&fixed_key(), &api_claims()).unwrap();
    assert!(matches!(
        verify(&token),
        Err(TokenError::KindMismatch { expected: TokenKind::Registry, found: TokenKind::Api })
    ));
}

#[test]
fn a_token_from_before_a_role_change_is_refused() {
    let token = mint(&fixed_key(), &registry_claims()).unwrap();
    let mut after_role_change = epochs();
    after_role_change.insert(ALICE.into(), ALICE_EPOCH + 1);
    let refused = verifier_for(&[&fixed_key()]).verify(&token, TokenKind::Registry, NOW, &after_role_change);
    assert!(matches!(refused, Err(TokenError::StaleEpoch { token_epoch: 7, live_epoch: 8, .. })));
}

#[test]
fn an_unknown_or_disabled_principal_is_refused() {
    let token = mint(&fixed_key(), &registry_claims()).unwrap();
    /// A directory where alice is disabled.
    struct Disabled;
    impl EpochSource for Disabled {
        fn live_epoch(&self, _subject: &str) -> Option<u64> {
            None
        }
    }
    let refused = verifier_for(&[&fixed_key()]).verify(&token, TokenKind::Registry, NOW, &Disabled);
    assert!(matches!(refused, Err(TokenError::UnknownPrincipal { sub }) if sub == ALICE));
    let mut claims = registry_claims();
    claims.sub = "mallory".into();
    let token = mint(&fixed_key(), &claims).unwrap();
    assert!(matches!(verify(&token), Err(TokenError::UnknownPrincipal { .. })));
}

// Malformed input.

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let token = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert!(
        matches!(verify(&token), Err(TokenError::TooLarge { len, max: MAX_TOKEN_BYTES }) if len == MAX_TOKEN_BYTES + 1)
    );
    // At the limit it is parsed, and refused for what it is.
    assert!(matches!(verify(&"a".repeat(MAX_TOKEN_BYTES)), Err(TokenError::Malformed { .. })));
    let mut claims = registry_claims();
    claims.scopes = vec!["x".repeat(MAX_TOKEN_BYTES)];
    assert!(matches!(mint(&fixed_key(), &claims), Err(TokenError::TooLarge { .. })));
}

#[test]
fn garbage_is_malformed() {
    let key = fixed_key();
    let token = mint(&key, &registry_claims()).unwrap();
    let parts = token_parts(&token);
    let header = |json: &str| format!("{}.{}.{}", b64(json), parts[1], parts[2]);
    let cases = [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b.c".into(),
        "Bearer x.y.z".into(),
        "not a token".into(),
        "\u{0}\u{1}\u{2}".into(),
        "🦀.🦀.🦀".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!(" {token}"),
        format!("{token}\n"),
        format!("{}+.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]),
        header("{"),
        header("[\"EdDSA\"]"),
        header("null"),
        header(r#"{"alg":5}"#),
        header(r#"{"alg":"EdDSA","kid":5}"#),
        sign_raw(&key, &airlock_header(&key), "[]"),
        sign_raw(&key, &airlock_header(&key), "{}"),
        sign_raw(&key, &airlock_header(&key), "not json"),
        signed_with(|claims| {
            claims.insert("kind".into(), json!("admin"));
        }),
        signed_with(|claims| {
            claims.insert("epoch".into(), json!(-1));
        }),
    ];
    for token in cases {
        assert!(matches!(verify(&token), Err(TokenError::Malformed { .. })), "{token:?}: {:?}", verify(&token));
    }
}

// Rotation.

#[test]
fn key_rotation_keeps_the_old_kid_until_it_is_removed() {
    let old = TokenKey::generate();
    let new = TokenKey::generate();
    let old_token = mint(&old, &registry_claims()).unwrap();
    let new_token = mint(&new, &registry_claims()).unwrap();
    let mut keys: VerifyingKeys = [old.public().clone(), new.public().clone()].into_iter().collect();
    let during = Verifier::new(keys.clone(), ISSUER, AUDIENCE);
    assert!(during.verify(&old_token, TokenKind::Registry, NOW, &epochs()).is_ok());
    assert!(during.verify(&new_token, TokenKind::Registry, NOW, &epochs()).is_ok());
    assert_eq!(keys.remove(old.kid()).as_ref(), Some(old.public()));
    let after = Verifier::new(keys, ISSUER, AUDIENCE);
    assert!(matches!(
        after.verify(&old_token, TokenKind::Registry, NOW, &epochs()),
        Err(TokenError::UnknownKey { kid }) if kid == old.kid()
    ));
    assert!(after.verify(&new_token, TokenKind::Registry, NOW, &epochs()).is_ok());
    let empty = Verifier::new(VerifyingKeys::new(), ISSUER, AUDIENCE);
    assert!(matches!(
        empty.verify(&new_token, TokenKind::Registry, NOW, &epochs()),
        Err(TokenError::UnknownKey { .. })
    ));
}

/// Every refusal's message, pinned: lowercase, one line, input quoted, the next step named.
#[test]
fn refusal_messages() {
    let key = fixed_key();
    let claims = registry_claims();
    let good = mint(&key, &claims).unwrap();
    let mut wrong_aud = claims.clone();
    wrong_aud.aud = "airlock-api".into();
    let mut wrong_iss = claims.clone();
    wrong_iss.iss = "https://evil.example.com/\n".repeat(5);
    let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), token_parts(&good)[1]);
    let mut bumped = epochs();
    bumped.insert(ALICE.into(), 8);
    let verifier = verifier_for(&[&key]);
    let cases: Vec<(&str, TokenError)> = vec![
        ("oversized", verify(&"a".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err()),
        ("garbage", verify("a.b").unwrap_err()),
        ("bad base64", verify("a.b.c").unwrap_err()),
        ("alg none", verify(&none).unwrap_err()),
        ("missing kid", verify(&sign_raw(&key, r#"{"alg":"EdDSA"}"#, "{}")).unwrap_err()),
        (
            "unknown kid",
            verify(&mint(&TokenKey::from_pkcs8_der(&pkcs8(&[7; 32])).unwrap(), &claims).unwrap()).unwrap_err(),
        ),
        ("bad signature", verify(&flip_signature(&good)).unwrap_err()),
        ("wrong audience", verify(&mint(&key, &wrong_aud).unwrap()).unwrap_err()),
        ("wrong issuer", verify(&mint(&key, &wrong_iss).unwrap()).unwrap_err()),
        ("missing exp", verify(&signed_with(|c| drop(c.remove("exp")))).unwrap_err()),
        ("expired", verify_at(&good, claims.exp + 61).unwrap_err()),
        ("not yet valid", verify_at(&good, NOW - 61).unwrap_err()),
        ("kind", verifier.verify(&good, TokenKind::Api, NOW, &epochs()).unwrap_err()),
        ("stale epoch", verifier.verify(&good, TokenKind::Registry, NOW, &bumped).unwrap_err()),
        ("unknown principal", verifier.verify(&good, TokenKind::Registry, NOW, &BTreeMap::new()).unwrap_err()),
    ];
    let rendered: String = cases.iter().map(|(name, error)| format!("{name}: {error}\n")).collect();
    expect![[r#"
        oversized: token is 8193 bytes, over the 8192-byte limit; send the token exactly as it was issued
        garbage: token is malformed (compact serialization: expected three base64url parts separated by `.`); send the token exactly as it was issued
        bad base64: token is malformed (header: not base64url without padding: a length of 1, which no encoding has); send the token exactly as it was issued
        alg none: token algorithm `none` is not accepted; airlock tokens are signed with `EdDSA`; request a token from airlock
        missing kid: token header names no key (`kid`); request a new token from its issuer
        unknown kid: token key `324be2dea8bc44461b0233e51fa48902ed6b1cc671e7739af2551e0bfe68f54e` is not a current airlock token key; request a new token
        bad signature: token signature does not verify under key `06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9`; request a new token from its issuer
        wrong audience: token audience is `airlock-api`, not `airlock-registry`; request a token for `airlock-registry`
        wrong issuer: token issuer is `https://evil.example.com/\nhttps://evil.example.com/\nhttps://evil.example.com/\nht…`, not `https://airlock.example.com`; request a token from `https://airlock.example.com`
        missing exp: token has no `exp` claim; request a new token from its issuer
        expired: token expired at 1767225900, 61 s ago (leeway 60 s); request a new token
        not yet valid: token `nbf` is 1767225600, 61 s ahead of this server's clock (leeway 60 s); check the clocks of the issuer and this server
        kind: token kind is `registry`, but `api` is required here; request a token of kind `api`
        stale epoch: token for `alice` was issued at epoch 7, but the principal is now at epoch 8 (its roles or credentials changed); request a new token
        unknown principal: principal `alice` is unknown or disabled; ask an administrator to enable it, then request a new token
    "#]]
    .assert_eq(&rendered);
}

mod oidc {
    use airlock_access::token::oidc::{ClaimPattern, ClaimRule, MAX_JWKS_BYTES, OidcIssuer, verify_ci_token};

    use super::*;

    const GITHUB: &str = "https://token.actions.githubusercontent.com";
    const GITLAB: &str = "https://gitlab.example.com";
    const CI: &str = "https://ci.example.com";
    const CI_AUDIENCE: &str = "https://airlock.example.com";
    /// `iat` of the fixtures; they are valid from 600 s before it to 300 s after.
    const FIXTURE_IAT: u64 = 1_767_225_600;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(data(&format!("oidc/{name}"))).unwrap().trim().to_owned()
    }

    fn github() -> OidcIssuer {
        OidcIssuer::new(GITHUB, CI_AUDIENCE, fixture("github-rs256.jwks.json").as_bytes()).unwrap()
    }

    fn gitlab() -> OidcIssuer {
        OidcIssuer::new(GITLAB, CI_AUDIENCE, fixture("gitlab-es256.jwks.json").as_bytes()).unwrap()
    }

    /// The Ed25519 key of the in-test issuer `CI`, and its JWKS.
    fn ci_key() -> TokenKey {
        TokenKey::from_pkcs8_der(&pkcs8(&[42; 32])).unwrap()
    }

    fn ci_jwks() -> Value {
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "ci-1", "x": b64(ci_key().public().as_bytes())}]})
    }

    fn ci() -> OidcIssuer {
        OidcIssuer::new(CI, CI_AUDIENCE, ci_jwks().to_string().as_bytes()).unwrap()
    }

    fn issuers() -> Vec<OidcIssuer> {
        vec![github(), gitlab(), ci()]
    }

    fn rule(issuer: &str, claims: &[(&str, &str)], service_account: &str) -> ClaimRule {
        ClaimRule {
            issuer: issuer.into(),
            claims: claims.iter().map(|(k, v)| ((*k).to_owned(), ClaimPattern::parse(v).unwrap())).collect(),
            service_account: service_account.into(),
            scopes: vec!["promotions:write".into()],
        }
    }

    fn payments_rule(issuer: &str) -> ClaimRule {
        rule(
            issuer,
            &[
                ("repository", "acme/payments-api"),
                ("ref", "refs/heads/main"),
                ("workflow_ref", "acme/payments-api/.github/workflows/release.yml@refs/heads/*"),
            ],
            "payments-release",
        )
    }

    fn rules() -> Vec<ClaimRule> {
        vec![
            payments_rule(GITHUB),
            payments_rule(CI),
            rule(GITLAB, &[("project_path", "acme/*"), ("ref_protected", "true")], "gitlab-release"),
        ]
    }

    /// GitHub Actions-shaped claims from the in-test issuer, valid at `NOW`.
    fn ci_claims() -> serde_json::Map<String, Value> {
        let claims = json!({
            "iss": CI,
            "aud": CI_AUDIENCE,
            "sub": "repo:acme/payments-api:ref:refs/heads/main",
            "repository": "acme/payments-api",
            "repository_owner": "acme",
            "ref": "refs/heads/main",
            "ref_type": "branch",
            "workflow_ref": "acme/payments-api/.github/workflows/release.yml@refs/heads/main",
            "run_id": "9000000001",
            "iat": NOW,
            "nbf": NOW - 600,
            "exp": NOW + 300,
        });
        claims.as_object().unwrap().clone()
    }

    /// A token of the in-test issuer signed by jsonwebtoken's EdDSA encoder.
    fn ci_token(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut claims = ci_claims();
        change(&mut claims);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("ci-1".into());
        let encoding = jsonwebtoken::EncodingKey::from_ed_der(ci_key().to_pkcs8_der().unwrap().as_bytes());
        jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
    }

    fn verify_ci(token: &str) -> Result<airlock_access::token::oidc::CiIdentity, TokenError> {
        verify_ci_token(token, &issuers(), &rules(), NOW + 10, 60)
    }

    /// A token with this header over the payload of `token`, signature kept.
    fn with_header(token: &str, header: Value) -> String {
        let parts = token_parts(token);
        format!("{}.{}.{}", b64(header.to_string()), parts[1], parts[2])
    }

    #[test]
    fn github_rs256_fixture_maps_to_a_service_account() {
        let identity = verify_ci(&fixture("github-rs256.jwt")).unwrap();
        assert_eq!(identity.issuer, GITHUB);
        assert_eq!(identity.subject, "repo:acme/payments-api:ref:refs/heads/main");
        assert_eq!(identity.service_account, "payments-release");
        assert_eq!(identity.scopes, ["promotions:write"]);
        assert_eq!(identity.claims["repository"], "acme/payments-api");
        assert_eq!(identity.claims["run_attempt"], "1");
    }

    #[test]
    fn gitlab_es256_fixture_maps_to_a_service_account() {
        let identity = verify_ci(&fixture("gitlab-es256.jwt")).unwrap();
        assert_eq!(identity.issuer, GITLAB);
        assert_eq!(identity.subject, "project_path:acme/payments-api:ref_type:branch:ref:main");
        assert_eq!(identity.service_account, "gitlab-release");
    }

    #[test]
    fn ed25519_token_maps_to_a_service_account() {
        let identity = verify_ci(&ci_token(|_| {})).unwrap();
        assert_eq!((identity.issuer.as_str(), identity.service_account.as_str()), (CI, "payments-release"));
    }

    #[test]
    fn fixtures_expire() {
        for name in ["github-rs256.jwt", "gitlab-es256.jwt"] {
            let token = fixture(name);
            let at = |now| verify_ci_token(&token, &issuers(), &rules(), now, 60);
            assert!(at(FIXTURE_IAT + 300 + 59).is_ok());
            assert!(matches!(at(FIXTURE_IAT + 300 + 61), Err(TokenError::Expired { .. })));
            assert!(matches!(at(FIXTURE_IAT - 600 - 61), Err(TokenError::NotYetValid { claim: "nbf", .. })));
            // The leeway is clamped as for Airlock tokens.
            let lenient = verify_ci_token(&token, &issuers(), &rules(), FIXTURE_IAT + 300 + 120, 3600);
            assert!(matches!(lenient, Err(TokenError::Expired { .. })));
        }
        let no_exp = ci_token(|claims| drop(claims.remove("exp")));
        assert!(matches!(verify_ci(&no_exp), Err(TokenError::MissingClaim { claim: "exp" })));
    }

    #[test]
    fn wrong_audience_is_refused() {
        let token = ci_token(|claims| drop(claims.insert("aud".into(), json!("https://other.example.com"))));
        assert!(matches!(verify_ci(&token), Err(TokenError::Audience { .. })));
        let array = ci_token(|claims| drop(claims.insert("aud".into(), json!(["https://other.example.com"]))));
        assert!(matches!(verify_ci(&array), Err(TokenError::Audience { .. })));
        let missing = ci_token(|claims| drop(claims.remove("aud")));
        assert!(matches!(verify_ci(&missing), Err(TokenError::MissingClaim { claim: "aud" })));
        // The fixture is signed for `CI_AUDIENCE`; an issuer configured for another refuses it.
        let other = OidcIssuer::new(GITHUB, "sts.amazonaws.com", fixture("github-rs256.jwks.json").as_bytes()).unwrap();
        let refused = verify_ci_token(&fixture("github-rs256.jwt"), &[other], &rules(), FIXTURE_IAT, 60);
        assert!(matches!(refused, Err(TokenError::Audience { .. })));
    }

    #[test]
    fn audience_among_several_is_accepted() {
        let token = ci_token(|claims| drop(claims.insert("aud".into(), json!(["sts.amazonaws.com", CI_AUDIENCE]))));
        assert!(verify_ci(&token).is_ok());
    }

    #[test]
    fn unknown_issuer_is_refused() {
        let refused = verify_ci_token(&fixture("github-rs256.jwt"), &[gitlab(), ci()], &rules(), FIXTURE_IAT, 60);
        assert!(matches!(refused, Err(TokenError::UnknownIssuer { iss }) if iss == GITHUB));
        // An issuer that merely starts like a configured one is another issuer.
        let token = ci_token(|claims| drop(claims.insert("iss".into(), json!(format!("{CI}.evil.com")))));
        assert!(matches!(verify_ci(&token), Err(TokenError::UnknownIssuer { .. })));
        let token = ci_token(|claims| drop(claims.remove("iss")));
        assert!(matches!(verify_ci(&token), Err(TokenError::MissingClaim { claim: "iss" })));
    }

    #[test]
    fn kid_not_in_the_jwks_is_refused() {
        let token = with_header(&fixture("github-rs256.jwt"), json!({"alg": "RS256", "kid": "github-next"}));
        assert!(matches!(verify_ci(&token), Err(TokenError::UnknownJwk { kid, .. }) if kid == "github-next"));
        // A kid of another issuer's JWKS is not this issuer's.
        let token = with_header(&fixture("github-rs256.jwt"), json!({"alg": "ES256", "kid": "gitlab-current"}));
        assert!(matches!(verify_ci(&token), Err(TokenError::UnknownJwk { .. })));
        let token = with_header(&fixture("github-rs256.jwt"), json!({"alg": "RS256"}));
        assert!(matches!(verify_ci(&token), Err(TokenError::MissingKeyId)));
    }

    #[test]
    fn hs256_is_refused() {
        // HMAC keyed with the issuer's public key bytes, named by its kid.
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("ci-1".into());
        let encoding = jsonwebtoken::EncodingKey::from_secret(ci_key().public().as_bytes());
        let token = jsonwebtoken::encode(&header, &ci_claims(), &encoding).unwrap();
        assert!(matches!(verify_ci(&token), Err(TokenError::Algorithm { alg, .. }) if alg == "HS256"));
        let none = format!("{}.{}.", b64(r#"{"alg":"none","kid":"ci-1"}"#), token_parts(&token)[1]);
        assert!(matches!(verify_ci(&none), Err(TokenError::Algorithm { .. })));
        for alg in ["RS384", "PS256", "ES384", "HS512"] {
            let token = with_header(&fixture("github-rs256.jwt"), json!({"alg": alg, "kid": "github-current"}));
            assert!(matches!(verify_ci(&token), Err(TokenError::Algorithm { .. })), "{alg}");
        }
    }

    #[test]
    fn alg_must_fit_the_keys_type() {
        let token = with_header(&fixture("github-rs256.jwt"), json!({"alg": "ES256", "kid": "github-current"}));
        assert!(matches!(verify_ci(&token), Err(TokenError::KeyTypeMismatch { alg: "ES256", .. })));
        let token = with_header(&fixture("gitlab-es256.jwt"), json!({"alg": "EdDSA", "kid": "gitlab-current"}));
        assert!(matches!(verify_ci(&token), Err(TokenError::KeyTypeMismatch { alg: "EdDSA", .. })));
        let token = with_header(&ci_token(|_| {}), json!({"alg": "RS256", "kid": "ci-1"}));
        assert!(matches!(verify_ci(&token), Err(TokenError::KeyTypeMismatch { alg: "RS256", .. })));
    }

    #[test]
    fn claim_near_misses_are_refused() {
        let near_misses: [(&str, Value); 6] = [
            ("repository", json!("acme/payments-api-evil")),
            ("repository", json!("acme/payments-ap")),
            ("repository", json!("evil/acme/payments-api")),
            ("ref", json!("refs/heads/main2")),
            ("ref", json!("refs/heads/main/x")),
            ("workflow_ref", json!("acme/payments-api/.github/workflows/release.yml@refs/heads/a/b")),
        ];
        for (claim, value) in near_misses {
            let token = ci_token(|claims| drop(claims.insert(claim.into(), value.clone())));
            assert!(matches!(verify_ci(&token), Err(TokenError::NoClaimRule { .. })), "{claim} = {value}");
        }
        // A missing claim, or one that is not a string, never matches.
        let missing = ci_token(|claims| drop(claims.remove("ref")));
        assert!(matches!(verify_ci(&missing), Err(TokenError::NoClaimRule { .. })));
        let array = ci_token(|claims| drop(claims.insert("repository".into(), json!(["acme/payments-api"]))));
        assert!(matches!(verify_ci(&array), Err(TokenError::NoClaimRule { .. })));
        // The glob matches a feature branch's workflow within one segment.
        let branch = ci_token(|claims| {
            claims.insert(
                "workflow_ref".into(),
                json!("acme/payments-api/.github/workflows/release.yml@refs/heads/hotfix"),
            );
        });
        assert!(verify_ci(&branch).is_ok());
    }

    #[test]
    fn rules_apply_to_their_issuer_only_and_the_first_match_wins() {
        // The same claims from another issuer match nothing.
        let only_github = [payments_rule(GITHUB)];
        let refused = verify_ci_token(&ci_token(|_| {}), &issuers(), &only_github, NOW, 60);
        assert!(matches!(refused, Err(TokenError::NoClaimRule { issuer, .. }) if issuer == CI));
        // A rule naming no claims matches nothing.
        let empty = [rule(CI, &[], "everyone")];
        assert!(matches!(
            verify_ci_token(&ci_token(|_| {}), &issuers(), &empty, NOW, 60),
            Err(TokenError::NoClaimRule { .. })
        ));
        let ordered = [rule(CI, &[("repository_owner", "acme")], "acme-any"), payments_rule(CI)];
        let identity = verify_ci_token(&ci_token(|_| {}), &issuers(), &ordered, NOW, 60).unwrap();
        assert_eq!(identity.service_account, "acme-any");
    }

    #[test]
    fn tampered_tokens_are_refused() {
        for (name, issuer) in [("github-rs256.jwt", GITHUB), ("gitlab-es256.jwt", GITLAB)] {
            let token = fixture(name);
            let parts = token_parts(&token);
            let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
            claims["ref"] = json!("refs/heads/evil");
            let forged = format!("{}.{}.{}", parts[0], b64(claims.to_string()), parts[2]);
            assert!(matches!(verify_ci(&forged), Err(TokenError::BadSignature { .. })), "{issuer}");
        }
        let token = ci_token(|_| {});
        let parts = token_parts(&token);
        let mut signature = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
        signature[0] ^= 1;
        let forged = format!("{}.{}.{}", parts[0], parts[1], b64(signature));
        assert!(matches!(verify_ci(&forged), Err(TokenError::BadSignature { .. })));
    }

    #[test]
    fn jwks_documents_are_bounded_and_checked() {
        let big = vec![b' '; MAX_JWKS_BYTES + 1];
        assert!(matches!(OidcIssuer::new(CI, CI_AUDIENCE, &big), Err(TokenError::JwksTooLarge { .. })));
        for bad in [&b"not json"[..], b"{}", b"[]", br#"{"keys": {}}"#] {
            assert!(matches!(OidcIssuer::new(CI, CI_AUDIENCE, bad), Err(TokenError::JwksMalformed { .. })));
        }
        let key = &ci_jwks()["keys"][0];
        let twice = json!({"keys": [key, key]}).to_string();
        assert!(matches!(
            OidcIssuer::new(CI, CI_AUDIENCE, twice.as_bytes()),
            Err(TokenError::JwksDuplicateKid { kid }) if kid == "ci-1"
        ));
        let many: Vec<Value> =
            (0..33).map(|i| json!({"kty": "OKP", "crv": "Ed25519", "kid": format!("k{i}"), "x": "AA"})).collect();
        let many = json!({ "keys": many }).to_string();
        assert!(matches!(
            OidcIssuer::new(CI, CI_AUDIENCE, many.as_bytes()),
            Err(TokenError::JwksTooManyKeys { count: 33, .. })
        ));
        // Keys of types Airlock never uses still load; tokens naming them are refused.
        let odd =
            json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, {"kty": "XYZ", "kid": "x"}]}).to_string();
        assert!(OidcIssuer::new(CI, CI_AUDIENCE, odd.as_bytes()).is_ok());
    }

    /// An issuer `CI` whose one key, `ci-1`, is `jwk` with its `kid` set.
    fn ci_with_key(mut jwk: Value) -> OidcIssuer {
        jwk["kid"] = json!("ci-1");
        OidcIssuer::new(CI, CI_AUDIENCE, json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn unusable_keys_are_refused_without_panicking() {
        let token = ci_token(|_| {});
        let github_key = serde_json::from_str::<Value>(&fixture("github-rs256.jwks.json")).unwrap()["keys"][1].clone();
        let mut small_rsa = github_key.clone();
        small_rsa["n"] = json!(b64(&URL_SAFE_NO_PAD.decode(github_key["n"].as_str().unwrap()).unwrap()[..128]));
        let mut huge_exponent = github_key.clone();
        huge_exponent["e"] = json!(b64([1u8; 9]));
        let gitlab_key = serde_json::from_str::<Value>(&fixture("gitlab-es256.jwks.json")).unwrap()["keys"][0].clone();
        let mut off_curve = gitlab_key.clone();
        off_curve["y"] = json!(b64([7u8; 32]));
        let mut short_y = gitlab_key.clone();
        short_y["y"] = json!(b64([7u8; 31]));
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let cases: Vec<(&str, &str, Value)> = vec![
            // jsonwebtoken slices `x[..32]`, which would panic on a short key.
            ("EdDSA", "short x", json!({"kty": "OKP", "crv": "Ed25519", "x": b64([1u8; 5])})),
            ("EdDSA", "long x", json!({"kty": "OKP", "crv": "Ed25519", "x": b64([1u8; 33])})),
            ("EdDSA", "small order", json!({"kty": "OKP", "crv": "Ed25519", "x": b64(identity)})),
            (
                "EdDSA",
                "for encryption",
                json!({"kty": "OKP", "crv": "Ed25519", "use": "enc", "x": b64(ci_key().public().as_bytes())}),
            ),
            ("RS256", "1024-bit modulus", small_rsa),
            ("RS256", "9-byte exponent", huge_exponent),
            ("ES256", "point off the curve", off_curve),
            ("ES256", "31-byte y", short_y),
        ];
        for (alg, name, jwk) in cases {
            let issuer = ci_with_key(jwk);
            let token = with_header(&token, json!({"alg": alg, "kid": "ci-1"}));
            let refused = verify_ci_token(&token, &[issuer], &rules(), NOW, 60);
            assert!(matches!(refused, Err(TokenError::InvalidJwk { .. })), "{name}: {refused:?}");
        }
        // A JWK whose own `alg` is another algorithm does not verify this one.
        let issuer = ci_with_key(
            json!({"kty": "OKP", "crv": "Ed25519", "alg": "ES256", "x": b64(ci_key().public().as_bytes())}),
        );
        let refused = verify_ci_token(&token, &[issuer], &rules(), NOW, 60);
        assert!(matches!(refused, Err(TokenError::KeyTypeMismatch { .. })));
        // An Ed448 key is not an Ed25519 key.
        let issuer = ci_with_key(json!({"kty": "OKP", "crv": "Ed448", "x": b64([1u8; 57])}));
        assert!(verify_ci_token(&token, &[issuer], &rules(), NOW, 60).is_err());
    }

    #[test]
    fn ci_refusal_messages() {
        let unknown = verify_ci_token(&fixture("github-rs256.jwt"), &[ci()], &rules(), FIXTURE_IAT, 60).unwrap_err();
        let near_miss =
            verify_ci(&ci_token(|claims| drop(claims.insert("repository".into(), json!("acme/payments-api-evil")))))
                .unwrap_err();
        let mismatch =
            verify_ci(&with_header(&fixture("github-rs256.jwt"), json!({"alg": "ES256", "kid": "github-current"})))
                .unwrap_err();
        let no_kid =
            verify_ci(&with_header(&fixture("github-rs256.jwt"), json!({"alg": "RS256", "kid": "old"}))).unwrap_err();
        let rendered =
            [unknown, near_miss, mismatch, no_kid].iter().map(|error| format!("{error}\n")).collect::<String>();
        expect![[r#"
            ci token issuer `https://token.actions.githubusercontent.com` is not configured; add an oidc issuer for it, or request a token from a configured one
            no claim rule maps `repo:acme/payments-api:ref:refs/heads/main` from `https://ci.example.com` to a service account; add a rule whose claims match the token's
            token algorithm `ES256` does not fit key `github-current` of `https://token.actions.githubusercontent.com` (a key for `RS256`); the token was not signed by that key
            key `old` is not in the jwks of `https://token.actions.githubusercontent.com`; refresh the jwks from the issuer's `jwks_uri`
        "#]]
        .assert_eq(&rendered);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn verify_ci_token_never_panics(token in "\\PC{0,600}") {
                prop_assert!(verify_ci(&token).is_err());
            }

            #[test]
            fn mutated_ci_tokens_are_refused(index in any::<prop::sample::Index>(), c in "[A-Za-z0-9_.=-]", which in 0usize..3) {
                let token = vec![fixture("github-rs256.jwt"), fixture("gitlab-es256.jwt"), ci_token(|_| {})].swap_remove(which);
                let mut mutated = token.clone();
                let at = index.index(token.len());
                mutated.replace_range(at..=at, &c);
                if mutated != token {
                    prop_assert!(verify_ci_token(&mutated, &issuers(), &rules(), FIXTURE_IAT, 60).is_err());
                }
            }
        }
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A change to a token's text.
    #[derive(Debug, Clone)]
    enum Mutation {
        Replace(prop::sample::Index, char),
        Insert(prop::sample::Index, char),
        Delete(prop::sample::Index),
        Truncate(prop::sample::Index),
        Append(String),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let c = prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ".chars().collect::<Vec<_>>(),
        );
        prop_oneof![
            (any::<prop::sample::Index>(), c.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
            (any::<prop::sample::Index>(), c).prop_map(|(i, c)| Mutation::Insert(i, c)),
            any::<prop::sample::Index>().prop_map(Mutation::Delete),
            any::<prop::sample::Index>().prop_map(Mutation::Truncate),
            "[A-Za-z0-9_.-]{1,8}".prop_map(Mutation::Append),
        ]
    }

    fn apply(token: &str, mutation: &Mutation) -> String {
        // An earlier mutation may have emptied the token; there is no index into nothing.
        if token.is_empty() {
            return match mutation {
                Mutation::Insert(_, c) => c.to_string(),
                Mutation::Append(tail) => tail.clone(),
                _ => String::new(),
            };
        }
        let mut out = token.to_owned();
        match mutation {
            Mutation::Replace(i, c) => {
                let at = i.index(token.len());
                out.replace_range(at..=at, &c.to_string());
            }
            Mutation::Insert(i, c) => out.insert(i.index(token.len() + 1), *c),
            Mutation::Delete(i) => drop(out.remove(i.index(token.len()))),
            Mutation::Truncate(i) => out.truncate(i.index(token.len())),
            Mutation::Append(tail) => out.push_str(tail),
        }
        out
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_strings(token in "\\PC{0,400}") {
            prop_assert!(verify(&token).is_err());
        }

        #[test]
        fn verify_never_panics_on_token_shaped_strings(header in "[A-Za-z0-9_-]{0,120}", payload in "[A-Za-z0-9_-]{0,200}", signature in "[A-Za-z0-9_-]{0,100}") {
            let token = format!("{header}.{payload}.{signature}");
            prop_assert!(verify(&token).is_err());
        }

        #[test]
        fn mutated_tokens_are_refused(mutations in prop::collection::vec(mutation(), 1..4)) {
            let token = mint(&fixed_key(), &registry_claims()).unwrap();
            let mutated = mutations.iter().fold(token.clone(), |t, m| apply(&t, m));
            if mutated != token {
                prop_assert!(verify(&mutated).is_err(), "{:?} accepted", mutations);
            }
        }

        #[test]
        fn minted_tokens_round_trip(
            sub in "\\PC{0,40}",
            epoch in any::<u64>(),
            name in "\\PC{0,60}",
            actions in prop::collection::vec("[a-z*]{1,8}", 0..4),
            scopes in prop::collection::vec("\\PC{0,20}", 0..4),
            kind in prop_oneof![Just(TokenKind::Registry), Just(TokenKind::Api)],
        ) {
            let mut claims = Claims::new(ISSUER, AUDIENCE, sub.clone(), PrincipalKind::ServiceAccount, epoch, kind, NOW);
            claims.access = vec![Access { kind: "repository".into(), name, actions }];
            claims.scopes = scopes;
            let token = mint(&fixed_key(), &claims).unwrap();
            let epochs = BTreeMap::from([(sub, epoch)]);
            prop_assert_eq!(verifier_for(&[&fixed_key()]).verify(&token, kind, NOW, &epochs).unwrap(), claims);
        }
    }
}
