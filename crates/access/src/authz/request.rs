//! What one authorization request is about (the principal, the resource, the context) and its
//! translation into a Cedar request and the few entities it needs, built fresh per request.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Context, Entities, Entity, EntityUid, Request, RestrictedExpression, Schema};

use crate::authz::action::{Action, ResourceKind};
use crate::authz::schema::{Names, one_line};

/// Most roles one principal may hold in one request; a request with more is denied.
pub const REQUEST_ROLES_MAX: usize = 256;
/// Most pushers one promotion may list in one request; a request with more is denied.
pub const REQUEST_PUSHERS_MAX: usize = 1024;
/// The entity id of the one trust root.
pub const TRUST_ROOT_ID: &str = "root";
/// The entity id of the one audit log.
pub const LOG_ID: &str = "log";

/// Whether a principal is a person or a machine: the one kind the whole of Airlock uses.
pub use airlock_model::PrincipalKind;

/// Who asks.
///
/// Requesters and pushers are named by id alone (see [`Resource::Promotion`]), so a user and a
/// service account with the same id count as the same party for separation of duties: that
/// errs toward refusing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A person or a machine.
    pub kind: PrincipalKind,
    /// The principal's id, unique within its kind.
    pub id: String,
    /// The roles held now: static bindings plus the just-in-time grants active at the request's
    /// `now`, both computed by the caller. Unknown role names grant nothing (but a `*`
    /// conflict counts them). Two conflicting roles among them deny every request.
    pub roles: Vec<String>,
}

/// What the principal asks to act on. Each [`Action`] acts on one kind of resource
/// ([`Action::resource_kind`]); a request pairing an action with another kind is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A stage, for `freeze`.
    Stage {
        /// `prod`.
        name: String,
        /// Whether only the promotion engine writes to the stage.
        gated: bool,
    },
    /// A repository in a stage, for `pull`, `push`, `delete` and `rollback`.
    Repository {
        /// `prod`.
        stage: String,
        /// The path after the stage, `team-42/app`.
        path: String,
        /// Whether the repository's stage is gated.
        gated: bool,
    },
    /// A promotion request, for `promote.*`.
    Promotion {
        /// The promotion's id.
        id: String,
        /// The repository path after the stage, `team-42/app`.
        repository: String,
        /// The target stage, `prod`.
        stage: String,
        /// Who requested it.
        requester_id: String,
        /// Who pushed the artifact.
        pushers: Vec<String>,
    },
    /// A waiver request, for `waiver.*`.
    Waiver {
        /// The waiver's id.
        id: String,
        /// The repository path after the stage, `team-42/app`.
        repository: String,
        /// Who requested it.
        requester_id: String,
    },
    /// The trust root, for `trust.*`.
    TrustRoot,
    /// A role grant or just-in-time access request, for `access.*`.
    AccessGrant {
        /// The grant's id.
        id: String,
        /// Who would receive the role.
        requester_id: String,
        /// The role asked for.
        role: String,
    },
    /// The audit log, for `audit.read`.
    Log,
}

impl Resource {
    /// The kind of this resource.
    pub fn kind(&self) -> ResourceKind {
        match self {
            Resource::Stage { .. } => ResourceKind::Stage,
            Resource::Repository { .. } => ResourceKind::Repository,
            Resource::Promotion { .. } => ResourceKind::Promotion,
            Resource::Waiver { .. } => ResourceKind::Waiver,
            Resource::TrustRoot => ResourceKind::TrustRoot,
            Resource::AccessGrant { .. } => ResourceKind::AccessGrant,
            Resource::Log => ResourceKind::Log,
        }
    }
}

/// The circumstances of a request, computed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzContext {
    /// Now, in Unix seconds (read from the caller's clock).
    pub now: i64,
    /// The client's address as the server saw it.
    pub source_ip: String,
    /// Whether the principal verified a second factor within the configured window.
    pub mfa_fresh: bool,
    /// Whether the stage the request concerns is frozen.
    pub stage_frozen: bool,
    /// Whether an incident is declared.
    pub incident_mode: bool,
    /// For requests about an artifact: where its trusted provenance says it came from.
    pub origin: Option<Origin>,
}

/// Where an artifact came from, by its trusted provenance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The builder id, `https://github.com/actions/runner/github-hosted`.
    pub builder: Option<String>,
    /// The source repository, normalized, `github.com/acme/payments-api`.
    pub source: Option<String>,
}

/// A Cedar string value.
fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

