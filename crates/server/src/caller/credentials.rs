//! Credentials: Basic passwords and API keys, CI tokens at `/token`, second factors, and the
//! bootstrap administrator.

use airlock_access::token;
use airlock_core::audit::{Actor, Event, EventKind, Outcome, Subject};
use airlock_core::identity::api_key_hash;
use airlock_core::ports::{PrincipalChange, PrincipalRecord};
use airlock_model::{PrincipalId, PrincipalKind};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::HeaderMap;
use rand::RngCore;
use serde_json::json;

use super::throttle::{self, Key as ThrottleKey};
use super::{ADMIN, ADMIN_ROLES, BOOTSTRAP_PASSWORD_ENV, CallerError, CallerService, CallerStartError};

/// Longest secret accepted in Basic credentials, in bytes.
pub const SECRET_MAX_BYTES: usize = 1024;
/// Shortest password accepted for a user.
pub const PASSWORD_MIN_CHARS: usize = 12;

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

impl CallerService {
    /// Checks a user's TOTP code; the step is spent. Returns when the factor was proved.
    pub async fn verify_otp(
        &self,
        record: &PrincipalRecord,
        code: &str,
        source: &str,
        request_id: &str,
    ) -> Result<u64, CallerError> {
        let secret = record.totp_secret.as_deref().and_then(|h| hex::decode(h).ok());
        let Some(secret) = secret else {
            return Err(CallerError::Invalid(format!(
                "`{}` has no second factor enrolled; enroll one with `POST /api/v1/auth/mfa`",
                record.id
            )));
        };
        // Code guesses back off per (principal, client address), apart from passwords: the
        // right password before each guess does not wipe them.
        let guesses = [ThrottleKey::otp(record.id.as_str(), source), ThrottleKey::client(source)];
        if let Some(wait) = self.throttle.blocked(&guesses).await? {
            return Err(CallerError::Throttled { retry_after_secs: throttle::retry_after_secs(wait) });
        }
        let now = self.now_secs();
        // A step is spent in the store, conditionally, so a code logs in once whichever server
        // it reaches, and of two racing uses exactly one wins.
        let spent = match airlock_access::totp::verify(&secret, code.trim(), now, None) {
            Some(step) => {
                // The spent step belongs to this secret: a newly enrolled factor starts afresh.
                let factor = airlock_model::Digest::of(&secret).hex().to_owned();
                self.logins.spend_totp_step(&record.id, &factor, step).await?
            }
            None => false,
        };
        match spent {
            true => {
                self.throttle.succeed(&guesses[0]).await?;
                Ok(now)
            }
            false => {
                self.throttle.fail(&guesses).await?;
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
                self.identity.log(&[event]).await?;
                Err(CallerError::BadCredentials)
            }
        }
    }

    /// Enrolls (or replaces) a user's TOTP second factor; returns the secret (base32) and the
    /// `otpauth://` URI, shown once. Raises the epoch: tokens from before die.
    pub async fn enroll_totp(&self, record: &PrincipalRecord) -> Result<(String, String), CallerError> {
        if record.kind != PrincipalKind::User {
            return Err(CallerError::Invalid(
                "service accounts have no second factor; they use API keys or CI tokens".to_owned(),
            ));
        }
        let secret = airlock_access::totp::generate_secret();
        let actor = Actor::authenticated(&record.id, record.kind, "");
        let changed = self
            .identity
            .apply(&actor, &record.id, PrincipalChange::SetTotp { secret: Some(hex::encode(secret)) })
            .await?;
        if changed.is_none() {
            return Err(CallerError::Invalid(format!("no principal `{}`", record.id)));
        }
        let uri = airlock_access::totp::otpauth_uri(&self.config.service, record.id.as_str(), &secret);
        Ok((airlock_access::totp::base32(&secret), uri))
    }

    /// Completes a user's enrollment with its one-time token: sets `password` (hashed here, on
    /// a blocking thread, only once the token checks out) and a new TOTP second factor, whose
    /// secret (base32) and `otpauth://` URI are returned, shown once.
    pub async fn enroll(
        &self,
        token: &str,
        password: String,
    ) -> Result<(PrincipalRecord, String, String), CallerError> {
        if password.chars().count() < PASSWORD_MIN_CHARS {
            return Err(CallerError::Invalid(format!(
                "password is shorter than {PASSWORD_MIN_CHARS} characters; choose a longer one"
            )));
        }
        if password.len() > SECRET_MAX_BYTES {
            return Err(CallerError::Invalid(format!(
                "password is longer than {SECRET_MAX_BYTES} bytes; choose a shorter one"
            )));
        }
        self.identity.enrollment_for(token).await?;
        let hash = self.hash_password(password).await.map_err(CallerError::Internal)?;
        let secret = airlock_access::totp::generate_secret();
        let record = self.identity.enroll(token, hash, hex::encode(secret)).await?;
        let uri = airlock_access::totp::otpauth_uri(&self.config.service, record.id.as_str(), &secret);
        Ok((record, airlock_access::totp::base32(&secret), uri))
    }

