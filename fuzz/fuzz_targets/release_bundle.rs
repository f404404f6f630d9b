//! Fuzzes release bundle verification (`airlock verify --bundle`): arbitrary bytes are read as a
//! bundle and checked against two fixed keys that never signed anything. It must never panic, and
//! nothing may verify.
#![no_main]

use airlock_core::promotion::bundle::verify_bundle;
use airlock_dsse::{Algorithm, PublicKey};
use airlock_tlog::Verifier;
use libfuzzer_sys::fuzz_target;

/// RFC 8032 §7.1, test 1: a valid Ed25519 public key.
const RELEASE_KEY: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3,
    0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];
const LOG_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

fuzz_target!(|data: &[u8]| {
    let release_key = PublicKey::from_raw(Algorithm::Ed25519, &RELEASE_KEY).expect("a valid key");
    let log_key = Verifier::parse(LOG_KEY).expect("a valid verifier key");
    assert!(verify_bundle(data, &release_key, &log_key).is_err());
});
