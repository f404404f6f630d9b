//! Fuzzes the signed-note parser and verifier against a fixed trusted key (Go's example key). It
//! must never panic, what it parses must respect the limits, and nothing may verify: the fuzzer
//! cannot forge an Ed25519 signature, so an accepted note would be a bug.
#![no_main]

use airlock_tlog::{MAX_NOTE_BYTES, MAX_SIGNATURES, Note, Verifier};
use libfuzzer_sys::fuzz_target;

const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
/// The one text the key above has signed, as published with Go's note package.
const SIGNED_TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";

fuzz_target!(|data: &[u8]| {
    let Ok(verifier) = Verifier::parse(VKEY) else { return };
    let Ok(note) = Note::parse(data) else { return };
    assert!(data.len() <= MAX_NOTE_BYTES);
    assert!(note.signatures.len() <= MAX_SIGNATURES);
    assert!(note.text.ends_with('\n'));
    if note.verify(&[&verifier]).is_ok() {
        assert_eq!(note.text, SIGNED_TEXT, "a signature verified on a text the key never signed");
    }
});
