//! Who may act: principals (users and service accounts), their role bindings, the roles in
//! force (configured and defined through the API), just-in-time grants and separation of
//! duties, each change with its audit event in the same transaction, over
//! [`crate::ports::IdentityStore`].
//!
//! The server turns a request into an [`Acting`] principal (credentials, tokens, the request's
//! context); everything that principal may then do to identity is decided here, with Cedar
//! ([`airlock_access::authz`]) for the permissions and the rules of this module beside it.

mod enrollment;
mod error;
mod events;
mod grants;
pub mod person;
mod principals;
mod roles;

use std::sync::{Arc, PoisonError, RwLock};

use airlock_access::authz::{Action, Authorizer, AuthzContext, AuthzDecision, Principal, Resource, RoleDefinition};
use airlock_model::{PrincipalId, PrincipalKind, Timestamp};

use crate::audit::{Actor, Event};
use crate::ports::{Clock, LogObserver, MetadataStore, PrincipalRecord};

pub use enrollment::{ENROLLMENT_PREFIX, hash as enrollment_token_hash, subject as enrollment_subject};
pub use error::IdentityError;
pub use events::denied as denied_event;
pub use grants::{Approved, Outcome};
pub use principals::{API_KEY_PREFIX, Created, api_key_hash};

/// What identity is configured with.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The configured roles (the API may define more).
    pub roles: Vec<RoleDefinition>,
    /// The operator's Cedar policies, if any.
    pub custom_policies: Option<String>,
    /// Role pairs nobody holds together (`*` is any other role).
    pub conflicts: Vec<(String, String)>,
    /// Pairs exempt from a `*` conflict.
    pub compatible: Vec<(String, String)>,
    /// Longest life of an API key, in days.
    pub api_key_max_days: u64,
    /// Longest just-in-time elevation, in seconds.
    pub jit_max_duration_secs: u64,
    /// Roles whose grant takes a second access admin, beside those whose permissions approve,
    /// sign the trust root or administer access.
    pub privileged_roles: Vec<String>,
    /// How long an enrollment token works, in seconds.
    pub enrollment_ttl_secs: u64,
}

/// The principal acting on a request, as the server authenticated it.
#[derive(Debug, Clone)]
pub struct Acting {
    pub id: PrincipalId,
    pub kind: PrincipalKind,
    /// Roles in force now: bindings plus active just-in-time grants, sorted.
    pub roles: Vec<String>,
    /// Who the log names, and under which request.
    pub actor: Actor,
    /// The request's context for Cedar (time, address, second factor, origin).
    pub context: AuthzContext,
}

impl Acting {
    fn principal(&self) -> Principal {
        Principal { kind: self.kind, id: self.id.to_string(), roles: self.roles.clone() }
    }
}

/// Principals, roles and grants.
#[derive(Clone)]
pub struct Identity {
    store: Arc<dyn MetadataStore>,
    observer: Arc<dyn LogObserver>,
    clock: Arc<dyn Clock>,
    /// Why writes are refused (the log failed its start-up check), if they are: no change then,
    /// and refusals are not logged.
    refused: Option<String>,
    config: Arc<IdentityConfig>,
    /// The roles and policies in force; replaced whole when a role is defined.
    roles: Arc<RwLock<roles::InForce>>,
    /// Identical refusals are logged once a window and counted ([`crate::refusals`]).
    refusals: Arc<crate::refusals::Refusals>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("refused", &self.refused).finish_non_exhaustive()
    }
}

