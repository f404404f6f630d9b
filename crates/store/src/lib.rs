//! The metadata store: the core's ports implemented over SQLite (embedded, the default) and
//! PostgreSQL (several replicas over one database).
//!
//! **Architecture Invariant:** each backend speaks its own SQL and owns its own migrations; what
//! they share is the conformance suite in `airlock-test-support`, not code.

// No panics in the library; its unit tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod migrate;
mod postgres;
mod sqlite;

pub use postgres::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_MAX, DEFAULT_STATEMENT_TIMEOUT, PostgresOptions, PostgresStore,
    PostgresStoreError,
};
pub use sqlite::{Check, CheckVerdict, SqliteStore, SqliteStoreError};
