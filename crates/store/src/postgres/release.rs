//! Release bundles on PostgreSQL: the engine's referrer holding a promotion's proof, linked into
//! the target repository with its log event.

use airlock_core::audit::Event;
use airlock_core::ports::{EngineManifest, ReleaseBundleStore, StoreError};
use airlock_core::promotion::bundle::PROMOTION_ANNOTATION;
use airlock_model::{Digest, RepoName, Timestamp};
use async_trait::async_trait;

use super::{PostgresStore, ensure_repo, err};

/// Whether `annotations` (a manifest's annotations, as stored) name `promotion`. Read here, not
/// in SQL, so one manifest with annotations that are not JSON cannot fail the lookup.
fn names_promotion(annotations: &str, promotion: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(annotations)
        .ok()
        .is_some_and(|value| value.get(PROMOTION_ANNOTATION).and_then(|p| p.as_str()) == Some(promotion))
}

#[async_trait]
impl ReleaseBundleStore for PostgresStore {
    async fn attach_release_bundle(
        &self,
        repo: &RepoName,
        bundle: &EngineManifest,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError> {
        const OP: &str = "release bundle attach";
        let m = &bundle.manifest;
        let promotion = event.details.get("promotion").and_then(|p| p.as_str()).unwrap_or_default();
        let mut tx = self.begin(OP).await?;
        let target = ensure_repo(&mut tx, repo, now).await?;
        // One bundle per promotion: a second checkpointer (another replica) finds it attached.
        let siblings: Vec<String> = sqlx::query_scalar(
            "SELECT annotations FROM manifests WHERE repo_id = $1 AND subject = $2 \
             AND artifact_type IS NOT DISTINCT FROM $3",
        )
        .bind(target)
        .bind(m.subject.as_ref().map(Digest::as_str))
        .bind(m.artifact_type.as_deref())
        .fetch_all(&mut *tx)
        .await
        .map_err(err(OP))?;
        if siblings.iter().any(|annotations| names_promotion(annotations, promotion)) {
            return Ok(None);
        }
        super::insert_engine_manifest(&mut tx, target, bundle, now, OP).await?;
        let indices = self.commit_with_log(tx, std::slice::from_ref(event)).await?;
        Ok(indices.first().copied())
    }
}
