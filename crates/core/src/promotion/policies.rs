//! The policy bundles the gates name, compiled once by one engine, each with its trust: a bundle
//! is code, so a stage evaluates it only when the trust root's policy signers signed it.
//!
//! - The embedded default library is trusted as part of the binary.
//! - While the trust root names no policy signers (or there is no root), a directory bundle
//!   loads unsigned: the server warns at start and in `/readyz`.
//! - Once the root names policy signers, a directory bundle loads only when a threshold of them
//!   signed its manifest ([`airlock_policy::verify_bundle`]); otherwise every stage that uses it
//!   denies every promotion with the finding `policy-untrusted`, saying why and how to sign it.
//!
//! Trust is decided when the server starts and again whenever a trust root version is applied
//! ([`PolicySet::recheck`]); each decision that changes is a `policy.bundle.load` event
//! ([`PolicySet::load_events`]). Bundle bytes are read from disk only at start.

use std::collections::BTreeMap;
use std::sync::RwLock;

use airlock_model::Timestamp;
use airlock_policy::{Bundle, Decision, Engine, EvalLimits};
use airlock_trust::TrustedRoot;
use serde_json::json;

use crate::audit::{Actor, Event, EventKind, Outcome, Subject};
use crate::policy_input::Input;

/// Whether a bundle may be evaluated, and on whose word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleTrust {
    /// The embedded default library: trusted as part of the binary.
    Embedded,
    /// Signed by a threshold of the trust root's policy signers (their key ids).
    Signed { signers: Vec<String> },
    /// Loaded unsigned, because no trust root names policy signers yet.
    Unsigned,
    /// Not trusted: the stages using it deny everything.
    Refused { reason: String },
}

impl BundleTrust {
    /// `embedded`, `signed`, `unsigned` or `refused`, as the log records it.
    pub fn as_str(&self) -> &'static str {
        match self {
            BundleTrust::Embedded => "embedded",
            BundleTrust::Signed { .. } => "signed",
            BundleTrust::Unsigned => "unsigned",
            BundleTrust::Refused { .. } => "refused",
        }
    }

    /// The key ids that signed the bundle (none unless [`BundleTrust::Signed`]).
    pub fn signers(&self) -> &[String] {
        match self {
            BundleTrust::Signed { signers } => signers,
            _ => &[],
        }
    }
}

/// Decides whether `bundle` is trusted under `root`; `embedded` for the library in the binary.
pub fn bundle_trust(bundle: &Bundle, embedded: bool, root: Option<&TrustedRoot>) -> BundleTrust {
    if embedded {
        return BundleTrust::Embedded;
    }
    let Some((keys, threshold)) = root.and_then(TrustedRoot::policy_signers) else {
        return BundleTrust::Unsigned;
    };
    match airlock_policy::verify_bundle(bundle, &keys, threshold) {
        Ok(signers) => BundleTrust::Signed { signers: signers.iter().map(|k| k.as_str().to_owned()).collect() },
        Err(e) => BundleTrust::Refused { reason: e.to_string() },
    }
}

/// One bundle as the server loaded it.
#[derive(Debug, Clone)]
pub struct LoadedBundle {
    /// How stages name it: [`crate::promotion::pipeline::DEFAULT_POLICY`] or its directory.
    pub label: String,
    /// Where it was read from: its directory, or `<default library>`.
    pub source: String,
    pub bundle: Bundle,
    /// Whether it is the embedded default library.
    pub embedded: bool,
    /// The stages whose gates evaluate it.
    pub stages: Vec<String>,
}

/// A bundle and its trust now, for `/readyz` and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleStatus {
    pub label: String,
    pub source: String,
    pub digest: String,
    pub stages: Vec<String>,
    pub trust: BundleTrust,
}

/// Why the gates cannot evaluate a stage's policy: a finding, with the bundle's digest when a
/// bundle was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyUnavailable {
    /// `policy-missing` or `policy-untrusted`.
    pub rule: &'static str,
    pub message: String,
    pub remediation: String,
    pub bundle_digest: String,
}

/// The policy bundles the gates name, compiled once by one engine, with their trust.
#[derive(Debug)]
pub struct PolicySet {
    engine: Engine,
    bundles: BTreeMap<String, LoadedBundle>,
    trust: RwLock<BTreeMap<String, BundleTrust>>,
    limits: EvalLimits,
}

