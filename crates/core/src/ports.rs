//! The traits through which the core reaches the world: metadata, blob bytes and time.
//!
//! **Architecture Invariant:** the core does IO only through these traits. Each backend (SQLite,
//! PostgreSQL; filesystem, S3) implements them in its own crate and passes one conformance suite.

use std::io;
use std::ops::Range;
use std::pin::Pin;

use airlock_model::{Digest, PrincipalId, PrincipalKind, RepoName, StageName, Tag, Timestamp, UploadId};
use airlock_tlog::{Hash, NodeId};
use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::audit::{Actor, Event};

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

/// Upload sessions, which outlive a restart.
#[async_trait]
pub trait UploadIndex: Send + Sync {
    async fn create_upload(&self, upload: &UploadRecord) -> Result<(), StoreError>;
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

/// A user or service account as stored. Secrets are stored only as hashes (an Argon2id PHC
/// string for passwords, hex SHA-256 for API keys); the TOTP seed is the one secret kept, since
/// verifying a code needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRecord {
    pub id: PrincipalId,
    pub kind: PrincipalKind,
    /// Bumped by every change to what the principal may do (disabled, roles, credentials); a
    /// token carries the epoch it was issued at and dies when they differ.
    pub epoch: u64,
    pub disabled: bool,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub api_key_hash: Option<String>,
    pub api_key_expires_at: Option<Timestamp>,
    /// Roles bound to the principal, sorted.
    pub roles: Vec<String>,
    pub created_at: Timestamp,
    /// The person's e-mail (users): approvals compare people by it, normalized by
    /// [`crate::identity::person::PersonRule`]; an approver without one cannot approve.
    pub email: Option<String>,
    /// Hex SHA-256 of the user's one-time enrollment token, while one is outstanding.
    pub enrollment_hash: Option<String>,
    /// When the outstanding enrollment token stops working.
    pub enrollment_expires_at: Option<Timestamp>,
}

/// One change to a principal. Every change bumps its epoch, so tokens issued before it die.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalChange {
    Disable,
    Enable,
    SetPassword {
        hash: String,
    },
    SetTotp {
        secret: Option<String>,
    },
    SetApiKey {
        hash: String,
        expires_at: Timestamp,
    },
    GrantRole {
        role: String,
    },
    RevokeRole {
        role: String,
    },
    /// A new one-time enrollment token; the password and second factor are cleared, so only
    /// the token's holder can set new ones.
    SetEnrollment {
        hash: String,
        expires_at: Timestamp,
    },
    /// Completes an enrollment: applied only while the outstanding token's hash is
    /// `token_hash` (so a token is spent once); sets the password and second factor and clears
    /// the token.
    Enroll {
        token_hash: String,
        password_hash: String,
        totp_secret: String,
    },
}

/// Where a just-in-time grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    Pending,
    /// Approved; in force until `expires_at`.
    Active,
    Revoked,
    Denied,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Active => "active",
            GrantStatus::Revoked => "revoked",
            GrantStatus::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<GrantStatus> {
        [GrantStatus::Pending, GrantStatus::Active, GrantStatus::Revoked, GrantStatus::Denied]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// What a grant changes once approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    /// A role for a while (just-in-time elevation), asked for by its holder.
    Jit,
    /// A role bound for good.
    Bind,
    /// A role unbound.
    Unbind,
    /// The principal disabled.
    Disable,
    /// A new enrollment: password and second factor cleared, a one-time token issued.
    Reset,
}

impl GrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Jit => "jit",
            GrantKind::Bind => "bind",
            GrantKind::Unbind => "unbind",
            GrantKind::Disable => "disable",
            GrantKind::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<GrantKind> {
        [GrantKind::Jit, GrantKind::Bind, GrantKind::Unbind, GrantKind::Disable, GrantKind::Reset]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// A change to a principal that waits for approval: a just-in-time elevation (a role asked for
/// a while), or a privileged change an access admin asked for that takes a second one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: String,
    pub kind: GrantKind,
    /// The principal the change is to.
    pub principal: PrincipalId,
    /// Who asked: the holder for a just-in-time grant, an access admin otherwise.
    pub requested_by: PrincipalId,
    /// The first approval, when the change takes two.
    pub approved_by: Option<String>,
    /// The role granted, bound or unbound; empty for other kinds.
    pub role: String,
    pub reason: String,
    pub duration_secs: u64,
    pub status: GrantStatus,
    pub requested_at: Timestamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    /// Set when approved.
    pub expires_at: Option<Timestamp>,
}

impl GrantRecord {
    /// Whether the grant gives its role at `now` (a just-in-time grant, approved and not expired).
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.kind == GrantKind::Jit && self.status == GrantStatus::Active && self.expires_at.is_some_and(|e| now < e)
    }
}

