//! Principals: creating users and service accounts, and changing what they may do.

use airlock_access::authz::{Action, Resource};
use airlock_model::{PrincipalId, PrincipalKind, Timestamp};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::grants::Outcome;
use super::{Acting, Identity, IdentityError, enrollment, events};
use crate::audit::{Actor, EventKind};
use crate::ports::{GrantKind, GrantRecord, PrincipalChange, PrincipalRecord};

/// A principal just created: its record, its secret shown once (a service account's API key,
/// a user's enrollment token) and when that expires, and the roles pending a second admin.
#[derive(Debug, Clone)]
pub struct Created {
    pub record: PrincipalRecord,
    pub secret: String,
    pub expires_at: Timestamp,
    pub pending: Vec<GrantRecord>,
}

/// Prefix of every API key, so a leaked key is recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "alk_";

/// A new API key: the prefix and 256 random bits, URL-safe base64.
fn new_api_key() -> String {
    use base64::Engine as _;
    let mut buf = [0u8; 32];
    rand::rng().fill_bytes(&mut buf);
    format!("{API_KEY_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// How an API key is stored: hex SHA-256 (the key has 256 bits of entropy, so a fast hash is
/// enough; Argon2 is for the low entropy of human passwords).
pub fn api_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Refuses the names the log gives the server and unauthenticated clients, and the one `/token`
/// gives a meaning of its own ([`PrincipalId::is_reserved`]).
fn reserved(id: &PrincipalId) -> Result<(), IdentityError> {
    if id.is_reserved() {
        return Err(IdentityError::Invalid(format!(
            "principal name `{id}` is reserved: the log names the server `airlock`, unauthenticated clients `anonymous`, `/token` takes CI tokens as `oidc`, and `system` and names starting with `airlock-` are kept too; choose another name"
        )));
    }
    Ok(())
}

/// An e-mail as stored (trimmed, lowercase), checked by the person rule's strict grammar.
fn email(email: Option<&str>) -> Result<Option<String>, IdentityError> {
    let Some(e) = email.map(|e| e.trim().to_lowercase()) else { return Ok(None) };
    let rule = super::person::PersonRule { fold_subaddress: false };
    super::person::Person::from_email(&e, &rule).map_err(|err| IdentityError::Invalid(err.to_string()))?;
    Ok(Some(e))
}

/// Why user `id` may not hold `role` without an e-mail.
pub(super) fn no_person(id: &PrincipalId, role: &str) -> IdentityError {
    IdentityError::Invalid(format!(
        "user `{id}` has no e-mail, and `{role}` can push, ask for promotions or approve, which separation of duties compares by person; give them an e-mail (`--email`)"
    ))
}

impl Identity {
    /// Whether a user holding `role` must carry a person identity: it can push, ask for a
    /// promotion or a waiver, or approve one.
    pub(super) fn needs_person(&self, role: &str) -> bool {
        const PERSONAL: [Action; 5] = [
            Action::Push,
            Action::PromoteRequest,
            Action::PromoteApprove,
            Action::WaiverRequest,
            Action::WaiverApprove,
        ];
        self.permits(role, &PERSONAL)
    }

    /// Refuses, and logs, a change to `target` (granting `role`, `*` for any) that `acting` may
    /// not make: it needs `access.grant`, and nobody manages themselves.
    pub(super) async fn require_manage(&self, acting: &Acting, target: &str, role: &str) -> Result<(), IdentityError> {
        let resource = Resource::AccessGrant {
            id: format!("{target}/{role}"),
            requester_id: target.to_owned(),
            role: role.to_owned(),
        };
        let decision = self.decide(acting, Action::AccessGrant, &resource);
        let own = acting.id.as_str() == target;
        if decision.allowed && !own {
            return Ok(());
        }
        let mut reasons = decision.reasons;
        reasons.extend(decision.errors);
        if own {
            reasons.push("principals cannot change their own roles, keys or status".to_owned());
        } else if reasons.is_empty() {
            reasons.push("no policy permits `access.grant`".to_owned());
        }
        let refusal = self.refuse(acting, Action::AccessGrant, Some(target), reasons).await?;
        Err(match refusal {
            IdentityError::Denied(message) => {
                IdentityError::Denied(format!("{message}; ask a principal holding `access-admin`"))
            }
            other => other,
        })
    }

    /// Refuses a listing of principals `acting` may not see.
    pub async fn require_list(&self, acting: &Acting) -> Result<(), IdentityError> {
        self.require_manage(acting, "*", "*").await
    }

    /// Checks an API key's life in days against `access.api_key_max_days`.
    fn key_days(&self, days: Option<u64>) -> Result<u64, IdentityError> {
        let max = self.config.api_key_max_days;
        let days = days.unwrap_or(max);
        if days == 0 || days > max {
            return Err(IdentityError::Invalid(format!(
                "an api key lives 1 to {max} days (`access.api_key_max_days`); ask for fewer days"
            )));
        }
        Ok(days)
    }

    /// Splits `roles` into those bound at creation and those that wait for a second access admin
    /// (none while the instance has a single admin, whose privileged grants need its second
    /// factor), and whether a single admin bound privileged roles alone. Refuses roles that
    /// conflict.
    async fn split_roles(
        &self,
        acting: &Acting,
        roles: &[String],
    ) -> Result<(Vec<String>, Vec<String>, bool), IdentityError> {
        self.authorizer().check_held(roles).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        if !roles.iter().any(|r| self.privileged(r)) {
            return Ok((roles.to_vec(), Vec::new(), false));
        }
        if self.single_admin().await? {
            self.require_enrolled(acting).await?;
            return Ok((roles.to_vec(), Vec::new(), true));
        }
        let (later, now): (Vec<String>, Vec<String>) = roles.iter().cloned().partition(|r| self.privileged(r));
        Ok((now, later, false))
    }

    /// Asks for `later` roles of a principal just created, each pending a second access admin.
    async fn ask_roles(
        &self,
        acting: &Acting,
        record: &PrincipalRecord,
        later: &[String],
    ) -> Result<Vec<GrantRecord>, IdentityError> {
        let mut pending = Vec::with_capacity(later.len());
        for role in later {
            if let Outcome::Pending(grant) =
                self.ask(acting, GrantKind::Bind, record, role, "asked for at creation").await?
            {
                pending.push(grant);
            }
        }
        Ok(pending)
    }

    /// Stores a principal just made with its creation event (saying `bootstrap: true` when a
    /// single admin bound privileged roles alone), then asks for its `later` roles.
    async fn store_new(
        &self,
        acting: &Acting,
        record: PrincipalRecord,
        event: crate::audit::Event,
        bootstrap: bool,
        later: &[String],
        (secret, expires_at): (String, Timestamp),
    ) -> Result<Created, IdentityError> {
        let event = if bootstrap { event.with_detail("bootstrap", json!(true)) } else { event };
        if !self.store.create_principal(&record, &event).await? {
            let id = &record.id;
            return Err(IdentityError::Invalid(format!("principal `{id}` already exists; choose another name")));
        }
        self.observer.appended();
        let pending = self.ask_roles(acting, &record, later).await?;
        Ok(Created { record, secret, expires_at, pending })
    }

    /// Creates a service account holding `roles` (privileged ones pending a second access
    /// admin), with an API key valid for `days` (at most `access.api_key_max_days`), shown once.
    pub async fn create_service_account(
        &self,
        acting: &Acting,
        id: &PrincipalId,
        roles: &[String],
        days: Option<u64>,
    ) -> Result<Created, IdentityError> {
        self.writable()?;
        self.require_manage(acting, id.as_str(), &roles.join(",")).await?;
        reserved(id)?;
        let days = self.key_days(days)?;
        let (bound, later, bootstrap) = self.split_roles(acting, roles).await?;
        let key = new_api_key();
        let now = self.now();
        let expires = now.plus_millis(days.saturating_mul(86_400_000));
        let record = PrincipalRecord {
            api_key_hash: Some(api_key_hash(&key)),
            api_key_expires_at: Some(expires),
            ..PrincipalRecord::new(id, PrincipalKind::ServiceAccount, &bound, now)
        };
        let event = events::principal(EventKind::PrincipalCreate, &acting.actor, now, id)
            .with_detail("kind", json!(PrincipalKind::ServiceAccount.as_str()))
            .with_detail("roles", json!(bound))
            .with_detail("key_expires_at", json!(expires.to_rfc3339()));
        self.store_new(acting, record, event, bootstrap, &later, (key, expires)).await
    }

    /// Creates a user holding `roles` (privileged ones pending a second access admin) with
    /// `email` when known, and no password: the answer holds a one-time enrollment token with
    /// which the person sets their own password and second factor.
    pub async fn create_user(
        &self,
        acting: &Acting,
        id: &PrincipalId,
        roles: &[String],
        email: Option<&str>,
    ) -> Result<Created, IdentityError> {
        self.writable()?;
        self.require_manage(acting, id.as_str(), &roles.join(",")).await?;
        reserved(id)?;
        let email = self::email(email)?;
        if email.is_none()
            && let Some(role) = roles.iter().find(|r| self.needs_person(r))
        {
            return Err(no_person(id, role));
        }
        let (bound, later, bootstrap) = self.split_roles(acting, roles).await?;
        let now = self.now();
        let (token, hash, expires) = enrollment::issue(id, now, self.config.enrollment_ttl_secs);
        let record = PrincipalRecord {
            email: email.clone(),
            enrollment_hash: Some(hash),
            enrollment_expires_at: Some(expires),
            ..PrincipalRecord::new(id, PrincipalKind::User, &bound, now)
        };
        let event = events::principal(EventKind::PrincipalCreate, &acting.actor, now, id)
            .with_detail("kind", json!(PrincipalKind::User.as_str()))
            .with_detail("roles", json!(bound))
            .with_detail("email", json!(email))
            .with_detail("enrollment_expires_at", json!(expires.to_rfc3339()));
        self.store_new(acting, record, event, bootstrap, &later, (token, expires)).await
    }

    /// At the first start (no principal stored), creates `id` holding `roles` with a password
    /// already hashed: the one account whose password an operator chooses. `false` when
    /// principals exist already.
    pub async fn bootstrap(
        &self,
        id: &PrincipalId,
        roles: &[String],
        password_hash: String,
    ) -> Result<bool, IdentityError> {
        self.writable()?;
        if !self.store.principals().await?.is_empty() {
            return Ok(false);
        }
        let now = self.now();
        let record = PrincipalRecord {
            password_hash: Some(password_hash),
            ..PrincipalRecord::new(id, PrincipalKind::User, roles, now)
        };
        let event = events::principal(EventKind::PrincipalCreate, &Actor::system(), now, id)
            .with_detail("kind", json!(PrincipalKind::User.as_str()))
            .with_detail("roles", json!(roles))
            .with_detail("bootstrap", json!(true));
        let created = self.store.create_principal(&record, &event).await?;
        if created {
            self.observer.appended();
        }
        Ok(created)
    }

    /// The user a valid, unspent, unexpired enrollment token is for; the same refusal whatever
    /// is wrong with it.
    pub async fn enrollment_for(&self, token: &str) -> Result<PrincipalRecord, IdentityError> {
        let refused = || {
            IdentityError::Invalid(
                "enrollment token is invalid, spent or expired; ask an access admin for a new one (`airlock user reset NAME`)"
                    .to_owned(),
            )
        };
        let token = token.trim();
        let id = enrollment::subject(token).ok_or_else(refused)?;
        let record = self.store.principal(&id).await?.ok_or_else(refused)?;
        let valid = record.kind == PrincipalKind::User
            && !record.disabled
            && record.enrollment_hash.as_deref().is_some_and(|h| enrollment::same(h, &enrollment::hash(token)))
            && record.enrollment_expires_at.is_some_and(|e| self.now() < e);
        if valid { Ok(record) } else { Err(refused()) }
    }

    /// Completes an enrollment: the token's user gets `password_hash` and the TOTP
    /// `totp_secret` (hex), and the token is spent.
    pub async fn enroll(
        &self,
        token: &str,
        password_hash: String,
        totp_secret: String,
    ) -> Result<PrincipalRecord, IdentityError> {
        self.writable()?;
        let record = self.enrollment_for(token).await?;
        let change = PrincipalChange::Enroll { token_hash: enrollment::hash(token.trim()), password_hash, totp_secret };
        let actor = Actor::authenticated(&record.id, record.kind, "");
        self.apply(&actor, &record.id, change).await?.ok_or_else(|| {
            IdentityError::Invalid("enrollment token was spent meanwhile; ask an access admin for a new one".to_owned())
        })
    }

    /// Applies `change` to another principal, as an access admin (`role` names the role granted
    /// or revoked, `*` otherwise). A privileged change waits for a second access admin.
    pub async fn manage(
        &self,
        acting: &Acting,
        id: &PrincipalId,
        role: &str,
        change: PrincipalChange,
    ) -> Result<Outcome, IdentityError> {
        self.writable()?;
        self.require_manage(acting, id.as_str(), role).await?;
        let target =
            self.store.principal(id).await?.ok_or_else(|| IdentityError::NotFound(format!("no principal `{id}`")))?;
        let kind = match &change {
            PrincipalChange::GrantRole { .. } => Some(GrantKind::Bind),
            PrincipalChange::RevokeRole { .. } => Some(GrantKind::Unbind),
            PrincipalChange::Disable => Some(GrantKind::Disable),
            _ => None,
        };
        match kind {
            Some(kind) => self.ask(acting, kind, &target, role, "").await,
            None => self
                .apply(&acting.actor, id, change)
                .await?
                .map(Outcome::Done)
                .ok_or_else(|| IdentityError::NotFound(format!("no principal `{id}`"))),
        }
    }

    /// Rotates a service account's API key as an access admin; the old key and every token die
    /// with the epoch. `None` when there is no such principal.
    pub async fn rotate_key(
        &self,
        acting: &Acting,
        id: &PrincipalId,
        days: Option<u64>,
    ) -> Result<(Outcome, Option<(String, Timestamp)>), IdentityError> {
        self.writable()?;
        self.require_manage(acting, id.as_str(), "*").await?;
        let days = self.key_days(days)?;
        let target =
            self.store.principal(id).await?.ok_or_else(|| IdentityError::NotFound(format!("no principal `{id}`")))?;
        if target.kind != PrincipalKind::ServiceAccount {
            return Err(IdentityError::Invalid(format!("`{id}` is a user; users have passwords, not api keys")));
        }
        // Whoever holds a privileged account's key acts as it: a second access admin approves,
        // and receives the key.
        let privileged = target.roles.iter().any(|r| self.privileged(r));
        if privileged && !self.single_admin().await? {
            return Ok((self.ask(acting, GrantKind::Reset, &target, "", "api key rotation").await?, None));
        }
        if privileged {
            self.require_enrolled(acting).await?;
        }
        let (key, change) = self.new_key(days);
        let expires = match &change {
            PrincipalChange::SetApiKey { expires_at, .. } => *expires_at,
            _ => self.now(),
        };
        let record = self
            .apply_logged(&acting.actor, id, change, privileged)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("no principal `{id}`")))?;
        Ok((Outcome::Done(record), Some((key, expires))))
    }

    /// A new API key valid for `days`, and the change that stores it.
    pub(super) fn new_key(&self, days: u64) -> (String, PrincipalChange) {
        let key = new_api_key();
        let expires_at = self.now().plus_millis(days.saturating_mul(86_400_000));
        let change = PrincipalChange::SetApiKey { hash: api_key_hash(&key), expires_at };
        (key, change)
    }

    /// Applies `change` to `id` as `actor` has already been allowed to (a role grant is checked
    /// against separation of duties over the roles in force first), raising its epoch. `None`
    /// when there is no such principal.
    pub async fn apply(
        &self,
        actor: &Actor,
        id: &PrincipalId,
        change: PrincipalChange,
    ) -> Result<Option<PrincipalRecord>, IdentityError> {
        self.apply_logged(actor, id, change, false).await
    }

    /// [`Identity::apply`], the event saying `bootstrap: true` when a single admin made a
    /// privileged change alone.
    pub(super) async fn apply_logged(
        &self,
        actor: &Actor,
        id: &PrincipalId,
        change: PrincipalChange,
        bootstrap: bool,
    ) -> Result<Option<PrincipalRecord>, IdentityError> {
        self.writable()?;
        let Some(current) = self.store.principal(id).await? else { return Ok(None) };
        if let PrincipalChange::GrantRole { role } = &change {
            let (in_force, _) = self.in_force(current.clone()).await?;
            self.authorizer().check_grant(&in_force.roles, role).map_err(|e| IdentityError::Invalid(e.to_string()))?;
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
            PrincipalChange::SetEnrollment { expires_at, .. } => {
                json!({"enrollment": "issued", "expires_at": expires_at.to_rfc3339()})
            }
            PrincipalChange::Enroll { .. } => json!({"enrollment": "completed"}),
        };
        let mut event = events::principal(EventKind::PrincipalChange, actor, self.now(), id)
            .with_detail("change", what)
            .with_detail("epoch", json!(current.epoch.saturating_add(1)));
        if bootstrap {
            event = event.with_detail("bootstrap", json!(true));
        }
        let changed = self.store.change_principal(id, &change, &event).await?;
        if changed.is_some() {
            self.observer.appended();
        }
        Ok(changed)
    }
}
