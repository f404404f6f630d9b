//! Why a request was not let through, and why the caller service could not start.

use airlock_access::token::TokenError;
use airlock_core::identity::IdentityError;
use airlock_core::ports::StoreError;

/// Why a request was not let through. Messages are safe to show the caller: they never say
/// whether a principal or a repository exists.
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    /// No credentials where they are needed.
    #[error("authentication required; log in, or ask `{realm}` for a token")]
    Missing { realm: String, challenge: String },
    /// A token that does not verify.
    #[error("{reason}")]
    InvalidToken { reason: String, challenge: String },
    /// A valid token without the access this request needs.
    #[error("token does not grant `{scope}`; ask for a token with that scope")]
    InsufficientScope { scope: String, challenge: String },
    /// Credentials that do not match (or name no principal, or a disabled one).
    #[error("invalid credentials: unknown principal, wrong secret, expired key or disabled principal")]
    BadCredentials,
    /// The credentials' form is wrong.
    #[error("{0}")]
    Malformed(String),
    /// Authenticated, but Cedar denied.
    #[error("denied: {0}")]
    Denied(String),
    /// A request the caller may make but that cannot be done as asked.
    #[error("{0}")]
    Invalid(String),
    /// Too many failed logins for this principal or from this address.
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// The request's token bucket is empty (`rate_limits`): checked before the request can
    /// cost a log entry, a password hash or a policy evaluation.
    #[error(
        "too many requests from {who}: at most {burst} at once and {per_minute} a minute; retry in {retry_after_secs} s{hint}"
    )]
    RateLimited { who: String, burst: u32, per_minute: u32, retry_after_secs: u64, hint: &'static str },
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Writes are refused (the transparency log failed its check).
    #[error("writes are refused: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl CallerError {
    /// The `WWW-Authenticate` value to send with a 401, if any.
    pub fn challenge(&self) -> Option<&str> {
        match self {
            CallerError::Missing { challenge, .. }
            | CallerError::InvalidToken { challenge, .. }
            | CallerError::InsufficientScope { challenge, .. } => Some(challenge),
            CallerError::BadCredentials => Some("Basic realm=\"airlock\""),
            _ => None,
        }
    }

    /// The seconds to send in `Retry-After`, for a refusal that passes with time.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            CallerError::Throttled { retry_after_secs } | CallerError::RateLimited { retry_after_secs, .. } => {
                Some(*retry_after_secs)
            }
            _ => None,
        }
    }
}

/// Why the access service could not start.
#[derive(Debug, thiserror::Error)]
pub enum CallerStartError {
    #[error("cannot read token key `{path}`: {source}; restore it from backup, or delete it to issue new tokens")]
    KeyRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write token key `{path}`: {source}")]
    KeyWrite {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("token key `{path}` is unusable: {source}; restore it from backup, or delete it to issue new tokens")]
    KeyParse {
        path: String,
        #[source]
        source: TokenError,
    },
    #[error("cannot read access policies `{path}`: {source}; fix `access.policies` in the config")]
    PoliciesRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("access control is misconfigured: {0}")]
    Authz(String),
    #[error("cannot read the jwks of oidc issuer `{issuer}` from `{path}`: {reason}; fix `access.oidc`")]
    Oidc { issuer: String, path: String, reason: String },
    #[error("cannot create the bootstrap administrator: {0}")]
    Bootstrap(String),
}

impl From<IdentityError> for CallerError {
    fn from(e: IdentityError) -> CallerError {
        match e {
            IdentityError::Invalid(m) => CallerError::Invalid(m),
            IdentityError::NotFound(m) => CallerError::NotFound(m),
            IdentityError::Denied(m) => CallerError::Denied(m),
            IdentityError::Unavailable(m) => CallerError::Unavailable(m),
            IdentityError::Store(e) => CallerError::Store(e),
        }
    }
}
