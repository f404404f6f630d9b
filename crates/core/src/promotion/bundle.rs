//! The release bundle: one JSON document that proves a promotion to anyone holding two public
//! keys, the release key and the log's verifier key, with no server. It carries the release
//! record and the SLSA VSA (each its DSSE envelope and referrer manifest, as stored), the log
//! entry of the commit (its exact leaf bytes and index), an inclusion proof, and the signed
//! checkpoint whose tree the proof reaches. The format is specified in `docs/release-bundle.md`;
//! [`verify_bundle`] follows its numbered steps, one error variant each.

use airlock_dsse::PublicKey;
use airlock_model::manifest::{Manifest, ManifestLimits};
use airlock_model::{Digest, RepoName};
use airlock_tlog::{Checkpoint, Hash, Note, Verifier, leaf_hash, verify_inclusion};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{Actor, Event, EventKind, Subject};
use crate::ports::{EngineManifest, NewManifest, PromotionFilter, PromotionRecord, PromotionStatus};
use crate::promotion::history::commit_entry_matches;
use crate::promotion::record::{
    PREDICATE_ANNOTATION, RecordError, VSA_PREDICATE, VerifiedRecord, verify_record, verify_statement,
};
use crate::promotion::{Promoter, PromotionError};
use crate::registry::RegistryError;

/// The bundle's media type; a later format gets a new version.
pub const RELEASE_BUNDLE_MEDIA_TYPE: &str = "application/vnd.airlock.release-bundle.v1+json";
/// Largest bundle read, from a file or the network: a bundle is a few kilobytes.
pub const BUNDLE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most hashes an inclusion proof may carry (a tree of 2^64 leaves needs 64).
pub const PROOF_MAX_HASHES: usize = 64;
/// The annotation naming the promotion a bundle referrer proves.
pub const PROMOTION_ANNOTATION: &str = "dev.airlock.promotion";
/// The annotation naming the repository a bundle referrer proves the promotion into.
pub const REPOSITORY_ANNOTATION: &str = "dev.airlock.repository";
/// Most log leaves read after one checkpoint to find the commits it newly covers.
pub const ATTACH_SCAN_MAX: u64 = 10_000;
/// The OCI image manifest media type, which the bundle referrer uses.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The empty JSON object, the config of every referrer.
const EMPTY_CONFIG: &[u8] = b"{}";

/// One signed referrer: its manifest and the DSSE envelope that is its one layer, both as
/// stored (standard base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReferrer {
    pub manifest: String,
    pub envelope: String,
}

/// The commit event as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleLogEntry {
    pub index: u64,
    /// The leaf bytes, standard base64.
    pub leaf: String,
}

/// RFC 6962 inclusion proof of the entry in the checkpoint's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BundleProof {
    pub tree_size: u64,
    /// Standard base64 hashes, leaf to root.
    pub hashes: Vec<String>,
}

/// The release bundle, version 1. A file format, so it derives `Serialize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseBundle {
    pub media_type: String,
    /// The target repository, `prod/app`.
    pub repository: String,
    pub digest: String,
    pub promotion: String,
    pub release_record: SignedReferrer,
    pub verification_summary: SignedReferrer,
    pub log_entry: BundleLogEntry,
    pub inclusion_proof: BundleProof,
    /// The C2SP signed note, as signed.
    pub checkpoint: String,
}

/// What a verified bundle proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    pub repository: RepoName,
    pub digest: Digest,
    pub record: VerifiedRecord,
    /// The release record's referrer manifest digest, which the commit event names.
    pub release_record: Digest,
    pub checkpoint_size: u64,
    pub log_origin: String,
}

