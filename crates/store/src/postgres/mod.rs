//! PostgreSQL backend: one pool shared by reads and writes, for several replicas over one
//! database.
//!
//! **Architecture Invariant:** every write transaction takes the log's sequencer lock (one
//! transaction-scoped advisory lock, [`SEQUENCER_LOCK`]) as its first statement, so writes from
//! every replica serialize as the SQLite backend's single writer does: the log never forks and a
//! conditional write reads what the previous write committed. No process-local lock stands in for
//! it. The log's right edge is cached per store but checked under the lock against the stored
//! size (`log.rs`), since another replica may have appended since.

mod cached;
mod control;
mod errors;
mod identity;
mod log;
mod login;
mod promotion;
mod registry;
mod release;
mod trust;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::{NewManifest, StoreError, TagMode};
use airlock_model::{Digest, RepoName, Tag, Timestamp};
use airlock_tlog::CompactRange;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

pub(crate) use log::CommitPoints;

/// The advisory lock every write transaction takes first: the log's sequencer. One constant
/// key for the whole database, whichever replica writes.
pub(crate) const SEQUENCER_LOCK: i64 = i64::from_be_bytes(*b"\0airlock");

/// Sessions listening for other servers' changes at once (a server watches once).
const LISTENERS_MAX: u32 = 4;

/// Connections a store keeps to PostgreSQL unless told otherwise.
pub const DEFAULT_POOL_MAX: u32 = 16;
/// How long a statement may run before PostgreSQL cancels it, unless told otherwise.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long getting a connection may take (connecting, or waiting for a free one in the pool)
/// before the store reports PostgreSQL unavailable, unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to reach PostgreSQL.
#[derive(Clone)]
pub struct PostgresOptions {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`; TLS is asked for with `sslmode`
    /// (`?sslmode=verify-full&sslrootcert=/path/ca.pem`), as libpq reads it.
    pub url: String,
    /// Most connections this store opens for its operations (at least one); watching for other
    /// servers' changes takes one more while it lasts.
    pub pool_max: u32,
    /// Set as `statement_timeout` on every connection; zero turns it off. A write waiting
    /// longer than this for the log's sequencer lock (other replicas writing) fails too.
    pub statement_timeout: Duration,
    /// Bounds connecting and waiting for a free connection; past it an operation fails with an
    /// error [`airlock_core::ports::store_unavailable`] recognizes.
    pub connect_timeout: Duration,
}

impl PostgresOptions {
    /// Options for `url` with the default pool size and timeouts.
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            pool_max: DEFAULT_POOL_MAX,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// The URL may carry a password: it is shown only as `user@host:port/database`.
impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = PgConnectOptions::from_str(&self.url).map_or_else(|_| "<invalid URL>".to_owned(), |o| target(&o));
        f.debug_struct("PostgresOptions")
            .field("url", &target)
            .field("pool_max", &self.pool_max)
            .field("statement_timeout", &self.statement_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Where `options` point, without the password: `user@host:port/database`.
fn target(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or(options.get_username());
    match options.get_socket() {
        Some(socket) => format!("{}@{}/{database}", options.get_username(), socket.display()),
        None => format!("{}@{}:{}/{database}", options.get_username(), options.get_host(), options.get_port()),
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PostgresStoreError {
    #[error(
        "invalid PostgreSQL URL: {source}; write it as `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, with `?sslmode=verify-full` for TLS"
    )]
    Url {
        #[source]
        source: sqlx::Error,
    },
    /// PostgreSQL did not answer, or went away: an [`std::io::Error`] of kind `NotConnected`
    /// (wrapping the driver's error), which [`airlock_core::ports::store_unavailable`]
    /// recognizes.
    #[error(
        "PostgreSQL at `{target}` is unavailable: {source}; check that it is running and reachable from this host, and with `sslmode=verify-full` that `sslrootcert` trusts its certificate"
    )]
    Unavailable {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot connect to PostgreSQL at `{target}`: {source}; check the URL's user, password, database and `sslmode`"
    )]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate PostgreSQL database `{target}`: {source}; restore from backup or use a newer airlock")]
    Migrate {
        target: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

impl PostgresStoreError {
    /// A failure to connect to `target`: unavailable when PostgreSQL is unreachable or going
    /// away, otherwise as it is (authentication, a missing database).
    fn connecting(target: String, source: sqlx::Error) -> PostgresStoreError {
        match errors::kind_of(&source) {
            Some(kind @ std::io::ErrorKind::NotConnected) => {
                PostgresStoreError::Unavailable { target, source: std::io::Error::new(kind, source) }
            }
            _ => PostgresStoreError::Connect { target, source },
        }
    }
}

/// The PostgreSQL metadata store. Clones share the pool and the cached log tail; several stores
/// (replicas) may share one database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Sessions that `LISTEN` for other servers' changes (`cached.rs`), apart from `pool` so a
    /// watcher never takes a connection a request needs; opened on first use.
    listeners: PgPool,
    /// The log's right edge as of this store's last commit. Another replica may have appended
    /// since, so a write transaction uses it only when its size is the stored size, read under
    /// the sequencer lock; otherwise it reloads the edge from the nodes table.
    log_tail: Arc<Mutex<Option<CompactRange>>>,
}

