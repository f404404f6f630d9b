//! The transparency log on SQLite: appends inside the caller's transaction and the commits that
//! carry them (with their crash-test failpoints), node lookups for roots and proofs, and
//! checkpoints.

use airlock_core::audit::Event;
use airlock_core::ports::{LogLeaf, LogStore, StoreError, StoredCheckpoint, failpoint};
use airlock_model::Timestamp;
use airlock_tlog::{CompactRange, Hash, NodeId, leaf_hash, root_nodes};
use async_trait::async_trait;
use bytes::Bytes;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::writer::Tx;
use super::{SqliteStore, err, to_i64};

/// Rows per multi-row INSERT, well under SQLite's bound on statement variables.
const INSERT_BATCH: usize = 2000;
/// Most node lookups in one query.
const LOOKUP_BATCH: usize = 200;

fn corrupt(operation: &'static str, what: String) -> StoreError {
    StoreError { operation, source: what.into() }
}

fn hash_of(bytes: &[u8], operation: &'static str) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).ok_or_else(|| corrupt(operation, format!("stored hash has {} bytes, not 32", bytes.len())))
}

fn leaf_row(row: &SqliteRow, operation: &'static str) -> Result<LogLeaf, StoreError> {
    let index: i64 = row.try_get("idx").map_err(err(operation))?;
    let data: Vec<u8> = row.try_get("data").map_err(err(operation))?;
    let hash: Vec<u8> = row.try_get("leaf_hash").map_err(err(operation))?;
    let index = u64::try_from(index).map_err(|e| StoreError { operation, source: Box::new(e) })?;
    Ok(LogLeaf { index, data: Bytes::from(data), leaf_hash: hash_of(&hash, operation)? })
}

/// The stored log's size, read in `tx`: one lookup on the leaves' primary key.
async fn stored_size(tx: &mut Tx, operation: &'static str) -> Result<u64, StoreError> {
    let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves")
        .fetch_one(&mut **tx)
        .await
        .map_err(err(operation))?;
    u64::try_from(size).map_err(|e| StoreError { operation, source: Box::new(e) })
}

/// The right edge of the stored tree, read from the nodes table: O(log n) lookups.
pub(super) async fn load_tail(tx: &mut Tx) -> Result<CompactRange, StoreError> {
    const OP: &str = "log tail load";
    let size = stored_size(tx, OP).await?;
    let mut hashes = Vec::new();
    for id in root_nodes(size) {
        let hash: Option<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM log_nodes WHERE level = ? AND idx = ?")
            .bind(i64::from(id.level))
            .bind(to_i64(id.index))
            .fetch_optional(&mut **tx)
            .await
            .map_err(err(OP))?;
        let hash = hash.ok_or_else(|| corrupt(OP, format!("log node {}/{} is missing", id.level, id.index)))?;
        hashes.push(hash_of(&hash, OP)?);
    }
    CompactRange::from_parts(size, hashes).map_err(|e| StoreError { operation: OP, source: Box::new(e) })
}

/// A leaf row: index, canonical event bytes, leaf hash.
type LeafRow = (u64, Vec<u8>, Hash);
/// The rows one append adds: its leaves, and the tree nodes they complete.
type Rows = (Vec<LeafRow>, Vec<(NodeId, Hash)>);

/// The leaf and node rows for `events`, extending `tail`.
fn rows(tail: &mut CompactRange, events: &[Event]) -> Result<Rows, StoreError> {
    const OP: &str = "log append";
    let mut leaves = Vec::with_capacity(events.len());
    let mut nodes = Vec::with_capacity(events.len().saturating_mul(2));
    for event in events {
        let data = event.to_leaf().map_err(|e| StoreError { operation: OP, source: Box::new(e) })?;
        let hash = leaf_hash(&data);
        let index = tail.size();
        nodes.extend(tail.push(hash));
        leaves.push((index, data, hash));
    }
    Ok((leaves, nodes))
}

/// Appends `events` inside `tx`, extending `tail`. Returns their indices; the caller commits
/// and, only then, keeps the extended tail.
pub(super) async fn append_in(tx: &mut Tx, tail: &mut CompactRange, events: &[Event]) -> Result<Vec<u64>, StoreError> {
    const OP: &str = "log append";
    let (leaves, nodes) = rows(tail, events)?;
    let indices = leaves.iter().map(|l| l.0).collect();
    for chunk in leaves.chunks(INSERT_BATCH) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO log_leaves (idx, data, leaf_hash) ");
        q.push_values(chunk, |mut row, (index, data, hash)| {
            row.push_bind(to_i64(*index)).push_bind(data.as_slice()).push_bind(hash.as_bytes().as_slice());
        });
        q.build().execute(&mut **tx).await.map_err(err(OP))?;
    }
    for chunk in nodes.chunks(INSERT_BATCH) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO log_nodes (level, idx, hash) ");
        q.push_values(chunk, |mut row, (id, hash)| {
            row.push_bind(i64::from(id.level)).push_bind(to_i64(id.index)).push_bind(hash.as_bytes().as_slice());
        });
        q.build().execute(&mut **tx).await.map_err(err(OP))?;
    }
    Ok(indices)
}

