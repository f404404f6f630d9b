//! The automatic gates: trusted attestations, the policy decision, freeze and change windows.
//! One evaluation gathers everything once; its findings are data, each with its remediation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use airlock_model::{Digest, RepoName, StageName, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::policy_input::PolicyInput;
use crate::ports::{PromotionStore, TrustStore};
use crate::promotion::pipeline::Gates;
use crate::promotion::window;
use crate::registry::{Registry, RegistryError};

pub use crate::promotion::policies::PolicySet;

/// One reason a gate refuses, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `attestation`, `policy`, `freeze` or `window`.
    pub gate: &'static str,
    /// The rule or requirement: `provenance`, `no-critical-vulnerabilities`.
    pub rule: String,
    pub message: String,
    pub remediation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// One attestation the gates looked at, as the evidence digest binds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeenAttestation {
    pub referrer: String,
    pub predicate_type: String,
    pub trusted: bool,
    pub signers: Vec<String>,
    /// The keys whose signatures verified, each with the signer rules it satisfied.
    pub keys: Vec<SeenKey>,
}

/// A key that signed an attestation, and the signer rules of the trust root it satisfied there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeenKey {
    pub keyid: String,
    pub signers: Vec<String>,
}

/// What one evaluation of the automatic gates concluded.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub warnings: Vec<Finding>,
    /// The policy bundle's digest.
    pub policy_digest: String,
    /// The policy input's digest.
    pub input_digest: String,
    /// The digest of the attestations seen and their verdicts against the root in force.
    pub evidence_digest: String,
    pub attestations: Vec<SeenAttestation>,
    /// Who pushed the artifact and who triggered its build, per its trusted provenance.
    pub pusher: Option<String>,
    pub triggers: Vec<String>,
    /// Whether trusted provenance was among the evidence.
    pub has_provenance: bool,
    /// The policy decision, canonical JSON.
    pub decision: Value,
}

impl Evaluation {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Where the engine's own gates are documented, by gate.
pub fn gate_doc(gate: &str) -> String {
    let section = match gate {
        "freeze" => "freeze",
        _ => "request",
    };
    format!("docs/promotion-lifecycle.md#{section}")
}

fn finding(gate: &'static str, rule: &str, message: String, remediation: impl Into<String>) -> Finding {
    Finding { gate, rule: rule.to_owned(), message, remediation: remediation.into(), doc: Some(gate_doc(gate)) }
}

/// The digest binding approvals to the evidence: every attestation's referrer, type, verdict
/// against the trust root in force, signers and the keys that counted, sorted.
fn evidence_digest(seen: &[SeenAttestation]) -> String {
    let mut lines: Vec<String> = seen
        .iter()
        .map(|a| {
            let keys: Vec<&str> = a.keys.iter().filter(|k| !k.signers.is_empty()).map(|k| k.keyid.as_str()).collect();
            format!("{} {} {} {} {}", a.referrer, a.predicate_type, a.trusted, a.signers.join(","), keys.join(","))
        })
        .collect();
    lines.sort();
    Digest::of(lines.join("\n").as_bytes()).to_string()
}

/// Evaluates the automatic gates for promoting `source@digest` into `target`, over the policy
/// input `gathered` for it.
#[allow(clippy::too_many_arguments)]
pub async fn evaluate(
    registry: &Registry,
    trust: &dyn TrustStore,
    promotions: &dyn PromotionStore,
    policies: &Arc<PolicySet>,
    gates: &Gates,
    source: &RepoName,
    target: &StageName,
    digest: &Digest,
    gathered: PolicyInput,
    frozen: Option<&str>,
) -> Result<Evaluation, RegistryError> {
    let (input, attestations) = (gathered.input, gathered.attestations);
    // The decision time is the input's own, so the decision replays byte for byte.
    let now = input.time;
    let mut findings = Vec::new();

    // Freeze and change windows first: they are why nothing else matters today.
    if gates.freeze {
        findings.push(finding(
            "freeze",
            "stage-frozen",
            format!("stage `{target}` is frozen by configuration (`freeze = true`)"),
            "wait for the freeze to end, or have an operator remove `freeze` from the stage in `airlock.toml`",
        ));
    } else if let Some(reason) = frozen {
        findings.push(finding(
            "freeze",
            "stage-frozen",
            format!("stage `{target}` is frozen: {reason}"),
            format!("wait for `airlock unfreeze {target}`, or use `--break-glass` for an emergency"),
        ));
    }
    if !window::open_at(&gates.windows, now) {
        let described: Vec<String> = gates.windows.iter().map(window::ChangeWindow::describe).collect();
        let next = window::next_open(&gates.windows, now).map_or_else(|| "unknown".to_owned(), Timestamp::to_rfc3339);
        findings.push(finding(
            "window",
            "change-window",
            format!(
                "promotions into `{target}` commit only during {}; the next window opens at {next}",
                described.join("; ")
            ),
            format!("promote again after {next}"),
        ));
    }

    // Attestations, re-verified against the root in force (gathering the policy input did that).
    let records = trust.attestations(source, digest).await?;
    let created: BTreeMap<String, Timestamp> = records.iter().map(|r| (r.manifest.to_string(), r.created_at)).collect();
    // An expired root is why nothing verifies: say so, with its version and expiry.
    let expired_root = registry.trust().current().filter(|root| now >= root.root().expires).map(|root| {
        airlock_trust::UntrustedReason::ExpiredRoot { version: root.version(), expired_at: root.root().expires }
            .to_string()
    });
    for required in &gates.attestations {
        // Distinct keys, as the trust root's own thresholds count: one key listed under two
        // signer names is one key.
        let mut keys = BTreeSet::new();
        let mut stale = 0usize;
        let mut untrusted = 0usize;
        for a in attestations.iter().filter(|a| required.matches(&a.predicate_type)) {
            if !a.trusted {
                untrusted = untrusted.saturating_add(1);
                continue;
            }
            let fresh = match (required.max_age_secs, created.get(&a.referrer)) {
                (Some(max), Some(at)) => now.millis_since(*at) <= max.saturating_mul(1000),
                (Some(_), None) => false,
                (None, _) => true,
            };
            if !fresh {
                stale = stale.saturating_add(1);
                continue;
            }
            for key in &a.keys {
                let counts = if required.signers.is_empty() {
                    !key.signers.is_empty()
                } else {
                    key.signers.iter().any(|s| required.signers.contains(s))
                };
                if counts {
                    keys.insert(key.keyid.as_str());
                }
            }
        }
        if keys.len() < required.threshold as usize {
            let mut why = Vec::new();
            if untrusted > 0 {
                why.push(match &expired_root {
                    Some(reason) => format!("{untrusted} attached are untrusted: {reason}"),
                    None => format!("{untrusted} attached do not verify against the trust root"),
                });
            }
            if stale > 0 {
                let hours = required.max_age_secs.unwrap_or(0) / 3600;
                why.push(format!("{stale} are older than {hours} h"));
            }
            if why.is_empty() && keys.is_empty() {
                why.push("none is attached".to_owned());
            }
            let from = if required.signers.is_empty() {
                "trusted signers".to_owned()
            } else {
                format!("signers {}", required.signers.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))
            };
            findings.push(finding(
                "attestation",
                &required.name,
                format!(
                    "`{}` needs {} distinct keys of {from}, found {}{}",
                    required.name,
                    required.threshold,
                    keys.len(),
                    if why.is_empty() { String::new() } else { format!(" ({})", why.join("; ")) }
                ),
                format!(
                    "attach a {} attestation ({}) signed by a key the trust root names, then promote again",
                    required.name,
                    required.predicate_types.join(" or ")
                ),
            ));
        }
    }

