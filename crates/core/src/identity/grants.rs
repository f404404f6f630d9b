//! Changes that wait for approval: just-in-time grants (a role asked for a while by its holder)
//! and privileged changes an access admin asks for (binding, unbinding, disabling, resetting),
//! which take a second access admin.
//!
//! A change is privileged when it binds or grants a role that can approve, sign the trust root,
//! break glass or administer access (`access.privileged_roles`, plus any role whose permissions
//! include such an action), or takes power from an access admin (so one admin cannot drop the
//! instance back to a single admin). While the instance has fewer than two enabled access
//! admins (bootstrap), privileged changes take effect at once, logged with `bootstrap: true`,
//! and only from an admin who has enrolled a second factor.

use airlock_access::authz::{Action, Resource};
use airlock_model::{PrincipalId, Timestamp};
use serde_json::json;

use super::{Acting, Identity, IdentityError, enrollment, events};
use crate::audit::EventKind;
use crate::ports::{GrantKind, GrantRecord, GrantStatus, PrincipalChange, PrincipalRecord};

/// The Cedar resource of a grant: its requester is who asked.
fn resource(grant: &GrantRecord) -> Resource {
    Resource::AccessGrant {
        id: grant.id.clone(),
        requester_id: grant.requested_by.to_string(),
        role: grant.role.clone(),
    }
}

/// What a change asked for became.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// In force now.
    Done(PrincipalRecord),
    /// Waiting for a second access admin.
    Pending(GrantRecord),
}

/// An approved grant, and the enrollment token a user's reset issued or the API key a service
/// account's reset issued (shown once).
#[derive(Debug, Clone)]
pub struct Approved {
    pub grant: GrantRecord,
    pub enrollment: Option<(String, Timestamp)>,
    pub api_key: Option<(String, Timestamp)>,
}

impl Identity {
    async fn stored_grant(&self, id: &str) -> Result<GrantRecord, IdentityError> {
        self.store.grant(id).await?.ok_or_else(|| IdentityError::NotFound(format!("no access request `{id}`")))
    }

    /// Whether granting `role` is privileged: named in `access.privileged_roles`, or permitting
    /// an approval, a trust root signature or access administration.
    pub fn privileged(&self, role: &str) -> bool {
        const POWERS: [Action; 6] = [
            Action::PromoteApprove,
            Action::WaiverApprove,
            Action::TrustPropose,
            Action::TrustSign,
            Action::AccessGrant,
            Action::AccessApprove,
        ];
        self.config.privileged_roles.iter().any(|r| r == role) || self.permits(role, &POWERS)
    }

    /// Whether `role` administers access (permits `access.grant` or `access.approve`).
    fn administers(&self, role: &str) -> bool {
        self.permits(role, &[Action::AccessGrant, Action::AccessApprove])
    }

    /// The enabled principals bound to a role that administers access.
    pub async fn access_admins(&self) -> Result<Vec<PrincipalRecord>, IdentityError> {
        let all = self.store.principals().await?;
        Ok(all.into_iter().filter(|p| !p.disabled && p.roles.iter().any(|r| self.administers(r))).collect())
    }

    /// The enabled principals whose bound roles break separation of duties (bound before the
    /// conflicts were configured, say), each with why: every request of theirs is denied. One
    /// read, since `/readyz` asks on every probe; a just-in-time grant, checked against the roles
    /// in force when made and at every decision, ends within `access.jit_max_duration_secs`.
    pub async fn conflicted(&self) -> Result<Vec<String>, IdentityError> {
        let authorizer = self.authorizer();
        Ok(self
            .store
            .principals()
            .await?
            .into_iter()
            .filter(|p| !p.disabled)
            .filter_map(|p| authorizer.check_held(&p.roles).err().map(|e| format!("`{}`: {e}", p.id)))
            .collect())
    }

    /// Whether privileged changes take effect with one access admin: fewer than two exist.
    pub async fn single_admin(&self) -> Result<bool, IdentityError> {
        Ok(self.access_admins().await?.len() < 2)
    }

