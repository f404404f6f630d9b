//! The store conformance suite against the SQLite backend, each check on a fresh database.

use airlock_store::SqliteStore;

async fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("metadata.db")).await.expect("store opens");
    (dir, store)
}

airlock_test_support::store_conformance!(fresh());
