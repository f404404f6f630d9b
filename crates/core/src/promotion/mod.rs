//! The promotion engine: one digest from one stage's repository into the next stage's, only
//! when every gate passes and the quorum of distinct, eligible approvers holds, committed in one
//! transaction with its release record and log events.
//!
//! The states are those of [`PromotionStatus`]: a request whose automatic gates fail is
//! `denied` at once; one that needs approvals waits `pending`; when its quorum is met the engine
//! re-evaluates everything and commits (`promoted`), or closes it. Only `pending` moves, and
//! every move is a conditional update in the store, so a reject and a final approval racing
//! each other cannot both win.

mod approvals;
pub mod backed;
pub mod bundle;
mod commit;
pub mod control;
mod dry_run;
pub mod gates;
pub mod history;
pub mod pipeline;
pub mod policies;
pub mod record;
pub mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_dsse::PrivateKey;
use airlock_model::{Digest, PrincipalId, PrincipalKind, Reference, RepoName, StageName, Tag, Timestamp};
use serde_json::{Value, json};

use crate::audit::{Actor, Event, EventKind, Outcome, Subject};
use crate::identity::person::PersonRule;
use crate::policy_input::{PolicyInput, Requester};
use crate::ports::{
    ApprovalRecord, BlobIndex, Clock, ControlStore, IdentityStore, LogStore, ManifestIndex, MetadataStore,
    PromotionFilter, PromotionRecord, PromotionStatus, PromotionStore, ReleaseBundleStore, StoreError, TrustStore,
};
use crate::registry::{Registry, RegistryError};
use approvals::approvals_json;
use gates::{Evaluation, PolicySet};
use pipeline::{ApprovalRule, Gates};

/// Most manifests one promotion links (the artifact, its children and its referrer graph).
pub const GRAPH_MAX: usize = 4096;
/// How deep the referrer graph is followed (referrers of referrers, ...).
pub const REFERRER_DEPTH_MAX: usize = 4;

/// Why a promotion request or decision was refused. Gate failures are not errors: they are a
/// `denied` promotion with its findings.
#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stage `{stage}` is not reached by promotion; promote into one of: {known}")]
    NotPromotable { stage: StageName, known: String },
    #[error("stage `{target}` is promoted from `{expected}`, not `{source_stage}`; promote into `{next}` first")]
    WrongSource { source_stage: StageName, target: StageName, expected: StageName, next: String },
    #[error("promotion `{id}` does not exist; list promotions with `airlock promotion list`")]
    Unknown { id: String },
    #[error("promotion `{id}` is {status}, so it can no longer be decided")]
    NotPending { id: String, status: &'static str },
    #[error("promotions into `{stage}` need no approval")]
    NoApprovalNeeded { stage: StageName },
    #[error("cannot approve promotion `{id}`: {reason}")]
    ApprovalRefused { id: String, reason: String },
    #[error(
        "promotion `{id}` cannot commit: tag `{tag}` in `{repo}` already points at `{current}`; tags in gated stages are write-once, use another tag or `airlock rollback`"
    )]
    TagImmutable { id: String, tag: String, repo: RepoName, current: Digest },
    #[error("promotion `{id}` cannot commit: `{digest}` is gone from `{repo}`")]
    Missing { id: String, repo: RepoName, digest: Digest },
    #[error("the artifact graph of `{digest}` has more than {GRAPH_MAX} manifests; it cannot be promoted")]
    GraphTooLarge { digest: Digest },
    #[error("cannot seal the release record: {0}")]
    Seal(String),
    /// A request the rules refuse, with what to do instead.
    #[error("{message}")]
    Refused { message: String },
    /// A request that conflicts with the current state.
    #[error("{message}")]
    Conflict { message: String },
    #[error("{message}")]
    NotFound { message: String },
    /// The policy bundle that would decide is missing or not trusted.
    #[error("{message}")]
    PolicyUnavailable { message: String, remediation: String },
    /// The access decision refused the caller.
    #[error(transparent)]
    Access(#[from] crate::identity::IdentityError),
}

