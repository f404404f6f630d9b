//! What moves a stage outside the normal path, each under its own rule: freezes (lifted only by
//! two distinct people), waivers (requested by one person, approved by another, expiring),
//! rollback (a gated tag moves back only to a digest promoted there before, re-verified), and
//! the follow-up reviews break-glass promotions leave open.

use airlock_model::{Digest, RepoName, StageName, Tag, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{Event, EventKind, Subject};
use crate::ports::{FreezeRecord, PromotionFilter, PromotionStatus, ReviewRecord, WaiverRecord, WaiverState};
use crate::promotion::{Caller, Promoter, PromotionError, backed};
use crate::registry::RegistryError;

/// Where lifting a freeze stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfreeze {
    /// The first person asked; a second, different one must confirm.
    Waiting { first: String },
    /// Lifted by two people.
    Lifted { first: String, second: String },
}

/// A waiver to request.
#[derive(Debug, Clone)]
pub struct WaiverRequest {
    pub rule: String,
    pub vulnerability: Option<String>,
    pub component: Option<String>,
    /// A repository pattern (`*/payments/api`).
    pub repository: String,
    pub expires_at: Timestamp,
    pub justification: String,
}

/// Where a rollback moves a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTo {
    /// The digest promoted into the repository before the one the tag names now.
    Previous,
    Digest(Digest),
}

/// A rollback done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    pub repository: RepoName,
    pub tag: Tag,
    pub from: Digest,
    pub to: Digest,
    pub log_index: u64,
}

fn refused(message: String) -> PromotionError {
    PromotionError::Refused { message }
}

/// A waiver as `input.waivers` of a policy decision, and the log, name it.
#[derive(Debug, Clone, Serialize)]
pub struct WaiverInput {
    pub id: String,
    pub repository: String,
    pub rule: String,
    pub created_at: String,
    pub expires_at: String,
    pub justification: String,
    /// Empty until approved.
    pub approver: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

impl WaiverInput {
    pub fn of(w: &WaiverRecord) -> WaiverInput {
        WaiverInput {
            id: w.id.clone(),
            repository: w.repository.clone(),
            rule: w.rule.clone(),
            created_at: w.created_at.to_rfc3339(),
            expires_at: w.expires_at.to_rfc3339(),
            justification: w.justification.clone(),
            approver: w.approver.clone().unwrap_or_default(),
            vulnerability: w.vulnerability.clone(),
            component: w.component.clone(),
        }
    }
}

/// The waiver as `input.waivers` of a policy decision names it, as JSON (for log details).
pub fn waiver_json(w: &WaiverRecord) -> Value {
    serde_json::to_value(WaiverInput::of(w)).unwrap_or(Value::Null)
}

impl Promoter {
    /// The freeze on `stage`, if one is in force: stored and not lifted, or lifted by a row the
    /// log does not back.
    pub async fn frozen(&self, stage: &StageName) -> Result<Option<FreezeRecord>, PromotionError> {
        Ok(self.freezes().await?.into_iter().find(|f| &f.stage == stage))
    }

    /// The freezes in force.
    pub async fn freezes(&self) -> Result<Vec<FreezeRecord>, PromotionError> {
        Ok(backed::freezes_in_force(&self.registry).await?.into_iter().map(|f| f.record).collect())
    }

    fn known_stage(&self, stage: &StageName) -> Result<(), PromotionError> {
        match self.registry.stages().get(stage) {
            Some(_) => Ok(()),
            None => Err(refused(format!("stage `{stage}` is not configured"))),
        }
    }

    /// Freezes `stage`: promotions into it are denied until two people lift the freeze.
    pub async fn freeze(
        &self,
        caller: &Caller,
        stage: &StageName,
        reason: &str,
    ) -> Result<FreezeRecord, PromotionError> {
        self.known_stage(stage)?;
        if reason.trim().is_empty() {
            return Err(refused("a freeze needs a `reason`".to_owned()));
        }
        let now = self.clock.now();
        let record = FreezeRecord {
            stage: stage.clone(),
            reason: reason.to_owned(),
            frozen_by: caller.principal.to_string(),
            frozen_at: now,
            unfreeze_by: None,
            unfreeze_index: None,
            lifted_by: None,
            lift_index: None,
        };
        let event = Event::allowed(EventKind::StageFreeze, &caller.actor, now, Subject::default())
            .with_detail("stage", json!(stage.as_str()))
            .with_detail("reason", json!(reason));
        if !self.control.freeze(&record, &event).await? {
            return Err(PromotionError::Conflict { message: format!("stage `{stage}` is frozen already") });
        }
        self.registry.notify_log();
        Ok(record)
    }

