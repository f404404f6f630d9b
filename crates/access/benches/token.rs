//! `cargo bench -p airlock-access --bench token`: verifying an Airlock registry token as the
//! registry does on every request (signature, claims, clock and the epoch lookup among 1,000
//! principals), and minting one. Budget: 50 µs per verification; Ed25519 verification alone is
//! about 34 µs on the project machine.

use std::collections::HashMap;
use std::hint::black_box;

use airlock_access::token::{Access, Claims, PrincipalKind, TokenKey, TokenKind, Verifier, mint};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};

const NOW: u64 = 1_767_225_600;
const ISSUER: &str = "https://airlock.example.com";
const AUDIENCE: &str = "airlock-registry";

fn access(name: &str, actions: &[&str]) -> Access {
    Access {
        kind: "repository".into(),
        name: name.into(),
        actions: actions.iter().map(|action| (*action).to_owned()).collect(),
    }
}

fn token(c: &mut Criterion) {
    let key = TokenKey::generate();
    let previous = TokenKey::generate();
    let verifier =
        Verifier::new([key.public().clone(), previous.public().clone()].into_iter().collect(), ISSUER, AUDIENCE);
    let epochs: HashMap<String, u64> = (0..1000u64).map(|i| (format!("principal-{i:04}"), i % 7)).collect();
    let mut claims = Claims::new(
        ISSUER,
        AUDIENCE,
        "principal-0500",
        PrincipalKind::ServiceAccount,
        500 % 7,
        TokenKind::Registry,
        NOW,
    );
    claims.access = vec![
        access("dev/payments-api", &["pull", "push"]),
        access("staging/payments-api", &["pull"]),
        access("prod/payments-api", &["pull"]),
    ];
    let token = mint(&key, &claims).expect("mint");
    assert_eq!(verifier.verify(&token, TokenKind::Registry, NOW + 10, &epochs).expect("verify"), claims);

    let mut group = c.benchmark_group("token");
    group.bench_function("verify_registry_3_access", |b| {
        b.iter(|| verifier.verify(black_box(&token), TokenKind::Registry, black_box(NOW + 10), &epochs))
    });
    group.bench_function("mint_registry_3_access", |b| b.iter(|| mint(&key, black_box(&claims))));
    // The floor: the Ed25519 check alone over the same bytes, strict as the verifier's.
    let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
    let signature =
        ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).expect("base64url")).expect("64 bytes");
    let public = ed25519_dalek::VerifyingKey::from_bytes(key.public().as_bytes()).expect("point");
    group.bench_function("ed25519_verify_strict_alone", |b| {
        b.iter(|| public.verify_strict(black_box(signing_input.as_bytes()), &signature))
    });
    group.bench_function("ed25519_verify_alone", |b| {
        b.iter(|| ed25519_dalek::Verifier::verify(&public, black_box(signing_input.as_bytes()), &signature))
    });
    group.finish();
}

criterion_group!(benches, token);
criterion_main!(benches);
