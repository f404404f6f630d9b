//! The store conformance suite against each backend, each check on a fresh database: SQLite
//! here, PostgreSQL (with what only a shared server has) in `postgres.rs`; `airlock migrate`'s copy
//! from one to the other in `migrate.rs`.

use airlock_store::SqliteStore;

mod migrate;
mod postgres;

async fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("metadata.db")).await.expect("store opens");
    (dir, store)
}

airlock_test_support::store_conformance!(fresh());
