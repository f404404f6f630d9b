//! `GET /token` (Docker token authentication) and the identity API under `/api/v1`: API tokens,
//! `whoami`, and principals (users and service accounts, their roles and keys).

use airlock_access::scope::Scope;
use airlock_access::token::TokenKind;
use airlock_core::identity::Outcome;
use airlock_core::ports::{PrincipalChange, PrincipalRecord};
use airlock_model::{PrincipalId, PrincipalKind};
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::caller::{AuthError, Caller};
use crate::error::{ApiError, ServerError};

/// The header carrying a TOTP code at login.
pub const OTP_HEADER: &str = "x-airlock-otp";

/// The client address and request id of a request.
pub(crate) fn origin(request: &Request) -> (String, String) {
    let source = crate::client_addr::of(request.extensions());
    let request_id =
        request.extensions().get::<crate::telemetry::RequestId>().map_or_else(String::new, |r| r.0.clone());
    (source, request_id)
}

/// `GET /token?service=...&scope=...`: a registry token for the scopes asked, granted as far as
/// the caller may.
pub async fn token(State(app): State<AppState>, request: Request) -> Response {
    let (source, request_id) = origin(&request);
    let (parts, _) = request.into_parts();
    let result = async {
        let params = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| AuthError::Invalid(format!("token request query is malformed: {e}")))?
            .0;
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service")
            && service != app.auth.service()
        {
            return Err(AuthError::Invalid(format!(
                "token request names service `{}`; this registry is `{}`",
                airlock_model::echo::echo(service),
                app.auth.service()
            )));
        }
        let scopes = Scope::parse_all(params.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()))
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let who = app.auth.authenticate(&parts.headers, &source, &request_id).await?;
        app.auth.issue_registry_token(&who.record, &who.limit, &scopes, &source, &request_id).await
    }
    .await;
    match result {
        Ok(issued) => Json(issued).into_response(),
        Err(e) => ServerError::from(e).into_response(),
    }
}

/// What `POST /api/v1/auth/token` returns.
#[derive(Debug, Serialize)]
struct ApiToken {
    token: String,
    expires_in: u64,
    issued_at: String,
    principal: String,
    kind: &'static str,
    roles: Vec<String>,
}