impl PolicySet {
    /// `bundles`, trusted or not under `root`; [`crate::promotion::pipeline::DEFAULT_POLICY`]
    /// must be among them.
    pub fn new(bundles: Vec<LoadedBundle>, root: Option<&TrustedRoot>) -> PolicySet {
        let trust = bundles.iter().map(|b| (b.label.clone(), bundle_trust(&b.bundle, b.embedded, root))).collect();
        PolicySet {
            engine: Engine::new(),
            bundles: bundles.into_iter().map(|b| (b.label.clone(), b)).collect(),
            trust: RwLock::new(trust),
            limits: EvalLimits::default(),
        }
    }

    /// The bundle named `label`, trusted or not.
    pub fn bundle(&self, label: &str) -> Option<&Bundle> {
        self.bundles.get(label).map(|b| &b.bundle)
    }

    fn trust_of(&self, label: &str) -> Option<BundleTrust> {
        self.trust.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(label).cloned()
    }

    /// Every bundle and its trust now, by label.
    pub fn statuses(&self) -> Vec<BundleStatus> {
        let trust = self.trust.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.bundles
            .values()
            .map(|b| BundleStatus {
                label: b.label.clone(),
                source: b.source.clone(),
                digest: b.bundle.digest().to_string(),
                stages: b.stages.clone(),
                trust: trust
                    .get(&b.label)
                    .cloned()
                    .unwrap_or(BundleTrust::Refused { reason: "not checked".to_owned() }),
            })
            .collect()
    }

    /// Decides every bundle's trust again under `root` (a new trust root version was applied)
    /// and returns the bundles whose trust changed.
    pub fn recheck(&self, root: Option<&TrustedRoot>) -> Vec<BundleStatus> {
        let mut changed = Vec::new();
        let mut trust = self.trust.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for b in self.bundles.values() {
            let now = bundle_trust(&b.bundle, b.embedded, root);
            if trust.get(&b.label) != Some(&now) {
                trust.insert(b.label.clone(), now.clone());
                changed.push(BundleStatus {
                    label: b.label.clone(),
                    source: b.source.clone(),
                    digest: b.bundle.digest().to_string(),
                    stages: b.stages.clone(),
                    trust: now,
                });
            }
        }
        changed
    }

    /// Evaluates the bundle named `label`, if it is loaded and trusted.
    pub fn evaluate(&self, label: &str, input: &Input, at: Timestamp) -> Result<Decision, PolicyUnavailable> {
        let Some(loaded) = self.bundles.get(label) else {
            return Err(PolicyUnavailable {
                rule: "policy-missing",
                message: format!("the policy bundle `{label}` is not loaded"),
                remediation: "fix the stage's `policy` in `airlock.toml` and restart".to_owned(),
                bundle_digest: String::new(),
            });
        };
        if let Some(BundleTrust::Refused { reason }) = self.trust_of(label) {
            return Err(untrusted(&loaded.source, loaded.bundle.digest().as_str(), &reason));
        }
        Ok(self.engine.evaluate_input(&loaded.bundle, input, at, &self.limits))
    }

    /// One `policy.bundle.load` event per status: the bundle's digest, its trust, its signers
    /// and the stages that use it; denied, with the reason, when the bundle is refused.
    pub fn load_events(
        statuses: &[BundleStatus],
        actor: &Actor,
        now: Timestamp,
        root_version: Option<u64>,
    ) -> Vec<Event> {
        statuses
            .iter()
            .map(|s| {
                let mut event = Event::allowed(EventKind::PolicyBundleLoad, actor, now, Subject::default())
                    .with_detail("bundle", json!(s.label))
                    .with_detail("path", json!(s.source))
                    .with_detail("bundle_digest", json!(s.digest))
                    .with_detail("trust", json!(s.trust.as_str()))
                    .with_detail("signers", json!(s.trust.signers()))
                    .with_detail("stages", json!(s.stages))
                    .with_detail("trust_root_version", json!(root_version));
                if let BundleTrust::Refused { reason } = &s.trust {
                    event.outcome = Outcome::Denied {
                        reasons: vec![format!("policy bundle `{}` is not trusted: {reason}", s.source)],
                    };
                }
                event
            })
            .collect()
    }
}

/// The finding for a stage whose bundle is not trusted.
fn untrusted(source: &str, digest: &str, reason: &str) -> PolicyUnavailable {
    PolicyUnavailable {
        rule: "policy-untrusted",
        message: format!(
            "the policy bundle `{source}` ({digest}) is not trusted, so this stage denies everything: {reason}"
        ),
        remediation: format!(
            "review the bundle, sign it with `airlock policy sign {source} --key KEY` by the trust root's policy signers, then restart the server"
        ),
        bundle_digest: digest.to_owned(),
    }
}
