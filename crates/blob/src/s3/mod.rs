//! The S3 backend, through `object_store`. It keeps no upload state in the process, so several
//! server replicas can share one bucket: an upload's chunks may each reach a different replica,
//! and yet another may commit it.
//!
//! Layout under `s3://BUCKET/PREFIX/`:
//! - `uploads/<id>/data/<nonce>`: the bytes of one appended chunk, under a fresh random name;
//! - `uploads/<id>/chunks/<offset>`: the record that makes one of those the upload's bytes from
//!   byte `<offset>` (20 digits, zero-padded, so names sort as numbers). It reads
//!   `<length> <nonce>`, is created only where none exists, and never changes;
//! - `blobs/sha256/<aa>/<hex>`: committed, immutable;
//! - `quarantine/sha256/<hex>`: bytes the scrubber found corrupt, never served.
//!
//! An append takes the upload's size from a listing of its records (which must be contiguous
//! from byte 0), streams the chunk to a data object of its own (multipart past [`PART_SIZE`]),
//! then creates the record at that offset with `If-None-Match: *`. Of two appends racing at one
//! offset exactly one creates it; the other deletes its bytes and answers out of order.
//!
//! A commit streams the chunks in order through SHA-256 into a write of the final key that
//! completes only when the digest matches and is aborted otherwise; an unfinished write, single
//! or multipart, is never visible. A lone chunk is hashed, then copied server side.
//!
//! A crash can leave staged chunks or an unfinished multipart upload behind; neither is ever
//! visible under `blobs/`. A bucket lifecycle rule that expires `PREFIX/uploads/` after some days
//! and aborts incomplete multipart uploads reclaims them.
//!
//! **Requires** an S3 service that honours `If-None-Match: *` on `PutObject` (AWS S3 has since
//! 2024; SeaweedFS, which the tests run against, does): one that ignores it would let two racing
//! appends both succeed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_core::ports::{BlobError, BlobStore, ByteStream, CommitOutcome, Committed, failpoint};
use airlock_model::{Digest, Sha256Hasher, UploadId};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ClientConfigKey, GetOptions, GetRange, ObjectMeta, ObjectStore, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt;

mod options;

pub use options::{S3Credentials, S3Options, S3Url, S3UrlError};

/// Size of each part of a multipart write, and the most a write buffers before it starts one.
/// S3 wants parts of at least 5 MiB and at most 10,000 of them: objects up to 78 GiB.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one write in flight at once; with [`PART_SIZE`], the memory one write can hold.
const PARTS_IN_FLIGHT: usize = 4;
/// The largest object S3 copies in one request; a lone chunk above it is streamed instead.
const COPY_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Times an append without an offset tries again at the new end after losing a race.
const CLAIM_ATTEMPTS: usize = 8;
/// One request's time limit, body included. object_store's default (30 s) would cut a stream
/// to a slow client or a part sent over a slow link.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Chunk records remembered per process. They never change, so remembering only saves reading
/// them again; past this many the memory is cleared.
const RECORDS_CACHED: usize = 4096;

/// The most bytes a chunk record may hold (a length of at most 20 digits, a space, a 32-digit
/// nonce, with room to spare).
const RECORD_MAX_BYTES: u64 = 128;

/// One chunk of an upload, as its record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    len: u64,
    nonce: String,
}

impl Record {
    fn render(&self) -> String {
        format!("{} {}", self.len, self.nonce)
    }

    fn parse(bytes: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (len, nonce) = text.split_once(' ')?;
        let nonce_ok = nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let len = len.parse().ok().filter(|n| *n > 0)?;
        nonce_ok.then(|| Record { len, nonce: nonce.to_owned() })
    }
}

/// A chunk in its place in the upload.
#[derive(Debug)]
struct Chunk {
    len: u64,
    data: Path,
}

/// An upload as stored: its chunks in order and every object under its name.
#[derive(Debug)]
struct Staged {
    size: u64,
    chunks: Vec<Chunk>,
    objects: Vec<Path>,
}

