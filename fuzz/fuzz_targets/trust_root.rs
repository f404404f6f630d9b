//! Fuzzes trust root parsing and bootstrap at a fixed time. Neither may panic; whatever parses
//! must be writable again, and a bootstrapped root must be signed by a threshold of its own keys.
#![no_main]

use airlock_model::Timestamp;
use airlock_trust::{RootDocument, RootLimits, TrustedRoot};
use libfuzzer_sys::fuzz_target;

/// 2026-06-01T00:00:00Z, the time the test fixtures are judged at.
const NOW: Timestamp = Timestamp::from_millis(1_780_272_000_000);

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = RootDocument::parse(data, &RootLimits::default()) else { return };
    assert!(doc.root().root_threshold >= 1, "a parsed root has a threshold of at least 1");
    assert!(doc.root().to_signed_bytes().is_ok(), "a parsed root must be writable again");
    if let Ok(root) = TrustedRoot::bootstrap(doc, NOW) {
        assert!(root.check_fresh(NOW).is_ok());
        assert_eq!(root.version(), root.root().version);
    }
});
