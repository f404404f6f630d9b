//! The policy input document (`docs/policy-input.md`): everything a gate's policy may look at,
//! gathered once per decision.
//!
//! Only trusted attestations reach the policy with their predicates and evidence. An untrusted one
//! is verified and no further: it appears as its referrer, its claimed predicate type, its key ids
//! and the reasons, at most [`UNTRUSTED_LISTED_MAX`] of them, and its predicate is never parsed.
//! A VEX statement removes a vulnerability only when its signer may sign VEX here (see
//! [`crate::vex`]); every other statement is listed in `vex_ignored` and changes nothing.

use airlock_dsse::KeyId;
use airlock_evidence::Evidence;
use airlock_model::manifest::{Manifest, ManifestLimits};
use airlock_model::{Digest, RepoName, StageName};
use std::collections::BTreeMap;

use airlock_model::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::promotion::gates::{SeenAttestation, SeenKey};
use crate::registry::{Registry, RegistryError};
use crate::verified::{AttestationCache, Reading};
use crate::vex;

/// Most untrusted attestations listed in the policy input; the rest are only counted, in
/// `untrusted_omitted`. Trusted ones are bounded at ingest (`limits.attestations_per_artifact`).
pub const UNTRUSTED_LISTED_MAX: usize = 16;

/// Most reasons listed for one untrusted attestation.
pub const UNTRUSTED_REASONS_MAX: usize = 8;

/// Who asked for the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requester {
    pub principal: String,
    /// `user`, `service` or `anonymous`.
    pub kind: String,
}

impl Requester {
    /// `principal` of `kind` as the gates name them (`user` or `service`), so an input shown to
    /// a caller is the one the gates evaluate for them.
    pub fn of(principal: &airlock_model::PrincipalId, kind: airlock_model::PrincipalKind) -> Requester {
        let kind = match kind {
            airlock_model::PrincipalKind::User => "user",
            airlock_model::PrincipalKind::ServiceAccount => "service",
        };
        Requester { principal: principal.to_string(), kind: kind.to_owned() }
    }
}

/// The policy input document (`docs/policy-input.md`), typed. The policy engine serializes it
/// (`airlock_policy::Engine::evaluate_input`); nothing else reads it back out of JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub artifact: Artifact,
    pub source_stage: String,
    pub target_stage: String,
    /// Trusted attestations in full; untrusted ones while there is room.
    pub attestations: Vec<Listed>,
    pub untrusted_omitted: usize,
    /// The evidence of the trusted attestations, merged, with VEX applied.
    pub evidence: Evidence,
    pub vex_applied: Vec<vex::AppliedStatement>,
    pub vex_ignored: Vec<vex::IgnoredStatement>,
    pub requester: Requester,
    /// Who approved so far; the engine decides approvals itself, so this is empty.
    pub approvals: Vec<InputApproval>,
    /// When the input was gathered, the time the decision is made at.
    #[serde(serialize_with = "rfc3339")]
    pub time: Timestamp,
    pub waivers: Vec<crate::promotion::control::WaiverInput>,
}

/// `input.artifact`.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub annotations: BTreeMap<String, String>,
    pub size: usize,
}

/// One approval as `input.approvals` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct InputApproval {
    pub principal: String,
    pub roles: Vec<String>,
    #[serde(serialize_with = "rfc3339")]
    pub at: Timestamp,
}

/// One attestation as the policy sees it: trusted, with its predicate and evidence, or
/// untrusted, with why and nothing of its predicate.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Listed {
    Trusted(Box<TrustedAttestation>),
    Untrusted(UntrustedAttestation),
}

/// A trusted attestation in `input.attestations`.
#[derive(Debug, Clone, Serialize)]
pub struct TrustedAttestation {
    pub predicate_type: String,
    pub referrer: String,
    /// Always true.
    pub trusted: bool,
    pub signers: Vec<String>,
    pub keyids: Vec<String>,
    pub keys: Vec<SeenKey>,
    pub reasons: Vec<String>,
    /// The predicate as signed.
    pub predicate: Value,
    pub evidence: Option<Evidence>,
    pub evidence_error: Option<String>,
}

/// An untrusted attestation in `input.attestations`.
#[derive(Debug, Clone, Serialize)]
pub struct UntrustedAttestation {
    pub predicate_type: String,
    pub referrer: String,
    /// Always false.
    pub trusted: bool,
    /// Always empty: no signer counts.
    pub signers: Vec<String>,
    pub keyids: Vec<String>,
    pub keyid_hints: Vec<String>,
    pub reasons: Vec<String>,
}

fn rfc3339<S: serde::Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339())
}

/// The policy input and the verdicts it was built from.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    /// The document the policy reads.
    pub input: Input,
    /// Every attestation attached, trusted or not, with the keys that signed it: what the
    /// attestation gates count and the evidence digest binds.
    pub attestations: Vec<SeenAttestation>,
}

