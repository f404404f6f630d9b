//! The transparency log on PostgreSQL: appends inside the caller's transaction (which holds the
//! sequencer lock), the cached right edge checked against the stored size under that lock, the
//! commits that carry appends (with their crash-test failpoints), node lookups for roots and
//! proofs, and checkpoints.

use airlock_core::audit::Event;
use airlock_core::ports::{LogLeaf, LogStore, StoreError, StoredCheckpoint, failpoint};
use airlock_model::Timestamp;
use airlock_tlog::{CompactRange, Hash, NodeId, leaf_hash, root_nodes};
use async_trait::async_trait;
use bytes::Bytes;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::{PostgresStore, err, invalid, to_i64};

/// Rows per INSERT: each column goes as one array, so this bounds memory, not parameters.
const INSERT_BATCH: usize = 2000;
/// Most node or leaf lookups in one query.
const LOOKUP_BATCH: usize = 1000;

fn hash_of(bytes: &[u8], operation: &'static str) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).ok_or_else(|| invalid(operation, format!("stored hash has {} bytes, not 32", bytes.len())))
}

fn leaf_row(row: &PgRow, operation: &'static str) -> Result<LogLeaf, StoreError> {
    let index: i64 = row.try_get("idx").map_err(err(operation))?;
    let data: Vec<u8> = row.try_get("data").map_err(err(operation))?;
    let hash: Vec<u8> = row.try_get("leaf_hash").map_err(err(operation))?;
    let index = u64::try_from(index).map_err(|e| StoreError { operation, source: Box::new(e) })?;
    Ok(LogLeaf { index, data: Bytes::from(data), leaf_hash: hash_of(&hash, operation)? })
}

/// The number of stored leaves, read through `executor`: the leaves are contiguous from 0, so
/// one step down the primary key.
async fn stored_size(
    executor: impl sqlx::Executor<'_, Database = Postgres>,
    operation: &'static str,
) -> Result<u64, StoreError> {
    let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_leaves")
        .fetch_one(executor)
        .await
        .map_err(err(operation))?;
    u64::try_from(size).map_err(|e| StoreError { operation, source: Box::new(e) })
}

/// The stored hashes of `ids`, in the order asked; `None` for a node not stored.
async fn nodes_on(
    executor: impl sqlx::Executor<'_, Database = Postgres>,
    ids: &[NodeId],
    operation: &'static str,
) -> Result<Vec<Option<Hash>>, StoreError> {
    let levels: Vec<i16> = ids.iter().map(|id| i16::from(id.level)).collect();
    let indices: Vec<i64> = ids.iter().map(|id| to_i64(id.index)).collect();
    let rows = sqlx::query(
        "SELECT n.level, n.idx, n.hash FROM log_nodes n \
         JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx",
    )
    .bind(&levels)
    .bind(&indices)
    .fetch_all(executor)
    .await
    .map_err(err(operation))?;
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let level: i16 = row.try_get("level").map_err(err(operation))?;
        let index: i64 = row.try_get("idx").map_err(err(operation))?;
        let hash: Vec<u8> = row.try_get("hash").map_err(err(operation))?;
        found.insert((level, index), hash_of(&hash, operation)?);
    }
    Ok(levels.iter().zip(&indices).map(|key| found.get(&(*key.0, *key.1)).copied()).collect())
}

