//! Principals under `/api/v1`: users and service accounts, their roles, keys and resets, and the
//! roles in force. What may be done is `core::identity`'s; this is the HTTP side.

use airlock_core::identity::Outcome;
use airlock_core::ports::{PrincipalChange, PrincipalRecord};
use airlock_model::{PrincipalId, PrincipalKind};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api_access::grant_view;
use crate::api_login::{api_caller, origin};
use crate::app::AppState;
use crate::caller::CallerError;
use crate::error::ApiError;
use crate::extract::{self, Limit};

/// `GET /api/v1/roles`: the roles in force, for any authenticated principal.
pub async fn roles(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    api_caller(&app, &headers).await?;
    let roles: Vec<serde_json::Value> = app
        .callers
        .identity()
        .roles()
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "description": r.description,
                "permissions": r.permissions.iter().map(|p| json!({
                    "actions": p.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                    "stages": p.stages,
                    "repositories": p.repositories,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(roles).into_response())
}

/// A principal as the API shows it: never a secret, never a hash.
#[derive(Debug, Serialize)]
pub(crate) struct PrincipalView {
    name: String,
    kind: &'static str,
    roles: Vec<String>,
    disabled: bool,
    epoch: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_expires_at: Option<String>,
    mfa_enrolled: bool,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

impl From<&PrincipalRecord> for PrincipalView {
    fn from(r: &PrincipalRecord) -> PrincipalView {
        PrincipalView {
            name: r.id.to_string(),
            kind: r.kind.as_str(),
            roles: r.roles.clone(),
            disabled: r.disabled,
            epoch: r.epoch,
            api_key_expires_at: r.api_key_expires_at.map(|t| t.to_rfc3339()),
            mfa_enrolled: r.totp_secret.is_some(),
            created_at: r.created_at.to_rfc3339(),
            email: r.email.clone(),
        }
    }
}

/// `GET /api/v1/principals`.
pub async fn list(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    app.callers.identity().require_list(&acting).await.map_err(CallerError::from)?;
    let all = app.callers.identity().principals().await.map_err(CallerError::from)?;
    Ok(Json(all.iter().map(PrincipalView::from).collect::<Vec<_>>()).into_response())
}

/// `POST /api/v1/principals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPrincipal {
    name: String,
    kind: String,
    #[serde(default)]
    roles: Vec<String>,
    /// Refused for users: their owner sets it at enrollment.
    password: Option<String>,
    /// Service accounts: days the API key lives.
    days: Option<u64>,
    /// Users: their email; two accounts with one email count as one approver.
    email: Option<String>,
}

fn principal_id(name: &str) -> Result<PrincipalId, ApiError> {
    PrincipalId::parse(name).map_err(|e| ApiError::BadParameter {
        message: e.to_string(),
        remediation: "choose a lowercase name like `alice` or `ci-payments`".to_owned(),
    })
}

/// Creates a user or a service account; a service account's API key (and a generated password)
/// appear in this response only.
pub async fn create(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let new: NewPrincipal = extract::json(
        &app,
        request.into_body(),
        Limit::Definition,
        r#"{"name": "ci-payments", "kind": "service_account", "roles": ["ci"]}"#,
    )
    .await?;
    let id = principal_id(&new.name)?;
    match PrincipalKind::parse(&new.kind) {
        Some(PrincipalKind::ServiceAccount) => {
            let created = app
                .callers
                .identity()
                .create_service_account(&acting, &id, &new.roles, new.days)
                .await
                .map_err(CallerError::from)?;
            let body = json!({
                "principal": PrincipalView::from(&created.record),
                "api_key": created.secret,
                "api_key_expires_at": created.expires_at.to_rfc3339(),
                "pending": created.pending.iter().map(grant_view).collect::<Vec<_>>(),
            });
            Ok((http::StatusCode::CREATED, Json(body)).into_response())
        }
        Some(PrincipalKind::User) => {
            if new.password.is_some() {
                return Err(ApiError::BadParameter {
                    message: "a user's password is set by its owner, never by whoever creates the user".to_owned(),
                    remediation: "leave `password` out; hand the `enrollment_token` of the answer to the person, who runs `airlock user enroll TOKEN`".to_owned(),
                });
            }
            let created = app
                .callers
                .identity()
                .create_user(&acting, &id, &new.roles, new.email.as_deref())
                .await
                .map_err(CallerError::from)?;
            let body = json!({
                "principal": PrincipalView::from(&created.record),
                "enrollment_token": created.secret,
                "enrollment_expires_at": created.expires_at.to_rfc3339(),
                "pending": created.pending.iter().map(grant_view).collect::<Vec<_>>(),
            });
            Ok((http::StatusCode::CREATED, Json(body)).into_response())
        }
        None => Err(ApiError::BadParameter {
            message: format!("kind `{}` is not a principal kind", airlock_model::echo::echo(&new.kind)),
            remediation: "use `user` or `service_account`".to_owned(),
        }),
    }
}

/// A role to grant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: String,
}

/// Days for a new API key.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    days: Option<u64>,
}

