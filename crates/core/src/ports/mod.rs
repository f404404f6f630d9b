//! The traits through which the core reaches the world: metadata, blob bytes and time.
//!
//! **Architecture Invariant:** the core does IO only through these traits. Each backend (SQLite,
//! PostgreSQL; filesystem, S3) implements them in its own crate and passes one conformance suite.

use std::io;
use std::ops::Range;
use std::pin::Pin;

use airlock_model::{Digest, RepoName, Tag, Timestamp, UploadId};
use airlock_tlog::{Hash, NodeId};
use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::audit::{Actor, Event};

mod cpu;
mod failpoint;
mod identity;
mod promotion;

pub use cpu::{Awaited, Cpu, CpuBusy, Inline, Tasks, offload};
pub use failpoint::{FAILPOINT_ENV, failpoint};
pub use identity::{
    GrantKind, GrantRecord, GrantStatus, IdentityStore, LoginFailures, LoginStore, PrincipalChange, PrincipalRecord,
};
pub use promotion::*;

/// A stream of body bytes, from a client or from storage.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// Told after every commit that appended to the log, so a signed checkpoint can follow.
pub trait LogObserver: Send + Sync + std::fmt::Debug {
    fn appended(&self);
}

/// The only source of time for the core.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// A failure of the metadata store. The message is for operators' logs, never for clients.
#[derive(Debug, thiserror::Error)]
#[error("metadata store {operation} failed: {source}")]
pub struct StoreError {
    pub operation: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Whether `error`, or anything it was caused by, is the disk running out of space (or quota).
/// Backends report it as an [`io::Error`] of kind `StorageFull` somewhere in the chain, so
/// callers can answer "retry when space returns" instead of an internal failure.
pub fn storage_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && matches!(io.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Whether `error`, or anything it was caused by, is the metadata store being unreachable (a
/// database server down, restarting or cut off). Backends report it as an [`io::Error`] of kind
/// `NotConnected` somewhere in the chain, so callers can answer "unavailable, retry later"
/// instead of an internal failure.
pub fn store_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::NotConnected
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// A blob as the metadata store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
    /// Small blobs live inline in the metadata store; larger ones in the blob store.
    pub inline: Option<Bytes>,
    pub quarantined: bool,
}

/// A stored manifest: the bytes exactly as received and what was parsed from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub body: Bytes,
}

/// A manifest to store, with what it needs to exist first.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub digest: Digest,
    pub media_type: String,
    pub body: Bytes,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// Annotations as a JSON object, for the referrers API.
    pub annotations_json: String,
    pub required_blobs: Vec<Digest>,
    pub required_manifests: Vec<Digest>,
    /// Set when the manifest carries a DSSE attestation, verified before the store is called.
    pub attestation: Option<NewAttestation>,
}

/// What verifying an attestation against the trust root concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub trusted: bool,
    /// Names of the signer rules the attestation satisfied.
    pub signers: Vec<String>,
    /// Why it is not trusted, one line each.
    pub reasons: Vec<String>,
    /// The trust root version it was checked against.
    pub root_version: u64,
}

/// An attestation to record with its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttestation {
    pub subject: Digest,
    pub predicate_type: String,
    /// The DSSE envelope exactly as pushed.
    pub envelope: Bytes,
    pub verdict: Verdict,
}

/// A recorded attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationRecord {
    /// The referrer manifest that carries it.
    pub manifest: Digest,
    pub subject: Digest,
    pub predicate_type: String,
    pub envelope: Bytes,
    /// The verdict at ingest; callers re-verify against the current root.
    pub verdict: Verdict,
    pub created_at: Timestamp,
}

/// A stored trust root version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoot {
    pub version: u64,
    pub document: Bytes,
}

