//! Just-in-time elevation and two-person changes under `/api/v1/access/requests`: asking,
//! approving, revoking and listing.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::api_login::{api_caller, origin};
use crate::app::AppState;
use crate::caller::CallerError;
use crate::error::ApiError;
use crate::extract::{self, Limit};

/// `POST /api/v1/access/requests` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRequestBody {
    role: String,
    /// Seconds, or a duration like `30m`, `2h`.
    duration: serde_json::Value,
    reason: String,
}

/// `30m`, `2h`, `90s`, or a number of seconds.
fn duration_secs(value: &serde_json::Value) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return Some(n);
    }
    let text = value.as_str()?.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().ok()?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(factor)
}

pub(crate) fn grant_view(grant: &airlock_core::ports::GrantRecord) -> serde_json::Value {
    json!({
        "id": grant.id,
        "kind": grant.kind.as_str(),
        "principal": grant.principal.as_str(),
        "requested_by": grant.requested_by.as_str(),
        "approved_by": grant.approved_by,
        "role": grant.role,
        "reason": grant.reason,
        "duration_secs": grant.duration_secs,
        "status": grant.status.as_str(),
        "requested_at": grant.requested_at.to_rfc3339(),
        "decided_by": grant.decided_by,
        "decided_at": grant.decided_at.map(|t| t.to_rfc3339()),
        "expires_at": grant.expires_at.map(|t| t.to_rfc3339()),
    })
}

/// `POST /api/v1/access/requests`: asks for a role for a while (just-in-time elevation).
pub async fn request_access(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let new: AccessRequestBody = extract::json(
        &app,
        request.into_body(),
        Limit::Action,
        r#"{"role": "deployer", "duration": "30m", "reason": "incident 42"}"#,
    )
    .await?;
    let secs = duration_secs(&new.duration).ok_or_else(|| ApiError::BadParameter {
        message: format!("duration `{}` is not a number of seconds or like `30m`, `2h`", new.duration),
        remediation: "send `\"duration\": \"30m\"`".to_owned(),
    })?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let grant =
        app.callers.identity().request_grant(&acting, &new.role, secs, &new.reason).await.map_err(CallerError::from)?;
    Ok((http::StatusCode::CREATED, Json(grant_view(&grant))).into_response())
}

/// `POST /api/v1/access/requests/{id}/approve`.
pub async fn approve_access(
    State(app): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let approved = app.callers.identity().approve_grant(&acting, &id).await.map_err(CallerError::from)?;
    let mut body = grant_view(&approved.grant);
    if let Some((token, expires)) = approved.enrollment {
        body["enrollment_token"] = json!(token);
        body["enrollment_expires_at"] = json!(expires.to_rfc3339());
    }
    if let Some((key, expires)) = approved.api_key {
        body["api_key"] = json!(key);
        body["api_key_expires_at"] = json!(expires.to_rfc3339());
    }
    Ok(Json(body).into_response())
}

/// `POST /api/v1/access/requests/{id}/revoke`.
pub async fn revoke_access(
    State(app): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let grant = app.callers.identity().revoke_grant(&acting, &id).await.map_err(CallerError::from)?;
    Ok(Json(grant_view(&grant)).into_response())
}

/// `GET /api/v1/access/requests`: the caller's, or everyone's for an access admin.
pub async fn list_access(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let grants = app.callers.identity().grants(&acting).await.map_err(CallerError::from)?;
    Ok(Json(grants.iter().map(grant_view).collect::<Vec<_>>()).into_response())
}