async fn apply(
    app: &AppState,
    request_parts: (&HeaderMap, String, String),
    name: &str,
    role: &str,
    change: PrincipalChange,
) -> Result<Response, ApiError> {
    let (headers, source, request_id) = request_parts;
    let (caller, _) = api_caller(app, headers).await?;
    let id = principal_id(name)?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let outcome = app.callers.identity().manage(&acting, &id, role, change).await.map_err(CallerError::from)?;
    Ok(outcome_response(&outcome))
}

/// A change done (200 with the principal) or waiting for a second access admin (202 with the
/// pending request).
pub(crate) fn outcome_response(outcome: &Outcome) -> Response {
    match outcome {
        Outcome::Done(record) => Json(PrincipalView::from(record)).into_response(),
        Outcome::Pending(grant) => {
            (http::StatusCode::ACCEPTED, Json(json!({"pending": grant_view(grant)}))).into_response()
        }
    }
}

/// `POST /api/v1/principals/{name}/reset`: a new enrollment for a user who lost their password
/// or second factor (both are cleared); pending a second access admin, whose approval returns
/// the one-time token.
pub async fn reset(
    State(app): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let id = principal_id(&name)?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let (outcome, token) =
        app.callers.identity().reset(&acting, &id, "credentials reset").await.map_err(CallerError::from)?;
    match (outcome, token) {
        (Outcome::Done(record), Some((token, expires))) => Ok(Json(json!({
            "principal": PrincipalView::from(&record),
            "enrollment_token": token,
            "enrollment_expires_at": expires.to_rfc3339(),
        }))
        .into_response()),
        (outcome, _) => Ok(outcome_response(&outcome)),
    }
}

/// `POST /api/v1/principals/{name}/roles`: grants a role, unless separation of duties forbids.
pub async fn grant(
    State(app): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let headers = request.headers().clone();
    let RoleBody { role } = extract::json(&app, request.into_body(), Limit::Action, r#"{"role": "deployer"}"#).await?;
    apply(&app, (&headers, source, request_id), &name, &role.clone(), PrincipalChange::GrantRole { role }).await
}

/// `DELETE /api/v1/principals/{name}/roles/{role}`.
pub async fn revoke(
    State(app): State<AppState>,
    Path((name, role)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    apply(&app, (request.headers(), source, request_id), &name, &role.clone(), PrincipalChange::RevokeRole { role })
        .await
}

/// `POST /api/v1/principals/{name}/disable`: every token of the principal dies at once.
pub async fn disable(
    State(app): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    apply(&app, (request.headers(), source, request_id), &name, "*", PrincipalChange::Disable).await
}

/// `POST /api/v1/principals/{name}/enable`.
pub async fn enable(
    State(app): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    apply(&app, (request.headers(), source, request_id), &name, "*", PrincipalChange::Enable).await
}

/// `POST /api/v1/principals/{name}/api-key`: rotates a service account's key, returned once.
pub async fn rotate_key(
    State(app): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let id = principal_id(&name)?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let KeyBody { days } =
        extract::json_or_default(&app, request.into_body(), Limit::Action, r#"{"days": 30}"#).await?;
    match app.callers.identity().rotate_key(&acting, &id, days).await.map_err(CallerError::from)? {
        (_, Some((key, expires))) => {
            Ok(Json(json!({"principal": id.as_str(), "api_key": key, "api_key_expires_at": expires.to_rfc3339()}))
                .into_response())
        }
        (outcome, None) => Ok(outcome_response(&outcome)),
    }
}

/// `POST /api/v1/roles`: defines a role (`{"name","description","permissions"}`), compiled to
/// Cedar and validated before it is stored; needs `access.grant`.
pub async fn define_role(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let definition: serde_json::Value = extract::json(
        &app,
        request.into_body(),
        Limit::Definition,
        r#"{"name": "payments-reader", "permissions": [{"actions": ["pull"], "stages": ["*"], "repositories": ["payments/**"]}]}"#,
    )
    .await?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let role = app.callers.identity().define_role(&acting, definition).await.map_err(CallerError::from)?;
    Ok((http::StatusCode::CREATED, Json(json!({"name": role.name, "description": role.description}))).into_response())
}