pub(crate) fn err(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError { operation, source: errors::classify(e) }
}

pub(crate) fn invalid(operation: &'static str, what: String) -> StoreError {
    StoreError { operation, source: what.into() }
}

pub(crate) fn digest_col(row: &PgRow, col: &str, operation: &'static str) -> Result<Digest, StoreError> {
    let text: String = row.try_get(col).map_err(err(operation))?;
    Digest::parse(&text).map_err(|e| StoreError { operation, source: Box::new(e) })
}

/// An optional digest column.
pub(crate) fn digest_opt(row: &PgRow, col: &str, operation: &'static str) -> Result<Option<Digest>, StoreError> {
    let text: Option<String> = row.try_get(col).map_err(err(operation))?;
    text.map(|t| Digest::parse(&t)).transpose().map_err(|e| StoreError { operation, source: Box::new(e) })
}

pub(crate) fn size_col(row: &PgRow, col: &str, operation: &'static str) -> Result<u64, StoreError> {
    let size: i64 = row.try_get(col).map_err(err(operation))?;
    u64::try_from(size).map_err(|e| StoreError { operation, source: Box::new(e) })
}

/// A time column.
pub(crate) fn time_col(row: &PgRow, col: &str, operation: &'static str) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_millis(row.try_get(col).map_err(err(operation))?))
}

/// An optional time column.
pub(crate) fn time_opt(row: &PgRow, col: &str, operation: &'static str) -> Result<Option<Timestamp>, StoreError> {
    let millis: Option<i64> = row.try_get(col).map_err(err(operation))?;
    Ok(millis.map(Timestamp::from_millis))
}

