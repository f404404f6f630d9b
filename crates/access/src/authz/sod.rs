//! Static separation of duties: pairs of roles nobody may hold together, checked when a role is
//! granted. The dynamic rules (nobody approves their own request or their own push) are shipped
//! Cedar policies, see `shipped.cedar`.

use std::collections::BTreeSet;

use airlock_model::echo::echo;

use crate::authz::error::{AuthzError, SodError};

/// Most conflicting pairs one configuration lists.
pub const CONFLICTS_MAX: usize = 1024;

/// The pairs Airlock ships: whoever changes the trust root does not also approve releases, and
/// whoever grants access does not also deploy.
pub fn default_conflicts() -> Vec<(String, String)> {
    [("key-admin", "release-approver"), ("access-admin", "deployer")]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

/// The configured conflicts, checked against the defined roles.
#[derive(Debug, Clone)]
pub(crate) struct Conflicts {
    roles: BTreeSet<String>,
    pairs: Vec<(String, String)>,
}

impl Conflicts {
    /// Checks that every pair names two different defined roles.
    pub(crate) fn new(roles: BTreeSet<String>, pairs: &[(String, String)]) -> Result<Conflicts, AuthzError> {
        if pairs.len() > CONFLICTS_MAX {
            return Err(AuthzError::TooManyConflicts { count: pairs.len(), max: CONFLICTS_MAX });
        }
        for (a, b) in pairs {
            for role in [a, b] {
                if !roles.contains(role) {
                    return Err(AuthzError::ConflictUnknownRole { role: echo(role) });
                }
            }
            if a == b {
                return Err(AuthzError::ConflictWithItself { role: echo(a) });
            }
        }
        Ok(Conflicts { roles, pairs: pairs.to_vec() })
    }

    /// The role `role` conflicts with among `held`, if any.
    fn conflict<'a>(&self, role: &str, held: &'a [String]) -> Option<&'a String> {
        held.iter().find(|h| self.pairs.iter().any(|(a, b)| (a == role && *h == b) || (b == role && *h == a)))
    }

    /// See [`crate::authz::Authorizer::check_grant`].
    pub(crate) fn check_grant(&self, held: &[String], adding: &str) -> Result<(), SodError> {
        if !self.roles.contains(adding) {
            return Err(SodError::UnknownRole { role: echo(adding) });
        }
        match self.conflict(adding, held) {
            Some(other) => Err(SodError::Conflict { adding: adding.to_owned(), held: other.clone() }),
            None => Ok(()),
        }
    }

    /// See [`crate::authz::Authorizer::check_held`].
    pub(crate) fn check_held(&self, held: &[String]) -> Result<(), SodError> {
        for (i, role) in held.iter().enumerate() {
            if !self.roles.contains(role) {
                return Err(SodError::UnknownRole { role: echo(role) });
            }
            let rest = held.get(i.saturating_add(1)..).unwrap_or_default();
            if let Some(other) = self.conflict(role, rest) {
                return Err(SodError::HeldTogether { first: role.clone(), second: other.clone() });
            }
        }
        Ok(())
    }
}