/// `POST /api/v1/auth/token`: an API token for Basic credentials.
pub async fn api_token(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let record = app.auth.authenticate(request.headers(), &source, &request_id).await?.record;
    // A user with a second factor proves it with `X-Airlock-OTP`; the token then says when.
    let otp = request
        .headers()
        .get(OTP_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let mfa_at = match otp {
        Some(code) => Some(app.auth.verify_otp(&record, &code, &source, &request_id).await?),
        None => None,
    };
    let issued = app.auth.issue_api_token(&record, mfa_at)?;
    Ok(Json(ApiToken {
        token: issued.token,
        expires_in: issued.expires_in,
        issued_at: issued.issued_at,
        principal: record.id.to_string(),
        kind: record.kind.as_str(),
        roles: record.roles,
    })
    .into_response())
}

/// `POST /api/v1/auth/refresh`: a new API token for a still-valid one, against the live epoch.
pub async fn refresh(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (caller, record) = api_caller(&app, &headers).await?;
    // A refresh keeps the time the second factor was proved; it does not renew it.
    let issued = app.auth.issue_api_token(&record, caller.mfa_at)?;
    Ok(Json(ApiToken {
        token: issued.token,
        expires_in: issued.expires_in,
        issued_at: issued.issued_at,
        principal: record.id.to_string(),
        kind: record.kind.as_str(),
        roles: record.roles,
    })
    .into_response())
}

/// `GET /api/v1/roles`: the roles in force, for any authenticated principal.
pub async fn roles(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    api_caller(&app, &headers).await?;
    let roles: Vec<serde_json::Value> = app
        .auth
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
struct PrincipalView {
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

/// The caller of an API request, from its API token.
async fn api_caller(app: &AppState, headers: &HeaderMap) -> Result<(Caller, PrincipalRecord), ApiError> {
    let caller = app.auth.caller(headers, TokenKind::Api, None).await?;
    let record = app
        .auth
        .identity()
        .principal(&caller.id)
        .await
        .map_err(AuthError::from)?
        .ok_or_else(|| AuthError::Denied("the principal no longer exists".to_owned()))?;
    Ok((caller, record))
}

/// `GET /api/v1/auth/whoami`.
pub async fn whoami(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (_, record) = api_caller(&app, &headers).await?;
    let mut body = json!(PrincipalView::from(&record));
    if app.auth.identity().single_admin().await.map_err(AuthError::from)? {
        body["warnings"] = json!([crate::app::SINGLE_ADMIN]);
    }
    Ok(Json(body).into_response())
}

/// `GET /api/v1/principals`.
pub async fn list(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let acting = app.auth.acting(&caller, &source, &request_id);
    app.auth.identity().require_list(&acting).await.map_err(AuthError::from)?;
    let all = app.auth.identity().principals().await.map_err(AuthError::from)?;
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
    let acting = app.auth.acting(&caller, &source, &request_id);
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024).await.map_err(|e| ApiError::BadParameter {
        message: format!("cannot read the body: {e}"),
        remediation: "send at most 64 KiB of JSON".to_owned(),
    })?;
    let new: NewPrincipal = serde_json::from_slice(&body).map_err(|e| ApiError::BadParameter {
        message: format!("principal is not valid JSON: {e}"),
        remediation: "send `{\"name\": \"ci-payments\", \"kind\": \"service_account\", \"roles\": [\"ci\"]}`"
            .to_owned(),
    })?;
    let id = principal_id(&new.name)?;
    match PrincipalKind::parse(&new.kind) {
        Some(PrincipalKind::ServiceAccount) => {
            let created = app
                .auth
                .identity()
                .create_service_account(&acting, &id, &new.roles, new.days)
                .await
                .map_err(AuthError::from)?;
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
                .auth
                .identity()
                .create_user(&acting, &id, &new.roles, new.email.as_deref())
                .await
                .map_err(AuthError::from)?;
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
    let acting = app.auth.acting(&caller, &source, &request_id);
    let outcome = app.auth.identity().manage(&acting, &id, role, change).await.map_err(AuthError::from)?;
    Ok(outcome_response(&outcome))
}

/// A change done (200 with the principal) or waiting for a second access admin (202 with the
/// pending request).
fn outcome_response(outcome: &Outcome) -> Response {
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
    let acting = app.auth.acting(&caller, &source, &request_id);
    let (outcome, token) =
        app.auth.identity().reset(&acting, &id, "credentials reset").await.map_err(AuthError::from)?;
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

/// `POST /api/v1/auth/enroll` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    token: String,
    password: String,
}

/// `POST /api/v1/auth/enroll`: a person completes their enrollment with the one-time token an
/// access admin handed them, choosing their password; the answer holds their new TOTP second
/// factor, shown once.
pub async fn enroll(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(request.into_body(), 8 * 1024).await.map_err(|e| ApiError::BadParameter {
        message: format!("cannot read the body: {e}"),
        remediation: "send at most 8 KiB of JSON".to_owned(),
    })?;
    let EnrollBody { token, password } = serde_json::from_slice(&body).map_err(|e| ApiError::BadParameter {
        message: format!("enrollment is not valid JSON: {e}"),
        remediation: "send `{\"token\": \"ale_...\", \"password\": \"...\"}`".to_owned(),
    })?;
    let (record, secret, uri) = app.auth.enroll(&token, password).await?;
    Ok(Json(json!({"principal": record.id.as_str(), "secret": secret, "otpauth_uri": uri})).into_response())
}

/// `POST /api/v1/principals/{name}/roles`: grants a role, unless separation of duties forbids.
pub async fn grant(
    State(app): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 4096).await.unwrap_or_default();
    let RoleBody { role } = serde_json::from_slice(&body).map_err(|e| ApiError::BadParameter {
        message: format!("role is not valid JSON: {e}"),
        remediation: "send `{\"role\": \"deployer\"}`".to_owned(),
    })?;
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
    let acting = app.auth.acting(&caller, &source, &request_id);
    let body = axum::body::to_bytes(request.into_body(), 4096).await.unwrap_or_default();
    let KeyBody { days } = if body.is_empty() {
        KeyBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadParameter {
            message: format!("body is not valid JSON: {e}"),
            remediation: "send `{\"days\": 30}` or nothing".to_owned(),
        })?
    };
    match app.auth.identity().rotate_key(&acting, &id, days).await.map_err(AuthError::from)? {
        (_, Some((key, expires))) => {
            Ok(Json(json!({"principal": id.as_str(), "api_key": key, "api_key_expires_at": expires.to_rfc3339()}))
                .into_response())
        }
        (outcome, None) => Ok(outcome_response(&outcome)),
    }
}

/// `POST /api/v1/auth/mfa`: enrolls a TOTP second factor for the user whose password (and, when
/// one is enrolled already, current code) the request carries. The secret is shown once.
pub async fn enroll_mfa(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let record = app.auth.authenticate(request.headers(), &source, &request_id).await?.record;
    if record.totp_secret.is_some() {
        let code = request.headers().get(OTP_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if code.is_empty() {
            return Err(AuthError::Invalid(format!(
                "`{}` has a second factor already; send its current code in `X-Airlock-OTP` to replace it",
                record.id
            ))
            .into());
        }
        app.auth.verify_otp(&record, &code, &source, &request_id).await?;
    }
    let (secret, uri) = app.auth.enroll_totp(&record).await?;
    Ok(Json(json!({"principal": record.id.as_str(), "secret": secret, "otpauth_uri": uri})).into_response())
}

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

fn grant_view(grant: &airlock_core::ports::GrantRecord) -> serde_json::Value {
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
    let body = axum::body::to_bytes(request.into_body(), 8 * 1024).await.unwrap_or_default();
    let new: AccessRequestBody = serde_json::from_slice(&body).map_err(|e| ApiError::BadParameter {
        message: format!("access request is not valid JSON: {e}"),
        remediation: "send `{\"role\": \"deployer\", \"duration\": \"30m\", \"reason\": \"incident 42\"}`".to_owned(),
    })?;
    let secs = duration_secs(&new.duration).ok_or_else(|| ApiError::BadParameter {
        message: format!("duration `{}` is not a number of seconds or like `30m`, `2h`", new.duration),
        remediation: "send `\"duration\": \"30m\"`".to_owned(),
    })?;
    let acting = app.auth.acting(&caller, &source, &request_id);
    let grant =
        app.auth.identity().request_grant(&acting, &new.role, secs, &new.reason).await.map_err(AuthError::from)?;
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
    let acting = app.auth.acting(&caller, &source, &request_id);
    let approved = app.auth.identity().approve_grant(&acting, &id).await.map_err(AuthError::from)?;
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
    let acting = app.auth.acting(&caller, &source, &request_id);
    let grant = app.auth.identity().revoke_grant(&acting, &id).await.map_err(AuthError::from)?;
    Ok(Json(grant_view(&grant)).into_response())
}

/// `GET /api/v1/access/requests`: the caller's, or everyone's for an access admin.
pub async fn list_access(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let acting = app.auth.acting(&caller, &source, &request_id);
    let grants = app.auth.identity().grants(&acting).await.map_err(AuthError::from)?;
    Ok(Json(grants.iter().map(grant_view).collect::<Vec<_>>()).into_response())
}

/// `POST /api/v1/roles`: defines a role (`{"name","description","permissions"}`), compiled to
/// Cedar and validated before it is stored; needs `access.grant`.
pub async fn define_role(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let (caller, _) = api_caller(&app, request.headers()).await?;
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024).await.unwrap_or_default();
    let definition: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadParameter {
        message: format!("role is not valid JSON: {e}"),
        remediation: "send `{\"name\": \"payments-reader\", \"permissions\": [{\"actions\": [\"pull\"], \"stages\": [\"*\"], \"repositories\": [\"payments/*\"]}]}`".to_owned(),
    })?;
    let acting = app.auth.acting(&caller, &source, &request_id);
    let role = app.auth.identity().define_role(&acting, definition).await.map_err(AuthError::from)?;
    Ok((http::StatusCode::CREATED, Json(json!({"name": role.name, "description": role.description}))).into_response())
}
