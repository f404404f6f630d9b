//! Release bundles on SQLite: the engine's referrer holding a promotion's proof, linked into the
//! target repository with its log event.

use airlock_core::audit::Event;
use airlock_core::ports::{EngineManifest, ReleaseBundleStore, StoreError};
use airlock_core::promotion::bundle::PROMOTION_ANNOTATION;
use airlock_model::{Digest, RepoName, Timestamp};
use async_trait::async_trait;

use super::{SqliteStore, ensure_repo, err, to_i64};

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
        for (digest, bytes) in &bundle.blobs {
            sqlx::query(
                "INSERT INTO blobs (digest, size, inline_data, created_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(digest.as_str())
            .bind(to_i64(bytes.len() as u64))
            .bind(bytes.as_ref())
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(err(OP))?;
            sqlx::query("INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
                .bind(target)
                .bind(digest.as_str())
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(err(OP))?;
        }
        sqlx::query(
            "INSERT INTO manifests (repo_id, digest, media_type, body, artifact_type, subject, annotations, created_at, pushed_by) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(target)
        .bind(m.digest.as_str())
        .bind(&m.media_type)
        .bind(m.body.as_ref())
        .bind(m.artifact_type.as_deref())
        .bind(m.subject.as_ref().map(Digest::as_str))
        .bind(&m.annotations_json)
        .bind(now.as_millis())
        .bind(airlock_core::audit::SYSTEM)
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        let indices = self.commit_with_log(tx, std::slice::from_ref(event)).await?;
        Ok(indices.first().copied())
    }
}