/// The right edge of the stored tree of `size` leaves, read from the nodes table in one query.
async fn load_tail(tx: &mut Transaction<'static, Postgres>, size: u64) -> Result<CompactRange, StoreError> {
    const OP: &str = "log tail load";
    let ids = root_nodes(size);
    let mut hashes = Vec::with_capacity(ids.len());
    for (id, hash) in ids.iter().zip(nodes_on(&mut **tx, &ids, OP).await?) {
        hashes.push(hash.ok_or_else(|| invalid(OP, format!("log node {}/{} is missing", id.level, id.index)))?);
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
pub(super) async fn append_in(
    tx: &mut Transaction<'static, Postgres>,
    tail: &mut CompactRange,
    events: &[Event],
) -> Result<Vec<u64>, StoreError> {
    const OP: &str = "log append";
    let (leaves, nodes) = rows(tail, events)?;
    let indices = leaves.iter().map(|l| l.0).collect();
    for chunk in leaves.chunks(INSERT_BATCH) {
        let idx: Vec<i64> = chunk.iter().map(|l| to_i64(l.0)).collect();
        let data: Vec<&[u8]> = chunk.iter().map(|l| l.1.as_slice()).collect();
        let hashes: Vec<&[u8]> = chunk.iter().map(|l| l.2.as_bytes().as_slice()).collect();
        sqlx::query(
            "INSERT INTO log_leaves (idx, data, leaf_hash) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])",
        )
        .bind(&idx)
        .bind(&data)
        .bind(&hashes)
        .execute(&mut **tx)
        .await
        .map_err(err(OP))?;
    }
    for chunk in nodes.chunks(INSERT_BATCH) {
        let levels: Vec<i16> = chunk.iter().map(|n| i16::from(n.0.level)).collect();
        let idx: Vec<i64> = chunk.iter().map(|n| to_i64(n.0.index)).collect();
        let hashes: Vec<&[u8]> = chunk.iter().map(|n| n.1.as_bytes().as_slice()).collect();
        sqlx::query(
            "INSERT INTO log_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])",
        )
        .bind(&levels)
        .bind(&idx)
        .bind(&hashes)
        .execute(&mut **tx)
        .await
        .map_err(err(OP))?;
    }
    Ok(indices)
}

/// One statement of a write transaction.
pub(super) type Statement<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// Two crash-test failpoints around a commit that appends to the log: `logged` fires with the
/// state and its log entries written but not committed, `done` once both are durable and before
/// the caller is answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommitPoints {
    pub(crate) logged: &'static str,
    pub(crate) done: &'static str,
}

/// Writes that append to the log: the log's cached right edge and the commits that carry it.
impl PostgresStore {
    /// Takes the cached log tail; until it is put back, the next append reloads it.
    fn take_log_tail(&self) -> Option<CompactRange> {
        self.log_tail.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Keeps the log tail after a successful commit (or a transaction that appended nothing).
    pub(super) fn keep_log_tail(&self, tail: CompactRange) {
        *self.log_tail.lock().unwrap_or_else(|p| p.into_inner()) = Some(tail);
    }

    /// The log's right edge for a write transaction, which holds the sequencer lock (so no
    /// replica appends until it ends), so a row can store the index its event will land at
    /// (`tail.size()`) before [`Self::commit_at`] appends it. The cached tail is used when its
    /// size is the stored size, read now under the lock; another replica's appends (or this
    /// store's own, kept out of order) make it differ, and the edge is reloaded from the nodes.
    /// Until the commit succeeds the cache stays empty, so a failure anywhere reloads it.
    pub(super) async fn log_tail(&self, tx: &mut Transaction<'static, Postgres>) -> Result<CompactRange, StoreError> {
        let size = stored_size(&mut **tx, "log tail check").await?;
        match self.take_log_tail() {
            Some(tail) if tail.size() == size => Ok(tail),
            _ => load_tail(tx, size).await,
        }
    }

    /// Appends `events` to the log inside `tx` and commits it: the state change and its log
    /// entries become durable together or not at all. Returns the events' indices.
    pub(super) async fn commit_with_log(
        &self,
        mut tx: Transaction<'static, Postgres>,
        events: &[Event],
    ) -> Result<Vec<u64>, StoreError> {
        let tail = self.log_tail(&mut tx).await?;
        self.commit_at(tx, tail, events, None).await
    }

    /// [`Self::commit_with_log`] with the crash-test failpoints `points` around the commit.
    pub(super) async fn commit_with_log_at(
        &self,
        mut tx: Transaction<'static, Postgres>,
        events: &[Event],
        points: CommitPoints,
    ) -> Result<Vec<u64>, StoreError> {
        let tail = self.log_tail(&mut tx).await?;
        self.commit_at(tx, tail, events, Some(points)).await
    }

    /// Begins a write transaction and runs `statement`, built with the index the next event
    /// appended in it lands at (for a row that stores it). `None` when the statement changed no
    /// row: nothing is written and the log tail stays cached. Otherwise the open transaction and
    /// the tail, for the caller to finish and commit with [`Self::commit_at`].
    pub(super) async fn begin_if<'q>(
        &self,
        operation: &'static str,
        statement: impl FnOnce(i64) -> Statement<'q>,
    ) -> Result<Option<(Transaction<'static, Postgres>, CompactRange)>, StoreError> {
        let mut tx = self.begin(operation).await?;
        let tail = self.log_tail(&mut tx).await?;
        let done = statement(to_i64(tail.size())).execute(&mut *tx).await.map_err(err(operation))?;
        if done.rows_affected() == 0 {
            // Nothing was appended: the tail is still the stored edge.
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

    /// Appends `events` at `tail` inside `tx` and commits it, with the failpoints `points`
    /// around the commit. Returns the events' indices.
    pub(super) async fn commit_at(
        &self,
        mut tx: Transaction<'static, Postgres>,
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
impl LogStore for PostgresStore {
    async fn append_events(&self, events: &[Event]) -> Result<Vec<u64>, StoreError> {
        let tx = self.begin("log append").await?;
        self.commit_with_log(tx, events).await
    }

    async fn log_size(&self) -> Result<u64, StoreError> {
        stored_size(&self.pool, "log size").await
    }

    async fn log_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_BATCH) {
            found.extend(nodes_on(&self.pool, chunk, "log node lookup").await?);
        }
        Ok(found)
    }

    async fn log_leaves(&self, start: u64, end: u64) -> Result<Vec<LogLeaf>, StoreError> {
        let query =
            sqlx::query("SELECT idx, data, leaf_hash FROM log_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx")
                .bind(to_i64(start))
                .bind(to_i64(end));
        super::records(&self.pool, query, leaf_row, "log leaves").await
    }

    async fn log_entries(&self, indices: &[u64]) -> Result<Vec<Option<LogLeaf>>, StoreError> {
        const OP: &str = "log entries";
        let mut wanted: Vec<i64> = indices.iter().map(|i| to_i64(*i)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found = std::collections::HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(LOOKUP_BATCH) {
            let query =
                sqlx::query("SELECT idx, data, leaf_hash FROM log_leaves WHERE idx = ANY($1)").bind(chunk.to_vec());
            for leaf in super::records(&self.pool, query, leaf_row, OP).await? {
                found.insert(leaf.index, leaf);
            }
        }
        Ok(indices.iter().map(|i| found.get(i).cloned()).collect())
    }

    async fn put_checkpoint(&self, checkpoint: &StoredCheckpoint, now: Timestamp) -> Result<(), StoreError> {
        // Two replicas storing one size: the second waits for the first's row, then does
        // nothing, so the first checkpoint of a size stays, as on every backend.
        sqlx::query(
            "INSERT INTO log_checkpoints (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(checkpoint.size))
        .bind(&checkpoint.note)
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(err("checkpoint store"))?;
        Ok(())
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        const OP: &str = "checkpoint lookup";
        let row = sqlx::query("SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.pool)
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
