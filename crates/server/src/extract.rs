//! The one reader of `/api/v1` request bodies: bounded by a named limit (a config key), with the
//! registry's idle timeout and minimum rate, answering 413, 400 or 408, never an empty body.

use axum::body::{Body, Bytes, HttpBody};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::ApiError;

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

/// The body as JSON of type `T`; `example` is what the 400 tells the client to send.
pub async fn json<T: DeserializeOwned>(app: &AppState, body: Body, limit: Limit, example: &str) -> Result<T, ApiError> {
    let bytes = bytes(app, body, limit).await?;
    parse(&bytes, example)
}

/// Like [`json`], with `T::default()` for an empty body (a body whose fields are all optional).
pub async fn json_or_default<T: DeserializeOwned + Default>(
    app: &AppState,
    body: Body,
    limit: Limit,
    example: &str,
) -> Result<T, ApiError> {
    let bytes = bytes(app, body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse(&bytes, example)
}

fn parse<T: DeserializeOwned>(bytes: &[u8], example: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadParameter {
        message: format!("the body is not valid JSON for this request: {e}"),
        remediation: format!("send `{example}`"),
    })
}