    // The policy decision over the same input, off the async workers: it may run for the whole
    // evaluation budget.
    let provenance = input.evidence.provenance.clone();
    let (set, label) = (policies.clone(), gates.policy.clone());
    let decision = registry.offload(move || set.evaluate(&label, &input, now)).await?;
    let (policy_digest, input_digest, decision_json, warnings) = match decision {
        // A bundle that is not loaded, or not trusted, denies everything, saying why.
        Err(unavailable) => {
            findings.push(finding("policy", unavailable.rule, unavailable.message, unavailable.remediation));
            (unavailable.bundle_digest, String::new(), Value::Null, Vec::new())
        }
        Ok(decision) => {
            for v in &decision.violations {
                findings.push(Finding {
                    gate: "policy",
                    rule: v.rule.clone().unwrap_or_else(|| "policy".to_owned()),
                    message: v.message.clone(),
                    remediation: v.remediation.clone().unwrap_or_else(|| "see the rule's documentation".to_owned()),
                    doc: v.doc.clone(),
                });
            }
            for e in &decision.errors {
                findings.push(finding(
                    "policy",
                    e.code.as_str(),
                    e.message.clone(),
                    "fix the policy bundle; an evaluation error always denies",
                ));
            }
            let warnings = decision
                .warnings
                .iter()
                .map(|v| Finding {
                    gate: "policy",
                    rule: v.rule.clone().unwrap_or_else(|| "policy".to_owned()),
                    message: v.message.clone(),
                    remediation: v.remediation.clone().unwrap_or_default(),
                    doc: v.doc.clone(),
                })
                .collect();
            let json = serde_json::from_slice(&decision.to_canonical_json()).unwrap_or(Value::Null);
            (decision.bundle_digest.clone(), decision.input_digest.clone().unwrap_or_default(), json, warnings)
        }
    };

    let mut triggers = BTreeSet::new();
    for p in &provenance {
        triggers.extend(p.trigger.iter().chain(&p.trigger_id).cloned());
    }
    let pusher = promotions.pusher(source, digest).await?;
    Ok(Evaluation {
        findings,
        warnings,
        policy_digest,
        input_digest,
        evidence_digest: evidence_digest(&attestations),
        has_provenance: !provenance.is_empty(),
        attestations,
        pusher,
        triggers: triggers.into_iter().collect(),
        decision: decision_json,
    })
}

/// The report stored with a promotion and shown to its users.
pub fn report(evaluation: &Evaluation, approvals_needed: Option<Value>) -> Value {
    json!({
        "findings": evaluation.findings,
        "warnings": evaluation.warnings,
        "policy_digest": evaluation.policy_digest,
        "input_digest": evaluation.input_digest,
        "evidence_digest": evaluation.evidence_digest,
        "attestations": evaluation.attestations,
        "approvals": approvals_needed,
    })
}
