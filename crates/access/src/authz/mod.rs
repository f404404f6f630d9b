//! Cedar authorization: who may do what to which artifact, and why a request was allowed or
//! denied.
//!
//! ```
//! use airlock_access::authz::{
//!     Action, AuthzConfig, AuthzContext, Authorizer, Principal, PrincipalKind, Resource,
//! };
//!
//! let authorizer = Authorizer::new(&AuthzConfig::defaults())?;
//! let alice = Principal { kind: PrincipalKind::User, id: "alice".into(), roles: vec!["deployer".into()] };
//! let context = AuthzContext {
//!     now: 1_780_272_000,
//!     source_ip: "192.0.2.7".into(),
//!     mfa_fresh: true,
//!     stage_frozen: false,
//!     incident_mode: false,
//!     origin: None,
//! };
//! let app = |stage: &str| Resource::Repository {
//!     stage: stage.into(),
//!     path: "team-42/app".into(),
//!     gated: stage != "dev",
//! };
//!
//! let decision = authorizer.authorize(&alice, Action::Pull, &app("prod"), &context);
//! assert!(decision.allowed);
//! assert_eq!(decision.reasons, ["role.deployer.0"]);
//!
//! // No role permits a deployer to push, and nobody pushes to a gated stage.
//! let decision = authorizer.authorize(&alice, Action::Push, &app("prod"), &context);
//! assert!(!decision.allowed);
//! assert_eq!(decision.reasons, ["airlock.gated-stage-read-only"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The model
//!
//! - **Schema** ([`SCHEMA_SOURCE`], `airlock.cedarschema`, namespace `Airlock`): principals
//!   `User` and `ServiceAccount`, both members of `Role`s; resources `Stage`, `Repository` (in
//!   its `Stage`), `Promotion`, `Waiver`, `TrustRoot`, `AccessGrant` and `Log`; the sixteen
//!   [`Action`]s, each acting on one resource type; one context record for every action
//!   ([`AuthzContext`]). Cedar has no union of entity types for an attribute, so a promotion's
//!   requester and pushers, and the requesters of waivers and access grants, are principal ids
//!   (`requester_id`, `pushers`) that policies compare with the principal's `id` attribute.
//! - **Roles** ([`RoleDefinition`], [`default_roles`]): each permission compiles to one
//!   `permit`, `role.<name>.<index>`, see [`compile_role`] for the rules.
//! - **Shipped policies** ([`SHIPPED_SOURCE`], [`SHIPPED_POLICY_IDS`]): `forbid`s that no role
//!   overrides: nobody writes to a gated stage, approves their own request or their own push,
//!   approves as a service account or without a fresh second factor, or promotes into a frozen
//!   stage.
//! - **Custom policies**: an operator's Cedar source, each policy with its own `@id`.
//!
//! [`Authorizer::new`] validates all three against the schema in strict mode, so a policy that
//! names an unknown attribute, action or type is refused before the server starts.
//!
//! # Decisions
//!
//! Deny by default: a request is allowed only if a `permit` applies, no `forbid` applies, and
//! nothing went wrong. Each request builds its own few entities (the principal with its roles as
//! parents, the resource and a repository's stage); there is no global entity store, so a
//! decision depends only on its arguments. Only the policies that can apply are evaluated: those
//! of the roles the principal holds and the shipped and custom ones, for the request's action. A request or entity that does not match the schema, or any evaluation
//! error, denies, with the error in [`AuthzDecision::errors`]. The reasons are the ids of the
//! determining policies: the `permit`s that allowed, or the `forbid`s that denied; none when
//! nothing permitted.
//!
//! # Separation of duties
//!
//! Static: pairs of roles nobody holds together ([`default_conflicts`]). A pair names two roles,
//! or one role and `*` ([`ANY_ROLE`]): any other role, roles defined later included, except
//! those a compatible pair exempts ([`default_compatible`]: an access admin may also audit). An
//! explicit pair always conflicts. They are checked when a role is granted
//! ([`Authorizer::check_grant`]), over bindings ([`Authorizer::check_held`]), and again at every
//! decision over the roles in force: a principal holding a conflicting pair, bound or just in
//! time, is denied whatever it asks ([`SOD_REASON`]).
//! Dynamic: the shipped policies above, checked at every decision.

mod action;
mod error;
mod index;
mod policies;
mod request;
mod roles;
mod schema;
mod sod;