/// One attestation as the policy sees it.
struct Gathered {
    listed: Listed,
    seen: SeenAttestation,
    evidence: Option<Evidence>,
    keyids: Vec<KeyId>,
}

impl Registry {
    /// Builds the policy input for promoting `repo@digest` to `target`.
    pub async fn policy_input(
        &self,
        repo: &RepoName,
        digest: &Digest,
        target: &StageName,
        requester: &Requester,
    ) -> Result<Input, RegistryError> {
        Ok(self.gather_policy_input(repo, digest, target, requester).await?.input)
    }

    /// Builds the policy input for promoting `repo@digest` to `target`, with the verdicts.
    pub async fn gather_policy_input(
        &self,
        repo: &RepoName,
        digest: &Digest,
        target: &StageName,
        requester: &Requester,
    ) -> Result<PolicyInput, RegistryError> {
        self.stage_of(repo)?;
        let record = self
            .store()
            .manifest_by_digest(repo, digest)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown { repo: repo.clone(), reference: digest.to_string() })?;
        let root = self.trust().in_force();
        let now = self.clock().now();
        let attestations = self.store().attestations(repo, digest).await?;
        // Waivers approved through the API meet the bundle's in the same decision.
        // Only those whose approval the log backs (`promotion::backed`).
        let waivers = crate::promotion::backed::active_waivers(self, now)
            .await?
            .0
            .iter()
            .map(crate::promotion::control::WaiverInput::of)
            .collect();
        // Signature checks and evidence parsing are CPU work: off the async workers.
        let facts = Facts {
            repo: repo.clone(),
            digest: digest.clone(),
            target: target.clone(),
            requester: requester.clone(),
            now,
            waivers,
        };
        let cache = std::sync::Arc::clone(self.verified());
        self.offload(move || build(&facts, &record, &attestations, root.as_ref(), &cache)).await
    }
}

/// What a policy input is built from besides the stored records.
struct Facts {
    repo: RepoName,
    digest: Digest,
    target: StageName,
    requester: Requester,
    now: airlock_model::Timestamp,
    waivers: Vec<crate::promotion::control::WaiverInput>,
}

/// Verifies every attestation, merges the trusted evidence, applies VEX and writes the document.
fn build(
    facts: &Facts,
    record: &crate::ports::ManifestRecord,
    attestations: &[crate::ports::AttestationRecord],
    root: Option<&crate::attest::InForce>,
    cache: &AttestationCache,
) -> PolicyInput {
    let Facts { repo, digest, target, requester, now, waivers } = facts;
    let now = *now;
    // Stored manifests parsed when pushed; a failure now only loses their annotations.
    let annotations = Manifest::parse(Some(&record.media_type), &record.body, &ManifestLimits::default())
        .map(|m| m.annotations)
        .unwrap_or_default();
    let gathered: Vec<Gathered> = attestations.iter().map(|a| gather(a, root, repo, now, cache)).collect();
    let root = root.map(|r| r.root.as_ref());

    // Evidence from trusted attestations only, merged; VEX statements kept aside with whether
    // their signer may suppress a finding here.
    let mut merged = Evidence::default();
    let mut statements = Vec::new();
    for g in gathered.iter().filter(|g| g.seen.trusted) {
        let Some(e) = &g.evidence else { continue };
        let may_suppress =
            root.is_some_and(|root| vex::signer_may_suppress(root, &g.keyids, &g.seen.predicate_type, repo, now));
        for statement in &e.vex {
            statements.push(vex::Sourced {
                statement: statement.clone(),
                referrer: g.seen.referrer.clone(),
                signers: g.seen.signers.clone(),
                may_suppress,
            });
        }
        merged.merge(Evidence { vex: Vec::new(), ..e.clone() });
    }
    let applied = vex::apply(&mut merged.vulnerabilities, &statements, digest);
    // The merged evidence lists only the statements that may suppress.
    merged.vex = statements.into_iter().filter(|s| s.may_suppress).map(|s| s.statement).collect();

    // Trusted attestations in full; untrusted ones while there is room, then only counted.
    let mut listed = Vec::new();
    let mut untrusted_listed = 0usize;
    let mut untrusted_omitted = 0usize;
    let mut seen = Vec::with_capacity(gathered.len());
    for g in gathered {
        if g.seen.trusted {
            listed.push(g.listed);
        } else if untrusted_listed < UNTRUSTED_LISTED_MAX {
            untrusted_listed = untrusted_listed.saturating_add(1);
            listed.push(g.listed);
        } else {
            untrusted_omitted = untrusted_omitted.saturating_add(1);
        }
        seen.push(g.seen);
    }
    let input = Input {
        artifact: Artifact {
            repository: repo.as_str().to_owned(),
            digest: digest.as_str().to_owned(),
            media_type: record.media_type.clone(),
            annotations,
            size: record.body.len(),
        },
        source_stage: repo.stage().as_str().to_owned(),
        target_stage: target.as_str().to_owned(),
        attestations: listed,
        untrusted_omitted,
        evidence: merged,
        vex_applied: applied.applied,
        vex_ignored: applied.ignored,
        requester: requester.clone(),
        approvals: Vec::new(),
        time: now,
        waivers: waivers.clone(),
    };
    PolicyInput { input, attestations: seen }
}