/// Users, service accounts and their role bindings.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError>;
    /// Every principal, by name.
    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError>;
    /// Stores a new principal (with its roles) and logs `event` with it; `false` when the name
    /// is taken (nothing stored, nothing logged).
    async fn create_principal(&self, record: &PrincipalRecord, event: &Event) -> Result<bool, StoreError>;
    /// Applies `change`, bumps the epoch and logs `event` in the same transaction; `None` when
    /// there is no such principal, or an `Enroll` whose token is not the outstanding one
    /// (nothing changed, nothing logged).
    async fn change_principal(
        &self,
        id: &PrincipalId,
        change: &PrincipalChange,
        event: &Event,
    ) -> Result<Option<PrincipalRecord>, StoreError>;
    /// Stores a new (pending) grant and logs `event` with it.
    async fn create_grant(&self, grant: &GrantRecord, event: &Event) -> Result<(), StoreError>;
    async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError>;
    /// Grants of `principal` (every principal's when `None`), newest first.
    async fn grants(&self, principal: Option<&PrincipalId>) -> Result<Vec<GrantRecord>, StoreError>;
    /// Moves grant `id` from `from` to `grant.status` with its decision fields (and
    /// `approved_by`), applying `change` to the grant's principal (raising its epoch) and logging
    /// `event`, all in one transaction; a revocation also raises the principal's epoch, so tokens
    /// carrying the role die. `None` when the grant is not in `from` any more, or has another
    /// first approval (a concurrent decision won; nothing changed, nothing logged).
    async fn decide_grant(
        &self,
        grant: &GrantRecord,
        from: GrantStatus,
        change: Option<&PrincipalChange>,
        event: &Event,
    ) -> Result<Option<GrantRecord>, StoreError>;
    /// Roles defined through the API: `(name, definition JSON)`, by name.
    async fn defined_roles(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Stores a role definition and logs `event` with it; `false` when the name is taken.
    async fn define_role(&self, name: &str, definition: &str, event: &Event) -> Result<bool, StoreError>;
}

/// Where a promotion stands. `Pending` is the only state that moves; the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromotionStatus {
    /// Every automatic gate passed; waiting for approvals.
    Pending,
    Promoted,
    /// An automatic gate failed.
    Denied,
    Rejected,
    /// Closed unpromoted because its approvals ran out or the artifact changed under it.
    Expired,
    Cancelled,
}

impl PromotionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionStatus::Pending => "pending",
            PromotionStatus::Promoted => "promoted",
            PromotionStatus::Denied => "denied",
            PromotionStatus::Rejected => "rejected",
            PromotionStatus::Expired => "expired",
            PromotionStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<PromotionStatus> {
        [
            PromotionStatus::Pending,
            PromotionStatus::Promoted,
            PromotionStatus::Denied,
            PromotionStatus::Rejected,
            PromotionStatus::Expired,
            PromotionStatus::Cancelled,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// One promotion request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionRecord {
    pub id: String,
    /// The repository it is promoted from, `dev/app`.
    pub source: RepoName,
    /// The repository it is promoted into, `staging/app`.
    pub target: RepoName,
    /// The digest, resolved once when the request was made.
    pub digest: Digest,
    pub tag: Option<Tag>,
    pub requester: String,
    pub reason: String,
    pub status: PromotionStatus,
    /// The policy bundle digest of the latest evaluation.
    pub policy_digest: String,
    /// The digest of the evidence the latest evaluation saw (attestations and their verdicts).
    pub evidence_digest: String,
    /// The latest gate report, canonical JSON.
    pub report: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Why it was closed, for rejected, expired and cancelled promotions.
    pub closed_reason: Option<String>,
    /// The release record's manifest in the target repository, once promoted.
    pub release_digest: Option<Digest>,
    /// The verification summary (VSA) manifest beside it.
    pub summary_digest: Option<Digest>,
    /// The log index of the commit event, once promoted.
    pub log_index: Option<u64>,
    /// Promoted past failing gates by the break-glass procedure.
    pub break_glass: bool,
}

/// One approval, bound to exactly what was evaluated when it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub promotion: String,
    pub approver: String,
    /// The person behind the account, `email:<address>` normalized
    /// ([`crate::identity::person::Person`]); rows from before the rule may hold another form
    /// (`email:Same.Person+ops@…`, `principal:…`) and are read under today's rule. Two accounts
    /// of one person approve once.
    pub identity: String,
    pub digest: Digest,
    pub source: RepoName,
    pub target: RepoName,
    pub policy_digest: String,
    pub evidence_digest: String,
    pub comment: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The index of the `promotion.approve` entry that recorded it, appended in the same
    /// transaction; the approval counts only if that entry says the same.
    pub log_index: Option<u64>,
}

