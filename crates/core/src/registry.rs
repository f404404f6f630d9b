//! The registry's rules: which stage may be written, what a manifest needs, how an upload ends.
//!
//! The server turns each OCI request into one call here; every refusal is a [`RegistryError`]
//! variant, which the server's error table maps to an OCI code and status.

use std::ops::Range;
use std::sync::Arc;

use airlock_model::manifest::{Manifest, ManifestError, ManifestLimits};
use airlock_model::{Digest, Reference, RepoName, StageName, Tag, UploadId};
use bytes::Bytes;

use crate::audit::{Actor, Event, EventKind, Outcome, Subject};
use crate::ports::{
    BlobError, BlobRecord, BlobStore, ByteStream, Clock, LogObserver, ManifestRecord, MetadataStore, NewManifest,
    PutManifestOutcome, ReferrerRecord, StoreError, TagMode,
};
use crate::stage::{Stage, Stages};

mod uploads;

/// Blobs at or below this size are kept inline in the metadata store.
pub const INLINE_BLOB_MAX: u64 = 128 * 1024;
/// Most upload sessions one client may hold open.
pub const UPLOADS_PER_CLIENT_MAX: u64 = 128;
/// Largest page of tags or repositories returned at once.
pub const PAGE_MAX: u32 = 1000;
/// Most referrers listed for one subject.
pub const REFERRERS_MAX: u32 = 1000;
/// Most attestations stored about one artifact in one repository, trusted or not.
pub const ATTESTATIONS_PER_ARTIFACT_MAX: u32 = 64;
/// Most envelope bytes stored about one artifact in one repository, all attestations together.
pub const ATTESTATION_BYTES_PER_ARTIFACT_MAX: u64 = 8 * 1024 * 1024;

/// Limits on attacker-controlled work in the registry. Each has a config key under `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLimits {
    pub manifest: ManifestLimits,
    pub inline_blob_max: u64,
    pub uploads_per_client: u64,
    pub page_max: u32,
    /// Most attestations about one artifact (`limits.attestations_per_artifact`).
    pub attestations_per_artifact: u32,
    /// Most envelope bytes about one artifact (`limits.attestation_bytes_per_artifact`).
    pub attestation_bytes_per_artifact: u64,
    /// Deepest nesting of indexes, at push and at promotion ([`crate::references::INDEX_DEPTH_MAX`]).
    pub max_index_depth: usize,
}

impl Default for RegistryLimits {
    fn default() -> Self {
        RegistryLimits {
            manifest: ManifestLimits::default(),
            inline_blob_max: INLINE_BLOB_MAX,
            uploads_per_client: UPLOADS_PER_CLIENT_MAX,
            page_max: PAGE_MAX,
            attestations_per_artifact: ATTESTATIONS_PER_ARTIFACT_MAX,
            attestation_bytes_per_artifact: ATTESTATION_BYTES_PER_ARTIFACT_MAX,
            max_index_depth: crate::references::INDEX_DEPTH_MAX,
        }
    }
}

