//! Approvals: who may approve a promotion, which approvals count, and taking it forward when
//! its quorum is met.

use std::collections::BTreeSet;

use airlock_model::{PrincipalId, PrincipalKind, Timestamp};
use serde_json::{Value, json};

use super::gates::{self, Evaluation};
use super::pipeline::ApprovalRule;
use super::{Caller, Promoter, PromotionError, PromotionView, backed, promotion_event, rule_for};
use crate::audit::EventKind;
use crate::identity::person::{Person, PersonError};
use crate::ports::{ApprovalRecord, PromotionRecord, PromotionStatus};

impl Promoter {
    /// The person behind `principal`: their verified e-mail, normalized by the configured rule.
    pub(super) async fn account_of(&self, principal: &str) -> Result<Account, PromotionError> {
        let Ok(id) = PrincipalId::parse(principal) else { return Ok(Account::NoEmail) };
        let email = self.identity.principal(&id).await?.and_then(|p| p.email);
        Ok(match email {
            None => Account::NoEmail,
            Some(email) => match Person::from_email(&email, &self.config.persons) {
                Ok(person) => Account::Person(person),
                Err(e) => Account::BadEmail(e),
            },
        })
    }

    /// The roles `principal` holds at `now`: its bindings and the just-in-time grants in force.
    pub(super) async fn roles_of(&self, principal: &str, now: Timestamp) -> Result<BTreeSet<String>, PromotionError> {
        let Ok(id) = PrincipalId::parse(principal) else { return Ok(BTreeSet::new()) };
        let Some(p) = self.identity.principal(&id).await? else { return Ok(BTreeSet::new()) };
        if p.disabled {
            return Ok(BTreeSet::new());
        }
        let mut roles: BTreeSet<String> = p.roles.into_iter().collect();
        for grant in self.identity.grants(Some(&id)).await? {
            if grant.in_force(now) {
                roles.insert(grant.role);
            }
        }
        Ok(roles)
    }

    /// Approves a pending promotion, then commits it if the quorum is met.
    pub async fn approve(&self, caller: &Caller, id: &str, comment: &str) -> Result<PromotionView, PromotionError> {
        let record = self.pending(id).await?;
        let stage = record.target.stage().clone();
        let gates = self.gates_of(&stage)?;
        let rule =
            rule_for(gates, record.break_glass).ok_or(PromotionError::NoApprovalNeeded { stage: stage.clone() })?;
        let rule = &rule;
        let now = self.clock.now();
        let refuse = |reason: String| PromotionError::ApprovalRefused { id: id.to_owned(), reason };

        // Evaluate again: the approval binds what is true now.
        let requester = self.requester_of(&record).await;
        let evaluation = self.evaluate(gates, &record.source, &stage, &record.digest, &requester, None).await?;
        let person =
            match self.eligible(caller.principal.as_str(), caller.kind, None, &record, &evaluation, rule, now).await? {
                Ok(person) => person,
                Err(reason) => return Err(refuse(reason)),
            };
        // A second account of someone who approved already does not approve again.
        let given = self.promotions.approvals(&record.id).await?;
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
        if !self.promotions.add_approval(&approval, &event).await? {
            return match self.promotions.promotion(id).await? {
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
    pub(super) async fn advance(
        &self,
        record: PromotionRecord,
        evaluation: Evaluation,
        rule: &ApprovalRule,
    ) -> Result<PromotionView, PromotionError> {
        let now = self.clock.now();
        let approvals = self.promotions.approvals(&record.id).await?;
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
        self.promotions.update_evaluation(&record).await?;
        self.view(record).await
    }

    /// The approvals that count now: recorded by the log entry at their stored index, bound to
    /// this evaluation, unexpired, from distinct persons who are still eligible and hold the
    /// role. Also the rows the log does not back, which are ignored (and logged).
    pub(super) async fn counted(
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

    pub(super) async fn kind_of(&self, principal: &str) -> Result<PrincipalKind, ()> {
        let id = PrincipalId::parse(principal).map_err(|_| ())?;
        match self.identity.principal(&id).await {
            Ok(Some(p)) => Ok(p.kind),
            _ => Err(()),
        }
    }

    /// The person `principal` approves as, or why they may not approve this promotion now.
    /// Checked when they approve and again when the approval is counted, then also for
    /// `stored`, the person the approval recorded.
    #[expect(clippy::too_many_arguments, reason = "one check over the approval's whole context")]
    pub(super) async fn eligible(
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
}

/// What an account says about the person behind it.
pub(super) enum Account {
    Person(Person),
    /// No account by that name, or one without an e-mail.
    NoEmail,
    /// An e-mail the person rule refuses.
    BadEmail(PersonError),
}

/// A build trigger as an account name: trimmed and lowercase, as GitHub logins ignore case.
pub(super) fn trigger_name(trigger: &str) -> String {
    trigger.trim().to_lowercase()
}

pub(super) fn approvals_json(rule: &ApprovalRule, counted: &[ApprovalRecord], ignored: &[backed::Mismatch]) -> Value {
    json!({
        "required": rule.count,
        "role": rule.role,
        "mfa": rule.mfa,
        "counted": counted.iter().map(|a| a.approver.as_str()).collect::<Vec<_>>(),
        "missing": (rule.count as usize).saturating_sub(counted.len()),
        "ignored": ignored.iter().map(backed::Mismatch::to_json).collect::<Vec<_>>(),
    })
}
