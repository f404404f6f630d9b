//! `/api/v1/stages/{stage}/freeze|unfreeze`, `/api/v1/waivers`, `/api/v1/rollbacks` and
//! `/api/v1/reviews`: what moves a stage outside the normal promotion path. Cedar decides who
//! may ask (`freeze`, `waiver.*`, `rollback`, `audit.read`); the engine applies the rules.

use airlock_access::authz::{Action, Resource};
use airlock_api::v1 as api;
use airlock_core::ports::WaiverRecord;
use airlock_core::promotion::control::{RollbackTo, WaiverRequest, unknown_waiver};
use airlock_model::{Digest, RepoName, StageName, Tag, Timestamp};
use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;

use crate::app::AppState;
use crate::caller::Caller;
use crate::convert::to_api;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson};
use crate::visibility::Visibility;

fn bad(message: String, remediation: &str) -> ApiError {
    ApiError::BadParameter { message, remediation: remediation.to_owned() }
}

/// The engine's identity of the caller.
fn engine(app: &AppState, who: &ApiCaller) -> airlock_core::promotion::Caller {
    crate::api_promotion::engine_caller(app, &who.caller, &who.source, &who.request_id)
}

fn stage_of(app: &AppState, name: &str) -> Result<(StageName, bool), ApiError> {
    let stage = StageName::parse(name).map_err(|e| bad(e.to_string(), "name a configured stage, `prod`"))?;
    let gated = app
        .registry
        .stages()
        .get(&stage)
        .map(|s| !s.pushable())
        .ok_or_else(|| ApiError::NotFound(format!("stage `{stage}` is not configured")))?;
    Ok((stage, gated))
}

/// `POST /api/v1/stages/{stage}/freeze {"reason"}`.
#[utoipa::path(
    post,
    operation_id = "control_freeze",
    path = "/api/v1/stages/{stage}/freeze",
    tag = "control",
    params(("stage" = String, Path, description = "The stage")),
    request_body = api::FreezeRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = api::Freeze),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn freeze(
    State(app): State<AppState>,
    Path(stage): Path<String>,
    api_caller: ApiCaller,
    ApiJson(body): ApiJson<api::FreezeRequest>,
) -> Result<(StatusCode, Json<api::Freeze>), ApiError> {
    let (stage, gated) = stage_of(&app, &stage)?;
    let engine = engine(&app, &api_caller);
    let ApiCaller { caller: who, source, request_id } = api_caller;
    let resource = Resource::Stage { name: stage.to_string(), gated };
    app.callers.require(&who, Action::Freeze, &resource, &source, &request_id).await?;
    let record = app.promoter.freeze(&engine, &stage, &body.reason).await?;
    Ok((StatusCode::CREATED, Json(to_api::freeze(&record))))
}

/// `POST /api/v1/stages/{stage}/unfreeze`: the first call waits for a second, different person.
#[utoipa::path(
    post,
    operation_id = "control_unfreeze",
    path = "/api/v1/stages/{stage}/unfreeze",
    tag = "control",
    params(("stage" = String, Path, description = "The stage")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Unfreeze),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn unfreeze(
    State(app): State<AppState>,
    Path(stage): Path<String>,
    api_caller: ApiCaller,
) -> Result<Json<api::Unfreeze>, ApiError> {
    let (stage, gated) = stage_of(&app, &stage)?;
    let engine = engine(&app, &api_caller);
    let ApiCaller { caller: who, source, request_id } = api_caller;
    let resource = Resource::Stage { name: stage.to_string(), gated };
    app.callers.require(&who, Action::Freeze, &resource, &source, &request_id).await?;
    let done = app.promoter.unfreeze(&engine, &stage).await?;
    Ok(Json(to_api::unfreeze(&stage, done)))
}

/// `GET /api/v1/stages/freezes`: the freezes in force of the stages the caller may see.
#[utoipa::path(
    get,
    operation_id = "control_freezes",
    path = "/api/v1/stages/freezes",
    tag = "control",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<api::Freeze>),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn freezes(State(app): State<AppState>, api_caller: ApiCaller) -> Result<Json<Vec<api::Freeze>>, ApiError> {
    let ApiCaller { caller: who, source, .. } = api_caller;
    let mut visibility = Visibility::new(&app, &who, &source);
    let list = app.promoter.freezes().await?;
    Ok(Json(list.iter().filter(|f| visibility.freeze(&f.stage)).map(to_api::freeze).collect()))
}

