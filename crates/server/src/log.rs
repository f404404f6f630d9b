//! The transparency log's service side: the signing key, the checkpointer that signs a
//! checkpoint after each group of commits, the start-up check that the stored tree still
//! reproduces the last checkpoint, and the public read API under `/api/v1/log`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_core::ports::{Clock, LogObserver, MetadataStore, StoreError, StoredCheckpoint, failpoint};
use airlock_core::promotion::backed::LogFacts;
use airlock_tlog::{Checkpoint, CompactRange, Hash, NodeId, Signer, Verifier, leaf_hash};
use rand::RngCore;
use tokio::sync::Notify;

use crate::config::LogConfig;

/// Longest wait between two looks for closed windows of identical refusals.
const REFUSAL_CLOSE_EVERY_MAX: std::time::Duration = std::time::Duration::from_secs(15);

/// Leaves read per page when verifying the log at start-up.
const VERIFY_PAGE: u64 = 10_000;

/// Why the log service could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    #[error("cannot read log key `{path}`: {source}; restore it from backup, or point `log.key_path` at it")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write new log key `{path}`: {source}; check the data directory's permissions")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("log key `{path}` is not a signed-note private key: {source}")]
    Parse {
        path: String,
        #[source]
        source: airlock_tlog::NoteError,
    },
    #[error("cannot read the log origin `{path}`: {source}; restore it from backup")]
    OriginRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the log origin `{path}`: {source}; check the data directory's permissions")]
    OriginWrite {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the log's origin is `{stored}` (stored in `{path}` at the first start) but `{key}` makes it `{configured}`; a log's origin never changes: set `log.origin` to `{stored}` (`public_url` may change, the log keeps its name), or start a new log in a new data directory (see docs/runbook.md, \"The log origin does not match\")"
    )]
    OriginChanged { path: String, stored: String, key: &'static str, configured: String },
    #[error(
        "log key `{key_path}` is named `{key_name}` but the log's origin is `{origin}`; checkpoints must be signed by a key named after the origin: restore the log key of this data directory, or, if this key has always signed this log (a data directory from before the origin was stored), set `log.origin` to `{key_name}` (see docs/runbook.md, \"The log origin does not match\")"
    )]
    KeyNameMismatch { key_path: String, key_name: String, origin: String },
}

/// A failure while checkpointing or reading the log. Never shown to clients verbatim.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("log tree is inconsistent: {0}")]
    Tree(String),
    #[error("cannot sign checkpoint: {0}")]
    Sign(String),
    #[error("cannot write checkpoint file `{path}`: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Who signs a checkpoint: the start-up check, or the background checkpointer after commits
/// (where the crash-test failpoints are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signing {
    AtStart,
    Background,
}

/// Wakes the checkpointer; the core calls it after each commit that appended to the log.
#[derive(Debug, Default)]
pub struct CheckpointTrigger(Notify);

impl LogObserver for CheckpointTrigger {
    fn appended(&self) {
        self.0.notify_one();
    }
}

/// The log's signer and where its latest checkpoint is mirrored outside the database.
#[derive(Debug, Clone)]
pub struct LogService {
    store: Arc<dyn MetadataStore>,
    clock: Arc<dyn Clock>,
    signer: Arc<Signer>,
    verifier: Arc<Verifier>,
    origin: String,
    checkpoint_file: PathBuf,
    mirror: Arc<Mirror>,
    pub trigger: Arc<CheckpointTrigger>,
}

/// The checkpoint file beside the key, rewritten at most once per `interval`: each rewrite
/// costs a file creation, two fsyncs and a rename, which a commit should not pay each time. A
/// checkpoint signed sooner waits, and the newest waiting one is written when the interval is
/// up, or when the server stops.
#[derive(Debug)]
struct Mirror {
    interval: std::time::Duration,
    state: tokio::sync::Mutex<MirrorState>,
}

#[derive(Debug, Default)]
struct MirrorState {
    written_at: Option<tokio::time::Instant>,
    /// The newest checkpoint note not yet in the file.
    pending: Option<String>,
}

fn read_or_create_key(path: &Path, origin: &str) -> Result<Signer, LogKeyError> {
    let display = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            Signer::from_private_key(text.trim()).map_err(|source| LogKeyError::Parse { path: display, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            let signer = Signer::from_seed(origin, seed)
                .map_err(|source| LogKeyError::Parse { path: display.clone(), source })?;
            write_private(path, &signer.private_key())
                .map_err(|source| LogKeyError::Write { path: display, source })?;
            Ok(signer)
        }
        Err(source) => Err(LogKeyError::Read { path: display, source }),
    }
}