use std::collections::{BTreeSet, HashMap};

use cedar_policy::{Decision, Policy, PolicyId, PolicySet, Schema};

pub use action::{Action, ResourceKind, UnknownAction};
pub use error::{AuthzError, RolePatternError, SodError};
pub use index::POLICY_CACHE_MAX;
pub use policies::{CUSTOM_ID_MAX_LEN, CUSTOM_POLICIES_MAX_BYTES, SHIPPED_POLICY_IDS, SHIPPED_SOURCE};
pub use request::{
    AuthzContext, LOG_ID, Origin, Principal, PrincipalKind, REQUEST_PUSHERS_MAX, REQUEST_ROLES_MAX, Resource,
    TRUST_ROOT_ID,
};
pub use roles::{
    PERMISSION_ENTRIES_MAX, Permission, ROLE_NAME_MAX_LEN, ROLE_PATTERN_MAX_LEN, ROLE_PERMISSIONS_MAX, ROLES_MAX,
    RoleDefinition, RolePolicy, compile_role, default_roles, is_role_name, roles_from_table,
};
pub use schema::SCHEMA_SOURCE;
pub use sod::{ANY_ROLE, COMPATIBLE_MAX, CONFLICTS_MAX, SOD_REASON, default_compatible, default_conflicts};

use crate::authz::index::PolicyIndex;
use crate::authz::policies::{OWNER_ROLE, OWNER_SHIPPED};
use crate::authz::schema::{Names, one_line};
use crate::authz::sod::Conflicts;

/// What an [`Authorizer`] enforces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthzConfig {
    /// The roles; see [`RoleDefinition`].
    pub roles: Vec<RoleDefinition>,
    /// Cedar source of custom policies, each starting with `@id("...")`. Ids starting with
    /// `airlock.` or `role.` are reserved.
    pub custom_policies: Option<String>,
    /// Pairs of roles nobody may hold together: two roles defined in `roles`, or one and
    /// [`ANY_ROLE`] (`*`, any other role, including roles defined later).
    pub conflicts: Vec<(String, String)>,
    /// Pairs of roles defined in `roles` that a `*` conflict does not keep apart. A pair of
    /// `conflicts` naming both still does.
    pub compatible: Vec<(String, String)>,
}

impl AuthzConfig {
    /// The default roles, conflicts and compatible pairs, and no custom policies.
    pub fn defaults() -> AuthzConfig {
        AuthzConfig {
            roles: default_roles(),
            custom_policies: None,
            conflicts: default_conflicts(),
            compatible: default_compatible(),
        }
    }
}

/// One decision: whether the request is allowed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzDecision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// The ids of the determining policies, sorted: the `permit`s that allowed, or the `forbid`s
    /// that denied. Empty when nothing permitted, and when an error turned an allow into a
    /// denial.
    pub reasons: Vec<String>,
    /// What went wrong building or evaluating the request, or which roles in force conflict;
    /// any error denies.
    pub errors: Vec<String>,
}

impl AuthzDecision {
    /// A denial for `error`.
    fn error(error: String) -> AuthzDecision {
        AuthzDecision { allowed: false, reasons: Vec::new(), errors: vec![error] }
    }
}

/// Decides requests against the compiled roles, the shipped policies and the custom policies.
/// Built once from configuration, then shared: [`Authorizer::authorize`] takes `&self` and
/// parses nothing.
#[derive(Debug)]
pub struct Authorizer {
    schema: Schema,
    names: Names,
    /// Every policy, as validated.
    policies: PolicySet,
    /// The same policies by role and action; each decision evaluates only those that can apply.
    index: PolicyIndex,
    conflicts: Conflicts,
    cedar: cedar_policy::Authorizer,
}

