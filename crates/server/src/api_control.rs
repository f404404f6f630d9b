//! `/api/v1/stages/{stage}/freeze|unfreeze`, `/api/v1/waivers`, `/api/v1/rollbacks` and
//! `/api/v1/reviews`: what moves a stage outside the normal promotion path. Cedar decides who
//! may ask (`freeze`, `waiver.*`, `rollback`, `audit.read`); the engine applies the rules.

use airlock_access::authz::{Action, Resource};
use airlock_access::token::TokenKind;
use airlock_core::ports::{FreezeRecord, ReviewRecord, WaiverRecord};
use airlock_core::promotion::control::{RollbackTo, Unfreeze, WaiverRequest};
use airlock_model::{Digest, RepoName, StageName, Tag, Timestamp};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api_auth::origin;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::ApiError;

/// Largest body accepted here.
const BODY_MAX: usize = 16 * 1024;

fn bad(message: String, remediation: &str) -> ApiError {
    ApiError::BadParameter { message, remediation: remediation.to_owned() }
}

async fn body<T: serde::de::DeserializeOwned>(request: Request, example: &str) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(request.into_body(), BODY_MAX)
        .await
        .map_err(|_| bad(format!("the body is larger than {BODY_MAX} bytes"), example))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("the body is not valid JSON for this request: {e}"), example))
}

