//! What an `/api/v1` handler takes from its request, decided once here:
//!
//! - [`ApiCaller`]: the caller verified from its API token, with the client address and the
//!   request id; [`Login`] a principal logging in with Basic credentials; [`ArtifactReader`]
//!   the artifact an `/api/v1/artifacts/...` request names and a caller who may pull it;
//!   [`Origin`] the address and id alone.
//! - [`ApiJson`]: the body as a request DTO, bounded by the limit the DTO's [`RequestBody`]
//!   names (a config key), with the registry's idle timeout and minimum rate, answering 413, 400
//!   or 408, never an empty body; [`Unread`] a body read only after the handler has authorized
//!   the request.

use airlock_access::token::TokenKind;
use airlock_api::v1 as api;
use airlock_core::ports::PrincipalRecord;
use airlock_model::{Digest, RepoName};
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::caller::Caller;
use crate::error::ApiError;

/// The client address and the request id of a request.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The client address ([`crate::client_addr::of`]).
    pub source: String,
    /// The request's `X-Request-Id`, empty outside the server's middleware.
    pub request_id: String,
}

impl Origin {
    fn of(parts: &Parts) -> Origin {
        let request_id =
            parts.extensions.get::<crate::telemetry::RequestId>().map_or_else(String::new, |r| r.0.clone());
        Origin { source: crate::client_addr::of(&parts.extensions), request_id }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Origin, Self::Rejection> {
        Ok(Origin::of(parts))
    }
}

/// The caller of an `/api/v1` request, verified from its API token against the principal's live
/// epoch, with the request's client address and id. Without a valid token the request is
/// refused (401 with a challenge) before the body is read.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub caller: Caller,
    pub source: String,
    pub request_id: String,
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<ApiCaller, ApiError> {
        let Origin { source, request_id } = Origin::of(parts);
        let caller = app.callers.caller(&parts.headers, TokenKind::Api, None).await?;
        Ok(ApiCaller { caller, source, request_id })
    }
}

/// The header carrying a TOTP code at login.
pub const OTP_HEADER: &str = "x-airlock-otp";

/// A principal logging in with Basic credentials (a user's password, a service account's API
/// key, a CI token), with the second factor's code if `X-Airlock-OTP` carries one. Failed
/// logins are throttled and logged by [`crate::caller::CallerService::authenticate`].
#[derive(Debug)]
pub struct Login {
    pub record: PrincipalRecord,
    /// The trimmed code of `X-Airlock-OTP`, when not empty.
    pub otp: Option<String>,
    pub source: String,
    pub request_id: String,
}

impl FromRequestParts<AppState> for Login {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Login, ApiError> {
        let Origin { source, request_id } = Origin::of(parts);
        let record = app.callers.authenticate(&parts.headers, &source, &request_id).await?.record;
        let otp = parts
            .headers
            .get(OTP_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        Ok(Login { record, otp, source, request_id })
    }
}

/// What `/api/v1/artifacts/{repository}/{digest}/{action}` names, read by a caller who may pull
/// the repository: a registry token granting `pull` there, or an API token of a principal whose
/// roles allow it. The path is checked first (400), then the stage (the registry's error), then
/// the caller (401, 403).
#[derive(Debug)]
pub struct ArtifactReader {
    pub repo: RepoName,
    pub digest: Digest,
    /// The last segment, `evidence`, `policy-input`, ...
    pub action: String,
    /// The path after `/api/v1/artifacts/`, as sent.
    pub rest: String,
    pub caller: Caller,
    pub source: String,
    pub request_id: String,
}

/// The 400 of an artifact path that names no artifact route.
pub fn invalid_artifact_path(rest: &str) -> ApiError {
    ApiError::BadParameter {
        message: format!(
            "`/api/v1/artifacts/{}` is not `<repository>/<digest>/evidence|policy-input|evaluate|promotions|release-bundle`",
            rest.chars().take(200).collect::<String>()
        ),
        remediation: "ask for `/api/v1/artifacts/dev/payments/api/sha256:<hex>/evidence`".to_owned(),
    }
}

impl FromRequestParts<AppState> for ArtifactReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<ArtifactReader, ApiError> {
        let Origin { source, request_id } = Origin::of(parts);
        let axum::extract::Path(rest) =
            axum::extract::Path::<String>::from_request_parts(parts, app).await.map_err(|e| {
                ApiError::BadParameter {
                    message: e.body_text(),
                    remediation: "ask for `/api/v1/artifacts/dev/payments/api/sha256:<hex>/evidence`".to_owned(),
                }
            })?;
        let invalid = || invalid_artifact_path(&rest);
        let (path, action) = rest.rsplit_once('/').ok_or_else(invalid)?;
        let (repo, digest) = path.rsplit_once('/').ok_or_else(invalid)?;
        let repo = RepoName::parse(repo).map_err(|e| ApiError::BadParameter {
            message: e.to_string(),
            remediation: "name the repository as `<stage>/<path>`".to_owned(),
        })?;
        let digest = Digest::parse(digest).map_err(|e| ApiError::BadParameter {
            message: e.to_string(),
            remediation: "give the artifact's `sha256:` digest".to_owned(),
        })?;
        let action = action.to_owned();
        app.registry.stage_of(&repo)?;
        let caller = app.callers.reader(&parts.headers, &repo, &source).await?;
        Ok(ArtifactReader { repo, digest, action, rest, caller, source, request_id })
    }
}

