//! The policy input document (`docs/policy-input.md`): everything a gate's policy may look at,
//! gathered once per decision. Evidence comes only from attestations that verify against the
//! trust root in force; trusted OpenVEX `not_affected`/`fixed` statements about this artifact
//! remove the vulnerabilities they cover before any rule sees them, and are listed instead.

use airlock_dsse::{Envelope, EnvelopeLimits, StatementLimits};
use airlock_evidence::{Evidence, Limits as EvidenceLimits, VexStatus};
use airlock_model::manifest::{Manifest, ManifestLimits};
use airlock_model::{Digest, RepoName, StageName};
use serde_json::{Value, json};

use crate::registry::{Registry, RegistryError};

/// Who asked for the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub principal: String,
    /// `user`, `service` or `anonymous`.
    pub kind: String,
}

/// One attestation as the policy sees it.
struct Gathered {
    json: Value,
    trusted: bool,
    signers: Vec<String>,
    evidence: Option<Evidence>,
}

/// Whether a VEX statement is about this artifact or the vulnerable package: its products name
/// the artifact's digest or the package's purl, or it names none (an OpenVEX statement inside an
/// attestation is about the attestation's subject, which is this artifact).
fn vex_covers(statement: &airlock_evidence::VexStatement, artifact: &Digest, purl: Option<&str>) -> bool {
    statement.products.is_empty()
        || statement.products.iter().any(|p| p == artifact.as_str() || Some(p.as_str()) == purl)
        || purl.is_some_and(|purl| statement.subcomponents.iter().any(|s| s == purl))
}

impl Registry {
    /// Builds the policy input for promoting `repo@digest` to `target`.
    pub async fn policy_input(
        &self,
        repo: &RepoName,
        digest: &Digest,
        target: &StageName,
        requester: &Requester,
    ) -> Result<Value, RegistryError> {
        self.stage_of(repo)?;
        let record = self
            .store()
            .manifest_by_digest(repo, digest)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown { repo: repo.clone(), reference: digest.to_string() })?;
        // Stored manifests parsed when pushed; a failure now only loses their annotations.
        let annotations = Manifest::parse(Some(&record.media_type), &record.body, &ManifestLimits::default())
            .map(|m| m.annotations)
            .unwrap_or_default();

        let root = self.trust().current();
        let now = self.clock().now();
        let mut gathered = Vec::new();
        for attestation in self.store().attestations(repo, digest).await? {
            gathered.push(gather(&attestation, root.as_deref(), repo, now));
        }

        // Evidence from trusted attestations only, merged.
        let mut merged = Evidence::default();
        let mut vex = Vec::new();
        for g in gathered.iter().filter(|g| g.trusted) {
            if let Some(e) = &g.evidence {
                for statement in &e.vex {
                    vex.push((statement.clone(), g.signers.clone()));
                }
                merged.merge(e.clone());
            }
        }
        let mut vex_applied = Vec::new();
        merged.vulnerabilities.retain(|v| {
            let suppressing = vex.iter().find(|(s, _)| {
                matches!(s.status, VexStatus::NotAffected | VexStatus::Fixed)
                    && (s.vulnerability_id == v.id
                        || s.aliases.contains(&v.id)
                        || v.aliases.contains(&s.vulnerability_id))
                    && vex_covers(s, digest, v.package_purl.as_deref())
            });
            match suppressing {
                Some((s, signers)) => {
                    vex_applied.push(json!({
                        "vulnerability": v.id,
                        "package_purl": v.package_purl,
                        "status": s.status,
                        "justification": s.justification,
                        "impact_statement": s.impact_statement,
                        "signers": signers,
                    }));
                    false
                }
                None => true,
            }
        });

        // Waivers approved through the API meet the bundle's in the same decision.
        // Only those whose approval the log backs (`promotion::backed`).
        let waivers: Vec<Value> = crate::promotion::backed::active_waivers(self, now)
            .await?
            .0
            .iter()
            .map(crate::promotion::control::waiver_json)
            .collect();
        Ok(json!({
            "artifact": {
                "repository": repo.as_str(),
                "digest": digest.as_str(),
                "media_type": record.media_type,
                "annotations": annotations,
                "size": record.body.len(),
            },
            "source_stage": repo.stage().as_str(),
            "target_stage": target.as_str(),
            "attestations": gathered.into_iter().map(|g| g.json).collect::<Vec<_>>(),
            "evidence": serde_json::to_value(&merged).unwrap_or(Value::Null),
            "vex_applied": vex_applied,
            "requester": {"principal": requester.principal, "kind": requester.kind},
            "approvals": [],
            "time": now.to_rfc3339(),
            "waivers": waivers,
        }))
    }
}

fn gather(
    attestation: &crate::ports::AttestationRecord,
    root: Option<&airlock_trust::TrustedRoot>,
    repo: &RepoName,
    now: airlock_model::Timestamp,
) -> Gathered {
    let parsed = Envelope::parse(&attestation.envelope, &EnvelopeLimits::default())
        .map_err(|e| e.to_string())
        .and_then(|envelope| {
            envelope.in_toto_statement(&StatementLimits::default()).map(|s| (envelope, s)).map_err(|e| e.to_string())
        });
    let (envelope, statement) = match parsed {
        Ok(p) => p,
        Err(reason) => {
            return Gathered {
                json: json!({
                    "predicate_type": attestation.predicate_type,
                    "referrer": attestation.manifest.as_str(),
                    "trusted": false,
                    "signers": [],
                    "reasons": [format!("the stored envelope no longer parses: {reason}")],
                    "predicate": null,
                    "evidence": null,
                }),
                trusted: false,
                signers: Vec::new(),
                evidence: None,
            };
        }
    };
    let (trusted, signers, reasons) = match root {
        None => (false, Vec::new(), vec!["no trust root is configured".to_owned()]),
        Some(root) => {
            let evaluation = root.evaluate(&envelope, &statement.predicate_type, repo, now);
            (evaluation.trusted, evaluation.signers, evaluation.reasons.iter().map(ToString::to_string).collect())
        }
    };
    let predicate_bytes = statement.predicate.get().as_bytes();
    let predicate: Value = serde_json::from_slice(predicate_bytes).unwrap_or(Value::Null);
    let (evidence, evidence_error) = match airlock_evidence::from_predicate(
        &statement.predicate_type,
        predicate_bytes,
        &EvidenceLimits::default(),
    ) {
        Ok(e) => (e, None),
        Err(e) => (None, Some(e.to_string())),
    };
    Gathered {
        json: json!({
            "predicate_type": statement.predicate_type,
            "referrer": attestation.manifest.as_str(),
            "trusted": trusted,
            "signers": signers,
            "reasons": reasons,
            "predicate": predicate,
            "evidence": evidence.as_ref().map(|e| serde_json::to_value(e).unwrap_or(Value::Null)),
            "evidence_error": evidence_error,
        }),
        trusted,
        signers,
        evidence,
    }
}
