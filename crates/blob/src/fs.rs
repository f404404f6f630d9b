//! The local filesystem backend.
//!
//! Layout under the root: `uploads/<id>` (staged bytes), `blobs/sha256/<aa>/<hex>` (committed,
//! immutable), `quarantine/sha256/<hex>` (bytes the scrubber found corrupt, never served).

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use airlock_core::ports::{BlobError, BlobStore, ByteStream, CommitOutcome, Committed, failpoint};
use airlock_model::{Digest, Sha256Hasher, UploadId};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore};
use tokio::sync::mpsc;

/// Chunks in flight between the receiving task and each of the hashing and writing threads. A
/// chunk holds the connection's read buffer it came in (up to some hundred KiB), so this bounds
/// the memory of an upload; a few suffice to keep the network, the hash and the disk overlapping.
const PIPE_DEPTH: usize = 4;
/// The writer flushes to disk after this many bytes, keeping the final fsync short.
const SYNC_EVERY: usize = 16 * 1024 * 1024;
/// Read size when streaming a stored blob: small enough that a chunk is still in cache when the
/// connection writes it out.
const READ_CHUNK: usize = 128 * 1024;
/// Chunks read ahead of the connection when streaming a stored blob.
const READ_AHEAD: usize = 4;
/// Read buffers a stream keeps for reuse: the chunks queued, the ones the connection is writing,
/// and the one being read.
const READ_BUFFERS: usize = READ_AHEAD + 4;
/// Read size when re-hashing staged bytes after a restart.
const REHASH_BUF: usize = 1024 * 1024;

/// Where an upload stands: bytes received and their running hash.
#[derive(Debug)]
struct Session {
    size: u64,
    hasher: Sha256Hasher,
}

/// Blob store on a local directory.
#[derive(Debug)]
pub struct FsBlobStore {
    root: PathBuf,
    store: LocalFileSystem,
    sessions: Mutex<HashMap<UploadId, Arc<tokio::sync::Mutex<Option<Session>>>>>,
}

fn io_err(operation: &'static str) -> impl FnOnce(io::Error) -> BlobError {
    move |source| BlobError::Io { operation, source }
}

fn os_err(operation: &'static str) -> impl FnOnce(object_store::Error) -> BlobError {
    move |e| BlobError::Io { operation, source: io::Error::other(e) }
}

fn join_err(operation: &'static str) -> impl FnOnce(tokio::task::JoinError) -> BlobError {
    move |e| BlobError::Io { operation, source: io::Error::other(e) }
}

impl FsBlobStore {
    /// Opens (creating) the store under `root`.
    pub fn open(root: &FsPath) -> Result<FsBlobStore, BlobError> {
        for dir in ["uploads", "blobs", "quarantine"] {
            std::fs::create_dir_all(root.join(dir)).map_err(io_err("create directory"))?;
        }
        let store = LocalFileSystem::new_with_prefix(root).map_err(os_err("open"))?;
        Ok(FsBlobStore { root: root.to_owned(), store, sessions: Mutex::new(HashMap::new()) })
    }

    fn upload_file(&self, id: &UploadId) -> PathBuf {
        self.root.join("uploads").join(id.as_str())
    }

    fn upload_path(id: &UploadId) -> Path {
        Path::from(format!("uploads/{}", id.as_str()))
    }

    fn blob_path(digest: &Digest) -> Path {
        let hex = digest.hex();
        Path::from(format!("blobs/sha256/{}/{hex}", hex.get(..2).unwrap_or("00")))
    }

    fn session(&self, id: &UploadId) -> Arc<tokio::sync::Mutex<Option<Session>>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.entry(id.clone()).or_default().clone()
    }

    fn forget(&self, id: &UploadId) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.remove(id);
    }

    /// The session's state, rebuilt from the staged file after a restart.
    async fn load(&self, id: &UploadId, slot: &mut Option<Session>) -> Result<(), BlobError> {
        if slot.is_some() {
            return Ok(());
        }
        let path = self.upload_file(id);
        let session = tokio::task::spawn_blocking(move || -> io::Result<Session> {
            let mut hasher = Sha256Hasher::new();
            let mut size = 0u64;
            let mut file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Session { size, hasher }),
                Err(e) => return Err(e),
            };
            let mut buf = vec![0u8; REHASH_BUF];
            loop {
                let n = file.read(&mut buf)?;
                let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
                hasher.update(chunk);
                size = size.saturating_add(n as u64);
            }
            Ok(Session { size, hasher })
        })
        .await
        .map_err(join_err("rehash upload"))?
        .map_err(io_err("rehash upload"))?;
        *slot = Some(session);
        Ok(())
    }
}