/// A request DTO and how its body is read: the limit it is held to and what a 400 tells the
/// client to send.
pub trait RequestBody: DeserializeOwned {
    /// The route's body limit.
    const LIMIT: Limit;
    /// A body that would be accepted, shown in the 400 of one that is not.
    const EXAMPLE: &'static str;
    /// The value of an empty body, for a body whose fields are all optional.
    fn empty() -> Option<Self> {
        None
    }
}

/// The body of an `/api/v1` request as the DTO `T`, read within `T::LIMIT`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: RequestBody> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &AppState) -> Result<ApiJson<T>, ApiError> {
        let bytes = bytes(app, request.into_body(), T::LIMIT).await?;
        if bytes.iter().all(u8::is_ascii_whitespace)
            && let Some(empty) = T::empty()
        {
            return Ok(ApiJson(empty));
        }
        parse(&bytes, T::EXAMPLE).map(ApiJson)
    }
}

/// A body not read yet: the handler reads it, within `limit`, once it has decided the request
/// may go on (a trust root is read only after its principal is authorized).
#[derive(Debug)]
pub struct Unread(Body);

impl Unread {
    /// The whole body, at most `limit` bytes; see [`bytes`].
    pub async fn bytes(self, app: &AppState, limit: Limit) -> Result<Bytes, ApiError> {
        bytes(app, self.0, limit).await
    }
}

impl<S: Send + Sync> FromRequest<S> for Unread {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _: &S) -> Result<Unread, Self::Rejection> {
        Ok(Unread(request.into_body()))
    }
}

macro_rules! request_bodies {
    ($($ty:ty => $limit:ident, $example:expr;)*) => {
        $(impl RequestBody for $ty {
            const LIMIT: Limit = Limit::$limit;
            const EXAMPLE: &'static str = $example;
        })*
    };
}

request_bodies! {
    api::PromotionRequest => Action, r#"{"repository": "dev/app", "reference": "sha256:<hex>", "to": "staging", "tag": "1.4.2", "reason": "release 1.4.2"}"#;
    api::PromotionDecision => Action, r#"{"comment": "looks good"} or {"reason": "..."}"#;
    api::FreezeRequest => Action, r#"{"reason": "incident 42"}"#;
    api::WaiverRequest => Action, WAIVER_EXAMPLE;
    api::RollbackRequest => Action, ROLLBACK_EXAMPLE;
    api::ReviewClose => Action, r#"{"note": "reviewed with the team; the fix shipped in 1.4.3"}"#;
    api::EnrollRequest => Action, r#"{"token": "ale_...", "password": "..."}"#;
    api::AccessRequest => Action, r#"{"role": "deployer", "duration": "30m", "reason": "incident 42"}"#;
    api::RoleGrant => Action, r#"{"role": "deployer"}"#;
    api::NewPrincipal => Definition, r#"{"name": "ci-payments", "kind": "service_account", "roles": ["ci"]}"#;
    api::RoleDefinition => Definition, r#"{"name": "payments-reader", "permissions": [{"actions": ["pull"], "stages": ["*"], "repositories": ["payments/**"]}]}"#;
}

impl RequestBody for api::KeyRequest {
    const LIMIT: Limit = Limit::Action;
    const EXAMPLE: &'static str = r#"{"days": 30}"#;
    fn empty() -> Option<Self> {
        Some(Self::default())
    }
}

/// A waiver request that would be accepted.
pub const WAIVER_EXAMPLE: &str = r#"{"rule": "no-critical-vulnerabilities", "vulnerability": "CVE-2026-1234", "repository": "*/payments/api", "expires": "2026-12-31T00:00:00Z", "justification": "not reachable: ..."}"#;

/// A rollback request that would be accepted.
pub const ROLLBACK_EXAMPLE: &str =
    r#"{"repository": "prod/payments/api", "tag": "1.4.2", "to": "previous", "reason": "incident 42"}"#;

/// Which limit a route's body is held to; each is a config key under `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// An action: a promotion request or decision, a freeze, a waiver, a grant, an enrollment.
    Action,
    /// A definition: a new principal, a custom role.
    Definition,
    /// A trust root document.
    TrustRoot,
}

impl Limit {
    /// The config key that sets this limit.
    pub fn key(self) -> &'static str {
        match self {
            Limit::Action => "limits.api_body_max_bytes",
            Limit::Definition => "limits.api_definition_max_bytes",
            Limit::TrustRoot => "limits.trust_root_max_bytes",
        }
    }

    fn max(self, app: &AppState) -> usize {
        match self {
            Limit::Action => app.body.api_max_bytes,
            Limit::Definition => app.body.definition_max_bytes,
            Limit::TrustRoot => app.body.trust_root_max_bytes,
        }
    }
}

/// The whole body, at most `limit` bytes, arriving without stalls: 413 naming the limit and its
/// config key when larger (refused on `Content-Length` before a byte is read), 408 with
/// `Connection: close` when it stalls or drips, 400 when it cannot be read.
pub async fn bytes(app: &AppState, body: Body, limit: Limit) -> Result<Bytes, ApiError> {
    let max = limit.max(app);
    let too_large = || ApiError::BodyTooLarge { max, key: limit.key() };
    if usize::try_from(body.size_hint().lower()).map_or(true, |declared| declared > max) {
        return Err(too_large());
    }
    let stream = crate::body::guarded(body, app.body, app.metrics.clone());
    match crate::body::collect(stream, max).await {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(too_large()),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(ApiError::BodyTimeout(e.to_string())),
        Err(e) => Err(ApiError::BadParameter {
            message: format!("cannot read the body: {e}"),
            remediation: "send the request again".to_owned(),
        }),
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8], example: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadParameter {
        message: format!("the body is not valid JSON for this request: {e}"),
        remediation: format!("send `{example}`"),
    })
}
