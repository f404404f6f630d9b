//! The metadata store: the core's ports implemented over SQLite (embedded, the default).
//!
//! **Architecture Invariant:** each backend speaks its own SQL and owns its own migrations; what
//! they share is the conformance suite in `airlock-test-support`, not code.

mod sqlite;

pub use sqlite::{Check, CheckVerdict, SqliteStore, SqliteStoreError};

/// The environment variable naming a failpoint, for crash-safety tests.
pub const FAILPOINT_ENV: &str = "AIRLOCK_FAILPOINT";

/// Aborts the process, as `kill -9` would, when [`FAILPOINT_ENV`] names `name`. Crash-safety
/// tests set it to stop a server between two steps of a commit; unset, this does nothing.
pub(crate) fn failpoint(name: &str) {
    if std::env::var_os(FAILPOINT_ENV).is_some_and(|v| v == name) {
        eprintln!("airlock: failpoint `{name}` reached; aborting");
        std::process::abort();
    }
}
