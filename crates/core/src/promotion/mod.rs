//! The promotion engine: one digest from one stage's repository into the next stage's, only
//! when every gate passes and the quorum of distinct, eligible approvers holds, committed in one
//! transaction with its release record and log events.
//!
//! The states are those of [`PromotionStatus`]: a request whose automatic gates fail is
//! `denied` at once; one that needs approvals waits `pending`; when its quorum is met the engine
//! re-evaluates everything and commits (`promoted`), or closes it. Only `pending` moves, and
//! every move is a conditional update in the store, so a reject and a final approval racing
//! each other cannot both win.

pub mod backed;
pub mod bundle;
pub mod control;
pub mod gates;
pub mod history;
pub mod pipeline;
pub mod policies;
pub mod record;
pub mod window;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_dsse::PrivateKey;
use airlock_model::manifest::{Manifest, ManifestLimits};
use airlock_model::{Digest, PrincipalId, PrincipalKind, Reference, RepoName, StageName, Tag, Timestamp};
use serde_json::{Value, json};

use crate::audit::{Actor, Event, EventKind, Outcome, Subject};
use crate::identity::person::{Person, PersonError, PersonRule};
use crate::policy_input::Requester;
use crate::ports::{
    ApprovalRecord, PromotionCommit, PromotionCommitOutcome, PromotionFilter, PromotionRecord, PromotionStatus, Sealed,
    StoreError, TagMode,
};
use crate::registry::{Registry, RegistryError};
use gates::{Evaluation, PolicySet};
use pipeline::{ApprovalRule, Gates};
use record::{PROMOTION_PREDICATE, SubjectDescriptor, VSA_PREDICATE};

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
}

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
    fn requester(&self) -> Requester {
        Requester {
            principal: self.principal.to_string(),
            kind: match self.kind {
                PrincipalKind::User => "user".to_owned(),
                PrincipalKind::ServiceAccount => "service".to_owned(),
            },
        }
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

/// The promotion engine.
#[derive(Debug, Clone)]
pub struct Promoter {
    registry: Registry,
    config: Arc<PromoterConfig>,
    counter: Arc<AtomicU64>,
}

impl Promoter {
    pub fn new(registry: Registry, config: PromoterConfig) -> Promoter {
        Promoter { registry, config: Arc::new(config), counter: Arc::default() }
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
    ) -> Result<Evaluation, PromotionError> {
        let now = self.registry.clock().now();
        let frozen = backed::freezes_in_force(&self.registry).await?.into_iter().find(|f| &f.record.stage == target);
        let reason = frozen.as_ref().map(|f| f.record.reason.as_str());
        let mut evaluation =
            gates::evaluate(&self.registry, &self.config.policies, gates, source, target, digest, requester, reason)
                .await?;
        // Rows the log does not back are ignored; the report says which and why.
        let (_, waivers) = backed::active_waivers(&self.registry, now).await?;
        let lift = frozen.and_then(|f| f.mismatch);
        evaluation.warnings.extend(lift.iter().chain(&waivers).map(backed::Mismatch::finding));
        Ok(evaluation)
    }

    /// Opens a promotion: resolves the digest once, evaluates the automatic gates, and denies at
    /// once, waits for approvals, or commits.
    pub async fn request(&self, caller: &Caller, request: &PromoteRequest) -> Result<PromotionView, PromotionError> {
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
        let digest = self.resolve(&request.source, &request.reference).await?;
        let target = request.source.in_stage(&request.target);
        let now = self.registry.clock().now();
        let requester = caller.requester();
        let mut evaluation = self.evaluate(gates, &request.source, &request.target, &digest, &requester).await?;
        if let Some(tag) = &request.tag
            && let Some(current) = self.registry.store().manifest_by_tag(&target, tag).await?
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
        let record = match self.registry.store().open_promotion(&record, &event).await? {
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

    /// The person behind `principal`: their verified e-mail, normalized by the configured rule.
    async fn account_of(&self, principal: &str) -> Result<Account, PromotionError> {
        let Ok(id) = PrincipalId::parse(principal) else { return Ok(Account::NoEmail) };
        let email = self.registry.store().principal(&id).await?.and_then(|p| p.email);
        Ok(match email {
            None => Account::NoEmail,
            Some(email) => match Person::from_email(&email, &self.config.persons) {
                Ok(person) => Account::Person(person),
                Err(e) => Account::BadEmail(e),
            },
        })
    }

    /// The roles `principal` holds at `now`: its bindings and the just-in-time grants in force.
    async fn roles_of(&self, principal: &str, now: Timestamp) -> Result<BTreeSet<String>, PromotionError> {
        let Ok(id) = PrincipalId::parse(principal) else { return Ok(BTreeSet::new()) };
        let Some(p) = self.registry.store().principal(&id).await? else { return Ok(BTreeSet::new()) };
        if p.disabled {
            return Ok(BTreeSet::new());
        }
        let mut roles: BTreeSet<String> = p.roles.into_iter().collect();
        for grant in self.registry.store().grants(Some(&id)).await? {
            if grant.in_force(now) {
                roles.insert(grant.role);
            }
        }
        Ok(roles)
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
        let evaluation = self.evaluate(gates, &record.source, &stage, &record.digest, &requester).await?;
        let now = self.registry.clock().now();
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

    /// Where the artifact's trusted provenance says it came from: `(builder, source repository)`,
    /// for authorization policies that look at the origin. `None` without trusted provenance.
    pub async fn origin(
        &self,
        repo: &RepoName,
        reference: &Reference,
        target: &StageName,
    ) -> Result<Option<(Option<String>, Option<String>)>, PromotionError> {
        let digest = self.resolve(repo, reference).await?;
        let requester = Requester { principal: String::new(), kind: "unknown".to_owned() };
        let input = self.registry.policy_input(repo, &digest, target, &requester).await?;
        Ok(input["evidence"]["provenance"]
            .as_array()
            .and_then(|p| p.first())
            .map(|p| (p["builder_id"].as_str().map(str::to_owned), p["source_repository"].as_str().map(str::to_owned))))
    }

    async fn resolve(&self, repo: &RepoName, reference: &Reference) -> Result<Digest, PromotionError> {
        let record = match reference {
            Reference::Digest(d) => self.registry.store().manifest_by_digest(repo, d).await?,
            Reference::Tag(t) => self.registry.store().manifest_by_tag(repo, t).await?,
        };
        record.map(|r| r.digest).ok_or_else(|| {
            RegistryError::ManifestUnknown { repo: repo.clone(), reference: reference.to_string() }.into()
        })
    }

    /// A promotion with its approvals.
    pub async fn get(&self, id: &str) -> Result<PromotionView, PromotionError> {
        let record =
            self.registry.store().promotion(id).await?.ok_or_else(|| PromotionError::Unknown { id: id.to_owned() })?;
        self.view(record).await
    }

    /// Promotions, newest first.
    pub async fn list(&self, filter: &PromotionFilter) -> Result<Vec<PromotionRecord>, PromotionError> {
        Ok(self.registry.store().promotions(filter).await?)
    }

    async fn view(&self, record: PromotionRecord) -> Result<PromotionView, PromotionError> {
        let approvals = self.registry.store().approvals(&record.id).await?;
        let report = serde_json::from_str(&record.report).unwrap_or(Value::Null);
        Ok(PromotionView { record, approvals, report, created: true })
    }

    /// Approves a pending promotion, then commits it if the quorum is met.
    pub async fn approve(&self, caller: &Caller, id: &str, comment: &str) -> Result<PromotionView, PromotionError> {
        let record = self.pending(id).await?;
        let stage = record.target.stage().clone();
        let gates = self.gates_of(&stage)?;
        let rule =
            rule_for(gates, record.break_glass).ok_or(PromotionError::NoApprovalNeeded { stage: stage.clone() })?;
        let rule = &rule;
        let now = self.registry.clock().now();
        let refuse = |reason: String| PromotionError::ApprovalRefused { id: id.to_owned(), reason };

        // Evaluate again: the approval binds what is true now.
        let requester = self.requester_of(&record).await;
        let evaluation = self.evaluate(gates, &record.source, &stage, &record.digest, &requester).await?;
        let person =
            match self.eligible(caller.principal.as_str(), caller.kind, None, &record, &evaluation, rule, now).await? {
                Ok(person) => person,
                Err(reason) => return Err(refuse(reason)),
            };
        // A second account of someone who approved already does not approve again.
        let given = self.registry.store().approvals(&record.id).await?;
        if let Some(other) = given.iter().find(|a| {
            a.approver != caller.principal.as_str()
                && Person::from_stored(&a.identity, &self.config.persons).as_ref() == Ok(&person)
        }) {
            return Err(refuse(format!(
                "`{}` and `{}` are one person (`{}`), who already approved it; someone else must approve",
                caller.principal,
                other.approver,
                person.describe()
            )));
        }
        if rule.mfa && !caller.mfa_fresh {
            return Err(refuse(
                "this stage requires a second factor verified recently; run `airlock login URL --otp CODE` and approve again"
                    .to_owned(),
            ));
        }
        if !evaluation.passed() && !record.break_glass {
            let view = self.close_denied(&record, &evaluation, &caller.actor, now).await?;
            return Err(refuse(format!(
                "its gates no longer pass, so it was denied: {}",
                view.record.closed_reason.unwrap_or_default()
            )));
        }
        let approval = ApprovalRecord {
            promotion: record.id.clone(),
            approver: caller.principal.to_string(),
            identity: person.to_string(),
            digest: record.digest.clone(),
            source: record.source.clone(),
            target: record.target.clone(),
            policy_digest: evaluation.policy_digest.clone(),
            evidence_digest: evaluation.evidence_digest.clone(),
            comment: comment.to_owned(),
            created_at: now,
            expires_at: now.plus_millis(rule.ttl_secs.saturating_mul(1000)),
            log_index: None,
        };
        let event = promotion_event(EventKind::PromotionApprove, &caller.actor, now, &record)
            .with_detail("policy_digest", json!(approval.policy_digest))
            .with_detail("evidence_digest", json!(approval.evidence_digest))
            .with_detail("comment", json!(comment))
            .with_detail("expires_at", json!(approval.expires_at.to_rfc3339()))
            // The person, as a digest: the log names who approved, not their e-mail.
            .with_detail("identity_digest", json!(backed::identity_digest(&approval.identity)));
        if !self.registry.store().add_approval(&approval, &event).await? {
            return match self.registry.store().promotion(id).await? {
                Some(p) if p.status != PromotionStatus::Pending => {
                    Err(PromotionError::NotPending { id: id.to_owned(), status: p.status.as_str() })
                }
                _ => Err(refuse(format!("`{}` already approved it", caller.principal))),
            };
        }
        self.registry.notify_log();
        self.advance(record, evaluation, rule).await
    }

    /// Commits a pending promotion whose quorum is met now; otherwise returns it as it stands.
    async fn advance(
        &self,
        record: PromotionRecord,
        evaluation: Evaluation,
        rule: &ApprovalRule,
    ) -> Result<PromotionView, PromotionError> {
        let now = self.registry.clock().now();
        let approvals = self.registry.store().approvals(&record.id).await?;
        let (counted, ignored) = self.counted(&record, &evaluation, rule, &approvals, now).await?;
        let mut evaluation = evaluation;
        evaluation.warnings.extend(ignored.iter().map(backed::Mismatch::finding));
        if counted.len() >= rule.count as usize {
            return self.commit(record, evaluation, counted, &ignored).await;
        }
        // Not committed yet: the promotion shows the evaluation of now and what is missing.
        let mut record = record;
        record.policy_digest = evaluation.policy_digest.clone();
        record.evidence_digest = evaluation.evidence_digest.clone();
        record.report = gates::report(&evaluation, Some(approvals_json(rule, &counted, &ignored))).to_string();
        record.updated_at = now;
        self.registry.store().update_evaluation(&record).await?;
        self.view(record).await
    }

    /// The approvals that count now: recorded by the log entry at their stored index, bound to
    /// this evaluation, unexpired, from distinct persons who are still eligible and hold the
    /// role. Also the rows the log does not back, which are ignored (and logged).
    async fn counted(
        &self,
        record: &PromotionRecord,
        evaluation: &Evaluation,
        rule: &ApprovalRule,
        approvals: &[ApprovalRecord],
        now: Timestamp,
    ) -> Result<(Vec<ApprovalRecord>, Vec<backed::Mismatch>), PromotionError> {
        // One read of the log for every row.
        let claims: Vec<backed::Claim> = approvals.iter().map(backed::approval_claim).collect();
        let verdicts = backed::check(&self.registry, &claims).await?;
        let mut persons: BTreeSet<Person> = BTreeSet::new();
        let mut counted = Vec::new();
        let mut ignored = Vec::new();
        for (a, verdict) in approvals.iter().zip(verdicts) {
            if let Some(mismatch) = verdict {
                ignored.push(mismatch);
                continue;
            }
            let bound = a.digest == record.digest
                && a.source == record.source
                && a.target == record.target
                && a.policy_digest == evaluation.policy_digest
                && a.evidence_digest == evaluation.evidence_digest;
            if !bound || now >= a.expires_at {
                continue;
            }
            let Ok(kind) = self.kind_of(&a.approver).await else { continue };
            // The person the approval recorded (read under today's rule, so a row stored before
            // it compares too) and the person the account names now: both must be eligible, and
            // neither may have counted already.
            let stored = Person::from_stored(&a.identity, &self.config.persons).ok();
            let Ok(person) = self.eligible(&a.approver, kind, stored.as_ref(), record, evaluation, rule, now).await?
            else {
                continue;
            };
            let theirs: BTreeSet<Person> = [Some(person), stored].into_iter().flatten().collect();
            if !persons.is_disjoint(&theirs) {
                continue;
            }
            persons.extend(theirs);
            counted.push(a.clone());
        }
        Ok((counted, ignored))
    }

    async fn kind_of(&self, principal: &str) -> Result<PrincipalKind, ()> {
        let id = PrincipalId::parse(principal).map_err(|_| ())?;
        match self.registry.store().principal(&id).await {
            Ok(Some(p)) => Ok(p.kind),
            _ => Err(()),
        }
    }

    /// The person `principal` approves as, or why they may not approve this promotion now.
    /// Checked when they approve and again when the approval is counted, then also for
    /// `stored`, the person the approval recorded.
    #[expect(clippy::too_many_arguments, reason = "one check over the approval's whole context")]
    async fn eligible(
        &self,
        principal: &str,
        kind: PrincipalKind,
        stored: Option<&Person>,
        record: &PromotionRecord,
        evaluation: &Evaluation,
        rule: &ApprovalRule,
        now: Timestamp,
    ) -> Result<Result<Person, String>, PromotionError> {
        if kind != PrincipalKind::User {
            return Ok(Err("service accounts do not approve; approvals are a person's judgement".to_owned()));
        }
        // 1. Not a party to the promotion by name: its requester, the pusher, a build trigger.
        if principal == record.requester {
            return Ok(Err(format!("`{principal}` requested it; someone else must approve")));
        }
        if evaluation.pusher.as_deref() == Some(principal) {
            return Ok(Err(format!("`{principal}` pushed this artifact; someone else must approve")));
        }
        if evaluation.triggers.iter().any(|t| trigger_name(t) == principal) {
            return Ok(Err(format!(
                "`{principal}` triggered the build, per its provenance; someone else must approve"
            )));
        }
        // 2. Holds the stage's approver role.
        let roles = self.roles_of(principal, now).await?;
        if roles.is_empty() {
            return Ok(Err(format!("`{principal}` does not exist, is disabled, or holds no role")));
        }
        if !roles.contains(&rule.role) {
            return Ok(Err(format!(
                "approvals into `{}` need the `{}` role, which `{principal}` does not hold",
                record.target.stage(),
                rule.role
            )));
        }
        // 3. Is a person: an account without a verified e-mail could be anyone's second account.
        let person = match self.account_of(principal).await? {
            Account::Person(person) => person,
            Account::NoEmail => {
                return Ok(Err(format!(
                    "`{principal}` has no verified e-mail, so approvals cannot tell them apart from another account; ask an access admin to set one"
                )));
            }
            Account::BadEmail(e) => {
                return Ok(Err(format!(
                    "the e-mail of `{principal}` names no person, so approvals cannot tell them apart from another account; ask an access admin to correct it ({e})"
                )));
            }
        };
        // 4. Not a party as a person: no second account of the requester, the pusher or a
        // trigger.
        let one = |p: &Person| p == &person || stored == Some(p);
        let same = |other: &str, p: &Person, did: &str| {
            format!(
                "`{principal}` and `{other}` are one person (`{}`), and `{other}` {did}; someone else must approve",
                p.describe()
            )
        };
        if let Account::Person(p) = self.account_of(&record.requester).await?
            && one(&p)
        {
            return Ok(Err(same(&record.requester, &p, "requested it")));
        }
        if let Some(pusher) = &evaluation.pusher
            && let Account::Person(p) = self.account_of(pusher).await?
            && one(&p)
        {
            return Ok(Err(same(pusher, &p, "pushed this artifact")));
        }
        for trigger in &evaluation.triggers {
            // Provenance names the trigger by an account name or by an e-mail.
            let by_email = Person::from_email(trigger, &self.config.persons).ok();
            let by_name = match self.account_of(&trigger_name(trigger)).await? {
                Account::Person(p) => Some(p),
                Account::NoEmail | Account::BadEmail(_) => None,
            };
            if let Some(p) = [by_email, by_name].into_iter().flatten().find(|p| one(p)) {
                let trigger = airlock_model::echo::echo(trigger);
                return Ok(Err(same(&trigger, &p, "triggered the build, per its provenance")));
            }
        }
        Ok(Ok(person))
    }

    /// Rejects a pending promotion. A reject and a final approval race on the same conditional
    /// update; whichever lands first decides.
    pub async fn reject(&self, caller: &Caller, id: &str, reason: &str) -> Result<PromotionView, PromotionError> {
        let record = self.pending(id).await?;
        let now = self.registry.clock().now();
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
        match self.registry.store().close_promotion(&record.id, status, reason, event, now).await? {
            Some(closed) => {
                self.registry.notify_log();
                self.view(closed).await
            }
            None => {
                let status = self.registry.store().promotion(&record.id).await?.map_or("gone", |p| p.status.as_str());
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
        match self.registry.store().close_promotion(&record.id, PromotionStatus::Denied, &reason, &event, now).await {
            Ok(Some(_)) => self.registry.notify_log(),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(promotion = %record.id, error = %e, "cannot close a promotion whose commit failed")
            }
        }
    }

    async fn pending(&self, id: &str) -> Result<PromotionRecord, PromotionError> {
        let record =
            self.registry.store().promotion(id).await?.ok_or_else(|| PromotionError::Unknown { id: id.to_owned() })?;
        if record.status != PromotionStatus::Pending {
            return Err(PromotionError::NotPending { id: id.to_owned(), status: record.status.as_str() });
        }
        Ok(record)
    }

    /// Links the artifact's graph into the target repository, sets the tag and attaches the
    /// signed release record, in one transaction with the log events.
    async fn commit(
        &self,
        mut record: PromotionRecord,
        evaluation: Evaluation,
        approvals: Vec<ApprovalRecord>,
        ignored: &[backed::Mismatch],
    ) -> Result<PromotionView, PromotionError> {
        let now = self.registry.clock().now();
        let (manifests, blobs, subject) = match self.graph(&record.source, &record.digest).await {
            Ok(graph) => graph,
            // The artifact as stored can never be promoted: close the promotion, saying why.
            Err(
                error @ PromotionError::Registry(
                    RegistryError::IndexTooDeep { .. } | RegistryError::StoredManifestInvalid { .. },
                ),
            ) => {
                self.close_failed(&record, &error, now).await;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        let rule = rule_for(self.gates_of(record.target.stage())?, record.break_glass);
        let approvals_report = rule.as_ref().map(|r| approvals_json(r, &approvals, ignored));
        record.policy_digest = evaluation.policy_digest.clone();
        record.evidence_digest = evaluation.evidence_digest.clone();
        record.report = gates::report(&evaluation, approvals_report).to_string();
        let commit = PromotionCommit {
            promotion: record.clone(),
            manifests,
            blobs,
            approvers: approvals.iter().map(|a| a.approver.clone()).collect(),
            tag_mode: TagMode::WriteOnce,
        };
        let seal = |index: u64| -> Result<Sealed, String> {
            self.seal(&record, &evaluation, &approvals, &subject, index, now)
        };
        match self.registry.store().commit_promotion(&commit, &seal, now).await? {
            PromotionCommitOutcome::Committed { .. } => {
                self.registry.notify_log();
                self.get(&record.id).await
            }
            PromotionCommitOutcome::NotPending { status } => {
                Err(PromotionError::NotPending { id: record.id.clone(), status: status.as_str() })
            }
            PromotionCommitOutcome::TagImmutable { current } => {
                let error = PromotionError::TagImmutable {
                    id: record.id.clone(),
                    tag: record.tag.as_ref().map_or_else(String::new, |t| t.to_string()),
                    repo: record.target.clone(),
                    current,
                };
                self.close_failed(&record, &error, now).await;
                Err(error)
            }
            PromotionCommitOutcome::Missing { digest } => {
                let error = PromotionError::Missing { id: record.id.clone(), repo: record.source.clone(), digest };
                self.close_failed(&record, &error, now).await;
                Err(error)
            }
        }
    }

    /// The manifests (children first, the artifact, then its referrers level by level) and the
    /// blobs they need.
    async fn graph(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<(Vec<Digest>, Vec<Digest>, SubjectDescriptor), PromotionError> {
        let store = self.registry.store();
        let limits = ManifestLimits::default();
        let mut manifests: Vec<Digest> = Vec::new();
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let missing = || PromotionError::Missing { id: String::new(), repo: repo.clone(), digest: digest.clone() };
        let root = store.manifest_by_digest(repo, digest).await?.ok_or_else(missing)?;
        let subject = SubjectDescriptor {
            media_type: root.media_type.clone(),
            digest: digest.clone(),
            size: root.body.len() as u64,
        };

        // The artifact and, for an index, its children (children first). `depth` counts the
        // indexes from the artifact down; a manifest already linked is not walked again.
        let max_depth = self.registry.limits().max_index_depth;
        let mut stack = vec![(root, false, 1usize)];
        while let Some((record, expanded, depth)) = stack.pop() {
            if !expanded && manifests.contains(&record.digest) {
                continue;
            }
            // A manifest stored before today's checks (an ambiguous one, say) is refused, never
            // linked into the target as it is.
            let parsed = Manifest::parse(Some(&record.media_type), &record.body, &limits).map_err(|e| {
                RegistryError::StoredManifestInvalid { digest: record.digest.clone(), reason: e.to_string() }
            })?;
            if parsed.kind.is_index() && depth > max_depth {
                return Err(RegistryError::IndexTooDeep { max: max_depth }.into());
            }
            if expanded || parsed.required_manifests().next().is_none() {
                blobs.extend(parsed.required_blobs().cloned());
                if !manifests.contains(&record.digest) {
                    manifests.push(record.digest.clone());
                }
                continue;
            }
            let children: Vec<Digest> = parsed.required_manifests().cloned().collect();
            stack.push((record, true, depth));
            for child in children {
                if manifests.len().saturating_add(stack.len()) > GRAPH_MAX {
                    return Err(PromotionError::GraphTooLarge { digest: digest.clone() });
                }
                let child = store.manifest_by_digest(repo, &child).await?.ok_or_else(missing)?;
                stack.push((child, false, depth.saturating_add(1)));
            }
        }

        // Referrers, level by level: signatures, attestations, SBOMs, and what refers to them.
        let mut level = vec![digest.clone()];
        for _ in 0..REFERRER_DEPTH_MAX {
            let mut next = Vec::new();
            for subject in &level {
                for referrer in store.referrers(repo, subject, None).await? {
                    if manifests.contains(&referrer.digest) {
                        continue;
                    }
                    if manifests.len() >= GRAPH_MAX {
                        return Err(PromotionError::GraphTooLarge { digest: digest.clone() });
                    }
                    let Some(record) = store.manifest_by_digest(repo, &referrer.digest).await? else { continue };
                    // A referrer that fails today's checks stays behind, with what refers to it.
                    let Ok(parsed) = Manifest::parse(Some(&record.media_type), &record.body, &limits) else {
                        tracing::warn!(referrer = %referrer.digest, "a stored referrer fails today's manifest checks; it is not promoted");
                        continue;
                    };
                    blobs.extend(parsed.required_blobs().cloned());
                    manifests.push(referrer.digest.clone());
                    next.push(referrer.digest);
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        Ok((manifests, blobs.into_iter().collect(), subject))
    }

    /// The signed release record and VSA naming log index `index`, and the commit event.
    fn seal(
        &self,
        record: &PromotionRecord,
        evaluation: &Evaluation,
        approvals: &[ApprovalRecord],
        subject: &SubjectDescriptor,
        index: u64,
        now: Timestamp,
    ) -> Result<Sealed, String> {
        let created = now.to_rfc3339();
        let predicate = json!({
            "promotion": record.id,
            "digest": record.digest.as_str(),
            "source": {"repository": record.source.as_str(), "stage": record.source.stage().as_str()},
            "target": {
                "repository": record.target.as_str(),
                "stage": record.target.stage().as_str(),
                "tag": record.tag.as_ref().map(Tag::as_str),
            },
            "decision": if record.break_glass { "break-glass" } else { "allow" },
            "break_glass": record.break_glass,
            "findings_overridden": evaluation.findings,
            "requester": record.requester,
            "reason": record.reason,
            "policy": {"digest": evaluation.policy_digest, "input_digest": evaluation.input_digest},
            "evidence": {
                "digest": evaluation.evidence_digest,
                "attestations": evaluation.attestations.iter().filter(|a| a.trusted).collect::<Vec<_>>(),
            },
            "approvals": approvals.iter().map(|a| json!({
                "approver": a.approver,
                "at": a.created_at.to_rfc3339(),
                "comment": a.comment,
            })).collect::<Vec<_>>(),
            "log": {"origin": self.config.log_origin, "index": index},
            "promoted_at": created,
        });
        let key = &self.config.release_key;
        let release = record::attach(key, &record.target, subject, PROMOTION_PREDICATE, &predicate, &created)?;
        let levels: Vec<&str> = if evaluation.has_provenance { vec!["SLSA_BUILD_LEVEL_1"] } else { Vec::new() };
        let vsa = json!({
            "verifier": {"id": self.config.verifier_id},
            "timeVerified": created,
            "resourceUri": format!("{}@{}", record.target, record.digest),
            "policy": {
                "uri": format!("{}/policy", self.config.verifier_id),
                "digest": {"sha256": evaluation.policy_digest.strip_prefix("sha256:").unwrap_or(&evaluation.policy_digest)},
            },
            "inputAttestations": evaluation.attestations.iter().filter(|a| a.trusted).map(|a| json!({
                "uri": format!("{}@{}", record.source, a.referrer),
                "digest": {"sha256": a.referrer.strip_prefix("sha256:").unwrap_or(&a.referrer)},
            })).collect::<Vec<_>>(),
            "verificationResult": if evaluation.passed() { "PASSED" } else { "FAILED" },
            "verifiedLevels": levels,
            "slsaVersion": "1.0",
        });
        let summary = record::attach(key, &record.target, subject, VSA_PREDICATE, &vsa, &created)?;
        let release_digest = release.manifest.digest.clone();
        let summary_digest = summary.manifest.digest.clone();
        let event = promotion_event(EventKind::PromotionCommit, &Actor::system(), now, record)
            .with_detail("release_record", json!(release_digest.as_str()))
            .with_detail("summary", json!(summary.manifest.digest.as_str()))
            .with_detail("policy_digest", json!(evaluation.policy_digest))
            .with_detail("evidence_digest", json!(evaluation.evidence_digest))
            .with_detail("approvers", json!(approvals.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>()));
        Ok(Sealed { release: vec![release, summary], release_digest, summary_digest, events: vec![event] })
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

/// What an account says about the person behind it.
enum Account {
    Person(Person),
    /// No account by that name, or one without an e-mail.
    NoEmail,
    /// An e-mail the person rule refuses.
    BadEmail(PersonError),
}

/// A build trigger as an account name: trimmed and lowercase, as GitHub logins ignore case.
fn trigger_name(trigger: &str) -> String {
    trigger.trim().to_lowercase()
}

fn finding_line(f: &gates::Finding) -> String {
    format!("{}: {}", f.rule, f.message)
}

fn approvals_json(rule: &ApprovalRule, counted: &[ApprovalRecord], ignored: &[backed::Mismatch]) -> Value {
    json!({
        "required": rule.count,
        "role": rule.role,
        "mfa": rule.mfa,
        "counted": counted.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>(),
        "missing": (rule.count as usize).saturating_sub(counted.len()),
        "ignored": ignored.iter().map(backed::Mismatch::to_json).collect::<Vec<_>>(),
    })
}

fn promotion_event(kind: EventKind, actor: &Actor, now: Timestamp, record: &PromotionRecord) -> Event {
    let subject = Subject { repository: Some(record.source.clone()), digest: Some(record.digest.clone()), tag: None };
    Event::allowed(kind, actor, now, subject)
        .with_detail("promotion", json!(record.id))
        .with_detail("target", json!(record.target.as_str()))
        .with_detail("tag", json!(record.tag.as_ref().map(Tag::as_str)))
}
