//! Promotions, approvals, release bundles, and the stage controls beside them (freezes, waivers,
//! reviews).

use airlock_model::{Digest, RepoName, StageName, Tag, Timestamp};
use async_trait::async_trait;
use bytes::Bytes;

use super::{NewManifest, StoreError};
use crate::audit::Event;

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

/// A conditional tag write in a commit's target repository: `tag` is pointed at `digest` only
/// if it still points at `expected` (`None`: only if it is absent). The engine decides the tag
/// rule and builds the event; the store only checks the condition inside the commit's
/// transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TagWrite {
    pub tag: Tag,
    pub digest: Digest,
    pub expected: Option<Digest>,
    /// The event recording the write, appended after the seal's events when the write lands.
    pub event: Event,
}

/// One promotion's commit: what to link into the target repository.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionCommit {
    pub promotion: PromotionRecord,
    /// Manifests to link from the source repository, children before parents, referrers last.
    pub manifests: Vec<Digest>,
    /// Blobs to link from the source repository.
    pub blobs: Vec<Digest>,
    /// Approvals consumed by this commit (their approvers), recorded with it.
    pub approvers: Vec<String>,
    /// The tag to write with the commit, if any.
    pub tag: Option<TagWrite>,
}

/// What committing a promotion came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionCommitOutcome {
    /// Linked, tagged, recorded; `log_index` is the commit event's.
    Committed { log_index: u64, release_digest: Digest },
    /// The promotion is not pending any more (a reject or another commit won).
    NotPending { status: PromotionStatus },
    /// The tag write's condition failed: the tag points at `current` (`None`: it is absent),
    /// not at what the write expected. Nothing is written or logged.
    TagMoved { current: Option<Digest> },
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
    /// the target repository, performs the conditional tag write if there is one, stores the
    /// release record `seal` builds, marks it promoted and appends the seal's events, then the
    /// tag write's. The store applies no tag rule and mints no event of its own.
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