/// The access decision on a request, made by the engine itself on the digest it resolved, so a
/// tag that moves cannot split the decision from what is promoted. The implementation holds the
/// caller, the action and the resource; the engine supplies what only it knows.
#[async_trait::async_trait]
pub trait AccessCheck: Send + Sync {
    /// Whether the decision reads where the artifact came from (custom Cedar policies do): the
    /// engine then gathers the evidence before deciding, once, and evaluates the gates on it.
    fn reads_origin(&self) -> bool;
    /// Refuses (and logs) what the caller may not do; `origin` is that of the resolved digest,
    /// `None` without trusted provenance or when the reference does not resolve.
    async fn check(&self, origin: Option<Origin>) -> Result<(), PromotionError>;
}

/// Where an artifact came from, by its trusted provenance.
pub use airlock_access::authz::Origin;

/// Who is asking, as the server authenticated them.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: PrincipalId,
    pub kind: PrincipalKind,
    pub actor: Actor,
    /// Whether they verified a second factor within the configured window.
    pub mfa_fresh: bool,
}

impl Caller {
    pub(crate) fn requester(&self) -> Requester {
        Requester::of(&self.principal, self.kind)
    }
}

/// A request to promote.
#[derive(Debug, Clone)]
pub struct PromoteRequest {
    /// The repository the artifact is in, `dev/app`.
    pub source: RepoName,
    /// Resolved to a digest once, here.
    pub reference: Reference,
    pub target: StageName,
    pub tag: Option<Tag>,
    pub reason: String,
    /// The break-glass procedure: the caller holds [`BREAK_GLASS_ROLE`]; failing automatic gates
    /// (but a taken tag) do not deny; one approval by a second person commits it; the release
    /// record is marked, an alert is logged and a review stays open.
    pub break_glass: bool,
}

/// The role a break-glass request needs.
pub const BREAK_GLASS_ROLE: &str = "break-glass";

/// A promotion with its approvals, as callers see it.
#[derive(Debug, Clone)]
pub struct PromotionView {
    pub record: PromotionRecord,
    pub approvals: Vec<ApprovalRecord>,
    /// The latest gate report.
    pub report: Value,
    /// False when an existing promotion with the same key was returned.
    pub created: bool,
}

/// The engine's fixed parts.
#[derive(Debug)]
pub struct PromoterConfig {
    pub policies: Arc<PolicySet>,
    /// Signs release records.
    pub release_key: PrivateKey,
    /// The log's origin line, named in release records.
    pub log_origin: String,
    /// This Airlock's public URL, the VSA's verifier id.
    pub verifier_id: String,
    /// How an account's e-mail names its person (`access.fold_subaddress`).
    pub persons: PersonRule,
}

/// The ports the engine reads and writes, each narrowed to what the engine does with it.
#[derive(Clone)]
pub struct PromoterPorts {
    pub promotions: Arc<dyn PromotionStore>,
    pub control: Arc<dyn ControlStore>,
    pub bundles: Arc<dyn ReleaseBundleStore>,
    pub log: Arc<dyn LogStore>,
    pub identity: Arc<dyn IdentityStore>,
    pub manifests: Arc<dyn ManifestIndex>,
    pub blobs: Arc<dyn BlobIndex>,
    pub trust: Arc<dyn TrustStore>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PromoterPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromoterPorts").field("clock", &self.clock).finish_non_exhaustive()
    }
}

impl PromoterPorts {
    /// Every port from one metadata store.
    pub fn of(store: &Arc<dyn MetadataStore>, clock: Arc<dyn Clock>) -> PromoterPorts {
        PromoterPorts {
            promotions: store.clone(),
            control: store.clone(),
            bundles: store.clone(),
            log: store.clone(),
            identity: store.clone(),
            manifests: store.clone(),
            blobs: store.clone(),
            trust: store.clone(),
            clock,
        }
    }
}

/// The promotion engine. It holds the ports it uses; the registry is there for the registry's
/// rules (stages, the policy input, logging, the CPU pool), never to reach a store.
#[derive(Clone)]
pub struct Promoter {
    registry: Registry,
    promotions: Arc<dyn PromotionStore>,
    control: Arc<dyn ControlStore>,
    bundles: Arc<dyn ReleaseBundleStore>,
    log: Arc<dyn LogStore>,
    identity: Arc<dyn IdentityStore>,
    manifests: Arc<dyn ManifestIndex>,
    blobs: Arc<dyn BlobIndex>,
    trust: Arc<dyn TrustStore>,
    clock: Arc<dyn Clock>,
    config: Arc<PromoterConfig>,
    counter: Arc<AtomicU64>,
}

