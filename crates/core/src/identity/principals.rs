//! Principals: creating users and service accounts, and changing what they may do.

use airlock_access::authz::{Action, Resource};
use airlock_model::{PrincipalId, PrincipalKind, Timestamp};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::{Acting, Identity, IdentityError, events};
use crate::audit::{Actor, EventKind};
use crate::ports::{PrincipalChange, PrincipalRecord};

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

/// Refuses the names `/token` gives a meaning of its own.
fn reserved(id: &PrincipalId) -> Result<(), IdentityError> {
    if id.as_str() == "oidc" {
        return Err(IdentityError::Invalid(
            "`oidc` is reserved for CI tokens at `/token`; choose another name".to_owned(),
        ));
    }
    Ok(())
}

/// A normalized e-mail, or why it is not one.
fn email(email: Option<&str>) -> Result<Option<String>, IdentityError> {
    let Some(e) = email.map(|e| e.trim().to_lowercase()) else { return Ok(None) };
    if e.len() > 254 || !e.contains('@') || e.starts_with('@') || e.ends_with('@') || e.chars().any(char::is_whitespace)
    {
        return Err(IdentityError::Invalid(format!(
            "email `{}` is not an address like `dana@example.com`",
            airlock_model::echo::echo(&e)
        )));
    }
    Ok(Some(e))
}

impl Identity {
    /// Refuses, and logs, a change to `target` (granting `role`, `*` for any) that `acting` may
    /// not make: it needs `access.grant`, and nobody manages themselves.
    async fn require_manage(&self, acting: &Acting, target: &str, role: &str) -> Result<(), IdentityError> {
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

    /// Creates a service account holding `roles`, with an API key valid for `days` (at most
    /// `access.api_key_max_days`). Returns the record and the key, shown once.
    pub async fn create_service_account(
        &self,
        acting: &Acting,
        id: &PrincipalId,
        roles: &[String],
        days: Option<u64>,
    ) -> Result<(PrincipalRecord, String, Timestamp), IdentityError> {
        self.writable()?;
        self.require_manage(acting, id.as_str(), &roles.join(",")).await?;
        reserved(id)?;
        self.authorizer().check_held(roles).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let days = self.key_days(days)?;
        let key = new_api_key();
        let now = self.now();
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
        let event = events::principal(EventKind::PrincipalCreate, &acting.actor, now, id)
            .with_detail("kind", json!(PrincipalKind::ServiceAccount.as_str()))
            .with_detail("roles", json!(roles))
            .with_detail("key_expires_at", json!(expires.to_rfc3339()));
        if !self.store.create_principal(&record, &event).await? {
            return Err(IdentityError::Invalid(format!("principal `{id}` already exists; choose another name")));
        }
        self.observer.appended();
        Ok((record, key, expires))
    }

    /// Creates a user holding `roles`, with a password already hashed (Argon2id PHC) and
    /// `email` when known (two accounts with one email count as one approver).
    pub async fn create_user(
        &self,
        acting: &Acting,
        id: &PrincipalId,
        roles: &[String],
        password_hash: String,
        email: Option<&str>,
    ) -> Result<PrincipalRecord, IdentityError> {
        self.writable()?;
        self.require_manage(acting, id.as_str(), &roles.join(",")).await?;
        self.insert_user(&acting.actor, id, roles, password_hash, email).await
    }

    /// At the first start (no principal stored), creates `id` holding `roles` with a password
    /// already hashed. `false` when principals exist already.
    pub async fn bootstrap(
        &self,
        id: &PrincipalId,
        roles: &[String],
        password_hash: String,
    ) -> Result<bool, IdentityError> {
        if !self.store.principals().await?.is_empty() {
            return Ok(false);
        }
        self.insert_user(&Actor::system(), id, roles, password_hash, None).await?;
        Ok(true)
    }

    async fn insert_user(
        &self,
        actor: &Actor,
        id: &PrincipalId,
        roles: &[String],
        password_hash: String,
        email: Option<&str>,
    ) -> Result<PrincipalRecord, IdentityError> {
        self.writable()?;
        reserved(id)?;
        let email = self::email(email)?;
        self.authorizer().check_held(roles).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let now = self.now();
        let record = PrincipalRecord {
            id: id.clone(),
            kind: PrincipalKind::User,
            epoch: 1,
            disabled: false,
            password_hash: Some(password_hash),
            totp_secret: None,
            api_key_hash: None,
            api_key_expires_at: None,
            roles: roles.to_vec(),
            created_at: now,
            email: email.clone(),
        };
        let event = events::principal(EventKind::PrincipalCreate, actor, now, id)
            .with_detail("kind", json!(PrincipalKind::User.as_str()))
            .with_detail("roles", json!(roles))
            .with_detail("email", json!(email));
        if !self.store.create_principal(&record, &event).await? {
            return Err(IdentityError::Invalid(format!("principal `{id}` already exists; choose another name")));
        }
        self.observer.appended();
        Ok(record)
    }

    /// Applies `change` to another principal, as an access admin (`role` names the role granted
    /// or revoked, `*` otherwise). `None` when there is no such principal.
    pub async fn manage(
        &self,
        acting: &Acting,
        id: &PrincipalId,
        role: &str,
        change: PrincipalChange,
    ) -> Result<Option<PrincipalRecord>, IdentityError> {
        self.writable()?;
        self.require_manage(acting, id.as_str(), role).await?;
        self.apply(&acting.actor, id, change).await
    }

    /// Rotates a service account's API key as an access admin; the old key and every token die
    /// with the epoch. `None` when there is no such principal.
    pub async fn rotate_key(
        &self,
        acting: &Acting,
        id: &PrincipalId,
        days: Option<u64>,
    ) -> Result<Option<(String, Timestamp)>, IdentityError> {
        self.writable()?;
        self.require_manage(acting, id.as_str(), "*").await?;
        let days = self.key_days(days)?;
        match self.store.principal(id).await? {
            Some(r) if r.kind == PrincipalKind::ServiceAccount => {}
            Some(_) => {
                return Err(IdentityError::Invalid(format!("`{id}` is a user; users have passwords, not api keys")));
            }
            None => return Ok(None),
        }
        let key = new_api_key();
        let expires = self.now().plus_millis(days.saturating_mul(86_400_000));
        let change = PrincipalChange::SetApiKey { hash: api_key_hash(&key), expires_at: expires };
        Ok(self.apply(&acting.actor, id, change).await?.map(|_| (key, expires)))
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
        };
        let event = events::principal(EventKind::PrincipalChange, actor, self.now(), id)
            .with_detail("change", what)
            .with_detail("epoch", json!(current.epoch.saturating_add(1)));
        let changed = self.store.change_principal(id, &change, &event).await?;
        self.observer.appended();
        Ok(changed)
    }
}
