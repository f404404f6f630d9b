//! Where a digest was promoted, with the proof: each promotion into a repository, its signed
//! release record and summary as stored, and whether they verify with the release key and match
//! the log entry they name.

use airlock_model::manifest::{Manifest, ManifestLimits};
use airlock_model::{Digest, RepoName};
use bytes::Bytes;

use crate::ports::{PromotionFilter, PromotionRecord, PromotionStatus};
use crate::promotion::record::{VSA_PREDICATE, VerifiedRecord, verify_record, verify_statement};
use crate::promotion::{Promoter, PromotionError};
use crate::registry::RegistryError;
use serde_json::Value;

/// Most promotions of one digest into one repository reported.
pub const HISTORY_MAX: u32 = 100;

/// One promotion of a digest into a repository, with its release record.
#[derive(Debug, Clone)]
pub struct ReleaseProof {
    pub promotion: PromotionRecord,
    /// The DSSE envelope of the release record, as stored.
    pub record: Option<Bytes>,
    /// The DSSE envelope of the verification summary, as stored.
    pub summary: Option<Bytes>,
    /// What the record says, when it verifies with the release key and matches its log entry.
    pub verified: Result<VerifiedRecord, String>,
}

impl Promoter {
    /// The promotions of `digest` into `repo`, newest first, each checked.
    pub async fn history(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<ReleaseProof>, PromotionError> {
        self.registry.stage_of(repo)?;
        let filter = PromotionFilter {
            status: Some(PromotionStatus::Promoted),
            target: Some(repo.clone()),
            digest: Some(digest.clone()),
            limit: HISTORY_MAX,
        };
        let mut proofs = Vec::new();
        for promotion in self.promotions.promotions(&filter).await? {
            let record = match &promotion.release_digest {
                Some(d) => self.envelope_of(repo, d).await?,
                None => None,
            };
            let summary = match &promotion.summary_digest {
                Some(d) => self.envelope_of(repo, d).await?,
                None => None,
            };
            let verified = self.check(&promotion, record.as_deref(), summary.as_deref()).await?;
            proofs.push(ReleaseProof { promotion, record, summary, verified });
        }
        Ok(proofs)
    }

    /// The DSSE envelope a referrer manifest in `repo` carries.
    async fn envelope_of(&self, repo: &RepoName, manifest: &Digest) -> Result<Option<Bytes>, PromotionError> {
        let Some(record) = self.manifests.manifest_by_digest(repo, manifest).await? else { return Ok(None) };
        let Ok(parsed) = Manifest::parse(Some(&record.media_type), &record.body, &ManifestLimits::default()) else {
            return Ok(None);
        };
        let Some(layer) = parsed.entries.first() else { return Ok(None) };
        Ok(self.blobs.blob_in_repo(repo, &layer.digest).await?.and_then(|b| b.inline))
    }

    async fn check(
        &self,
        promotion: &PromotionRecord,
        record: Option<&[u8]>,
        summary: Option<&[u8]>,
    ) -> Result<Result<VerifiedRecord, String>, PromotionError> {
        let key = self.release_key();
        let stage = promotion.target.stage().as_str();
        let Some(record) = record else { return Ok(Err("the release record is missing".to_owned())) };
        let verified = match verify_record(record, key, &promotion.digest, stage) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if verified.promotion != promotion.id || verified.target_repository != promotion.target.as_str() {
            return Ok(Err("the release record names another promotion".to_owned()));
        }
        match summary.map(|s| verify_statement(s, key, &promotion.digest, VSA_PREDICATE)) {
            // A break-glass promotion passed failing gates; its summary says so.
            Some(Ok(vsa))
                if vsa.get("verificationResult").and_then(Value::as_str) == Some("PASSED") || verified.break_glass => {}
            Some(Ok(_)) => return Ok(Err("the verification summary does not say PASSED".to_owned())),
            Some(Err(e)) => return Ok(Err(format!("verification summary: {e}"))),
            None => return Ok(Err("the verification summary is missing".to_owned())),
        }
        let index = verified.log_index;
        let leaves = self.log.log_leaves(index, index.saturating_add(1)).await.map_err(RegistryError::from)?;
        let Some(leaf) = leaves.first() else {
            return Ok(Err(format!("log entry {index} named by the release record does not exist")));
        };
        let release = promotion.release_digest.as_ref().map_or("", Digest::as_str);
        Ok(match commit_entry_matches(&leaf.data, &promotion.id, release, &promotion.digest) {
            Ok(()) => Ok(verified),
            Err(why) => Err(format!("log entry {index}: {why}")),
        })
    }
}

/// Whether the leaf bytes are the commit event of promotion `id` of `digest`, naming release
/// record `release`.
pub fn commit_entry_matches(leaf: &[u8], id: &str, release: &str, digest: &Digest) -> Result<(), String> {
    let event: serde_json::Value = serde_json::from_slice(leaf).map_err(|e| format!("is not JSON: {e}"))?;
    if event.get("type").and_then(Value::as_str) != Some("promotion.commit") {
        return Err(format!(
            "is a `{}` event, not `promotion.commit`",
            event.get("type").and_then(Value::as_str).unwrap_or("?")
        ));
    }
    if event.pointer("/details/promotion").and_then(Value::as_str) != Some(id)
        || event.pointer("/details/release_record").and_then(Value::as_str) != Some(release)
        || event.pointer("/subject/digest").and_then(Value::as_str) != Some(digest.as_str())
    {
        return Err("names another promotion, release record or digest".to_owned());
    }
    Ok(())
}