/// An untrusted attestation as the input lists it: what it claims to be, who signed it, why it
/// does not count. Nothing of its predicate.
fn untrusted(
    attestation: &crate::ports::AttestationRecord,
    predicate_type: &str,
    keys: Vec<SeenKey>,
    hints: Vec<String>,
    reasons: Vec<String>,
) -> Gathered {
    let keyids: Vec<&str> = keys.iter().map(|k| k.keyid.as_str()).collect();
    let total = reasons.len();
    let mut shown: Vec<String> = reasons.into_iter().take(UNTRUSTED_REASONS_MAX).collect();
    if total > UNTRUSTED_REASONS_MAX {
        shown.push(format!("and {} more", total.saturating_sub(UNTRUSTED_REASONS_MAX)));
    }
    Gathered {
        listed: Listed::Untrusted(UntrustedAttestation {
            predicate_type: predicate_type.to_owned(),
            referrer: attestation.manifest.as_str().to_owned(),
            trusted: false,
            signers: Vec::new(),
            keyids: keyids.into_iter().map(str::to_owned).collect(),
            keyid_hints: hints,
            reasons: shown,
        }),
        seen: SeenAttestation {
            referrer: attestation.manifest.to_string(),
            predicate_type: predicate_type.to_owned(),
            trusted: false,
            signers: Vec::new(),
            keys,
        },
        evidence: None,
        keyids: Vec::new(),
    }
}

/// Verifies one stored attestation against the root in force. Its predicate is parsed, and its
/// evidence read, only when it is trusted. What depends only on bytes (the reading of the
/// envelope, which keys signed it under this root's content) comes from `cache` when kept; the
/// rules that depend on the time and the repository are applied here, every time.
fn gather(
    attestation: &crate::ports::AttestationRecord,
    root: Option<&crate::attest::InForce>,
    repo: &RepoName,
    now: airlock_model::Timestamp,
    cache: &AttestationCache,
) -> Gathered {
    let claimed = airlock_model::echo::echo(&attestation.predicate_type);
    let envelope_digest = Digest::of(&attestation.envelope);
    let reading = cache.reading(&envelope_digest, &attestation.envelope);
    let read = match reading.as_ref() {
        Reading::Unparsable { reason } => {
            return untrusted(attestation, &claimed, Vec::new(), Vec::new(), vec![reason.clone()]);
        }
        // The statement names the predicate type the signatures are judged for.
        Reading::NoStatement { hints, reason } => {
            return untrusted(attestation, &claimed, Vec::new(), hints.clone(), vec![reason.clone()]);
        }
        Reading::Statement(read) => read,
    };
    let (statement, hints) = (&read.statement, &read.hints);
    let Some(in_force) = root else {
        let reason = "no trust root is configured; a key admin must apply one".to_owned();
        let predicate_type = airlock_model::echo::echo(&statement.predicate_type);
        return untrusted(attestation, &predicate_type, Vec::new(), hints.clone(), vec![reason]);
    };
    let root = in_force.root.as_ref();
    let evaluation = root.evaluate_signed(&statement.predicate_type, repo, now, || {
        cache.signed_by(&envelope_digest, &in_force.digest, || root.signed_by(&read.envelope))
    });
    let keys: Vec<SeenKey> = evaluation
        .keys
        .iter()
        .map(|k| SeenKey { keyid: k.keyid.as_str().to_owned(), signers: k.signers.clone() })
        .collect();
    if !evaluation.trusted {
        let reasons = evaluation.reasons.iter().map(ToString::to_string).collect();
        let predicate_type = airlock_model::echo::echo(&statement.predicate_type);
        return untrusted(attestation, &predicate_type, keys, hints.clone(), reasons);
    }

    // Trusted: the predicate as signed, and the evidence read from it.
    let predicate = read.predicate();
    let evidence = predicate.evidence.clone();
    let keyids: Vec<KeyId> = evaluation.keys.iter().map(|k| k.keyid.clone()).collect();
    Gathered {
        listed: Listed::Trusted(Box::new(TrustedAttestation {
            predicate_type: statement.predicate_type.clone(),
            referrer: attestation.manifest.as_str().to_owned(),
            trusted: true,
            signers: evaluation.signers.clone(),
            keyids: keys.iter().map(|k| k.keyid.clone()).collect(),
            keys: keys.clone(),
            reasons: evaluation.reasons.iter().map(ToString::to_string).collect(),
            predicate: predicate.value.clone(),
            evidence: evidence.clone(),
            evidence_error: predicate.evidence_error.clone(),
        })),
        seen: SeenAttestation {
            referrer: attestation.manifest.to_string(),
            predicate_type: statement.predicate_type.clone(),
            trusted: true,
            signers: evaluation.signers,
            keys,
        },
        evidence,
        keyids,
    }
}