/// Why a registry operation was refused or failed. Exhaustive: the server maps each variant.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("stage `{stage}` is not configured; repository names start with one of: {known}")]
    StageUnknown { stage: StageName, known: String },
    #[error(
        "stage `{stage}` is gated: artifacts reach `{repo}` only by promotion; push to a pushable stage such as `dev` instead"
    )]
    StageGated { stage: StageName, repo: RepoName },
    #[error("writes are refused: {reason}")]
    WritesRefused { reason: String },
    #[error("{0}")]
    Busy(#[source] crate::ports::CpuBusy),
    #[error("attestation refused: {reason}")]
    AttestationInvalid { reason: String },
    #[error(
        "attestation is about {statement} but its manifest's subject is `{subject}`; attest the artifact the referrer points at"
    )]
    AttestationSubjectMismatch { subject: Digest, statement: String },
    #[error(
        "artifact `{subject}` in `{repo}` already has {count} attestations; the limit is {max} (config key `limits.attestations_per_artifact`); delete attestations it no longer needs"
    )]
    TooManyAttestations { repo: RepoName, subject: Digest, count: u64, max: u32 },
    #[error(
        "attestations about artifact `{subject}` in `{repo}` would total {total} bytes; the limit is {max} (config key `limits.attestation_bytes_per_artifact`); delete attestations it no longer needs"
    )]
    AttestationsTooLarge { repo: RepoName, subject: Digest, total: u64, max: u64 },
    #[error("trust root refused: {reason}")]
    TrustRootInvalid { reason: String },
    #[error("repository `{repo}` is not known to this registry")]
    NameUnknown { repo: RepoName },
    #[error("blob `{digest}` is not in repository `{repo}`")]
    BlobUnknown { repo: RepoName, digest: Digest },
    #[error("upload `{id}` is not open in repository `{repo}`; start a new upload with POST")]
    UploadUnknown { repo: RepoName, id: UploadId },
    #[error(
        "too many open uploads ({open}) for this client; the limit is {max} (config key `limits.uploads_per_client`); finish or cancel some"
    )]
    TooManyUploads { open: u64, max: u64 },
    #[error("content digest `{actual}` does not match `{expected}`; nothing was stored")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("{0}")]
    OutOfOrder(#[source] BlobError),
    #[error("blob size {actual} does not match the declared {declared}")]
    SizeMismatch { declared: u64, actual: u64 },
    #[error("manifest `{reference}` is not in repository `{repo}`")]
    ManifestUnknown { repo: RepoName, reference: String },
    #[error("{0}")]
    ManifestInvalid(#[source] ManifestError),
    #[error("manifest references blob `{digest}`, which is not in repository `{repo}`; push the blob first")]
    ManifestBlobUnknown { repo: RepoName, digest: Digest },
    #[error("index references manifest `{digest}`, which is not in repository `{repo}`; push it first")]
    ManifestChildUnknown { repo: RepoName, digest: Digest },
    #[error(
        "manifest field `{field}` says `{digest}` is {declared} bytes but it is {actual}; write the size of the content it names"
    )]
    DescriptorSizeMismatch { field: &'static str, digest: Digest, declared: u64, actual: u64 },
    #[error(
        "index says manifest `{digest}` is `{declared}` but it was pushed as `{actual}`; write the media type it was pushed with"
    )]
    DescriptorMediaTypeMismatch { digest: Digest, declared: String, actual: String },
    #[error(
        "indexes nest more than {max} deep (config key `limits.max_index_depth`); flatten the index or raise the limit"
    )]
    IndexTooDeep { max: usize },
    #[error(
        "stored manifest `{digest}` fails today's manifest checks ({reason}); push it again with a `mediaType` that matches its fields and promote the new digest"
    )]
    StoredManifestInvalid { digest: Digest, reason: String },
    #[error("index reaches more than {max} manifests; split it into smaller indexes")]
    IndexGraphTooLarge { max: usize },
    #[error("tag `{tag}` in gated stage `{stage}` already points at `{current}`; tags in gated stages are write-once")]
    TagImmutable { tag: Tag, stage: StageName, current: Digest },
    #[error("range {range} is not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable { range: String, size: u64 },
    #[error("{0}")]
    BodyTooLarge(#[source] BlobError),
    #[error("{0}")]
    Body(#[source] BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(BlobError),
}

impl From<BlobError> for RegistryError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::OutOfOrder { .. } => RegistryError::OutOfOrder(e),
            BlobError::TooLarge { .. } => RegistryError::BodyTooLarge(e),
            BlobError::Body(_) => RegistryError::Body(e),
            other => RegistryError::Blob(other),
        }
    }
}

/// A requested byte range, as HTTP `Range: bytes=` expresses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b`, both inclusive.
    Inclusive(u64, u64),
    /// `a-`, to the end.
    From(u64),
    /// `-n`, the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The half-open range within a blob of `size` bytes, or `None` when unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        let range = match self {
            ByteRange::Inclusive(a, b) if a <= b => a..b.saturating_add(1).min(size),
            ByteRange::Inclusive(..) => return None,
            ByteRange::From(a) => a..size,
            ByteRange::Suffix(n) => size.saturating_sub(n)..size,
        };
        (range.start < range.end).then_some(range)
    }
}

impl std::fmt::Display for ByteRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ByteRange::Inclusive(a, b) => write!(f, "bytes={a}-{b}"),
            ByteRange::From(a) => write!(f, "bytes={a}-"),
            ByteRange::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

