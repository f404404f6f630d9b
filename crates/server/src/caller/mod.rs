//! Who is asking: what turns a request into a [`Caller`].
//!
//! - `GET /token` (Docker token authentication) takes Basic credentials (a user's password or a
//!   service account's API key), parses the scopes asked for, grants the intersection of what was
//!   asked and what Cedar allows, and returns a registry token of minutes (`tokens.rs`).
//! - `POST /api/v1/auth/token` takes the same credentials (`credentials.rs`) and returns an API
//!   token.
//! - Every `/v2` request must carry a registry token naming the repository and action it needs;
//!   without one the answer is 401 with a challenge whose realm comes from `public_url`, never
//!   from the request.
//! - Decisions (`decide.rs`) are Cedar over the caller's roles in force and the request's
//!   context; what a caller may then do to principals, roles and grants is
//!   [`airlock_core::identity`]'s.
//!
//! Tokens carry the principal's epoch; every change to a principal raises it, so disabling a
//! principal or changing its roles kills its tokens at once.

mod credentials;
mod decide;
mod error;
mod limit;
mod oidc;
mod throttle;
mod tokens;

pub(crate) use tokens::bearer_subject;

use std::sync::Arc;

use airlock_access::scope::RepoAction;
use airlock_access::token::{Access, TokenKey, Verifier, VerifyingKeys};
use airlock_core::Stages;
use airlock_core::audit::Actor;
use airlock_core::identity::{Identity, IdentityConfig};
use airlock_core::ports::{Clock, LogObserver, MetadataStore};
use airlock_model::{PrincipalId, PrincipalKind, RepoName, Timestamp};

use crate::config::AccessConfig;

pub use credentials::{
    Authenticated, OIDC_USERNAME, PASSWORD_MIN_CHARS, SECRET_MAX_BYTES, basic_credentials, generate_password,
};
pub(crate) use decide::EngineAccess;
pub use error::{CallerError, CallerStartError};
pub use limit::{LIMITER_KEYS_MAX, Limited, Limiter, PerPrincipal, layer as rate_limit_layer};
pub use throttle::{LOGIN_BACKOFF_MAX, LOGIN_FAILURES_BEFORE_BACKOFF, LoginCounters};
pub use tokens::{IssuedToken, repo_action};

/// The bootstrap administrator's name.
pub const ADMIN: &str = "admin";
/// The roles the bootstrap administrator holds.
pub const ADMIN_ROLES: [&str; 1] = ["access-admin"];
/// Environment variable holding the bootstrap administrator's password.
pub const BOOTSTRAP_PASSWORD_ENV: &str = "AIRLOCK_BOOTSTRAP_PASSWORD";
/// The token signing key, under the data directory.
const KEY_FILE: &str = "auth/token.key";

/// An authenticated caller and what its token grants.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: PrincipalId,
    pub kind: PrincipalKind,
    /// Roles in force now: bindings plus active just-in-time grants.
    pub roles: Vec<String>,
    /// When the caller last proved a second factor, if its token says.
    pub mfa_at: Option<u64>,
    /// The token's registry access (empty for API tokens).
    pub access: Vec<Access>,
}

impl Caller {
    /// The audit actor for this caller's request.
    pub fn actor(&self, request_id: &str) -> Actor {
        Actor::authenticated(&self.id, self.kind, request_id)
    }

    /// Whether the token grants `action` on `repo`.
    pub fn may(&self, repo: &RepoName, action: RepoAction) -> bool {
        self.access.iter().any(|a| {
            a.kind == "repository" && a.name == repo.as_str() && a.actions.iter().any(|x| x == action.as_str())
        })
    }
}

/// Credentials, Airlock's tokens and decisions, over [`Identity`].
#[derive(Clone)]
pub struct CallerService {
    identity: Identity,
    clock: Arc<dyn Clock>,
    key: Arc<TokenKey>,
    verifier: Arc<Verifier>,
    config: Arc<AccessConfig>,
    stages: Stages,
    realm: String,
    issuer: String,
    throttle: throttle::Throttle,
    /// Spent one-time-code steps (and, through `throttle`, failed logins), shared by every
    /// server over the store.
    logins: Arc<dyn airlock_core::ports::LoginStore>,
    /// The token buckets every request passes first (`rate_limits`).
    limiter: Arc<limit::Limiter>,
    oidc: Arc<std::sync::RwLock<Vec<airlock_access::token::oidc::OidcIssuer>>>,
    /// Where password hashes are computed and checked.
    cpu: Arc<dyn airlock_core::ports::Cpu>,
}

impl std::fmt::Debug for CallerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerService").field("kid", &self.key.kid()).field("realm", &self.realm).finish()
    }
}

impl CallerService {
    /// Loads (or creates, at first start) the token key and compiles the roles and policies.
    /// Refusals are counted in `refusals`, shared with the registry's.
    pub fn open(
        store: Arc<dyn MetadataStore>,
        observer: Arc<dyn LogObserver>,
        clock: Arc<dyn Clock>,
        refused: Option<String>,
        refusals: Arc<airlock_core::refusals::Refusals>,
        config: &crate::Config,
        cpu: Arc<dyn airlock_core::ports::Cpu>,
    ) -> Result<CallerService, CallerStartError> {
        let (data_dir, public_url, stages) = (&config.data_dir, config.public_url.as_str(), config.stages.clone());
        let limiter = Arc::new(limit::Limiter::new(config.rate_limits));
        let config = &config.access;
        let key = tokens::read_or_create_key(&data_dir.join(KEY_FILE))?;
        let custom_policies = match &config.policies {
            None => None,
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| CallerStartError::PoliciesRead { path: path.display().to_string(), source })?,
            ),
        };
        let logins: Arc<dyn airlock_core::ports::LoginStore> = store.clone();
        let throttle = throttle::Throttle::new(logins.clone(), clock.clone());
        let identity = Identity::new(
            store,
            observer,
            clock.clone(),
            refused,
            IdentityConfig {
                roles: config.roles.clone(),
                custom_policies,
                conflicts: config.conflicts.clone(),
                compatible: config.compatible.clone(),
                api_key_max_days: config.api_key_max_days,
                jit_max_duration_secs: config.jit_max_duration_secs,
                privileged_roles: config.privileged_roles.clone(),
                enrollment_ttl_secs: config.enrollment_ttl_secs,
            },
        )
        .map_err(|e| CallerStartError::Authz(e.to_string()))?
        .with_refusals(refusals);
        let oidc = oidc::issuers(config)?;
        let public_url = public_url.trim_end_matches('/');
        let issuer = public_url.to_owned();
        let keys: VerifyingKeys = [key.public().clone()].into_iter().collect();
        let verifier = Verifier::new(keys, issuer.clone(), config.service.clone());
        Ok(CallerService {
            identity,
            clock,
            key: Arc::new(key),
            verifier: Arc::new(verifier),
            config: Arc::new(config.clone()),
            stages,
            realm: format!("{public_url}/token"),
            issuer,
            throttle,
            logins,
            limiter,
            oidc: Arc::new(std::sync::RwLock::new(oidc)),
            cpu,
        })
    }

    /// Principals, roles and grants.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether custom Cedar policies are configured: only they read an artifact's origin, so
    /// without them it is not worked out.
    pub fn has_custom_policies(&self) -> bool {
        self.config.policies.is_some()
    }

    /// The `service` of challenges and the audience of tokens.
    pub fn service(&self) -> &str {
        &self.config.service
    }

    /// Now, from the server's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn now_secs(&self) -> u64 {
        u64::try_from(self.clock.now().as_millis() / 1000).unwrap_or(0)
    }
}