/// The trust root's versions and the attestations verified against them.
#[async_trait]
pub trait TrustStore: Send + Sync {
    async fn latest_root(&self) -> Result<Option<StoredRoot>, StoreError>;
    async fn root_version(&self, version: u64) -> Result<Option<StoredRoot>, StoreError>;
    /// Stores a root version that was verified against its predecessor, and logs `event` with
    /// it. `false` when that version already exists (nothing stored, nothing logged).
    async fn put_root(&self, root: &StoredRoot, event: &Event, now: Timestamp) -> Result<bool, StoreError>;
    /// Attestations in `repo` about `subject`, oldest first.
    async fn attestations(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<AttestationRecord>, StoreError>;
}

/// Whether a tag may move once set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagMode {
    Mutable,
    /// Gated stages: a tag, once set, never points elsewhere.
    WriteOnce,
}

/// What storing a manifest came to. The store checks the references inside its transaction so a
/// concurrent delete cannot leave a manifest pointing at nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutManifestOutcome {
    /// Stored; `log_index` is the durable index of its push event in the transparency log.
    Stored {
        log_index: u64,
    },
    MissingBlob(Digest),
    MissingManifest(Digest),
    TagImmutable {
        current: Digest,
    },
}

/// One entry of the referrers API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations_json: String,
}

/// An open upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: UploadId,
    pub repo: RepoName,
    pub client: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Totals for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobTotals {
    pub count: u64,
    pub bytes: u64,
}

/// Blobs and their visibility per repository.
#[async_trait]
pub trait BlobIndex: Send + Sync {
    /// The blob if it is linked into `repo`, quarantined or not.
    async fn blob_in_repo(&self, repo: &RepoName, digest: &Digest) -> Result<Option<BlobRecord>, StoreError>;
    /// The size of each of `digests` linked into `repo`, quarantined or not, as
    /// [`BlobIndex::blob_in_repo`] finds them, read together (a few hundred digests per query);
    /// a digest `repo` does not hold is absent from the answer.
    async fn blob_sizes_in_repo(
        &self,
        repo: &RepoName,
        digests: &[Digest],
    ) -> Result<std::collections::HashMap<Digest, u64>, StoreError>;
    /// Records a blob (clearing any quarantine, since its bytes were just verified) and links it.
    /// `closing` is the upload session this blob completes; it is deleted in the same
    /// transaction.
    async fn insert_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        inline: Option<Bytes>,
        closing: Option<&UploadId>,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Links a blob that `from` holds into `repo`; false when `from` does not hold it.
    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Removes the link from `repo` and logs it; false when there was none.
    async fn unlink_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Stored blobs in digest order after `after`, for the scrubber.
    async fn blobs_after(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<BlobRecord>, StoreError>;
    /// Marks a blob as corrupt; reads answer as if it did not exist.
    async fn quarantine_blob(&self, digest: &Digest, now: Timestamp) -> Result<(), StoreError>;
    async fn blob_totals(&self) -> Result<BlobTotals, StoreError>;
}

/// Manifests, tags and referrers. Every change is logged in the transaction that makes it.
#[async_trait]
pub trait ManifestIndex: Send + Sync {
    /// Stores a manifest (and sets its tag) after checking its references, logging the push and
    /// the tag's creation or move.
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &NewManifest,
        tag: Option<(&Tag, TagMode)>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<PutManifestOutcome, StoreError>;
    async fn manifest_by_digest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>, StoreError>;
    async fn manifest_by_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Option<ManifestRecord>, StoreError>;
    /// Deletes a manifest and every tag pointing at it, and logs it; false when absent.
    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Deletes a tag and logs it; false when absent.
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag, actor: &Actor, now: Timestamp) -> Result<bool, StoreError>;
    /// Tags in lexical order after `last`; `None` when the repository holds nothing at all.
    async fn tags(&self, repo: &RepoName, last: Option<&str>, n: u32) -> Result<Option<Vec<String>>, StoreError>;
    /// Repository names in lexical order after `last`.
    async fn catalog(&self, last: Option<&str>, n: u32) -> Result<Vec<String>, StoreError>;
    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ReferrerRecord>, StoreError>;
}