/// The caller, its engine identity, and the request's source and id.
async fn caller(
    app: &AppState,
    headers: &http::HeaderMap,
    (source, request_id): (String, String),
) -> Result<(Caller, airlock_core::promotion::Caller, String, String), ApiError> {
    let caller = app.auth.caller(headers, TokenKind::Api, None).await?;
    let engine = crate::api_promotion::engine_caller(app, &caller, &source, &request_id);
    Ok((caller, engine, source, request_id))
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

fn freeze_json(f: &FreezeRecord) -> Value {
    json!({
        "stage": f.stage.as_str(),
        "reason": f.reason,
        "frozen_by": f.frozen_by,
        "frozen_at": f.frozen_at.to_rfc3339(),
        "unfreeze_requested_by": f.unfreeze_by,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

/// `POST /api/v1/stages/{stage}/freeze {"reason"}`.
pub async fn freeze(
    State(app): State<AppState>,
    Path(stage): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (stage, gated) = stage_of(&app, &stage)?;
    let (who, engine, source, request_id) = caller(&app, request.headers(), origin(&request)).await?;
    let body: ReasonBody = body(request, r#"{"reason": "incident 42"}"#).await?;
    let resource = Resource::Stage { name: stage.to_string(), gated };
    app.auth.require(&who, Action::Freeze, &resource, &source, &request_id).await?;
    let record = app.promoter.freeze(&engine, &stage, &body.reason).await?;
    Ok((StatusCode::CREATED, Json(freeze_json(&record))).into_response())
}

/// `POST /api/v1/stages/{stage}/unfreeze`: the first call waits for a second, different person.
pub async fn unfreeze(
    State(app): State<AppState>,
    Path(stage): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (stage, gated) = stage_of(&app, &stage)?;
    let (who, engine, source, request_id) = caller(&app, request.headers(), origin(&request)).await?;
    let resource = Resource::Stage { name: stage.to_string(), gated };
    app.auth.require(&who, Action::Freeze, &resource, &source, &request_id).await?;
    let body = match app.promoter.unfreeze(&engine, &stage).await? {
        Unfreeze::Waiting { first } => json!({"stage": stage.as_str(), "frozen": true, "unfreeze_requested_by": first}),
        Unfreeze::Lifted { first, second } => {
            json!({"stage": stage.as_str(), "frozen": false, "lifted_by": [first, second]})
        }
    };
    Ok(Json(body).into_response())
}

/// `GET /api/v1/stages/freezes`.
pub async fn freezes(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    app.auth.caller(&headers, TokenKind::Api, None).await?;
    let list = app.promoter.freezes().await?;
    Ok(Json(list.iter().map(freeze_json).collect::<Vec<_>>()).into_response())
}

fn waiver_view(w: &WaiverRecord) -> Value {
    json!({
        "id": w.id,
        "status": w.state.as_str(),
        "rule": w.rule,
        "vulnerability": w.vulnerability,
        "component": w.component,
        "repository": w.repository,
        "justification": w.justification,
        "requester": w.requester,
        "approver": w.approver,
        "created_at": w.created_at.to_rfc3339(),
        "decided_at": w.decided_at.map(Timestamp::to_rfc3339),
        "expires_at": w.expires_at.to_rfc3339(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverBody {
    rule: String,
    vulnerability: Option<String>,
    component: Option<String>,
    repository: String,
    /// RFC 3339.
    expires: String,
    justification: String,
}

const WAIVER_EXAMPLE: &str = r#"{"rule": "no-critical-vulnerabilities", "vulnerability": "CVE-2026-1234", "repository": "*/payments/api", "expires": "2026-12-31T00:00:00Z", "justification": "not reachable: ..."}"#;

fn waiver_resource(w: &WaiverRecord) -> Resource {
    Resource::Waiver { id: w.id.clone(), repository: w.repository.clone(), requester_id: w.requester.clone() }
}

/// `POST /api/v1/waivers`.
pub async fn request_waiver(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (who, engine, source, request_id) = caller(&app, request.headers(), origin(&request)).await?;
    let b: WaiverBody = body(request, WAIVER_EXAMPLE).await?;
    let expires_at = Timestamp::parse_rfc3339(&b.expires).ok_or_else(|| {
        bad(format!("`expires` `{}` is not an RFC 3339 time", airlock_model::echo::echo(&b.expires)), WAIVER_EXAMPLE)
    })?;
    let resource =
        Resource::Waiver { id: String::new(), repository: b.repository.clone(), requester_id: who.id.to_string() };
    app.auth.require(&who, Action::WaiverRequest, &resource, &source, &request_id).await?;
    let spec = WaiverRequest {
        rule: b.rule,
        vulnerability: b.vulnerability,
        component: b.component,
        repository: b.repository,
        expires_at,
        justification: b.justification,
    };
    let waiver = app.promoter.request_waiver(&engine, &spec).await?;
    Ok((StatusCode::CREATED, Json(waiver_view(&waiver))).into_response())
}

/// `POST /api/v1/waivers/{id}/approve`: another person holding `waiver.approve`, with a fresh
/// second factor.
pub async fn approve_waiver(
    State(app): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (who, engine, source, request_id) = caller(&app, request.headers(), origin(&request)).await?;
    let current = app.promoter.waiver(&id).await?;
    app.auth.require(&who, Action::WaiverApprove, &waiver_resource(&current), &source, &request_id).await?;
    let waiver = app.promoter.approve_waiver(&engine, &id).await?;
    Ok(Json(waiver_view(&waiver)).into_response())
}

/// `POST /api/v1/waivers/{id}/revoke`: its requester, or a principal who may approve waivers.
pub async fn revoke_waiver(
    State(app): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (who, engine, source, request_id) = caller(&app, request.headers(), origin(&request)).await?;
    let current = app.promoter.waiver(&id).await?;
    if current.requester != who.id.as_str() {
        app.auth.require(&who, Action::WaiverApprove, &waiver_resource(&current), &source, &request_id).await?;
    }
    let waiver = app.promoter.revoke_waiver(&engine, &id).await?;
    Ok(Json(waiver_view(&waiver)).into_response())
}

/// `GET /api/v1/waivers`.
pub async fn waivers(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    app.auth.caller(&headers, TokenKind::Api, None).await?;
    let list = app.promoter.waivers().await?;
    Ok(Json(list.iter().map(waiver_view).collect::<Vec<_>>()).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// The gated repository, `prod/app`.
    repository: String,
    tag: String,
    /// `previous`, or a digest promoted there before.
    to: String,
    reason: String,
}

const ROLLBACK_EXAMPLE: &str =
    r#"{"repository": "prod/payments/api", "tag": "1.4.2", "to": "previous", "reason": "incident 42"}"#;

/// `POST /api/v1/rollbacks`.
pub async fn rollback(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (who, engine, source, request_id) = caller(&app, request.headers(), origin(&request)).await?;
    let b: RollbackBody = body(request, ROLLBACK_EXAMPLE).await?;
    let repo = RepoName::parse(&b.repository).map_err(|e| bad(format!("`repository`: {e}"), ROLLBACK_EXAMPLE))?;
    let tag = Tag::parse(&b.tag).map_err(|e| bad(format!("`tag`: {e}"), ROLLBACK_EXAMPLE))?;
    let to = match b.to.as_str() {
        "previous" => RollbackTo::Previous,
        d => RollbackTo::Digest(
            Digest::parse(d)
                .map_err(|e| bad(format!("`to` is neither `previous` nor a digest: {e}"), ROLLBACK_EXAMPLE))?,
        ),
    };
    let gated = app.registry.stage_of(&repo)?.pushable();
    let resource =
        Resource::Repository { stage: repo.stage().to_string(), path: repo.path().to_owned(), gated: !gated };
    app.auth.require(&who, Action::Rollback, &resource, &source, &request_id).await?;
    let done = app.promoter.rollback(&engine, &repo, &tag, &to, &b.reason).await?;
    Ok(Json(json!({
        "repository": done.repository.as_str(),
        "tag": done.tag.as_str(),
        "from": done.from.as_str(),
        "to": done.to.as_str(),
        "log_index": done.log_index,
    }))
    .into_response())
}

fn review_view(r: &ReviewRecord) -> Value {
    json!({
        "id": r.id,
        "promotion": r.promotion,
        "open": r.closed_at.is_none(),
        "opened_at": r.opened_at.to_rfc3339(),
        "closed_by": r.closed_by,
        "closed_at": r.closed_at.map(Timestamp::to_rfc3339),
        "note": r.note,
    })
}

/// `GET /api/v1/reviews`: break-glass follow-ups; needs `audit.read`.
pub async fn reviews(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (who, _, source, request_id) = caller(&app, request.headers(), origin(&request)).await?;
    app.auth.require(&who, Action::AuditRead, &Resource::Log, &source, &request_id).await?;
    let list = app.promoter.reviews().await?;
    Ok(Json(list.iter().map(review_view).collect::<Vec<_>>()).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: String,
}

/// `POST /api/v1/reviews/{id}/close {"note"}`: by someone who may approve the promotion it
/// follows (so never the one who broke the glass).
pub async fn close_review(
    State(app): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (who, engine, source, request_id) = caller(&app, request.headers(), origin(&request)).await?;
    let b: NoteBody = body(request, r#"{"note": "reviewed with the team; the fix shipped in 1.4.3"}"#).await?;
    let review = app
        .promoter
        .reviews()
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no review `{id}`; list them with `airlock review list`")))?;
    let promotion = app.promoter.get(&review.promotion).await?.record;
    let pusher = app
        .registry
        .store()
        .pusher(&promotion.source, &promotion.digest)
        .await
        .map_err(crate::caller::AuthError::from)?;
    let resource = Resource::Promotion {
        id: promotion.id.clone(),
        repository: promotion.target.path().to_owned(),
        stage: promotion.target.stage().to_string(),
        requester_id: promotion.requester.clone(),
        pushers: pusher.into_iter().collect(),
    };
    app.auth.require(&who, Action::PromoteApprove, &resource, &source, &request_id).await?;
    let closed = app.promoter.close_review(&engine, &id, &b.note).await?;
    Ok(Json(review_view(&closed)).into_response())
}