/// The waiver `id`, if the caller may see it; one it may not see answers as a missing one.
async fn visible_waiver(app: &AppState, who: &Caller, source: &str, id: &str) -> Result<WaiverRecord, ApiError> {
    let waiver = app.promoter.waiver(id).await?;
    if Visibility::new(app, who, source).waiver(&waiver) {
        return Ok(waiver);
    }
    Err(unknown_waiver(id).into())
}

fn waiver_resource(w: &WaiverRecord) -> Resource {
    Resource::Waiver { id: w.id.clone(), repository: w.repository.clone(), requester_id: w.requester.clone() }
}

/// `POST /api/v1/waivers`.
#[utoipa::path(
    post,
    operation_id = "control_request_waiver",
    path = "/api/v1/waivers",
    tag = "control",
    request_body = api::WaiverRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = api::Waiver),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn request_waiver(
    State(app): State<AppState>,
    api_caller: ApiCaller,
    ApiJson(b): ApiJson<api::WaiverRequest>,
) -> Result<(StatusCode, Json<api::Waiver>), ApiError> {
    let engine = engine(&app, &api_caller);
    let ApiCaller { caller: who, source, request_id } = api_caller;
    let expires_at = Timestamp::parse_rfc3339(&b.expires).ok_or_else(|| {
        bad(
            format!("`expires` `{}` is not an RFC 3339 time", airlock_model::echo::echo(&b.expires)),
            crate::extract::WAIVER_EXAMPLE,
        )
    })?;
    let resource =
        Resource::Waiver { id: String::new(), repository: b.repository.clone(), requester_id: who.id.to_string() };
    app.callers.require(&who, Action::WaiverRequest, &resource, &source, &request_id).await?;
    let spec = WaiverRequest {
        rule: b.rule,
        vulnerability: b.vulnerability,
        component: b.component,
        repository: b.repository,
        expires_at,
        justification: b.justification,
    };
    let waiver = app.promoter.request_waiver(&engine, &spec).await?;
    Ok((StatusCode::CREATED, Json(to_api::waiver(&waiver))))
}

/// `POST /api/v1/waivers/{id}/approve`: another person holding `waiver.approve`, with a fresh
/// second factor.
#[utoipa::path(
    post,
    operation_id = "control_approve_waiver",
    path = "/api/v1/waivers/{id}/approve",
    tag = "control",
    params(("id" = String, Path, description = "The waiver")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Waiver),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn approve_waiver(
    State(app): State<AppState>,
    Path(id): Path<String>,
    api_caller: ApiCaller,
) -> Result<Json<api::Waiver>, ApiError> {
    let engine = engine(&app, &api_caller);
    let ApiCaller { caller: who, source, request_id } = api_caller;
    let current = visible_waiver(&app, &who, &source, &id).await?;
    app.callers.require(&who, Action::WaiverApprove, &waiver_resource(&current), &source, &request_id).await?;
    let waiver = app.promoter.approve_waiver(&engine, &id).await?;
    Ok(Json(to_api::waiver(&waiver)))
}

/// `POST /api/v1/waivers/{id}/revoke`: its requester, or a principal who may approve waivers.
#[utoipa::path(
    post,
    operation_id = "control_revoke_waiver",
    path = "/api/v1/waivers/{id}/revoke",
    tag = "control",
    params(("id" = String, Path, description = "The waiver")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Waiver),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn revoke_waiver(
    State(app): State<AppState>,
    Path(id): Path<String>,
    api_caller: ApiCaller,
) -> Result<Json<api::Waiver>, ApiError> {
    let engine = engine(&app, &api_caller);
    let ApiCaller { caller: who, source, request_id } = api_caller;
    let current = visible_waiver(&app, &who, &source, &id).await?;
    if current.requester != who.id.as_str() {
        app.callers.require(&who, Action::WaiverApprove, &waiver_resource(&current), &source, &request_id).await?;
    }
    let waiver = app.promoter.revoke_waiver(&engine, &id).await?;
    Ok(Json(to_api::waiver(&waiver)))
}

/// `GET /api/v1/waivers`: those the caller may see.
#[utoipa::path(
    get,
    operation_id = "control_waivers",
    path = "/api/v1/waivers",
    tag = "control",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<api::Waiver>),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn waivers(State(app): State<AppState>, api_caller: ApiCaller) -> Result<Json<Vec<api::Waiver>>, ApiError> {
    let ApiCaller { caller: who, source, .. } = api_caller;
    let mut visibility = Visibility::new(&app, &who, &source);
    let list = app.promoter.waivers().await?;
    Ok(Json(list.iter().filter(|w| visibility.waiver(w)).map(to_api::waiver).collect()))
}

