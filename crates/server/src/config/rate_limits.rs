//! `[rate_limits]`: the token buckets every request passes before it can cost a log entry, a
//! password hash or a policy evaluation (`crate::caller::limit`).

use serde::Deserialize;

/// Requests a minute one client address may make without a valid token, by default.
pub const ANONYMOUS_PER_MINUTE: u32 = 300;
/// Requests one client address may make at once without a valid token, by default.
pub const ANONYMOUS_BURST: u32 = 60;
/// Requests a minute one principal may make with a valid token, by default.
pub const PRINCIPAL_PER_MINUTE: u32 = 12_000;
/// Requests one principal may make at once with a valid token, by default.
pub const PRINCIPAL_BURST: u32 = 2_000;

/// `[rate_limits]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub(super) struct RawRateLimits {
    anonymous_per_minute: u32,
    anonymous_burst: u32,
    principal_per_minute: u32,
    principal_burst: u32,
}

impl Default for RawRateLimits {
    fn default() -> Self {
        RawRateLimits {
            anonymous_per_minute: ANONYMOUS_PER_MINUTE,
            anonymous_burst: ANONYMOUS_BURST,
            principal_per_minute: PRINCIPAL_PER_MINUTE,
            principal_burst: PRINCIPAL_BURST,
        }
    }
}

/// The token buckets: one per client address for requests without a valid token, one per
/// principal for requests with one. Each refills at `per_minute` and holds at most `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub anonymous_per_minute: u32,
    pub anonymous_burst: u32,
    pub principal_per_minute: u32,
    pub principal_burst: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RawRateLimits::default().into()
    }
}

impl From<RawRateLimits> for RateLimits {
    fn from(raw: RawRateLimits) -> RateLimits {
        RateLimits {
            anonymous_per_minute: raw.anonymous_per_minute.max(1),
            anonymous_burst: raw.anonymous_burst.max(1),
            principal_per_minute: raw.principal_per_minute.max(1),
            principal_burst: raw.principal_burst.max(1),
        }
    }
}

impl RateLimits {
    /// The effective values, for the configuration digest.
    pub(super) fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "anonymous_per_minute": self.anonymous_per_minute,
            "anonymous_burst": self.anonymous_burst,
            "principal_per_minute": self.principal_per_minute,
            "principal_burst": self.principal_burst,
        })
    }
}