/// The file beside the log key that holds the log's origin, written at the first start.
pub const ORIGIN_FILE: &str = "origin";

/// The log's origin: the one stored at the first start of the data directory, which a configured
/// origin (`log.origin` or `public_url`) must match. At the first start it is the configured or
/// derived one, unless a log key from before the origin was stored already names it.
fn resolve_origin(origin_path: &Path, key_path: &Path, config: &LogConfig) -> Result<String, LogKeyError> {
    let display = origin_path.display().to_string();
    match std::fs::read_to_string(origin_path) {
        Ok(text) => {
            let stored = text.trim().to_owned();
            match config.origin_configured_by {
                Some(key) if config.origin != stored => {
                    Err(LogKeyError::OriginChanged { path: display, stored, key, configured: config.origin.clone() })
                }
                _ => Ok(stored),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if config.origin_configured_by.is_none()
                && let Ok(text) = std::fs::read_to_string(key_path)
                && let Ok(signer) = Signer::from_private_key(text.trim())
            {
                return Ok(signer.name().to_owned());
            }
            Ok(config.origin.clone())
        }
        Err(source) => Err(LogKeyError::OriginRead { path: display, source }),
    }
}

/// Writes a secret file readable by its owner only (mode 0600 on Unix), durably.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

impl LogService {
    /// Loads (or creates, at first start) the log key and prepares the checkpointer.
    pub fn open(
        store: Arc<dyn MetadataStore>,
        clock: Arc<dyn Clock>,
        data_dir: &Path,
        config: &LogConfig,
    ) -> Result<LogService, LogKeyError> {
        let key_path = config.key_path.clone().unwrap_or_else(|| data_dir.join("log").join("key"));
        let origin_path = data_dir.join("log").join(ORIGIN_FILE);
        let origin = resolve_origin(&origin_path, &key_path, config)?;
        let signer = read_or_create_key(&key_path, &origin)?;
        // C2SP tlog-checkpoint: the log's key is named after its origin, and verifiers refuse a
        // key named otherwise.
        if signer.name() != origin {
            return Err(LogKeyError::KeyNameMismatch {
                key_path: key_path.display().to_string(),
                key_name: signer.name().to_owned(),
                origin,
            });
        }
        if !origin_path.exists() {
            write_private(&origin_path, &origin)
                .map_err(|source| LogKeyError::OriginWrite { path: origin_path.display().to_string(), source })?;
        }
        let verifier = signer.verifier();
        Ok(LogService {
            store,
            clock,
            signer: Arc::new(signer),
            verifier: Arc::new(verifier),
            origin,
            checkpoint_file: data_dir.join("log").join("checkpoint"),
            mirror: Arc::new(Mirror {
                interval: config.checkpoint_file_interval,
                state: tokio::sync::Mutex::new(MirrorState::default()),
            }),
            trigger: Arc::new(CheckpointTrigger::default()),
        })
    }

    pub async fn store_latest(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.store.latest_checkpoint().await
    }

    pub async fn store_size(&self) -> Result<u64, StoreError> {
        self.store.log_size().await
    }

    pub async fn store_leaves(&self, start: u64, end: u64) -> Result<Vec<airlock_core::ports::LogLeaf>, StoreError> {
        self.store.log_leaves(start, end).await
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The root of the first `size` leaves, from O(log n) stored nodes.
    pub async fn root(&self, size: u64) -> Result<Hash, LogError> {
        let ids = airlock_tlog::root_nodes(size);
        let found = self.store.log_nodes(&ids).await?;
        let lookup: std::collections::HashMap<NodeId, Hash> =
            ids.iter().zip(found).filter_map(|(id, h)| h.map(|h| (*id, h))).collect();
        airlock_tlog::root(size, |id| lookup.get(&id).copied()).map_err(|e| LogError::Tree(e.to_string()))
    }

    /// The proof hashes for `plan`, fetched in one batch of O(log n) node reads.
    pub async fn assemble(&self, plan: &[Vec<NodeId>]) -> Result<Vec<Hash>, LogError> {
        let ids: Vec<NodeId> = plan.iter().flatten().copied().collect();
        let found = self.store.log_nodes(&ids).await?;
        let lookup: std::collections::HashMap<NodeId, Hash> =
            ids.iter().zip(found).filter_map(|(id, h)| h.map(|h| (*id, h))).collect();
        airlock_tlog::assemble(plan, |id| lookup.get(&id).copied()).map_err(|e| LogError::Tree(e.to_string()))
    }

    /// Signs and stores a checkpoint of the current tree, unless one of that size exists.
    pub async fn checkpoint(&self) -> Result<StoredCheckpoint, LogError> {
        self.sign_checkpoint(Signing::AtStart).await
    }

    /// [`Self::checkpoint`], with the crash-test failpoints of the background checkpointer when
    /// `signing` is [`Signing::Background`]: `checkpoint-sign-signed` (signed, nothing stored),
    /// `checkpoint-sign-stored` (in the database, the file beside the key not yet rewritten) and
    /// `checkpoint-sign-done` (in the database, and in the file unless it was rewritten less
    /// than `log.checkpoint_file_interval_ms` ago; release bundles not yet attached).
    async fn sign_checkpoint(&self, signing: Signing) -> Result<StoredCheckpoint, LogError> {
        let point = |name: &str| {
            if signing == Signing::Background {
                failpoint(name);
            }
        };
        let size = self.store.log_size().await?;
        if let Some(latest) = self.store.latest_checkpoint().await?
            && latest.size == size
        {
            // After a crash the file can lag the database by an interval: bring it up to date.
            if signing == Signing::AtStart {
                self.mirror(&latest.note, true).await?;
            }
            return Ok(latest);
        }
        let root = self.root(size).await?;
        let checkpoint = Checkpoint { origin: self.origin.clone(), size, root, extensions: Vec::new() };
        let note = checkpoint.sign(&self.signer).map_err(|e| LogError::Sign(e.to_string()))?;
        let stored = StoredCheckpoint { size, note };
        point("checkpoint-sign-signed");
        self.store.put_checkpoint(&stored, self.clock.now()).await?;
        point("checkpoint-sign-stored");
        self.mirror(&stored.note, signing == Signing::AtStart).await?;
        point("checkpoint-sign-done");
        Ok(stored)
    }

    /// Writes `note` to the checkpoint file, now when `at_once`, otherwise unless the file was
    /// rewritten less than the interval ago; then it waits for [`Self::flush_checkpoint_file`].
    async fn mirror(&self, note: &str, at_once: bool) -> Result<(), LogError> {
        let mut state = self.mirror.state.lock().await;
        if !at_once && state.written_at.is_some_and(|at| at.elapsed() < self.mirror.interval) {
            state.pending = Some(note.to_owned());
            return Ok(());
        }
        self.write_checkpoint_file(note).await?;
        state.written_at = Some(tokio::time::Instant::now());
        state.pending = None;
        Ok(())
    }

    /// When the waiting checkpoint is due in the file, if one is waiting.
    async fn checkpoint_file_due(&self) -> Option<tokio::time::Instant> {
        let state = self.mirror.state.lock().await;
        state.pending.as_ref()?;
        let now = tokio::time::Instant::now();
        Some(state.written_at.and_then(|at| at.checked_add(self.mirror.interval)).unwrap_or(now))
    }

    /// Writes the waiting checkpoint, if any, to the file beside the key. The server calls it as
    /// it stops, so after a clean stop the file holds the newest checkpoint.
    pub async fn flush_checkpoint_file(&self) -> Result<(), LogError> {
        let mut state = self.mirror.state.lock().await;
        let Some(note) = state.pending.take() else { return Ok(()) };
        // A failed write is tried again an interval later, not at once in a loop.
        state.written_at = Some(tokio::time::Instant::now());
        if let Err(e) = self.write_checkpoint_file(&note).await {
            state.pending = Some(note);
            return Err(e);
        }
        Ok(())
    }

    /// Keeps the latest checkpoint in a file beside the key too, so a database restored from an
    /// older copy is caught at the next start even though its own checkpoints look fine.
    async fn write_checkpoint_file(&self, note: &str) -> Result<(), LogError> {
        let path = self.checkpoint_file.clone();
        let note = note.to_owned();
        let display = path.display().to_string();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let dir = path.parent().map(Path::to_owned).unwrap_or_default();
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join("checkpoint.tmp");
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(note.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(|e| LogError::File { path: display.clone(), source: std::io::Error::other(e) })?
        .map_err(|source| LogError::File { path: display, source })
    }

    /// Runs until the task is dropped: after each trigger, waits `delay` to group commits,
    /// then signs one checkpoint and hands it to `signed` (which attaches release bundles).
    pub async fn run_checkpointer<F, Fut>(self, delay: std::time::Duration, mut signed: F)
    where
        F: FnMut(StoredCheckpoint) -> Fut + Send,
        Fut: std::future::Future<Output = ()> + Send,
    {
        loop {
            let due = self.checkpoint_file_due().await;
            // Without a checkpoint waiting for the file, nothing is due: wait for a commit.
            let now = tokio::time::Instant::now();
            let far = now.checked_add(std::time::Duration::from_secs(3600)).unwrap_or(now);
            tokio::select! {
                () = self.trigger.0.notified() => {
                    tokio::time::sleep(delay).await;
                    match self.sign_checkpoint(Signing::Background).await {
                        Ok(checkpoint) => signed(checkpoint).await,
                        Err(e) => tracing::error!(error = %e, "cannot sign a log checkpoint; retrying at the next commit"),
                    }
                }
                () = tokio::time::sleep_until(due.unwrap_or(far)), if due.is_some() => {
                    if let Err(e) = self.flush_checkpoint_file().await {
                        tracing::error!(error = %e, "cannot write the checkpoint file beside the log key; retrying");
                    }
                }
            }
        }
    }

    /// Checks that the stored log reproduces its last checkpoint: the signature, every leaf's
    /// hash, the root from the leaves and the root from the stored nodes. Returns why not. Every
    /// leaf read is shown to `facts`, so the engine need not read the log again.
    pub async fn verify_stored(&self, facts: &LogFacts) -> Result<Option<String>, LogError> {
        let from_db = self.store.latest_checkpoint().await?;
        let from_file = match tokio::fs::read_to_string(&self.checkpoint_file).await {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(LogError::File { path: self.checkpoint_file.display().to_string(), source }),
        };
        let mut reference: Option<Checkpoint> = None;
        for (source, note) in [("database", from_db.map(|c| c.note)), ("checkpoint file", from_file)] {
            let Some(note) = note else { continue };
            let checkpoint = match Checkpoint::open(note.as_bytes(), &self.verifier) {
                Ok(c) => c,
                Err(e) => {
                    return Ok(Some(format!(
                        "the {source}'s latest checkpoint does not verify with the log key: {e}; a server joining replicas over a shared store needs their `log/key`, `log/origin`, `auth/token.key` and `keys/release.key` in its data directory (runbook, \"Adding a replica\")"
                    )));
                }
            };
            if reference.as_ref().is_none_or(|r| checkpoint.size > r.size) {
                reference = Some(checkpoint);
            }
        }
        let Some(reference) = reference else { return Ok(None) };
        let size = self.store.log_size().await?;
        if size < reference.size {
            return Ok(Some(format!(
                "the log holds {size} entries but its last checkpoint covers {}: entries were removed or the database was restored from an older copy",
                reference.size
            )));
        }
        let mut range = CompactRange::new();
        let mut start: u64 = 0;
        while start < reference.size {
            let end = start.saturating_add(VERIFY_PAGE).min(reference.size);
            let leaves = self.store.log_leaves(start, end).await?;
            for leaf in &leaves {
                if leaf.index != range.size() {
                    return Ok(Some(format!("log entry {} is missing", range.size())));
                }
                let computed = leaf_hash(&leaf.data);
                if computed != leaf.leaf_hash {
                    return Ok(Some(format!(
                        "log entry {} was altered: its bytes no longer hash to its recorded leaf hash",
                        leaf.index
                    )));
                }
                range.push(computed);
                facts.observe(leaf);
            }
            if leaves.is_empty() {
                return Ok(Some(format!("log entry {start} is missing")));
            }
            start = end;
        }
        if range.root() != reference.root {
            return Ok(Some(format!(
                "the log's first {} entries do not reproduce the root of the checkpoint of that size",
                reference.size
            )));
        }
        if self.root(reference.size).await? != reference.root {
            return Ok(Some(format!("the log's stored tree nodes do not reproduce checkpoint {}", reference.size)));
        }
        Ok(None)
    }
}

/// Appends the `refusal.aggregate` entries of the windows of identical refusals that have closed
/// (every open one when `all`, at shutdown). Nothing is appended while writes are refused.
pub async fn close_refusals(registry: &airlock_core::Registry, all: bool) {
    let events = registry.refusals().close(registry.clock().now(), all);
    if events.is_empty() || registry.writes_refused().is_some() {
        return;
    }
    if let Err(e) = registry.log_events(&events).await {
        tracing::error!(error = %e, count = events.len(), "cannot log aggregated refusals");
    }
}

/// Runs until the task is dropped: closes windows of identical refusals a quarter of a window
/// after they ran out, at the latest (`REFUSAL_CLOSE_EVERY_MAX`).
pub async fn run_refusal_closer(registry: airlock_core::Registry) {
    let window = std::time::Duration::from_secs(registry.refusals().limits().window_secs);
    let every =
        window.checked_div(4).unwrap_or(window).clamp(std::time::Duration::from_millis(100), REFUSAL_CLOSE_EVERY_MAX);
    loop {
        tokio::time::sleep(every).await;
        close_refusals(&registry, false).await;
    }
}
