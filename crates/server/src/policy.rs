//! Policy for the API and the gates: the bundles in force (the embedded default library or
//! `policy.bundle`, and every stage's own), loaded once at start and trusted only under the
//! signature of the trust root's policy signers (see [`airlock_core::promotion::policies`]);
//! dry-run decisions, each logged; and the `policy.bundle.load` events of every load and every
//! change of trust.

use std::path::PathBuf;
use std::sync::Arc;

use airlock_core::audit::{Actor, Event, EventKind, Outcome, Subject};
use airlock_core::policy_input::Requester;
use airlock_core::promotion::pipeline::DEFAULT_POLICY;
use airlock_core::promotion::policies::{BundleStatus, BundleTrust, LoadedBundle, PolicySet};
use airlock_model::{Digest, RepoName, StageName};
use airlock_policy::Bundle;

use crate::app::{AppState, StartError};
use crate::config::Config;
use crate::error::ApiError;

/// Why the configured policy bundle could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot load policy bundle `{path}`: {source}; fix it or remove `policy.bundle` to use the default library")]
pub struct PolicyLoadError {
    path: String,
    #[source]
    source: airlock_policy::PolicyError,
}

/// The bundles in force, shared with the promotion engine.
#[derive(Debug)]
pub struct PolicyService {
    pub policies: Arc<PolicySet>,
}

impl PolicyService {
    /// Reads the default bundle (`policy.bundle`, or the embedded library) and the bundle of
    /// every stage that names its own, and decides their trust under `root`.
    pub fn load(config: &Config, root: Option<&airlock_trust::TrustedRoot>) -> Result<PolicyService, StartError> {
        let default_source =
            config.policy_bundle.as_deref().map_or_else(|| "<default library>".to_owned(), |d| d.display().to_string());
        let default = match config.policy_bundle.as_deref() {
            Some(dir) => Bundle::load_dir(dir),
            None => airlock_policy::default_bundle(),
        }
        .map_err(|source| PolicyLoadError { path: default_source.clone(), source })?;
        let mut bundles = vec![LoadedBundle {
            label: DEFAULT_POLICY.to_owned(),
            source: default_source,
            bundle: default,
            embedded: config.policy_bundle.is_none(),
            stages: Vec::new(),
        }];
        for stage in config.stages.iter() {
            let Some(gates) = stage.gates() else { continue };
            let name = stage.name().to_string();
            if let Some(loaded) = bundles.iter_mut().find(|b| b.label == gates.policy) {
                loaded.stages.push(name);
                continue;
            }
            let bundle = Bundle::load_dir(&PathBuf::from(&gates.policy)).map_err(|e| {
                crate::promotion::PromotionStartError::Bundle {
                    stage: name.clone(),
                    path: gates.policy.clone(),
                    reason: e.to_string(),
                }
            })?;
            bundles.push(LoadedBundle {
                label: gates.policy.clone(),
                source: gates.policy.clone(),
                bundle,
                embedded: false,
                stages: vec![name],
            });
        }
        Ok(PolicyService { policies: Arc::new(PolicySet::new(bundles, root)) })
    }

    /// Each bundle's label and digest, for the logged config digest.
    pub fn digests(&self) -> Vec<(String, String)> {
        self.policies.statuses().into_iter().map(|s| (s.label, s.digest)).collect()
    }

    /// What an operator must know about the bundles' trust: one line per bundle that loads
    /// unsigned or is refused.
    pub fn warnings(&self) -> Vec<String> {
        self.policies.statuses().iter().filter_map(warning).collect()
    }
}

fn warning(s: &BundleStatus) -> Option<String> {
    let stages = if s.stages.is_empty() {
        "dry-run evaluations".to_owned()
    } else {
        format!("stages {}", s.stages.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
    };
    match &s.trust {
        BundleTrust::Embedded | BundleTrust::Signed { .. } => None,
        BundleTrust::Unsigned => Some(format!(
            "policy bundle `{}` ({}) is unsigned and loads only because the trust root names no policy signers; name them with `airlock trust propose --policy-key` and sign the bundle with `airlock policy sign`",
            s.source, s.digest
        )),
        BundleTrust::Refused { reason } => Some(format!(
            "policy bundle `{}` ({}) is not trusted: {reason}; {stages} deny every promotion until it is signed",
            s.source, s.digest
        )),
    }
}

/// Logs `policy.bundle.load` for `statuses` (every bundle at start, the changed ones after a
/// trust root is applied) and warns about each bundle not signed.
pub async fn log_loads(app: &AppState, actor: &Actor, statuses: &[BundleStatus]) -> Result<(), ApiError> {
    if statuses.is_empty() {
        return Ok(());
    }
    for line in statuses.iter().filter_map(warning) {
        tracing::warn!("{line}");
    }
    let root_version = app.registry.trust().current().map(|r| r.version());
    let events = PolicySet::load_events(statuses, actor, app.registry.clock().now(), root_version);
    app.registry.log_events(&events).await?;
    Ok(())
}

/// Decides the bundles' trust again under the trust root now in force, and logs each change.
/// Called whenever a trust root version is applied.
pub async fn recheck_trust(app: &AppState, actor: &Actor) -> Result<(), ApiError> {
    let root = app.registry.trust().current();
    let changed = app.policy.policies.recheck(root.as_deref());
    log_loads(app, actor, &changed).await
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
    // Off the async workers: an evaluation may run for its whole time budget.
    let policies = app.policy.policies.clone();
    let decision = app.registry.offload(move || policies.evaluate(DEFAULT_POLICY, &input, now)).await?;
    let decision = decision.map_err(|u| ApiError::Rejected {
        code: crate::error::ApiCode::PolicyUntrusted,
        message: u.message,
        remediation: u.remediation,
    })?;
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