/// A stored log index; a negative one (only a hand-edited row holds one) reads as none.
pub(crate) fn index_col(row: &PgRow, col: &str, operation: &'static str) -> Result<Option<u64>, StoreError> {
    let index: Option<i64> = row.try_get(col).map_err(err(operation))?;
    Ok(index.and_then(|i| u64::try_from(i).ok()))
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Connects to the database `options.url` names and applies pending migrations. Several
    /// replicas may start at once: the migrator holds its own advisory lock while it runs.
    pub async fn connect(options: &PostgresOptions) -> Result<PostgresStore, PostgresStoreError> {
        let connect = PgConnectOptions::from_str(&options.url).map_err(|source| PostgresStoreError::Url { source })?;
        let target = target(&connect);
        // Milliseconds, PostgreSQL's unit for a bare number; zero turns the timeout off.
        let millis = options.statement_timeout.as_millis().to_string();
        let connect = connect.options([("statement_timeout", millis.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_max.max(1))
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|source| PostgresStoreError::connecting(target.clone(), source))?;
        let listeners = PgPoolOptions::new()
            .max_connections(LISTENERS_MAX)
            .acquire_timeout(options.connect_timeout)
            .connect_lazy_with(connect);
        if let Err(source) = sqlx::migrate!("./migrations/postgres").run(&pool).await {
            pool.close().await;
            return Err(PostgresStoreError::Migrate { target, source });
        }
        Ok(PostgresStore { pool, listeners, log_tail: Arc::new(Mutex::new(None)) })
    }

    /// The pool every operation uses, for `migrate`'s copy and checks.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the store: ends its change hints and waits for connections in use to come back.
    pub async fn close(&self) {
        // Calling `close` marks the listening pool closed at once. Its sessions belong to hint
        // streams, which end (and give them back) when next polled; waiting for them here would
        // wait on a stream nobody may be polling.
        drop(self.listeners.close());
        self.pool.close().await;
    }

    /// Begins a write transaction holding the log's sequencer lock, released when it commits or
    /// rolls back. Every write transaction takes it first, whichever replica runs it.
    async fn begin(&self, operation: &'static str) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(err(operation))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(err(operation))?;
        Ok(tx)
    }

    /// The record `sql` finds for `repo` and `key` (a digest or a tag), its `$1` and `$2` in that
    /// order, read by `read`.
    async fn record_in_repo<T>(
        &self,
        sql: &str,
        repo: &RepoName,
        key: &str,
        read: ReadRow<T>,
        operation: &'static str,
    ) -> Result<Option<T>, StoreError> {
        let row =
            sqlx::query(sql).bind(repo.as_str()).bind(key).fetch_optional(&self.pool).await.map_err(err(operation))?;
        row.map(|r| read(&r, operation)).transpose()
    }
}

/// Reads one port record from a row, naming `operation` in any failure: one per record type.
type ReadRow<T> = fn(&PgRow, &'static str) -> Result<T, StoreError>;

/// Every row `query` finds through `executor`, each read by `read`.
async fn records<'q, 'c, T>(
    executor: impl sqlx::Executor<'c, Database = Postgres> + 'q,
    query: log::Statement<'q>,
    read: ReadRow<T>,
    operation: &'static str,
) -> Result<Vec<T>, StoreError>
where
    'c: 'q,
{
    let rows = query.fetch_all(executor).await.map_err(err(operation))?;
    rows.iter().map(|r| read(r, operation)).collect()
}

/// Every row `select` (a `SELECT … FROM` one table) finds, ordered by `order`, or only the one
/// whose `id` is `id`; each read by `read`.
async fn records_or_one<'c, T>(
    executor: impl sqlx::Executor<'c, Database = Postgres>,
    select: &str,
    order: &str,
    id: Option<&str>,
    read: ReadRow<T>,
    operation: &'static str,
) -> Result<Vec<T>, StoreError> {
    let sql = format!("{select} WHERE $1::text IS NULL OR id = $1 ORDER BY {order}");
    records(executor, sqlx::query(&sql).bind(id), read, operation).await
}

/// The id of repository `repo`, read through `executor`; `None` when it was never created.
async fn repo_id(
    executor: impl sqlx::Executor<'_, Database = Postgres>,
    repo: &RepoName,
    operation: &'static str,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
        .bind(repo.as_str())
        .fetch_optional(executor)
        .await
        .map_err(err(operation))
}

async fn ensure_repo(
    tx: &mut Transaction<'static, Postgres>,
    repo: &RepoName,
    now: Timestamp,
) -> Result<i64, StoreError> {
    // The repository usually exists: one lookup. Otherwise one insert, and a lookup again only
    // if another writer created it meanwhile.
    let existing = || sqlx::query_scalar::<_, i64>("SELECT id FROM repositories WHERE name = $1").bind(repo.as_str());
    if let Some(id) = existing().fetch_optional(&mut **tx).await.map_err(err("repository create"))? {
        return Ok(id);
    }
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(repo.as_str())
    .bind(now.as_millis())
    .fetch_optional(&mut **tx)
    .await
    .map_err(err("repository create"))?;
    match created {
        Some(id) => Ok(id),
        None => existing().fetch_one(&mut **tx).await.map_err(err("repository create")),
    }
}

/// Links blob `digest`, stored already, into repository `repo_id`.
async fn link_blob_row(
    tx: &mut Transaction<'static, Postgres>,
    repo_id: i64,
    digest: &Digest,
    now: Timestamp,
    operation: &'static str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(repo_id)
        .bind(digest.as_str())
        .bind(now.as_millis())
        .execute(&mut **tx)
        .await
        .map_err(err(operation))?;
    Ok(())
}

/// What a repository holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// A blob; a quarantined one is held by nobody.
    Blob,
    Manifest,
}

/// Whether repository `repo_id` holds `what` `digest`.
async fn holds(
    tx: &mut Transaction<'static, Postgres>,
    repo_id: i64,
    what: Held,
    digest: &Digest,
    operation: &'static str,
) -> Result<bool, StoreError> {
    let sql = match what {
        Held::Blob => {
            "SELECT EXISTS (SELECT 1 FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
             WHERE rb.repo_id = $1 AND rb.digest = $2 AND b.quarantined_at IS NULL)"
        }
        Held::Manifest => "SELECT EXISTS (SELECT 1 FROM manifests WHERE repo_id = $1 AND digest = $2)",
    };
    sqlx::query_scalar(sql).bind(repo_id).bind(digest.as_str()).fetch_one(&mut **tx).await.map_err(err(operation))
}

/// The first of `digests`, in their order, that repository `repo_id` does not hold as `what`,
/// in one query rather than one each.
async fn first_missing(
    tx: &mut Transaction<'static, Postgres>,
    repo_id: i64,
    what: Held,
    digests: &[Digest],
    operation: &'static str,
) -> Result<Option<Digest>, StoreError> {
    if digests.is_empty() {
        return Ok(None);
    }
    let sql = match what {
        Held::Blob => {
            "SELECT rb.digest FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
             WHERE rb.repo_id = $1 AND rb.digest = ANY($2) AND b.quarantined_at IS NULL"
        }
        Held::Manifest => "SELECT digest FROM manifests WHERE repo_id = $1 AND digest = ANY($2)",
    };
    let wanted: Vec<&str> = digests.iter().map(Digest::as_str).collect();
    let found: Vec<String> =
        sqlx::query_scalar(sql).bind(repo_id).bind(&wanted).fetch_all(&mut **tx).await.map_err(err(operation))?;
    let held: std::collections::HashSet<String> = found.into_iter().collect();
    Ok(digests.iter().find(|d| !held.contains(d.as_str())).cloned())
}

