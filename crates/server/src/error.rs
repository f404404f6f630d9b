//! The one error table: every failure a client can see maps here to an OCI code, a status and a
//! public message. 5xx bodies say nothing internal; the detail goes to the log with the request id.

use crate::caller::CallerError;
use airlock_api::oci::{ErrorBody, ErrorEntry};
use airlock_core::RegistryError;
use airlock_core::ports::BlobError;
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

/// One row of the table.
pub(crate) struct Row {
    code: &'static str,
    status: StatusCode,
}

const fn row(code: &'static str, status: StatusCode) -> Row {
    Row { code, status }
}

fn body_error_row(source: &std::io::Error) -> Row {
    if source.kind() == std::io::ErrorKind::TimedOut {
        row("BLOB_UPLOAD_INVALID", StatusCode::REQUEST_TIMEOUT)
    } else {
        row("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST)
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

/// The row of an access failure, for the registry and the API alike.
pub(crate) fn classify_auth(error: &CallerError) -> Row {
    match error {
        CallerError::Missing { .. }
        | CallerError::InvalidToken { .. }
        | CallerError::BadCredentials
        | CallerError::Malformed(_) => row("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
        // RFC 6750 §3.1: a valid token without the scope is 403, with a challenge naming it, so
        // clients ask for a token with that scope.
        CallerError::InsufficientScope { .. } | CallerError::Denied(_) => row("DENIED", StatusCode::FORBIDDEN),
        CallerError::Invalid(_) => row("UNSUPPORTED", StatusCode::BAD_REQUEST),
        CallerError::Unavailable(_) => row("UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
        CallerError::Throttled { .. } | CallerError::RateLimited { .. } => {
            row("TOOMANYREQUESTS", StatusCode::TOO_MANY_REQUESTS)
        }
        CallerError::NotFound(_) => row("NOT_FOUND", StatusCode::NOT_FOUND),
        CallerError::Store(_) | CallerError::Internal(_) => row("INTERNAL", StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn classify(error: &ServerError) -> Row {
    use RequestError as Q;
    match error {
        ServerError::Registry(e) => classify_registry(e),
        ServerError::Auth(e) => classify_auth(e),
        ServerError::Request(e) => match e {
            Q::NameInvalid(_) => row("NAME_INVALID", StatusCode::BAD_REQUEST),
            Q::DigestInvalid(_) => row("DIGEST_INVALID", StatusCode::BAD_REQUEST),
            Q::TagInvalid(_) => row("TAG_INVALID", StatusCode::BAD_REQUEST),
            Q::UploadInvalid(_) => row("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            Q::PaginationInvalid(_) => row("PAGINATION_NUMBER_INVALID", StatusCode::BAD_REQUEST),
            Q::RangeInvalid(_) => row("RANGE_INVALID", StatusCode::RANGE_NOT_SATISFIABLE),
            Q::SizeInvalid(_) => row("SIZE_INVALID", StatusCode::BAD_REQUEST),
            Q::NotFound { .. } => row("NOT_FOUND", StatusCode::NOT_FOUND),
            Q::MethodNotAllowed { .. } => row("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED),
            Q::ManifestTooLarge { .. } => row("MANIFEST_INVALID", StatusCode::PAYLOAD_TOO_LARGE),
            Q::BodyTimeout(_) => row("BLOB_UPLOAD_INVALID", StatusCode::REQUEST_TIMEOUT),
            Q::Body(_) => row("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            Q::Internal(_) => row("INTERNAL", StatusCode::INTERNAL_SERVER_ERROR),
        },
    }
}

fn classify_registry(error: &RegistryError) -> Row {
    use RegistryError as R;
    {
        match error {
            R::StageUnknown { .. } => row("NAME_INVALID", StatusCode::BAD_REQUEST),
            R::StageGated { .. } => row("DENIED", StatusCode::FORBIDDEN),
            R::WritesRefused { .. } => row("UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
            R::AttestationInvalid { .. } | R::AttestationSubjectMismatch { .. } => {
                row("MANIFEST_INVALID", StatusCode::BAD_REQUEST)
            }
            R::TooManyAttestations { .. } | R::AttestationsTooLarge { .. } => row("DENIED", StatusCode::FORBIDDEN),
            R::TrustRootInvalid { .. } => row("DENIED", StatusCode::BAD_REQUEST),
            R::NameUnknown { .. } => row("NAME_UNKNOWN", StatusCode::NOT_FOUND),
            R::BlobUnknown { .. } => row("BLOB_UNKNOWN", StatusCode::NOT_FOUND),
            R::UploadUnknown { .. } => row("BLOB_UPLOAD_UNKNOWN", StatusCode::NOT_FOUND),
            R::TooManyUploads { .. } => row("TOOMANYREQUESTS", StatusCode::TOO_MANY_REQUESTS),
            R::DigestMismatch { .. } => row("DIGEST_INVALID", StatusCode::BAD_REQUEST),
            R::OutOfOrder(_) => row("BLOB_UPLOAD_INVALID", StatusCode::RANGE_NOT_SATISFIABLE),
            R::SizeMismatch { .. } => row("SIZE_INVALID", StatusCode::BAD_REQUEST),
            R::ManifestUnknown { .. } => row("MANIFEST_UNKNOWN", StatusCode::NOT_FOUND),
            R::ManifestInvalid(ManifestError::TooLarge { .. }) => {
                row("MANIFEST_INVALID", StatusCode::PAYLOAD_TOO_LARGE)
            }
            R::ManifestInvalid(_) => row("MANIFEST_INVALID", StatusCode::BAD_REQUEST),
            R::ManifestBlobUnknown { .. } | R::ManifestChildUnknown { .. } => {
                row("MANIFEST_BLOB_UNKNOWN", StatusCode::BAD_REQUEST)
            }
            // OCI distribution spec, error codes: SIZE_INVALID is "provided length did not match
            // content length".
            R::DescriptorSizeMismatch { .. } => row("SIZE_INVALID", StatusCode::BAD_REQUEST),
            R::DescriptorMediaTypeMismatch { .. }
            | R::IndexTooDeep { .. }
            | R::IndexGraphTooLarge { .. }
            | R::StoredManifestInvalid { .. } => row("MANIFEST_INVALID", StatusCode::BAD_REQUEST),
            R::TagImmutable { .. } => row("DENIED", StatusCode::FORBIDDEN),
            R::RangeNotSatisfiable { .. } => row("RANGE_INVALID", StatusCode::RANGE_NOT_SATISFIABLE),
            R::BodyTooLarge(_) => row("SIZE_INVALID", StatusCode::PAYLOAD_TOO_LARGE),
            R::Body(BlobError::Body(source)) => body_error_row(source),
            R::Body(_) => row("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            R::Store(_) | R::Blob(_) => row("INTERNAL", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// The public message for an internal failure.
pub const INTERNAL_MESSAGE: &str =
    "internal error; the server log holds the detail under this response's `X-Request-Id`";

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let row = classify(&self);
        // Internal failures say nothing; a deliberate 503 (writes refused) says why.
        let message = if row.code == "INTERNAL" {
            tracing::error!(error = %self, "request failed");
            INTERNAL_MESSAGE.to_owned()
        } else {
            tracing::info!(code = row.code, status = row.status.as_u16(), error = %self, "request refused");
            self.to_string()
        };
        let body = ErrorBody {
            errors: vec![ErrorEntry { code: row.code.to_owned(), message, detail: serde_json::Value::Null }],
        };
        let mut response = (row.status, Json(body)).into_response();
        if let ServerError::Auth(e) = &self {
            auth_headers(e, &mut response);
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
        assert!(text.contains("\"code\":\"INTERNAL\""), "{text}");
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
    #[error("internal failure: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, remediation) = match &self {
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
                if row.code == "INTERNAL" {
                    tracing::error!(error = %e, "api request failed");
                    (row.status, row.code, INTERNAL_MESSAGE.to_owned(), None)
                } else {
                    (row.status, row.code, e.to_string(), None)
                }
            }
            ApiError::Auth(e) => {
                let row = classify_auth(e);
                if row.code == "INTERNAL" {
                    tracing::error!(error = %e, "api request failed");
                    (row.status, row.code, INTERNAL_MESSAGE.to_owned(), None)
                } else {
                    // Say how to authenticate, so a refused anonymous request (the first trust
                    // root, say) is not a dead end.
                    let remediation = matches!(e, CallerError::Missing { .. }).then(|| {
                        "log in with `airlock login URL` as a principal whose roles allow this request, then retry; API clients send the token from `POST /api/v1/auth/token` as `Authorization: Bearer`".to_owned()
                    });
                    (row.status, row.code, e.to_string(), remediation)
                }
            }
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
        if let ApiError::Throttled { retry_after_secs, .. } = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}