/// A manifest written by the promotion engine itself (the release record and its summary),
/// with the small blobs it references, all stored inline.
#[derive(Debug, Clone)]
pub struct EngineManifest {
    pub manifest: NewManifest,
    pub blobs: Vec<(Digest, Bytes)>,
}

/// What the engine writes when a promotion commits, and the events that record it. Built by
/// [`PromotionStore::commit_promotion`]'s `seal` once the log index is known.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub release: Vec<EngineManifest>,
    /// The release record's manifest digest.
    pub release_digest: Digest,
    /// The verification summary's manifest digest.
    pub summary_digest: Digest,
    /// The events, the first of which lands at the index `seal` was given.
    pub events: Vec<Event>,
}

/// Builds what a commit writes once the index of its first log event is known: the release
/// record names that index, and the commit event names the record.
pub type Seal<'a> = &'a (dyn Fn(u64) -> Result<Sealed, String> + Send + Sync);

/// One promotion's commit: what to link into the target repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionCommit {
    pub promotion: PromotionRecord,
    /// Manifests to link from the source repository, children before parents, referrers last.
    pub manifests: Vec<Digest>,
    /// Blobs to link from the source repository.
    pub blobs: Vec<Digest>,
    /// Approvals consumed by this commit (their approvers), recorded with it.
    pub approvers: Vec<String>,
    /// Whether the tag, if any, may replace another digest (an audited rollback).
    pub tag_mode: TagMode,
}

/// What committing a promotion came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionCommitOutcome {
    /// Linked, tagged, recorded; `log_index` is the commit event's.
    Committed { log_index: u64, release_digest: Digest },
    /// The promotion is not pending any more (a reject or another commit won).
    NotPending { status: PromotionStatus },
    /// The tag already points elsewhere in the target repository.
    TagImmutable { current: Digest },
    /// Something to link is missing from the source repository.
    Missing { digest: Digest },
}

/// Which promotions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromotionFilter {
    pub status: Option<PromotionStatus>,
    /// Promotions into this repository.
    pub target: Option<RepoName>,
    pub digest: Option<Digest>,
    pub limit: u32,
}

/// Promotions and approvals. Every change is logged in the transaction that makes it.
#[async_trait]
pub trait PromotionStore: Send + Sync {
    /// Stores a new pending or denied promotion with `event`, unless an open or promoted one
    /// exists for the same (source, digest, target, tag): then that one is returned and nothing
    /// is stored or logged.
    async fn open_promotion(
        &self,
        promotion: &PromotionRecord,
        event: &Event,
    ) -> Result<Result<(), PromotionRecord>, StoreError>;
    async fn promotion(&self, id: &str) -> Result<Option<PromotionRecord>, StoreError>;
    /// Newest first.
    async fn promotions(&self, filter: &PromotionFilter) -> Result<Vec<PromotionRecord>, StoreError>;
    /// The approvals of a promotion, oldest first.
    async fn approvals(&self, promotion: &str) -> Result<Vec<ApprovalRecord>, StoreError>;
    /// Records an approval with `event` while the promotion is pending, storing the index the
    /// event lands at with it (`approval.log_index` is ignored). `false` when it is not
    /// pending, or this approver (or this identity) already approved: nothing logged.
    async fn add_approval(&self, approval: &ApprovalRecord, event: &Event) -> Result<bool, StoreError>;
    /// Updates a pending promotion's evaluation (policy and evidence digests, report).
    async fn update_evaluation(&self, promotion: &PromotionRecord) -> Result<(), StoreError>;
    /// Closes a pending promotion as `status` with `reason` and `event`; `None` when it was not
    /// pending (nothing logged).
    async fn close_promotion(
        &self,
        id: &str,
        status: PromotionStatus,
        reason: &str,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<PromotionRecord>, StoreError>;
    /// In one transaction: checks the promotion is pending, links its manifests and blobs into
    /// the target repository, sets its tag, stores the release record `seal` builds, marks it
    /// promoted and appends the events.
    async fn commit_promotion(
        &self,
        commit: &PromotionCommit,
        seal: Seal<'_>,
        now: Timestamp,
    ) -> Result<PromotionCommitOutcome, StoreError>;
    /// Who pushed `digest` into `repo`, when known.
    async fn pusher(&self, repo: &RepoName, digest: &Digest) -> Result<Option<String>, StoreError>;
    /// Moves `tag` in `repo` from `from` to `to` (a manifest `repo` holds) with `event`, the one
    /// way a tag in a gated stage moves; `None` when the tag no longer names `from` or `repo`
    /// does not hold `to` (nothing logged). Returns the event's log index.
    async fn move_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        from: &Digest,
        to: &Digest,
        event: &Event,
    ) -> Result<Option<u64>, StoreError>;
}