/// Builds the Cedar request and its entities: the principal (its roles as parents), the
/// resource and, for a repository, its stage. The request is checked against the schema. The
/// `Err` is the reason to deny.
pub(crate) fn to_cedar(
    names: &Names,
    schema: &Schema,
    principal: &Principal,
    action: Action,
    resource: &Resource,
    context: &AuthzContext,
) -> Result<(Request, Entities), String> {
    let (request, entities) = build(names, schema, principal, action, resource, context)?;
    // The entities are not checked against the schema here: `build` makes them from typed
    // fields, so they conform by construction (the tests below check every shape, with arbitrary
    // strings, against the schema), and checking would cost more than the rest of a decision.
    // Were one ever not to conform, a policy reading it would fail to evaluate, and any
    // evaluation error denies.
    let entities = Entities::from_entities(entities, None)
        .map_err(|e| format!("request entities are invalid: {}", one_line(&e.to_string())))?;
    Ok((request, entities))
}

/// [`to_cedar`] before the entities are assembled into a store.
fn build(
    names: &Names,
    schema: &Schema,
    principal: &Principal,
    action: Action,
    resource: &Resource,
    context: &AuthzContext,
) -> Result<(Request, Vec<Entity>), String> {
    // 1. Bounds and shape, before any work.
    if principal.roles.len() > REQUEST_ROLES_MAX {
        return Err(format!(
            "principal `{}` holds {} roles; the limit is {REQUEST_ROLES_MAX}",
            airlock_model::echo::echo(&principal.id),
            principal.roles.len()
        ));
    }
    if let Resource::Promotion { pushers, .. } = resource
        && pushers.len() > REQUEST_PUSHERS_MAX
    {
        return Err(format!("promotion lists {} pushers; the limit is {REQUEST_PUSHERS_MAX}", pushers.len()));
    }
    if action.resource_kind() != resource.kind() {
        return Err(format!(
            "action `{action}` acts on {}, not on {}",
            action.resource_kind().describe(),
            resource.kind().describe()
        ));
    }
    let action_uid = names.action(action).ok_or_else(|| format!("action `{action}` is not in the schema"))?.clone();

    // 2. The principal, whose parents are its roles. The roles are named as parents but not
    //    added as entities: a role has no attributes and no parents, so Cedar cannot tell a
    //    stored role from a named one (`principal in Airlock::Role::"x"` reads the principal's
    //    ancestors), and each stored entity costs a decision nearly 1 µs of hierarchy work.
    let mut entities: Vec<Entity> = Vec::with_capacity(3);
    let role_uids: HashSet<EntityUid> = principal.roles.iter().map(|role| Names::uid(&names.role, role)).collect();
    let principal_type = match principal.kind {
        PrincipalKind::User => &names.user,
        PrincipalKind::ServiceAccount => &names.service_account,
    };
    let principal_uid = Names::uid(principal_type, &principal.id);
    entities.push(entity(principal_uid.clone(), [("id", string(&principal.id))], role_uids)?);

    // 3. The resource and, for a repository, its stage.
    let resource_uid = match resource {
        Resource::Stage { name, gated } => {
            let uid = Names::uid(&names.stage, name);
            entities.push(entity(uid.clone(), [("gated", RestrictedExpression::new_bool(*gated))], HashSet::new())?);
            uid
        }
        Resource::Repository { stage, path, gated } => {
            let stage_uid = Names::uid(&names.stage, stage);
            let full = format!("{stage}/{path}");
            let uid = Names::uid(&names.repository, &full);
            entities.push(entity(
                stage_uid.clone(),
                [("gated", RestrictedExpression::new_bool(*gated))],
                HashSet::new(),
            )?);
            entities.push(entity(
                uid.clone(),
                [
                    ("stage", string(stage)),
                    ("path", string(path)),
                    ("name", string(&full)),
                    ("gated", RestrictedExpression::new_bool(*gated)),
                ],
                HashSet::from([stage_uid]),
            )?);
            uid
        }
        Resource::Promotion { id, repository, stage, requester_id, pushers } => {
            let uid = Names::uid(&names.promotion, id);
            let pushers = RestrictedExpression::new_set(pushers.iter().map(|p| string(p)));
            entities.push(entity(
                uid.clone(),
                [
                    ("repository", string(repository)),
                    ("stage", string(stage)),
                    ("requester_id", string(requester_id)),
                    ("pushers", pushers),
                ],
                HashSet::new(),
            )?);
            uid
        }
        Resource::Waiver { id, repository, requester_id } => {
            let uid = Names::uid(&names.waiver, id);
            entities.push(entity(
                uid.clone(),
                [("repository", string(repository)), ("requester_id", string(requester_id))],
                HashSet::new(),
            )?);
            uid
        }
        Resource::TrustRoot => {
            let uid = Names::uid(&names.trust_root, TRUST_ROOT_ID);
            entities.push(Entity::new_no_attrs(uid.clone(), HashSet::new()));
            uid
        }
        Resource::AccessGrant { id, requester_id, role } => {
            let uid = Names::uid(&names.access_grant, id);
            entities.push(entity(
                uid.clone(),
                [("requester_id", string(requester_id)), ("role", string(role))],
                HashSet::new(),
            )?);
            uid
        }
        Resource::Log => {
            let uid = Names::uid(&names.log, LOG_ID);
            entities.push(Entity::new_no_attrs(uid.clone(), HashSet::new()));
            uid
        }
    };

    // 4. The context and the request, checked against the schema.
    let mut pairs = vec![
        ("now".to_owned(), RestrictedExpression::new_long(context.now)),
        ("source_ip".to_owned(), string(&context.source_ip)),
        ("mfa_fresh".to_owned(), RestrictedExpression::new_bool(context.mfa_fresh)),
        ("stage_frozen".to_owned(), RestrictedExpression::new_bool(context.stage_frozen)),
        ("incident_mode".to_owned(), RestrictedExpression::new_bool(context.incident_mode)),
    ];
    if let Some(origin) = &context.origin {
        if let Some(builder) = &origin.builder {
            pairs.push(("origin_builder".to_owned(), string(builder)));
        }
        if let Some(source) = &origin.source {
            pairs.push(("origin_source".to_owned(), string(source)));
        }
    }
    let context =
        Context::from_pairs(pairs).map_err(|e| format!("request context is invalid: {}", one_line(&e.to_string())))?;
    let request = Request::new(principal_uid, action_uid, resource_uid, context, Some(schema))
        .map_err(|e| format!("request does not match the schema: {}", one_line(&e.to_string())))?;
    Ok((request, entities))
}

