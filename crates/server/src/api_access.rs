//! Just-in-time elevation and two-person changes under `/api/v1/access/requests`: asking,
//! approving, revoking and listing.

use airlock_api::v1 as api;
use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;

use crate::app::AppState;
use crate::caller::CallerError;
use crate::convert::to_api;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson};

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

/// `POST /api/v1/access/requests`: asks for a role for a while (just-in-time elevation).
#[utoipa::path(
    post,
    operation_id = "access_request_access",
    path = "/api/v1/access/requests",
    tag = "access",
    request_body = api::AccessRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = api::Grant),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn request_access(
    State(app): State<AppState>,
    ApiCaller { caller, source, request_id }: ApiCaller,
    ApiJson(new): ApiJson<api::AccessRequest>,
) -> Result<(StatusCode, Json<api::Grant>), ApiError> {
    let secs = duration_secs(&new.duration).ok_or_else(|| ApiError::BadParameter {
        message: format!("duration `{}` is not a number of seconds or like `30m`, `2h`", new.duration),
        remediation: "send `\"duration\": \"30m\"`".to_owned(),
    })?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let grant =
        app.callers.identity().request_grant(&acting, &new.role, secs, &new.reason).await.map_err(CallerError::from)?;
    Ok((StatusCode::CREATED, Json(to_api::grant(&grant))))
}

/// `POST /api/v1/access/requests/{id}/approve`.
#[utoipa::path(
    post,
    operation_id = "access_approve_access",
    path = "/api/v1/access/requests/{id}/approve",
    tag = "access",
    params(("id" = String, Path, description = "The request")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::GrantApproved),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn approve_access(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiCaller { caller, source, request_id }: ApiCaller,
) -> Result<Json<api::GrantApproved>, ApiError> {
    let acting = app.callers.acting(&caller, &source, &request_id);
    let approved = app.callers.identity().approve_grant(&acting, &id).await.map_err(CallerError::from)?;
    Ok(Json(to_api::grant_approved(&approved)))
}

/// `POST /api/v1/access/requests/{id}/revoke`.
#[utoipa::path(
    post,
    operation_id = "access_revoke_access",
    path = "/api/v1/access/requests/{id}/revoke",
    tag = "access",
    params(("id" = String, Path, description = "The request")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Grant),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn revoke_access(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiCaller { caller, source, request_id }: ApiCaller,
) -> Result<Json<api::Grant>, ApiError> {
    let acting = app.callers.acting(&caller, &source, &request_id);
    let grant = app.callers.identity().revoke_grant(&acting, &id).await.map_err(CallerError::from)?;
    Ok(Json(to_api::grant(&grant)))
}

/// `GET /api/v1/access/requests`: the caller's, or everyone's for an access admin.
#[utoipa::path(
    get,
    operation_id = "access_list_access",
    path = "/api/v1/access/requests",
    tag = "access",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<api::Grant>),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn list_access(
    State(app): State<AppState>,
    ApiCaller { caller, source, request_id }: ApiCaller,
) -> Result<Json<Vec<api::Grant>>, ApiError> {
    let acting = app.callers.acting(&caller, &source, &request_id);
    let grants = app.callers.identity().grants(&acting).await.map_err(CallerError::from)?;
    Ok(Json(grants.iter().map(to_api::grant).collect()))
}
