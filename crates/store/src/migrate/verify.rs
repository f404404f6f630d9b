//! The check after the copy, through the ports both stores serve: the log's size, its root from
//! the stored nodes (as the server computes it), the latest checkpoint, whose root the tree must
//! reproduce at its size; then every table's row count on both sides.

use std::collections::HashMap;

use airlock_core::ports::{LogStore, StoredCheckpoint};
use airlock_tlog::{Checkpoint, Hash, NodeId, Note, root_nodes};

use super::schema::quoted;
use super::{MigrateError, Migration, TableCopied};

/// What both sides were found to hold alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries in the log.
    pub log_size: u64,
    /// The RFC 6962 root of the whole log.
    pub root: Hash,
    /// The latest signed checkpoint, if the log has one.
    pub checkpoint: Option<StoredCheckpoint>,
    /// Every table with its rows, in the order copied.
    pub tables: Vec<TableCopied>,
}

/// One side's log, as the ports show it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct LogState {
    pub(super) size: u64,
    pub(super) root: Hash,
    pub(super) checkpoint: Option<StoredCheckpoint>,
}

/// The root of the first `size` leaves from the nodes `store` holds, as the server's log service
/// computes it; why not, when nodes are missing.
async fn root(store: &dyn LogStore, size: u64) -> Result<Result<Hash, String>, MigrateError> {
    let ids = root_nodes(size);
    let found = store.log_nodes(&ids).await?;
    let lookup: HashMap<NodeId, Hash> = ids.iter().zip(found).filter_map(|(id, h)| h.map(|h| (*id, h))).collect();
    Ok(airlock_tlog::root(size, |id| lookup.get(&id).copied()).map_err(|e| e.to_string()))
}

/// `store`'s log: its size, root and latest checkpoint, after checking that the tree reproduces
/// the checkpoint's root at its size. Returns why not as the inner error.
pub(super) async fn log_state(store: &dyn LogStore) -> Result<Result<LogState, String>, MigrateError> {
    let size = store.log_size().await?;
    let root_now = match root(store, size).await? {
        Ok(root) => root,
        Err(why) => return Ok(Err(format!("the root of its {size} entries cannot be computed: {why}"))),
    };
    let checkpoint = store.latest_checkpoint().await?;
    if let Some(stored) = &checkpoint {
        let parsed = Note::parse(stored.note.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|note| Checkpoint::parse(&note.text).map_err(|e| e.to_string()));
        let signed = match parsed {
            Ok(signed) => signed,
            Err(why) => return Ok(Err(format!("its latest checkpoint (size {}) does not parse: {why}", stored.size))),
        };
        if signed.size != stored.size || signed.size > size {
            return Ok(Err(format!(
                "its latest checkpoint is stored as size {} but signs size {} of a log of {size} entries",
                stored.size, signed.size
            )));
        }
        match root(store, signed.size).await? {
            Ok(at) if at == signed.root => {}
            Ok(at) => {
                return Ok(Err(format!(
                    "its tree at size {} has root {} but its latest checkpoint signs {}",
                    signed.size,
                    at.to_hex(),
                    signed.root.to_hex()
                )));
            }
            Err(why) => {
                return Ok(Err(format!("the root at its checkpoint's size {} cannot be computed: {why}", signed.size)));
            }
        }
    }
    Ok(Ok(LogState { size, root: root_now, checkpoint }))
}

/// Compares both sides of `m` after the copy.
pub(super) async fn verify(m: &Migration) -> Result<Verified, MigrateError> {
    let mismatch = |what: String| MigrateError::Mismatch { what };
    let source = log_state(&m.source).await?.map_err(|why| MigrateError::SourceLog { why })?;
    let target = log_state(&m.target).await?.map_err(|why| mismatch(format!("in PostgreSQL the log {why}")))?;
    if source.size != target.size {
        return Err(mismatch(format!(
            "the log holds {} entries in SQLite but {} in PostgreSQL",
            source.size, target.size
        )));
    }
    if source.root != target.root {
        return Err(mismatch(format!(
            "the log's root is {} in SQLite but {} in PostgreSQL",
            source.root.to_hex(),
            target.root.to_hex()
        )));
    }
    if source.checkpoint != target.checkpoint {
        let size = |c: &Option<StoredCheckpoint>| c.as_ref().map_or_else(|| "none".to_owned(), |c| c.size.to_string());
        return Err(mismatch(format!(
            "the latest checkpoint differs (size {} in SQLite, {} in PostgreSQL)",
            size(&source.checkpoint),
            size(&target.checkpoint)
        )));
    }
    let mut tables = Vec::new();
    for table in &m.plan {
        let sql = format!("SELECT COUNT(*) FROM {}", quoted(&table.name));
        let in_source: i64 =
            sqlx::query_scalar(&sql).fetch_one(&m.reader).await.map_err(|source| MigrateError::SourceRead {
                path: m.path.clone(),
                what: format!("the rows of table `{}`", table.name),
                source,
            })?;
        let in_target: i64 = sqlx::query_scalar(&sql)
            .fetch_one(m.target.pool())
            .await
            .map_err(|source| MigrateError::TargetRead { what: "the rows of a table", source })?;
        if in_source != in_target {
            return Err(mismatch(format!(
                "table `{}` holds {in_source} rows in SQLite but {in_target} in PostgreSQL",
                table.name
            )));
        }
        tables.push(TableCopied { table: table.name.clone(), rows: u64::try_from(in_source).unwrap_or(0) });
    }
    Ok(Verified { log_size: source.size, root: source.root, checkpoint: source.checkpoint, tables })
}