/// Receives `body` and fans each chunk out to two blocking threads, one hashing and one writing,
/// so the network, the hash and the disk all overlap. The writer flushes every
/// [`SYNC_EVERY`] bytes, so the final fsync at commit has little left to do. Returns the bytes
/// received, or the first error of any side; on error `hasher` is left untouched.
async fn stream_to_file(
    file: std::fs::File,
    mut body: ByteStream,
    hasher: &mut Sha256Hasher,
) -> Result<u64, BlobError> {
    let (write_tx, mut write_rx) = mpsc::channel::<Bytes>(PIPE_DEPTH);
    let (hash_tx, mut hash_rx) = mpsc::channel::<Bytes>(PIPE_DEPTH);
    let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        // A third thread flushes behind the writer, so writing and flushing overlap.
        let syncer_file = file.try_clone()?;
        let (sync_tx, sync_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let syncer = std::thread::spawn(move || -> io::Result<()> {
            while sync_rx.recv().is_ok() {
                syncer_file.sync_data()?;
            }
            Ok(())
        });
        let mut file = file;
        let mut unsynced = 0usize;
        let mut result = Ok(());
        while let Some(chunk) = write_rx.blocking_recv() {
            if let Err(e) = file.write_all(&chunk) {
                result = Err(e);
                break;
            }
            unsynced = unsynced.saturating_add(chunk.len());
            if unsynced >= SYNC_EVERY {
                // A flush already queued covers these bytes too; never wait for the syncer here.
                let _ = sync_tx.try_send(());
                unsynced = 0;
            }
        }
        drop(sync_tx);
        let synced = syncer.join().unwrap_or_else(|_| Err(io::Error::other("syncer thread panicked")));
        result.and(synced)
    });
    let mut running = hasher.clone();
    let hashing = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = hash_rx.blocking_recv() {
            running.update(&chunk);
        }
        running
    });
    let mut received = 0u64;
    let mut failure = None;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                failure = Some(BlobError::Body(e));
                break;
            }
        };
        received = received.saturating_add(chunk.len() as u64);
        // Either side hanging up means it failed; its error is reported below.
        if hash_tx.send(chunk.clone()).await.is_err() || write_tx.send(chunk).await.is_err() {
            break;
        }
    }
    drop(write_tx);
    drop(hash_tx);
    let written = writer.await.map_err(join_err("write upload"))?.map_err(io_err("write upload"));
    let hashed = hashing.await.map_err(join_err("hash upload"))?;
    match (failure, written) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok(())) => {
            *hasher = hashed;
            Ok(received)
        }
    }
}

