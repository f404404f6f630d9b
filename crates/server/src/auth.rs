//! Who is asking, and what they may do: credentials, Airlock's tokens, and Cedar decisions.
//!
//! - `GET /token` (Docker token authentication) takes Basic credentials (a user's password or a
//!   service account's API key), parses the scopes asked for, grants the intersection of what was
//!   asked and what Cedar allows, and returns a registry token of minutes.
//! - `POST /api/v1/auth/token` takes the same credentials and returns an API token.
//! - Every `/v2` request must carry a registry token naming the repository and action it needs;
//!   without one the answer is 401 with a challenge whose realm comes from `public_url`, never
//!   from the request.
//!
//! Tokens carry the principal's epoch; every change to a principal raises it, so disabling a
//! principal or changing its roles kills its tokens at once.

use std::path::Path;
use std::sync::Arc;

use airlock_access::authz::{
    Action, Authorizer, AuthzConfig, AuthzContext, AuthzDecision, Principal, PrincipalKind as AuthzKind, Resource,
};
use airlock_access::scope::{RepoAction, Scope};
use airlock_access::token::{
    self, Access, Claims, PrincipalKind as TokenPrincipalKind, TokenError, TokenKey, TokenKind, Verifier, VerifyingKeys,
};
use airlock_core::Stages;
use airlock_core::audit::{Actor, Event, EventKind, Outcome, Subject};
use airlock_core::ports::{
    Clock, GrantRecord, GrantStatus, LogObserver, MetadataStore, PrincipalChange, PrincipalRecord, StoreError,
};
use airlock_model::{PrincipalId, PrincipalKind, RepoName, Timestamp};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::HeaderMap;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::config::AccessConfig;
use crate::throttle::{Key as ThrottleKey, Throttle};

/// The bootstrap administrator's name.
pub const ADMIN: &str = "admin";
/// The roles the bootstrap administrator holds.
pub const ADMIN_ROLES: [&str; 1] = ["access-admin"];
/// Environment variable holding the bootstrap administrator's password.
pub const BOOTSTRAP_PASSWORD_ENV: &str = "AIRLOCK_BOOTSTRAP_PASSWORD";
/// Prefix of every API key, so a leaked key is recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "alk_";
/// Longest secret accepted in Basic credentials, in bytes.
pub const SECRET_MAX_BYTES: usize = 1024;
/// Shortest password accepted for a user.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// The token signing key, under the data directory.
const KEY_FILE: &str = "auth/token.key";

/// Why a request was not let through. Messages are safe to show the caller: they never say
/// whether a principal or a repository exists.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
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

impl AuthError {
    /// The `WWW-Authenticate` value to send with a 401, if any.
    pub fn challenge(&self) -> Option<&str> {
        match self {
            AuthError::Missing { challenge, .. }
            | AuthError::InvalidToken { challenge, .. }
            | AuthError::InsufficientScope { challenge, .. } => Some(challenge),
            AuthError::BadCredentials => Some("Basic realm=\"airlock\""),
            _ => None,
        }
    }
}

/// Why the access service could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthStartError {
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

/// The roles in force and the authorizer compiled from them.
#[derive(Debug)]
struct Authz {
    authorizer: Arc<Authorizer>,
    roles: Vec<airlock_access::authz::RoleDefinition>,
    custom_policies: Option<String>,
}

/// A principal whose credentials checked out, and what its credentials limit it to.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub record: PrincipalRecord,
    /// For CI tokens, the scopes the matching claim rule allows (`repository:<glob>:<actions>`);
    /// empty means the principal's roles alone decide.
    pub limit: Vec<String>,
}

/// The user name under which `/token` takes a CI provider's JWT as the password.
pub const OIDC_USERNAME: &str = "oidc";

/// A registry token as `GET /token` returns it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub access_token: String,
    pub expires_in: u64,
    pub issued_at: String,
}

/// Credentials, Airlock's tokens and authorization.
#[derive(Clone)]
pub struct AuthService {
    store: Arc<dyn MetadataStore>,
    observer: Arc<dyn LogObserver>,
    /// Why writes are refused (the log failed its start-up check), if they are: no principal
    /// changes then, and refusals are not logged.
    refused: Option<String>,
    clock: Arc<dyn Clock>,
    key: Arc<TokenKey>,
    verifier: Arc<Verifier>,
    /// The roles and policies in force; replaced whole when a role is defined.
    authz: Arc<std::sync::RwLock<Authz>>,
    config: AccessConfig,
    stages: Stages,
    realm: String,
    issuer: String,
    throttle: Arc<Throttle>,
    oidc: Arc<std::sync::RwLock<Vec<airlock_access::token::oidc::OidcIssuer>>>,
    /// The last TOTP step each user spent, so a code is accepted once (per process).
    totp_steps: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("kid", &self.key.kid()).field("realm", &self.realm).finish()
    }
}

