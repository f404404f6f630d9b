//! Which policies can apply to a request, found from their scopes without evaluating any, so a
//! decision evaluates a dozen policies rather than every role's.
//!
//! Cedar evaluates every policy of the set it is given, and a policy costs about 1.5 µs to
//! evaluate even when its scope does not match; with 100 roles that is several hundred µs per
//! decision. Two facts make most policies irrelevant to a request before evaluation:
//!
//! - **Roles.** A role policy's principal scope is `principal in Airlock::Role::"<role>"`
//!   (`roles.rs` writes it so). Roles have no parents, principals are users or service accounts
//!   whose only parents are the roles they hold, so the scope matches only a principal holding
//!   `<role>`.
//! - **Actions.** A policy whose action scope neither is nor lists the request's action does not
//!   apply. That `action in [...]` means "one of" relies on the schema declaring no action
//!   groups (a test in `schema.rs` keeps it so); with groups, the index would have to follow them.
//!
//! So a request is decided over its action's shipped and custom policies plus its action's
//! policies of the roles the principal holds: the same decision as over the whole set. The set
//! for one (action, roles) pair is built once and kept in a bounded cache, since a site has far
//! fewer distinct role combinations than requests.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::{ActionConstraint, Policy, PolicySet};

use crate::authz::action::Action;
use crate::authz::schema::{Names, one_line};

/// Most (action, role combination) policy sets kept; when full, an arbitrary one is evicted.
pub const POLICY_CACHE_MAX: usize = 4096;

/// A role, numbered in the order roles were indexed.
type RoleNumber = usize;

/// A cached policy set's key: the action's index and the sorted numbers of the roles that matter.
type CacheKey = (usize, Vec<RoleNumber>);

/// The policies per action: those of no role, and those of each role.
#[derive(Debug)]
pub(crate) struct PolicyIndex {
    /// Per action (in [`Action::ALL`] order), the shipped and custom policies that name it.
    common: Vec<Vec<Policy>>,
    /// Each role's number.
    numbers: HashMap<String, RoleNumber>,
    /// Per role number, per action, the role's policies that name it.
    roles: Vec<Vec<Vec<Policy>>>,
    /// Policy sets already built, by action and the sorted numbers of the roles that matter.
    cache: RwLock<HashMap<CacheKey, Arc<PolicySet>>>,
}