/// A manifest was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
    /// Index of the push event in the transparency log.
    pub log_index: u64,
}

/// Where a blob's bytes are.
pub enum BlobBody {
    Inline(Bytes),
    Stream(ByteStream),
}

impl std::fmt::Debug for BlobBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobBody::Inline(b) => f.debug_tuple("Inline").field(&b.len()).finish(),
            BlobBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// The registry: rules over the metadata store, the blob store and the clock.
#[derive(Debug, Clone)]
pub struct Registry {
    stages: Stages,
    limits: RegistryLimits,
    store: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    log: Arc<dyn LogObserver>,
    /// Where evidence checks and policy evaluations run.
    cpu: Arc<dyn crate::ports::Cpu>,
    trust: Arc<crate::attest::TrustState>,
    /// Set when the log failed its start-up check: every write is refused, with this reason.
    writes_refused: Option<Arc<str>>,
    /// Rows not backed by the log that were logged already.
    integrity: Arc<crate::promotion::backed::Reported>,
    /// What the log says is frozen and revoked, whatever the tables say.
    log_facts: Arc<crate::promotion::backed::LogFacts>,
    /// Identical refusals are logged once a window and counted ([`crate::refusals`]).
    refusals: Arc<crate::refusals::Refusals>,
    /// Event-only appends arriving together share one transaction.
    group_commit: Arc<crate::group_commit::GroupCommit>,
    /// Where a shared commit runs, so a caller that goes away does not cancel it for the others.
    tasks: Arc<dyn crate::ports::Tasks>,
    /// Attestations read and signature checks made, kept for later decisions ([`crate::verified`]).
    verified: Arc<crate::verified::AttestationCache>,
}

impl Registry {
    pub fn new(
        stages: Stages,
        limits: RegistryLimits,
        store: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        log: Arc<dyn LogObserver>,
    ) -> Registry {
        Registry {
            stages,
            limits,
            store,
            blobs,
            clock,
            log,
            cpu: Arc::new(crate::ports::Inline),
            trust: Arc::default(),
            writes_refused: None,
            integrity: Arc::default(),
            log_facts: Arc::default(),
            refusals: Arc::default(),
            group_commit: Arc::default(),
            tasks: Arc::new(crate::ports::Awaited),
            verified: Arc::default(),
        }
    }

    /// The same registry, keeping attestation readings and signature checks within `limits`.
    #[must_use]
    pub fn with_verified_limits(mut self, limits: crate::verified::CacheLimits) -> Registry {
        self.verified = Arc::new(crate::verified::AttestationCache::new(limits));
        self
    }

    /// The attestation readings and signature checks this registry keeps.
    pub fn verified(&self) -> &Arc<crate::verified::AttestationCache> {
        &self.verified
    }

    /// The same registry, counting its refusals in `refusals`.
    #[must_use]
    pub fn with_refusals(mut self, refusals: Arc<crate::refusals::Refusals>) -> Registry {
        self.refusals = refusals;
        self
    }

    /// The open windows of identical refusals, which the server closes periodically.
    pub fn refusals(&self) -> &Arc<crate::refusals::Refusals> {
        &self.refusals
    }

    /// The same registry, refusing every write with `reason` (the log failed its check).
    pub fn refusing_writes(mut self, reason: impl Into<String>) -> Registry {
        self.writes_refused = Some(Arc::from(reason.into()));
        self
    }

    /// The same registry, committing shared log appends on `tasks` (the default runs each where
    /// it is awaited, so a caller that goes away cancels its batch for the others too).
    #[must_use]
    pub fn with_tasks(mut self, tasks: Arc<dyn crate::ports::Tasks>) -> Registry {
        self.tasks = tasks;
        self
    }

    /// The same registry, running CPU-bound work on `cpu` (the default runs it inline).
    pub fn with_cpu(mut self, cpu: Arc<dyn crate::ports::Cpu>) -> Registry {
        self.cpu = cpu;
        self
    }

    /// Runs CPU-bound `work` off the async workers; a full pool refuses it.
    pub async fn offload<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RegistryError> {
        crate::ports::offload(self.cpu.as_ref(), work).await.map_err(RegistryError::Busy)
    }