/// `POST /api/v1/rollbacks`.
#[utoipa::path(
    post,
    operation_id = "control_rollback",
    path = "/api/v1/rollbacks",
    tag = "control",
    request_body = api::RollbackRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Rollback),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn rollback(
    State(app): State<AppState>,
    api_caller: ApiCaller,
    ApiJson(b): ApiJson<api::RollbackRequest>,
) -> Result<Json<api::Rollback>, ApiError> {
    let engine = engine(&app, &api_caller);
    let ApiCaller { caller: who, source, request_id } = api_caller;
    let repo = RepoName::parse(&b.repository)
        .map_err(|e| bad(format!("`repository`: {e}"), crate::extract::ROLLBACK_EXAMPLE))?;
    let tag = Tag::parse(&b.tag).map_err(|e| bad(format!("`tag`: {e}"), crate::extract::ROLLBACK_EXAMPLE))?;
    let to = match b.to.as_str() {
        "previous" => RollbackTo::Previous,
        d => RollbackTo::Digest(Digest::parse(d).map_err(|e| {
            bad(format!("`to` is neither `previous` nor a digest: {e}"), crate::extract::ROLLBACK_EXAMPLE)
        })?),
    };
    let gated = app.registry.stage_of(&repo)?.pushable();
    let resource =
        Resource::Repository { stage: repo.stage().to_string(), path: repo.path().to_owned(), gated: !gated };
    app.callers.require(&who, Action::Rollback, &resource, &source, &request_id).await?;
    let done = app.promoter.rollback(&engine, &repo, &tag, &to, &b.reason).await?;
    Ok(Json(to_api::rollback(&done)))
}

/// `GET /api/v1/reviews`: break-glass follow-ups; needs `audit.read`, and lists those of the
/// promotions the caller may see.
#[utoipa::path(
    get,
    operation_id = "control_reviews",
    path = "/api/v1/reviews",
    tag = "control",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<api::Review>),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn reviews(State(app): State<AppState>, api_caller: ApiCaller) -> Result<Json<Vec<api::Review>>, ApiError> {
    let ApiCaller { caller: who, source, request_id } = api_caller;
    app.callers.require(&who, Action::AuditRead, &Resource::Log, &source, &request_id).await?;
    let mut visibility = Visibility::new(&app, &who, &source);
    let mut list = Vec::new();
    for review in app.promoter.reviews().await? {
        let promotion = app.registry.store().promotion(&review.promotion).await?;
        if visibility.review(promotion.as_ref()) {
            list.push(to_api::review(&review));
        }
    }
    Ok(Json(list))
}

/// What closing review `id` answers when there is none, or the caller may not see it.
fn unknown_review(id: &str) -> ApiError {
    ApiError::NotFound(format!("no review `{id}`; list them with `airlock review list`"))
}

/// `POST /api/v1/reviews/{id}/close {"note"}`: by someone who may approve the promotion it
/// follows (so never the one who broke the glass).
#[utoipa::path(
    post,
    operation_id = "control_close_review",
    path = "/api/v1/reviews/{id}/close",
    tag = "control",
    params(("id" = String, Path, description = "The review")),
    request_body = api::ReviewClose,
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Review),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn close_review(
    State(app): State<AppState>,
    Path(id): Path<String>,
    api_caller: ApiCaller,
    ApiJson(b): ApiJson<api::ReviewClose>,
) -> Result<Json<api::Review>, ApiError> {
    let engine = engine(&app, &api_caller);
    let ApiCaller { caller: who, source, request_id } = api_caller;
    let review = app.promoter.reviews().await?.into_iter().find(|r| r.id == id).ok_or_else(|| unknown_review(&id))?;
    let promotion = app.promoter.get(&review.promotion).await?.record;
    if !Visibility::new(&app, &who, &source).review(Some(&promotion)) {
        return Err(unknown_review(&id));
    }
    let pusher = app
        .registry
        .store()
        .pusher(&promotion.source, &promotion.digest)
        .await
        .map_err(crate::caller::CallerError::from)?;
    let resource = Resource::Promotion {
        id: promotion.id.clone(),
        repository: promotion.target.path().to_owned(),
        stage: promotion.target.stage().to_string(),
        requester_id: promotion.requester.clone(),
        pushers: pusher.into_iter().collect(),
    };
    app.callers.require(&who, Action::PromoteApprove, &resource, &source, &request_id).await?;
    let closed = app.promoter.close_review(&engine, &id, &b.note).await?;
    Ok(Json(to_api::review(&closed)))
}