    /// Asks to lift the freeze on `stage`: the first call waits for a second, different person.
    pub async fn unfreeze(&self, caller: &Caller, stage: &StageName) -> Result<Unfreeze, PromotionError> {
        self.known_stage(stage)?;
        let in_force = backed::freezes_in_force(&self.registry).await?.into_iter().find(|f| &f.record.stage == stage);
        let Some(backed::InForce { record, stored, .. }) = in_force else {
            return Err(PromotionError::Conflict { message: format!("stage `{stage}` is not frozen") });
        };
        if !stored {
            return Err(refused(format!(
                "the freeze on `{stage}` is in force by the log but its row is gone, so it cannot be lifted as it is: freeze it again with `airlock freeze {stage} --reason TEXT`, then two people lift that freeze"
            )));
        }
        let me = caller.principal.to_string();
        let now = self.clock.now();
        // The first person counts only if the log recorded their request; a stored lift here is
        // one the log does not back (a backed one is not in force), so the request goes too.
        let first = match &record.unfreeze_by {
            Some(first) if record.lifted_by.is_none() => {
                let claim = backed::unfreeze_request_claim(&record);
                let verdict = backed::check(&self.registry, std::slice::from_ref(&claim)).await?;
                verdict.into_iter().flatten().next().is_none().then(|| first.clone())
            }
            _ => None,
        };
        let about = |kind: EventKind| {
            Event::allowed(kind, &caller.actor, now, Subject::default())
                .with_detail("stage", json!(stage.as_str()))
                .with_detail("frozen_by", json!(record.frozen_by))
                .with_detail("frozen_at", json!(record.frozen_at.to_rfc3339()))
        };
        match first {
            None => {
                let event = about(EventKind::StageUnfreezeRequest);
                let replacing = record.unfreeze_by.as_deref();
                if !self.control.request_unfreeze(stage, &me, replacing, &event, now).await? {
                    return Err(PromotionError::Conflict {
                        message: format!("someone else asked to lift the freeze on `{stage}` meanwhile; confirm it"),
                    });
                }
                self.registry.notify_log();
                Ok(Unfreeze::Waiting { first: me })
            }
            Some(first) if first == me => Err(refused(format!(
                "you asked to lift the freeze on `{stage}` already; a second, different person must confirm with `airlock unfreeze {stage}`"
            ))),
            Some(first) => {
                let event = about(EventKind::StageUnfreeze).with_detail("first", json!(first));
                if !self.control.lift_freeze(stage, &first, &me, &event).await? {
                    return Err(PromotionError::Conflict {
                        message: format!("the freeze on `{stage}` changed meanwhile"),
                    });
                }
                self.registry.notify_log();
                Ok(Unfreeze::Lifted { first, second: me })
            }
        }
    }

    /// Requests a waiver; it waives nothing until another person approves it.
    pub async fn request_waiver(
        &self,
        caller: &Caller,
        request: &WaiverRequest,
    ) -> Result<WaiverRecord, PromotionError> {
        let now = self.clock.now();
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = format!("{}\n{}\n{}\n{n}\n{}", caller.principal, request.rule, request.repository, now.as_millis());
        let id = format!("w-{}", Digest::of(seed.as_bytes()).hex().get(..16).unwrap_or_default());
        let record = WaiverRecord {
            id,
            rule: request.rule.clone(),
            vulnerability: request.vulnerability.clone(),
            component: request.component.clone(),
            repository: request.repository.clone(),
            justification: request.justification.clone(),
            requester: caller.principal.to_string(),
            state: WaiverState::Pending,
            approver: None,
            created_at: now,
            decided_at: None,
            expires_at: request.expires_at,
            log_index: None,
        };
        // Checked by the same rules a decision applies, so it cannot widen there either.
        let check = json!([waiver_json(&WaiverRecord { approver: Some("pending".to_owned()), ..record.clone() })]);
        airlock_policy::waiver::parse_waivers(check.to_string().as_bytes(), &airlock_policy::WaiverLimits::default())
            .map_err(|e| refused(format!("waiver refused: {e}")))?;
        if request.expires_at <= now {
            return Err(refused("`expires` is in the past; give a future time".to_owned()));
        }
        let event = Event::allowed(EventKind::WaiverRequest, &caller.actor, now, Subject::default())
            .with_detail("waiver", waiver_json(&record));
        self.control.create_waiver(&record, &event).await?;
        self.registry.notify_log();
        Ok(record)
    }