impl PolicyIndex {
    /// An empty index.
    pub(crate) fn new() -> PolicyIndex {
        PolicyIndex {
            common: vec![Vec::new(); Action::ALL.len()],
            numbers: HashMap::new(),
            roles: Vec::new(),
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Files `policy` under each action its scope names; under `role` if it is a role's.
    pub(crate) fn insert(&mut self, names: &Names, role: Option<&str>, policy: &Policy) -> Result<(), String> {
        let per_action = match role {
            None => &mut self.common,
            Some(role) => {
                let number = match self.numbers.get(role) {
                    Some(&number) => number,
                    None => {
                        let number = self.roles.len();
                        self.numbers.insert(role.to_owned(), number);
                        self.roles.push(vec![Vec::new(); Action::ALL.len()]);
                        number
                    }
                };
                self.roles.get_mut(number).ok_or_else(|| format!("role `{role}` is not numbered"))?
            }
        };
        let constraint = policy.action_constraint();
        for (action, policies) in Action::ALL.into_iter().zip(per_action.iter_mut()) {
            let applies = match (&constraint, names.action(action)) {
                (ActionConstraint::Any, _) | (_, None) => true,
                (ActionConstraint::Eq(uid), Some(action)) => uid == action,
                (ActionConstraint::In(uids), Some(action)) => uids.contains(action),
            };
            if applies {
                policies.push(policy.clone());
            }
        }
        Ok(())
    }

    /// The policies that can apply to `action` by a principal holding `roles`. Unknown roles,
    /// roles without policies for `action`, and repeated roles add nothing.
    pub(crate) fn select(&self, roles: &[String], action: Action) -> Result<Arc<PolicySet>, String> {
        let index = action.index();
        let mut numbers: Vec<RoleNumber> = roles
            .iter()
            .filter_map(|role| self.numbers.get(role).copied())
            .filter(|&n| self.role_policies(n, index).is_some_and(|p| !p.is_empty()))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        let key: CacheKey = (index, numbers);
        // A poisoned lock only means another thread panicked while holding it; the map is still
        // a valid cache, so use it.
        if let Some(set) = self.cache.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(Arc::clone(set));
        }
        let mut set = PolicySet::new();
        let policies = self
            .common
            .get(index)
            .into_iter()
            .flatten()
            .chain(key.1.iter().filter_map(|&n| self.role_policies(n, index)).flatten());
        for policy in policies {
            set.add(policy.clone()).map_err(|e| format!("policy set is invalid: {}", one_line(&e.to_string())))?;
        }
        let set = Arc::new(set);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        // When full, evict one arbitrary entry: emptying the whole cache at once would make one
        // request pay for dropping thousands of sets.
        if cache.len() >= POLICY_CACHE_MAX
            && let Some(evicted) = cache.keys().next().cloned()
        {
            cache.remove(&evicted);
        }
        cache.insert(key, Arc::clone(&set));
        Ok(set)
    }

    /// Role `number`'s policies for the action at `index`.
    fn role_policies(&self, number: RoleNumber, index: usize) -> Option<&Vec<Policy>> {
        self.roles.get(number).and_then(|per_action| per_action.get(index))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use cedar_policy::PolicyId;

    use super::*;
    use crate::authz::roles::{Permission, RoleDefinition, compile_role};

    /// An index of `count` roles `r0`, `r1`, ..., each with one `pull` and one `freeze`
    /// permission, and one common policy for every action.
    fn index(count: usize) -> PolicyIndex {
        let names = Names::new().unwrap();
        let mut index = PolicyIndex::new();
        let common =
            Policy::parse(Some(PolicyId::new("common")), "forbid (principal, action, resource) when { false };");
        index.insert(&names, None, &common.unwrap()).unwrap();
        for i in 0..count {
            let role = RoleDefinition {
                name: format!("r{i}"),
                description: String::new(),
                permissions: vec![
                    Permission {
                        actions: vec![Action::Pull],
                        stages: vec!["*".into()],
                        repositories: vec!["**".into()],
                    },
                    Permission { actions: vec![Action::Freeze], stages: vec!["*".into()], repositories: vec![] },
                ],
            };
            for policy in compile_role(&role).unwrap() {
                let parsed = Policy::parse(Some(PolicyId::new(policy.id())), policy.text()).unwrap();
                index.insert(&names, Some(&role.name), &parsed).unwrap();
            }
        }
        index
    }

    fn ids(set: &PolicySet) -> Vec<String> {
        let mut ids: Vec<String> = set.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn selects_the_common_policies_and_the_held_roles_for_the_action() {
        let index = index(3);
        let roles = |names: &[&str]| names.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
        let pull = index.select(&roles(&["r2", "r0", "ghost", "r2"]), Action::Pull).unwrap();
        assert_eq!(ids(&pull), ["common", "role.r0.0", "role.r2.0"]);
        let freeze = index.select(&roles(&["r1"]), Action::Freeze).unwrap();
        assert_eq!(ids(&freeze), ["common", "role.r1.1"]);
        let audit = index.select(&roles(&["r0", "r1", "r2"]), Action::AuditRead).unwrap();
        assert_eq!(ids(&audit), ["common"]);
        // The same roles in another order, or with roles irrelevant to the action, share a set.
        let again = index.select(&roles(&["r0", "r2"]), Action::Pull).unwrap();
        assert!(Arc::ptr_eq(&pull, &again));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let index = index(13);
        for combination in 0..POLICY_CACHE_MAX + 100 {
            let roles: Vec<String> =
                (0..13).filter(|bit| combination >> bit & 1 == 1).map(|bit| format!("r{bit}")).collect();
            let set = index.select(&roles, Action::Pull).unwrap();
            assert_eq!(set.policies().count(), roles.len() + 1);
        }
        assert_eq!(index.cache.read().unwrap().len(), POLICY_CACHE_MAX);
    }
}
