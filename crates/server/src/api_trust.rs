//! `/api/v1/trust/root` and `/api/v1/artifacts/{repo}/{digest}/evidence`: the trust root's
//! versions, changing it, and an artifact's attestations re-verified against the root in force.
//!
//! Changing the root takes two things: an authenticated principal allowed `trust.sign` (a key
//! admin), checked before the body is read, for accountability; and the document's root-key
//! signatures, which stay the authority. Nobody installs the first root anonymously, and no
//! principal applies more than [`TRUST_ROOT_APPLIES_PER_MINUTE`] documents a minute: every apply,
//! refused or not, is a log entry.

use std::collections::BTreeMap;

use airlock_access::authz::{Action, Resource};
use airlock_api::v1 as api;
use airlock_model::{Digest, RepoName};
use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::header;

use crate::app::AppState;
use crate::convert::to_api;
use crate::error::{ApiCode, ApiError};
use crate::extract::{ApiCaller, ArtifactReader, Limit, Unread, invalid_artifact_path};

/// Trust root documents one principal may apply in a minute (a burst of as many, then one every
/// `60 / N` s). A ceremony applies one or two; the bound keeps a stolen key admin's credentials
/// from flooding the log with refusals.
pub const TRUST_ROOT_APPLIES_PER_MINUTE: u32 = 10;