    /// Why writes are refused, if they are.
    pub fn writes_refused(&self) -> Option<&str> {
        self.writes_refused.as_deref()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The trust root in force.
    pub fn trust(&self) -> &crate::attest::TrustState {
        &self.trust
    }

    /// What the log says is frozen and revoked; the start-up check of the log feeds it every
    /// leaf it reads, and decisions catch it up with the leaves appended since.
    pub fn log_facts(&self) -> &crate::promotion::backed::LogFacts {
        &self.log_facts
    }

    /// The rows not backed by the log that were logged already.
    pub(crate) fn integrity_reported(&self) -> &crate::promotion::backed::Reported {
        &self.integrity
    }

    /// Wakes the checkpointer after a commit that appended to the log.
    pub(crate) fn notify_log(&self) {
        self.log.appended();
    }

    /// Appends events with no state change of their own, in a transaction shared with the other
    /// such appends arriving meanwhile (group commit); returns once they are durable.
    pub async fn log_events(&self, events: &[Event]) -> Result<Vec<u64>, RegistryError> {
        let indices = self.group_commit.append(&self.store, self.tasks.as_ref(), events).await?;
        self.log.appended();
        Ok(indices)
    }

    pub fn stages(&self) -> &Stages {
        &self.stages
    }

    pub fn limits(&self) -> &RegistryLimits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    /// The configured stage of `repo`.
    pub fn stage_of(&self, repo: &RepoName) -> Result<&Stage, RegistryError> {
        self.stages.get(repo.stage()).ok_or_else(|| RegistryError::StageUnknown {
            stage: repo.stage().clone(),
            known: self.stages.iter().map(|s| format!("`{}`", s.name())).collect::<Vec<_>>().join(", "),
        })
    }

    /// Refuses any client write into a gated stage, and logs the refusal. Promotion does not come
    /// through here. `action` names the attempted write in the log (`manifest.put`, ...).
    pub async fn ensure_pushable(
        &self,
        actor: &Actor,
        repo: &RepoName,
        action: &'static str,
        subject: Subject,
    ) -> Result<(), RegistryError> {
        if let Some(reason) = &self.writes_refused {
            return Err(RegistryError::WritesRefused { reason: reason.to_string() });
        }
        let stage = self.stage_of(repo)?;
        if stage.pushable() {
            return Ok(());
        }
        let error = RegistryError::StageGated { stage: stage.name().clone(), repo: repo.clone() };
        let subject = Subject { repository: Some(repo.clone()), ..subject };
        let mut event = Event::allowed(EventKind::WriteDenied, actor, self.clock.now(), subject)
            .with_detail("action", serde_json::Value::from(action));
        event.outcome = Outcome::Denied { reasons: vec![error.to_string()] };
        // The write is refused whether or not the refusal could be logged.
        if let Err(e) = self.log_refusal(&event).await {
            tracing::error!(error = %e, "cannot log a denied write");
        }
        Err(error)
    }

    /// Whether a write could go ahead, without logging: for checks before a body is read.
    pub fn check_pushable(&self, repo: &RepoName) -> Result<(), RegistryError> {
        if let Some(reason) = &self.writes_refused {
            return Err(RegistryError::WritesRefused { reason: reason.to_string() });
        }
        let stage = self.stage_of(repo)?;
        if stage.pushable() {
            Ok(())
        } else {
            Err(RegistryError::StageGated { stage: stage.name().clone(), repo: repo.clone() })
        }
    }

    /// The tag rule of a stage: mutable where clients push, write-once where promotion writes.
    pub fn tag_mode(&self, repo: &RepoName) -> Result<TagMode, RegistryError> {
        Ok(if self.stage_of(repo)?.pushable() { TagMode::Mutable } else { TagMode::WriteOnce })
    }

    /// Clamps a client's page size to the configured maximum.
    pub fn page_size(&self, requested: Option<u32>) -> u32 {
        requested.map_or(self.limits.page_max, |n| n.min(self.limits.page_max))
    }

    // ---- blobs -------------------------------------------------------------------------------

    /// A blob visible in `repo`. Quarantined blobs are reported as unknown: never wrong bytes.
    pub async fn stat_blob(&self, repo: &RepoName, digest: &Digest) -> Result<BlobRecord, RegistryError> {
        self.stage_of(repo)?;
        match self.store.blob_in_repo(repo, digest).await? {
            Some(record) if !record.quarantined => Ok(record),
            _ => Err(RegistryError::BlobUnknown { repo: repo.clone(), digest: digest.clone() }),
        }
    }

    /// Opens a blob for reading, whole or a validated byte range of it.
    pub async fn read_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<(BlobRecord, Option<Range<u64>>, BlobBody), RegistryError> {
        let record = self.stat_blob(repo, digest).await?;
        let range = match range {
            None => None,
            Some(spec) => Some(
                spec.resolve(record.size)
                    .ok_or_else(|| RegistryError::RangeNotSatisfiable { range: spec.to_string(), size: record.size })?,
            ),
        };
        let body = match &record.inline {
            Some(bytes) => {
                let slice = match &range {
                    Some(r) => {
                        let start = usize::try_from(r.start).unwrap_or(usize::MAX);
                        let end = usize::try_from(r.end).unwrap_or(usize::MAX);
                        if start <= end && end <= bytes.len() { bytes.slice(start..end) } else { Bytes::new() }
                    }
                    None => bytes.clone(),
                };
                BlobBody::Inline(slice)
            }
            None => BlobBody::Stream(self.blobs.read(digest, range.clone()).await?),
        };
        Ok((record, range, body))
    }

    /// Unlinks a blob from a pushable repository.
    pub async fn delete_blob(&self, actor: &Actor, repo: &RepoName, digest: &Digest) -> Result<(), RegistryError> {
        let subject = Subject { digest: Some(digest.clone()), ..Subject::default() };
        self.ensure_pushable(actor, repo, "blob.delete", subject).await?;
        if self.store.unlink_blob(repo, digest, actor, self.clock.now()).await? {
            self.log.appended();
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown { repo: repo.clone(), digest: digest.clone() })
        }
    }