/// Release bundles, attached by the engine once a signed checkpoint covers a commit.
#[async_trait]
pub trait ReleaseBundleStore: Send + Sync {
    /// In one transaction with `event`: stores `bundle` (a referrer manifest and its inline
    /// blobs) in `repo`, unless `repo` already holds a bundle referrer of the same subject for the
    /// same promotion (then nothing is stored or logged and `None` is returned). Returns the
    /// event's log index.
    async fn attach_release_bundle(
        &self,
        repo: &RepoName,
        bundle: &EngineManifest,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError>;
}

/// A frozen stage: nothing is promoted into it until two distinct people lift the freeze.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeRecord {
    pub stage: StageName,
    pub reason: String,
    pub frozen_by: String,
    pub frozen_at: Timestamp,
    /// The first person asking to lift it, waiting for a second.
    pub unfreeze_by: Option<String>,
    /// The index of the `stage.unfreeze.request` entry that recorded the first person.
    pub unfreeze_index: Option<u64>,
    /// The second person, once the freeze is lifted. A lifted freeze stays stored: it is lifted
    /// only if the `stage.unfreeze` entry at `lift_index` says so.
    pub lifted_by: Option<String>,
    pub lift_index: Option<u64>,
}

/// Where a waiver stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaiverState {
    Pending,
    /// Approved; waives until `expires_at`.
    Active,
    Denied,
    Revoked,
}

impl WaiverState {
    pub fn as_str(self) -> &'static str {
        match self {
            WaiverState::Pending => "pending",
            WaiverState::Active => "active",
            WaiverState::Denied => "denied",
            WaiverState::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<WaiverState> {
        [WaiverState::Pending, WaiverState::Active, WaiverState::Denied, WaiverState::Revoked]
            .into_iter()
            .find(|w| w.as_str() == s)
    }
}

/// A waiver requested through the API: one rule, optionally one vulnerability and component,
/// for a repository pattern, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiverRecord {
    pub id: String,
    pub rule: String,
    pub vulnerability: Option<String>,
    pub component: Option<String>,
    /// A repository pattern (`*/payments/api`).
    pub repository: String,
    pub justification: String,
    pub requester: String,
    pub state: WaiverState,
    pub approver: Option<String>,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    /// The index of the `waiver.approve` entry that made it active, appended in the same
    /// transaction; an active waiver waives only if that entry says the same.
    pub log_index: Option<u64>,
}

/// A follow-up review a break-glass promotion leaves open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRecord {
    pub id: String,
    pub promotion: String,
    pub opened_at: Timestamp,
    pub closed_by: Option<String>,
    pub closed_at: Option<Timestamp>,
    pub note: Option<String>,
}

/// Stage freezes, waivers and reviews. Every change is logged in the transaction that makes it.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Freezes a stage with `event`; `false` when it is frozen already (nothing logged). A
    /// stage whose stored freeze is lifted is frozen again.
    async fn freeze(&self, record: &FreezeRecord, event: &Event) -> Result<bool, StoreError>;
    /// Every stored freeze, lifted or not.
    async fn freezes(&self) -> Result<Vec<FreezeRecord>, StoreError>;
    /// Records the first request to lift a freeze, with the index `event` lands at; `false`
    /// when the stage is not frozen or a request is already waiting. `replacing` names a
    /// waiting request the log does not back, which this one replaces.
    async fn request_unfreeze(
        &self,
        stage: &StageName,
        by: &str,
        replacing: Option<&str>,
        event: &Event,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Lifts a freeze whose first request came from `first`: `second` and the index `event`
    /// lands at are stored with it. `false` when that is not so any more.
    async fn lift_freeze(
        &self,
        stage: &StageName,
        first: &str,
        second: &str,
        event: &Event,
    ) -> Result<bool, StoreError>;
    async fn create_waiver(&self, waiver: &WaiverRecord, event: &Event) -> Result<(), StoreError>;
    async fn waiver(&self, id: &str) -> Result<Option<WaiverRecord>, StoreError>;
    /// Every waiver, newest first.
    async fn waivers(&self) -> Result<Vec<WaiverRecord>, StoreError>;
    /// Moves a waiver from `from` to `waiver.state` with its decision fields and `event`; `None`
    /// when it is not in `from` any more. Moving to `active` stores the index `event` lands at.
    async fn decide_waiver(
        &self,
        waiver: &WaiverRecord,
        from: WaiverState,
        event: &Event,
    ) -> Result<Option<WaiverRecord>, StoreError>;
    async fn reviews(&self) -> Result<Vec<ReviewRecord>, StoreError>;
    /// Closes an open review with `event`; `None` when it is not open.
    async fn close_review(
        &self,
        id: &str,
        by: &str,
        note: &str,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<ReviewRecord>, StoreError>;
}

/// The whole metadata store.
pub trait MetadataStore:
    BlobIndex
    + ManifestIndex
    + UploadIndex
    + LogStore
    + TrustStore
    + IdentityStore
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