impl Authorizer {
    /// Compiles the roles, loads the shipped and custom policies and validates the whole set
    /// against the schema in strict mode; checks the conflicts and compatible pairs name defined
    /// roles.
    pub fn new(config: &AuthzConfig) -> Result<Authorizer, AuthzError> {
        let schema = schema::load_schema()?;
        let names = Names::new()?;
        let mut owners: HashMap<String, &'static str> = HashMap::new();
        let mut all: Vec<Policy> = Vec::new();
        let mut index = PolicyIndex::new();

        // 1. The shipped policies.
        for policy in policies::shipped()? {
            owners.insert(policy.id().to_string(), OWNER_SHIPPED);
            index.insert(&names, None, &policy).map_err(|message| AuthzError::PolicySet { message })?;
            all.push(policy);
        }

        // 2. The roles, one `permit` per permission.
        if config.roles.len() > ROLES_MAX {
            return Err(AuthzError::TooManyRoles { count: config.roles.len(), max: ROLES_MAX });
        }
        let mut role_names: BTreeSet<String> = BTreeSet::new();
        for role in &config.roles {
            let compiled = compile_role(role)?;
            if !role_names.insert(role.name.clone()) {
                return Err(AuthzError::DuplicateRole { role: role.name.clone() });
            }
            for policy in compiled {
                let parsed = Policy::parse(Some(PolicyId::new(policy.id())), policy.text()).map_err(|e| {
                    AuthzError::RolePolicy { id: policy.id().to_owned(), message: one_line(&e.to_string()) }
                })?;
                owners.insert(policy.id().to_owned(), OWNER_ROLE);
                index.insert(&names, Some(&role.name), &parsed).map_err(|message| AuthzError::PolicySet { message })?;
                all.push(parsed);
            }
        }

        // 3. The custom policies, whose ids may not collide with the others.
        if let Some(source) = &config.custom_policies {
            for policy in policies::custom(source, &mut owners)? {
                index.insert(&names, None, &policy).map_err(|message| AuthzError::PolicySet { message })?;
                all.push(policy);
            }
        }

        // 4. One set, validated in strict mode.
        let policies =
            PolicySet::from_policies(all).map_err(|e| AuthzError::PolicySet { message: one_line(&e.to_string()) })?;
        policies::validate(&schema, &policies, &owners)?;

        // 5. Separation of duties.
        let conflicts = Conflicts::new(role_names, &config.conflicts, &config.compatible)?;

        Ok(Authorizer { schema, names, policies, index, conflicts, cedar: cedar_policy::Authorizer::new() })
    }

    /// Decides whether `principal` may perform `action` on `resource` in `context`. Never
    /// panics; anything unexpected denies, with the error in [`AuthzDecision::errors`].
    ///
    /// A principal whose roles in force (its bindings and active just-in-time grants, as
    /// [`Principal::roles`] says) hold a conflicting pair is denied whatever it asks, with the
    /// reason [`SOD_REASON`] and the two roles in [`AuthzDecision::errors`]: a grant that joins
    /// duties, however it came about, is never used.
    pub fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        context: &AuthzContext,
    ) -> AuthzDecision {
        let (request, entities) =
            match request::to_cedar(&self.names, &self.schema, principal, action, resource, context) {
                Ok(built) => built,
                Err(error) => return AuthzDecision::error(error),
            };
        // The roles are bounded now (`to_cedar` refuses too many).
        if let Err(error) = self.conflicts.check_in_force(&principal.id, &principal.roles) {
            return AuthzDecision {
                allowed: false,
                reasons: vec![SOD_REASON.to_owned()],
                errors: vec![error.to_string()],
            };
        }
        let policies = match self.index.select(&principal.roles, action) {
            Ok(policies) => policies,
            Err(error) => return AuthzDecision::error(error),
        };
        let response = self.cedar.is_authorized(&request, &policies, &entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<String> = diagnostics.errors().map(|e| one_line(&e.to_string())).collect();
        let allowed = response.decision() == Decision::Allow && errors.is_empty();
        let mut reasons: Vec<String> = if allowed || response.decision() == Decision::Deny {
            diagnostics.reason().map(ToString::to_string).collect()
        } else {
            Vec::new()
        };
        reasons.sort();
        AuthzDecision { allowed, reasons, errors }
    }

    /// Refuses granting role `adding` to a principal holding `held` (its bindings and active
    /// just-in-time grants) if `adding` is not defined or conflicts with a held role.
    pub fn check_grant(&self, held: &[String], adding: &str) -> Result<(), SodError> {
        self.conflicts.check_grant(held, adding)
    }

    /// Refuses a set of held roles (a principal's bindings, with its active just-in-time grants)
    /// that names an undefined role or holds two conflicting roles.
    pub fn check_held(&self, held: &[String]) -> Result<(), SodError> {
        self.conflicts.check_held(held)
    }

    /// The ids of every policy enforced, sorted: shipped, role and custom.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.policies.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        ids
    }
}
