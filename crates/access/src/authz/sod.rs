//! Static separation of duties: pairs of roles nobody may hold together, checked when a role is
//! granted and again over the roles in force at every decision. The dynamic rules (nobody
//! approves their own request or their own push) are shipped Cedar policies, see `shipped.cedar`.
//!
//! A conflict names two roles, or a role and [`ANY_ROLE`] (`*`): any other role, including
//! roles defined later. A compatible pair exempts two roles from a `*` match only; a pair that
//! names both explicitly always conflicts.

use std::collections::{BTreeMap, BTreeSet};

use airlock_model::echo::echo;

use crate::authz::error::{AuthzError, SodError};

/// Most conflicting pairs one configuration lists.
pub const CONFLICTS_MAX: usize = 1024;
/// Most compatible pairs one configuration lists.
pub const COMPATIBLE_MAX: usize = 1024;
/// In a conflicting pair, any role other than the pair's other role.
pub const ANY_ROLE: &str = "*";
/// The reason a decision names when the principal's roles in force conflict.
pub const SOD_REASON: &str = "airlock.separation-of-duties";

/// The pairs Airlock ships: the people who approve promotion are not those who manage
/// credentials or deploy; whoever grants access holds no other role but `auditor` (see
/// [`default_compatible`]); whoever changes the trust root does not deploy.
pub fn default_conflicts() -> Vec<(String, String)> {
    pairs(&[
        ("release-approver", "access-admin"),
        ("release-approver", "key-admin"),
        ("release-approver", "deployer"),
        ("access-admin", ANY_ROLE),
        ("key-admin", "deployer"),
    ])
}

/// The pairs Airlock exempts from a `*` conflict: an access admin may also audit.
pub fn default_compatible() -> Vec<(String, String)> {
    pairs(&[("access-admin", "auditor")])
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

/// Each role's partners in a set of unordered pairs, both ways.
type Partners = BTreeMap<String, BTreeSet<String>>;

fn insert(partners: &mut Partners, a: &str, b: &str) {
    partners.entry(a.to_owned()).or_default().insert(b.to_owned());
    partners.entry(b.to_owned()).or_default().insert(a.to_owned());
}

fn paired(partners: &Partners, a: &str, b: &str) -> bool {
    partners.get(a).is_some_and(|set| set.contains(b))
}

/// The configured conflicts, checked against the defined roles.
#[derive(Debug, Clone)]
pub(crate) struct Conflicts {
    roles: BTreeSet<String>,
    /// The pairs naming two roles.
    explicit: Partners,
    /// The roles paired with `*`: they conflict with every other role not compatible with them.
    with_any: BTreeSet<String>,
    compatible: Partners,
}

impl Conflicts {
    /// Checks that every conflicting pair names two different defined roles, or one defined
    /// role and `*`, and that every compatible pair names two different defined roles.
    pub(crate) fn new(
        roles: BTreeSet<String>,
        conflicts: &[(String, String)],
        compatible: &[(String, String)],
    ) -> Result<Conflicts, AuthzError> {
        if conflicts.len() > CONFLICTS_MAX {
            return Err(AuthzError::TooManyConflicts { count: conflicts.len(), max: CONFLICTS_MAX });
        }
        if compatible.len() > COMPATIBLE_MAX {
            return Err(AuthzError::TooManyCompatible { count: compatible.len(), max: COMPATIBLE_MAX });
        }
        let (mut explicit, mut with_any) = (Partners::new(), BTreeSet::new());
        for (a, b) in conflicts {
            if a == ANY_ROLE && b == ANY_ROLE {
                return Err(AuthzError::ConflictAnyWithAny);
            }
            for role in [a, b] {
                if role != ANY_ROLE && !roles.contains(role) {
                    return Err(AuthzError::ConflictUnknownRole { role: echo(role) });
                }
            }
            if a == b {
                return Err(AuthzError::ConflictWithItself { role: echo(a) });
            }
            match (a.as_str(), b.as_str()) {
                (ANY_ROLE, role) | (role, ANY_ROLE) => {
                    with_any.insert(role.to_owned());
                }
                _ => insert(&mut explicit, a, b),
            }
        }
        let mut exempt = Partners::new();
        for (a, b) in compatible {
            for role in [a, b] {
                if role == ANY_ROLE {
                    return Err(AuthzError::CompatibleAnyRole);
                }
                if !roles.contains(role) {
                    return Err(AuthzError::CompatibleUnknownRole { role: echo(role) });
                }
            }
            if a == b {
                return Err(AuthzError::CompatibleWithItself { role: echo(a) });
            }
            insert(&mut exempt, a, b);
        }
        Ok(Conflicts { roles, explicit, with_any, compatible: exempt })
    }

    /// Whether holding `a` and `b` together breaks separation of duties: a pair names both, or
    /// one is paired with `*` and the two are not compatible. A role never conflicts with
    /// itself.
    fn conflicts(&self, a: &str, b: &str) -> bool {
        if a == b {
            return false;
        }
        paired(&self.explicit, a, b)
            || ((self.with_any.contains(a) || self.with_any.contains(b)) && !paired(&self.compatible, a, b))
    }

    /// The role `role` conflicts with among `held`, if any.
    fn conflict<'a>(&self, role: &str, held: &'a [String]) -> Option<&'a String> {
        held.iter().find(|h| self.conflicts(role, h))
    }

    /// The first two of `held` that conflict, in the order held. Undefined roles count: `*`
    /// matches them too.
    fn first_conflict<'a>(&self, held: &'a [String]) -> Option<(&'a String, &'a String)> {
        held.iter().enumerate().find_map(|(i, role)| {
            let rest = held.get(i.saturating_add(1)..).unwrap_or_default();
            self.conflict(role, rest).map(|other| (role, other))
        })
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
        if let Some(role) = held.iter().find(|r| !self.roles.contains(*r)) {
            return Err(SodError::UnknownRole { role: echo(role) });
        }
        match self.first_conflict(held) {
            Some((first, second)) => Err(SodError::HeldTogether { first: first.clone(), second: second.clone() }),
            None => Ok(()),
        }
    }

    /// Refuses the roles in force of principal `principal` when two of them conflict; see
    /// [`crate::authz::Authorizer::authorize`].
    pub(crate) fn check_in_force(&self, principal: &str, held: &[String]) -> Result<(), SodError> {
        match self.first_conflict(held) {
            Some((first, second)) => {
                Err(SodError::InForce { principal: echo(principal), first: echo(first), second: echo(second) })
            }
            None => Ok(()),
        }
    }
}