    /// Why a change of `kind` (of `role`) to `target` takes a second access admin, if it does.
    async fn needs_second(&self, kind: GrantKind, target: &PrincipalRecord, role: &str) -> bool {
        match kind {
            GrantKind::Bind | GrantKind::Jit => self.privileged(role),
            GrantKind::Unbind => self.administers(role),
            GrantKind::Disable => target.roles.iter().any(|r| self.administers(r)),
            // A user's reset issues an enrollment token; a service account's, a new API key,
            // which matters when the account holds a privileged role.
            GrantKind::Reset => {
                target.kind == airlock_model::PrincipalKind::User || target.roles.iter().any(|r| self.privileged(r))
            }
        }
    }

    /// Refuses a lone admin's privileged change unless it has enrolled a second factor.
    pub(super) async fn require_enrolled(&self, acting: &Acting) -> Result<(), IdentityError> {
        let enrolled = self.store.principal(&acting.id).await?.is_some_and(|p| p.totp_secret.is_some());
        if enrolled {
            return Ok(());
        }
        let reasons = vec![format!(
            "`{}` is the only access admin and has no second factor; enroll one with `POST /api/v1/auth/mfa` first",
            acting.id
        )];
        Err(self.refuse(acting, Action::AccessGrant, None, reasons).await?)
    }