/// A failed S3 request, naming the object and the next step.
#[derive(Debug, thiserror::Error)]
#[error("`{location}`: {}; {hint}", one_line(source))]
struct S3Failure {
    location: String,
    hint: &'static str,
    #[source]
    source: object_store::Error,
}

/// `error` on one line: object_store quotes the service's XML answer, newlines included.
fn one_line(error: &object_store::Error) -> String {
    error.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether S3 answered that the bucket itself does not exist. object_store reports it as a
/// missing object, which must never pass for a missing blob: the scrubber would quarantine
/// every blob of a store pointed at the wrong bucket.
fn no_bucket(error: &object_store::Error) -> bool {
    error.to_string().contains("NoSuchBucket")
}

/// Whether the object asked for does not exist (in a bucket that does).
fn missing(error: &object_store::Error) -> bool {
    matches!(error, object_store::Error::NotFound { .. }) && !no_bucket(error)
}

/// The kind of an object_store error and the next step to suggest.
fn classify(error: &object_store::Error) -> (io::ErrorKind, &'static str) {
    use object_store::Error as E;
    if no_bucket(error) {
        return (io::ErrorKind::NotFound, "the bucket does not exist: create it, or correct the blob store's URL");
    }
    // object_store classifies by status only some requests (not listings); the text says it all.
    let text = error.to_string();
    let refused = ["401 Unauthorized", "403 Forbidden"].iter().any(|status| text.contains(status));
    match error {
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => (
            io::ErrorKind::PermissionDenied,
            "check the blob store's credentials and that they may read, write, list and delete in the bucket",
        ),
        _ if refused => (
            io::ErrorKind::PermissionDenied,
            "check the blob store's credentials and that they may read, write, list and delete in the bucket",
        ),
        E::NotFound { .. } => (
            io::ErrorKind::NotFound,
            "check that nothing else deletes under the blob store's prefix (another deployment, a lifecycle rule)",
        ),
        E::NotImplemented | E::NotSupported { .. } => (
            io::ErrorKind::Unsupported,
            "the S3 service lacks what the blob store needs (conditional writes with `If-None-Match: *`, multipart uploads, copies)",
        ),
        _ if text.contains("416 Range Not Satisfiable") => {
            (io::ErrorKind::InvalidInput, "the range starts at or past the blob's end")
        }
        _ => (io::ErrorKind::Other, "check that the S3 endpoint is reachable and the bucket exists"),
    }
}

/// A broken upload or object, found by reading what S3 holds.
#[derive(Debug, thiserror::Error)]
#[error("`{location}`: {problem}; {hint}")]
struct Inconsistent {
    location: String,
    problem: String,
    hint: &'static str,
}

/// Blob store on an S3 bucket, or under a prefix of one.
pub struct S3BlobStore {
    url: S3Url,
    store: Arc<dyn ObjectStore>,
    /// Chunk records already read, by key and ETag. Records never change; this only saves
    /// reading them again.
    records: Mutex<HashMap<(String, String), Record>>,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore").field("url", &self.url.to_string()).finish_non_exhaustive()
    }
}

