//! Fuzzes Airlock token verification and CI (OIDC) token verification. Neither may panic; nothing
//! the fuzzer writes may verify; and a valid Airlock token with any of its bytes changed (the input
//! XORed into it from an offset the first byte picks) must be refused.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use airlock_access::token::oidc::{ClaimPattern, ClaimRule, OidcIssuer, verify_ci_token};
use airlock_access::token::{Access, Claims, PrincipalKind, TokenKey, TokenKind, Verifier, mint};
use libfuzzer_sys::fuzz_target;

/// 2026-01-01T00:00:00Z, the injected clock.
const NOW: u64 = 1_767_225_600;
const ISSUER: &str = "https://airlock.example.com";
const AUDIENCE: &str = "airlock-registry";
const CI: &str = "https://ci.example.com";
/// PKCS#8 v1 (RFC 8410 §7) of the RFC 8032 §7.1 TEST 1 Ed25519 key.
const PKCS8: [u8; 48] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, 0x9d, 0x61, 0xb1,
    0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
    0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
/// The same key's public half as an Ed25519 JWK.
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"ci-1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

struct Setup {
    verifier: Verifier,
    epochs: BTreeMap<String, u64>,
    token: String,
    issuers: Vec<OidcIssuer>,
    rules: Vec<ClaimRule>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = TokenKey::from_pkcs8_der(&PKCS8).expect("the test key");
        let mut claims = Claims::new(ISSUER, AUDIENCE, "alice", PrincipalKind::User, 7, TokenKind::Registry, NOW);
        claims.jti = "00112233445566778899aabbccddeeff".into();
        claims.access = vec![Access {
            kind: "repository".into(),
            name: "dev/app".into(),
            actions: vec!["pull".into(), "push".into()],
        }];
        let verifier = Verifier::new([key.public().clone()].into_iter().collect(), ISSUER, AUDIENCE);
        let epochs = BTreeMap::from([("alice".to_owned(), 7)]);
        let token = mint(&key, &claims).expect("mint");
        assert!(verifier.verify(&token, TokenKind::Registry, NOW, &epochs).is_ok());
        let issuers = vec![OidcIssuer::new(CI, AUDIENCE, JWKS.as_bytes()).expect("the jwks")];
        let rules = vec![ClaimRule {
            issuer: CI.into(),
            claims: BTreeMap::from([(
                "repository".to_owned(),
                ClaimPattern::parse("acme/*").expect("a claim pattern"),
            )]),
            service_account: "ci".into(),
            scopes: Vec::new(),
        }];
        Setup { verifier, epochs, token, issuers, rules }
    })
}

fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let verify = |text: &str| setup.verifier.verify(text, TokenKind::Registry, NOW, &setup.epochs);
    if let Ok(text) = std::str::from_utf8(data)
        && text != setup.token
    {
        assert!(verify(text).is_err(), "the fuzzer forged a token");
        assert!(setup.verifier.verify(text, TokenKind::Api, NOW, &setup.epochs).is_err());
        assert!(verify_ci_token(text, &setup.issuers, &setup.rules, NOW, 60).is_err(), "the fuzzer forged a ci token");
    }
    let Some((&offset, mask)) = data.split_first() else { return };
    let mut bytes = setup.token.clone().into_bytes();
    let start = usize::from(offset) * bytes.len() / 256;
    for (byte, m) in bytes[start..].iter_mut().zip(mask) {
        *byte ^= m;
    }
    if bytes != setup.token.as_bytes()
        && let Ok(text) = std::str::from_utf8(&bytes)
    {
        assert!(verify(text).is_err(), "a changed token verified");
    }
});