/// One statement of a write transaction.
pub(super) type Statement<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Two crash-test failpoints around a commit that appends to the log: `logged` fires with the
/// state and its log entries written but not committed, `done` once both are durable and before
/// the caller is answered.
#[derive(Debug, Clone, Copy)]
pub(super) struct CommitPoints {
    pub(super) logged: &'static str,
    pub(super) done: &'static str,
}

/// Writes that append to the log: the log's cached right edge and the commits that carry it.
impl SqliteStore {
    /// Takes the cached log tail; until it is put back, the next append reloads it.
    pub(super) fn take_log_tail(&self) -> Option<CompactRange> {
        self.log_tail.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Keeps the log tail after a successful commit.
    pub(super) fn keep_log_tail(&self, tail: CompactRange) {
        *self.log_tail.lock().unwrap_or_else(|p| p.into_inner()) = Some(tail);
    }

    /// Appends `events` to the log inside `tx` and commits it: the state change and its log
    /// entries become durable together or not at all. Returns the events' indices.
    pub(super) async fn commit_with_log(&self, mut tx: Tx, events: &[Event]) -> Result<Vec<u64>, StoreError> {
        let tail = self.log_tail(&mut tx).await?;
        self.commit_with_tail(tx, tail, events).await
    }

    /// The log's right edge for a write transaction, so a row can store the index its event
    /// will land at (`tail.size()`) before [`Self::commit_with_tail`] appends it. Until that
    /// commit succeeds the cache stays empty, so a failure anywhere reloads it; a caller that
    /// gives up without appending may hand it back with [`Self::keep_log_tail`].
    ///
    /// The cached edge is used only while the stored log has its size: another process that
    /// appended to the same database meanwhile (a second server started on one data directory)
    /// makes it stale, and appending at a stale edge would fork the tree.
    pub(super) async fn log_tail(&self, tx: &mut Tx) -> Result<CompactRange, StoreError> {
        match self.take_log_tail() {
            Some(tail) if tail.size() == stored_size(tx, "log tail check").await? => Ok(tail),
            _ => load_tail(tx).await,
        }
    }

    /// Appends `events` at `tail` inside `tx` and commits it. Returns the events' indices.
    pub(super) async fn commit_with_tail(
        &self,
        tx: Tx,
        tail: CompactRange,
        events: &[Event],
    ) -> Result<Vec<u64>, StoreError> {
        self.commit_at(tx, tail, events, None).await
    }

    /// Begins a write transaction and runs `statement`, built with the index the next event
    /// appended in it lands at (for a row that stores it). `None` when the statement changed no
    /// row: nothing is written and the log tail stays cached. Otherwise the open transaction and
    /// the tail, for the caller to finish and commit with [`Self::commit_at`].
    pub(super) async fn begin_if<'q>(
        &self,
        operation: &'static str,
        statement: impl FnOnce(i64) -> Statement<'q>,
    ) -> Result<Option<(Tx, CompactRange)>, StoreError> {
        let mut tx = self.begin(operation).await?;
        let tail = self.log_tail(&mut tx).await?;
        let done = statement(to_i64(tail.size())).execute(&mut *tx).await.map_err(err(operation))?;
        if done.rows_affected() == 0 {
            // Nothing was appended, and the write lock is still held: the tail is still right.
            self.keep_log_tail(tail);
            return Ok(None);
        }
        Ok(Some((tx, tail)))
    }

