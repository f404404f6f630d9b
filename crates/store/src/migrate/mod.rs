//! `airlock migrate`'s metadata half: a single node's SQLite database copied into an empty
//! PostgreSQL database, then checked through the ports.
//!
//! [`Migration::prepare`] opens both sides (each migrated to the schema this binary knows),
//! pairs their tables and columns (`schema.rs`) and refuses a target that holds anything;
//! [`Migration::copy_tables`] copies every row in one PostgreSQL transaction (`copy.rs`), so a
//! failure leaves the target as empty as it was; [`Migration::verify`] compares the log's size,
//! root and latest checkpoint, and every table's row count, on both sides (`verify.rs`).
//!
//! **Architecture Invariant:** the tables copied are the ones the databases hold, read from their
//! catalogs, never a list kept here: a table or column on one side only is an error naming it, so
//! a migration added to one backend alone cannot be dropped silently.

mod copy;
mod schema;
mod verify;

use std::path::Path;
use std::str::FromStr;

use airlock_core::ports::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

pub use verify::Verified;

use crate::{PostgresOptions, PostgresStore, PostgresStoreError, SqliteStore, SqliteStoreError};
use schema::TablePlan;

/// What stopped a migration. Until the copy's transaction commits, the target is left as it
/// was found.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "no SQLite database at `{path}`; pass the data directory's metadata database, `--from sqlite:DATA/metadata.db`"
    )]
    SourceMissing { path: String },
    #[error(
        "`{path}` is not an airlock metadata database (it has no migration history); pass the data directory's `metadata.db`"
    )]
    NotAirlock { path: String },
    #[error(
        "the SQLite database `{path}` has schema version {found}, which this airlock does not know (it knows up to {known}); migrate with the airlock release that last ran the server"
    )]
    SourceNewer { path: String, found: i64, known: i64 },
    #[error(
        "the PostgreSQL database is at schema version {found}, not {known} as this airlock expects; point `--to` at an empty database"
    )]
    TargetSchema { found: i64, known: i64 },
    #[error(transparent)]
    Sqlite(#[from] SqliteStoreError),
    #[error(transparent)]
    Postgres(#[from] PostgresStoreError),
    #[error("cannot read {what} from SQLite database `{path}`: {source}")]
    SourceRead {
        path: String,
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot read {what} from PostgreSQL: {source}")]
    TargetRead {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the PostgreSQL database is not empty: table `{table}` holds rows; nothing was copied: drop and recreate the database, or point `--to` at an empty one"
    )]
    TargetNotEmpty { table: String },
    #[error(
        "table `{table}` is in the SQLite database but not in PostgreSQL, so its rows would be lost; nothing was copied: this airlock cannot migrate a table its PostgreSQL schema lacks (remove it first if it was added by hand)"
    )]
    TableOnlyInSource { table: String },
    #[error(
        "table `{table}` is in PostgreSQL but not in the SQLite database; nothing was copied: point `--to` at an empty database this airlock created, or remove a table added by hand"
    )]
    TableOnlyInTarget { table: String },
    #[error(
        "column `{table}.{column}` is in the SQLite database but not in PostgreSQL, so its values would be lost; nothing was copied: this airlock cannot migrate a column its PostgreSQL schema lacks (remove it first if it was added by hand)"
    )]
    ColumnOnlyInSource { table: String, column: String },
    #[error(
        "column `{table}.{column}` is in PostgreSQL but not in the SQLite database; nothing was copied: point `--to` at an empty database this airlock created, or remove a column added by hand"
    )]
    ColumnOnlyInTarget { table: String, column: String },
    #[error(
        "column `{table}.{column}` is `{sqlite}` in SQLite but `{postgres}` in PostgreSQL, and migrate knows no conversion between them; nothing was copied: this airlock cannot migrate this schema"
    )]
    ColumnTypes { table: String, column: String, sqlite: String, postgres: String },
    #[error(
        "the foreign keys of tables {tables} reference each other in a cycle, so no order of inserts satisfies them; this airlock cannot copy such a schema"
    )]
    ForeignKeyCycle { tables: String },
    #[error(
        "row {row} of table `{table}`: column `{column}` holds {value}, which PostgreSQL's `{postgres}` cannot hold; nothing was copied: correct the row in the SQLite database, then run `airlock migrate` again"
    )]
    Value { table: String, column: String, row: u64, value: String, postgres: &'static str },
    #[error(
        "cannot copy table `{table}`: {source}; nothing was copied: fix the cause, then run `airlock migrate` again"
    )]
    Copy {
        table: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "cannot {step} the copy's PostgreSQL transaction: {source}; nothing was copied: fix the cause, then run `airlock migrate` again"
    )]
    Transaction {
        step: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the SQLite database's log does not hold together: {why}; nothing was copied: run `airlock doctor` on the data directory (docs/runbook.md, \"The log does not match at start\")"
    )]
    SourceLog { why: String },
    #[error(
        "the copy does not match its source: {what}; was the server still running? stop it, drop and recreate the PostgreSQL database, and run `airlock migrate` again"
    )]
    Mismatch { what: String },
    #[error("cannot check the copy: {0}; run `airlock migrate` again into a recreated database")]
    Check(#[from] StoreError),
}

