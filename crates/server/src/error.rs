//! The one error table: every failure a client can see maps here to an OCI code (`/v2`) or an
//! API code (`/api/v1`), a status and a public message. 5xx bodies say nothing internal; the
//! detail goes to the log with the request id. Every `From<...> for ApiError` is here too, so a
//! handler only ever writes `?`.
//! tidy: long because the table and the test enumerating every row of it belong together.

use crate::caller::CallerError;
use airlock_api::oci::{ErrorBody, ErrorEntry};
use airlock_core::RegistryError;
use airlock_core::ports::{BlobError, CpuBusy};
use airlock_core::promotion::PromotionError;
use airlock_model::manifest::ManifestError;
use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// A refusal that happens before the core is reached: a bad URL, header or query.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    NameInvalid(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("{0}")]
    TagInvalid(String),
    #[error("{0}")]
    UploadInvalid(String),
    #[error("{0}")]
    PaginationInvalid(String),
    #[error("{0}")]
    RangeInvalid(String),
    #[error("{0}")]
    SizeInvalid(String),
    #[error("no such endpoint `{path}`; the registry API lives under `/v2/`")]
    NotFound { path: String },
    #[error("method `{method}` is not supported on `{path}`")]
    MethodNotAllowed { method: String, path: String },
    #[error("manifest body is larger than {max} bytes (config key `limits.manifest_max_bytes`)")]
    ManifestTooLarge { max: usize },
    #[error("request body stalled: {0}")]
    BodyTimeout(String),
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// A broken internal invariant; the detail is logged, never shown.
    #[error("internal invariant broken: {0}")]
    Internal(String),
}

/// Everything a `/v2` handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Auth(#[from] CallerError),
}

/// The fourteen error codes of the OCI distribution spec ("Error Codes"): the only codes a `/v2`
/// response carries. Failures the spec has no code for take the nearest: `DENIED` for a write
/// refused until an operator acts (503, 507), `UNSUPPORTED` for an operation this server cannot
/// carry out (an unknown endpoint, an unsatisfiable range, an internal failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
}

impl OciCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OciCode::BlobUnknown => "BLOB_UNKNOWN",
            OciCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            OciCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            OciCode::DigestInvalid => "DIGEST_INVALID",
            OciCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            OciCode::ManifestInvalid => "MANIFEST_INVALID",
            OciCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            OciCode::NameInvalid => "NAME_INVALID",
            OciCode::NameUnknown => "NAME_UNKNOWN",
            OciCode::SizeInvalid => "SIZE_INVALID",
            OciCode::Unauthorized => "UNAUTHORIZED",
            OciCode::Denied => "DENIED",
            OciCode::Unsupported => "UNSUPPORTED",
            OciCode::TooManyRequests => "TOOMANYREQUESTS",
        }
    }
}

/// The codes of `/api/v1` error bodies that are the API's own; the others are [`OciCode`]s, where
/// a registry failure surfaces through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCode {
    /// A parameter, query or body the request cannot be served with.
    InvalidParameter,
    NotFound,
    /// The request conflicts with the current state (a promotion already decided).
    Conflict,
    /// A body over its route's limit.
    TooLarge,
    /// A body that stalled or dripped.
    Timeout,
    Internal,
    /// Writes are refused until an operator acts.
    Unavailable,
    InsufficientStorage,
    TagInvalid,
    PaginationNumberInvalid,
    RangeInvalid,
    /// An approval the rules refuse (the requester's own, a second from one person).
    ApprovalRefused,
    /// An action the engine's rules refuse (a freeze, a waiver, a rollback).
    Refused,
    /// A trust root that does not follow the one in force.
    TrustRootRefused,
    /// A policy bundle not trusted under the trust root in force.
    PolicyUntrusted,
}

impl ApiCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiCode::InvalidParameter => "INVALID_PARAMETER",
            ApiCode::NotFound => "NOT_FOUND",
            ApiCode::Conflict => "CONFLICT",
            ApiCode::TooLarge => "TOO_LARGE",
            ApiCode::Timeout => "TIMEOUT",
            ApiCode::Internal => "INTERNAL",
            ApiCode::Unavailable => "UNAVAILABLE",
            ApiCode::InsufficientStorage => "INSUFFICIENT_STORAGE",
            ApiCode::TagInvalid => "TAG_INVALID",
            ApiCode::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            ApiCode::RangeInvalid => "RANGE_INVALID",
            ApiCode::ApprovalRefused => "APPROVAL_REFUSED",
            ApiCode::Refused => "REFUSED",
            ApiCode::TrustRootRefused => "TRUST_ROOT_REFUSED",
            ApiCode::PolicyUntrusted => "POLICY_UNTRUSTED",
        }
    }
}

