//! `/api/v1/auth/*`, `/api/v1/principals`, `/api/v1/roles` and `/api/v1/access/requests`:
//! tokens, principals, roles and grants.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/auth/token` and `POST /api/v1/auth/refresh`: an API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub token: String,
    /// Seconds.
    pub expires_in: u64,
    pub issued_at: String,
    pub principal: String,
    /// `user` or `service_account`.
    pub kind: String,
    pub roles: Vec<String>,
}

/// A principal as the API shows it: never a secret, never a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Principal {
    pub name: String,
    /// `user` or `service_account`.
    pub kind: String,
    /// Roles in force.
    pub roles: Vec<String>,
    pub disabled: bool,
    pub epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_expires_at: Option<String>,
    pub mfa_enrolled: bool,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `GET /api/v1/auth/whoami`: the caller, and what an operator must fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Whoami {
    #[serde(flatten)]
    pub principal: Principal,
    /// Present while this instance has a single access admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

/// `POST /api/v1/auth/mfa` and `POST /api/v1/auth/enroll`: a new TOTP second factor, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotpEnrollment {
    pub principal: String,
    /// Base32.
    pub secret: String,
    pub otpauth_uri: String,
}

/// `POST /api/v1/auth/enroll`: the one-time enrollment token and the password chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub token: String,
    pub password: String,
}

/// `POST /api/v1/principals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPrincipal {
    pub name: String,
    /// `user` or `service_account`.
    pub kind: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Refused for users: their owner sets it at enrollment.
    #[serde(default)]
    pub password: Option<String>,
    /// Service accounts: days the API key lives.
    #[serde(default)]
    pub days: Option<u64>,
    /// Users: their email; two accounts with one email count as one approver.
    #[serde(default)]
    pub email: Option<String>,
}

/// The answer of `POST /api/v1/principals`: a service account with its API key, or a user with
/// its enrollment token, each shown once; `pending` the grants waiting for a second access admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrincipalCreated {
    pub principal: Principal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_expires_at: Option<String>,
    pub pending: Vec<Grant>,
}

/// `POST /api/v1/principals/{name}/roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    pub role: String,
}

/// `POST /api/v1/principals/{name}/api-key`: days the new key lives; an empty body is `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    #[serde(default)]
    pub days: Option<u64>,
}

/// A change to a principal: done (200, the principal) or waiting for a second access admin
/// (202, the pending request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PrincipalChange {
    Done(Principal),
    Pending(PendingChange),
}

/// A change waiting for a second access admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PendingChange {
    pub pending: Grant,
}

/// `POST /api/v1/principals/{name}/api-key` done: the new key, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub principal: String,
    pub api_key: String,
    pub api_key_expires_at: String,
}

/// `POST /api/v1/principals/{name}/api-key`: the new key, or the change pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum KeyRotation {
    Rotated(ApiKey),
    Done(Principal),
    Pending(PendingChange),
}

/// `POST /api/v1/principals/{name}/reset` done: the user's new one-time enrollment token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Enrollment {
    pub principal: Principal,
    pub enrollment_token: String,
    pub enrollment_expires_at: String,
}

/// `POST /api/v1/principals/{name}/reset`: the new enrollment, or the change pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Reset {
    Enrolled(Enrollment),
    Done(Principal),
    Pending(PendingChange),
}

/// A role in force: `GET /api/v1/roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub permissions: Vec<RolePermission>,
}

/// One permission of a role: these actions, in these stages, on these repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RolePermission {
    /// Cedar actions, `pull`, `promote.approve`, ...
    pub actions: Vec<String>,
    /// Stage names, or `*`.
    pub stages: Vec<String>,
    /// Patterns over the repository path after the stage.
    pub repositories: Vec<String>,
}

/// `POST /api/v1/roles`: a new role, compiled to Cedar and validated before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDefinition {
    /// `[a-z][a-z0-9-]{0,63}`.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<PermissionDefinition>>,
}

/// One permission of a role being defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionDefinition {
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
}

/// `POST /api/v1/roles` done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleDefined {
    pub name: String,
    pub description: String,
}

/// `POST /api/v1/access/requests`: a role for a while (just-in-time elevation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRequest {
    pub role: String,
    /// Seconds as a number, or a duration like `"30m"`, `"2h"`, `"90s"`.
    #[schema(value_type = String, example = "30m")]
    pub duration: serde_json::Value,
    pub reason: String,
}

/// A grant or a change waiting for approval: `GET /api/v1/access/requests` and the answer of
/// asking for or revoking one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    pub id: String,
    /// `jit`, `bind`, `unbind`, `disable` or `reset`.
    pub kind: String,
    /// The principal the change is to.
    pub principal: String,
    pub requested_by: String,
    /// The first approval, when the change takes two.
    pub approved_by: Option<String>,
    /// The role granted, bound or unbound; empty for other kinds.
    pub role: String,
    pub reason: String,
    pub duration_secs: u64,
    /// `pending`, `active`, `revoked` or `denied`.
    pub status: String,
    pub requested_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// Set when approved.
    pub expires_at: Option<String>,
}

/// `POST /api/v1/access/requests/{id}/approve`: the grant, and the one-time secret a change
/// approved for a principal yields (an enrollment token or an API key), shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrantApproved {
    #[serde(flatten)]
    pub grant: Grant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_expires_at: Option<String>,
}
