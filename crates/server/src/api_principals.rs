//! Principals under `/api/v1`: users and service accounts, their roles, keys and resets, and the
//! roles in force. What may be done is `core::identity`'s; this is the HTTP side.

use airlock_api::v1 as api;
use airlock_core::identity::Outcome;
use airlock_core::ports::PrincipalChange;
use airlock_model::{PrincipalId, PrincipalKind};
use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;

use crate::app::AppState;
use crate::caller::CallerError;
use crate::convert::{from_api, to_api};
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson};

/// `GET /api/v1/roles`: the roles in force, for any authenticated principal.
#[utoipa::path(
    get,
    operation_id = "principals_roles",
    path = "/api/v1/roles",
    tag = "access",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<api::Role>),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn roles(State(app): State<AppState>, _: ApiCaller) -> Result<Json<Vec<api::Role>>, ApiError> {
    Ok(Json(app.callers.identity().roles().iter().map(to_api::role).collect()))
}

/// `GET /api/v1/principals`.
#[utoipa::path(
    get,
    operation_id = "principals_list",
    path = "/api/v1/principals",
    tag = "access",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<api::Principal>),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    ApiCaller { caller, source, request_id }: ApiCaller,
) -> Result<Json<Vec<api::Principal>>, ApiError> {
    let acting = app.callers.acting(&caller, &source, &request_id);
    app.callers.identity().require_list(&acting).await.map_err(CallerError::from)?;
    let all = app.callers.identity().principals().await.map_err(CallerError::from)?;
    Ok(Json(all.iter().map(to_api::principal).collect()))
}

fn principal_id(name: &str) -> Result<PrincipalId, ApiError> {
    PrincipalId::parse(name).map_err(|e| ApiError::BadParameter {
        message: e.to_string(),
        remediation: "choose a lowercase name like `alice` or `ci-payments`".to_owned(),
    })
}

/// Creates a user or a service account; a service account's API key (and a generated password)
/// appear in this response only.
#[utoipa::path(
    post,
    operation_id = "principals_create",
    path = "/api/v1/principals",
    tag = "access",
    request_body = api::NewPrincipal,
    security(("bearer" = [])),
    responses(
        (status = 201, body = api::PrincipalCreated),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    ApiCaller { caller, source, request_id }: ApiCaller,
    ApiJson(new): ApiJson<api::NewPrincipal>,
) -> Result<(StatusCode, Json<api::PrincipalCreated>), ApiError> {
    let acting = app.callers.acting(&caller, &source, &request_id);
    let id = principal_id(&new.name)?;
    match PrincipalKind::parse(&new.kind) {
        Some(PrincipalKind::ServiceAccount) => {
            let created = app
                .callers
                .identity()
                .create_service_account(&acting, &id, &new.roles, new.days)
                .await
                .map_err(CallerError::from)?;
            let body = api::PrincipalCreated {
                principal: to_api::principal(&created.record),
                api_key: Some(created.secret),
                api_key_expires_at: Some(created.expires_at.to_rfc3339()),
                enrollment_token: None,
                enrollment_expires_at: None,
                pending: created.pending.iter().map(to_api::grant).collect(),
            };
            Ok((StatusCode::CREATED, Json(body)))
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
            let body = api::PrincipalCreated {
                principal: to_api::principal(&created.record),
                api_key: None,
                api_key_expires_at: None,
                enrollment_token: Some(created.secret),
                enrollment_expires_at: Some(created.expires_at.to_rfc3339()),
                pending: created.pending.iter().map(to_api::grant).collect(),
            };
            Ok((StatusCode::CREATED, Json(body)))
        }
        None => Err(ApiError::BadParameter {
            message: format!("kind `{}` is not a principal kind", airlock_model::echo::echo(&new.kind)),
            remediation: "use `user` or `service_account`".to_owned(),
        }),
    }
}

async fn apply(
    app: &AppState,
    ApiCaller { caller, source, request_id }: ApiCaller,
    name: &str,
    role: &str,
    change: PrincipalChange,
) -> Result<(StatusCode, Json<api::PrincipalChange>), ApiError> {
    let id = principal_id(name)?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let outcome = app.callers.identity().manage(&acting, &id, role, change).await.map_err(CallerError::from)?;
    let (status, body) = to_api::outcome(&outcome);
    Ok((status, Json(body)))
}

/// `POST /api/v1/principals/{name}/reset`: a new enrollment for a user who lost their password
/// or second factor (both are cleared); pending a second access admin, whose approval returns
/// the one-time token.
#[utoipa::path(
    post,
    operation_id = "principals_reset",
    path = "/api/v1/principals/{name}/reset",
    tag = "access",
    params(("name" = String, Path, description = "The principal")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Reset),
        (status = 202, description = "Waiting for a second access admin", body = api::PendingChange),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn reset(
    State(app): State<AppState>,
    Path(name): Path<String>,
    ApiCaller { caller, source, request_id }: ApiCaller,
) -> Result<(StatusCode, Json<api::Reset>), ApiError> {
    let id = principal_id(&name)?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    let (outcome, token) =
        app.callers.identity().reset(&acting, &id, "credentials reset").await.map_err(CallerError::from)?;
    match (outcome, token) {
        (Outcome::Done(record), Some((token, expires))) => Ok((
            StatusCode::OK,
            Json(api::Reset::Enrolled(api::Enrollment {
                principal: to_api::principal(&record),
                enrollment_token: token,
                enrollment_expires_at: expires.to_rfc3339(),
            })),
        )),
        (outcome, _) => Ok(match to_api::outcome(&outcome) {
            (status, api::PrincipalChange::Done(p)) => (status, Json(api::Reset::Done(p))),
            (status, api::PrincipalChange::Pending(p)) => (status, Json(api::Reset::Pending(p))),
        }),
    }
}

