//! Release bundles on SQLite: the engine's referrer holding a promotion's proof, linked into the
//! target repository with its log event.

use airlock_core::audit::Event;
use airlock_core::ports::{EngineManifest, ReleaseBundleStore, StoreError};
use airlock_core::promotion::bundle::PROMOTION_ANNOTATION;
use airlock_model::{Digest, RepoName, Timestamp};
use async_trait::async_trait;

use super::{SqliteStore, ensure_repo, err};

#[async_trait]
impl ReleaseBundleStore for SqliteStore {
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
        let path = format!("$.\"{PROMOTION_ANNOTATION}\"");
        let attached: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM manifests WHERE repo_id = ? AND subject = ? AND artifact_type IS ? \
             AND json_extract(annotations, ?) = ?",
        )
        .bind(target)
        .bind(m.subject.as_ref().map(Digest::as_str))
        .bind(m.artifact_type.as_deref())
        .bind(&path)
        .bind(promotion)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err(OP))?;
        if attached.is_some() {
            return Ok(None);
        }
        super::insert_engine_manifest(&mut tx, target, bundle, now, OP).await?;
        let indices = self.commit_with_log(tx, std::slice::from_ref(event)).await?;
        Ok(indices.first().copied())
    }
}
