//! Helpers shared by the integration tests.

use std::path::PathBuf;

use airlock_model::Timestamp;

/// `tests/cases`.
pub(crate) fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

/// `tests/data`.
pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// An RFC 3339 UTC time as a timestamp.
pub(crate) fn at(text: &str) -> Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(text).unwrap();
    Timestamp::from_millis(t.timestamp_millis())
}
