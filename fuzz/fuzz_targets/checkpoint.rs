//! Fuzzes checkpoint parsing, both of a bare note text and of a signed note opened with a fixed
//! key. It must never panic, and whatever parses must render back to the same text.
#![no_main]

use airlock_tlog::{Checkpoint, MAX_EXTENSIONS, Verifier};
use libfuzzer_sys::fuzz_target;

const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(checkpoint) = Checkpoint::parse(text)
    {
        assert!(checkpoint.extensions.len() <= MAX_EXTENSIONS);
        assert_eq!(checkpoint.to_text(), text, "parse then render must be the identity");
    }
    let Ok(verifier) = Verifier::parse(VKEY) else { return };
    // The key above never signed a checkpoint, so nothing can open.
    assert!(Checkpoint::open(data, &verifier).is_err());
});
