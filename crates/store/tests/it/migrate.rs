//! `airlock migrate`'s metadata half: a SQLite database with rows in its tables copied into a
//! fresh PostgreSQL database and checked, and the refusals that leave the target as it was.
//! Skipped when `AIRLOCK_TEST_POSTGRES_URL` is unset (`scripts/services start postgres`).

use std::path::{Path, PathBuf};

use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::{CachedState, LogStore, ManifestIndex, NewManifest, StoredCheckpoint};
use airlock_model::{Digest, RepoName, Tag, Timestamp};
use airlock_store::SqliteStore;
use airlock_store::migrate::{MigrateError, Migration};
use airlock_test_support::postgres::TestDatabase;
use airlock_tlog::{Checkpoint, CompactRange, Signer, leaf_hash};
use bytes::Bytes;
use sqlx::Connection;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn manifest(body: &str) -> NewManifest {
    NewManifest {
        digest: Digest::of(body.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        artifact_type: None,
        subject: None,
        annotations_json: "{}".to_owned(),
        required_blobs: Vec::new(),
        required_manifests: Vec::new(),
        attestation: None,
    }
}

/// Runs `sql` on the SQLite file at `path` with a connection of its own.
async fn sqlite_exec(path: &Path, sql: &str) {
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.unwrap();
}

/// A SQLite database under `dir` with rows in every kind of column: manifests in two
/// repositories (identity ids, bytes, a tag), log entries with a signed checkpoint, a disabled
/// user (a boolean), an attestation verdict (JSON), a break-glass promotion, a trust root and a
/// role (each raising the cached-state version).
async fn source(dir: &Path) -> PathBuf {
    let path = dir.join("metadata.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (a, b) = (RepoName::parse("dev/a").unwrap(), RepoName::parse("dev/b").unwrap());
    let latest = Tag::parse("latest").unwrap();
    for (repo, body) in [(&a, "{\"one\":1}"), (&b, "{\"two\":2}"), (&a, "{\"three\":3}")] {
        let tag = Some((&latest, airlock_core::ports::TagMode::Mutable));
        store.put_manifest(repo, &manifest(body), tag, &Actor::system(), at(1)).await.unwrap();
    }
    let event = Event::allowed(EventKind::ServerStart, &Actor::system(), at(2), Subject::default());
    store.append_events(&[event]).await.unwrap();
    let size = store.log_size().await.unwrap();
    let mut tree = CompactRange::new();
    for leaf in store.log_leaves(0, size).await.unwrap() {
        tree.push(leaf_hash(&leaf.data));
    }
    let signer = Signer::from_seed("example.com/log", [7; 32]).unwrap();
    let note = Checkpoint { origin: "example.com/log".to_owned(), size, root: tree.root(), extensions: Vec::new() }
        .sign(&signer)
        .unwrap();
    store.put_checkpoint(&StoredCheckpoint { size, note }, at(3)).await.unwrap();
    store.close().await;
    sqlite_exec(
        &path,
        "INSERT INTO principals (id, kind, epoch, disabled, created_at, email) VALUES ('alice', 'user', 3, 1, 5, 'alice@example.com'); \
         INSERT INTO principals (id, kind, epoch, disabled, created_at) VALUES ('ci', 'service_account', 1, 0, 5); \
         INSERT INTO role_bindings (principal, role) VALUES ('alice', 'release-approver'); \
         INSERT INTO attestations (repo_id, manifest, subject, predicate_type, envelope, verdict, root_version, created_at) \
           SELECT repo_id, digest, digest, 'https://slsa.dev/provenance/v1', X'00FF', '{\"trusted\":true,\"signers\":[\"ci\"]}', 1, 6 \
           FROM manifests WHERE repo_id = 2; \
         INSERT INTO promotions (id, source, target, digest, requester, reason, status, policy_digest, evidence_digest, report, \
           created_at, updated_at, break_glass) \
           VALUES ('prm-1', 'staging/a', 'prod/a', 'sha256:00', 'ci', 'urgent', 'promoted', 'p', 'e', '{}', 7, 7, 1); \
         INSERT INTO trust_roots (version, document, created_at) VALUES (1, X'7B7D', 8); \
         INSERT INTO roles (name, definition, created_at) VALUES ('reader', '{}', 9);",
    )
    .await;
    path
}

#[tokio::test]
async fn a_single_node_moves_to_postgres() {
    let Some(db) = TestDatabase::create("a_single_node_moves_to_postgres").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = source(dir.path()).await;
    let migration = Migration::prepare(&path, &db.options()).await.unwrap();
    let versions = migration.versions();
    assert_eq!(versions.sqlite_before, versions.sqlite_after, "nothing to migrate forward");
    let order: Vec<&str> = migration.tables().collect();
    let before = |a: &str, b: &str| order.iter().position(|t| *t == a) < order.iter().position(|t| *t == b);
    assert!(
        before("repositories", "manifests") && before("manifests", "tags") && before("principals", "role_bindings")
    );
    let mut seen = Vec::new();
    let copied = migration.copy_tables(|p| seen.push((p.table.to_owned(), p.copied, p.rows))).await.unwrap();
    assert!(seen.contains(&("manifests".to_owned(), 3, 3)), "{seen:?}");
    let verified = migration.verify().await.unwrap();
    assert_eq!(verified.tables, copied);
    let rows = |table: &str| copied.iter().find(|t| t.table == table).map(|t| t.rows);
    assert_eq!((rows("repositories"), rows("principals"), rows("cached_state")), (Some(2), Some(2), Some(1)));
    let size = migration.source().log_size().await.unwrap();
    assert_eq!(verified.log_size, size);
    assert_eq!(verified.checkpoint.as_ref().map(|c| c.size), Some(size));

    let target = migration.target();
    assert_eq!(target.log_size().await.unwrap(), size);
    assert_eq!(target.latest_checkpoint().await.unwrap(), verified.checkpoint);
    let source_version = migration.source().cached_state_version().await.unwrap();
    assert!(target.cached_state_version().await.unwrap() >= source_version);
    let a = RepoName::parse("dev/a").unwrap();
    let latest = target.manifest_by_tag(&a, &Tag::parse("latest").unwrap()).await.unwrap().unwrap();
    assert_eq!(latest.body.as_ref(), b"{\"three\":3}");
    // The identity sequence moved past the copied ids: a new repository takes the next one, and
    // the log goes on from the copied tree.
    let c = RepoName::parse("dev/c").unwrap();
    target.put_manifest(&c, &manifest("{\"four\":4}"), None, &Actor::system(), at(10)).await.unwrap();
    assert_eq!(target.log_size().await.unwrap(), size + 1);
    let mut pg = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM repositories WHERE name = 'dev/c'").fetch_one(&mut pg).await.unwrap();
    assert_eq!(id, 3);
    let (disabled, kind): (bool, String) =
        sqlx::query_as("SELECT disabled, kind FROM principals WHERE id = 'alice'").fetch_one(&mut pg).await.unwrap();
    assert_eq!((disabled, kind.as_str()), (true, "user"));
    let signers: String =
        sqlx::query_scalar("SELECT verdict->'signers'->>0 FROM attestations").fetch_one(&mut pg).await.unwrap();
    assert_eq!(signers, "ci");
    let break_glass: bool =
        sqlx::query_scalar("SELECT break_glass FROM promotions WHERE id = 'prm-1'").fetch_one(&mut pg).await.unwrap();
    assert!(break_glass);
    migration.close().await;
}

#[tokio::test]
async fn a_target_that_holds_anything_is_refused_and_left_alone() {
    let Some(db) = TestDatabase::create("a_target_that_holds_anything_is_refused").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = source(dir.path()).await;
    let target = db.store().await;
    let event = Event::allowed(EventKind::ServerStart, &Actor::system(), at(2), Subject::default());
    target.append_events(&[event]).await.unwrap();
    let error = Migration::prepare(&path, &db.options()).await.unwrap_err();
    assert!(matches!(&error, MigrateError::TargetNotEmpty { table } if table == "log_leaves"), "{error}");
    assert!(error.to_string().contains("drop and recreate the database, or point `--to` at an empty one"), "{error}");
    assert_eq!(target.log_size().await.unwrap(), 1);
    target.close().await;
}

#[tokio::test]
async fn a_table_or_column_only_in_sqlite_is_named() {
    let Some(db) = TestDatabase::create("a_table_or_column_only_in_sqlite").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = source(dir.path()).await;
    sqlite_exec(&path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT) STRICT").await;
    let error = Migration::prepare(&path, &db.options()).await.unwrap_err();
    assert!(matches!(&error, MigrateError::TableOnlyInSource { table } if table == "notes"), "{error}");
    sqlite_exec(&path, "DROP TABLE notes; ALTER TABLE roles ADD COLUMN owner TEXT").await;
    let error = Migration::prepare(&path, &db.options()).await.unwrap_err();
    assert!(
        matches!(&error, MigrateError::ColumnOnlyInSource { table, column } if table == "roles" && column == "owner"),
        "{error}"
    );
}

#[tokio::test]
async fn a_failed_copy_leaves_the_target_empty() {
    let Some(db) = TestDatabase::create("a_failed_copy_leaves_the_target_empty").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = source(dir.path()).await;
    // PostgreSQL's `jsonb` refuses it, after the tables before `attestations` went in.
    sqlite_exec(&path, "UPDATE attestations SET verdict = 'not json'").await;
    let migration = Migration::prepare(&path, &db.options()).await.unwrap();
    let error = migration.copy_tables(|_| {}).await.unwrap_err();
    assert!(matches!(&error, MigrateError::Copy { table, .. } if table == "attestations"), "{error}");
    let target = migration.target();
    assert_eq!(target.log_size().await.unwrap(), 0);
    assert_eq!(target.catalog(None, 10).await.unwrap(), Vec::<String>::new());
    migration.close().await;
    // Once the row is fixed, the same target takes the copy.
    sqlite_exec(&path, "UPDATE attestations SET verdict = '{}'").await;
    let migration = Migration::prepare(&path, &db.options()).await.unwrap();
    migration.copy_tables(|_| {}).await.unwrap();
    migration.verify().await.unwrap();
    migration.close().await;
}

#[tokio::test]
async fn an_older_sqlite_file_is_migrated_forward_first() {
    let Some(db) = TestDatabase::create("an_older_sqlite_file_is_migrated_forward").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metadata.db");
    let mut older = sqlx::migrate!("./migrations/sqlite");
    let all = older.migrations.len();
    older.migrations = older.migrations[..all - 3].to_vec().into();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    older.run(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let applied = || async {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        let version: i64 =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        version
    };
    let old = applied().await;
    // With nowhere to copy it, the file stays as it was.
    let nowhere = airlock_store::PostgresOptions {
        connect_timeout: std::time::Duration::from_secs(1),
        ..airlock_store::PostgresOptions::new("postgres://nobody@127.0.0.1:1/nothing")
    };
    let error = Migration::prepare(&path, &nowhere).await.unwrap_err();
    assert!(matches!(error, MigrateError::Postgres(_)), "{error}");
    assert_eq!(applied().await, old);
    let migration = Migration::prepare(&path, &db.options()).await.unwrap();
    let versions = migration.versions();
    assert_eq!(versions.sqlite_before, old);
    assert!(versions.sqlite_before < versions.sqlite_after, "{versions:?}");
    assert_eq!(applied().await, versions.sqlite_after);
    migration.copy_tables(|_| {}).await.unwrap();
    migration.verify().await.unwrap();
    migration.close().await;
}

#[tokio::test]
async fn a_missing_file_or_a_database_of_something_else_is_refused() {
    let Some(db) = TestDatabase::create("a_missing_file_is_refused").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.db");
    let error = Migration::prepare(&missing, &db.options()).await.unwrap_err();
    assert!(matches!(error, MigrateError::SourceMissing { .. }), "{error}");
    assert!(!missing.exists(), "a missing file is not created");
    let other = dir.path().join("other.db");
    sqlite_exec(&dir.path().join("other.db?mode=rwc"), "CREATE TABLE t (x INTEGER)").await;
    let error = Migration::prepare(&other, &db.options()).await.unwrap_err();
    assert!(matches!(error, MigrateError::NotAirlock { .. }), "{error}");
}