    /// Cross-repository mount. Mounts only from a repository that holds the blob; `false` tells
    /// the caller to fall back to a regular upload. The server mounts only when the caller's token
    /// grants pull on `from`.
    pub async fn mount_blob(
        &self,
        actor: &Actor,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let subject = Subject { digest: Some(digest.clone()), ..Subject::default() };
        self.ensure_pushable(actor, repo, "blob.mount", subject).await?;
        if self.stage_of(from).is_err() {
            return Ok(false);
        }
        match self.store.blob_in_repo(from, digest).await? {
            Some(record) if !record.quarantined => {
                Ok(self.store.mount_blob(repo, from, digest, self.clock.now()).await?)
            }
            _ => Ok(false),
        }
    }

    // ---- manifests ---------------------------------------------------------------------------

    /// Stores a manifest exactly as received, after checking it and everything it references.
    pub async fn put_manifest(
        &self,
        actor: &Actor,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<PutManifest, RegistryError> {
        let subject = match reference {
            Reference::Tag(t) => Subject { tag: Some(t.clone()), ..Subject::default() },
            Reference::Digest(d) => Subject { digest: Some(d.clone()), ..Subject::default() },
        };
        self.ensure_pushable(actor, repo, "manifest.put", subject).await?;
        let tag_mode = self.tag_mode(repo)?;
        let manifest =
            Manifest::parse(content_type, &body, &self.limits.manifest).map_err(RegistryError::ManifestInvalid)?;
        let digest = Digest::of(&body);
        let tag = match reference {
            Reference::Digest(expected) if expected != &digest => {
                return Err(RegistryError::DigestMismatch { expected: expected.clone(), actual: digest });
            }
            Reference::Digest(_) => None,
            Reference::Tag(tag) => Some(tag),
        };
        self.check_references(repo, &manifest).await?;
        let subject = manifest.subject.as_ref().map(|s| s.digest.clone());
        let attestation = self.verify_attestation(repo, &manifest).await?;
        let new = NewManifest {
            digest: digest.clone(),
            media_type: manifest.kind.media_type().to_owned(),
            body,
            artifact_type: manifest.effective_artifact_type().map(|t| t.as_str().to_owned()),
            subject: subject.clone(),
            annotations_json: annotations_json(&manifest),
            required_blobs: manifest.required_blobs().cloned().collect(),
            required_manifests: manifest.required_manifests().cloned().collect(),
            attestation,
        };
        let outcome = self.store.put_manifest(repo, &new, tag.map(|t| (t, tag_mode)), actor, self.clock.now()).await?;
        match outcome {
            PutManifestOutcome::Stored { log_index } => {
                self.log.appended();
                Ok(PutManifest { digest, subject, log_index })
            }
            PutManifestOutcome::MissingBlob(digest) => {
                Err(RegistryError::ManifestBlobUnknown { repo: repo.clone(), digest })
            }
            PutManifestOutcome::MissingManifest(digest) => {
                Err(RegistryError::ManifestChildUnknown { repo: repo.clone(), digest })
            }
            PutManifestOutcome::TagImmutable { current } => Err(RegistryError::TagImmutable {
                tag: tag.cloned().ok_or_else(|| RegistryError::ManifestUnknown {
                    repo: repo.clone(),
                    reference: reference.to_string(),
                })?,
                stage: repo.stage().clone(),
                current,
            }),
        }
    }

    /// A manifest by tag or digest.
    pub async fn get_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<ManifestRecord, RegistryError> {
        self.stage_of(repo)?;
        let found = match reference {
            Reference::Tag(tag) => self.store.manifest_by_tag(repo, tag).await?,
            Reference::Digest(digest) => self.store.manifest_by_digest(repo, digest).await?,
        };
        found.ok_or_else(|| RegistryError::ManifestUnknown { repo: repo.clone(), reference: reference.to_string() })
    }

    /// Deletes a manifest (by digest) or a tag (by tag) in a pushable repository.
    pub async fn delete_manifest(
        &self,
        actor: &Actor,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<(), RegistryError> {
        let (action, subject) = match reference {
            Reference::Tag(t) => ("tag.delete", Subject { tag: Some(t.clone()), ..Subject::default() }),
            Reference::Digest(d) => ("manifest.delete", Subject { digest: Some(d.clone()), ..Subject::default() }),
        };
        self.ensure_pushable(actor, repo, action, subject).await?;
        let now = self.clock.now();
        let deleted = match reference {
            Reference::Tag(tag) => self.store.delete_tag(repo, tag, actor, now).await?,
            Reference::Digest(digest) => self.store.delete_manifest(repo, digest, actor, now).await?,
        };
        if deleted {
            self.log.appended();
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown { repo: repo.clone(), reference: reference.to_string() })
        }
    }

    /// A page of tags.
    pub async fn tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        n: Option<u32>,
    ) -> Result<Vec<String>, RegistryError> {
        self.stage_of(repo)?;
        self.store
            .tags(repo, last, self.page_size(n))
            .await?
            .ok_or_else(|| RegistryError::NameUnknown { repo: repo.clone() })
    }