    /// Asks for a change to `target` as an access admin (already allowed `access.grant` on it):
    /// applied now when it is not privileged or the instance has a single admin (then logged
    /// with `bootstrap: true`), pending a second access admin otherwise.
    pub(super) async fn ask(
        &self,
        acting: &Acting,
        kind: GrantKind,
        target: &PrincipalRecord,
        role: &str,
        reason: &str,
    ) -> Result<Outcome, IdentityError> {
        if kind == GrantKind::Bind {
            if target.kind == airlock_model::PrincipalKind::User && target.email.is_none() && self.needs_person(role) {
                return Err(super::principals::no_person(&target.id, role));
            }
            let (in_force, _) = self.in_force(target.clone()).await?;
            self.authorizer().check_grant(&in_force.roles, role).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        }
        let second = self.needs_second(kind, target, role).await;
        if second && !self.single_admin().await? {
            let now = self.now();
            let grant = GrantRecord {
                id: format!("g-{}", airlock_access::token::new_jti()),
                kind,
                principal: target.id.clone(),
                requested_by: acting.id.clone(),
                approved_by: None,
                role: role.to_owned(),
                reason: reason.to_owned(),
                duration_secs: 0,
                status: GrantStatus::Pending,
                requested_at: now,
                decided_by: None,
                decided_at: None,
                expires_at: None,
            };
            let event = events::grant(EventKind::AccessRequest, &acting.actor, now, &grant)
                .with_detail("kind", json!(kind.as_str()))
                .with_detail("reason", json!(reason));
            self.store.create_grant(&grant, &event).await?;
            self.observer.appended();
            return Ok(Outcome::Pending(grant));
        }
        if second {
            self.require_enrolled(acting).await?;
        }
        let change = match kind {
            GrantKind::Bind | GrantKind::Jit => PrincipalChange::GrantRole { role: role.to_owned() },
            GrantKind::Unbind => PrincipalChange::RevokeRole { role: role.to_owned() },
            GrantKind::Disable => PrincipalChange::Disable,
            GrantKind::Reset => {
                return Err(IdentityError::Invalid("a reset is asked for with `reset`".to_owned()));
            }
        };
        let record = self
            .apply_logged(&acting.actor, &target.id, change, second)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("no principal `{}`", target.id)))?;
        Ok(Outcome::Done(record))
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
        if acting.kind == airlock_model::PrincipalKind::User && self.needs_person(role) {
            let email = self.store.principal(&acting.id).await?.and_then(|p| p.email);
            if email.is_none() {
                return Err(super::principals::no_person(&acting.id, role));
            }
        }
        let now = self.now();
        let grant = GrantRecord {
            id: format!("g-{}", airlock_access::token::new_jti()),
            kind: GrantKind::Jit,
            principal: acting.id.clone(),
            requested_by: acting.id.clone(),
            approved_by: None,
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
            .with_detail("kind", json!(GrantKind::Jit.as_str()))
            .with_detail("duration_secs", json!(duration_secs))
            .with_detail("reason", json!(reason));
        self.store.create_grant(&grant, &event).await?;
        self.observer.appended();
        Ok(grant)
    }

    /// Approves a pending change: a principal holding `access.approve` (with a fresh second
    /// factor, per the shipped policies) who neither asked for it nor is its subject. A
    /// privileged just-in-time grant takes two such approvals (one, logged `bootstrap`, while
    /// the instance has a single admin); any other privileged change is asked for by one access
    /// admin and takes effect at a second one's approval.
    pub async fn approve_grant(&self, acting: &Acting, id: &str) -> Result<Approved, IdentityError> {
        self.writable()?;
        let grant = self.stored_grant(id).await?;
        self.require(acting, Action::AccessApprove, &resource(&grant)).await?;
        if grant.status != GrantStatus::Pending {
            return Err(IdentityError::Invalid(format!(
                "access request `{id}` is {}, not pending",
                grant.status.as_str()
            )));
        }
        let mut reasons = Vec::new();
        if grant.requested_by == acting.id {
            reasons.push(format!("`{}` asked for this change; a second access admin must approve it", acting.id));
        }
        if grant.principal == acting.id && grant.kind != GrantKind::Jit {
            reasons.push(format!("the change is to `{}`; another access admin must approve it", acting.id));
        }
        if grant.approved_by.as_deref() == Some(acting.id.as_str()) {
            reasons
                .push(format!("`{}` approved this change already; a second access admin must approve it", acting.id));
        }
        if !reasons.is_empty() {
            return Err(self.refuse(acting, Action::AccessApprove, Some(id), reasons).await?);
        }
        let holder = self
            .store
            .principal(&grant.principal)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("no principal `{}`", grant.principal)))?;
        // Duties may have changed since the request.
        if matches!(grant.kind, GrantKind::Jit | GrantKind::Bind) {
            let (holder, _) = self.in_force(holder.clone()).await?;
            self.authorizer()
                .check_grant(&holder.roles, &grant.role)
                .map_err(|e| IdentityError::Invalid(e.to_string()))?;
        }
        let single = self.single_admin().await?;
        let privileged = self.needs_second(grant.kind, &holder, &grant.role).await;
        let now = self.now();
        // A privileged just-in-time grant's first approval only records itself.
        if grant.kind == GrantKind::Jit && privileged && !single && grant.approved_by.is_none() {
            let first = GrantRecord { approved_by: Some(acting.id.to_string()), ..grant };
            let event = events::grant(EventKind::AccessApprove, &acting.actor, now, &first)
                .with_detail("first_of_two", json!(true));
            let stored =
                self.store.decide_grant(&first, GrantStatus::Pending, None, &event).await?.ok_or_else(|| {
                    IdentityError::Invalid(format!("access request `{id}` was decided meanwhile; look again"))
                })?;
            self.observer.appended();
            return Ok(Approved { grant: stored, enrollment: None, api_key: None });
        }
        let mut enrollment = None;
        let mut api_key = None;
        let change = match grant.kind {
            GrantKind::Jit => None,
            GrantKind::Bind => Some(PrincipalChange::GrantRole { role: grant.role.clone() }),
            GrantKind::Unbind => Some(PrincipalChange::RevokeRole { role: grant.role.clone() }),
            GrantKind::Disable => Some(PrincipalChange::Disable),
            GrantKind::Reset if holder.kind == airlock_model::PrincipalKind::ServiceAccount => {
                let (key, change) = self.new_key(self.config.api_key_max_days);
                if let PrincipalChange::SetApiKey { expires_at, .. } = &change {
                    api_key = Some((key, *expires_at));
                }
                Some(change)
            }
            GrantKind::Reset => {
                let (token, hash, expires) = enrollment::issue(&holder.id, now, self.config.enrollment_ttl_secs);
                enrollment = Some((token, expires));
                Some(PrincipalChange::SetEnrollment { hash, expires_at: expires })
            }
        };
        let expires_at =
            (grant.kind == GrantKind::Jit).then(|| now.plus_millis(grant.duration_secs.saturating_mul(1000)));
        let active = GrantRecord {
            status: GrantStatus::Active,
            decided_by: Some(acting.id.to_string()),
            decided_at: Some(now),
            expires_at,
            ..grant
        };
        let mut event = events::grant(EventKind::AccessApprove, &acting.actor, now, &active)
            .with_detail("kind", json!(active.kind.as_str()))
            .with_detail("expires_at", json!(active.expires_at.map(|t| t.to_rfc3339())));
        if let Some(first) = &active.approved_by {
            event = event.with_detail("first_approval", json!(first));
        }
        if privileged && single && active.kind == GrantKind::Jit {
            event = event.with_detail("bootstrap", json!(true));
        }
        let stored =
            self.store.decide_grant(&active, GrantStatus::Pending, change.as_ref(), &event).await?.ok_or_else(
                || IdentityError::Invalid(format!("access request `{id}` was decided meanwhile; look again")),
            )?;
        self.observer.appended();
        Ok(Approved { grant: stored, enrollment, api_key })
    }

    /// Revokes a grant early (its holder, or a principal holding `access.grant`); the holder's
    /// tokens die with the raised epoch.
    pub async fn revoke_grant(&self, acting: &Acting, id: &str) -> Result<GrantRecord, IdentityError> {
        self.writable()?;
        let grant = self.stored_grant(id).await?;
        if grant.principal != acting.id || grant.kind != GrantKind::Jit {
            self.require(acting, Action::AccessGrant, &resource(&grant)).await?;
        }
        let from = grant.status;
        let revocable = match grant.kind {
            GrantKind::Jit => matches!(from, GrantStatus::Pending | GrantStatus::Active),
            _ => from == GrantStatus::Pending,
        };
        if !revocable {
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
        let stored = self.store.decide_grant(&revoked, from, None, &event).await?.ok_or_else(|| {
            IdentityError::Invalid(format!("access request `{id}` was decided meanwhile; look again"))
        })?;
        self.observer.appended();
        Ok(stored)
    }

    /// Grants visible to `acting`: its own, or everyone's for a holder of `access.grant`.
    pub async fn grants(&self, acting: &Acting) -> Result<Vec<GrantRecord>, IdentityError> {
        let everyone = Resource::AccessGrant { id: "*".to_owned(), requester_id: "*".to_owned(), role: "*".to_owned() };
        let all = self.decide(acting, Action::AccessGrant, &everyone).allowed;
        Ok(self.store.grants(if all { None } else { Some(&acting.id) }).await?)
    }

    /// Asks for a reset of `id`'s credentials (a new enrollment; password and second factor
    /// cleared): pending a second access admin, whose approval returns the one-time token; at
    /// once while the instance has a single admin.
    pub async fn reset(
        &self,
        acting: &Acting,
        id: &PrincipalId,
        reason: &str,
    ) -> Result<(Outcome, Option<(String, Timestamp)>), IdentityError> {
        self.writable()?;
        self.require_manage(acting, id.as_str(), "*").await?;
        let target =
            self.store.principal(id).await?.ok_or_else(|| IdentityError::NotFound(format!("no principal `{id}`")))?;
        if target.kind != airlock_model::PrincipalKind::User {
            return Err(IdentityError::Invalid(format!("`{id}` is a service account; rotate its api key instead")));
        }
        if !self.single_admin().await? {
            return Ok((self.ask(acting, GrantKind::Reset, &target, "", reason).await?, None));
        }
        self.require_enrolled(acting).await?;
        let (token, hash, expires) = enrollment::issue(id, self.now(), self.config.enrollment_ttl_secs);
        let change = PrincipalChange::SetEnrollment { hash, expires_at: expires };
        let record = self
            .apply_logged(&acting.actor, id, change, true)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("no principal `{id}`")))?;
        Ok((Outcome::Done(record), Some((token, expires))))
    }
}
