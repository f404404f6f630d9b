//! The metadata store: the core's ports implemented over SQLite (embedded, the default).
//!
//! **Architecture Invariant:** each backend speaks its own SQL and owns its own migrations; what
//! they share is the conformance suite in `airlock-test-support`, not code.

mod sqlite;

pub use sqlite::{Check, CheckVerdict, SqliteStore, SqliteStoreError};