    /// Approves a pending waiver; it waives from now until it expires. The requester cannot
    /// approve their own.
    pub async fn approve_waiver(&self, caller: &Caller, id: &str) -> Result<WaiverRecord, PromotionError> {
        let current = self.waiver(id).await?;
        if current.requester == caller.principal.as_str() {
            return Err(refused(format!(
                "`{}` requested waiver `{id}`; someone else must approve it",
                caller.principal
            )));
        }
        let now = self.clock.now();
        if current.expires_at <= now {
            return Err(refused(format!("waiver `{id}` expired before it was approved; request a new one")));
        }
        let approved = WaiverRecord {
            state: WaiverState::Active,
            approver: Some(caller.principal.to_string()),
            decided_at: Some(now),
            created_at: now,
            ..current
        };
        let event = Event::allowed(EventKind::WaiverApprove, &caller.actor, now, Subject::default())
            .with_detail("waiver", waiver_json(&approved));
        self.decide_waiver(&approved, &event).await
    }

    /// Revokes a pending or active waiver.
    pub async fn revoke_waiver(&self, caller: &Caller, id: &str) -> Result<WaiverRecord, PromotionError> {
        let current = self.waiver(id).await?;
        let now = self.clock.now();
        let from = current.state;
        if !matches!(from, WaiverState::Pending | WaiverState::Active) {
            return Err(PromotionError::Conflict { message: format!("waiver `{id}` is {}", from.as_str()) });
        }
        let revoked = WaiverRecord { state: WaiverState::Revoked, decided_at: Some(now), ..current };
        let event = Event::allowed(EventKind::WaiverRevoke, &caller.actor, now, Subject::default())
            .with_detail("waiver", json!(id))
            .with_detail("revoked_by", json!(caller.principal.as_str()));
        match self.control.decide_waiver(&revoked, from, &event).await? {
            Some(w) => {
                self.registry.notify_log();
                Ok(w)
            }
            None => Err(PromotionError::Conflict { message: format!("waiver `{id}` changed meanwhile") }),
        }
    }

    async fn decide_waiver(&self, waiver: &WaiverRecord, event: &Event) -> Result<WaiverRecord, PromotionError> {
        match self.control.decide_waiver(waiver, WaiverState::Pending, event).await? {
            Some(w) => {
                self.registry.notify_log();
                Ok(w)
            }
            None => Err(PromotionError::Conflict { message: format!("waiver `{}` is not pending", waiver.id) }),
        }
    }

    pub async fn waiver(&self, id: &str) -> Result<WaiverRecord, PromotionError> {
        self.control.waiver(id).await?.ok_or_else(|| unknown_waiver(id))
    }

    pub async fn waivers(&self) -> Result<Vec<WaiverRecord>, PromotionError> {
        Ok(self.control.waivers().await?)
    }

    pub async fn reviews(&self) -> Result<Vec<ReviewRecord>, PromotionError> {
        Ok(self.control.reviews().await?)
    }

    /// Closes a break-glass promotion's follow-up review.
    pub async fn close_review(&self, caller: &Caller, id: &str, note: &str) -> Result<ReviewRecord, PromotionError> {
        if note.trim().is_empty() {
            return Err(refused("closing a review needs a `note` saying what was found".to_owned()));
        }
        let now = self.clock.now();
        let event = Event::allowed(EventKind::ReviewClose, &caller.actor, now, Subject::default())
            .with_detail("review", json!(id))
            .with_detail("note", json!(note));
        match self.control.close_review(id, caller.principal.as_str(), note, &event, now).await? {
            Some(r) => {
                self.registry.notify_log();
                Ok(r)
            }
            None => Err(PromotionError::NotFound {
                message: format!("no open review `{id}`; list them with `airlock review list`"),
            }),
        }
    }

