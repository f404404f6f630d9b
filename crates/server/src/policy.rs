//! Policy evaluation for the API: the bundle in force (the embedded default library or
//! `policy.bundle`), compiled once, and dry-run decisions, each logged.

use std::path::Path;

use airlock_core::audit::{Actor, Event, EventKind, Outcome, Subject};
use airlock_core::policy_input::Requester;
use airlock_model::{Digest, RepoName, StageName};
use airlock_policy::{Bundle, Engine, EvalLimits};

use crate::app::AppState;
use crate::error::ApiError;

/// Why the configured policy bundle could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot load policy bundle `{path}`: {source}; fix it or remove `policy.bundle` to use the default library")]
pub struct PolicyLoadError {
    path: String,
    #[source]
    source: airlock_policy::PolicyError,
}

/// The bundle in force and its compiled form.
#[derive(Debug)]
pub struct PolicyService {
    pub bundle: Bundle,
    engine: Engine,
    limits: EvalLimits,
}

impl PolicyService {
    pub fn load(dir: Option<&Path>) -> Result<PolicyService, PolicyLoadError> {
        let bundle = match dir {
            Some(dir) => Bundle::load_dir(dir),
            None => airlock_policy::default_bundle(),
        }
        .map_err(|source| PolicyLoadError {
            path: dir.map_or_else(|| "<default library>".to_owned(), |d| d.display().to_string()),
            source,
        })?;
        Ok(PolicyService { bundle, engine: Engine::new(), limits: EvalLimits::default() })
    }
}

/// A dry-run decision for promoting `repo@digest` to `target`, logged as `policy.evaluate`.
pub async fn evaluate(
    app: &AppState,
    actor: &Actor,
    repo: &RepoName,
    digest: &Digest,
    target: &StageName,
    requester: &Requester,
) -> Result<Vec<u8>, ApiError> {
    let input = app.registry.policy_input(repo, digest, target, requester).await?;
    // The decision time is the input's own, so the decision replays byte for byte.
    let now = input["time"]
        .as_str()
        .and_then(airlock_model::Timestamp::parse_rfc3339)
        .unwrap_or_else(|| app.registry.clock().now());
    let service = &app.policy;
    let decision = service.engine.evaluate(&service.bundle, &input, now, &service.limits);
    let subject = Subject { repository: Some(repo.clone()), digest: Some(digest.clone()), tag: None };
    let mut event = Event::allowed(EventKind::PolicyEvaluate, actor, now, subject)
        .with_detail("target_stage", serde_json::Value::from(target.as_str()))
        .with_detail("bundle_digest", serde_json::Value::from(decision.bundle_digest.as_str()))
        .with_detail("input_digest", serde_json::Value::from(decision.input_digest.clone()));
    if !decision.allowed() {
        let mut reasons: Vec<String> = decision
            .violations
            .iter()
            .map(|v| format!("{}: {}", v.rule.as_deref().unwrap_or("policy"), v.message))
            .collect();
        reasons.extend(decision.errors.iter().map(|e| format!("{}: {}", e.code.as_str(), e.message)));
        event.outcome = Outcome::Denied { reasons };
    }
    app.registry.log_events(&[event]).await?;
    Ok(decision.to_canonical_json())
}