/// Upload sessions, which outlive a restart once they hold bytes.
#[async_trait]
pub trait UploadIndex: Send + Sync {
    /// Records a new session unless its client holds `max_open` sessions already (`false`:
    /// nothing stored). The count and the insert are one statement (on PostgreSQL, sessions
    /// opened at the same instant may each pass the count). Backends may commit it
    /// without waiting for the disk: it is made durable by the next durable commit, and the core
    /// makes one ([`Self::touch_upload`]) before the session's first bytes are staged.
    async fn create_upload(&self, upload: &UploadRecord, max_open: u64) -> Result<bool, StoreError>;
    async fn upload(&self, id: &UploadId) -> Result<Option<UploadRecord>, StoreError>;
    async fn touch_upload(&self, id: &UploadId, now: Timestamp) -> Result<(), StoreError>;
    async fn delete_upload(&self, id: &UploadId) -> Result<(), StoreError>;
    async fn uploads_by_client(&self, client: &str) -> Result<u64, StoreError>;
    /// Sessions idle since before `before`.
    async fn idle_uploads(&self, before: Timestamp, limit: u32) -> Result<Vec<UploadId>, StoreError>;
}

/// One leaf of the transparency log as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf {
    pub index: u64,
    pub data: Bytes,
    /// The leaf hash recorded when the leaf was appended.
    pub leaf_hash: Hash,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub note: String,
}

/// The transparency log: append-only leaves and tree nodes, and the signed checkpoints.
///
/// **Architecture Invariant:** no backend ever updates or deletes a leaf, a node or a checkpoint.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Appends events in a transaction of their own; returns their durable indices.
    async fn append_events(&self, events: &[Event]) -> Result<Vec<u64>, StoreError>;
    /// Leaves in the log.
    async fn log_size(&self) -> Result<u64, StoreError>;
    /// The hashes of complete-subtree nodes, in the order asked; `None` for a node not stored.
    async fn log_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError>;
    /// Leaves with indices in `[start, end)`, in order.
    async fn log_leaves(&self, start: u64, end: u64) -> Result<Vec<LogLeaf>, StoreError>;
    /// The leaves at `indices`, in the order asked (repeats allowed); `None` for an index the
    /// log does not hold. A handful of queries whatever the count, for checking the rows that
    /// name the entries recording them.
    async fn log_entries(&self, indices: &[u64]) -> Result<Vec<Option<LogLeaf>>, StoreError>;
    /// Stores a signed checkpoint; storing one for a size already stored is a no-op.
    async fn put_checkpoint(&self, checkpoint: &StoredCheckpoint, now: Timestamp) -> Result<(), StoreError>;
    /// The checkpoint with the largest size.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;
}

/// A hint that what servers cache from the store may have changed.
pub type ChangeHints = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// What every server over one store caches from it (the trust root in force, the roles defined
/// through the API), versioned, so a server can tell that another changed it.
#[async_trait]
pub trait CachedState: Send + Sync {
    /// A number that rises with every stored change to what servers cache, raised in the
    /// transaction that makes the change.
    async fn cached_state_version(&self) -> Result<u64, StoreError>;
    /// The version and, read at the same instant, the principal `id` as
    /// [`IdentityStore::principal_granted`] reads it: what a server reads first for every
    /// authenticated request that can decide something, in one round trip where the backend can.
    async fn cached_state_with_principal(
        &self,
        id: &airlock_model::PrincipalId,
    ) -> Result<(u64, Option<(PrincipalRecord, bool)>), StoreError>;
    /// Hints, as changes commit, that [`CachedState::cached_state_version`] may have risen, where
    /// the backend can send them (PostgreSQL's `LISTEN`/`NOTIFY`); `None` where it cannot. A
    /// missed hint is harmless: servers also read the version before each decision and on a timer.
    async fn watch_cached_state(&self) -> Result<Option<ChangeHints>, StoreError>;
}