impl std::fmt::Debug for Promoter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Promoter")
            .field("registry", &self.registry)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Promoter {
    pub fn new(registry: Registry, ports: PromoterPorts, config: PromoterConfig) -> Promoter {
        let PromoterPorts { promotions, control, bundles, log, identity, manifests, blobs, trust, clock } = ports;
        Promoter {
            registry,
            promotions,
            control,
            bundles,
            log,
            identity,
            manifests,
            blobs,
            trust,
            clock,
            config: Arc::new(config),
            counter: Arc::default(),
        }
    }

    pub fn release_key(&self) -> &airlock_dsse::PublicKey {
        self.config.release_key.public_key()
    }

    fn gates_of(&self, stage: &StageName) -> Result<&Gates, PromotionError> {
        self.registry.stages().get(stage).and_then(|s| s.gates()).ok_or_else(|| PromotionError::NotPromotable {
            stage: stage.clone(),
            known: self
                .registry
                .stages()
                .iter()
                .filter(|s| s.gates().is_some())
                .map(|s| format!("`{}`", s.name()))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    fn new_id(&self, source: &RepoName, digest: &Digest, target: &StageName, now: Timestamp) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let seed = format!("{source}\n{digest}\n{target}\n{}\n{n}\n{}", now.as_millis(), std::process::id());
        let d = Digest::of(seed.as_bytes());
        format!("prm-{}", d.hex().get(..20).unwrap_or_default())
    }

    async fn evaluate(
        &self,
        gates: &Gates,
        source: &RepoName,
        target: &StageName,
        digest: &Digest,
        requester: &Requester,
        gathered: Option<PolicyInput>,
    ) -> Result<Evaluation, PromotionError> {
        let now = self.clock.now();
        let frozen = backed::freezes_in_force(&self.registry).await?.into_iter().find(|f| &f.record.stage == target);
        let reason = frozen.as_ref().map(|f| f.record.reason.as_str());
        let gathered = match gathered {
            Some(input) => input,
            None => self.registry.gather_policy_input(source, digest, target, requester).await?,
        };
        let mut evaluation = gates::evaluate(
            &self.registry,
            &*self.trust,
            &*self.promotions,
            &self.config.policies,
            gates,
            source,
            target,
            digest,
            gathered,
            reason,
        )
        .await?;
        // Rows the log does not back are ignored; the report says which and why.
        let (_, waivers) = backed::active_waivers(&self.registry, now).await?;
        let lift = frozen.and_then(|f| f.mismatch);
        evaluation.warnings.extend(lift.iter().chain(&waivers).map(backed::Mismatch::finding));
        Ok(evaluation)
    }

    /// Opens a promotion: decides access, resolves the digest once, evaluates the automatic gates,
    /// and denies at once, waits for approvals, or commits.
    ///
    /// The access decision is made here, before anything else the caller could learn from, and
    /// on the digest this promotion uses: when it reads the artifact's origin, the reference is
    /// resolved and the evidence gathered first, and the gates are then evaluated on that same
    /// gathering.
    pub async fn request(
        &self,
        caller: &Caller,
        access: &dyn AccessCheck,
        request: &PromoteRequest,
    ) -> Result<PromotionView, PromotionError> {
        let requester = caller.requester();
        let resolved = if access.reads_origin() {
            let resolved = self.resolve(&request.source, &request.reference).await;
            let gathered = match &resolved {
                Ok(digest) => {
                    Some(self.registry.gather_policy_input(&request.source, digest, &request.target, &requester).await)
                }
                Err(_) => None,
            };
            // A reference that does not resolve has no origin; a gathering that failed is
            // reported after the decision (a refusal comes first), never decided past.
            access.check(gathered.as_ref().and_then(|g| g.as_ref().ok()).and_then(origin_of)).await?;
            Some((resolved, gathered.transpose()?))
        } else {
            access.check(None).await?;
            None
        };
        if let Some(reason) = self.registry.writes_refused() {
            return Err(RegistryError::WritesRefused { reason: reason.to_owned() }.into());
        }
        self.registry.stage_of(&request.source)?;
        let gates = self.gates_of(&request.target)?;
        let source_stage = request.source.stage();
        if &gates.from != source_stage {
            let next = self
                .registry
                .stages()
                .iter()
                .find(|s| s.gates().is_some_and(|g| &g.from == source_stage))
                .map_or_else(|| "an earlier stage".to_owned(), |s| format!("`{}`", s.name()));
            return Err(PromotionError::WrongSource {
                source_stage: source_stage.clone(),
                target: request.target.clone(),
                expected: gates.from.clone(),
                next,
            });
        }
        // Resolved once: the digest the access decision saw, when it looked at one.
        let (digest, gathered) = match resolved {
            Some((resolved, gathered)) => (resolved?, gathered),
            None => (self.resolve(&request.source, &request.reference).await?, None),
        };
        let target = request.source.in_stage(&request.target);
        let now = self.clock.now();
        let mut evaluation =
            self.evaluate(gates, &request.source, &request.target, &digest, &requester, gathered).await?;
        if let Some(tag) = &request.tag
            && let Some(current) = self.manifests.manifest_by_tag(&target, tag).await?
            && current.digest != digest
        {
            evaluation.findings.push(gates::Finding {
                gate: "tag",
                rule: "tag-taken".to_owned(),
                message: format!(
                    "tag `{tag}` in `{target}` already points at `{}`; tags in gated stages are write-once",
                    current.digest
                ),
                remediation: "promote with another `--tag`".to_owned(),
                doc: Some(gates::gate_doc("tag")),
            });
        }
        if request.break_glass {
            if request.reason.trim().is_empty() {
                return Err(PromotionError::Refused {
                    message: "a break-glass promotion needs a `--reason`: the alert and the review show it".to_owned(),
                });
            }
            if !self.roles_of(caller.principal.as_str(), now).await?.contains(BREAK_GLASS_ROLE) {
                return Err(PromotionError::Refused {
                    message: format!(
                        "`{}` does not hold the `{BREAK_GLASS_ROLE}` role; ask an access admin for it just in time with `airlock access request --role {BREAK_GLASS_ROLE}`",
                        caller.principal
                    ),
                });
            }
        }
        // Break-glass passes failing gates, but never a taken write-once tag.
        let passed = evaluation.findings.iter().all(|f| request.break_glass && f.gate != "tag");
        let rule = rule_for(gates, request.break_glass);
        let report = gates::report(&evaluation, rule.as_ref().map(|r| approvals_json(r, &[], &[])));
        let status = if passed { PromotionStatus::Pending } else { PromotionStatus::Denied };
        let record = PromotionRecord {
            id: self.new_id(&request.source, &digest, &request.target, now),
            source: request.source.clone(),
            target: target.clone(),
            digest: digest.clone(),
            tag: request.tag.clone(),
            requester: caller.principal.to_string(),
            reason: request.reason.clone(),
            status,
            policy_digest: evaluation.policy_digest.clone(),
            evidence_digest: evaluation.evidence_digest.clone(),
            report: report.to_string(),
            created_at: now,
            updated_at: now,
            closed_reason: None,
            release_digest: None,
            summary_digest: None,
            log_index: None,
            break_glass: request.break_glass,
        };
        let kind = match (passed, request.break_glass) {
            (true, true) => EventKind::PromotionBreakGlass,
            (true, false) => EventKind::PromotionRequest,
            (false, _) => EventKind::PromotionDeny,
        };
        let mut event = promotion_event(kind, &caller.actor, now, &record)
            .with_detail("policy_digest", json!(evaluation.policy_digest))
            .with_detail("input_digest", json!(evaluation.input_digest))
            .with_detail("evidence_digest", json!(evaluation.evidence_digest))
            .with_detail("reason", json!(request.reason));
        if !passed {
            event.outcome = Outcome::Denied { reasons: evaluation.findings.iter().map(finding_line).collect() };
        } else if request.break_glass {
            event = event.with_detail(
                "findings_overridden",
                json!(evaluation.findings.iter().map(finding_line).collect::<Vec<_>>()),
            );
        }
        let record = match self.promotions.open_promotion(&record, &event).await? {
            Ok(()) => {
                self.registry.notify_log();
                record
            }
            Err(existing) => {
                // Idempotent: the same request returns the promotion already open or done. An
                // open one is taken forward, so a request cut off before its commit (a client
                // gone, a crash) is finished by asking again.
                let view = match existing.status {
                    PromotionStatus::Pending => self.resume(existing, gates, &caller.actor).await?,
                    _ => self.view(existing).await?,
                };
                return Ok(PromotionView { created: false, ..view });
            }
        };
        if record.status == PromotionStatus::Pending && rule.is_none() {
            return self.commit(record, evaluation, Vec::new(), &[]).await;
        }
        self.view(record).await
    }

    /// Takes a pending promotion forward: evaluates its gates again, then denies it, commits it
    /// (when the stage needs no approval, or its quorum is met), or leaves it waiting. Another
    /// request that moved it first wins; its outcome is returned.
    async fn resume(
        &self,
        record: PromotionRecord,
        gates: &Gates,
        actor: &Actor,
    ) -> Result<PromotionView, PromotionError> {
        let id = record.id.clone();
        let requester = self.requester_of(&record).await;
        let stage = record.target.stage().clone();
        let evaluation = self.evaluate(gates, &record.source, &stage, &record.digest, &requester, None).await?;
        let now = self.clock.now();
        let moved = if !evaluation.passed() && !record.break_glass {
            self.close_denied(&record, &evaluation, actor, now).await
        } else {
            match rule_for(gates, record.break_glass) {
                None => self.commit(record, evaluation, Vec::new(), &[]).await,
                Some(rule) => self.advance(record, evaluation, &rule).await,
            }
        };
        match moved {
            Err(PromotionError::NotPending { .. }) => self.get(&id).await,
            other => other,
        }
    }

    /// The requester of a promotion as the policy input names them.
    async fn requester_of(&self, record: &PromotionRecord) -> Requester {
        let kind = match self.kind_of(&record.requester).await {
            Ok(PrincipalKind::User) => "user",
            Ok(PrincipalKind::ServiceAccount) => "service",
            Err(()) => "unknown",
        };
        Requester { principal: record.requester.clone(), kind: kind.to_owned() }
    }

    /// Where the trusted provenance of `repo@digest` says it came from, for access decisions
    /// that look at the origin. `None` without trusted provenance.
    pub async fn origin(
        &self,
        repo: &RepoName,
        digest: &Digest,
        target: &StageName,
    ) -> Result<Option<Origin>, PromotionError> {
        let requester = Requester { principal: String::new(), kind: "unknown".to_owned() };
        let input = self.registry.gather_policy_input(repo, digest, target, &requester).await?;
        Ok(origin_of(&input))
    }

    async fn resolve(&self, repo: &RepoName, reference: &Reference) -> Result<Digest, PromotionError> {
        let record = match reference {
            Reference::Digest(d) => self.manifests.manifest_by_digest(repo, d).await?,
            Reference::Tag(t) => self.manifests.manifest_by_tag(repo, t).await?,
        };
        record.map(|r| r.digest).ok_or_else(|| {
            RegistryError::ManifestUnknown { repo: repo.clone(), reference: reference.to_string() }.into()
        })
    }

    /// A promotion with its approvals.
    pub async fn get(&self, id: &str) -> Result<PromotionView, PromotionError> {
        let record =
            self.promotions.promotion(id).await?.ok_or_else(|| PromotionError::Unknown { id: id.to_owned() })?;
        self.view(record).await
    }

    /// Promotions, newest first.
    pub async fn list(&self, filter: &PromotionFilter) -> Result<Vec<PromotionRecord>, PromotionError> {
        Ok(self.promotions.promotions(filter).await?)
    }

    async fn view(&self, record: PromotionRecord) -> Result<PromotionView, PromotionError> {
        let approvals = self.promotions.approvals(&record.id).await?;
        let report = serde_json::from_str(&record.report).unwrap_or(Value::Null);
        Ok(PromotionView { record, approvals, report, created: true })
    }

    /// Rejects a pending promotion. A reject and a final approval race on the same conditional
    /// update; whichever lands first decides.
    pub async fn reject(&self, caller: &Caller, id: &str, reason: &str) -> Result<PromotionView, PromotionError> {
        let record = self.pending(id).await?;
        let now = self.clock.now();
        let mut event = promotion_event(EventKind::PromotionReject, &caller.actor, now, &record)
            .with_detail("reason", json!(reason));
        event.outcome = Outcome::Denied { reasons: vec![format!("rejected by `{}`: {reason}", caller.principal)] };
        self.close(&record, PromotionStatus::Rejected, reason, &event, now).await
    }

    async fn close(
        &self,
        record: &PromotionRecord,
        status: PromotionStatus,
        reason: &str,
        event: &Event,
        now: Timestamp,
    ) -> Result<PromotionView, PromotionError> {
        match self.promotions.close_promotion(&record.id, status, reason, event, now).await? {
            Some(closed) => {
                self.registry.notify_log();
                self.view(closed).await
            }
            None => {
                let status = self.promotions.promotion(&record.id).await?.map_or("gone", |p| p.status.as_str());
                Err(PromotionError::NotPending { id: record.id.clone(), status })
            }
        }
    }

    async fn close_denied(
        &self,
        record: &PromotionRecord,
        evaluation: &Evaluation,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<PromotionView, PromotionError> {
        let reasons: Vec<String> = evaluation.findings.iter().map(finding_line).collect();
        let mut event = promotion_event(EventKind::PromotionDeny, actor, now, record)
            .with_detail("policy_digest", json!(evaluation.policy_digest))
            .with_detail("evidence_digest", json!(evaluation.evidence_digest));
        event.outcome = Outcome::Denied { reasons: reasons.clone() };
        self.close(record, PromotionStatus::Denied, &reasons.join("; "), &event, now).await
    }

    /// Closes a promotion whose commit cannot happen (its tag was taken, its artifact is gone)
    /// as denied, so it does not wait forever. A failure here leaves it pending, which the next
    /// request for it retries.
    async fn close_failed(&self, record: &PromotionRecord, error: &PromotionError, now: Timestamp) {
        let reason = error.to_string();
        let mut event = promotion_event(EventKind::PromotionDeny, &Actor::system(), now, record);
        event.outcome = Outcome::Denied { reasons: vec![reason.clone()] };
        match self.promotions.close_promotion(&record.id, PromotionStatus::Denied, &reason, &event, now).await {
            Ok(Some(_)) => self.registry.notify_log(),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(promotion = %record.id, error = %e, "cannot close a promotion whose commit failed")
            }
        }
    }

    async fn pending(&self, id: &str) -> Result<PromotionRecord, PromotionError> {
        let record =
            self.promotions.promotion(id).await?.ok_or_else(|| PromotionError::Unknown { id: id.to_owned() })?;
        if record.status != PromotionStatus::Pending {
            return Err(PromotionError::NotPending { id: id.to_owned(), status: record.status.as_str() });
        }
        Ok(record)
    }
}

/// The approvals a promotion needs: the stage's, or for break-glass one approval by a second
/// person holding the stage's approver role (`release-approver` when the stage names none),
/// with a fresh second factor.
fn rule_for(gates: &Gates, break_glass: bool) -> Option<ApprovalRule> {
    if !break_glass {
        return gates.approvals.clone();
    }
    let stage = gates.approvals.as_ref();
    Some(ApprovalRule {
        count: 1,
        role: stage.map_or_else(|| "release-approver".to_owned(), |r| r.role.clone()),
        ttl_secs: stage.map_or(pipeline::APPROVAL_TTL_SECS, |r| r.ttl_secs),
        mfa: true,
    })
}

/// The origin the first trusted provenance names: its builder and source repository.
fn origin_of(input: &PolicyInput) -> Option<Origin> {
    let provenance = input.input.evidence.provenance.first()?;
    Some(Origin { builder: provenance.builder_id.clone(), source: provenance.source_repository.clone() })
}

fn finding_line(f: &gates::Finding) -> String {
    format!("{}: {}", f.rule, f.message)
}

fn promotion_event(kind: EventKind, actor: &Actor, now: Timestamp, record: &PromotionRecord) -> Event {
    let subject = Subject { repository: Some(record.source.clone()), digest: Some(record.digest.clone()), tag: None };
    Event::allowed(kind, actor, now, subject)
        .with_detail("promotion", json!(record.id))
        .with_detail("target", json!(record.target.as_str()))
        .with_detail("tag", json!(record.tag.as_ref().map(Tag::as_str)))
}
