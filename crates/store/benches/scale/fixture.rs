//! What the promotion-commit and evidence probes work on, made through the ports as the server
//! makes it: an image (config and layer) pushed with a tag, its four signed attestations, a
//! pending promotion into the next stage and two approvals of it.

use std::time::{Duration, Instant};

use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::{
    ApprovalRecord, BlobIndex, ManifestIndex, NewAttestation, NewManifest, PromotionCommit, PromotionRecord,
    PromotionStore, PutManifestOutcome, TagMode, Verdict,
};
use airlock_model::{Digest, RepoName, Timestamp};
use airlock_store::PostgresStore;
use airlock_test_support::conformance;
use bytes::Bytes;
use serde_json::json;

use crate::records::{self, Attestation, EMPTY_CONFIG, Image, PREDICATES, repo, repo_name};

/// One promotable image and its pending promotion.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub source: RepoName,
    pub image: Image,
    pub attestations: Vec<Attestation>,
    pub promotion: PromotionRecord,
}

impl Fixture {
    /// The commit the engine would ask for: the image and its referrers (children first,
    /// referrers last), every blob they need, the two approvals, and the tag, absent until now.
    pub fn commit(&self) -> PromotionCommit {
        let mut manifests = vec![self.image.digest.clone()];
        manifests.extend(self.attestations.iter().map(|a| a.digest.clone()));
        let mut blobs =
            vec![self.image.config_digest.clone(), self.image.layer_digest.clone(), Digest::of(EMPTY_CONFIG)];
        blobs.extend(self.attestations.iter().map(|a| a.envelope_digest.clone()));
        PromotionCommit {
            promotion: self.promotion.clone(),
            manifests,
            blobs,
            approvers: vec!["approver-1".to_owned(), "approver-2".to_owned()],
            tag: conformance::tag_write(&self.promotion, None),
        }
    }
}

/// What making the fixtures measured of the ports on the way.
#[derive(Debug, Clone, Copy, Default)]
pub struct PortRate {
    pub pushes: u64,
    pub took: Duration,
}

fn stored(outcome: PutManifestOutcome, what: &str) {
    match outcome {
        PutManifestOutcome::Stored { .. } => {}
        other => crate::fail(&format!("pushing {what} through the port answered {other:?}")),
    }
}

/// A gate report about the size of the one the engine stores with a commit.
fn report(digest: &Digest) -> String {
    let gates: Vec<_> = PREDICATES
        .iter()
        .map(|p| {
            json!({"gate": "attestation", "predicate_type": p, "passed": true, "signers": ["ci"],
                        "evidence": Digest::of(format!("{digest}{p}").as_bytes()).as_str()})
        })
        .collect();
    json!({"digest": digest.as_str(), "gates": gates, "policy": {"allowed": true, "violations": [], "warnings": []},
           "approvals": {"required": 2, "role": "release-approver", "given": ["approver-1", "approver-2"]}})
    .to_string()
}

