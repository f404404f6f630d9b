//! `cargo bench -p airlock-dsse`: full verification of a typical attestation, a ~1.4 KB DSSE
//! envelope holding an in-toto SLSA provenance statement (`tests/data/provenance.json`): parse
//! the envelope, verify its signature over the PAE, check the payload type, parse the statement.
//! Reported as envelopes per second; the maintainers' targets are at least 25,000/s with Ed25519
//! and 15,000/s with ECDSA P-256 on one core. The signature checks alone are measured beside it.

use std::hint::black_box;

use airlock_dsse::{Envelope, EnvelopeLimits, IN_TOTO_PAYLOAD_TYPE, PrivateKey, StatementLimits, pae};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// RFC 8032 §7.1 TEST 1, the key of `tests/data/keys/ed25519.pem`.
const ED25519_SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5,
    0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const P256_PEM: &str = include_str!("../tests/data/keys/p256.pem");
const STATEMENT: &[u8] = include_bytes!("../tests/data/provenance.json");

fn verification(c: &mut Criterion) {
    let keys = [
        ("ed25519", PrivateKey::from_ed25519_seed(&ED25519_SEED)),
        ("p256", PrivateKey::from_pkcs8_pem(P256_PEM).unwrap()),
    ];
    let envelope_limits = EnvelopeLimits::default();
    let statement_limits = StatementLimits::default();
    let mut group = c.benchmark_group("dsse_verify");
    group.throughput(Throughput::Elements(1));
    for (name, key) in &keys {
        let bytes = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, STATEMENT, &[key]).unwrap().to_json();
        let trusted = [key.public_key()];
        eprintln!("{name}: envelope of {} bytes", bytes.len());
        group.bench_function(format!("{name}_envelope_{}b", bytes.len()), |b| {
            b.iter(|| {
                let envelope = Envelope::parse(black_box(&bytes), &envelope_limits).unwrap();
                let (statement, signers) = envelope.verify_in_toto(&trusted, 1, &statement_limits).unwrap();
                assert_eq!(signers.len(), 1);
                statement
            })
        });
        let message = pae(IN_TOTO_PAYLOAD_TYPE, STATEMENT);
        let signature = key.sign(&message).unwrap();
        group.bench_function(format!("{name}_signature_only"), |b| {
            b.iter(|| key.public_key().verify(black_box(&message), black_box(&signature)).unwrap())
        });
    }
    group.bench_function("parse_only", |b| {
        let bytes = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, STATEMENT, &[&keys[0].1]).unwrap().to_json();
        b.iter(|| {
            let envelope = Envelope::parse(black_box(&bytes), &envelope_limits).unwrap();
            envelope.in_toto_statement(&statement_limits).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, verification);
criterion_main!(benches);