    /// [`Self::begin_if`], then the commit with `event` (and the failpoints `points`) when the
    /// statement changed a row: the index `event` landed at, or `None` when nothing changed and
    /// nothing was logged.
    pub(super) async fn logged_if<'q>(
        &self,
        operation: &'static str,
        statement: impl FnOnce(i64) -> Statement<'q>,
        event: &Event,
        points: Option<CommitPoints>,
    ) -> Result<Option<u64>, StoreError> {
        let Some((tx, tail)) = self.begin_if(operation, statement).await? else { return Ok(None) };
        let indices = self.commit_at(tx, tail, std::slice::from_ref(event), points).await?;
        Ok(indices.first().copied())
    }

    /// [`Self::commit_with_log`] with the crash-test failpoints `points` around the commit.
    pub(super) async fn commit_with_log_at(
        &self,
        mut tx: Tx,
        events: &[Event],
        points: CommitPoints,
    ) -> Result<Vec<u64>, StoreError> {
        let tail = self.log_tail(&mut tx).await?;
        self.commit_at(tx, tail, events, Some(points)).await
    }

    /// Appends `events` at `tail` inside `tx` and commits it, with the failpoints `points`
    /// around the commit. Returns the events' indices.
    pub(super) async fn commit_at(
        &self,
        mut tx: Tx,
        mut tail: CompactRange,
        events: &[Event],
        points: Option<CommitPoints>,
    ) -> Result<Vec<u64>, StoreError> {
        let indices = append_in(&mut tx, &mut tail, events).await?;
        if let Some(points) = points {
            failpoint(points.logged);
        }
        tx.commit().await.map_err(err("log commit"))?;
        self.keep_log_tail(tail);
        if let Some(points) = points {
            failpoint(points.done);
        }
        Ok(indices)
    }
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn append_events(&self, events: &[Event]) -> Result<Vec<u64>, StoreError> {
        let tx = self.begin("log append").await?;
        self.commit_with_log(tx, events).await
    }

    async fn log_size(&self) -> Result<u64, StoreError> {
        const OP: &str = "log size";
        let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves")
            .fetch_one(&self.readers)
            .await
            .map_err(err(OP))?;
        u64::try_from(size).map_err(|e| StoreError { operation: OP, source: Box::new(e) })
    }

    async fn log_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        const OP: &str = "log node lookup";
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_BATCH) {
            let mut q = QueryBuilder::<Sqlite>::new("SELECT level, idx, hash FROM log_nodes WHERE ");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push("(level = ")
                    .push_bind(i64::from(id.level))
                    .push(" AND idx = ")
                    .push_bind(to_i64(id.index))
                    .push(")");
            }
            let rows = q.build().fetch_all(&self.readers).await.map_err(err(OP))?;
            for row in rows {
                let level: i64 = row.try_get("level").map_err(err(OP))?;
                let index: i64 = row.try_get("idx").map_err(err(OP))?;
                let hash: Vec<u8> = row.try_get("hash").map_err(err(OP))?;
                found.insert((level, index), hash_of(&hash, OP)?);
            }
        }
        Ok(ids.iter().map(|id| found.get(&(i64::from(id.level), to_i64(id.index))).copied()).collect())
    }

    async fn log_leaves(&self, start: u64, end: u64) -> Result<Vec<LogLeaf>, StoreError> {
        let query = sqlx::query("SELECT idx, data, leaf_hash FROM log_leaves WHERE idx >= ? AND idx < ? ORDER BY idx")
            .bind(to_i64(start))
            .bind(to_i64(end));
        super::records(&self.readers, query, leaf_row, "log leaves").await
    }

    async fn log_entries(&self, indices: &[u64]) -> Result<Vec<Option<LogLeaf>>, StoreError> {
        const OP: &str = "log entries";
        let mut wanted: Vec<u64> = indices.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found = std::collections::HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(LOOKUP_BATCH) {
            let mut q = QueryBuilder::<Sqlite>::new("SELECT idx, data, leaf_hash FROM log_leaves WHERE idx IN (");
            let mut list = q.separated(", ");
            for index in chunk {
                list.push_bind(to_i64(*index));
            }
            q.push(")");
            let rows = q.build().fetch_all(&self.readers).await.map_err(err(OP))?;
            for row in rows {
                let leaf = leaf_row(&row, OP)?;
                found.insert(leaf.index, leaf);
            }
        }
        Ok(indices.iter().map(|i| found.get(i).cloned()).collect())
    }

    async fn put_checkpoint(&self, checkpoint: &StoredCheckpoint, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO log_checkpoints (size, note, created_at) VALUES (?, ?, ?) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(checkpoint.size))
        .bind(&checkpoint.note)
        .bind(now.as_millis())
        .execute(&self.writer)
        .await
        .map_err(err("checkpoint store"))?;
        Ok(())
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        const OP: &str = "checkpoint lookup";
        let row = sqlx::query("SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.readers)
            .await
            .map_err(err(OP))?;
        row.map(|row| {
            let size: i64 = row.try_get("size").map_err(err(OP))?;
            Ok(StoredCheckpoint {
                size: u64::try_from(size).map_err(|e| StoreError { operation: OP, source: Box::new(e) })?,
                note: row.try_get("note").map_err(err(OP))?,
            })
        })
        .transpose()
    }
}
