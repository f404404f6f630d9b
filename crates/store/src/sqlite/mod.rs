//! SQLite backend: WAL journal, `synchronous=FULL`, one writer connection and a pool of readers.

mod cached;
mod control;
mod health;

pub use health::{Check, CheckVerdict};
mod identity;
mod lend;
mod log;
mod login;
mod promotion;
mod readers;
mod release;
mod trust;
mod uploads;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::{
    BlobIndex, BlobRecord, BlobTotals, ManifestIndex, ManifestRecord, NewManifest, PutManifestOutcome, ReferrerRecord,
    StoreError, TagMode, failpoint,
};
use airlock_model::{Digest, RepoName, Tag, Timestamp, UploadId};
use airlock_tlog::CompactRange;
use async_trait::async_trait;
use bytes::Bytes;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow, SqliteSynchronous};
use sqlx::{Row, Sqlite};

use log::CommitPoints;
use writer::Tx;

/// How long a connection waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// WAL pages between automatic checkpoints (SQLite's default is 1000): fewer, larger
/// checkpoints keep per-commit latency flat under a stream of small log appends.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;
/// Reader connections; SQLite in WAL mode serves readers concurrently with the one writer.
const READERS: usize = 8;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SqliteStoreError {
    #[error("cannot open metadata database `{path}`: {source}")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate metadata database `{path}`: {source}; restore from backup or use a newer airlock")]
    Migrate {
        path: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// The SQLite metadata store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: writer::Writer,
    readers: readers::Readers,
    /// The log's right edge as of the last commit, so an append needs no O(log n) reads. Each
    /// write transaction checks it against the stored size first (another process may have
    /// appended to the same file); any doubt resets it to `None` and the next append reloads it
    /// from the nodes table.
    log_tail: Arc<Mutex<Option<CompactRange>>>,
}

pub(crate) fn err(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError { operation, source: health::classify(e) }
}

pub(crate) fn digest_col(row: &SqliteRow, col: &str, operation: &'static str) -> Result<Digest, StoreError> {
    let text: String = row.try_get(col).map_err(err(operation))?;
    Digest::parse(&text).map_err(|e| StoreError { operation, source: Box::new(e) })
}

fn size_col(row: &SqliteRow, col: &str, operation: &'static str) -> Result<u64, StoreError> {
    let size: i64 = row.try_get(col).map_err(err(operation))?;
    u64::try_from(size).map_err(|e| StoreError { operation, source: Box::new(e) })
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating if needed) `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, SqliteStoreError> {
        let display = path.display().to_string();
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| SqliteStoreError::Open { path: display.clone(), source })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string());
        // A local SQLite connection cannot go stale, so no ping before each use.
        let writer = writer::Writer::open(options.clone())
            .await
            .map_err(|source| SqliteStoreError::Open { path: display.clone(), source })?;
        {
            let mut conn =
                writer.acquire().await.map_err(|source| SqliteStoreError::Open { path: display.clone(), source })?;
            sqlx::migrate!("./migrations/sqlite")
                .run(&mut *conn)
                .await
                .map_err(|source| SqliteStoreError::Migrate { path: display.clone(), source })?;
        }
        let readers = readers::Readers::open(options, READERS)
            .await
            .map_err(|source| SqliteStoreError::Open { path: display, source })?;
        Ok(SqliteStore { writer, readers, log_tail: Arc::new(Mutex::new(None)) })
    }

    /// Closes both pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }

    async fn begin(&self, operation: &'static str) -> Result<Tx, StoreError> {
        // IMMEDIATE takes the write lock up front, so a transaction never fails mid-way on upgrade.
        self.writer.begin("BEGIN IMMEDIATE").await.map_err(err(operation))
    }

    /// The record `sql` finds for `repo` and `key` (a digest or a tag), its two `?`s in that
    /// order, read by `read`.
    async fn record_in_repo<T>(
        &self,
        sql: &str,
        repo: &RepoName,
        key: &str,
        read: ReadRow<T>,
        operation: &'static str,
    ) -> Result<Option<T>, StoreError> {
        let row = sqlx::query(sql)
            .bind(repo.as_str())
            .bind(key)
            .fetch_optional(&self.readers)
            .await
            .map_err(err(operation))?;
        row.map(|r| read(&r, operation)).transpose()
    }
}

/// Reads one port record from a row, naming `operation` in any failure: one per record type.
type ReadRow<T> = fn(&SqliteRow, &'static str) -> Result<T, StoreError>;

/// Every row `query` finds through `executor`, each read by `read`.
async fn records<'q, 'c, T>(
    executor: impl sqlx::Executor<'c, Database = Sqlite> + 'q,
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
    executor: impl sqlx::Executor<'c, Database = Sqlite>,
    select: &str,
    order: &str,
    id: Option<&str>,
    read: ReadRow<T>,
    operation: &'static str,
) -> Result<Vec<T>, StoreError> {
    let sql = format!("{select} WHERE ? IS NULL OR id = ? ORDER BY {order}");
    records(executor, sqlx::query(&sql).bind(id).bind(id), read, operation).await
}

/// The id of repository `repo`, read through `executor`; `None` when it was never created.
async fn repo_id(
    executor: impl sqlx::Executor<'_, Database = Sqlite>,
    repo: &RepoName,
    operation: &'static str,
) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
        .bind(repo.as_str())
        .fetch_optional(executor)
        .await
        .map_err(err(operation))
}

async fn ensure_repo(tx: &mut Tx, repo: &RepoName, now: Timestamp) -> Result<i64, StoreError> {
    // The repository usually exists: one lookup. Otherwise one insert, and a lookup again only
    // if another writer created it meanwhile.
    let existing = || sqlx::query_scalar::<_, i64>("SELECT id FROM repositories WHERE name = ?").bind(repo.as_str());
    if let Some(id) = existing().fetch_optional(&mut **tx).await.map_err(err("repository create"))? {
        return Ok(id);
    }
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
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
    tx: &mut Tx,
    repo_id: i64,
    digest: &Digest,
    now: Timestamp,
    operation: &'static str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
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
    tx: &mut Tx,
    repo_id: i64,
    what: Held,
    digest: &Digest,
    operation: &'static str,
) -> Result<bool, StoreError> {
    let sql = match what {
        Held::Blob => {
            "SELECT 1 FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
             WHERE rb.repo_id = ? AND rb.digest = ? AND b.quarantined_at IS NULL"
        }
        Held::Manifest => "SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?",
    };
    let held: Option<i64> = sqlx::query_scalar(sql)
        .bind(repo_id)
        .bind(digest.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(err(operation))?;
    Ok(held.is_some())
}

/// The first of `digests`, in their order, that repository `repo_id` does not hold as `what`:
/// one query for up to [`HELD_BATCH`] of them, rather than one each.
async fn first_missing(
    tx: &mut Tx,
    repo_id: i64,
    what: Held,
    digests: &[Digest],
    operation: &'static str,
) -> Result<Option<Digest>, StoreError> {
    let mut held = std::collections::HashSet::with_capacity(digests.len());
    for chunk in digests.chunks(HELD_BATCH) {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(match what {
            Held::Blob => {
                "SELECT rb.digest FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
                 WHERE b.quarantined_at IS NULL AND rb.repo_id = "
            }
            Held::Manifest => "SELECT digest FROM manifests WHERE repo_id = ",
        });
        q.push_bind(repo_id);
        q.push(match what {
            Held::Blob => " AND rb.digest IN (",
            Held::Manifest => " AND digest IN (",
        });
        let mut list = q.separated(", ");
        for digest in chunk {
            list.push_bind(digest.as_str());
        }
        q.push(")");
        let found: Vec<String> = q.build_query_scalar().fetch_all(&mut **tx).await.map_err(err(operation))?;
        held.extend(found);
    }
    Ok(digests.iter().find(|d| !held.contains(d.as_str())).cloned())
}

/// Digests checked per query by [`first_missing`].
const HELD_BATCH: usize = 200;

/// Stores manifest `m` in repository `repo_id`, pushed by `pushed_by`, unless it is there.
async fn insert_manifest_row(
    tx: &mut Tx,
    repo_id: i64,
    m: &NewManifest,
    pushed_by: &str,
    now: Timestamp,
    operation: &'static str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO manifests (repo_id, digest, media_type, body, artifact_type, subject, annotations, created_at, pushed_by) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
    tx: &mut Tx,
    repo_id: i64,
    tag: &Tag,
    digest: &Digest,
    mode: TagMode,
    now: Timestamp,
    operation: &'static str,
) -> Result<TagSet, StoreError> {
    let current: Option<String> = sqlx::query_scalar("SELECT digest FROM tags WHERE repo_id = ? AND name = ?")
        .bind(repo_id)
        .bind(tag.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(err(operation))?;
    let current =
        current.map(|c| Digest::parse(&c)).transpose().map_err(|e| StoreError { operation, source: Box::new(e) })?;
    match current {
        Some(current) if &current == digest => return Ok(TagSet::Unchanged),
        Some(current) if mode == TagMode::WriteOnce => return Ok(TagSet::Immutable { current }),
        _ => {}
    }
    sqlx::query(
        "INSERT INTO tags (repo_id, name, digest, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
    )
    .bind(repo_id)
    .bind(tag.as_str())
    .bind(digest.as_str())
    .bind(now.as_millis())
    .execute(&mut **tx)
    .await
    .map_err(err(operation))?;
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
    tx: &mut Tx,
    repo_id: i64,
    written: &airlock_core::ports::EngineManifest,
    now: Timestamp,
    operation: &'static str,
) -> Result<(), StoreError> {
    for (digest, bytes) in &written.blobs {
        sqlx::query(
            "INSERT INTO blobs (digest, size, inline_data, created_at) VALUES (?, ?, ?, ?) \
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

fn blob_record(row: &SqliteRow, operation: &'static str) -> Result<BlobRecord, StoreError> {
    let inline: Option<Vec<u8>> = row.try_get("inline_data").map_err(err(operation))?;
    let quarantined: Option<i64> = row.try_get("quarantined_at").map_err(err(operation))?;
    Ok(BlobRecord {
        digest: digest_col(row, "digest", operation)?,
        size: size_col(row, "size", operation)?,
        inline: inline.map(Bytes::from),
        quarantined: quarantined.is_some(),
    })
}

#[async_trait]
impl BlobIndex for SqliteStore {
    async fn blob_in_repo(&self, repo: &RepoName, digest: &Digest) -> Result<Option<BlobRecord>, StoreError> {
        let sql = "SELECT b.digest, b.size, b.inline_data, b.quarantined_at FROM blobs b \
                   JOIN repo_blobs rb ON rb.digest = b.digest JOIN repositories r ON r.id = rb.repo_id \
                   WHERE r.name = ? AND b.digest = ?";
        self.record_in_repo(sql, repo, digest.as_str(), blob_record, "blob lookup").await
    }

    async fn blob_sizes_in_repo(
        &self,
        repo: &RepoName,
        digests: &[Digest],
    ) -> Result<std::collections::HashMap<Digest, u64>, StoreError> {
        const OP: &str = "blob size lookup";
        let mut sizes = std::collections::HashMap::with_capacity(digests.len());
        for chunk in digests.chunks(HELD_BATCH) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(
                "SELECT b.digest, b.size FROM blobs b JOIN repo_blobs rb ON rb.digest = b.digest \
                 JOIN repositories r ON r.id = rb.repo_id WHERE r.name = ",
            );
            q.push_bind(repo.as_str());
            q.push(" AND b.digest IN (");
            let mut list = q.separated(", ");
            for digest in chunk {
                list.push_bind(digest.as_str());
            }
            q.push(")");
            for row in q.build().fetch_all(&self.readers).await.map_err(err(OP))? {
                sizes.insert(digest_col(&row, "digest", OP)?, size_col(&row, "size", OP)?);
            }
        }
        Ok(sizes)
    }

    async fn insert_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        inline: Option<Bytes>,
        closing: Option<&UploadId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        const OP: &str = "blob insert";
        let mut tx = self.begin(OP).await?;
        // One command to the writer's thread: the repository (created if new), the blob, its
        // link into the repository, and the upload session it closes (none when `?6` is NULL).
        sqlx::query(
            "INSERT INTO repositories (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING; \
             INSERT INTO blobs (digest, size, inline_data, created_at) VALUES (?3, ?4, ?5, ?2) \
             ON CONFLICT (digest) DO UPDATE SET quarantined_at = NULL, inline_data = excluded.inline_data, \
             size = excluded.size; \
             INSERT INTO repo_blobs (repo_id, digest, created_at) SELECT id, ?3, ?2 FROM repositories WHERE name = ?1 \
             ON CONFLICT DO NOTHING; \
             DELETE FROM uploads WHERE id = ?6",
        )
        .bind(repo.as_str())
        .bind(now.as_millis())
        .bind(digest.as_str())
        .bind(to_i64(size))
        .bind(inline.as_deref())
        .bind(closing.map(UploadId::as_str))
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        failpoint("blob-commit-linked");
        tx.commit().await.map_err(err(OP))?;
        failpoint("blob-commit-done");
        Ok(())
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const OP: &str = "blob mount";
        let mut tx = self.begin(OP).await?;
        let Some(from_id) = repo_id(&mut *tx, from, OP).await? else { return Ok(false) };
        if !holds(&mut tx, from_id, Held::Blob, digest, OP).await? {
            return Ok(false);
        }
        let repo_id = ensure_repo(&mut tx, repo, now).await?;
        link_blob_row(&mut tx, repo_id, digest, now, OP).await?;
        tx.commit().await.map_err(err(OP))?;
        Ok(true)
    }

    async fn unlink_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let delete = |_| {
            sqlx::query(
                "DELETE FROM repo_blobs WHERE digest = ? AND repo_id = (SELECT id FROM repositories WHERE name = ?)",
            )
            .bind(digest.as_str())
            .bind(repo.as_str())
        };
        let subject = Subject { repository: Some(repo.clone()), digest: Some(digest.clone()), tag: None };
        let event = Event::allowed(EventKind::BlobDelete, actor, now, subject);
        Ok(self.logged_if("blob unlink", delete, &event, None).await?.is_some())
    }

    async fn blobs_after(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<BlobRecord>, StoreError> {
        let query = sqlx::query(
            "SELECT digest, size, inline_data, quarantined_at FROM blobs \
             WHERE digest > ? AND quarantined_at IS NULL ORDER BY digest LIMIT ?",
        )
        .bind(after.map_or("", |d| d.as_str()))
        .bind(i64::from(limit));
        records(&self.readers, query, blob_record, "blob scan").await
    }

    async fn quarantine_blob(&self, digest: &Digest, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE blobs SET quarantined_at = ? WHERE digest = ?")
            .bind(now.as_millis())
            .bind(digest.as_str())
            .execute(&self.writer)
            .await
            .map_err(err("blob quarantine"))?;
        Ok(())
    }

    async fn blob_totals(&self) -> Result<BlobTotals, StoreError> {
        const OP: &str = "blob totals";
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM blobs WHERE quarantined_at IS NULL",
        )
        .fetch_one(&self.readers)
        .await
        .map_err(err(OP))?;
        Ok(BlobTotals { count: size_col(&row, "n", OP)?, bytes: size_col(&row, "bytes", OP)? })
    }
}

fn manifest_record(row: &SqliteRow, operation: &'static str) -> Result<ManifestRecord, StoreError> {
    let body: Vec<u8> = row.try_get("body").map_err(err(operation))?;
    Ok(ManifestRecord {
        digest: digest_col(row, "digest", operation)?,
        media_type: row.try_get("media_type").map_err(err(operation))?,
        body: Bytes::from(body),
    })
}

fn referrer_record(row: &SqliteRow, operation: &'static str) -> Result<ReferrerRecord, StoreError> {
    Ok(ReferrerRecord {
        digest: digest_col(row, "digest", operation)?,
        media_type: row.try_get("media_type").map_err(err(operation))?,
        size: size_col(row, "size", operation)?,
        artifact_type: row.try_get("artifact_type").map_err(err(operation))?,
        annotations_json: row.try_get("annotations").map_err(err(operation))?,
    })
}

/// The log event recording an attestation's verification at ingest.
fn attestation_event(
    repo: &RepoName,
    manifest: &Digest,
    attestation: &airlock_core::ports::NewAttestation,
    actor: &Actor,
    now: Timestamp,
) -> Event {
    let subject = Subject { repository: Some(repo.clone()), digest: Some(attestation.subject.clone()), tag: None };
    let verdict = &attestation.verdict;
    let mut event = Event::allowed(EventKind::AttestationIngest, actor, now, subject)
        .with_detail("referrer", serde_json::Value::from(manifest.as_str()))
        .with_detail("predicate_type", serde_json::Value::from(attestation.predicate_type.as_str()))
        .with_detail("signers", serde_json::json!(verdict.signers))
        .with_detail("root_version", serde_json::Value::from(verdict.root_version));
    if !verdict.trusted {
        event.outcome = airlock_core::audit::Outcome::Denied { reasons: verdict.reasons.clone() };
    }
    event
}

#[async_trait]
impl ManifestIndex for SqliteStore {
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &NewManifest,
        tag: Option<(&Tag, TagMode)>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<PutManifestOutcome, StoreError> {
        const OP: &str = "manifest put";
        let mut tx = self.begin(OP).await?;
        let repo_id = ensure_repo(&mut tx, repo, now).await?;
        // The references are checked inside the transaction that stores the manifest.
        if let Some(digest) = first_missing(&mut tx, repo_id, Held::Blob, &manifest.required_blobs, OP).await? {
            return Ok(PutManifestOutcome::MissingBlob(digest));
        }
        if let Some(digest) = first_missing(&mut tx, repo_id, Held::Manifest, &manifest.required_manifests, OP).await? {
            return Ok(PutManifestOutcome::MissingManifest(digest));
        }
        insert_manifest_row(&mut tx, repo_id, manifest, actor.principal(), now, OP).await?;
        let subject = |tag: Option<&Tag>| Subject {
            repository: Some(repo.clone()),
            digest: Some(manifest.digest.clone()),
            tag: tag.cloned(),
        };
        let mut events = vec![Event::allowed(EventKind::ManifestPush, actor, now, subject(tag.map(|t| t.0)))];
        if let Some(attestation) = &manifest.attestation {
            trust::insert_attestation(&mut tx, repo_id, &manifest.digest, attestation, now).await?;
            events.push(attestation_event(repo, &manifest.digest, attestation, actor, now));
        }
        if let Some((tag, mode)) = tag {
            match set_tag(&mut tx, repo_id, tag, &manifest.digest, mode, now, OP).await? {
                TagSet::Unchanged => {}
                TagSet::Immutable { current } => return Ok(PutManifestOutcome::TagImmutable { current }),
                TagSet::Set { previous } => events.push(tag_event(previous.as_ref(), actor, now, subject(Some(tag)))),
            }
        }
        // A push naming a tag sets it: its crash points are the tag's.
        let points = match tag {
            Some(_) => CommitPoints { logged: "tag-set-logged", done: "tag-set-done" },
            None => CommitPoints { logged: "manifest-push-logged", done: "manifest-push-done" },
        };
        let indices = self.commit_with_log_at(tx, &events, points).await?;
        let log_index =
            indices.first().copied().ok_or_else(|| StoreError { operation: OP, source: "no log index".into() })?;
        Ok(PutManifestOutcome::Stored { log_index })
    }

    async fn manifest_by_digest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>, StoreError> {
        let sql = "SELECT m.digest, m.media_type, m.body FROM manifests m JOIN repositories r ON r.id = m.repo_id \
                   WHERE r.name = ? AND m.digest = ?";
        self.record_in_repo(sql, repo, digest.as_str(), manifest_record, "manifest lookup").await
    }

    async fn manifest_by_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Option<ManifestRecord>, StoreError> {
        let sql = "SELECT m.digest, m.media_type, m.body FROM tags t JOIN repositories r ON r.id = t.repo_id \
                   JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest WHERE r.name = ? AND t.name = ?";
        self.record_in_repo(sql, repo, tag.as_str(), manifest_record, "manifest lookup").await
    }

    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const OP: &str = "manifest delete";
        let mut tx = self.begin(OP).await?;
        let Some(repo_id) = repo_id(&mut *tx, repo, OP).await? else { return Ok(false) };
        let tags: Vec<String> =
            sqlx::query_scalar("SELECT name FROM tags WHERE repo_id = ? AND digest = ? ORDER BY name")
                .bind(repo_id)
                .bind(digest.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(err(OP))?;
        sqlx::query("DELETE FROM tags WHERE repo_id = ? AND digest = ?")
            .bind(repo_id)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await
            .map_err(err(OP))?;
        let done = sqlx::query("DELETE FROM manifests WHERE repo_id = ? AND digest = ?")
            .bind(repo_id)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await
            .map_err(err(OP))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let subject = Subject { repository: Some(repo.clone()), digest: Some(digest.clone()), tag: None };
        let event =
            Event::allowed(EventKind::ManifestDelete, actor, now, subject).with_detail("tags", serde_json::json!(tags));
        self.commit_with_log(tx, &[event]).await?;
        Ok(true)
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag, actor: &Actor, now: Timestamp) -> Result<bool, StoreError> {
        const OP: &str = "tag delete";
        let mut tx = self.begin(OP).await?;
        let current: Option<String> = sqlx::query_scalar(
            "DELETE FROM tags WHERE name = ? AND repo_id = (SELECT id FROM repositories WHERE name = ?) RETURNING digest",
        )
        .bind(tag.as_str())
        .bind(repo.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(err(OP))?;
        let Some(current) = current else { return Ok(false) };
        let digest = Digest::parse(&current).map_err(|e| StoreError { operation: OP, source: Box::new(e) })?;
        let subject = Subject { repository: Some(repo.clone()), digest: Some(digest), tag: Some(tag.clone()) };
        self.commit_with_log(tx, &[Event::allowed(EventKind::TagDelete, actor, now, subject)]).await?;
        Ok(true)
    }

    async fn tags(&self, repo: &RepoName, last: Option<&str>, n: u32) -> Result<Option<Vec<String>>, StoreError> {
        let Some(repo_id) = repo_id(&self.readers, repo, "repository lookup").await? else { return Ok(None) };
        let tags = sqlx::query_scalar("SELECT name FROM tags WHERE repo_id = ? AND name > ? ORDER BY name LIMIT ?")
            .bind(repo_id)
            .bind(last.unwrap_or(""))
            .bind(i64::from(n))
            .fetch_all(&self.readers)
            .await
            .map_err(err("tag list"))?;
        Ok(Some(tags))
    }

    async fn catalog(&self, last: Option<&str>, n: u32) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT name FROM repositories r WHERE name > ? AND (\
               EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id) OR \
               EXISTS (SELECT 1 FROM repo_blobs b WHERE b.repo_id = r.id)) \
             ORDER BY name LIMIT ?",
        )
        .bind(last.unwrap_or(""))
        .bind(i64::from(n))
        .fetch_all(&self.readers)
        .await
        .map_err(err("catalog"))
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ReferrerRecord>, StoreError> {
        let query = sqlx::query(
            "SELECT m.digest, m.media_type, length(m.body) AS size, m.artifact_type, m.annotations \
             FROM manifests m JOIN repositories r ON r.id = m.repo_id \
             WHERE r.name = ? AND m.subject = ? AND (? IS NULL OR m.artifact_type = ?) \
             ORDER BY m.created_at, m.digest LIMIT ?",
        )
        .bind(repo.as_str())
        .bind(subject.as_str())
        .bind(artifact_type)
        .bind(artifact_type)
        .bind(i64::from(airlock_core::registry::REFERRERS_MAX));
        records(&self.readers, query, referrer_record, "referrers").await
    }
}