/// Streams `range` of `file` from a blocking thread in [`READ_CHUNK`] pieces, at most
/// [`READ_AHEAD`] of them queued ahead of the receiver.
fn file_stream(mut file: std::fs::File, range: Range<u64>) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(range.start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut buffers = ReadBuffers::default();
        let mut left = range.end.saturating_sub(range.start);
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
            let mut buf = buffers.take();
            let item = match file.read(buf.get_mut(..want).unwrap_or_default()) {
                Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob file is shorter than its record")),
                Ok(n) => {
                    left = left.saturating_sub(n as u64);
                    Ok(buffers.lend(buf, n))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return; // The reader went away, or the error was delivered.
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
}

/// The read buffers of one [`file_stream`]. Each chunk sent is a slice of a [`READ_CHUNK`]
/// buffer; once the receiver has written and dropped it, the buffer is read into again, so a
/// stream touches a few buffers that stay in cache instead of a fresh zeroed one per chunk.
#[derive(Default)]
struct ReadBuffers {
    /// Buffers lent out, oldest first; a buffer whose chunk was dropped is unique again.
    lent: std::collections::VecDeque<Bytes>,
}

impl ReadBuffers {
    /// A buffer of [`READ_CHUNK`] bytes: a returned one, or a new one.
    fn take(&mut self) -> BytesMut {
        if let Some(at) = self.lent.iter().position(Bytes::is_unique)
            && let Some(buf) = self.lent.remove(at)
            && let Ok(buf) = buf.try_into_mut()
        {
            return buf;
        }
        BytesMut::zeroed(READ_CHUNK)
    }

    /// The first `n` bytes of `buf` as a chunk to send; `buf` is kept to be read into again.
    fn lend(&mut self, buf: BytesMut, n: usize) -> Bytes {
        let buf = buf.freeze();
        let chunk = buf.slice(..n.min(buf.len()));
        if self.lent.len() >= READ_BUFFERS {
            self.lent.pop_front();
        }
        self.lent.push_back(buf);
        chunk
    }
}

fn sync_dir(dir: &FsPath) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn append(&self, id: &UploadId, expected_offset: Option<u64>, body: ByteStream) -> Result<u64, BlobError> {
        let session = self.session(id);
        let mut guard = session.lock().await;
        self.load(id, &mut guard).await?;
        let Some(state) = guard.as_mut() else {
            return Err(BlobError::UploadMissing { id: id.clone() });
        };
        if let Some(offset) = expected_offset
            && offset != state.size
        {
            return Err(BlobError::OutOfOrder { expected: state.size, got: offset });
        }
        let path = self.upload_file(id);
        let start = state.size;
        let file = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(path)?;
            file.seek(SeekFrom::Start(start))?;
            Ok::<_, io::Error>(file)
        })
        .await
        .map_err(join_err("open upload"))?
        .map_err(io_err("open upload"))?;
        let mut hasher = state.hasher.clone();
        match stream_to_file(file, body, &mut hasher).await {
            Ok(received) => {
                state.hasher = hasher;
                state.size = state.size.saturating_add(received);
                Ok(state.size)
            }
            Err(e) => {
                // Roll the staged file back so the session stays usable from its last good size.
                let path = self.upload_file(id);
                let _ = tokio::task::spawn_blocking(move || {
                    std::fs::OpenOptions::new().write(true).open(path).and_then(|f| f.set_len(start))
                })
                .await;
                Err(e)
            }
        }
    }

    async fn upload_size(&self, id: &UploadId) -> Result<u64, BlobError> {
        let session = self.session(id);
        let mut guard = session.lock().await;
        self.load(id, &mut guard).await?;
        Ok(guard.as_ref().map_or(0, |s| s.size))
    }

    async fn commit(&self, id: &UploadId, expected: &Digest, inline_max: u64) -> Result<CommitOutcome, BlobError> {
        let session = self.session(id);
        let mut guard = session.lock().await;
        self.load(id, &mut guard).await?;
        let Some(state) = guard.take() else {
            return Err(BlobError::UploadMissing { id: id.clone() });
        };
        self.forget(id);
        let actual = state.hasher.finish();
        let file = self.upload_file(id);
        if &actual != expected {
            let _ = tokio::fs::remove_file(&file).await;
            return Ok(CommitOutcome::Mismatch { actual, size: state.size });
        }
        if state.size <= inline_max {
            let bytes = match tokio::fs::read(&file).await {
                Ok(b) => Bytes::from(b),
                Err(e) if e.kind() == io::ErrorKind::NotFound && state.size == 0 => Bytes::new(),
                Err(e) => return Err(BlobError::Io { operation: "read upload", source: e }),
            };
            let _ = tokio::fs::remove_file(&file).await;
            return Ok(CommitOutcome::Committed(Committed::Inline(bytes)));
        }
        let target = Self::blob_path(expected);
        if let Ok(existing) = self.store.head(&target).await
            && existing.size == state.size
        {
            // Content-addressed: the same bytes are already durable. Freeing the redundant copy
            // can take long on a large file, so it happens off the request's path, after a rename
            // that takes it out of the session's name at once: the session ends here.
            let redundant = file.with_extension("redundant");
            let doomed = match tokio::fs::rename(&file, &redundant).await {
                Ok(()) => redundant,
                Err(_) => file,
            };
            tokio::task::spawn_blocking(move || {
                if let Err(e) = std::fs::remove_file(&doomed) {
                    tracing::warn!(error = %e, path = %doomed.display(), "cannot remove a redundant staged upload");
                }
            });
            return Ok(CommitOutcome::Committed(Committed::Stored { size: state.size }));
        }
        // Durable before visible: sync the bytes, rename into place, sync the directory.
        let sync_path = file.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(sync_path)?.sync_all())
            .await
            .map_err(join_err("sync upload"))?
            .map_err(io_err("sync upload"))?;
        self.store.rename(&Self::upload_path(id), &target).await.map_err(os_err("rename blob"))?;
        let dir = self.root.join(target.as_ref()).parent().map(FsPath::to_owned).unwrap_or_else(|| self.root.clone());
        tokio::task::spawn_blocking(move || sync_dir(&dir))
            .await
            .map_err(join_err("sync blob directory"))?
            .map_err(io_err("sync blob directory"))?;
        // The bytes are durable under their digest; the metadata store does not know them yet.
        failpoint("blob-commit-moved");
        Ok(CommitOutcome::Committed(Committed::Stored { size: state.size }))
    }

    async fn discard(&self, id: &UploadId) -> Result<(), BlobError> {
        let session = self.session(id);
        let mut guard = session.lock().await;
        *guard = None;
        self.forget(id);
        match tokio::fs::remove_file(self.upload_file(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BlobError::Io { operation: "discard upload", source: e }),
        }
    }

    async fn read(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<ByteStream, BlobError> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        let result = match self.store.get_opts(&Self::blob_path(digest), options).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound { digest: digest.clone() }),
            Err(e) => return Err(os_err("read blob")(e)),
        };
        let range = result.range.clone();
        match result.payload {
            // object_store hands local files over as files; read them in large chunks on one
            // blocking thread instead of its default 8 KiB reads, each on a thread of its own.
            GetResultPayload::File(file, _) => Ok(file_stream(file, range)),
            GetResultPayload::Stream(stream) => Ok(Box::pin(stream.map_err(io::Error::other))),
        }
    }

    async fn rehash(&self, digest: &Digest) -> Result<Digest, BlobError> {
        let mut stream = self.read(digest, None).await?;
        let mut hasher = Sha256Hasher::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk.map_err(io_err("rehash blob"))?);
        }
        Ok(hasher.finish())
    }

    async fn quarantine(&self, digest: &Digest) -> Result<(), BlobError> {
        let to = Path::from(format!("quarantine/sha256/{}", digest.hex()));
        match self.store.rename(&Self::blob_path(digest), &to).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(os_err("quarantine blob")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, io::Error>> = chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Box::pin(stream::iter(items))
    }

    fn id(n: u8) -> UploadId {
        UploadId::parse(&format!("{n:02x}").repeat(16)).unwrap()
    }

    async fn collect(stream: ByteStream) -> Vec<u8> {
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn chunked_upload_commits_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = id(1);
        assert_eq!(store.append(&id, Some(0), body(&[b"hello ", b"wor"])).await.unwrap(), 9);
        let err = store.append(&id, Some(3), body(&[b"x"])).await.unwrap_err();
        assert!(matches!(err, BlobError::OutOfOrder { expected: 9, got: 3 }), "{err}");
        assert_eq!(store.append(&id, Some(9), body(&[b"ld"])).await.unwrap(), 11);
        let digest = Digest::of(b"hello world");
        let outcome = store.commit(&id, &digest, 0).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: 11 }));
        assert_eq!(collect(store.read(&digest, None).await.unwrap()).await, b"hello world");
        assert_eq!(collect(store.read(&digest, Some(6..11)).await.unwrap()).await, b"world");
        assert_eq!(store.rehash(&digest).await.unwrap(), digest);
        assert!(!dir.path().join("uploads").join(id.as_str()).exists());

        // The same bytes again are recognised as already stored.
        let again = super::UploadId::parse(&"ab".repeat(16)).unwrap();
        store.append(&again, None, body(&[b"hello world"])).await.unwrap();
        let outcome = store.commit(&again, &digest, 0).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Committed(Committed::Stored { size: 11 }));
        assert_eq!(store.rehash(&digest).await.unwrap(), digest);
    }

    #[tokio::test]
    async fn mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = id(2);
        store.append(&id, None, body(&[b"abc"])).await.unwrap();
        let claimed = Digest::of(b"abd");
        let outcome = store.commit(&id, &claimed, 0).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Mismatch { actual: Digest::of(b"abc"), size: 3 });
        assert!(matches!(store.read(&claimed, None).await, Err(BlobError::NotFound { .. })));
        assert!(matches!(store.read(&Digest::of(b"abc"), None).await, Err(BlobError::NotFound { .. })));
    }

    #[tokio::test]
    async fn session_survives_restart_and_small_blobs_go_inline() {
        let dir = tempfile::tempdir().unwrap();
        let id = id(3);
        {
            let store = FsBlobStore::open(dir.path()).unwrap();
            store.append(&id, None, body(&[b"part one,"])).await.unwrap();
        }
        let store = FsBlobStore::open(dir.path()).unwrap();
        assert_eq!(store.upload_size(&id).await.unwrap(), 9);
        store.append(&id, Some(9), body(&[b" part two"])).await.unwrap();
        let digest = Digest::of(b"part one, part two");
        let outcome = store.commit(&id, &digest, 1024).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Committed(Committed::Inline(Bytes::from_static(b"part one, part two"))));
    }

    #[tokio::test]
    async fn failed_body_rolls_back_the_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = id(4);
        store.append(&id, None, body(&[b"good"])).await.unwrap();
        let broken: ByteStream = Box::pin(stream::iter(vec![
            Ok(Bytes::from_static(b"bad")),
            Err(io::Error::new(io::ErrorKind::TimedOut, "client too slow")),
        ]));
        assert!(matches!(store.append(&id, None, broken).await, Err(BlobError::Body(_))));
        assert_eq!(store.upload_size(&id).await.unwrap(), 4);
        let outcome = store.commit(&id, &Digest::of(b"good"), 1024).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Committed(Committed::Inline(Bytes::from_static(b"good"))));
    }

    /// `len` bytes with no short period, so a chunk read from the wrong place shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 251 % 256) as u8).collect()
    }

    #[tokio::test]
    async fn reads_across_read_buffer_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let data = pattern(3 * READ_CHUNK + 7);
        let id = id(6);
        store.append(&id, None, Box::pin(stream::iter(vec![Ok(Bytes::from(data.clone()))]))).await.unwrap();
        let digest = Digest::of(&data);
        store.commit(&id, &digest, 0).await.unwrap();

        // Every chunk held until the end: no buffer comes back, each read takes a new one.
        assert!(collect(store.read(&digest, None).await.unwrap()).await == data, "whole blob, chunks held");
        // Each chunk dropped once checked: the reader reads into returned buffers again.
        let mut stream = store.read(&digest, None).await.unwrap();
        let mut at = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            assert!(chunk[..] == data[at..at + chunk.len()], "chunk at {at} differs");
            at += chunk.len();
            tokio::task::yield_now().await;
        }
        assert_eq!(at, data.len());

        let c = READ_CHUNK as u64;
        let len = data.len() as u64;
        for range in [0..c, c - 1..c + 1, c..2 * c, c + 1..3 * c - 1, 0..len, 3 * c..len, len - 1..len] {
            let want = &data[range.start as usize..range.end as usize];
            assert!(collect(store.read(&digest, Some(range.clone())).await.unwrap()).await == want, "{range:?}");
        }
    }

    #[tokio::test]
    async fn quarantine_hides_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let id = id(5);
        store.append(&id, None, body(&[b"payload"])).await.unwrap();
        let digest = Digest::of(b"payload");
        store.commit(&id, &digest, 0).await.unwrap();
        store.quarantine(&digest).await.unwrap();
        assert!(matches!(store.read(&digest, None).await, Err(BlobError::NotFound { .. })));
    }
}
