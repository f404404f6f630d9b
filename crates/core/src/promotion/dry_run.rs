//! The dry run (`POST /api/v1/artifacts/{repo}/{digest}/evaluate?to=STAGE`): the policy
//! decision a promotion of `repo@digest` into a stage would get, by that stage's own bundle,
//! logged as `policy.evaluate`. Nothing else moves.

use airlock_model::{Digest, RepoName, StageName, Timestamp};
use serde_json::{Value, json};

use super::pipeline::DEFAULT_POLICY;
use super::{AccessCheck, Caller, Promoter, PromotionError, origin_of};
use crate::audit::{Event, EventKind, Outcome, Subject};

impl Promoter {
    /// Decides access (on the gathered evidence, when the decision reads the origin), then
    /// evaluates the policy bundle of `target` (the default bundle for a stage without gates)
    /// over the policy input of `repo@digest`, logs the decision, and returns it as canonical
    /// JSON.
    pub async fn dry_run(
        &self,
        caller: &Caller,
        access: &dyn AccessCheck,
        repo: &RepoName,
        digest: &Digest,
        target: &StageName,
    ) -> Result<Vec<u8>, PromotionError> {
        let requester = caller.requester();
        let gathered = if access.reads_origin() {
            let gathered = self.registry.gather_policy_input(repo, digest, target, &requester).await;
            access.check(gathered.as_ref().ok().and_then(origin_of)).await?;
            gathered?
        } else {
            access.check(None).await?;
            self.registry.gather_policy_input(repo, digest, target, &requester).await?
        };
        let input = gathered.json;
        // The decision time is the input's own, so the decision replays byte for byte.
        let now = input
            .get("time")
            .and_then(Value::as_str)
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or_else(|| self.clock.now());
        let label = self
            .registry
            .stages()
            .get(target)
            .and_then(|s| s.gates())
            .map_or_else(|| DEFAULT_POLICY.to_owned(), |g| g.policy.clone());
        // Off the async workers: an evaluation may run for its whole time budget.
        let policies = self.config.policies.clone();
        let decision = self.registry.offload(move || policies.evaluate(&label, &input, now)).await?;
        let decision = decision
            .map_err(|u| PromotionError::PolicyUnavailable { message: u.message, remediation: u.remediation })?;
        let subject = Subject { repository: Some(repo.clone()), digest: Some(digest.clone()), tag: None };
        let mut event = Event::allowed(EventKind::PolicyEvaluate, &caller.actor, now, subject)
            .with_detail("target_stage", json!(target.as_str()))
            .with_detail("bundle_digest", json!(decision.bundle_digest.as_str()))
            .with_detail("input_digest", json!(decision.input_digest.clone()));
        if !decision.allowed() {
            let mut reasons: Vec<String> = decision
                .violations
                .iter()
                .map(|v| format!("{}: {}", v.rule.as_deref().unwrap_or("policy"), v.message))
                .collect();
            reasons.extend(decision.errors.iter().map(|e| format!("{}: {}", e.code.as_str(), e.message)));
            event.outcome = Outcome::Denied { reasons };
        }
        self.registry.log_events(&[event]).await?;
        Ok(decision.to_canonical_json())
    }
}