    /// Moves `tag` in a gated repository back to a digest promoted there before, after
    /// re-verifying its evidence against the trust root and policy in force.
    pub async fn rollback(
        &self,
        caller: &Caller,
        repo: &RepoName,
        tag: &Tag,
        to: &RollbackTo,
        reason: &str,
    ) -> Result<Rollback, PromotionError> {
        if reason.trim().is_empty() {
            return Err(refused("a rollback needs a `reason`".to_owned()));
        }
        let stage = repo.stage().clone();
        let gates = self.gates_of(&stage)?;
        let current = self
            .manifests
            .manifest_by_tag(repo, tag)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown { repo: repo.clone(), reference: tag.to_string() })?
            .digest;
        let promoted = self
            .promotions
            .promotions(&PromotionFilter {
                status: Some(PromotionStatus::Promoted),
                target: Some(repo.clone()),
                digest: None,
                limit: 1000,
            })
            .await?;
        let target = match to {
            RollbackTo::Digest(d) => {
                if !promoted.iter().any(|p| &p.digest == d) {
                    return Err(refused(format!(
                        "`{d}` was never promoted into `{repo}`; a rollback goes only to a digest promoted there before"
                    )));
                }
                d.clone()
            }
            // Newest first: the first promoted digest other than the current one.
            RollbackTo::Previous => promoted
                .iter()
                .map(|p| &p.digest)
                .find(|d| **d != current)
                .cloned()
                .ok_or_else(|| refused(format!("nothing was promoted into `{repo}` before `{current}`")))?,
        };
        if target == current {
            return Err(refused(format!("tag `{tag}` already points at `{target}`")));
        }
        // The evidence stays in the repository with the artifact; it is verified again now, so a
        // revoked key or a policy change blocks the way back too.
        let requester =
            crate::policy_input::Requester { principal: caller.principal.to_string(), kind: "user".to_owned() };
        let frozen = self.frozen(&stage).await?;
        let gathered = self.registry.gather_policy_input(repo, &target, &stage, &requester).await?;
        let evaluation = crate::promotion::gates::evaluate(
            &self.registry,
            &*self.trust,
            &*self.promotions,
            &self.config.policies,
            gates,
            repo,
            &stage,
            &target,
            gathered,
            frozen.as_ref().map(|f| f.reason.as_str()),
        )
        .await?;
        // The stage's attestation requirements and policy apply; change windows do not stop a
        // rollback, which is how a bad release is undone at any hour.
        let findings: Vec<String> = evaluation
            .findings
            .iter()
            .filter(|f| f.gate != "window")
            .map(|f| format!("{}: {}", f.rule, f.message))
            .collect();
        let now = self.clock.now();
        let subject = Subject { repository: Some(repo.clone()), digest: Some(target.clone()), tag: Some(tag.clone()) };
        let mut event = Event::allowed(EventKind::PromotionRollback, &caller.actor, now, subject)
            .with_detail("previous", json!(current.as_str()))
            .with_detail("reason", json!(reason))
            .with_detail("policy_digest", json!(evaluation.policy_digest))
            .with_detail("evidence_digest", json!(evaluation.evidence_digest));
        if !findings.is_empty() {
            event.outcome = crate::audit::Outcome::Denied { reasons: findings.clone() };
            self.registry.log_events(&[event]).await?;
            return Err(refused(format!("rollback to `{target}` denied: {}", findings.join("; "))));
        }
        match self.promotions.move_tag(repo, tag, &current, &target, &event).await? {
            Some(log_index) => {
                self.registry.notify_log();
                Ok(Rollback { repository: repo.clone(), tag: tag.clone(), from: current, to: target, log_index })
            }
            None => Err(PromotionError::Conflict {
                message: format!("tag `{tag}` in `{repo}` moved meanwhile; look again"),
            }),
        }
    }
}

/// What a request about waiver `id` answers when there is none: the server answers the same
/// for a waiver the caller may not see.
pub fn unknown_waiver(id: &str) -> PromotionError {
    PromotionError::NotFound { message: format!("waiver `{id}` does not exist; list them with `airlock waiver list`") }
}