/// Why a bundle does not prove a promotion: one variant per step of [`verify_bundle`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("step 1, format: the bundle is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("step 1, format: the bundle is malformed: {reason}")]
    Malformed { reason: String },
    #[error("step 1, format: media type `{found}` is not `{RELEASE_BUNDLE_MEDIA_TYPE}`")]
    MediaType { found: String },
    #[error("step 2, release record: {0}")]
    Record(RecordError),
    #[error("step 2, release record: it names {what} `{found}`, the bundle `{expected}`")]
    RecordNamesOther { what: &'static str, found: String, expected: String },
    #[error("step 3, verification summary: {reason}")]
    Summary { reason: String },
    #[error("step 4, referrer manifests: the {which} manifest {reason}")]
    Manifest { which: &'static str, reason: String },
    #[error("step 5, log entry {index}: {reason}")]
    Entry { index: u64, reason: String },
    #[error("step 6, checkpoint: {reason}")]
    Checkpoint { reason: String },
    #[error("step 7, inclusion: log entry {index} is not in the checkpoint's tree of {size}: {reason}")]
    Inclusion { index: u64, size: u64, reason: String },
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, BundleError> {
    STANDARD.decode(text).map_err(|_| BundleError::Malformed { reason: format!("`{field}` is not standard base64") })
}

/// Checks that `manifest` is a referrer of `digest` whose one layer is `envelope`.
fn check_manifest(which: &'static str, manifest: &[u8], envelope: &[u8], digest: &Digest) -> Result<(), BundleError> {
    let bad = |reason: String| BundleError::Manifest { which, reason };
    let parsed = Manifest::parse(Some(OCI_MANIFEST), manifest, &ManifestLimits::default())
        .map_err(|e| bad(format!("is not an OCI image manifest: {e}")))?;
    if parsed.subject.as_ref().map(|s| &s.digest) != Some(digest) {
        return Err(bad(format!("is not a referrer of `{digest}`")));
    }
    let envelope_digest = Digest::of(envelope);
    match parsed.entries.as_slice() {
        [layer] if layer.digest == envelope_digest => Ok(()),
        _ => Err(bad(format!("does not carry the envelope `{envelope_digest}` as its one layer"))),
    }
}

/// Verifies a release bundle with nothing but the release key and the log's verifier key.
pub fn verify_bundle(bytes: &[u8], release_key: &PublicKey, log_key: &Verifier) -> Result<VerifiedBundle, BundleError> {
    // 1. The document is a version 1 bundle, within the size limit, naming a repository and a
    //    digest.
    if bytes.len() > BUNDLE_MAX_BYTES {
        return Err(BundleError::TooLarge { max: BUNDLE_MAX_BYTES });
    }
    let bundle: ReleaseBundle =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed { reason: e.to_string() })?;
    if bundle.media_type != RELEASE_BUNDLE_MEDIA_TYPE {
        return Err(BundleError::MediaType { found: airlock_model::echo::echo(&bundle.media_type) });
    }
    let repository = RepoName::parse(&bundle.repository)
        .map_err(|e| BundleError::Malformed { reason: format!("`repository`: {e}") })?;
    let digest =
        Digest::parse(&bundle.digest).map_err(|e| BundleError::Malformed { reason: format!("`digest`: {e}") })?;

    // 2. The release record is signed by the release key (DSSE over the envelope's bytes as
    //    received), is a promotion statement about the digest, into the bundle's repository, for
    //    the bundle's promotion.
    let record_envelope = decode("releaseRecord.envelope", &bundle.release_record.envelope)?;
    let record = verify_record(&record_envelope, release_key, &digest, repository.stage().as_str())
        .map_err(BundleError::Record)?;
    if record.target_repository != repository.as_str() {
        return Err(BundleError::RecordNamesOther {
            what: "repository",
            found: airlock_model::echo::echo(&record.target_repository),
            expected: repository.to_string(),
        });
    }
    if record.promotion != bundle.promotion {
        return Err(BundleError::RecordNamesOther {
            what: "promotion",
            found: airlock_model::echo::echo(&record.promotion),
            expected: airlock_model::echo::echo(&bundle.promotion),
        });
    }

    // 3. The VSA is signed by the release key, is about the digest in the repository, and
    //    says PASSED (a break-glass record says the gates were passed over).
    let summary_envelope = decode("verificationSummary.envelope", &bundle.verification_summary.envelope)?;
    let vsa = verify_statement(&summary_envelope, release_key, &digest, VSA_PREDICATE)
        .map_err(|e| BundleError::Summary { reason: e.to_string() })?;
    let resource = format!("{repository}@{digest}");
    if vsa.get("resourceUri").and_then(Value::as_str) != Some(resource.as_str()) {
        return Err(BundleError::Summary { reason: format!("its `resourceUri` is not `{resource}`") });
    }
    if vsa.get("verificationResult").and_then(Value::as_str) != Some("PASSED") && !record.break_glass {
        return Err(BundleError::Summary { reason: "it does not say PASSED".to_owned() });
    }

    // 4. Each envelope is the one layer of its referrer manifest, whose subject is the digest:
    //    the manifest digests are what the commit event names.
    let record_manifest = decode("releaseRecord.manifest", &bundle.release_record.manifest)?;
    check_manifest("release record", &record_manifest, &record_envelope, &digest)?;
    let summary_manifest = decode("verificationSummary.manifest", &bundle.verification_summary.manifest)?;
    check_manifest("verification summary", &summary_manifest, &summary_envelope, &digest)?;
    let release_record = Digest::of(&record_manifest);
    let summary = Digest::of(&summary_manifest);

    // 5. The log entry sits at the index the release record names and is this promotion's
    //    `promotion.commit` event for the digest, naming both manifests and the repository.
    let index = bundle.log_entry.index;
    let entry = |reason: String| BundleError::Entry { index, reason };
    if index != record.log_index {
        return Err(entry(format!("the release record names log entry {}", record.log_index)));
    }
    let leaf = decode("logEntry.leaf", &bundle.log_entry.leaf)?;
    commit_entry_matches(&leaf, &record.promotion, release_record.as_str(), &digest).map_err(entry)?;
    let event: Value = serde_json::from_slice(&leaf).map_err(|e| entry(format!("is not JSON: {e}")))?;
    if event.pointer("/details/summary").and_then(Value::as_str) != Some(summary.as_str()) {
        return Err(entry(format!("names another verification summary than `{summary}`")));
    }
    if event.pointer("/details/target").and_then(Value::as_str) != Some(repository.as_str()) {
        return Err(entry(format!("promotes into another repository than `{repository}`")));
    }

    // 6. The checkpoint is a signed note verified by the log key (C2SP signed-note), whose
    //    origin is the key's name and the log the release record names.
    let checkpoint = Checkpoint::open(bundle.checkpoint.as_bytes(), log_key)
        .map_err(|e| BundleError::Checkpoint { reason: format!("does not verify with the log key: {e}") })?;
    if checkpoint.origin != log_key.name() {
        return Err(BundleError::Checkpoint {
            reason: format!(
                "its origin `{}` is not the log key's name `{}`",
                airlock_model::echo::echo(&checkpoint.origin),
                log_key.name()
            ),
        });
    }
    let named = record.predicate.pointer("/log/origin").and_then(Value::as_str).unwrap_or_default();
    if named != checkpoint.origin {
        return Err(BundleError::Checkpoint {
            reason: format!(
                "the release record names log `{}`, not `{}`",
                airlock_model::echo::echo(named),
                checkpoint.origin
            ),
        });
    }

    // 7. The leaf hash and the inclusion proof reach the checkpoint's root (RFC 9162 §2.1.3.2).
    let size = checkpoint.size;
    let inclusion = |reason: String| BundleError::Inclusion { index, size, reason };
    if bundle.inclusion_proof.tree_size != size {
        return Err(inclusion(format!("the proof is for a tree of {}", bundle.inclusion_proof.tree_size)));
    }
    if bundle.inclusion_proof.hashes.len() > PROOF_MAX_HASHES {
        return Err(inclusion(format!("the proof has more than {PROOF_MAX_HASHES} hashes")));
    }
    let proof = bundle
        .inclusion_proof
        .hashes
        .iter()
        .map(|h| Hash::from_base64(h).map_err(|e| inclusion(format!("a proof hash is invalid: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(&leaf_hash(&leaf), index, size, &proof, &checkpoint.root).map_err(|e| inclusion(e.to_string()))?;

    Ok(VerifiedBundle {
        repository,
        digest,
        record,
        release_record,
        checkpoint_size: size,
        log_origin: checkpoint.origin,
    })
}

/// The size of a signed checkpoint, read without verifying it (the server reads its own).
fn checkpoint_size(note: &str) -> Result<u64, PromotionError> {
    let seal = |e: String| PromotionError::Seal(format!("the stored checkpoint does not parse: {e}"));
    let note = Note::parse(note.as_bytes()).map_err(|e| seal(e.to_string()))?;
    Ok(Checkpoint::parse(&note.text).map_err(|e| seal(e.to_string()))?.size)
}

impl Promoter {
    /// The bundle proving the newest promotion of `digest` into `repo`, with an inclusion proof
    /// into the tree of the signed checkpoint `checkpoint`.
    pub async fn release_bundle(
        &self,
        repo: &RepoName,
        digest: &Digest,
        checkpoint: &str,
    ) -> Result<ReleaseBundle, PromotionError> {
        self.registry.stage_of(repo)?;
        let filter = PromotionFilter {
            status: Some(PromotionStatus::Promoted),
            target: Some(repo.clone()),
            digest: Some(digest.clone()),
            limit: 1,
        };
        let promotion =
            self.promotions.promotions(&filter).await?.into_iter().next().ok_or_else(|| PromotionError::NotFound {
                message: format!("`{digest}` was never promoted into `{repo}`; check the stage and the digest"),
            })?;
        self.bundle_of(&promotion, checkpoint).await
    }

    async fn bundle_of(&self, promotion: &PromotionRecord, checkpoint: &str) -> Result<ReleaseBundle, PromotionError> {
        let missing = |what: &str| PromotionError::Seal(format!("promotion `{}` has no stored {what}", promotion.id));
        let (Some(index), Some(release), Some(summary)) =
            (promotion.log_index, &promotion.release_digest, &promotion.summary_digest)
        else {
            return Err(missing("release record"));
        };
        let size = checkpoint_size(checkpoint)?;
        if index >= size {
            return Err(PromotionError::Conflict {
                message: format!(
                    "no signed checkpoint covers log entry {index} of promotion `{}` yet; ask again in a second",
                    promotion.id
                ),
            });
        }
        let leaf = self
            .log
            .log_leaves(index, index.saturating_add(1))
            .await
            .map_err(RegistryError::from)?
            .into_iter()
            .next()
            .ok_or_else(|| missing("log entry"))?;
        let plan = airlock_tlog::inclusion_plan(index, size).map_err(|e| PromotionError::Seal(e.to_string()))?;
        let ids: Vec<airlock_tlog::NodeId> = plan.iter().flatten().copied().collect();
        let found = self.log.log_nodes(&ids).await.map_err(RegistryError::from)?;
        let lookup: std::collections::HashMap<airlock_tlog::NodeId, Hash> =
            ids.iter().zip(found).filter_map(|(id, h)| h.map(|h| (*id, h))).collect();
        let proof = airlock_tlog::assemble(&plan, |id| lookup.get(&id).copied())
            .map_err(|e| PromotionError::Seal(format!("cannot prove log entry {index}: {e}")))?;
        Ok(ReleaseBundle {
            media_type: RELEASE_BUNDLE_MEDIA_TYPE.to_owned(),
            repository: promotion.target.to_string(),
            digest: promotion.digest.to_string(),
            promotion: promotion.id.clone(),
            release_record: self.signed_referrer(&promotion.target, release).await?.ok_or_else(|| missing("record"))?,
            verification_summary: self
                .signed_referrer(&promotion.target, summary)
                .await?
                .ok_or_else(|| missing("summary"))?,
            log_entry: BundleLogEntry { index, leaf: STANDARD.encode(&leaf.data) },
            inclusion_proof: BundleProof { tree_size: size, hashes: proof.iter().map(Hash::to_base64).collect() },
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// A referrer manifest in `repo` and the DSSE envelope that is its one layer, as stored.
    async fn signed_referrer(
        &self,
        repo: &RepoName,
        manifest: &Digest,
    ) -> Result<Option<SignedReferrer>, PromotionError> {
        let Some(record) = self.manifests.manifest_by_digest(repo, manifest).await? else { return Ok(None) };
        let Ok(parsed) = Manifest::parse(Some(&record.media_type), &record.body, &ManifestLimits::default()) else {
            return Ok(None);
        };
        let Some(layer) = parsed.entries.first() else { return Ok(None) };
        let Some(envelope) = self.blobs.blob_in_repo(repo, &layer.digest).await?.and_then(|b| b.inline) else {
            return Ok(None);
        };
        Ok(Some(SignedReferrer { manifest: STANDARD.encode(&record.body), envelope: STANDARD.encode(&envelope) }))
    }

    /// After the checkpoint `checkpoint` is signed, attaches a release bundle as a referrer of
    /// each digest whose `promotion.commit` event lies in `[from, size)`: the first moment a
    /// signed tree includes the commit. Returns the new `from` (the checkpoint's size).
    pub async fn attach_release_bundles(&self, checkpoint: &str, from: u64) -> Result<u64, PromotionError> {
        let size = checkpoint_size(checkpoint)?;
        let start = from.max(size.saturating_sub(ATTACH_SCAN_MAX));
        if start > from && from > 0 {
            tracing::warn!(from, start, "more log entries since the last checkpoint than are scanned for commits");
        }
        if start >= size {
            return Ok(size.max(from));
        }
        let leaves = self.log.log_leaves(start, size).await.map_err(RegistryError::from)?;
        for leaf in leaves {
            let Ok(event) = serde_json::from_slice::<Value>(&leaf.data) else { continue };
            if event.get("type").and_then(Value::as_str) != Some(EventKind::PromotionCommit.as_str()) {
                continue;
            }
            let Some(id) = event.pointer("/details/promotion").and_then(Value::as_str) else { continue };
            let Some(promotion) = self.promotions.promotion(id).await? else { continue };
            if promotion.log_index != Some(leaf.index) || self.has_bundle(&promotion).await? {
                continue;
            }
            match self.attach_bundle(&promotion, checkpoint).await {
                Ok(_) => {}
                Err(e) => tracing::warn!(promotion = id, error = %e, "cannot attach the release bundle"),
            }
        }
        Ok(size)
    }

    /// Whether the target repository holds a bundle referrer for `promotion` already.
    async fn has_bundle(&self, promotion: &PromotionRecord) -> Result<bool, PromotionError> {
        let referrers =
            self.manifests.referrers(&promotion.target, &promotion.digest, Some(RELEASE_BUNDLE_MEDIA_TYPE)).await?;
        Ok(referrers.iter().any(|r| {
            serde_json::from_str::<Value>(&r.annotations_json)
                .is_ok_and(|a| a.get(PROMOTION_ANNOTATION).and_then(Value::as_str) == Some(promotion.id.as_str()))
        }))
    }

    /// Builds the bundle of `promotion` against `checkpoint` and stores it as a referrer of the
    /// promoted digest in the target repository, logged. `None` when one is attached already.
    pub async fn attach_bundle(
        &self,
        promotion: &PromotionRecord,
        checkpoint: &str,
    ) -> Result<Option<u64>, PromotionError> {
        let bundle = self.bundle_of(promotion, checkpoint).await?;
        let bytes = Bytes::from(serde_json::to_vec(&bundle).map_err(|e| PromotionError::Seal(e.to_string()))?);
        let subject =
            self.manifests.manifest_by_digest(&promotion.target, &promotion.digest).await?.ok_or_else(|| {
                PromotionError::Missing {
                    id: promotion.id.clone(),
                    repo: promotion.target.clone(),
                    digest: promotion.digest.clone(),
                }
            })?;
        let now = self.clock.now();
        let manifest = bundle_referrer(promotion, &subject.media_type, subject.body.len(), bytes, &now.to_rfc3339())
            .map_err(PromotionError::Seal)?;
        let event = Event::allowed(
            EventKind::PromotionBundleAttach,
            &Actor::system(),
            now,
            Subject { repository: Some(promotion.target.clone()), digest: Some(promotion.digest.clone()), tag: None },
        )
        .with_detail("promotion", json!(promotion.id))
        .with_detail("referrer", json!(manifest.manifest.digest.as_str()))
        .with_detail("log_index", json!(promotion.log_index));
        let attached = self.bundles.attach_release_bundle(&promotion.target, &manifest, &event, now).await?;
        if attached.is_some() {
            self.registry.notify_log();
        }
        Ok(attached)
    }
}

/// The bundle as a referrer manifest of the promoted digest, its one layer stored inline.
fn bundle_referrer(
    promotion: &PromotionRecord,
    subject_media_type: &str,
    subject_size: usize,
    bundle: Bytes,
    created: &str,
) -> Result<EngineManifest, String> {
    let config = Bytes::from_static(EMPTY_CONFIG);
    let config_digest = Digest::of(&config);
    let bundle_digest = Digest::of(&bundle);
    let annotations = json!({
        PREDICATE_ANNOTATION: RELEASE_BUNDLE_MEDIA_TYPE,
        PROMOTION_ANNOTATION: promotion.id,
        REPOSITORY_ANNOTATION: promotion.target.as_str(),
        "org.opencontainers.image.created": created,
    });
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": RELEASE_BUNDLE_MEDIA_TYPE,
        "config": {"mediaType": airlock_model::manifest::OCI_EMPTY, "digest": config_digest.as_str(), "size": config.len()},
        "layers": [{"mediaType": RELEASE_BUNDLE_MEDIA_TYPE, "digest": bundle_digest.as_str(), "size": bundle.len()}],
        "subject": {"mediaType": subject_media_type, "digest": promotion.digest.as_str(), "size": subject_size},
        "annotations": annotations,
    });
    let body = Bytes::from(serde_json::to_vec(&body).map_err(|e| e.to_string())?);
    Ok(EngineManifest {
        manifest: NewManifest {
            digest: Digest::of(&body),
            media_type: OCI_MANIFEST.to_owned(),
            body,
            artifact_type: Some(RELEASE_BUNDLE_MEDIA_TYPE.to_owned()),
            subject: Some(promotion.digest.clone()),
            annotations_json: annotations.to_string(),
            required_blobs: vec![config_digest.clone(), bundle_digest.clone()],
            required_manifests: Vec::new(),
            attestation: None,
        },
        blobs: vec![(config_digest, config), (bundle_digest, bundle)],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use airlock_dsse::{Algorithm, PrivateKey};
    use airlock_tlog::Signer;

    fn check(bytes: &[u8]) -> String {
        let release = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let log = Signer::from_seed("example.com/log", [7; 32]).unwrap().verifier();
        match verify_bundle(bytes, release.public_key(), &log) {
            Ok(v) => format!("ok {}", v.digest),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn an_oversized_bundle_is_refused_before_parsing() {
        let huge = vec![b' '; BUNDLE_MAX_BYTES.saturating_add(1)];
        assert_eq!(check(&huge), format!("step 1, format: the bundle is larger than {BUNDLE_MAX_BYTES} bytes"));
    }

    #[test]
    fn a_bundle_of_another_version_is_refused() {
        let bundle = ReleaseBundle {
            media_type: "application/vnd.airlock.release-bundle.v2+json".to_owned(),
            repository: "prod/app".to_owned(),
            digest: format!("sha256:{}", "0".repeat(64)),
            promotion: "prm-1".to_owned(),
            release_record: SignedReferrer { manifest: String::new(), envelope: String::new() },
            verification_summary: SignedReferrer { manifest: String::new(), envelope: String::new() },
            log_entry: BundleLogEntry { index: 0, leaf: String::new() },
            inclusion_proof: BundleProof { tree_size: 1, hashes: Vec::new() },
            checkpoint: String::new(),
        };
        let bytes = serde_json::to_vec(&bundle).unwrap();
        assert_eq!(
            check(&bytes),
            "step 1, format: media type `application/vnd.airlock.release-bundle.v2+json` is not `application/vnd.airlock.release-bundle.v1+json`"
        );
        let mut unknown: Value = serde_json::from_slice(&bytes).unwrap();
        unknown["extra"] = json!(1);
        assert!(
            check(&serde_json::to_vec(&unknown).unwrap())
                .starts_with("step 1, format: the bundle is malformed: unknown field `extra`")
        );
    }
}