/// An entity with attributes.
fn entity<const N: usize>(
    uid: EntityUid,
    attrs: [(&str, RestrictedExpression); N],
    parents: HashSet<EntityUid>,
) -> Result<Entity, String> {
    let attrs: HashMap<String, RestrictedExpression> = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Entity::new(uid, attrs, parents).map_err(|e| format!("entity is invalid: {}", one_line(&e.to_string())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::authz::schema::load_schema;

    proptest! {
        /// Every entity `build` makes conforms to the schema, whatever the strings.
        #[test]
        fn entities_conform_to_the_schema(
            a in ".{0,24}",
            b in ".{0,24}",
            c in ".{0,24}",
            flag in any::<bool>(),
            service in any::<bool>(),
        ) {
            let (schema, names) = (load_schema().unwrap(), Names::new().unwrap());
            let kind = if service { PrincipalKind::ServiceAccount } else { PrincipalKind::User };
            let principal = Principal { kind, id: a.clone(), roles: vec![b.clone(), c.clone(), b.clone()] };
            let context = AuthzContext {
                now: i64::MIN,
                source_ip: c.clone(),
                mfa_fresh: flag,
                stage_frozen: !flag,
                incident_mode: flag,
                origin: flag.then(|| Origin { builder: Some(c.clone()), source: Some(a.clone()) }),
            };
            let resources = [
                Resource::Stage { name: a.clone(), gated: flag },
                Resource::Repository { stage: a.clone(), path: b.clone(), gated: flag },
                Resource::Promotion {
                    id: a.clone(),
                    repository: b.clone(),
                    stage: c.clone(),
                    requester_id: a.clone(),
                    pushers: vec![b.clone(), c.clone(), b.clone()],
                },
                Resource::Waiver { id: a.clone(), repository: b.clone(), requester_id: c.clone() },
                Resource::TrustRoot,
                Resource::AccessGrant { id: a.clone(), requester_id: b.clone(), role: c.clone() },
                Resource::Log,
            ];
            for resource in resources {
                let action = Action::ALL.into_iter().find(|a| a.resource_kind() == resource.kind()).unwrap();
                let (_, entities) = build(&names, &schema, &principal, action, &resource, &context).unwrap();
                if let Err(e) = Entities::from_entities(entities, Some(&schema)) {
                    prop_assert!(false, "{resource:?}: {e}");
                }
            }
        }
    }
}
