//! `/api/v1` bodies: one type for every request and response body, named for what it holds.
//!
//! Shapes are exactly what the server sends and accepts: a field that is `null` on the wire is an
//! `Option` serialized as `null`; a field that is left out when empty says so with
//! `skip_serializing_if`. Requests refuse unknown fields. Times are RFC 3339 strings, digests
//! `sha256:<hex>` strings, statuses lowercase strings.

mod control;
mod identity;
mod log;
mod promotion;
mod trust;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use control::*;
pub use identity::*;
pub use log::*;
pub use promotion::*;
pub use trust::*;

/// `{"error":{...}}`, the body of every `/api/v1` error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// What went wrong, what to do about it, and where it is documented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// A stable code, `INVALID_PARAMETER`, `NOT_FOUND`, `APPROVAL_REFUSED`, ...
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// `GET /api/v1/system`: what this server is and how it is set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SystemInfo {
    pub version: String,
    pub stages: Vec<StageInfo>,
}

/// One configured stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StageInfo {
    pub name: String,
    pub pushable: bool,
}