/// The whole metadata store.
pub trait MetadataStore:
    BlobIndex
    + ManifestIndex
    + UploadIndex
    + LogStore
    + TrustStore
    + IdentityStore
    + LoginStore
    + CachedState
    + PromotionStore
    + ControlStore
    + ReleaseBundleStore
    + std::fmt::Debug
{
}
impl<
    T: BlobIndex
        + ManifestIndex
        + UploadIndex
        + LogStore
        + TrustStore
        + IdentityStore
        + LoginStore
        + CachedState
        + PromotionStore
        + ControlStore
        + ReleaseBundleStore
        + std::fmt::Debug,
> MetadataStore for T
{
}

/// A failure of the blob store or of reading a client's body.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("upload `{id}` has no data in the blob store")]
    UploadMissing { id: UploadId },
    #[error("chunk starts at byte {got} but the upload holds {expected} bytes; resume from byte {expected}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("blob `{digest}` is not in the blob store")]
    NotFound { digest: Digest },
    #[error("body is larger than the {max} bytes allowed")]
    TooLarge { max: u64 },
    #[error("reading the request body failed: {0}")]
    Body(#[source] io::Error),
    #[error("blob store {operation} failed: {source}")]
    Io {
        operation: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The result of committing an upload whose digest matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Small enough to keep in the metadata store; nothing was written to the blob store.
    Inline(Bytes),
    /// Written, synced and renamed into its content-addressed place.
    Stored { size: u64 },
}

/// What an upload's bytes hash to, checked against what the client said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed(Committed),
    Mismatch { actual: Digest, size: u64 },
}

/// Blob bytes: staged uploads and the content-addressed store.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Appends `body` to the upload, which must currently hold exactly `expected_offset` bytes
    /// when one is given. Returns the upload's new size.
    async fn append(&self, id: &UploadId, expected_offset: Option<u64>, body: ByteStream) -> Result<u64, BlobError>;
    /// Bytes received so far (zero for a session that has received nothing).
    async fn upload_size(&self, id: &UploadId) -> Result<u64, BlobError>;
    /// Hashes, compares with `expected`, and on a match makes the bytes durable. On a mismatch
    /// the staged bytes are discarded and nothing is stored.
    async fn commit(&self, id: &UploadId, expected: &Digest, inline_max: u64) -> Result<CommitOutcome, BlobError>;
    /// Drops an upload's staged bytes, if any.
    async fn discard(&self, id: &UploadId) -> Result<(), BlobError>;
    /// Reads a stored blob, or a byte range of it.
    async fn read(&self, digest: &Digest, range: Option<Range<u64>>) -> Result<ByteStream, BlobError>;
    /// Re-hashes a stored blob's bytes, for the scrubber.
    async fn rehash(&self, digest: &Digest) -> Result<Digest, BlobError>;
    /// Moves a corrupt blob aside so it can never be served.
    async fn quarantine(&self, digest: &Digest) -> Result<(), BlobError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store failure whose source is `source`.
    fn failure(source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError { operation: "test", source: Box::new(source) }
    }

    #[test]
    fn unavailable_and_full_are_told_apart_through_the_chain() {
        let cases = [
            (io::ErrorKind::NotConnected, true, false),
            (io::ErrorKind::StorageFull, false, true),
            (io::ErrorKind::QuotaExceeded, false, true),
            (io::ErrorKind::ConnectionRefused, false, false),
            (io::ErrorKind::Other, false, false),
        ];
        for (kind, unavailable, full) in cases {
            // The kind directly in the source, and wrapped once more as a driver would.
            let direct = failure(io::Error::from(kind));
            let wrapped = failure(io::Error::other(failure(io::Error::new(kind, "driver"))));
            for error in [&direct, &wrapped] {
                assert_eq!(store_unavailable(error), unavailable, "{kind:?}: {error}");
                assert_eq!(storage_full(error), full, "{kind:?}: {error}");
            }
        }
        let plain = StoreError { operation: "test", source: "a constraint failed".into() };
        assert!(!store_unavailable(&plain));
    }
}
