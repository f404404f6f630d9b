//! Committing a promotion: the referrer graph linked into the target, the release record and
//! VSA signed, all in one transaction with the log.

use std::collections::BTreeSet;

use airlock_model::manifest::{Manifest, ManifestLimits};
use airlock_model::{Digest, RepoName, Tag, Timestamp};
use serde_json::json;

use super::approvals::approvals_json;
use super::gates::{self, Evaluation};
use super::record::{self, PROMOTION_PREDICATE, SubjectDescriptor, VSA_PREDICATE};
use super::{
    GRAPH_MAX, Promoter, PromotionError, PromotionView, REFERRER_DEPTH_MAX, backed, promotion_event, rule_for,
};
use crate::audit::{Actor, Event, EventKind, Subject};
use crate::ports::{ApprovalRecord, PromotionCommit, PromotionCommitOutcome, PromotionRecord, Sealed, TagWrite};
use crate::registry::RegistryError;

/// How many times a commit is tried when its tag moves between the engine's read and the
/// store's conditional write.
const TAG_ATTEMPTS: usize = 3;

/// The tag write of a promotion's commit, given where the tag points now (`current`). Tags in
/// gated stages are write-once: a tag naming the digest already is left as it is, and any other
/// is set only where absent, so a tag naming another digest fails the store's condition and the
/// commit. Only a rollback moves such a tag ([`Promoter::rollback`]), audited.
fn tag_write(record: &PromotionRecord, current: Option<&Digest>, now: Timestamp) -> Option<TagWrite> {
    let tag = record.tag.as_ref()?;
    if current == Some(&record.digest) {
        return None;
    }
    let subject = Subject {
        repository: Some(record.target.clone()),
        digest: Some(record.digest.clone()),
        tag: Some(tag.clone()),
    };
    let event =
        Event::allowed(EventKind::TagCreate, &Actor::system(), now, subject).with_detail("promotion", json!(record.id));
    Some(TagWrite { tag: tag.clone(), digest: record.digest.clone(), expected: None, event })
}

impl Promoter {
    /// Links the artifact's graph into the target repository, sets the tag and attaches the
    /// signed release record, in one transaction with the log events.
    pub(super) async fn commit(
        &self,
        mut record: PromotionRecord,
        evaluation: Evaluation,
        approvals: Vec<ApprovalRecord>,
        ignored: &[backed::Mismatch],
    ) -> Result<PromotionView, PromotionError> {
        let now = self.clock.now();
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
        let mut commit = PromotionCommit {
            promotion: record.clone(),
            manifests,
            blobs,
            approvers: approvals.iter().map(|a| a.approver.clone()).collect(),
            tag: None,
        };
        let seal = |index: u64| -> Result<Sealed, String> {
            self.seal(&record, &evaluation, &approvals, &subject, index, now)
        };
        // Where the tag points now; the store's conditional write catches a move since.
        let mut current = match &record.tag {
            Some(tag) => self.manifests.manifest_by_tag(&record.target, tag).await?.map(|m| m.digest),
            None => None,
        };
        for _ in 0..TAG_ATTEMPTS {
            commit.tag = tag_write(&record, current.as_ref(), now);
            match self.promotions.commit_promotion(&commit, &seal, now).await? {
                PromotionCommitOutcome::Committed { .. } => {
                    self.registry.notify_log();
                    return self.get(&record.id).await;
                }
                PromotionCommitOutcome::NotPending { status } => {
                    return Err(PromotionError::NotPending { id: record.id.clone(), status: status.as_str() });
                }
                PromotionCommitOutcome::TagMoved { current: Some(current) } if current != record.digest => {
                    let error = PromotionError::TagImmutable {
                        id: record.id.clone(),
                        tag: record.tag.as_ref().map_or_else(String::new, |t| t.to_string()),
                        repo: record.target.clone(),
                        current,
                    };
                    self.close_failed(&record, &error, now).await;
                    return Err(error);
                }
                // Set meanwhile to this digest (by another commit of it), or gone: decided again.
                PromotionCommitOutcome::TagMoved { current: moved } => current = moved,
                PromotionCommitOutcome::Missing { digest } => {
                    let error = PromotionError::Missing { id: record.id.clone(), repo: record.source.clone(), digest };
                    self.close_failed(&record, &error, now).await;
                    return Err(error);
                }
            }
        }
        // Left pending: the next request for it commits it again.
        Err(PromotionError::Conflict {
            message: format!(
                "promotion `{}` cannot commit: its tag in `{}` kept moving while it committed; try again",
                record.id, record.target
            ),
        })
    }

    /// The manifests (children first, the artifact, then its referrers level by level) and the
    /// blobs they need.
    pub(super) async fn graph(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<(Vec<Digest>, Vec<Digest>, SubjectDescriptor), PromotionError> {
        let limits = ManifestLimits::default();
        let mut manifests: Vec<Digest> = Vec::new();
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let missing = || PromotionError::Missing { id: String::new(), repo: repo.clone(), digest: digest.clone() };
        let root = self.manifests.manifest_by_digest(repo, digest).await?.ok_or_else(missing)?;
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
                let child = self.manifests.manifest_by_digest(repo, &child).await?.ok_or_else(missing)?;
                stack.push((child, false, depth.saturating_add(1)));
            }
        }

        // Referrers, level by level: signatures, attestations, SBOMs, and what refers to them.
        let mut level = vec![digest.clone()];
        for _ in 0..REFERRER_DEPTH_MAX {
            let mut next = Vec::new();
            for subject in &level {
                for referrer in self.manifests.referrers(repo, subject, None).await? {
                    if manifests.contains(&referrer.digest) {
                        continue;
                    }
                    if manifests.len() >= GRAPH_MAX {
                        return Err(PromotionError::GraphTooLarge { digest: digest.clone() });
                    }
                    let Some(record) = self.manifests.manifest_by_digest(repo, &referrer.digest).await? else {
                        continue;
                    };
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
    pub(super) fn seal(
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
