//! `GET /api/v1/artifacts/{repo}/{digest}/release-bundle`: the release bundle of the newest
//! promotion of a digest into a repository, built in one request against the latest signed
//! checkpoint (`docs/release-bundle.md`). Read by whoever may pull the repository, like
//! `/promotions`; the bundle proves itself to anyone holding the release and log keys.

use airlock_core::promotion::bundle::RELEASE_BUNDLE_MEDIA_TYPE;
use airlock_model::{Digest, RepoName};
use axum::response::{IntoResponse, Response};
use http::header;

use crate::app::AppState;
use crate::error::ApiError;

/// Builds the bundle; the caller has been allowed to pull `repo`.
pub async fn release_bundle(app: &AppState, repo: &RepoName, digest: &Digest) -> Result<Response, ApiError> {
    let checkpoint = app.log.store_latest().await?.ok_or_else(|| ApiError::Conflict {
        message: "no log checkpoint has been signed yet".to_owned(),
        remediation: "ask again in a second, once the checkpointer has signed one".to_owned(),
    })?;
    let bundle = app.promoter.release_bundle(repo, digest, &checkpoint.note).await?;
    let body = serde_json::to_vec(&bundle).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, RELEASE_BUNDLE_MEDIA_TYPE)], body).into_response())
}
