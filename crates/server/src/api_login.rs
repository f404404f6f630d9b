//! Logging in: `GET /token` (Docker token authentication), API tokens and their refresh,
//! `whoami`, a user's enrollment with its one-time token, and second factors.

use airlock_access::scope::Scope;
use airlock_core::ports::PrincipalRecord;
use axum::Json;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::caller::{Caller, CallerError};
use crate::convert::to_api;
use crate::error::{ApiError, ServerError};
use crate::extract::{ApiCaller, ApiJson, Login, Origin};
use airlock_api::v1 as api;

/// `GET /token?service=...&scope=...`: a registry token for the scopes asked, granted as far as
/// the caller may.
pub async fn token(State(app): State<AppState>, Origin { source, request_id }: Origin, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let result = async {
        let params = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| CallerError::Invalid(format!("token request query is malformed: {e}")))?
            .0;
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service")
            && service != app.callers.service()
        {
            return Err(CallerError::Invalid(format!(
                "token request names service `{}`; this registry is `{}`",
                airlock_model::echo::echo(service),
                app.callers.service()
            )));
        }
        let scopes = Scope::parse_all(params.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()))
            .map_err(|e| CallerError::Invalid(e.to_string()))?;
        let who = app.callers.authenticate(&parts.headers, &source, &request_id).await?;
        app.callers.issue_registry_token(&who.record, &who.limit, &scopes, &source, &request_id).await
    }
    .await;
    match result {
        Ok(issued) => Json(issued).into_response(),
        Err(e) => ServerError::from(e).into_response(),
    }
}

/// `POST /api/v1/auth/token`: an API token for Basic credentials.
#[utoipa::path(
    post,
    operation_id = "login_api_token",
    path = "/api/v1/auth/token",
    tag = "auth",
    params(("X-Airlock-OTP" = Option<String>, Header, description = "A current TOTP code, for a user with a second factor")),
    security(("basic" = [])),
    responses(
        (status = 200, body = api::ApiToken),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn api_token(
    State(app): State<AppState>,
    Login { record, otp, source, request_id }: Login,
) -> Result<Json<api::ApiToken>, ApiError> {
    // A user with a second factor proves it with `X-Airlock-OTP`; the token then says when.
    let mfa_at = match otp {
        Some(code) => Some(app.callers.verify_otp(&record, &code, &source, &request_id).await?),
        None => None,
    };
    let issued = app.callers.issue_api_token(&record, mfa_at)?;
    Ok(Json(to_api::api_token(issued, &record)))
}

/// `POST /api/v1/auth/refresh`: a new API token for a still-valid one, against the live epoch.
#[utoipa::path(
    post,
    operation_id = "login_refresh",
    path = "/api/v1/auth/refresh",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::ApiToken),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn refresh(State(app): State<AppState>, who: ApiCaller) -> Result<Json<api::ApiToken>, ApiError> {
    let (caller, record) = principal(&app, who).await?;
    // A refresh keeps the time the second factor was proved; it does not renew it.
    let issued = app.callers.issue_api_token(&record, caller.mfa_at)?;
    Ok(Json(to_api::api_token(issued, &record)))
}

/// `GET /api/v1/auth/whoami`.
#[utoipa::path(
    get,
    operation_id = "login_whoami",
    path = "/api/v1/auth/whoami",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Whoami),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn whoami(State(app): State<AppState>, who: ApiCaller) -> Result<Json<api::Whoami>, ApiError> {
    let (_, record) = principal(&app, who).await?;
    let single_admin = app.callers.identity().single_admin().await.map_err(CallerError::from)?;
    let warnings = single_admin.then(|| vec![crate::app::SINGLE_ADMIN.to_owned()]);
    Ok(Json(api::Whoami { principal: to_api::principal(&record), warnings }))
}

/// `POST /api/v1/auth/mfa`: enrolls a TOTP second factor for the user whose password (and, when
/// one is enrolled already, current code) the request carries. The secret is shown once.
#[utoipa::path(
    post,
    operation_id = "login_enroll_mfa",
    path = "/api/v1/auth/mfa",
    tag = "auth",
    params(("X-Airlock-OTP" = Option<String>, Header, description = "The current code, to replace an enrolled second factor")),
    security(("basic" = [])),
    responses(
        (status = 200, body = api::TotpEnrollment),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn enroll_mfa(
    State(app): State<AppState>,
    Login { record, otp, source, request_id }: Login,
) -> Result<Json<api::TotpEnrollment>, ApiError> {
    if record.totp_secret.is_some() {
        let Some(code) = otp else {
            return Err(CallerError::Invalid(format!(
                "`{}` has a second factor already; send its current code in `X-Airlock-OTP` to replace it",
                record.id
            ))
            .into());
        };
        app.callers.verify_otp(&record, &code, &source, &request_id).await?;
    }
    let (secret, uri) = app.callers.enroll_totp(&record).await?;
    Ok(Json(to_api::totp(&record, secret, uri)))
}

/// `POST /api/v1/auth/enroll`: a person completes their enrollment with the one-time token an
/// access admin handed them, choosing their password; the answer holds their new TOTP second
/// factor, shown once.
#[utoipa::path(
    post,
    operation_id = "login_enroll",
    path = "/api/v1/auth/enroll",
    tag = "auth",
    request_body = api::EnrollRequest,
    responses(
        (status = 200, body = api::TotpEnrollment),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn enroll(
    State(app): State<AppState>,
    ApiJson(api::EnrollRequest { token, password }): ApiJson<api::EnrollRequest>,
) -> Result<Json<api::TotpEnrollment>, ApiError> {
    let (record, secret, uri) = app.callers.enroll(&token, password).await?;
    Ok(Json(to_api::totp(&record, secret, uri)))
}

/// The caller's principal record, for answers that show it; refused when the principal is gone.
async fn principal(app: &AppState, who: ApiCaller) -> Result<(Caller, PrincipalRecord), ApiError> {
    let record = app
        .callers
        .identity()
        .principal(&who.caller.id)
        .await
        .map_err(CallerError::from)?
        .ok_or_else(|| CallerError::Denied("the principal no longer exists".to_owned()))?;
    Ok((who.caller, record))
}