    /// A page of repository names.
    pub async fn catalog(&self, last: Option<&str>, n: Option<u32>) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.catalog(last, self.page_size(n)).await?)
    }

    /// Manifests in `repo` whose subject is `digest`, optionally of one artifact type.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ReferrerRecord>, RegistryError> {
        self.stage_of(repo)?;
        Ok(self.store.referrers(repo, digest, artifact_type).await?)
    }
}

fn annotations_json(manifest: &Manifest) -> String {
    // A map of strings always serializes; the fallback keeps this total.
    serde_json::to_string(&manifest.annotations).unwrap_or_else(|_| String::from("{}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_resolve_within_the_blob() {
        assert_eq!(ByteRange::Inclusive(0, 0).resolve(10), Some(0..1));
        assert_eq!(ByteRange::Inclusive(5, 100).resolve(10), Some(5..10));
        assert_eq!(ByteRange::Inclusive(10, 12).resolve(10), None);
        assert_eq!(ByteRange::Inclusive(3, 2).resolve(10), None);
        assert_eq!(ByteRange::From(7).resolve(10), Some(7..10));
        assert_eq!(ByteRange::From(10).resolve(10), None);
        assert_eq!(ByteRange::Suffix(3).resolve(10), Some(7..10));
        assert_eq!(ByteRange::Suffix(30).resolve(10), Some(0..10));
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert_eq!(ByteRange::Inclusive(u64::MAX, u64::MAX).resolve(10), None);
    }
}