/// `POST /api/v1/principals/{name}/roles`: grants a role, unless separation of duties forbids.
#[utoipa::path(
    post,
    operation_id = "principals_grant",
    path = "/api/v1/principals/{name}/roles",
    tag = "access",
    params(("name" = String, Path, description = "The principal")),
    request_body = api::RoleGrant,
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Principal),
        (status = 202, description = "Waiting for a second access admin", body = api::PendingChange),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn grant(
    State(app): State<AppState>,
    Path(name): Path<String>,
    who: Result<ApiCaller, ApiError>,
    ApiJson(api::RoleGrant { role }): ApiJson<api::RoleGrant>,
) -> Result<(StatusCode, Json<api::PrincipalChange>), ApiError> {
    // The body's refusals (413, 400) come before the caller's: a body too large is refused
    // whoever sends it.
    apply(&app, who?, &name, &role.clone(), PrincipalChange::GrantRole { role }).await
}

/// `DELETE /api/v1/principals/{name}/roles/{role}`.
#[utoipa::path(
    delete,
    operation_id = "principals_revoke",
    path = "/api/v1/principals/{name}/roles/{role}",
    tag = "access",
    params(("name" = String, Path, description = "The principal"), ("role" = String, Path, description = "The role")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Principal),
        (status = 202, description = "Waiting for a second access admin", body = api::PendingChange),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn revoke(
    State(app): State<AppState>,
    Path((name, role)): Path<(String, String)>,
    who: ApiCaller,
) -> Result<(StatusCode, Json<api::PrincipalChange>), ApiError> {
    apply(&app, who, &name, &role.clone(), PrincipalChange::RevokeRole { role }).await
}

/// `POST /api/v1/principals/{name}/disable`: every token of the principal dies at once.
#[utoipa::path(
    post,
    operation_id = "principals_disable",
    path = "/api/v1/principals/{name}/disable",
    tag = "access",
    params(("name" = String, Path, description = "The principal")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Principal),
        (status = 202, description = "Waiting for a second access admin", body = api::PendingChange),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn disable(
    State(app): State<AppState>,
    Path(name): Path<String>,
    who: ApiCaller,
) -> Result<(StatusCode, Json<api::PrincipalChange>), ApiError> {
    apply(&app, who, &name, "*", PrincipalChange::Disable).await
}

/// `POST /api/v1/principals/{name}/enable`.
#[utoipa::path(
    post,
    operation_id = "principals_enable",
    path = "/api/v1/principals/{name}/enable",
    tag = "access",
    params(("name" = String, Path, description = "The principal")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Principal),
        (status = 202, description = "Waiting for a second access admin", body = api::PendingChange),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn enable(
    State(app): State<AppState>,
    Path(name): Path<String>,
    who: ApiCaller,
) -> Result<(StatusCode, Json<api::PrincipalChange>), ApiError> {
    apply(&app, who, &name, "*", PrincipalChange::Enable).await
}

/// `POST /api/v1/principals/{name}/api-key`: rotates a service account's key, returned once.
#[utoipa::path(
    post,
    operation_id = "principals_rotate_key",
    path = "/api/v1/principals/{name}/api-key",
    tag = "access",
    params(("name" = String, Path, description = "The principal")),
    request_body(content = api::KeyRequest, description = "May be empty"),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::KeyRotation),
        (status = 202, description = "Waiting for a second access admin", body = api::PendingChange),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn rotate_key(
    State(app): State<AppState>,
    Path(name): Path<String>,
    ApiCaller { caller, source, request_id }: ApiCaller,
    ApiJson(api::KeyRequest { days }): ApiJson<api::KeyRequest>,
) -> Result<(StatusCode, Json<api::KeyRotation>), ApiError> {
    let id = principal_id(&name)?;
    let acting = app.callers.acting(&caller, &source, &request_id);
    match app.callers.identity().rotate_key(&acting, &id, days).await.map_err(CallerError::from)? {
        (_, Some((key, expires))) => Ok((
            StatusCode::OK,
            Json(api::KeyRotation::Rotated(api::ApiKey {
                principal: id.as_str().to_owned(),
                api_key: key,
                api_key_expires_at: expires.to_rfc3339(),
            })),
        )),
        (outcome, None) => Ok(match to_api::outcome(&outcome) {
            (status, api::PrincipalChange::Done(p)) => (status, Json(api::KeyRotation::Done(p))),
            (status, api::PrincipalChange::Pending(p)) => (status, Json(api::KeyRotation::Pending(p))),
        }),
    }
}

/// `POST /api/v1/roles`: defines a role (`{"name","description","permissions"}`), compiled to
/// Cedar and validated before it is stored; needs `access.grant`.
#[utoipa::path(
    post,
    operation_id = "principals_define_role",
    path = "/api/v1/roles",
    tag = "access",
    request_body = api::RoleDefinition,
    security(("bearer" = [])),
    responses(
        (status = 201, body = api::RoleDefined),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn define_role(
    State(app): State<AppState>,
    ApiCaller { caller, source, request_id }: ApiCaller,
    ApiJson(definition): ApiJson<api::RoleDefinition>,
) -> Result<(StatusCode, Json<api::RoleDefined>), ApiError> {
    let acting = app.callers.acting(&caller, &source, &request_id);
    let definition = from_api::role_definition(&definition);
    let role = app.callers.identity().define_role(&acting, definition).await.map_err(CallerError::from)?;
    Ok((StatusCode::CREATED, Json(api::RoleDefined { name: role.name, description: role.description })))
}