/// Stores manifest `m` in repository `repo_id`, pushed by `pushed_by`, unless it is there.
async fn insert_manifest_row(
    tx: &mut Transaction<'static, Postgres>,
    repo_id: i64,
    m: &NewManifest,
    pushed_by: &str,
    now: Timestamp,
    operation: &'static str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO manifests (repo_id, digest, media_type, body, artifact_type, subject, annotations, created_at, pushed_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(repo_id)
    .bind(m.digest.as_str())
    .bind(&m.media_type)
    .bind(m.body.as_ref())
    .bind(m.artifact_type.as_deref())
    .bind(m.subject.as_ref().map(Digest::as_str))
    .bind(&m.annotations_json)
    .bind(now.as_millis())
    .bind(pushed_by)
    .execute(&mut **tx)
    .await
    .map_err(err(operation))?;
    Ok(())
}

/// Where `tag` in repository `repo_id` points, read inside `tx`.
async fn tag_target(
    tx: &mut Transaction<'static, Postgres>,
    repo_id: i64,
    tag: &Tag,
    operation: &'static str,
) -> Result<Option<Digest>, StoreError> {
    let current: Option<String> = sqlx::query_scalar("SELECT digest FROM tags WHERE repo_id = $1 AND name = $2")
        .bind(repo_id)
        .bind(tag.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(err(operation))?;
    current.map(|c| Digest::parse(&c)).transpose().map_err(|e| StoreError { operation, source: Box::new(e) })
}

/// Points `tag` in repository `repo_id` at `digest`, creating or moving it.
async fn upsert_tag(
    tx: &mut Transaction<'static, Postgres>,
    repo_id: i64,
    tag: &Tag,
    digest: &Digest,
    now: Timestamp,
    operation: &'static str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tags (repo_id, name, digest, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (repo_id, name) DO UPDATE SET digest = EXCLUDED.digest, updated_at = EXCLUDED.updated_at",
    )
    .bind(repo_id)
    .bind(tag.as_str())
    .bind(digest.as_str())
    .bind(now.as_millis())
    .execute(&mut **tx)
    .await
    .map_err(err(operation))?;
    Ok(())
}

/// What pointing a tag at a digest came to.
enum TagSet {
    /// The tag names that digest already; nothing changed.
    Unchanged,
    /// The tag is write-once and names `current`; nothing changed.
    Immutable { current: Digest },
    /// Created (`previous` is `None`) or moved from `previous`; the caller logs it.
    Set { previous: Option<Digest> },
}

/// Points `tag` in repository `repo_id` at `digest`, unless `mode` forbids moving it.
async fn set_tag(
    tx: &mut Transaction<'static, Postgres>,
    repo_id: i64,
    tag: &Tag,
    digest: &Digest,
    mode: TagMode,
    now: Timestamp,
    operation: &'static str,
) -> Result<TagSet, StoreError> {
    let current = tag_target(tx, repo_id, tag, operation).await?;
    match current {
        Some(current) if &current == digest => return Ok(TagSet::Unchanged),
        Some(current) if mode == TagMode::WriteOnce => return Ok(TagSet::Immutable { current }),
        _ => {}
    }
    upsert_tag(tx, repo_id, tag, digest, now, operation).await?;
    Ok(TagSet::Set { previous: current })
}

/// The event recording a tag set to `subject`'s digest: created, or moved from `previous`.
fn tag_event(previous: Option<&Digest>, actor: &Actor, now: Timestamp, subject: Subject) -> Event {
    match previous {
        None => Event::allowed(EventKind::TagCreate, actor, now, subject),
        Some(previous) => Event::allowed(EventKind::TagMove, actor, now, subject)
            .with_detail("previous", serde_json::Value::from(previous.as_str())),
    }
}

/// Stores a manifest the engine writes (a release record, a VSA, a release bundle) with its
/// inline blobs, linked into repository `repo_id`, inside the caller's transaction.
async fn insert_engine_manifest(
    tx: &mut Transaction<'static, Postgres>,
    repo_id: i64,
    written: &airlock_core::ports::EngineManifest,
    now: Timestamp,
    operation: &'static str,
) -> Result<(), StoreError> {
    for (digest, bytes) in &written.blobs {
        sqlx::query(
            "INSERT INTO blobs (digest, size, inline_data, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest.as_str())
        .bind(to_i64(bytes.len() as u64))
        .bind(bytes.as_ref())
        .bind(now.as_millis())
        .execute(&mut **tx)
        .await
        .map_err(err(operation))?;
        link_blob_row(tx, repo_id, digest, now, operation).await?;
    }
    insert_manifest_row(tx, repo_id, &written.manifest, airlock_core::audit::SYSTEM, now, operation).await
}
