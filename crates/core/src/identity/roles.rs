//! The roles in force: the configured ones and those defined through the API, compiled with the
//! policies beside them into one authorizer.

use std::sync::{Arc, PoisonError};

use airlock_access::authz::{Action, Authorizer, AuthzConfig, Resource, RoleDefinition};
use serde_json::json;

use super::{Acting, Identity, IdentityConfig, IdentityError};
use crate::audit::{Event, EventKind, Subject};

/// The roles in force and the authorizer compiled from them.
#[derive(Debug)]
pub(super) struct InForce {
    pub(super) authorizer: Arc<Authorizer>,
    pub(super) roles: Vec<RoleDefinition>,
}

impl InForce {
    /// Compiles `roles` with the configured policies and conflicts.
    pub(super) fn compile(roles: Vec<RoleDefinition>, config: &IdentityConfig) -> Result<InForce, IdentityError> {
        let authorizer = Authorizer::new(&AuthzConfig {
            roles: roles.clone(),
            custom_policies: config.custom_policies.clone(),
            conflicts: config.conflicts.clone(),
            compatible: config.compatible.clone(),
        })
        .map_err(|e| IdentityError::Invalid(e.to_string()))?;
        Ok(InForce { authorizer: Arc::new(authorizer), roles })
    }
}

impl Identity {
    /// Whether role `role` (in force) permits any of `actions`, in any stage or repository.
    pub(super) fn permits(&self, role: &str, actions: &[Action]) -> bool {
        let in_force = self.roles.read().unwrap_or_else(PoisonError::into_inner);
        in_force
            .roles
            .iter()
            .filter(|r| r.name == role)
            .any(|r| r.permissions.iter().any(|p| p.actions.iter().any(|a| actions.contains(a))))
    }

    /// Adds the roles defined through the API that are not in force yet: all of them at start,
    /// and later those another server over the store defined. A role is defined once and never
    /// changes, so one in force by name is the stored one.
    pub async fn load_defined_roles(&self) -> Result<(), IdentityError> {
        let stored = self.store.defined_roles().await?;
        let mut defined = Vec::with_capacity(stored.len());
        let in_force: std::collections::HashSet<String> =
            self.roles.read().unwrap_or_else(PoisonError::into_inner).roles.iter().map(|r| r.name.clone()).collect();
        for (name, json) in stored.into_iter().filter(|(name, _)| !in_force.contains(name)) {
            let role: RoleDefinition = serde_json::from_str(&json).map_err(|e| {
                IdentityError::Invalid(format!(
                    "stored role `{name}` does not read: {e}; restore the database from backup"
                ))
            })?;
            defined.push((name, reread_repositories(role)));
        }
        let roles: Vec<RoleDefinition> = defined.iter().map(|(_, role)| role.clone()).collect();
        if roles.is_empty() || self.install(roles, true).is_ok() {
            return Ok(());
        }
        // Some stored role the grammar now refuses: it grants nothing (fail closed) but does not
        // stop the server; the operator is told, and the other roles stay in force. Each role is
        // compiled alone only on this path, so a start with valid roles compiles them once.
        let mut valid = Vec::with_capacity(defined.len());
        for (name, role) in defined {
            match self.install(vec![role.clone()], false) {
                Ok(()) => valid.push(role),
                Err(e) => tracing::warn!(
                    role = %name,
                    "stored role `{name}` is left out and grants nothing: {e}; define a role with the new spelling and bind it instead"
                ),
            }
        }
        if valid.is_empty() {
            return Ok(());
        }
        self.install(valid, true)
    }

    /// Compiles the roles in force plus `added` and, if they validate, puts them in force when
    /// `apply` (only checks otherwise).
    fn install(&self, added: Vec<RoleDefinition>, apply: bool) -> Result<(), IdentityError> {
        let mut in_force = self.roles.write().unwrap_or_else(PoisonError::into_inner);
        let mut roles = in_force.roles.clone();
        for role in added {
            if roles.iter().any(|r| r.name == role.name) {
                return Err(IdentityError::Invalid(format!(
                    "role `{}` exists already; choose another name",
                    role.name
                )));
            }
            roles.push(role);
        }
        let compiled = InForce::compile(roles, &self.config)?;
        if apply {
            *in_force = compiled;
        }
        Ok(())
    }

    /// Defines a role from its JSON (`{"name","description","permissions"}`): needs
    /// `access.grant`; the role must be new and compile to valid Cedar. Logged.
    pub async fn define_role(
        &self,
        acting: &Acting,
        definition: serde_json::Value,
    ) -> Result<RoleDefinition, IdentityError> {
        self.writable()?;
        let role: RoleDefinition = serde_json::from_value(definition.clone())
            .map_err(|e| IdentityError::Invalid(format!("role definition is invalid: {e}")))?;
        let resource = Resource::AccessGrant {
            id: format!("role/{}", role.name),
            requester_id: "*".to_owned(),
            role: role.name.clone(),
        };
        self.require(acting, Action::AccessGrant, &resource).await?;
        // Validate by compiling with every role in force, before anything is stored.
        self.install(vec![role.clone()], false)?;
        let text = definition.to_string();
        let event = Event::allowed(EventKind::RoleDefine, &acting.actor, self.now(), Subject::default())
            .with_detail("role", json!(role.name))
            .with_detail("definition", definition);
        if !self.store.define_role(&role.name, &text, &event).await? {
            return Err(IdentityError::Invalid(format!("role `{}` exists already; choose another name", role.name)));
        }
        self.observer.appended();
        self.install(vec![role.clone()], true)?;
        Ok(role)
    }
}

/// A role stored before repository patterns had one grammar, read as it was meant then: its
/// patterns were Cedar `like` patterns, where `*` also matched `/`, so a whole last segment `*`
/// is the new `**`. Any other `*` cannot be reread faithfully and is left to be refused.
fn reread_repositories(mut role: RoleDefinition) -> RoleDefinition {
    for permission in &mut role.permissions {
        for pattern in &mut permission.repositories {
            if pattern == "*" {
                "**".clone_into(pattern);
            } else if let Some(prefix) = pattern.strip_suffix("/*")
                && !prefix.contains('*')
            {
                *pattern = format!("{prefix}/**");
            }
        }
    }
    role
}
