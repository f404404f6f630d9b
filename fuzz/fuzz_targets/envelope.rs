//! Fuzzes DSSE envelope parsing, signature verification against a fixed trusted key (RFC 8032
//! TEST 1, key "A" of the DSSE test vectors) and the in-toto statement inside. It must never
//! panic, what it parses must respect the limits, and a verified envelope must verify the same
//! after rendering and parsing it again.
#![no_main]

use airlock_dsse::{Envelope, EnvelopeLimits, PrivateKey, StatementLimits};
use libfuzzer_sys::fuzz_target;

const SEED_A: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5,
    0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];

fuzz_target!(|data: &[u8]| {
    let limits = EnvelopeLimits { max_bytes: 64 * 1024, max_signatures: 4 };
    let Ok(envelope) = Envelope::parse(data, &limits) else { return };
    assert!(!envelope.signatures.is_empty() && envelope.signatures.len() <= limits.max_signatures);
    assert!(envelope.signatures.iter().all(|s| !s.sig.is_empty() && s.keyid.as_deref() != Some("")));
    let key = PrivateKey::from_ed25519_seed(&SEED_A);
    let verified = envelope.verified_keys(&[key.public_key(), key.public_key()]);
    assert!(verified.len() <= 1, "one key counted twice");
    let again =
        Envelope::parse(&envelope.to_json(), &EnvelopeLimits::default()).expect("a parsed envelope renders parseably");
    assert_eq!(again, envelope, "parse then render then parse must be the identity");
    assert_eq!(again.verified_keys(&[key.public_key()]).len(), verified.len());
    if let Ok(statement) = envelope.in_toto_statement(&StatementLimits::default()) {
        assert!(!statement.subjects.is_empty());
        assert!(statement.sha256_subjects().all(|hex| hex.len() == 64));
    }
});