/// One row of the table: the OCI code and status `/v2` answers with, and the code `/api/v1`
/// answers with where it has a more precise one of its own.
pub(crate) struct Row {
    oci: OciCode,
    status: StatusCode,
    api: Option<ApiCode>,
}

impl Row {
    /// The code of an `/api/v1` body.
    fn api_code(&self) -> &'static str {
        self.api.map_or(self.oci.as_str(), ApiCode::as_str)
    }

    fn internal(&self) -> bool {
        self.status == StatusCode::INTERNAL_SERVER_ERROR
    }
}

const fn row(oci: OciCode, status: StatusCode) -> Row {
    Row { oci, status, api: None }
}

const fn row_api(oci: OciCode, status: StatusCode, api: ApiCode) -> Row {
    Row { oci, status, api: Some(api) }
}

const INTERNAL: Row = row_api(OciCode::Unsupported, StatusCode::INTERNAL_SERVER_ERROR, ApiCode::Internal);
const UNAVAILABLE: Row = row_api(OciCode::Denied, StatusCode::SERVICE_UNAVAILABLE, ApiCode::Unavailable);
const STORAGE_FULL: Row = row_api(OciCode::Denied, StatusCode::INSUFFICIENT_STORAGE, ApiCode::InsufficientStorage);

/// Seconds a client waits before retrying a write refused for a full disk.
const STORAGE_FULL_RETRY_SECS: u64 = 30;

/// Middleware: every 429, 503 and 507 the server sends says when to come back, the wait the
/// refusal named or else a default.
pub(crate) async fn retry_after(mut response: Response) -> Response {
    ensure_retry_after(&mut response);
    response
}

fn ensure_retry_after(response: &mut Response) {
    let default = match response.status() {
        StatusCode::TOO_MANY_REQUESTS => RETRY_AFTER_BUSY_SECS,
        StatusCode::SERVICE_UNAVAILABLE => RETRY_AFTER_UNAVAILABLE_SECS,
        StatusCode::INSUFFICIENT_STORAGE => STORAGE_FULL_RETRY_SECS,
        _ => return,
    };
    response.headers_mut().entry(header::RETRY_AFTER).or_insert(HeaderValue::from(default));
}

tokio::task_local! {
    /// The data directory of the server handling the request, for messages that must name it.
    static DATA_DIR: std::sync::Arc<str>;
}

/// Middleware: runs the request with its server's data directory in scope, so a full disk's
/// message can name it.
pub async fn data_dir_scope(
    axum::extract::State(dir): axum::extract::State<std::sync::Arc<str>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    DATA_DIR.scope(dir, next.run(request)).await
}

/// What a client reads when the metadata store cannot be reached.
const STORE_UNREACHABLE_MESSAGE: &str = "the metadata store is unreachable or overloaded; nothing was changed by this request; retry after the `Retry-After` seconds";

/// What a client reads when the disk is full.
fn storage_full_message() -> String {
    let dir = DATA_DIR.try_with(|d| format!("`{d}`")).unwrap_or_else(|_| "of this server".to_owned());
    format!(
        "the disk holding the data directory {dir} is full; nothing was stored; free space there or grow the volume, then retry: writes resume without a restart"
    )
}

fn body_error_row(source: &std::io::Error) -> Row {
    if source.kind() == std::io::ErrorKind::TimedOut {
        row(OciCode::BlobUploadInvalid, StatusCode::REQUEST_TIMEOUT)
    } else {
        row(OciCode::BlobUploadInvalid, StatusCode::BAD_REQUEST)
    }
}