impl Identity {
    /// Compiles the configured roles and policies; an invalid configuration is refused.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        observer: Arc<dyn LogObserver>,
        clock: Arc<dyn Clock>,
        refused: Option<String>,
        config: IdentityConfig,
    ) -> Result<Identity, IdentityError> {
        let in_force = roles::InForce::compile(config.roles.clone(), &config)?;
        Ok(Identity {
            store,
            observer,
            clock,
            refused,
            config: Arc::new(config),
            roles: Arc::new(RwLock::new(in_force)),
            refusals: Arc::default(),
        })
    }

    /// The same identity, counting its refusals in `refusals` (shared with the registry's).
    #[must_use]
    pub fn with_refusals(mut self, refusals: Arc<crate::refusals::Refusals>) -> Identity {
        self.refusals = refusals;
        self
    }

    /// Now, from the clock identity reads.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Every principal, by name.
    pub async fn principals(&self) -> Result<Vec<PrincipalRecord>, IdentityError> {
        Ok(self.store.principals().await?)
    }

    /// The stored principal, if any.
    pub async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, IdentityError> {
        Ok(self.store.principal(id).await?)
    }

    /// The roles in force: the configured ones and those defined through the API.
    pub fn roles(&self) -> Vec<RoleDefinition> {
        self.roles.read().unwrap_or_else(PoisonError::into_inner).roles.clone()
    }

    /// The authorizer in force.
    pub fn authorizer(&self) -> Arc<Authorizer> {
        self.roles.read().unwrap_or_else(PoisonError::into_inner).authorizer.clone()
    }

    /// Decides `action` on `resource` for `acting`, without logging.
    pub fn decide(&self, acting: &Acting, action: Action, resource: &Resource) -> AuthzDecision {
        self.authorizer().authorize(&acting.principal(), action, resource, &acting.context)
    }

    /// Refuses, and logs, what Cedar does not allow `acting`.
    pub async fn require(&self, acting: &Acting, action: Action, resource: &Resource) -> Result<(), IdentityError> {
        let decision = self.decide(acting, action, resource);
        if decision.allowed {
            return Ok(());
        }
        let mut reasons = decision.reasons;
        reasons.extend(decision.errors);
        if reasons.is_empty() {
            reasons.push(format!("no policy permits `{}`", action.as_str()));
        }
        Err(self.refuse(acting, action, None, reasons).await?)
    }

    /// Logs that `acting` was refused `action` (on `resource`, when it names one) for
    /// `reasons`, and returns the refusal to answer with.
    pub async fn refuse(
        &self,
        acting: &Acting,
        action: Action,
        resource: Option<&str>,
        reasons: Vec<String>,
    ) -> Result<IdentityError, IdentityError> {
        let message = format!("`{}` may not `{}` here ({})", acting.id, action.as_str(), reasons.join("; "));
        let event = denied_event(&acting.actor, self.now(), acting.id.as_str(), action.as_str(), resource, reasons);
        self.log(&[event]).await?;
        Ok(IdentityError::Denied(message))
    }

    /// The stored principal, and whether it holds an active just-in-time grant, read at one
    /// instant (for [`Identity::in_force_granted`]).
    pub async fn principal_granted(&self, id: &PrincipalId) -> Result<Option<(PrincipalRecord, bool)>, IdentityError> {
        Ok(self.store.principal_granted(id).await?)
    }

    /// [`Identity::in_force`] for a record read with [`Identity::principal_granted`]: a
    /// principal without an active grant has no role to add (its roles come sorted from the
    /// store), and its grants are not read.
    pub async fn in_force_granted(
        &self,
        record: PrincipalRecord,
        granted: bool,
    ) -> Result<(PrincipalRecord, Option<Timestamp>), IdentityError> {
        if granted { self.in_force(record).await } else { Ok((record, None)) }
    }

    /// `record` with the roles of its grants in force now added (sorted), and when the first of
    /// those grants ends.
    pub async fn in_force(
        &self,
        mut record: PrincipalRecord,
    ) -> Result<(PrincipalRecord, Option<Timestamp>), IdentityError> {
        let now = self.now();
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

    /// Logs `events` (refusals), unless writes are refused: each opens its window of identical
    /// refusals, or is only counted in the one open ([`crate::refusals`]).
    pub async fn log(&self, events: &[Event]) -> Result<(), IdentityError> {
        if self.refused.is_none() {
            let events: Vec<Event> = events.iter().flat_map(|e| self.refusals.admit(e)).collect();
            if !events.is_empty() {
                self.store.append_events(&events).await?;
                self.observer.appended();
            }
        }
        Ok(())
    }

    fn writable(&self) -> Result<(), IdentityError> {
        match &self.refused {
            Some(reason) => Err(IdentityError::Unavailable(reason.clone())),
            None => Ok(()),
        }
    }
}
