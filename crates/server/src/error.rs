//! The one error table: every failure a client can see maps here to an OCI code, a status and a
//! public message. 5xx bodies say nothing internal; the detail goes to the log with the request id.

use crate::caller::CallerError;
use airlock_api::oci::{ErrorBody, ErrorEntry};
use airlock_core::RegistryError;
use airlock_core::ports::{BlobError, CpuBusy};
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

/// One row of the table: the OCI code and status `/v2` answers with, and the code `/api/v1`
/// answers with where it has a more precise one of its own.
pub(crate) struct Row {
    oci: OciCode,
    status: StatusCode,
    api: Option<&'static str>,
}

impl Row {
    /// The code of an `/api/v1` body.
    fn api_code(&self) -> &'static str {
        self.api.unwrap_or(self.oci.as_str())
    }

    fn internal(&self) -> bool {
        self.status == StatusCode::INTERNAL_SERVER_ERROR
    }
}

const fn row(oci: OciCode, status: StatusCode) -> Row {
    Row { oci, status, api: None }
}

const fn row_api(oci: OciCode, status: StatusCode, api: &'static str) -> Row {
    Row { oci, status, api: Some(api) }
}

const INTERNAL: Row = row_api(OciCode::Unsupported, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL");
const UNAVAILABLE: Row = row_api(OciCode::Denied, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
const STORAGE_FULL: Row = row_api(OciCode::Denied, StatusCode::INSUFFICIENT_STORAGE, "INSUFFICIENT_STORAGE");

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
        CallerError::NotFound(_) => row_api(OciCode::NameUnknown, StatusCode::NOT_FOUND, "NOT_FOUND"),
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
            Q::TagInvalid(_) => row_api(OciCode::ManifestInvalid, StatusCode::BAD_REQUEST, "TAG_INVALID"),
            Q::UploadInvalid(_) => row(OciCode::BlobUploadInvalid, StatusCode::BAD_REQUEST),
            Q::PaginationInvalid(_) => {
                row_api(OciCode::Unsupported, StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID")
            }
            Q::RangeInvalid(_) => row(OciCode::BlobUploadInvalid, StatusCode::RANGE_NOT_SATISFIABLE),
            Q::SizeInvalid(_) => row(OciCode::SizeInvalid, StatusCode::BAD_REQUEST),
            Q::NotFound { .. } => row_api(OciCode::Unsupported, StatusCode::NOT_FOUND, "NOT_FOUND"),
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
                row_api(OciCode::Unsupported, StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID")
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
        let row = if full { STORAGE_FULL } else { classify(&self) };
        // Internal failures say nothing; a deliberate refusal (writes refused, a full disk) says why.
        let message = if row.internal() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::ports::StoreError;

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
}

/// Everything an `/api/v1` handler can fail with; mapped to `{"error":{...}}` bodies.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadParameter { message: String, remediation: String },
    /// A well-formed request the rules refuse (a trust root that does not follow the current one).
    #[error("{message}")]
    Rejected { code: &'static str, message: String, remediation: String },
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let full = airlock_core::ports::storage_full(&self);
        let (status, code, message, remediation) = match &self {
            _ if full => {
                tracing::error!(error = %self, "the disk is full; api request refused");
                (STORAGE_FULL.status, STORAGE_FULL.api_code(), storage_full_message(), None)
            }
            ApiError::BadParameter { message, remediation } => {
                (StatusCode::BAD_REQUEST, "INVALID_PARAMETER", message.clone(), Some(remediation.clone()))
            }
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, "NOT_FOUND", message.clone(), None),
            ApiError::Conflict { message, remediation } => {
                (StatusCode::CONFLICT, "CONFLICT", message.clone(), Some(remediation.clone()))
            }
            ApiError::Throttled { message, remediation, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", message.clone(), Some(remediation.clone()))
            }
            ApiError::Rejected { code, message, remediation } => {
                (StatusCode::UNPROCESSABLE_ENTITY, *code, message.clone(), Some(remediation.clone()))
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
                "TOO_LARGE",
                self.to_string(),
                Some(format!("send a smaller body, or have the operator raise `{key}`")),
            ),
            ApiError::BodyTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "TIMEOUT",
                self.to_string(),
                Some("send the whole body without pausing (config keys `limits.body_idle_timeout_secs` and `limits.body_min_bytes_per_sec`)".to_owned()),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "api request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", INTERNAL_MESSAGE.to_owned(), None)
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