/// `GET /api/v1/trust/root[?version=N]`: the document exactly as applied.
#[utoipa::path(
    get,
    operation_id = "trust_get_root",
    path = "/api/v1/trust/root",
    tag = "trust",
    params(("version" = Option<u64>, Query, description = "The version, the current one when left out")),
    responses(
        (status = 200, description = "The document exactly as applied", body = api::TrustRootDocument),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn get_root(
    State(app): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let store = app.registry.store();
    let stored = match query.get("version") {
        Some(v) => {
            let version = v.parse::<u64>().map_err(|_| ApiError::BadParameter {
                message: format!("`version` must be a whole number, got `{}`", v.chars().take(40).collect::<String>()),
                remediation: "pass `?version=<n>`, or leave it out for the current root".to_owned(),
            })?;
            store.root_version(version).await?
        }
        None => store.latest_root().await?,
    };
    let stored = stored.ok_or_else(|| {
        ApiError::NotFound(
            "no such trust root; create the first with `airlock trust init` and `airlock trust apply`".to_owned(),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from(stored.document)).into_response())
}

/// `PUT /api/v1/trust/root`: apply version N+1 (or the first root), as a principal allowed
/// `trust.sign`. An anonymous request is refused with 401, a principal without the duty with
/// 403, both before the body is read.
#[utoipa::path(
    put,
    operation_id = "trust_put_root",
    path = "/api/v1/trust/root",
    tag = "trust",
    request_body(content = api::TrustRootDocument, description = "The signed document; its signatures are checked over these bytes", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::TrustRootApplied),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn put_root(
    State(app): State<AppState>,
    ApiCaller { caller, source, request_id }: ApiCaller,
    body: Unread,
) -> Result<Json<api::TrustRootApplied>, ApiError> {
    app.callers.require(&caller, Action::TrustSign, &Resource::TrustRoot, &source, &request_id).await?;
    app.root_applies.take(caller.id.as_str()).map_err(|retry_after_secs| ApiError::Throttled {
        message: format!(
            "`{}` applied {TRUST_ROOT_APPLIES_PER_MINUTE} trust root documents in the last minute, the most one principal may",
            caller.id
        ),
        remediation: format!("wait {retry_after_secs} s, then apply the document again"),
        retry_after_secs,
    })?;
    let actor = caller.actor(&request_id);
    // The document's own bytes: its signatures are checked over them, never a re-serialization.
    let document = body.bytes(&app, Limit::TrustRoot).await?;
    match app.registry.update_root(&actor, document).await {
        Ok(version) => {
            crate::policy::recheck_trust(&app, &actor).await?;
            Ok(Json(api::TrustRootApplied { version }))
        }
        Err(airlock_core::RegistryError::TrustRootInvalid { reason }) => Err(ApiError::Rejected {
            code: ApiCode::TrustRootRefused,
            message: format!("trust root refused: {reason}"),
            remediation: "propose version N+1 with `airlock trust propose`, sign it with a threshold of the current and the new root keys (`airlock trust sign`), then apply it".to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// What an artifact route serves; the repository holds slashes, so one catch-all route
/// dispatches on the method and the last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactRoute {
    Evidence,
    PolicyInput,
    Evaluate,
    Promotions,
    ReleaseBundle,
}

/// The routes under `/api/v1/artifacts/{repository}/{digest}/`: method, last segment, route.
pub const ARTIFACT_ROUTES: &[(&str, &str, ArtifactRoute)] = &[
    ("GET", "evidence", ArtifactRoute::Evidence),
    ("GET", "policy-input", ArtifactRoute::PolicyInput),
    ("POST", "evaluate", ArtifactRoute::Evaluate),
    ("GET", "promotions", ArtifactRoute::Promotions),
    ("GET", "release-bundle", ArtifactRoute::ReleaseBundle),
];

/// `/api/v1/artifacts/{repo}/{digest}/{evidence|policy-input|evaluate|promotions|release-bundle}`,
/// as [`ARTIFACT_ROUTES`] says.
pub async fn artifacts(
    State(app): State<AppState>,
    method: http::Method,
    Query(query): Query<BTreeMap<String, String>>,
    ArtifactReader { repo, digest, action, rest, caller, source, request_id }: ArtifactReader,
) -> Result<Response, ApiError> {
    let invalid = || invalid_artifact_path(&rest);
    // Named as the gates name it: the input shown is the one they evaluate.
    let requester = airlock_core::policy_input::Requester::of(&caller.id, caller.kind);
    let route = ARTIFACT_ROUTES
        .iter()
        .find(|(m, a, _)| *m == method.as_str() && *a == action.as_str())
        .map(|(_, _, route)| *route)
        .ok_or_else(invalid)?;
    match route {
        ArtifactRoute::Evidence => Ok(evidence(&app, &repo, &digest).await?.into_response()),
        ArtifactRoute::Promotions => {
            let proofs = app.promoter.history(&repo, &digest).await?;
            Ok(Json(to_api::history(app.promoter.release_key(), &repo, &digest, &proofs)).into_response())
        }
        ArtifactRoute::ReleaseBundle => crate::api_release::release_bundle(&app, &repo, &digest).await,
        ArtifactRoute::PolicyInput => {
            let target = target_stage(&app, &query)?;
            let input = app.registry.policy_input(&repo, &digest, &target, &requester).await?;
            let input = to_api::policy_input(&input).map_err(|e| ApiError::Internal(format!("policy input: {e}")))?;
            Ok(Json(input).into_response())
        }
        ArtifactRoute::Evaluate => {
            let target = target_stage(&app, &query)?;
            // A dry run costs what a promotion request costs: only those who may ask for one,
            // and at a bounded rate each. The engine decides access on the evidence it gathers.
            let target_repo = repo.in_stage(&target);
            let access =
                crate::caller::EngineAccess::promote_request(&app.callers, &caller, &target_repo, &source, &request_id);
            let engine_caller = crate::api_promotion::engine_caller(&app, &caller, &source, &request_id);
            // Charged first: gathering the evidence the decision reads is already work.
            app.evaluations.take(caller.id.as_str()).map_err(|retry_after_secs| ApiError::Throttled {
                message: format!("`{}` asked for too many dry-run evaluations", caller.id),
                remediation: format!(
                    "wait {retry_after_secs} s; each principal may run {} a minute (config key `limits.evaluations_per_minute`)",
                    app.evaluations_per_minute
                ),
                retry_after_secs,
            })?;
            let decision = app.promoter.dry_run(&engine_caller, &access, &repo, &digest, &target).await?;
            Ok(([(header::CONTENT_TYPE, "application/json")], decision).into_response())
        }
    }
}

fn target_stage(app: &AppState, query: &BTreeMap<String, String>) -> Result<airlock_model::StageName, ApiError> {
    let to = query.get("to").ok_or_else(|| ApiError::BadParameter {
        message: "`to` is required".to_owned(),
        remediation: "add `?to=<stage>`, for example `?to=staging`".to_owned(),
    })?;
    let stage = airlock_model::StageName::parse(to).map_err(|e| ApiError::BadParameter {
        message: e.to_string(),
        remediation: "name a configured stage".to_owned(),
    })?;
    if app.registry.stages().get(&stage).is_none() {
        return Err(ApiError::BadParameter {
            message: format!("stage `{stage}` is not configured"),
            remediation: format!("use one of: {}", app.registry.stages().describe()),
        });
    }
    Ok(stage)
}

/// An artifact's attestations, re-verified against the root in force.
async fn evidence(app: &AppState, repo: &RepoName, digest: &Digest) -> Result<Json<api::Evidence>, ApiError> {
    let items = app.registry.evidence(repo, digest).await?;
    let root_version = app.registry.trust().current().map(|r| r.version());
    Ok(Json(to_api::evidence(repo, digest, root_version, &items)))
}