/// The SQLite database's schema version before and after this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersions {
    /// The highest migration the file had applied when it was opened.
    pub sqlite_before: i64,
    /// The highest migration it has now (this binary's last); above `sqlite_before` when
    /// opening it migrated it forward.
    pub sqlite_after: i64,
    /// PostgreSQL's schema version, this binary's last.
    pub postgres: i64,
}

/// Rows of one table copied so far, reported as the copy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableProgress<'a> {
    pub table: &'a str,
    pub copied: u64,
    /// The rows the table holds.
    pub rows: u64,
    /// Whether the table is all in (still inside the transaction, which commits at the end).
    pub done: bool,
}

/// A table copied, with its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopied {
    pub table: String,
    pub rows: u64,
}

/// A migration from one SQLite database into one PostgreSQL database, both open.
#[derive(Debug)]
pub struct Migration {
    source: SqliteStore,
    /// Read-only connections to the SQLite file, for the copy and the row counts.
    reader: SqlitePool,
    path: String,
    target: PostgresStore,
    plan: Vec<TablePlan>,
    versions: SchemaVersions,
}

/// The highest version among `migrator`'s migrations.
fn last_version(migrator: &sqlx::migrate::Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

impl Migration {
    /// Opens the SQLite database at `sqlite` (migrating it forward to this binary's schema when
    /// it is older) and the PostgreSQL database `postgres` names (creating this binary's schema
    /// in it), pairs their tables, and checks that the target holds nothing.
    pub async fn prepare(sqlite: &Path, postgres: &PostgresOptions) -> Result<Migration, MigrateError> {
        let path = sqlite.display().to_string();
        if !sqlite.is_file() {
            return Err(MigrateError::SourceMissing { path });
        }
        let known = last_version(&sqlx::migrate!("./migrations/sqlite"));
        let reader = read_only(sqlite, &path).await?;
        let before = applied_sqlite(&reader, &path).await;
        // Closed before the store migrates the file, so nothing here holds an older snapshot.
        reader.close().await;
        let before = before?;
        if before > known {
            return Err(MigrateError::SourceNewer { path, found: before, known });
        }
        // The target first: an older SQLite file is migrated forward (which an older airlock
        // cannot undo) only once there is somewhere to copy it.
        let target = PostgresStore::connect(postgres).await?;
        let source = match SqliteStore::open(sqlite).await {
            Ok(source) => source,
            Err(e) => {
                target.close().await;
                return Err(e.into());
            }
        };
        let reader = match read_only(sqlite, &path).await {
            Ok(reader) => reader,
            Err(e) => {
                source.close().await;
                target.close().await;
                return Err(e);
            }
        };
        let mut migration = Migration {
            source,
            reader,
            path,
            target,
            plan: Vec::new(),
            versions: SchemaVersions { sqlite_before: before, sqlite_after: known, postgres: 0 },
        };
        match migration.check().await {
            Ok(()) => Ok(migration),
            Err(e) => {
                migration.close().await;
                Err(e)
            }
        }
    }

    /// Reads both schemas and the target's contents: the plan, or why there is none.
    async fn check(&mut self) -> Result<(), MigrateError> {
        let after = applied_sqlite(&self.reader, &self.path).await?;
        self.versions.sqlite_after = after;
        let known = last_version(&sqlx::migrate!("./migrations/postgres"));
        let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(self.target.pool())
            .await
            .map_err(|source| MigrateError::TargetRead { what: "its schema version", source })?;
        let found = found.unwrap_or(0);
        if found != known {
            return Err(MigrateError::TargetSchema { found, known });
        }
        self.versions.postgres = found;
        let mut conn = self.reader.acquire().await.map_err(|source| MigrateError::SourceRead {
            path: self.path.clone(),
            what: "the schema".to_owned(),
            source,
        })?;
        let sqlite = schema::sqlite_side(&mut conn, &self.path).await?;
        drop(conn);
        let postgres = schema::postgres_side(self.target.pool()).await?;
        self.plan = schema::plan(&sqlite, &postgres)?;
        verify::log_state(&self.source).await?.map_err(|why| MigrateError::SourceLog { why })?;
        let mut conn = self
            .target
            .pool()
            .acquire()
            .await
            .map_err(|source| MigrateError::TargetRead { what: "whether its tables are empty", source })?;
        copy::ensure_empty(&mut conn, &self.plan).await
    }

    /// The schema versions found and reached.
    pub fn versions(&self) -> SchemaVersions {
        self.versions
    }

    /// The tables, in the order they are inserted.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.plan.iter().map(|t| t.name.as_str())
    }

    /// The SQLite store, for reading the source through the ports (its blob index).
    pub fn source(&self) -> &SqliteStore {
        &self.source
    }

    /// The PostgreSQL store the rows go to.
    pub fn target(&self) -> &PostgresStore {
        &self.target
    }

    /// Copies every row of every table in one PostgreSQL transaction, telling `progress` as
    /// each batch goes in. Returns each table's rows, in the order copied.
    pub async fn copy_tables(&self, progress: impl FnMut(TableProgress<'_>)) -> Result<Vec<TableCopied>, MigrateError> {
        copy::copy(&self.reader, &self.path, &self.target, &self.plan, progress).await
    }

    /// Compares both sides through the ports (the log's size, its root from the stored nodes,
    /// the latest checkpoint, whose root the target's tree must reproduce) and every table's
    /// row count. Any difference is an error.
    pub async fn verify(&self) -> Result<Verified, MigrateError> {
        verify::verify(self).await
    }

    /// Closes every connection.
    pub async fn close(self) {
        self.reader.close().await;
        self.source.close().await;
        self.target.close().await;
    }
}

/// A read-only pool of one connection to the SQLite file at `path`.
async fn read_only(path: &Path, display: &str) -> Result<SqlitePool, MigrateError> {
    let fail = |source| MigrateError::SourceRead { path: display.to_owned(), what: "the database".to_owned(), source };
    let options = SqliteConnectOptions::from_str("sqlite://").map_err(fail)?.filename(path).read_only(true);
    SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(fail)
}

/// The highest migration applied to the SQLite database.
async fn applied_sqlite(reader: &SqlitePool, path: &str) -> Result<i64, MigrateError> {
    let history: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(reader)
    .await
    .map_err(|source| MigrateError::SourceRead {
        path: path.to_owned(),
        what: "the migration history".to_owned(),
        source,
    })?;
    if !history {
        return Err(MigrateError::NotAirlock { path: path.to_owned() });
    }
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(reader)
        .await
        .map_err(|source| MigrateError::SourceRead {
            path: path.to_owned(),
            what: "the migration history".to_owned(),
            source,
        })?;
    Ok(version.unwrap_or(0))
}