/// Makes `count` fixtures for step `step`, spread over the first `repos` loaded repositories
/// (`dev/…`), promoting into `staging/…`.
pub async fn prepare(store: &PostgresStore, step: u64, count: u64, repos: u64) -> (Vec<Fixture>, PortRate) {
    let mut fixtures = Vec::new();
    let mut rate = PortRate::default();
    let empty = Digest::of(EMPTY_CONFIG);
    for i in 0..count {
        let number = i % repos;
        let source = repo(&repo_name("dev", number));
        let target = repo(&repo_name("staging", number));
        let now = Timestamp::from_millis(1_797_000_000_000 + i64::try_from(step * 100_000 + i).unwrap_or(0));
        let actor = records::ci(step * 100_000 + i);
        let image = records::image("fixture", step * 100_000 + i);
        let blob = |digest: Digest, size: u64, inline: Option<Bytes>| {
            let source = source.clone();
            async move {
                store.insert_blob(&source, &digest, size, inline, None, now).await.expect("insert a blob");
            }
        };
        blob(image.config_digest.clone(), image.config.len() as u64, Some(image.config.clone())).await;
        blob(image.layer_digest.clone(), image.layer_size, None).await;
        blob(empty.clone(), EMPTY_CONFIG.len() as u64, Some(Bytes::from_static(EMPTY_CONFIG))).await;
        let manifest = NewManifest {
            digest: image.digest.clone(),
            media_type: records::IMAGE_MEDIA_TYPE.to_owned(),
            body: image.body.clone(),
            artifact_type: None,
            subject: None,
            annotations_json: "{}".to_owned(),
            required_blobs: vec![image.config_digest.clone(), image.layer_digest.clone()],
            required_manifests: Vec::new(),
            attestation: None,
        };
        let rc = records::tag(&format!("rc-{step}-{i}"));
        let started = Instant::now();
        stored(
            store.put_manifest(&source, &manifest, Some((&rc, TagMode::Mutable)), &actor, now).await.expect("push"),
            "an image",
        );
        rate.took += started.elapsed();
        rate.pushes += 1;
        let mut attestations = Vec::new();
        for predicate in PREDICATES {
            let a = records::attestation(&image.digest, image.body.len(), predicate);
            blob(a.envelope_digest.clone(), a.envelope.len() as u64, Some(a.envelope.clone())).await;
            let referrer = NewManifest {
                digest: a.digest.clone(),
                media_type: records::IMAGE_MEDIA_TYPE.to_owned(),
                body: a.body.clone(),
                artifact_type: Some(records::IN_TOTO.to_owned()),
                subject: Some(image.digest.clone()),
                annotations_json: "{}".to_owned(),
                required_blobs: vec![empty.clone(), a.envelope_digest.clone()],
                required_manifests: Vec::new(),
                attestation: Some(NewAttestation {
                    subject: image.digest.clone(),
                    predicate_type: predicate.to_owned(),
                    envelope: a.envelope.clone(),
                    verdict: Verdict {
                        trusted: true,
                        signers: vec!["ci".to_owned()],
                        reasons: Vec::new(),
                        root_version: 2,
                    },
                }),
            };
            let started = Instant::now();
            stored(store.put_manifest(&source, &referrer, None, &actor, now).await.expect("push"), "an attestation");
            rate.took += started.elapsed();
            rate.pushes += 1;
            attestations.push(a);
        }
        let promotion = PromotionRecord {
            source: source.clone(),
            target,
            report: report(&image.digest),
            created_at: now,
            updated_at: now,
            ..conformance::pending(&format!("prm-{step}-{i}"), &image.digest, Some(&format!("{step}.{i}.0")))
        };
        let subject =
            Subject { repository: Some(promotion.target.clone()), digest: Some(image.digest.clone()), tag: None };
        let request = Event::allowed(EventKind::PromotionRequest, &actor, now, subject.clone())
            .with_detail("promotion", json!(promotion.id));
        if let Err(existing) = store.open_promotion(&promotion, &request).await.expect("open a promotion") {
            crate::fail(&format!("promotion `{}` was open already as `{}`", promotion.id, existing.id));
        }
        for approver in ["approver-1", "approver-2"] {
            let approval = ApprovalRecord {
                promotion: promotion.id.clone(),
                approver: approver.to_owned(),
                identity: format!("email:{approver}@example.com"),
                digest: image.digest.clone(),
                source: promotion.source.clone(),
                target: promotion.target.clone(),
                policy_digest: promotion.policy_digest.clone(),
                evidence_digest: promotion.evidence_digest.clone(),
                comment: "looks good".to_owned(),
                created_at: now,
                expires_at: Timestamp::from_millis(now.as_millis() + 86_400_000),
                log_index: None,
            };
            let by = airlock_model::PrincipalId::parse(approver).expect("valid principal");
            let who = Actor::authenticated(&by, airlock_model::PrincipalKind::User, format!("approve-{i}"));
            let event = Event::allowed(EventKind::PromotionApprove, &who, now, subject.clone())
                .with_detail("promotion", json!(promotion.id))
                .with_detail("approver", json!(approver));
            if !store.add_approval(&approval, &event).await.expect("add an approval") {
                crate::fail(&format!("approval of `{}` by {approver} was refused", promotion.id));
            }
        }
        fixtures.push(Fixture { source, image, attestations, promotion });
    }
    (fixtures, rate)
}
