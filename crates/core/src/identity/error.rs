//! Why an identity operation was refused.

use crate::ports::StoreError;

/// Why a change to principals, roles or grants was refused. Messages are safe to show the
/// caller and end with what to do next.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A request the caller may make but that cannot be done as asked.
    #[error("{0}")]
    Invalid(String),
    /// No such principal, grant or role.
    #[error("{0}")]
    NotFound(String),
    /// Cedar, or a rule of identity's own, refused the caller; the refusal is logged.
    #[error("denied: {0}")]
    Denied(String),
    /// Writes are refused (the transparency log failed its check).
    #[error("writes are refused: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