impl AuthService {
    /// Loads (or creates, at first start) the token key and compiles the roles and policies.
    pub fn open(
        store: Arc<dyn MetadataStore>,
        observer: Arc<dyn LogObserver>,
        clock: Arc<dyn Clock>,
        refused: Option<String>,
        config: &crate::Config,
    ) -> Result<AuthService, AuthStartError> {
        let (data_dir, public_url, stages) = (&config.data_dir, config.public_url.as_str(), config.stages.clone());
        let config = &config.access;
        let key = read_or_create_key(&data_dir.join(KEY_FILE))?;
        let custom_policies = match &config.policies {
            None => None,
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| AuthStartError::PoliciesRead { path: path.display().to_string(), source })?,
            ),
        };
        let authorizer = Authorizer::new(&AuthzConfig {
            roles: config.roles.clone(),
            custom_policies: custom_policies.clone(),
            conflicts: config.conflicts.clone(),
        })
        .map_err(|e| AuthStartError::Authz(e.to_string()))?;
        let mut oidc = Vec::with_capacity(config.oidc.len());
        for provider in &config.oidc {
            let (source, bytes) = match (&provider.jwks, &provider.jwks_url) {
                (Some(path), _) => {
                    let source = path.display().to_string();
                    let bytes = std::fs::read(path).map_err(|e| AuthStartError::Oidc {
                        issuer: provider.issuer.clone(),
                        path: source.clone(),
                        reason: e.to_string(),
                    })?;
                    (source, bytes)
                }
                // Until the first fetch succeeds the issuer has no keys: its tokens are refused.
                (None, Some(url)) => (url.clone(), br#"{"keys":[]}"#.to_vec()),
                (None, None) => (String::new(), br#"{"keys":[]}"#.to_vec()),
            };
            let issuer =
                airlock_access::token::oidc::OidcIssuer::new(&provider.issuer, &provider.audience, &bytes).map_err(
                    |e| AuthStartError::Oidc { issuer: provider.issuer.clone(), path: source, reason: e.to_string() },
                )?;
            oidc.push(issuer);
        }
        let public_url = public_url.trim_end_matches('/');
        let issuer = public_url.to_owned();
        let keys: VerifyingKeys = [key.public().clone()].into_iter().collect();
        let verifier = Verifier::new(keys, issuer.clone(), config.service.clone());
        Ok(AuthService {
            store,
            observer,
            refused,
            clock,
            key: Arc::new(key),
            verifier: Arc::new(verifier),
            authz: Arc::new(std::sync::RwLock::new(Authz {
                authorizer: Arc::new(authorizer),
                roles: config.roles.clone(),
                custom_policies,
            })),
            config: config.clone(),
            stages,
            realm: format!("{public_url}/token"),
            issuer,
            throttle: Arc::default(),
            oidc: Arc::new(std::sync::RwLock::new(oidc)),
            totp_steps: Arc::default(),
        })
    }

    /// Fetches the JWKS of every CI provider configured by URL and puts the keys in force; a
    /// provider whose fetch fails keeps the keys it had. Returns the failures, one line each.
    pub async fn refresh_jwks(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build() {
            Ok(client) => client,
            Err(e) => return vec![format!("cannot build an http client: {e}")],
        };
        for provider in &self.config.oidc {
            let Some(url) = &provider.jwks_url else { continue };
            let fetched = async {
                let response = client.get(url).send().await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("answered {}", response.status()));
                }
                // Read at most one byte past the JWKS limit, whatever the server sends.
                let mut response = response;
                let mut bytes = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > airlock_access::token::oidc::MAX_JWKS_BYTES {
                        return Err(format!(
                            "the document is over {} bytes",
                            airlock_access::token::oidc::MAX_JWKS_BYTES
                        ));
                    }
                }
                airlock_access::token::oidc::OidcIssuer::new(&provider.issuer, &provider.audience, &bytes)
                    .map_err(|e| e.to_string())
            }
            .await;
            match fetched {
                Ok(issuer) => {
                    let mut issuers = self.oidc.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(slot) = issuers.iter_mut().find(|i| i.issuer() == provider.issuer) {
                        *slot = issuer;
                    }
                }
                Err(reason) => failures.push(format!("jwks of `{}` from `{url}`: {reason}", provider.issuer)),
            }
        }
        failures
    }

    /// Seconds between JWKS fetches, when any provider is configured by URL.
    pub fn jwks_refresh(&self) -> Option<std::time::Duration> {
        self.config
            .oidc
            .iter()
            .any(|p| p.jwks_url.is_some())
            .then(|| std::time::Duration::from_secs(self.config.jwks_refresh_secs))
    }

    /// Logs `events` (refusals), unless writes are refused.
    async fn log(&self, events: &[Event]) -> Result<(), AuthError> {
        if self.refused.is_none() {
            self.store.append_events(events).await?;
            self.observer.appended();
        }
        Ok(())
    }

    fn writable(&self) -> Result<(), AuthError> {
        match &self.refused {
            Some(reason) => Err(AuthError::Unavailable(reason.clone())),
            None => Ok(()),
        }
    }

    /// Checks a user's TOTP code; the step is spent. Returns when the factor was proved.
    pub async fn verify_otp(
        &self,
        record: &PrincipalRecord,
        code: &str,
        source: &str,
        request_id: &str,
    ) -> Result<u64, AuthError> {
        let secret = record.totp_secret.as_deref().and_then(|h| hex::decode(h).ok());
        let Some(secret) = secret else {
            return Err(AuthError::Invalid(format!(
                "`{}` has no second factor enrolled; enroll one with `POST /api/v1/auth/mfa`",
                record.id
            )));
        };
        // Code guesses back off per (principal, client address), apart from passwords: the
        // right password before each guess does not wipe them.
        let guesses = [ThrottleKey::otp(record.id.as_str(), source), ThrottleKey::client(source)];
        if let Some(wait) = self.throttle.blocked(&guesses, std::time::Instant::now()) {
            return Err(AuthError::Throttled { retry_after_secs: crate::throttle::retry_after_secs(wait) });
        }
        let now = self.now_secs();
        let key = record.id.to_string();
        let last = self.totp_steps.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).copied();
        match airlock_access::totp::verify(&secret, code.trim(), now, last) {
            Some(step) => {
                self.totp_steps.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, step);
                self.throttle.succeed(&guesses[0]);
                Ok(now)
            }
            None => {
                self.throttle.fail(&guesses, std::time::Instant::now());
                let event = Event {
                    kind: EventKind::LoginFailed,
                    time: self.clock.now(),
                    actor: Actor::anonymous(request_id),
                    subject: Subject::default(),
                    outcome: Outcome::Denied { reasons: vec!["wrong or reused one-time code".to_owned()] },
                    details: Default::default(),
                }
                .with_detail("principal", json!(record.id.as_str()))
                .with_detail("source", json!(source))
                .with_detail("method", json!("totp"));
                self.log(&[event]).await?;
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// Enrolls (or replaces) a user's TOTP second factor; returns the secret (base32) and the
    /// `otpauth://` URI, shown once. Raises the epoch: tokens from before die.
    pub async fn enroll_totp(&self, record: &PrincipalRecord) -> Result<(String, String), AuthError> {
        if record.kind != PrincipalKind::User {
            return Err(AuthError::Invalid(
                "service accounts have no second factor; they use API keys or CI tokens".to_owned(),
            ));
        }
        let secret = airlock_access::totp::generate_secret();
        let actor = Actor::authenticated(&record.id, record.kind, "");
        let changed =
            self.change(&actor, &record.id, PrincipalChange::SetTotp { secret: Some(hex::encode(secret)) }).await?;
        if changed.is_none() {
            return Err(AuthError::Invalid(format!("no principal `{}`", record.id)));
        }
        let uri = airlock_access::totp::otpauth_uri(&self.config.service, record.id.as_str(), &secret);
        Ok((airlock_access::totp::base32(&secret), uri))
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

    /// Every principal.
    pub async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        self.store.principals().await
    }

    /// The stored principal, if any.
    pub async fn record(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError> {
        self.store.principal(id).await
    }

    /// The roles in force: the configured ones and those defined through the API.
    pub fn roles(&self) -> Vec<airlock_access::authz::RoleDefinition> {
        self.authz.read().unwrap_or_else(std::sync::PoisonError::into_inner).roles.clone()
    }

    /// The authorizer in force, for decisions outside the registry.
    pub fn authorizer(&self) -> Arc<Authorizer> {
        self.authz.read().unwrap_or_else(std::sync::PoisonError::into_inner).authorizer.clone()
    }

    /// Adds the roles defined through the API (at start).
    pub async fn load_defined_roles(&self) -> Result<(), AuthStartError> {
        let stored = self.store.defined_roles().await.map_err(|e| AuthStartError::Authz(e.to_string()))?;
        let mut defined = Vec::with_capacity(stored.len());
        for (name, json) in stored {
            let role: airlock_access::authz::RoleDefinition = serde_json::from_str(&json)
                .map_err(|e| AuthStartError::Authz(format!("stored role `{name}` does not read: {e}")))?;
            defined.push(role);
        }
        if defined.is_empty() {
            return Ok(());
        }
        self.install(defined).map_err(|e| AuthStartError::Authz(e.to_string()))
    }

    /// Compiles the roles in force plus `added` and, if they validate, puts them in force.
    fn install(&self, added: Vec<airlock_access::authz::RoleDefinition>) -> Result<(), AuthError> {
        let mut authz = self.authz.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut roles = authz.roles.clone();
        for role in added {
            if roles.iter().any(|r| r.name == role.name) {
                return Err(AuthError::Invalid(format!("role `{}` exists already; choose another name", role.name)));
            }
            roles.push(role);
        }
        let authorizer = Authorizer::new(&AuthzConfig {
            roles: roles.clone(),
            custom_policies: authz.custom_policies.clone(),
            conflicts: self.config.conflicts.clone(),
        })
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
        *authz = Authz { authorizer: Arc::new(authorizer), roles, custom_policies: authz.custom_policies.clone() };
        Ok(())
    }

    /// Defines a role from its JSON (`{"name","description","permissions"}`): needs
    /// `access.grant`; the role must be new and compile to valid Cedar. Logged.
    pub async fn define_role(
        &self,
        caller: &Caller,
        definition: serde_json::Value,
        source: &str,
        request_id: &str,
    ) -> Result<airlock_access::authz::RoleDefinition, AuthError> {
        self.writable()?;
        let role: airlock_access::authz::RoleDefinition = serde_json::from_value(definition.clone())
            .map_err(|e| AuthError::Invalid(format!("role definition is invalid: {e}")))?;
        let resource = Resource::AccessGrant {
            id: format!("role/{}", role.name),
            requester_id: "*".to_owned(),
            role: role.name.clone(),
        };
        self.require(caller, Action::AccessGrant, &resource, source, request_id).await?;
        // Validate by compiling with every role in force, before anything is stored.
        {
            let authz = self.authz.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if authz.roles.iter().any(|r| r.name == role.name) {
                return Err(AuthError::Invalid(format!("role `{}` exists already; choose another name", role.name)));
            }
            let mut roles = authz.roles.clone();
            roles.push(role.clone());
            Authorizer::new(&AuthzConfig {
                roles,
                custom_policies: authz.custom_policies.clone(),
                conflicts: self.config.conflicts.clone(),
            })
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        }
        let text = definition.to_string();
        let event =
            Event::allowed(EventKind::RoleDefine, &caller.actor(request_id), self.clock.now(), Subject::default())
                .with_detail("role", json!(role.name))
                .with_detail("definition", definition);
        if !self.store.define_role(&role.name, &text, &event).await? {
            return Err(AuthError::Invalid(format!("role `{}` exists already; choose another name", role.name)));
        }
        self.observer.appended();
        self.install(vec![role.clone()])?;
        Ok(role)
    }

    fn now_secs(&self) -> u64 {
        u64::try_from(self.clock.now().as_millis() / 1000).unwrap_or(0)
    }

    /// At the first start (no principal stored), creates `admin` holding [`ADMIN_ROLES`] with
    /// `password`, or a generated one that is returned so it can be shown once.
    pub async fn bootstrap(&self, password: Option<String>) -> Result<Option<String>, AuthStartError> {
        let failed = |e: String| AuthStartError::Bootstrap(e);
        if !self.store.principals().await.map_err(|e| failed(e.to_string()))?.is_empty() {
            return Ok(None);
        }
        let generated = password.is_none();
        let password = password.unwrap_or_else(|| random_secret(18));
        if password.chars().count() < PASSWORD_MIN_CHARS {
            return Err(failed(format!(
                "`{BOOTSTRAP_PASSWORD_ENV}` is shorter than {PASSWORD_MIN_CHARS} characters; choose a longer one"
            )));
        }
        let id = PrincipalId::parse(ADMIN).map_err(|e| failed(e.to_string()))?;
        let roles: Vec<String> = ADMIN_ROLES.iter().map(|r| (*r).to_owned()).collect();
        self.create_user(&Actor::system(), &id, &roles, password.clone(), None)
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(generated.then_some(password))
    }

    /// Checks Basic credentials: a user's password, or a service account's API key.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        source: &str,
        request_id: &str,
    ) -> Result<Authenticated, AuthError> {
        let (name, secret) = basic_credentials(headers)?;
        let ci = name == OIDC_USERNAME;
        // An API key or a CI token cannot be guessed: its failures are counted, never backed
        // off, so nobody can lock a service account out. Passwords back off per (principal,
        // client address), and per address over all names (`throttle`).
        let api_key = !ci && crate::throttle::is_api_key(&secret);
        let guessable = !ci && !api_key;
        let keys = [ThrottleKey::password(&name, source), ThrottleKey::client(source)];
        if guessable && let Some(wait) = self.throttle.blocked(&keys, std::time::Instant::now()) {
            return Err(AuthError::Throttled { retry_after_secs: crate::throttle::retry_after_secs(wait) });
        }
        let mut limit = Vec::new();
        let failure = |reason: &str| {
            let actor = Actor::anonymous(request_id);
            Event {
                kind: EventKind::LoginFailed,
                time: self.clock.now(),
                actor,
                subject: Subject::default(),
                outcome: Outcome::Denied { reasons: vec![reason.to_owned()] },
                details: Default::default(),
            }
            .with_detail("principal", json!(airlock_model::echo::echo(&name)))
            .with_detail("source", json!(source))
            .with_detail("method", json!("basic"))
        };
        let (record, ci_failure) = if ci {
            let issuers = self.oidc.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            match airlock_access::token::oidc::verify_ci_token(
                &secret,
                &issuers,
                &self.config.claim_rules,
                self.now_secs(),
                token::MAX_LEEWAY_SECS,
            ) {
                Ok(identity) => {
                    limit = identity.scopes;
                    let record = match PrincipalId::parse(&identity.service_account) {
                        Ok(id) => self.store.principal(&id).await?,
                        Err(_) => None,
                    };
                    (record.filter(|r| r.kind == PrincipalKind::ServiceAccount), None)
                }
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            let record = match PrincipalId::parse(&name) {
                Ok(id) => self.store.principal(&id).await?,
                Err(_) => None,
            };
            (record, None)
        };
        let verdict = match &record {
            None if ci => Err("ci token refused or mapped to no service account"),
            Some(r) if ci && r.disabled => Err("principal disabled"),
            Some(_) if ci => Ok(()),
            // A secret of an API key's form is only ever checked as one.
            _ if api_key => match &record {
                None => Err("unknown principal"),
                Some(r) if r.disabled => Err("principal disabled"),
                Some(r) if r.kind == PrincipalKind::ServiceAccount => self.check_api_key(r, &secret),
                Some(_) => Err("no api key set"),
            },
            // Every other secret is a password, and costs one Argon2 verification whatever the
            // name: against the user's hash, or against a decoy, so the time taken does not say
            // which names exist.
            _ => {
                let hash =
                    record.as_ref().filter(|r| r.kind == PrincipalKind::User).and_then(|r| r.password_hash.clone());
                let decoy = crate::throttle::decoy_password_hash().await;
                let matched = verify_password(hash.clone().unwrap_or_else(|| decoy.to_owned()), secret).await;
                match &record {
                    None => Err("unknown principal"),
                    Some(r) if r.disabled => Err("principal disabled"),
                    Some(r) if r.kind == PrincipalKind::ServiceAccount => Err("not an api key"),
                    Some(_) if hash.is_none() => Err("no password set"),
                    Some(_) if matched => Ok(()),
                    Some(_) => Err("wrong password"),
                }
            }
        };
        match (verdict, record) {
            (Ok(()), Some(record)) => {
                if guessable {
                    self.throttle.succeed(&keys[0]);
                }
                Ok(Authenticated { record, limit })
            }
            (verdict, _) => {
                if guessable {
                    self.throttle.fail(&keys, std::time::Instant::now());
                } else if api_key {
                    self.throttle.api_key_failed();
                } else {
                    self.throttle.ci_token_failed();
                }
                let reason = match (&ci_failure, verdict) {
                    (Some(why), _) => why.clone(),
                    (None, verdict) => verdict.err().unwrap_or("unknown principal").to_owned(),
                };
                let method = if ci { "oidc" } else { "basic" };
                self.log(&[failure(&reason).with_detail("method", json!(method))]).await?;
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// Failed logins with API keys and CI tokens, which never back off, for `/metrics`.
    pub fn login_counters(&self) -> crate::throttle::LoginCounters {
        self.throttle.counters()
    }

    fn check_api_key(&self, record: &PrincipalRecord, secret: &str) -> Result<(), &'static str> {
        let (Some(stored), Some(expires)) = (&record.api_key_hash, record.api_key_expires_at) else {
            return Err("no api key set");
        };
        if !constant_time_eq(api_key_hash(secret).as_bytes(), stored.as_bytes()) {
            return Err("wrong api key");
        }
        if self.clock.now() >= expires {
            return Err("api key expired");
        }
        Ok(())
    }

    /// `record` with the roles of its grants in force now added, and when the first of those
    /// grants ends.
    pub async fn with_grants(
        &self,
        mut record: PrincipalRecord,
    ) -> Result<(PrincipalRecord, Option<Timestamp>), AuthError> {
        let now = self.clock.now();
        let mut ends: Option<Timestamp> = None;
        for grant in self.store.grants(Some(&record.id)).await? {
            if grant.in_force(now) {
                if !record.roles.contains(&grant.role) {
                    record.roles.push(grant.role.clone());
                }
                ends = match (ends, grant.expires_at) {
                    (Some(a), Some(b)) => Some(if b < a { b } else { a }),
                    (a, b) => a.or(b),
                };
            }
        }
        record.roles.sort();
        Ok((record, ends))
    }

    /// The context of a request by `caller`: its second factor is fresh when proved within
    /// `access.mfa_window_minutes`.
    pub fn context_for(&self, caller: &Caller, source: &str) -> AuthzContext {
        let window = self.config.mfa_window_minutes.saturating_mul(60);
        let now = self.now_secs();
        AuthzContext {
            mfa_fresh: caller.mfa_at.is_some_and(|at| at <= now.saturating_add(60) && now.saturating_sub(at) <= window),
            ..self.context(source)
        }
    }

    /// Decides `action` on `resource` for a caller, with its second factor's freshness.
    pub fn decide_caller(&self, caller: &Caller, action: Action, resource: &Resource, source: &str) -> AuthzDecision {
        let principal = Principal {
            kind: match caller.kind {
                PrincipalKind::User => AuthzKind::User,
                PrincipalKind::ServiceAccount => AuthzKind::ServiceAccount,
            },
            id: caller.id.to_string(),
            roles: caller.roles.clone(),
        };
        self.authorizer().authorize(&principal, action, resource, &self.context_for(caller, source))
    }

    /// Logs that `caller` presented a token for `action` on `repo` that its roles in force no
    /// longer allow.
    pub async fn log_denied(
        &self,
        caller: &Caller,
        repo: &RepoName,
        action: RepoAction,
        request_id: &str,
    ) -> Result<(), AuthError> {
        let event = Event {
            kind: EventKind::AccessDenied,
            time: self.clock.now(),
            actor: caller.actor(request_id),
            subject: Subject { repository: Some(repo.clone()), ..Subject::default() },
            outcome: Outcome::Denied {
                reasons: vec![format!(
                    "the roles of `{}` in force now do not allow `{}` on `{repo}`",
                    caller.id,
                    action.as_str()
                )],
            },
            details: Default::default(),
        }
        .with_detail("principal", json!(caller.id.as_str()))
        .with_detail("action", json!(action.as_str()))
        .with_detail("resource", json!(repo.as_str()));
        self.log(&[event]).await
    }

    /// Whether the caller's roles in force now still allow `action` on `repo`: a token outlives
    /// neither a grant's expiry nor a role change.
    pub fn still_allowed(&self, caller: &Caller, repo: &RepoName, action: RepoAction, source: &str) -> bool {
        self.repository(repo)
            .is_some_and(|resource| self.decide_caller(caller, repo_action(action), &resource, source).allowed)
    }

    fn authz_principal(record: &PrincipalRecord) -> Principal {
        Principal {
            kind: match record.kind {
                PrincipalKind::User => AuthzKind::User,
                PrincipalKind::ServiceAccount => AuthzKind::ServiceAccount,
            },
            id: record.id.to_string(),
            roles: record.roles.clone(),
        }
    }

    fn context(&self, source: &str) -> AuthzContext {
        AuthzContext {
            now: self.clock.now().as_millis() / 1000,
            source_ip: source.to_owned(),
            mfa_fresh: false,
            stage_frozen: false,
            incident_mode: false,
            origin: None,
        }
    }

    fn repository(&self, repo: &RepoName) -> Option<Resource> {
        let stage = self.stages.get(repo.stage())?;
        Some(Resource::Repository {
            stage: repo.stage().to_string(),
            path: repo.path().to_owned(),
            gated: !stage.pushable(),
        })
    }

    /// The repository actions Cedar allows `record` on `repo` (none in an unknown stage).
    pub fn allowed_actions(&self, record: &PrincipalRecord, repo: &RepoName, source: &str) -> Vec<RepoAction> {
        let Some(resource) = self.repository(repo) else { return Vec::new() };
        let principal = Self::authz_principal(record);
        let context = self.context(source);
        RepoAction::ALL
            .into_iter()
            .filter(|a| self.authorizer().authorize(&principal, repo_action(*a), &resource, &context).allowed)
            .collect()
    }

    /// Decides a non-registry action for `record`.
    pub fn decide(&self, record: &PrincipalRecord, action: Action, resource: &Resource, source: &str) -> AuthzDecision {
        self.authorizer().authorize(&Self::authz_principal(record), action, resource, &self.context(source))
    }

    /// Issues a registry token for `scopes`: the intersection of what was asked and what Cedar
    /// allows, possibly empty. What was asked for and not granted is logged as a denial.
    pub async fn issue_registry_token(
        &self,
        record: &PrincipalRecord,
        limit: &[String],
        scopes: &[Scope],
        source: &str,
        request_id: &str,
    ) -> Result<IssuedToken, AuthError> {
        let (effective, grant_ends) = self.with_grants(record.clone()).await?;
        let record = &effective;
        let mut access = Vec::new();
        let mut refused = Vec::new();
        for scope in scopes {
            match scope {
                Scope::Repository { name, actions } => {
                    let allowed = self.allowed_actions(record, name, source);
                    let granted: Vec<String> = actions
                        .iter()
                        .filter(|a| allowed.contains(a) && within(limit, name, **a))
                        .map(|a| a.as_str().to_owned())
                        .collect();
                    if granted.len() < actions.len() {
                        refused.push(scope.to_string());
                    }
                    if !granted.is_empty() {
                        access.push(Access { kind: "repository".to_owned(), name: name.to_string(), actions: granted });
                    }
                }
                Scope::Catalog => access.push(Access {
                    kind: "registry".to_owned(),
                    name: "catalog".to_owned(),
                    actions: vec!["*".to_owned()],
                }),
            }
        }
        if !refused.is_empty() {
            let event = Event {
                kind: EventKind::AccessDenied,
                time: self.clock.now(),
                actor: Actor::authenticated(&record.id, record.kind, request_id),
                subject: Subject::default(),
                outcome: Outcome::Denied {
                    reasons: refused.iter().map(|s| format!("`{s}` not granted in full")).collect(),
                },
                details: Default::default(),
            }
            .with_detail("principal", json!(record.id.as_str()))
            .with_detail("action", json!("token"))
            .with_detail("resource", json!(refused));
            self.log(&[event]).await?;
        }
        let now = self.now_secs();
        let mut claims = Claims::new(
            self.issuer.clone(),
            self.config.service.clone(),
            record.id.to_string(),
            token_principal_kind(record.kind),
            record.epoch,
            TokenKind::Registry,
            now,
        );
        let mut ttl = self.config.registry_token_ttl_secs;
        // A token dies no later than the elevation it may rest on.
        if let Some(ends) = grant_ends {
            let ends = u64::try_from(ends.as_millis() / 1000).unwrap_or(0);
            ttl = ttl.min(ends.saturating_sub(now).max(1));
        }
        claims.exp = now.saturating_add(ttl);
        claims.access = access;
        let token = token::mint(&self.key, &claims).map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(IssuedToken {
            access_token: token.clone(),
            token,
            expires_in: ttl,
            issued_at: Timestamp::from_millis(i64::try_from(now).unwrap_or(i64::MAX).saturating_mul(1000)).to_rfc3339(),
        })
    }

    /// Issues an API token for `record`.
    pub fn issue_api_token(&self, record: &PrincipalRecord, mfa_at: Option<u64>) -> Result<IssuedToken, AuthError> {
        let now = self.now_secs();
        let mut claims = Claims::new(
            self.issuer.clone(),
            self.config.service.clone(),
            record.id.to_string(),
            token_principal_kind(record.kind),
            record.epoch,
            TokenKind::Api,
            now,
        );
        let ttl = self.config.api_token_ttl_secs;
        claims.exp = now.saturating_add(ttl);
        claims.mfa_at = mfa_at;
        let token = token::mint(&self.key, &claims).map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(IssuedToken {
            access_token: token.clone(),
            token,
            expires_in: ttl,
            issued_at: Timestamp::from_millis(i64::try_from(now).unwrap_or(i64::MAX).saturating_mul(1000)).to_rfc3339(),
        })
    }

    /// The challenge for a request needing `scope` (none for `/v2/` itself).
    pub fn challenge(&self, scope: Option<&str>, error: Option<&str>) -> String {
        let mut out = format!("Bearer realm=\"{}\",service=\"{}\"", self.realm, self.config.service);
        if let Some(scope) = scope {
            out.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Some(error) = error {
            out.push_str(&format!(",error=\"{error}\""));
        }
        out
    }

    /// Verifies the bearer token of a request, of `kind`, against the principal's live epoch.
    /// `scope` is what the request needs, named in the challenge when it fails.
    pub async fn caller(&self, headers: &HeaderMap, kind: TokenKind, scope: Option<&str>) -> Result<Caller, AuthError> {
        let Some(token) = bearer(headers) else {
            return Err(AuthError::Missing { realm: self.realm.clone(), challenge: self.challenge(scope, None) });
        };
        let invalid = |reason: String| AuthError::InvalidToken {
            reason,
            challenge: self.challenge(scope, Some("invalid_token")),
        };
        // The subject picks whose epoch to compare; the signature is checked before anything
        // in the token is believed.
        let subject = unverified_subject(token)
            .ok_or_else(|| invalid("token is malformed; send the token exactly as it was issued".to_owned()))?;
        let record = match PrincipalId::parse(&subject) {
            Ok(id) => self.store.principal(&id).await?,
            Err(_) => None,
        };
        let epochs = LiveEpoch(record.as_ref().filter(|r| !r.disabled).map(|r| (r.id.to_string(), r.epoch)));
        let claims = self.verifier.verify(token, kind, self.now_secs(), &epochs).map_err(|e| invalid(e.to_string()))?;
        let Some(record) = record else {
            return Err(invalid("token names an unknown principal; request a new token".to_owned()));
        };
        let (record, _) = self.with_grants(record).await?;
        Ok(Caller {
            id: record.id,
            kind: record.kind,
            roles: record.roles,
            mfa_at: claims.mfa_at,
            access: claims.access,
        })
    }

    /// A caller that may read `repo`: a registry token granting pull there, or an API token of a
    /// principal whose roles in force allow pulling it.
    pub async fn reader(&self, headers: &HeaderMap, repo: &RepoName, source: &str) -> Result<Caller, AuthError> {
        let scope = Scope::repository(repo.clone(), [RepoAction::Pull]).to_string();
        let kind = bearer(headers).and_then(unverified_kind).unwrap_or(TokenKind::Registry);
        let caller = self.caller(headers, kind, Some(&scope)).await?;
        let named = kind == TokenKind::Api || caller.may(repo, RepoAction::Pull);
        if named && self.still_allowed(&caller, repo, RepoAction::Pull, source) {
            return Ok(caller);
        }
        Err(AuthError::InsufficientScope { challenge: self.challenge(Some(&scope), Some("insufficient_scope")), scope })
    }

    /// Creates a service account holding `roles`, with an API key valid for `days` (at most
    /// `access.api_key_max_days`). Returns the record and the key, shown once.
    pub async fn create_service_account(
        &self,
        actor: &Actor,
        id: &PrincipalId,
        roles: &[String],
        days: Option<u64>,
    ) -> Result<(PrincipalRecord, String, Timestamp), AuthError> {
        self.writable()?;
        reserved(id)?;
        self.authorizer().check_held(roles).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let days = days.unwrap_or(self.config.api_key_max_days);
        if days == 0 || days > self.config.api_key_max_days {
            return Err(AuthError::Invalid(format!(
                "an api key lives 1 to {} days (`access.api_key_max_days`); ask for fewer days",
                self.config.api_key_max_days
            )));
        }
        let key = new_api_key();
        let now = self.clock.now();
        let expires = now.plus_millis(days.saturating_mul(86_400_000));
        let record = PrincipalRecord {
            id: id.clone(),
            kind: PrincipalKind::ServiceAccount,
            epoch: 1,
            disabled: false,
            password_hash: None,
            totp_secret: None,
            api_key_hash: Some(api_key_hash(&key)),
            api_key_expires_at: Some(expires),
            roles: roles.to_vec(),
            created_at: now,
            email: None,
        };
        let event = principal_event(EventKind::PrincipalCreate, actor, now, id)
            .with_detail("kind", json!(PrincipalKind::ServiceAccount.as_str()))
            .with_detail("roles", json!(roles))
            .with_detail("key_expires_at", json!(expires.to_rfc3339()));
        if !self.store.create_principal(&record, &event).await? {
            return Err(AuthError::Invalid(format!("principal `{id}` already exists; choose another name")));
        }
        self.observer.appended();
        Ok((record, key, expires))
    }

    /// Creates a user holding `roles` with `password`, and `email` when known (two accounts with
    /// one email count as one approver).
    pub async fn create_user(
        &self,
        actor: &Actor,
        id: &PrincipalId,
        roles: &[String],
        password: String,
        email: Option<&str>,
    ) -> Result<PrincipalRecord, AuthError> {
        self.writable()?;
        reserved(id)?;
        let email = email.map(|e| e.trim().to_lowercase());
        if let Some(e) = &email
            && (e.len() > 254
                || !e.contains('@')
                || e.starts_with('@')
                || e.ends_with('@')
                || e.chars().any(char::is_whitespace))
        {
            return Err(AuthError::Invalid(format!(
                "email `{}` is not an address like `dana@example.com`",
                airlock_model::echo::echo(e)
            )));
        }
        self.authorizer().check_held(roles).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if password.chars().count() < PASSWORD_MIN_CHARS {
            return Err(AuthError::Invalid(format!(
                "password is shorter than {PASSWORD_MIN_CHARS} characters; choose a longer one"
            )));
        }
        let hash = hash_password(password).await.map_err(AuthError::Internal)?;
        let now = self.clock.now();
        let record = PrincipalRecord {
            id: id.clone(),
            kind: PrincipalKind::User,
            epoch: 1,
            disabled: false,
            password_hash: Some(hash),
            totp_secret: None,
            api_key_hash: None,
            api_key_expires_at: None,
            roles: roles.to_vec(),
            created_at: now,
            email: email.clone(),
        };
        let event = principal_event(EventKind::PrincipalCreate, actor, now, id)
            .with_detail("kind", json!(PrincipalKind::User.as_str()))
            .with_detail("roles", json!(roles))
            .with_detail("email", json!(email));
        if !self.store.create_principal(&record, &event).await? {
            return Err(AuthError::Invalid(format!("principal `{id}` already exists; choose another name")));
        }
        self.observer.appended();
        Ok(record)
    }

    /// Applies `change` to `id` (a role grant is checked against separation of duties first),
    /// raising its epoch. `None` when there is no such principal.
    pub async fn change(
        &self,
        actor: &Actor,
        id: &PrincipalId,
        change: PrincipalChange,
    ) -> Result<Option<PrincipalRecord>, AuthError> {
        self.writable()?;
        let Some(current) = self.store.principal(id).await? else { return Ok(None) };
        if let PrincipalChange::GrantRole { role } = &change {
            self.authorizer().check_grant(&current.roles, role).map_err(|e| AuthError::Invalid(e.to_string()))?;
        }
        let what = match &change {
            PrincipalChange::Disable => json!({"disable": true}),
            PrincipalChange::Enable => json!({"enable": true}),
            PrincipalChange::SetPassword { .. } => json!({"password": "set"}),
            PrincipalChange::SetTotp { secret } => json!({"totp": if secret.is_some() { "set" } else { "removed" }}),
            PrincipalChange::SetApiKey { expires_at, .. } => {
                json!({"api_key": "rotated", "expires_at": expires_at.to_rfc3339()})
            }
            PrincipalChange::GrantRole { role } => json!({"grant": role}),
            PrincipalChange::RevokeRole { role } => json!({"revoke": role}),
        };
        let event = principal_event(EventKind::PrincipalChange, actor, self.clock.now(), id)
            .with_detail("change", what)
            .with_detail("epoch", json!(current.epoch.saturating_add(1)));
        let changed = self.store.change_principal(id, &change, &event).await?;
        self.observer.appended();
        Ok(changed)
    }

    /// Asks for `role` for `duration_secs` (at most `access.jit_max_duration_secs`), for the
    /// caller itself. Needs `access.request`; a role that would join conflicting duties with the
    /// caller's roles is refused.
    pub async fn request_grant(
        &self,
        caller: &Caller,
        role: &str,
        duration_secs: u64,
        reason: &str,
        source: &str,
        request_id: &str,
    ) -> Result<GrantRecord, AuthError> {
        self.writable()?;
        if duration_secs == 0 || duration_secs > self.config.jit_max_duration_secs {
            return Err(AuthError::Invalid(format!(
                "an elevation lasts 1 to {} seconds (`access.jit_max_duration_secs`); ask for less",
                self.config.jit_max_duration_secs
            )));
        }
        if reason.trim().is_empty() || reason.len() > 1024 {
            return Err(AuthError::Invalid("say why, in 1 to 1024 bytes of `reason`".to_owned()));
        }
        self.authorizer().check_grant(&caller.roles, role).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let id = format!("g-{}", token::new_jti());
        let resource =
            Resource::AccessGrant { id: id.clone(), requester_id: caller.id.to_string(), role: role.to_owned() };
        self.require(caller, Action::AccessRequest, &resource, source, request_id).await?;
        let grant = GrantRecord {
            id,
            principal: caller.id.clone(),
            role: role.to_owned(),
            reason: reason.to_owned(),
            duration_secs,
            status: GrantStatus::Pending,
            requested_at: self.clock.now(),
            decided_by: None,
            decided_at: None,
            expires_at: None,
        };
        let event = grant_event(EventKind::AccessRequest, &caller.actor(request_id), self.clock.now(), &grant)
            .with_detail("duration_secs", json!(duration_secs))
            .with_detail("reason", json!(reason));
        self.store.create_grant(&grant, &event).await?;
        self.observer.appended();
        Ok(grant)
    }

    /// Approves a pending grant: another principal holding `access.approve`, with a fresh second
    /// factor (the shipped policies). The role is in force from now for the grant's duration.
    pub async fn approve_grant(
        &self,
        caller: &Caller,
        id: &str,
        source: &str,
        request_id: &str,
    ) -> Result<GrantRecord, AuthError> {
        self.writable()?;
        let grant =
            self.store.grant(id).await?.ok_or_else(|| AuthError::NotFound(format!("no access request `{id}`")))?;
        let resource = Resource::AccessGrant {
            id: grant.id.clone(),
            requester_id: grant.principal.to_string(),
            role: grant.role.clone(),
        };
        self.require(caller, Action::AccessApprove, &resource, source, request_id).await?;
        if grant.status != GrantStatus::Pending {
            return Err(AuthError::Invalid(format!("access request `{id}` is {}, not pending", grant.status.as_str())));
        }
        // Duties may have changed since the request.
        let holder = self
            .store
            .principal(&grant.principal)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("no principal `{}`", grant.principal)))?;
        let (holder, _) = self.with_grants(holder).await?;
        self.authorizer().check_grant(&holder.roles, &grant.role).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let now = self.clock.now();
        let active = GrantRecord {
            status: GrantStatus::Active,
            decided_by: Some(caller.id.to_string()),
            decided_at: Some(now),
            expires_at: Some(now.plus_millis(grant.duration_secs.saturating_mul(1000))),
            ..grant
        };
        let event = grant_event(EventKind::AccessApprove, &caller.actor(request_id), now, &active)
            .with_detail("expires_at", json!(active.expires_at.map(|t| t.to_rfc3339())));
        let stored = self
            .store
            .decide_grant(&active, GrantStatus::Pending, &event)
            .await?
            .ok_or_else(|| AuthError::Invalid(format!("access request `{id}` was decided meanwhile")))?;
        self.observer.appended();
        Ok(stored)
    }

    /// Revokes a grant early (its holder, or a principal holding `access.grant`); the holder's
    /// tokens die with the raised epoch.
    pub async fn revoke_grant(
        &self,
        caller: &Caller,
        id: &str,
        source: &str,
        request_id: &str,
    ) -> Result<GrantRecord, AuthError> {
        self.writable()?;
        let grant =
            self.store.grant(id).await?.ok_or_else(|| AuthError::NotFound(format!("no access request `{id}`")))?;
        if grant.principal != caller.id {
            let resource = Resource::AccessGrant {
                id: grant.id.clone(),
                requester_id: grant.principal.to_string(),
                role: grant.role.clone(),
            };
            self.require(caller, Action::AccessGrant, &resource, source, request_id).await?;
        }
        let from = grant.status;
        if !matches!(from, GrantStatus::Pending | GrantStatus::Active) {
            return Err(AuthError::Invalid(format!("access request `{id}` is {} already", from.as_str())));
        }
        let now = self.clock.now();
        let revoked = GrantRecord {
            status: GrantStatus::Revoked,
            decided_by: Some(caller.id.to_string()),
            decided_at: Some(now),
            ..grant
        };
        let event = grant_event(EventKind::AccessRevoke, &caller.actor(request_id), now, &revoked);
        let stored = self
            .store
            .decide_grant(&revoked, from, &event)
            .await?
            .ok_or_else(|| AuthError::Invalid(format!("access request `{id}` was decided meanwhile")))?;
        self.observer.appended();
        Ok(stored)
    }

    /// Grants visible to the caller: its own, or everyone's for a holder of `access.grant`.
    pub async fn list_grants(&self, caller: &Caller, source: &str) -> Result<Vec<GrantRecord>, AuthError> {
        let everyone = Resource::AccessGrant { id: "*".to_owned(), requester_id: "*".to_owned(), role: "*".to_owned() };
        let all = self.decide_caller(caller, Action::AccessGrant, &everyone, source).allowed;
        Ok(self.store.grants(if all { None } else { Some(&caller.id) }).await?)
    }

    /// Refuses, and logs, what Cedar does not allow the caller.
    pub(crate) async fn require(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        source: &str,
        request_id: &str,
    ) -> Result<(), AuthError> {
        self.require_in(caller, action, resource, source, request_id, None).await
    }

    /// [`AuthService::require`] for a request about an artifact whose trusted provenance names
    /// `origin` (Cedar's `context.origin_builder` and `context.origin_source`).
    pub(crate) async fn require_in(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        source: &str,
        request_id: &str,
        origin: Option<airlock_access::authz::Origin>,
    ) -> Result<(), AuthError> {
        let decision = match origin {
            None => self.decide_caller(caller, action, resource, source),
            Some(origin) => {
                let principal = Principal {
                    kind: match caller.kind {
                        PrincipalKind::User => AuthzKind::User,
                        PrincipalKind::ServiceAccount => AuthzKind::ServiceAccount,
                    },
                    id: caller.id.to_string(),
                    roles: caller.roles.clone(),
                };
                let context = AuthzContext { origin: Some(origin), ..self.context_for(caller, source) };
                self.authorizer().authorize(&principal, action, resource, &context)
            }
        };
        if decision.allowed {
            return Ok(());
        }
        let mut reasons = decision.reasons.clone();
        reasons.extend(decision.errors);
        if reasons.is_empty() {
            reasons.push(format!("no policy permits `{}`", action.as_str()));
        }
        let event = Event {
            kind: EventKind::AccessDenied,
            time: self.clock.now(),
            actor: caller.actor(request_id),
            subject: Subject::default(),
            outcome: Outcome::Denied { reasons: reasons.clone() },
            details: Default::default(),
        }
        .with_detail("principal", json!(caller.id.as_str()))
        .with_detail("action", json!(action.as_str()));
        self.log(&[event]).await?;
        Err(AuthError::Denied(format!("`{}` may not `{}` here ({})", caller.id, action.as_str(), reasons.join("; "))))
    }

    /// Rotates a service account's API key; the old key and every token die with the epoch.
    pub async fn rotate_key(
        &self,
        actor: &Actor,
        id: &PrincipalId,
        days: Option<u64>,
    ) -> Result<Option<(String, Timestamp)>, AuthError> {
        let days = days.unwrap_or(self.config.api_key_max_days);
        if days == 0 || days > self.config.api_key_max_days {
            return Err(AuthError::Invalid(format!(
                "an api key lives 1 to {} days (`access.api_key_max_days`); ask for fewer days",
                self.config.api_key_max_days
            )));
        }
        match self.store.principal(id).await? {
            Some(r) if r.kind == PrincipalKind::ServiceAccount => {}
            Some(_) => return Err(AuthError::Invalid(format!("`{id}` is a user; users have passwords, not api keys"))),
            None => return Ok(None),
        }
        let key = new_api_key();
        let expires = self.clock.now().plus_millis(days.saturating_mul(86_400_000));
        let change = PrincipalChange::SetApiKey { hash: api_key_hash(&key), expires_at: expires };
        Ok(self.change(actor, id, change).await?.map(|_| (key, expires)))
    }
}

/// Refuses the names the log gives the server and unauthenticated clients, and the one `/token`
/// gives a meaning of its own ([`PrincipalId::is_reserved`]).
fn reserved(id: &PrincipalId) -> Result<(), AuthError> {
    if id.is_reserved() {
        return Err(AuthError::Invalid(format!(
            "principal name `{id}` is reserved: the log names the server `airlock`, unauthenticated clients `anonymous`, `/token` takes CI tokens as `{OIDC_USERNAME}`, and `system` and names starting with `airlock-` are kept too; choose another name"
        )));
    }
    Ok(())
}

fn grant_event(kind: EventKind, actor: &Actor, time: Timestamp, grant: &GrantRecord) -> Event {
    Event::allowed(kind, actor, time, Subject::default())
        .with_detail("principal", json!(grant.principal.as_str()))
        .with_detail("grant", json!(grant.id))
        .with_detail("role", json!(grant.role))
}

fn principal_event(kind: EventKind, actor: &Actor, time: Timestamp, id: &PrincipalId) -> Event {
    Event::allowed(kind, actor, time, Subject::default()).with_detail("principal", json!(id.as_str()))
}

fn token_principal_kind(kind: PrincipalKind) -> TokenPrincipalKind {
    match kind {
        PrincipalKind::User => TokenPrincipalKind::User,
        PrincipalKind::ServiceAccount => TokenPrincipalKind::ServiceAccount,
    }
}

/// Whether a claim rule's scopes (`repository:<glob>:<actions>`, the glob matching within
/// `/`-segments) allow `action` on `repo`; no scopes means no limit beyond the roles.
fn within(limit: &[String], repo: &RepoName, action: RepoAction) -> bool {
    limit.is_empty()
        || limit.iter().any(|scope| {
            let Some(rest) = scope.strip_prefix("repository:") else { return false };
            let Some((pattern, actions)) = rest.rsplit_once(':') else { return false };
            airlock_access::token::oidc::glob_matches(pattern, repo.as_str())
                && actions.split(',').any(|a| a == "*" || a == action.as_str())
        })
}

/// The Cedar action of a registry action.
pub fn repo_action(action: RepoAction) -> Action {
    match action {
        RepoAction::Pull => Action::Pull,
        RepoAction::Push => Action::Push,
        RepoAction::Delete => Action::Delete,
    }
}

/// The one principal whose epoch a token may be checked against.
struct LiveEpoch(Option<(String, u64)>);

impl token::EpochSource for LiveEpoch {
    fn live_epoch(&self, subject: &str) -> Option<u64> {
        self.0.as_ref().filter(|(id, _)| id == subject).map(|(_, epoch)| *epoch)
    }
}

/// The `sub` of a token, read without verifying it, only to find whose epoch to check.
fn unverified_subject(token: &str) -> Option<String> {
    if token.len() > token::MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("sub")?.as_str().map(str::to_owned)
}

/// The `kind` of a token, read without verifying it, only to pick how to verify it.
fn unverified_kind(token: &str) -> Option<TokenKind> {
    if token.len() > token::MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let value: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    match value.get("kind")?.as_str()? {
        "api" => Some(TokenKind::Api),
        "registry" => Some(TokenKind::Registry),
        _ => None,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The name and secret of a `Basic` authorization header.
pub fn basic_credentials(headers: &HeaderMap) -> Result<(String, String), AuthError> {
    let malformed = |why: &str| AuthError::Malformed(format!("{why}; send `Authorization: Basic base64(name:secret)`"));
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(AuthError::BadCredentials);
    };
    let value = value.to_str().map_err(|_| malformed("authorization header is not ASCII"))?;
    let (scheme, encoded) = value.split_once(' ').ok_or_else(|| malformed("authorization header has no scheme"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed("credentials must use the Basic scheme"));
    }
    if encoded.len() > SECRET_MAX_BYTES.saturating_mul(2) {
        return Err(malformed("credentials are too long"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed("credentials are not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| malformed("credentials are not UTF-8"))?;
    let (name, secret) = text.split_once(':').ok_or_else(|| malformed("credentials have no `:`"))?;
    Ok((name.to_owned(), secret.to_owned()))
}

fn read_or_create_key(path: &Path) -> Result<TokenKey, AuthStartError> {
    let display = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let der = STANDARD.decode(text.trim()).map_err(|e| AuthStartError::KeyRead {
                path: display.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            })?;
            TokenKey::from_pkcs8_der(&der).map_err(|source| AuthStartError::KeyParse { path: display, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = TokenKey::generate();
            let der =
                key.to_pkcs8_der().map_err(|source| AuthStartError::KeyParse { path: display.clone(), source })?;
            crate::log::write_private(path, &STANDARD.encode(der.as_bytes()))
                .map_err(|source| AuthStartError::KeyWrite { path: display, source })?;
            Ok(key)
        }
        Err(source) => Err(AuthStartError::KeyRead { path: display, source }),
    }
}

/// A random secret of `bytes` random bytes, URL-safe base64.
fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A generated password: 144 random bits.
pub fn generate_password() -> String {
    random_secret(18)
}

/// A new API key: the prefix and 256 random bits.
fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_secret(32))
}

/// How an API key is stored: hex SHA-256 (the key has 256 bits of entropy, so a fast hash is
/// enough; Argon2 is for the low entropy of human passwords).
fn api_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Argon2id (the crate's defaults: 19 MiB, 2 passes), on a blocking thread.
async fn hash_password(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn verify_password(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}
