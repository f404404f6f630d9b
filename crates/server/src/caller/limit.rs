//! Rate limits: what one client costs before anything costly happens. Every request passes a
//! token bucket (`governor`) before a handler can spend a log entry, an Argon2 verification or
//! a policy evaluation on it.
//!
//! - A request bearing an Airlock token whose signature verifies is charged to its principal's
//!   bucket (`rate_limits.principal_per_minute`, `.principal_burst`). Nobody else can charge
//!   it, so a principal is never held back by traffic it did not send.
//! - Basic credentials that cannot be guessed (an API key's form, a CI token) are not charged
//!   before they are checked: checking one costs a hash or a signature, never Argon2, its
//!   failures are aggregated in the log, and a fleet of CI jobs behind one address must not
//!   share one bucket.
//! - Every other request (no credentials, a password still to be checked, a token that does not
//!   verify) is charged to its client address's bucket
//!   (`rate_limits.anonymous_per_minute`, `.anonymous_burst`). The address is
//!   [`crate::client_addr`]'s (`server.trusted_proxies` honoured); an IPv6 client is keyed on its
//!   /64, the block one subscriber usually holds.
//! - Health, readiness and metrics, and the public log read API (auditors page through it) are
//!   not limited: they cost no log entry, hash or policy evaluation. Neither is a request handed
//!   to the router in process, which has no client address.
//! - An empty bucket answers 429 with `Retry-After`; the refusal is not logged (it would cost the
//!   entry the limit exists to save).
//!
//! State is in memory, per process, bounded by [`LIMITER_KEYS_MAX`] keys per bucket kind: past
//! it, keys whose bucket has refilled are forgotten, and new keys share one bucket until room
//! frees up.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::Method;

use super::{CallerError, CallerService};
use crate::client_addr::ClientAddr;
use crate::config::RateLimits;
use crate::error::{ApiError, ServerError};

/// Most keys each bucket kind tracks before it forgets refilled ones.
pub const LIMITER_KEYS_MAX: usize = 100_000;

/// The per-address and per-principal token buckets.
#[derive(Debug)]
pub struct Limiter {
    limits: RateLimits,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    principals: DefaultKeyedRateLimiter<String>,
}

/// Which bucket turned a request away, and when it may come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limited {
    Address { address: String, retry_after_secs: u64 },
    Principal { principal: String, retry_after_secs: u64 },
}

impl Limiter {
    pub fn new(limits: RateLimits) -> Limiter {
        let quota = |per_minute: u32, burst: u32| {
            let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            Quota::per_minute(per_minute).allow_burst(burst)
        };
        Limiter {
            limits,
            addresses: RateLimiter::keyed(quota(limits.anonymous_per_minute, limits.anonymous_burst)),
            principals: RateLimiter::keyed(quota(limits.principal_per_minute, limits.principal_burst)),
        }
    }

    /// Takes one request from `address`'s bucket.
    pub fn take_address(&self, address: IpAddr) -> Result<(), Limited> {
        let key = bounded(&self.addresses, bucket_of(address), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        take(&self.addresses, &key).map_err(|retry_after_secs| Limited::Address {
            address: address.to_canonical().to_string(),
            retry_after_secs,
        })
    }

    /// Takes one request from `principal`'s bucket.
    pub fn take_principal(&self, principal: &str) -> Result<(), Limited> {
        let key = bounded(&self.principals, principal.to_owned(), String::new());
        take(&self.principals, &key)
            .map_err(|retry_after_secs| Limited::Principal { principal: principal.to_owned(), retry_after_secs })
    }

    /// The refusal to answer with.
    fn error(&self, limited: Limited) -> CallerError {
        match limited {
            Limited::Address { address, retry_after_secs } => CallerError::RateLimited {
                who: format!("client address `{address}`"),
                burst: self.limits.anonymous_burst,
                per_minute: self.limits.anonymous_per_minute,
                retry_after_secs,
                hint: " (requests with a valid token count against their principal instead)",
            },
            Limited::Principal { principal, retry_after_secs } => CallerError::RateLimited {
                who: format!("principal `{principal}`"),
                burst: self.limits.principal_burst,
                per_minute: self.limits.principal_per_minute,
                retry_after_secs,
                hint: "",
            },
        }
    }
}

/// Requests of one kind per principal (trust root applies, dry-run evaluations), in memory,
/// per process: a burst of `per_minute`, then one every `60 / per_minute` s; bounded like the
/// buckets above.
#[derive(Debug)]
pub struct PerPrincipal(DefaultKeyedRateLimiter<String>);

impl PerPrincipal {
    pub fn per_minute(per_minute: u32) -> PerPrincipal {
        PerPrincipal(RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))))
    }

    /// Takes one request from `principal`'s quota, or says how many seconds until one is free.
    pub fn take(&self, principal: &str) -> Result<(), u64> {
        take(&self.0, &bounded(&self.0, principal.to_owned(), String::new()))
    }
}

/// `key`, or the shared `overflow` key when the table is full even of buckets still in use.
fn bounded<K: Clone + Eq + std::hash::Hash>(limiter: &DefaultKeyedRateLimiter<K>, key: K, overflow: K) -> K {
    if limiter.len() < LIMITER_KEYS_MAX {
        return key;
    }
    limiter.retain_recent();
    limiter.shrink_to_fit();
    if limiter.len() < LIMITER_KEYS_MAX { key } else { overflow }
}

fn take<K: Clone + Eq + std::hash::Hash>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<(), u64> {
    limiter
        .check_key(key)
        .map_err(|until| super::throttle::retry_after_secs(until.wait_time_from(limiter.clock().now())))
}

/// The bucket of an address: itself for IPv4, its /64 for IPv6.
fn bucket_of(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// Whether the request carries Basic credentials that cannot be guessed: an API key's form or a
/// CI token.
fn unguessable_basic(headers: &http::HeaderMap) -> bool {
    super::basic_credentials(headers)
        .is_ok_and(|(name, secret)| name == super::OIDC_USERNAME || super::throttle::is_api_key(&secret))
}

/// Whether a request costs nothing worth limiting: probes, metrics and reading the public log.
fn exempt(method: &Method, path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
        || (matches!(*method, Method::GET | Method::HEAD) && path.starts_with("/api/v1/log/"))
}

impl CallerService {
    /// Charges a request to its principal's bucket when it bears a token that verifies, else
    /// to its client address's; `None` when it may go on.
    pub fn rate_limit(&self, request: &Request) -> Option<CallerError> {
        if exempt(request.method(), request.uri().path()) {
            return None;
        }
        if unguessable_basic(request.headers()) {
            return None;
        }
        let taken = match self.signed_subject(request.headers()) {
            Some(principal) => self.limiter.take_principal(&principal),
            None => match request.extensions().get::<ClientAddr>() {
                Some(ClientAddr(address)) => self.limiter.take_address(*address),
                None => Ok(()),
            },
        };
        taken.err().map(|limited| self.limiter.error(limited))
    }
}

/// Middleware: every request passes its token bucket first; an empty one answers 429 with
/// `Retry-After` in the error shape of the API it was sent to.
pub async fn layer(State(callers): State<CallerService>, request: Request, next: Next) -> Response {
    let Some(error) = callers.rate_limit(&request) else {
        return next.run(request).await;
    };
    if request.uri().path().starts_with("/api/v1/") {
        ApiError::Auth(error).into_response()
    } else {
        ServerError::Auth(error).into_response()
    }
}