/// The challenge of a 401, and `Retry-After` of a throttled login or a rate-limited request.
fn auth_headers(error: &CallerError, response: &mut Response) {
    if let Some(challenge) = error.challenge()
        && let Ok(value) = HeaderValue::from_str(challenge)
    {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(retry_after_secs) = error.retry_after_secs() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
}

/// `Retry-After` of work refused because the CPU pool's queue was full.
fn busy_headers(error: &RegistryError, response: &mut Response) {
    if let RegistryError::Busy(CpuBusy::Full { retry_after_secs, .. }) = error {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
}

/// The row of an access failure, for the registry and the API alike.
pub(crate) fn classify_auth(error: &CallerError) -> Row {
    match error {
        CallerError::Missing { .. }
        | CallerError::InvalidToken { .. }
        | CallerError::BadCredentials
        | CallerError::Malformed(_) => row(OciCode::Unauthorized, StatusCode::UNAUTHORIZED),
        // RFC 6750 §3.1: a valid token without the scope is 403, with a challenge naming it, so
        // clients ask for a token with that scope.
        CallerError::InsufficientScope { .. } | CallerError::Denied(_) => row(OciCode::Denied, StatusCode::FORBIDDEN),
        CallerError::Invalid(_) => row(OciCode::Unsupported, StatusCode::BAD_REQUEST),
        CallerError::Unavailable(_) => UNAVAILABLE,
        CallerError::Throttled { .. } | CallerError::RateLimited { .. } => {
            row(OciCode::TooManyRequests, StatusCode::TOO_MANY_REQUESTS)
        }
        CallerError::NotFound(_) => row_api(OciCode::NameUnknown, StatusCode::NOT_FOUND, ApiCode::NotFound),
        CallerError::Store(_) | CallerError::Internal(_) => INTERNAL,
    }
}

fn classify(error: &ServerError) -> Row {
    use RequestError as Q;
    match error {
        ServerError::Registry(e) => classify_registry(e),
        ServerError::Auth(e) => classify_auth(e),
        ServerError::Request(e) => match e {
            Q::NameInvalid(_) => row(OciCode::NameInvalid, StatusCode::BAD_REQUEST),
            Q::DigestInvalid(_) => row(OciCode::DigestInvalid, StatusCode::BAD_REQUEST),
            Q::TagInvalid(_) => row_api(OciCode::ManifestInvalid, StatusCode::BAD_REQUEST, ApiCode::TagInvalid),
            Q::UploadInvalid(_) => row(OciCode::BlobUploadInvalid, StatusCode::BAD_REQUEST),
            Q::PaginationInvalid(_) => {
                row_api(OciCode::Unsupported, StatusCode::BAD_REQUEST, ApiCode::PaginationNumberInvalid)
            }
            Q::RangeInvalid(_) => row(OciCode::BlobUploadInvalid, StatusCode::RANGE_NOT_SATISFIABLE),
            Q::SizeInvalid(_) => row(OciCode::SizeInvalid, StatusCode::BAD_REQUEST),
            Q::NotFound { .. } => row_api(OciCode::Unsupported, StatusCode::NOT_FOUND, ApiCode::NotFound),
            Q::MethodNotAllowed { .. } => row(OciCode::Unsupported, StatusCode::METHOD_NOT_ALLOWED),
            Q::ManifestTooLarge { .. } => row(OciCode::ManifestInvalid, StatusCode::PAYLOAD_TOO_LARGE),
            Q::BodyTimeout(_) => row(OciCode::BlobUploadInvalid, StatusCode::REQUEST_TIMEOUT),
            Q::Body(_) => row(OciCode::BlobUploadInvalid, StatusCode::BAD_REQUEST),
            Q::Internal(_) => INTERNAL,
        },
    }
}

fn classify_registry(error: &RegistryError) -> Row {
    use RegistryError as R;
    {
        match error {
            R::StageUnknown { .. } => row(OciCode::NameInvalid, StatusCode::BAD_REQUEST),
            R::StageGated { .. } => row(OciCode::Denied, StatusCode::FORBIDDEN),
            R::WritesRefused { .. } | R::Busy(CpuBusy::Full { .. }) => UNAVAILABLE,
            R::Busy(CpuBusy::Lost) => INTERNAL,
            R::AttestationInvalid { .. } | R::AttestationSubjectMismatch { .. } => {
                row(OciCode::ManifestInvalid, StatusCode::BAD_REQUEST)
            }
            R::TooManyAttestations { .. } | R::AttestationsTooLarge { .. } => {
                row(OciCode::Denied, StatusCode::FORBIDDEN)
            }
            R::TrustRootInvalid { .. } => row(OciCode::Denied, StatusCode::BAD_REQUEST),
            R::NameUnknown { .. } => row(OciCode::NameUnknown, StatusCode::NOT_FOUND),
            R::BlobUnknown { .. } => row(OciCode::BlobUnknown, StatusCode::NOT_FOUND),
            R::UploadUnknown { .. } => row(OciCode::BlobUploadUnknown, StatusCode::NOT_FOUND),
            R::TooManyUploads { .. } => row(OciCode::TooManyRequests, StatusCode::TOO_MANY_REQUESTS),
            R::DigestMismatch { .. } => row(OciCode::DigestInvalid, StatusCode::BAD_REQUEST),
            R::OutOfOrder(_) => row(OciCode::BlobUploadInvalid, StatusCode::RANGE_NOT_SATISFIABLE),
            R::SizeMismatch { .. } => row(OciCode::SizeInvalid, StatusCode::BAD_REQUEST),
            R::ManifestUnknown { .. } => row(OciCode::ManifestUnknown, StatusCode::NOT_FOUND),
            R::ManifestInvalid(ManifestError::TooLarge { .. }) => {
                row(OciCode::ManifestInvalid, StatusCode::PAYLOAD_TOO_LARGE)
            }
            R::ManifestInvalid(_) => row(OciCode::ManifestInvalid, StatusCode::BAD_REQUEST),
            R::ManifestBlobUnknown { .. } | R::ManifestChildUnknown { .. } => {
                row(OciCode::ManifestBlobUnknown, StatusCode::BAD_REQUEST)
            }
            // OCI distribution spec, error codes: SIZE_INVALID is "provided length did not match
            // content length".
            R::DescriptorSizeMismatch { .. } => row(OciCode::SizeInvalid, StatusCode::BAD_REQUEST),
            R::DescriptorMediaTypeMismatch { .. }
            | R::IndexTooDeep { .. }
            | R::IndexGraphTooLarge { .. }
            | R::StoredManifestInvalid { .. } => row(OciCode::ManifestInvalid, StatusCode::BAD_REQUEST),
            R::TagImmutable { .. } => row(OciCode::Denied, StatusCode::FORBIDDEN),
            R::RangeNotSatisfiable { .. } => {
                row_api(OciCode::Unsupported, StatusCode::RANGE_NOT_SATISFIABLE, ApiCode::RangeInvalid)
            }
            R::BodyTooLarge(_) => row(OciCode::SizeInvalid, StatusCode::PAYLOAD_TOO_LARGE),
            R::Body(BlobError::Body(source)) => body_error_row(source),
            R::Body(_) => row(OciCode::BlobUploadInvalid, StatusCode::BAD_REQUEST),
            R::Store(_) | R::Blob(_) => INTERNAL,
        }
    }
}

/// `Retry-After` of a 429 that carries no wait of its own (too many upload sessions): seconds.
pub const RETRY_AFTER_BUSY_SECS: u64 = 10;
/// `Retry-After` of a 503 (writes refused, a store or provider unavailable, too many
/// connections): seconds.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 30;

/// The public message for an internal failure.
pub const INTERNAL_MESSAGE: &str =
    "internal error; the server log holds the detail under this response's `X-Request-Id`";

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let full = airlock_core::ports::storage_full(&self);
        let unreachable = !full && airlock_core::ports::store_unavailable(&self);
        let row = if full {
            STORAGE_FULL
        } else if unreachable {
            UNAVAILABLE
        } else {
            classify(&self)
        };
        // Internal failures say nothing; a deliberate refusal (writes refused, a full disk) says why.
        let message = if unreachable {
            tracing::warn!(error = %self, "the metadata store is unreachable; request refused");
            STORE_UNREACHABLE_MESSAGE.to_owned()
        } else if row.internal() {
            tracing::error!(error = %self, "request failed");
            INTERNAL_MESSAGE.to_owned()
        } else if full {
            tracing::error!(error = %self, "the disk is full; write refused");
            storage_full_message()
        } else {
            tracing::info!(code = row.oci.as_str(), status = row.status.as_u16(), error = %self, "request refused");
            self.to_string()
        };
        let body = ErrorBody {
            errors: vec![ErrorEntry { code: row.oci.as_str().to_owned(), message, detail: serde_json::Value::Null }],
        };
        let mut response = (row.status, Json(body)).into_response();
        if let ServerError::Auth(e) = &self {
            auth_headers(e, &mut response);
        }
        if let ServerError::Registry(e) = &self {
            busy_headers(e, &mut response);
        }
        if row.status == StatusCode::REQUEST_TIMEOUT {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Everything an `/api/v1` handler can fail with; mapped to `{"error":{...}}` bodies.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadParameter { message: String, remediation: String },
    /// A well-formed request the rules refuse (a trust root that does not follow the current one).
    #[error("{message}")]
    Rejected { code: ApiCode, message: String, remediation: String },
    /// A registry failure surfacing through the API; mapped like the `/v2` error table.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    NotFound(String),
    /// Too many requests of one kind from one principal; retry after the given seconds.
    #[error("{message}")]
    Throttled { message: String, remediation: String, retry_after_secs: u64 },
    /// The request conflicts with the current state (a promotion already decided).
    #[error("{message}")]
    Conflict { message: String, remediation: String },
    /// An access failure: credentials, tokens, authorization.
    #[error(transparent)]
    Auth(#[from] CallerError),
    /// A body larger than the route's limit; names the config key that sets it.
    #[error("the body is larger than {max} bytes (config key `{key}`)")]
    BodyTooLarge { max: usize, key: &'static str },
    /// A body that stalled or arrived too slowly; the connection is closed after the answer.
    #[error("request body stalled: {0}")]
    BodyTimeout(String),
    #[error("internal failure: {0}")]
    Internal(String),
    /// The metadata store failed: unreachable (503), a full disk (507), or internal.
    #[error(transparent)]
    Store(#[from] airlock_core::ports::StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let full = airlock_core::ports::storage_full(&self);
        let unreachable = !full && airlock_core::ports::store_unavailable(&self);
        let (status, code, message, remediation) = match &self {
            _ if full => {
                tracing::error!(error = %self, "the disk is full; api request refused");
                (STORAGE_FULL.status, STORAGE_FULL.api_code(), storage_full_message(), None)
            }
            _ if unreachable => {
                tracing::warn!(error = %self, "the metadata store is unreachable; api request refused");
                (UNAVAILABLE.status, UNAVAILABLE.api_code(), STORE_UNREACHABLE_MESSAGE.to_owned(), None)
            }
            ApiError::Store(e) => {
                tracing::error!(error = %e, "api request failed");
                (INTERNAL.status, INTERNAL.api_code(), INTERNAL_MESSAGE.to_owned(), None)
            }
            ApiError::BadParameter { message, remediation } => {
                (StatusCode::BAD_REQUEST, ApiCode::InvalidParameter.as_str(), message.clone(), Some(remediation.clone()))
            }
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, ApiCode::NotFound.as_str(), message.clone(), None),
            ApiError::Conflict { message, remediation } => {
                (StatusCode::CONFLICT, ApiCode::Conflict.as_str(), message.clone(), Some(remediation.clone()))
            }
            ApiError::Throttled { message, remediation, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, OciCode::TooManyRequests.as_str(), message.clone(), Some(remediation.clone()))
            }
            ApiError::Rejected { code, message, remediation } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code.as_str(), message.clone(), Some(remediation.clone()))
            }
            ApiError::Registry(e) => {
                let row = classify_registry(e);
                if row.internal() {
                    tracing::error!(error = %e, "api request failed");
                    (row.status, row.api_code(), INTERNAL_MESSAGE.to_owned(), None)
                } else {
                    (row.status, row.api_code(), e.to_string(), None)
                }
            }
            ApiError::Auth(e) => {
                let row = classify_auth(e);
                if row.internal() {
                    tracing::error!(error = %e, "api request failed");
                    (row.status, row.api_code(), INTERNAL_MESSAGE.to_owned(), None)
                } else {
                    // Say how to authenticate, so a refused anonymous request (the first trust
                    // root, say) is not a dead end.
                    let remediation = matches!(e, CallerError::Missing { .. }).then(|| {
                        "log in with `airlock login URL` as a principal whose roles allow this request, then retry; API clients send the token from `POST /api/v1/auth/token` as `Authorization: Bearer`".to_owned()
                    });
                    (row.status, row.api_code(), e.to_string(), remediation)
                }
            }
            ApiError::BodyTooLarge { key, .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ApiCode::TooLarge.as_str(),
                self.to_string(),
                Some(format!("send a smaller body, or have the operator raise `{key}`")),
            ),
            ApiError::BodyTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                ApiCode::Timeout.as_str(),
                self.to_string(),
                Some("send the whole body without pausing (config keys `limits.body_idle_timeout_secs` and `limits.body_min_bytes_per_sec`)".to_owned()),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "api request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, ApiCode::Internal.as_str(), INTERNAL_MESSAGE.to_owned(), None)
            }
        };
        let body = airlock_api::v1::ErrorBody {
            error: airlock_api::v1::ApiError { code: code.to_owned(), message, remediation, doc: None },
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::Auth(e) = &self {
            auth_headers(e, &mut response);
        }
        if let ApiError::Registry(e) = &self {
            busy_headers(e, &mut response);
        }
        if let ApiError::Throttled { retry_after_secs, .. } = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<crate::log::LogError> for ApiError {
    fn from(e: crate::log::LogError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<PromotionError> for ApiError {
    fn from(e: PromotionError) -> Self {
        let message = e.to_string();
        match e {
            PromotionError::Registry(e) => ApiError::Registry(e),
            PromotionError::Store(e) => ApiError::Store(e),
            PromotionError::Seal(detail) => ApiError::Internal(detail),
            PromotionError::Unknown { .. } => ApiError::NotFound(message),
            PromotionError::NotPromotable { .. }
            | PromotionError::WrongSource { .. }
            | PromotionError::NoApprovalNeeded { .. }
            | PromotionError::GraphTooLarge { .. } => ApiError::BadParameter {
                message,
                remediation: "see `airlock promote --help` and the stages in `GET /api/v1/system`".to_owned(),
            },
            PromotionError::ApprovalRefused { .. } => ApiError::Rejected {
                code: ApiCode::ApprovalRefused,
                message,
                remediation: "ask another eligible approver; `airlock promotion show ID` lists what is missing"
                    .to_owned(),
            },
            PromotionError::NotPending { .. }
            | PromotionError::TagImmutable { .. }
            | PromotionError::Missing { .. } => {
                ApiError::Conflict { message, remediation: "show it with `airlock promotion show ID`".to_owned() }
            }
            PromotionError::Conflict { .. } => {
                ApiError::Conflict { message, remediation: "look at the current state and try again".to_owned() }
            }
            PromotionError::NotFound { .. } => ApiError::NotFound(message),
            PromotionError::Refused { .. } => ApiError::Rejected {
                code: ApiCode::Refused,
                message,
                remediation: "see the command's `--help` for its rules".to_owned(),
            },
            PromotionError::PolicyUnavailable { message, remediation } => {
                ApiError::Rejected { code: ApiCode::PolicyUntrusted, message, remediation }
            }
            PromotionError::Access(e) => ApiError::Auth(CallerError::from(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use airlock_core::ports::StoreError;
    use airlock_model::{Digest, RepoName, StageName};

    #[tokio::test]
    async fn internal_errors_say_nothing_internal() {
        let inner = StoreError { operation: "blob lookup", source: "disk /var/secret on fire".into() };
        let response = ServerError::Registry(RegistryError::Store(inner)).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("secret") && !text.contains("blob lookup"), "{text}");
        assert!(text.contains("\"code\":\"UNSUPPORTED\""), "{text}");
    }

    fn store_error() -> StoreError {
        StoreError { operation: "read", source: "gone".into() }
    }

    /// One value of every `ApiError` variant, named; the match makes a new variant break this
    /// test until it has a row.
    fn api_errors() -> Vec<(String, ApiError)> {
        let mut out: Vec<ApiError> = vec![
            ApiError::BadParameter { message: "m".to_owned(), remediation: "r".to_owned() },
            ApiError::NotFound("m".to_owned()),
            ApiError::Throttled { message: "m".to_owned(), remediation: "r".to_owned(), retry_after_secs: 3 },
            ApiError::Conflict { message: "m".to_owned(), remediation: "r".to_owned() },
            ApiError::BodyTooLarge { max: 1, key: "limits.api_body_max_bytes" },
            ApiError::BodyTimeout("m".to_owned()),
            ApiError::Internal("m".to_owned()),
            ApiError::Store(store_error()),
            ApiError::Store(StoreError {
                operation: "read",
                source: Box::new(std::io::Error::new(std::io::ErrorKind::NotConnected, "connection refused")),
            }),
            ApiError::Store(StoreError {
                operation: "write",
                source: Box::new(std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full")),
            }),
            ApiError::Registry(RegistryError::WritesRefused { reason: "r".to_owned() }),
            ApiError::Registry(RegistryError::NameUnknown { repo: RepoName::parse("prod/app").unwrap() }),
            ApiError::Auth(CallerError::Missing { realm: "r".to_owned(), challenge: "c".to_owned() }),
        ];
        for code in [ApiCode::ApprovalRefused, ApiCode::Refused, ApiCode::TrustRootRefused, ApiCode::PolicyUntrusted] {
            out.push(ApiError::Rejected { code, message: "m".to_owned(), remediation: "r".to_owned() });
        }
        out.into_iter()
            .map(|e| {
                let name = match &e {
                    ApiError::BadParameter { .. } => "BadParameter".to_owned(),
                    ApiError::Rejected { code, .. } => format!("Rejected({code:?})"),
                    ApiError::Registry(r) => {
                        format!("Registry({})", format!("{r:?}").split([' ', '(']).next().unwrap())
                    }
                    ApiError::NotFound(_) => "NotFound".to_owned(),
                    ApiError::Throttled { .. } => "Throttled".to_owned(),
                    ApiError::Conflict { .. } => "Conflict".to_owned(),
                    ApiError::Auth(_) => "Auth(Missing)".to_owned(),
                    ApiError::BodyTooLarge { .. } => "BodyTooLarge".to_owned(),
                    ApiError::BodyTimeout(_) => "BodyTimeout".to_owned(),
                    ApiError::Internal(_) => "Internal".to_owned(),
                    ApiError::Store(s) => format!("Store({})", s.source),
                };
                (name, e)
            })
            .collect()
    }

    fn caller_errors() -> Vec<(&'static str, CallerError)> {
        let errors = vec![
            CallerError::Missing { realm: "r".to_owned(), challenge: "c".to_owned() },
            CallerError::InvalidToken { reason: "r".to_owned(), challenge: "c".to_owned() },
            CallerError::InsufficientScope { scope: "s".to_owned(), challenge: "c".to_owned() },
            CallerError::BadCredentials,
            CallerError::Malformed("m".to_owned()),
            CallerError::Denied("m".to_owned()),
            CallerError::Invalid("m".to_owned()),
            CallerError::Throttled { retry_after_secs: 3 },
            CallerError::RateLimited { who: "w".to_owned(), burst: 1, per_minute: 1, retry_after_secs: 3, hint: "" },
            CallerError::NotFound("m".to_owned()),
            CallerError::Unavailable("m".to_owned()),
            CallerError::Store(store_error()),
            CallerError::Internal("m".to_owned()),
        ];
        errors
            .into_iter()
            .map(|e| {
                let name = match &e {
                    CallerError::Missing { .. } => "Missing",
                    CallerError::InvalidToken { .. } => "InvalidToken",
                    CallerError::InsufficientScope { .. } => "InsufficientScope",
                    CallerError::BadCredentials => "BadCredentials",
                    CallerError::Malformed(_) => "Malformed",
                    CallerError::Denied(_) => "Denied",
                    CallerError::Invalid(_) => "Invalid",
                    CallerError::Throttled { .. } => "Throttled",
                    CallerError::RateLimited { .. } => "RateLimited",
                    CallerError::NotFound(_) => "NotFound",
                    CallerError::Unavailable(_) => "Unavailable",
                    CallerError::Store(_) => "Store",
                    CallerError::Internal(_) => "Internal",
                };
                (name, e)
            })
            .collect()
    }

    fn promotion_errors() -> Vec<(&'static str, PromotionError)> {
        let stage = || StageName::parse("prod").unwrap();
        let repo = || RepoName::parse("prod/app").unwrap();
        let digest = || Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let id = || "p-1".to_owned();
        let errors = vec![
            PromotionError::Registry(RegistryError::WritesRefused { reason: "r".to_owned() }),
            PromotionError::Store(store_error()),
            PromotionError::NotPromotable { stage: stage(), known: "staging".to_owned() },
            PromotionError::WrongSource {
                source_stage: stage(),
                target: stage(),
                expected: stage(),
                next: "s".to_owned(),
            },
            PromotionError::Unknown { id: id() },
            PromotionError::NotPending { id: id(), status: "promoted" },
            PromotionError::NoApprovalNeeded { stage: stage() },
            PromotionError::ApprovalRefused { id: id(), reason: "r".to_owned() },
            PromotionError::TagImmutable { id: id(), tag: "1".to_owned(), repo: repo(), current: digest() },
            PromotionError::Missing { id: id(), repo: repo(), digest: digest() },
            PromotionError::GraphTooLarge { digest: digest() },
            PromotionError::Seal("s".to_owned()),
            PromotionError::Refused { message: "m".to_owned() },
            PromotionError::Conflict { message: "m".to_owned() },
            PromotionError::NotFound { message: "m".to_owned() },
            PromotionError::PolicyUnavailable { message: "m".to_owned(), remediation: "r".to_owned() },
            PromotionError::Access(airlock_core::identity::IdentityError::Denied("m".to_owned())),
        ];
        errors
            .into_iter()
            .map(|e| {
                let name = match &e {
                    PromotionError::Registry(_) => "Registry(WritesRefused)",
                    PromotionError::Store(_) => "Store",
                    PromotionError::NotPromotable { .. } => "NotPromotable",
                    PromotionError::WrongSource { .. } => "WrongSource",
                    PromotionError::Unknown { .. } => "Unknown",
                    PromotionError::NotPending { .. } => "NotPending",
                    PromotionError::NoApprovalNeeded { .. } => "NoApprovalNeeded",
                    PromotionError::ApprovalRefused { .. } => "ApprovalRefused",
                    PromotionError::TagImmutable { .. } => "TagImmutable",
                    PromotionError::Missing { .. } => "Missing",
                    PromotionError::GraphTooLarge { .. } => "GraphTooLarge",
                    PromotionError::Seal(_) => "Seal",
                    PromotionError::Refused { .. } => "Refused",
                    PromotionError::Conflict { .. } => "Conflict",
                    PromotionError::NotFound { .. } => "NotFound",
                    PromotionError::PolicyUnavailable { .. } => "PolicyUnavailable",
                    PromotionError::Access(_) => "Access(Denied)",
                };
                (name, e)
            })
            .collect()
    }

    /// Status and `/api/v1` code of an error, as a client sees them.
    async fn seen(error: ApiError) -> String {
        let response = error.into_response();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
        let body: airlock_api::v1::ErrorBody = serde_json::from_slice(&body).unwrap();
        format!("{status} {}", body.error.code)
    }

    /// The `/api/v1` error table: every variant with the status and code it answers with.
    #[tokio::test]
    async fn every_api_error_has_its_status_and_code() {
        let mut table = String::new();
        for (name, error) in api_errors() {
            table.push_str(&format!("ApiError::{name:<34} {}\n", seen(error).await));
        }
        for (name, error) in caller_errors() {
            table.push_str(&format!("CallerError::{name:<31} {}\n", seen(ApiError::Auth(error)).await));
        }
        for (name, error) in promotion_errors() {
            table.push_str(&format!("PromotionError::{name:<28} {}\n", seen(ApiError::from(error)).await));
        }
        expect_test::expect![[r#"
            ApiError::BadParameter                       400 INVALID_PARAMETER
            ApiError::NotFound                           404 NOT_FOUND
            ApiError::Throttled                          429 TOOMANYREQUESTS
            ApiError::Conflict                           409 CONFLICT
            ApiError::BodyTooLarge                       413 TOO_LARGE
            ApiError::BodyTimeout                        408 TIMEOUT
            ApiError::Internal                           500 INTERNAL
            ApiError::Store(gone)                        500 INTERNAL
            ApiError::Store(connection refused)          503 UNAVAILABLE
            ApiError::Store(disk full)                   507 INSUFFICIENT_STORAGE
            ApiError::Registry(WritesRefused)            503 UNAVAILABLE
            ApiError::Registry(NameUnknown)              404 NAME_UNKNOWN
            ApiError::Auth(Missing)                      401 UNAUTHORIZED
            ApiError::Rejected(ApprovalRefused)          422 APPROVAL_REFUSED
            ApiError::Rejected(Refused)                  422 REFUSED
            ApiError::Rejected(TrustRootRefused)         422 TRUST_ROOT_REFUSED
            ApiError::Rejected(PolicyUntrusted)          422 POLICY_UNTRUSTED
            CallerError::Missing                         401 UNAUTHORIZED
            CallerError::InvalidToken                    401 UNAUTHORIZED
            CallerError::InsufficientScope               403 DENIED
            CallerError::BadCredentials                  401 UNAUTHORIZED
            CallerError::Malformed                       401 UNAUTHORIZED
            CallerError::Denied                          403 DENIED
            CallerError::Invalid                         400 UNSUPPORTED
            CallerError::Throttled                       429 TOOMANYREQUESTS
            CallerError::RateLimited                     429 TOOMANYREQUESTS
            CallerError::NotFound                        404 NOT_FOUND
            CallerError::Unavailable                     503 UNAVAILABLE
            CallerError::Store                           500 INTERNAL
            CallerError::Internal                        500 INTERNAL
            PromotionError::Registry(WritesRefused)      503 UNAVAILABLE
            PromotionError::Store                        500 INTERNAL
            PromotionError::NotPromotable                400 INVALID_PARAMETER
            PromotionError::WrongSource                  400 INVALID_PARAMETER
            PromotionError::Unknown                      404 NOT_FOUND
            PromotionError::NotPending                   409 CONFLICT
            PromotionError::NoApprovalNeeded             400 INVALID_PARAMETER
            PromotionError::ApprovalRefused              422 APPROVAL_REFUSED
            PromotionError::TagImmutable                 409 CONFLICT
            PromotionError::Missing                      409 CONFLICT
            PromotionError::GraphTooLarge                400 INVALID_PARAMETER
            PromotionError::Seal                         500 INTERNAL
            PromotionError::Refused                      422 REFUSED
            PromotionError::Conflict                     409 CONFLICT
            PromotionError::NotFound                     404 NOT_FOUND
            PromotionError::PolicyUnavailable            422 POLICY_UNTRUSTED
            PromotionError::Access(Denied)               403 DENIED
        "#]]
        .assert_eq(&table);
    }
}
