//! `/api/v1/stages/*`, `/api/v1/waivers`, `/api/v1/rollbacks` and `/api/v1/reviews`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/stages/{stage}/freeze`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    pub reason: String,
}

/// A freeze in force: the answer of a freeze and each item of `GET /api/v1/stages/freezes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Freeze {
    pub stage: String,
    pub reason: String,
    pub frozen_by: String,
    pub frozen_at: String,
    /// The first person asking to lift it, waiting for a second.
    pub unfreeze_requested_by: Option<String>,
}

/// `POST /api/v1/stages/{stage}/unfreeze`: still frozen, waiting for a second person
/// (`unfreeze_requested_by`), or lifted by two (`lifted_by`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Unfreeze {
    pub stage: String,
    pub frozen: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfreeze_requested_by: Option<String>,
    /// The two people who lifted it, first and second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_by: Option<Vec<String>>,
}

/// `POST /api/v1/waivers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiverRequest {
    /// The policy rule waived, `no-critical-vulnerabilities`.
    pub rule: String,
    #[serde(default)]
    pub vulnerability: Option<String>,
    #[serde(default)]
    pub component: Option<String>,
    /// A repository pattern, `*/payments/api`.
    pub repository: String,
    /// RFC 3339.
    pub expires: String,
    pub justification: String,
}

/// A waiver: the answer of each change to one and each item of `GET /api/v1/waivers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Waiver {
    pub id: String,
    /// `pending`, `active`, `denied` or `revoked`.
    pub status: String,
    pub rule: String,
    pub vulnerability: Option<String>,
    pub component: Option<String>,
    pub repository: String,
    pub justification: String,
    pub requester: String,
    pub approver: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub expires_at: String,
}

/// `POST /api/v1/rollbacks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The gated repository, `prod/app`.
    pub repository: String,
    pub tag: String,
    /// `previous`, or a digest promoted there before.
    pub to: String,
    pub reason: String,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rollback {
    pub repository: String,
    pub tag: String,
    /// The digest the tag named before.
    pub from: String,
    /// The digest it names now.
    pub to: String,
    pub log_index: u64,
}

/// A break-glass follow-up review: each item of `GET /api/v1/reviews` and the answer of
/// closing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Review {
    pub id: String,
    /// The promotion it follows.
    pub promotion: String,
    pub open: bool,
    pub opened_at: String,
    pub closed_by: Option<String>,
    pub closed_at: Option<String>,
    pub note: Option<String>,
}

/// `POST /api/v1/reviews/{id}/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewClose {
    pub note: String,
}