    /// At the first start (no principal stored), creates `admin` holding [`ADMIN_ROLES`] with
    /// `password`, or a generated one that is returned so it can be shown once.
    pub async fn bootstrap(&self, password: Option<String>) -> Result<Option<String>, CallerStartError> {
        let failed = |e: String| CallerStartError::Bootstrap(e);
        if !self.identity.principals().await.map_err(|e| failed(e.to_string()))?.is_empty() {
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
        let hash = self.hash_password(password.clone()).await.map_err(failed)?;
        let created = self.identity.bootstrap(&id, &roles, hash).await.map_err(|e| failed(e.to_string()))?;
        Ok(if created && generated { Some(password) } else { None })
    }

    /// Checks Basic credentials: a user's password, or a service account's API key.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        source: &str,
        request_id: &str,
    ) -> Result<Authenticated, CallerError> {
        let (name, secret) = basic_credentials(headers)?;
        let ci = name == OIDC_USERNAME;
        // An API key or a CI token cannot be guessed: its failures are counted, never backed
        // off, so nobody can lock a service account out. Passwords back off per (principal,
        // client address), and per address over all names (`throttle`).
        let api_key = !ci && throttle::is_api_key(&secret);
        let guessable = !ci && !api_key;
        let keys = [ThrottleKey::password(&name, source), ThrottleKey::client(source)];
        if guessable && let Some(wait) = self.throttle.blocked(&keys).await? {
            return Err(CallerError::Throttled { retry_after_secs: throttle::retry_after_secs(wait) });
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
                        Ok(id) => self.identity.principal(&id).await?,
                        Err(_) => None,
                    };
                    (record.filter(|r| r.kind == PrincipalKind::ServiceAccount), None)
                }
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            let record = match PrincipalId::parse(&name) {
                Ok(id) => self.identity.principal(&id).await?,
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
                let decoy = throttle::decoy_password_hash().await;
                let matched = self.verify_password(hash.clone().unwrap_or_else(|| decoy.to_owned()), secret).await?;
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
                    self.throttle.succeed(&keys[0]).await?;
                }
                Ok(Authenticated { record, limit })
            }
            (verdict, _) => {
                if guessable {
                    self.throttle.fail(&keys).await?;
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
                self.identity.log(&[failure(&reason).with_detail("method", json!(method))]).await?;
                Err(CallerError::BadCredentials)
            }
        }
    }

    /// Forgets failed logins nobody repeated for a day; returns how many keys were forgotten.
    pub async fn sweep_login_failures(&self) -> Result<u64, CallerError> {
        Ok(self.throttle.sweep().await?)
    }

    /// Failed logins with API keys and CI tokens, which never back off, for `/metrics`.
    pub fn login_counters(&self) -> throttle::LoginCounters {
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
}

/// The name and secret of a `Basic` authorization header.
pub fn basic_credentials(headers: &HeaderMap) -> Result<(String, String), CallerError> {
    let malformed =
        |why: &str| CallerError::Malformed(format!("{why}; send `Authorization: Basic base64(name:secret)`"));
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Err(CallerError::BadCredentials);
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl CallerService {
    /// Argon2id (the crate's defaults: 19 MiB, 2 passes), on the CPU pool.
    async fn hash_password(&self, password: String) -> Result<String, String> {
        let hashed = airlock_core::ports::offload(self.cpu.as_ref(), move || {
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        });
        hashed.await.map_err(|e| e.to_string())?
    }

    /// Whether `password` matches `hash`, checked on the CPU pool; a full pool refuses the
    /// login (503), never lets it through.
    async fn verify_password(&self, hash: String, password: String) -> Result<bool, CallerError> {
        airlock_core::ports::offload(self.cpu.as_ref(), move || {
            PasswordHash::new(&hash)
                .is_ok_and(|parsed| argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(|e| CallerError::Unavailable(e.to_string()))
    }
}