impl S3BlobStore {
    /// Connects (lazily: nothing is sent until the first operation) to the bucket `options`
    /// name.
    pub fn open(options: &S3Options) -> Result<S3BlobStore, BlobError> {
        // `from_env` takes only the `AWS_*` variables it knows as settings. `AWS_CA_BUNDLE`,
        // which machines set for other tools, is not one of them (see the test below), so it
        // neither breaks nor changes the client.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(options.url.bucket())
            .with_allow_http(options.allow_http)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                format!("{}s", REQUEST_TIMEOUT.as_secs()),
            );
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some(keys) = &options.credentials {
            builder = builder.with_access_key_id(&keys.access_key_id).with_secret_access_key(&keys.secret_access_key);
        }
        let store = builder.build().map_err(|source| BlobError::Io {
            operation: "open",
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                S3Failure {
                    location: options.url.to_string(),
                    hint: "check the blob store's endpoint, region and credentials",
                    source,
                },
            ),
        })?;
        Ok(S3BlobStore { url: options.url.clone(), store: Arc::new(store), records: Mutex::new(HashMap::new()) })
    }

    /// Where the store lives.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    fn key(&self, rest: &str) -> Path {
        if self.url.prefix().is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.url.prefix()))
        }
    }

    fn upload_path(&self, id: &UploadId) -> Path {
        self.key(&format!("uploads/{}", id.as_str()))
    }

    fn data_path(&self, id: &UploadId, nonce: &str) -> Path {
        self.key(&format!("uploads/{}/data/{nonce}", id.as_str()))
    }

    fn record_path(&self, id: &UploadId, offset: u64) -> Path {
        self.key(&format!("uploads/{}/chunks/{offset:020}", id.as_str()))
    }

    fn blob_path(&self, digest: &Digest) -> Path {
        let hex = digest.hex();
        self.key(&format!("blobs/sha256/{}/{hex}", hex.get(..2).unwrap_or("00")))
    }

    fn quarantine_path(&self, digest: &Digest) -> Path {
        self.key(&format!("quarantine/sha256/{}", digest.hex()))
    }

    fn location(&self, key: &Path) -> String {
        format!("s3://{}/{key}", self.url.bucket())
    }

    /// Turns an object_store error about `key` into a blob store error naming it.
    fn failed(&self, operation: &'static str, key: &Path) -> impl FnOnce(object_store::Error) -> BlobError + use<> {
        let location = self.location(key);
        move |source| {
            let (kind, hint) = classify(&source);
            BlobError::Io { operation, source: io::Error::new(kind, S3Failure { location, hint, source }) }
        }
    }

    /// [`Self::failed`] for the `io::Error` a buffered write reports, which wraps an
    /// object_store error.
    fn write_failed(&self, operation: &'static str, key: &Path) -> impl FnOnce(io::Error) -> BlobError + use<> {
        let failed = self.failed(operation, key);
        let location = self.location(key);
        move |error| {
            let kind = error.kind();
            let message = error.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            match error.into_inner().map(|inner| inner.downcast::<object_store::Error>()) {
                Some(Ok(inner)) => failed(*inner),
                _ => BlobError::Io {
                    operation,
                    source: io::Error::new(
                        kind,
                        format!(
                            "`{location}`: {message}; check that the S3 endpoint is reachable and the bucket exists"
                        ),
                    ),
                },
            }
        }
    }

    fn inconsistent(&self, operation: &'static str, key: &Path, problem: String) -> BlobError {
        BlobError::Io {
            operation,
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                Inconsistent {
                    location: self.location(key),
                    problem,
                    hint: "cancel the upload and push the blob again",
                },
            ),
        }
    }

    fn cached(&self, key: &(String, String)) -> Option<Record> {
        let records = self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        records.get(key).cloned()
    }

    fn remember(&self, key: (String, String), record: Record) {
        let mut records = self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if records.len() >= RECORDS_CACHED {
            records.clear();
        }
        records.insert(key, record);
    }

    fn forget(&self, id: &UploadId) {
        let prefix = format!("{}/", self.upload_path(id));
        let mut records = self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        records.retain(|(key, _), _| !key.starts_with(&prefix));
    }

    /// Reads the chunk record at `key`.
    async fn read_record(&self, key: &Path) -> Result<Record, BlobError> {
        let bytes = self
            .store
            .get(key)
            .await
            .map_err(self.failed("read chunk record", key))?
            .bytes()
            .await
            .map_err(self.failed("read chunk record", key))?;
        Record::parse(&bytes)
            .ok_or_else(|| self.inconsistent("read chunk record", key, "the chunk record is unreadable".to_owned()))
    }

    /// The record a listing found, from memory when its key and ETag were seen before.
    async fn record(&self, meta: &ObjectMeta) -> Result<Record, BlobError> {
        let cache_key = meta.e_tag.as_ref().map(|tag| (meta.location.to_string(), tag.clone()));
        if let Some(record) = cache_key.as_ref().and_then(|k| self.cached(k)) {
            return Ok(record);
        }
        // A record is `<length> <nonce>`, a few dozen bytes: a larger object is not one, and is
        // never read into memory.
        if meta.size > RECORD_MAX_BYTES {
            let why = format!("the chunk record holds {} bytes, more than a record ever does", meta.size);
            return Err(self.inconsistent("read chunk record", &meta.location, why));
        }
        let record = self.read_record(&meta.location).await?;
        if let Some(k) = cache_key {
            self.remember(k, record.clone());
        }
        Ok(record)
    }

    /// Every object under the upload's name.
    async fn list_upload(&self, id: &UploadId) -> Result<Vec<ObjectMeta>, BlobError> {
        let prefix = self.upload_path(id);
        self.store.list(Some(&prefix)).try_collect().await.map_err(self.failed("list upload", &prefix))
    }

    /// The upload as stored. Its records must run from byte 0 without gap or overlap, each
    /// naming a data object of the length it says.
    async fn staged(&self, id: &UploadId) -> Result<Staged, BlobError> {
        let prefix = self.upload_path(id);
        let listed = self.list_upload(id).await?;
        let mut data: HashMap<String, u64> = HashMap::new();
        let mut records: BTreeMap<u64, &ObjectMeta> = BTreeMap::new();
        for meta in &listed {
            let Some(parts) = meta.location.prefix_match(&prefix) else { continue };
            let parts: Vec<String> = parts.map(|p| p.as_ref().to_owned()).collect();
            match parts.as_slice() {
                [dir, nonce] if dir == "data" => {
                    data.insert(nonce.clone(), meta.size);
                }
                [dir, offset] if dir == "chunks" => {
                    if let Ok(offset) = offset.parse::<u64>() {
                        records.insert(offset, meta);
                    }
                }
                _ => {}
            }
        }
        let mut size = 0u64;
        let mut chunks = Vec::with_capacity(records.len());
        for (offset, meta) in records {
            if offset != size {
                return Err(self.inconsistent(
                    "list upload",
                    &prefix,
                    format!(
                        "the upload's chunks are not contiguous: byte {size} is followed by a chunk at byte {offset}"
                    ),
                ));
            }
            let record = self.record(meta).await?;
            let data_path = self.data_path(id, &record.nonce);
            if data.get(&record.nonce) != Some(&record.len) {
                return Err(self.inconsistent(
                    "list upload",
                    &data_path,
                    format!("the chunk at byte {offset} is missing or not {} bytes long", record.len),
                ));
            }
            size = size.checked_add(record.len).ok_or_else(|| {
                self.inconsistent("list upload", &prefix, "the upload's chunks add up past 2^64 bytes".to_owned())
            })?;
            chunks.push(Chunk { len: record.len, data: data_path });
        }
        Ok(Staged { size, chunks, objects: listed.into_iter().map(|m| m.location).collect() })
    }

    /// Streams `body` to a new object at `to`: buffered up to [`PART_SIZE`], multipart past it.
    /// Writes nothing for an empty body. Returns the bytes written.
    async fn write_chunk(&self, to: &Path, mut body: ByteStream) -> Result<u64, BlobError> {
        let mut writer = BufWriter::with_capacity(Arc::clone(&self.store), to.clone(), PART_SIZE)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        let mut len = 0u64;
        while let Some(item) = body.next().await {
            let bytes = match item {
                Ok(bytes) => bytes,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(BlobError::Body(e));
                }
            };
            len = len.saturating_add(bytes.len() as u64);
            if let Err(e) = writer.put(bytes).await {
                let _ = writer.abort().await;
                return Err(self.failed("write chunk", to)(e));
            }
        }
        if len == 0 {
            let _ = writer.abort().await;
            return Ok(0);
        }
        writer.shutdown().await.map_err(self.write_failed("write chunk", to))?;
        Ok(len)
    }

    /// Creates the record making `nonce`'s bytes the upload's from `offset`, unless one exists.
    /// `false` when another append holds that offset.
    async fn claim(&self, id: &UploadId, offset: u64, record: &Record) -> Result<bool, BlobError> {
        let key = self.record_path(id, offset);
        let payload = PutPayload::from(record.render());
        match self.store.put_opts(&key, payload, PutOptions::from(PutMode::Create)).await {
            Ok(result) => {
                if let Some(tag) = result.e_tag {
                    self.remember((key.to_string(), tag), record.clone());
                }
                Ok(true)
            }
            // A request retried after its answer was lost finds its own record: it won.
            Err(object_store::Error::AlreadyExists { .. }) => Ok(self.read_record(&key).await? == *record),
            Err(e) => Err(self.failed("record chunk", &key)(e)),
        }
    }

    /// Deletes `objects`, the first chunk's record before the rest: if this stops half way, the
    /// upload reads as broken rather than as a shorter one.
    async fn remove(&self, id: &UploadId, objects: Vec<Path>) -> Result<(), BlobError> {
        self.forget(id);
        let first = self.record_path(id, 0);
        if objects.contains(&first) {
            self.store.delete(&first).await.map_err(self.failed("delete upload", &first))?;
        }
        let rest: Vec<Path> = objects.into_iter().filter(|p| *p != first).collect();
        if rest.is_empty() {
            return Ok(());
        }
        let prefix = self.upload_path(id);
        let stream = futures::stream::iter(rest.into_iter().map(Ok)).boxed();
        let mut deleted = self.store.delete_stream(stream);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed("delete upload", &prefix)(e)),
            }
        }
        Ok(())
    }

    /// Removes a finished upload's objects; a failure leaves garbage, not a wrong answer.
    async fn clean_up(&self, id: &UploadId, objects: Vec<Path>) {
        if let Err(e) = self.remove(id, objects).await {
            tracing::warn!(upload = %id, error = %e, "cannot delete a finished upload's chunks; a bucket lifecycle rule on `uploads/` reclaims them");
        }
    }

    /// Streams the chunks in order through SHA-256, and into `writer` (writing `target`) when
    /// given.
    async fn hash_chunks(
        &self,
        staged: &Staged,
        mut writer: Option<(&mut BufWriter, &Path)>,
    ) -> Result<Digest, BlobError> {
        let mut hasher = Sha256Hasher::new();
        for chunk in &staged.chunks {
            let mut stream =
                self.store.get(&chunk.data).await.map_err(self.failed("read chunk", &chunk.data))?.into_stream();
            let mut read = 0u64;
            while let Some(bytes) = stream.next().await {
                let bytes = bytes.map_err(self.failed("read chunk", &chunk.data))?;
                read = read.saturating_add(bytes.len() as u64);
                hasher.update(&bytes);
                if let Some((w, target)) = writer.as_mut() {
                    w.put(bytes).await.map_err(self.failed("write blob", target))?;
                }
            }
            if read != chunk.len {
                return Err(self.inconsistent(
                    "read chunk",
                    &chunk.data,
                    format!("the chunk holds {read} bytes, not the {} its record says", chunk.len),
                ));
            }
        }
        Ok(hasher.finish())
    }

    /// The chunks' bytes in one buffer; only for uploads no larger than the inline limit.
    async fn read_small(&self, staged: &Staged) -> Result<Bytes, BlobError> {
        let mut buf = BytesMut::with_capacity(usize::try_from(staged.size).unwrap_or(0));
        for chunk in &staged.chunks {
            let bytes = self
                .store
                .get(&chunk.data)
                .await
                .map_err(self.failed("read chunk", &chunk.data))?
                .bytes()
                .await
                .map_err(self.failed("read chunk", &chunk.data))?;
            if bytes.len() as u64 != chunk.len {
                return Err(self.inconsistent(
                    "read chunk",
                    &chunk.data,
                    format!("the chunk holds {} bytes, not the {} its record says", bytes.len(), chunk.len),
                ));
            }
            buf.extend_from_slice(&bytes);
        }
        Ok(buf.freeze())
    }

    /// Makes the verified upload the blob at `target`. Returns the upload's digest; the blob is
    /// written only when it equals `expected`.
    async fn store_blob(&self, staged: &Staged, expected: &Digest, target: &Path) -> Result<Digest, BlobError> {
        if let [only] = staged.chunks.as_slice()
            && only.len <= COPY_MAX
        {
            let actual = self.hash_chunks(staged, None).await?;
            if &actual == expected {
                self.store.copy(&only.data, target).await.map_err(self.failed("copy blob", target))?;
            }
            return Ok(actual);
        }
        let mut writer = BufWriter::with_capacity(Arc::clone(&self.store), target.clone(), PART_SIZE)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        match self.hash_chunks(staged, Some((&mut writer, target))).await {
            Ok(actual) if &actual == expected => {
                writer.shutdown().await.map_err(self.write_failed("write blob", target))?;
                Ok(actual)
            }
            Ok(actual) => {
                // Never completed, the write was never visible; aborting frees its parts.
                let _ = writer.abort().await;
                Ok(actual)
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn append(&self, id: &UploadId, expected_offset: Option<u64>, body: ByteStream) -> Result<u64, BlobError> {
        let size = self.staged(id).await?.size;
        if let Some(offset) = expected_offset
            && offset != size
        {
            return Err(BlobError::OutOfOrder { expected: size, got: offset });
        }
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let data = self.data_path(id, &nonce);
        let len = self.write_chunk(&data, body).await?;
        if len == 0 {
            return Ok(size);
        }
        let record = Record { len, nonce };
        let mut offset = size;
        let mut attempts = 0usize;
        loop {
            let won = match self.claim(id, offset, &record).await {
                Ok(won) => won,
                Err(e) => {
                    let _ = self.store.delete(&data).await;
                    return Err(e);
                }
            };
            if won {
                return offset.checked_add(len).ok_or_else(|| {
                    self.inconsistent("append", &data, "the upload would grow past 2^64 bytes".to_owned())
                });
            }
            attempts = attempts.saturating_add(1);
            // Another append took this offset. One that named the offset is out of order; one
            // that did not tries again at the new end.
            let now = match self.staged(id).await {
                Ok(staged) => staged.size,
                Err(e) => {
                    let _ = self.store.delete(&data).await;
                    return Err(e);
                }
            };
            if expected_offset.is_some() || attempts >= CLAIM_ATTEMPTS {
                let _ = self.store.delete(&data).await;
                return Err(BlobError::OutOfOrder { expected: now, got: offset });
            }
            offset = now;
        }
    }

    async fn upload_size(&self, id: &UploadId) -> Result<u64, BlobError> {
        Ok(self.staged(id).await?.size)
    }

    async fn commit(&self, id: &UploadId, expected: &Digest, inline_max: u64) -> Result<CommitOutcome, BlobError> {
        let staged = self.staged(id).await?;
        let size = staged.size;
        if size <= inline_max {
            let bytes = self.read_small(&staged).await?;
            let actual = Digest::of(&bytes);
            self.clean_up(id, staged.objects).await;
            return Ok(if &actual == expected {
                CommitOutcome::Committed(Committed::Inline(bytes))
            } else {
                CommitOutcome::Mismatch { actual, size }
            });
        }
        let target = self.blob_path(expected);
        let present = match self.store.head(&target).await {
            Ok(meta) => meta.size == size,
            Err(e) if missing(&e) => false,
            Err(e) => return Err(self.failed("look up blob", &target)(e)),
        };
        // Content-addressed: when the same bytes are stored already, checking the digest is all
        // that is left to do.
        let actual = if present {
            self.hash_chunks(&staged, None).await?
        } else {
            self.store_blob(&staged, expected, &target).await?
        };
        if &actual != expected {
            self.clean_up(id, staged.objects).await;
            return Ok(CommitOutcome::Mismatch { actual, size });
        }
        // The bytes are durable under their digest; the metadata store does not know them yet.
        failpoint("blob-commit-moved");
        self.clean_up(id, staged.objects).await;
        Ok(CommitOutcome::Committed(Committed::Stored { size }))
    }

    async fn discard(&self, id: &UploadId) -> Result<(), BlobError> {
        let objects = self.list_upload(id).await?.into_iter().map(|m| m.location).collect();
        self.remove(id, objects).await
    }

    async fn read(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<ByteStream, BlobError> {
        let key = self.blob_path(digest);
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        let result = match self.store.get_opts(&key, options).await {
            Ok(r) => r,
            Err(e) if missing(&e) => return Err(BlobError::NotFound { digest: digest.clone() }),
            Err(e) => return Err(self.failed("read blob", &key)(e)),
        };
        let location = self.location(&key);
        Ok(Box::pin(result.into_stream().map_err(move |e| io::Error::other(format!("`{location}`: {}", one_line(&e))))))
    }

    async fn rehash(&self, digest: &Digest) -> Result<Digest, BlobError> {
        let mut stream = self.read(digest, None).await?;
        let mut hasher = Sha256Hasher::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk.map_err(|source| BlobError::Io { operation: "rehash blob", source })?);
        }
        Ok(hasher.finish())
    }

    async fn quarantine(&self, digest: &Digest) -> Result<(), BlobError> {
        let from = self.blob_path(digest);
        // S3 has no rename: object_store copies, then deletes the original.
        match self.store.rename(&from, &self.quarantine_path(digest)).await {
            Ok(()) => Ok(()),
            Err(e) if missing(&e) => Ok(()),
            Err(e) => Err(self.failed("quarantine blob", &from)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_garbage() {
        let record = Record { len: 42, nonce: "0123456789abcdef0123456789abcdef".to_owned() };
        assert_eq!(Record::parse(record.render().as_bytes()), Some(record));
        for bad in ["", "42", "0 0123456789abcdef0123456789abcdef", "42 xyz", "-1 0123456789abcdef0123456789abcdef"] {
            assert_eq!(Record::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn the_ca_bundle_variable_is_no_setting() {
        // `AmazonS3Builder::from_env` skips the variables that do not parse as a setting.
        assert!("aws_ca_bundle".parse::<AmazonS3ConfigKey>().is_err());
    }

    #[test]
    fn keys_sit_under_the_prefix() {
        let mut options = S3Options::new(S3Url::parse("s3://airlock/prod").unwrap());
        options.region = Some("us-east-1".to_owned());
        let store = S3BlobStore::open(&options).unwrap();
        let id = UploadId::parse(&"ab".repeat(16)).unwrap();
        assert_eq!(store.record_path(&id, 42).as_ref(), format!("prod/uploads/{id}/chunks/00000000000000000042"));
        let digest = Digest::of(b"x");
        assert_eq!(
            store.blob_path(&digest).as_ref(),
            format!("prod/blobs/sha256/{}/{}", &digest.hex()[..2], digest.hex())
        );
        let root = S3BlobStore::open(&S3Options::new(S3Url::parse("s3://airlock").unwrap())).unwrap();
        assert_eq!(root.quarantine_path(&digest).as_ref(), format!("quarantine/sha256/{}", digest.hex()));
        assert_eq!(format!("{root:?}"), "S3BlobStore { url: \"s3://airlock\", .. }");
    }
}
