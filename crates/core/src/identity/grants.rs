//! Just-in-time grants: a role asked for a while, approved by another principal, in force until
//! it expires or is revoked.

use airlock_access::authz::{Action, Resource};
use serde_json::json;

use super::{Acting, Identity, IdentityError, events};
use crate::audit::EventKind;
use crate::ports::{GrantRecord, GrantStatus};

/// The Cedar resource of a grant.
fn resource(grant: &GrantRecord) -> Resource {
    Resource::AccessGrant { id: grant.id.clone(), requester_id: grant.principal.to_string(), role: grant.role.clone() }
}

impl Identity {
    async fn stored_grant(&self, id: &str) -> Result<GrantRecord, IdentityError> {
        self.store.grant(id).await?.ok_or_else(|| IdentityError::NotFound(format!("no access request `{id}`")))
    }

    /// Asks for `role` for `duration_secs` (at most `access.jit_max_duration_secs`), for the
    /// acting principal itself. Needs `access.request`; a role that would join conflicting
    /// duties with the roles in force is refused.
    pub async fn request_grant(
        &self,
        acting: &Acting,
        role: &str,
        duration_secs: u64,
        reason: &str,
    ) -> Result<GrantRecord, IdentityError> {
        self.writable()?;
        let max = self.config.jit_max_duration_secs;
        if duration_secs == 0 || duration_secs > max {
            return Err(IdentityError::Invalid(format!(
                "an elevation lasts 1 to {max} seconds (`access.jit_max_duration_secs`); ask for less"
            )));
        }
        if reason.trim().is_empty() || reason.len() > 1024 {
            return Err(IdentityError::Invalid("say why, in 1 to 1024 bytes of `reason`".to_owned()));
        }
        self.authorizer().check_grant(&acting.roles, role).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let now = self.now();
        let grant = GrantRecord {
            id: format!("g-{}", airlock_access::token::new_jti()),
            principal: acting.id.clone(),
            role: role.to_owned(),
            reason: reason.to_owned(),
            duration_secs,
            status: GrantStatus::Pending,
            requested_at: now,
            decided_by: None,
            decided_at: None,
            expires_at: None,
        };
        self.require(acting, Action::AccessRequest, &resource(&grant)).await?;
        let event = events::grant(EventKind::AccessRequest, &acting.actor, now, &grant)
            .with_detail("duration_secs", json!(duration_secs))
            .with_detail("reason", json!(reason));
        self.store.create_grant(&grant, &event).await?;
        self.observer.appended();
        Ok(grant)
    }

    /// Approves a pending grant: another principal holding `access.approve`, with a fresh second
    /// factor (the shipped policies). The role is in force from now for the grant's duration.
    pub async fn approve_grant(&self, acting: &Acting, id: &str) -> Result<GrantRecord, IdentityError> {
        self.writable()?;
        let grant = self.stored_grant(id).await?;
        self.require(acting, Action::AccessApprove, &resource(&grant)).await?;
        if grant.status != GrantStatus::Pending {
            return Err(IdentityError::Invalid(format!(
                "access request `{id}` is {}, not pending",
                grant.status.as_str()
            )));
        }
        // Duties may have changed since the request.
        let holder = self
            .store
            .principal(&grant.principal)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("no principal `{}`", grant.principal)))?;
        let (holder, _) = self.in_force(holder).await?;
        self.authorizer().check_grant(&holder.roles, &grant.role).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let now = self.now();
        let active = GrantRecord {
            status: GrantStatus::Active,
            decided_by: Some(acting.id.to_string()),
            decided_at: Some(now),
            expires_at: Some(now.plus_millis(grant.duration_secs.saturating_mul(1000))),
            ..grant
        };
        let event = events::grant(EventKind::AccessApprove, &acting.actor, now, &active)
            .with_detail("expires_at", json!(active.expires_at.map(|t| t.to_rfc3339())));
        let stored = self
            .store
            .decide_grant(&active, GrantStatus::Pending, &event)
            .await?
            .ok_or_else(|| IdentityError::Invalid(format!("access request `{id}` was decided meanwhile")))?;
        self.observer.appended();
        Ok(stored)
    }

    /// Revokes a grant early (its holder, or a principal holding `access.grant`); the holder's
    /// tokens die with the raised epoch.
    pub async fn revoke_grant(&self, acting: &Acting, id: &str) -> Result<GrantRecord, IdentityError> {
        self.writable()?;
        let grant = self.stored_grant(id).await?;
        if grant.principal != acting.id {
            self.require(acting, Action::AccessGrant, &resource(&grant)).await?;
        }
        let from = grant.status;
        if !matches!(from, GrantStatus::Pending | GrantStatus::Active) {
            return Err(IdentityError::Invalid(format!("access request `{id}` is {} already", from.as_str())));
        }
        let now = self.now();
        let revoked = GrantRecord {
            status: GrantStatus::Revoked,
            decided_by: Some(acting.id.to_string()),
            decided_at: Some(now),
            ..grant
        };
        let event = events::grant(EventKind::AccessRevoke, &acting.actor, now, &revoked);
        let stored = self
            .store
            .decide_grant(&revoked, from, &event)
            .await?
            .ok_or_else(|| IdentityError::Invalid(format!("access request `{id}` was decided meanwhile")))?;
        self.observer.appended();
        Ok(stored)
    }

    /// Grants visible to `acting`: its own, or everyone's for a holder of `access.grant`.
    pub async fn grants(&self, acting: &Acting) -> Result<Vec<GrantRecord>, IdentityError> {
        let everyone = Resource::AccessGrant { id: "*".to_owned(), requester_id: "*".to_owned(), role: "*".to_owned() };
        let all = self.decide(acting, Action::AccessGrant, &everyone).allowed;
        Ok(self.store.grants(if all { None } else { Some(&acting.id) }).await?)
    }
}
