//! Why an authorization configuration was refused, and why a role grant breaks separation of
//! duties: one variant per check, each naming the role or policy to fix.

use crate::authz::action::Action;

/// Why [`crate::authz::Authorizer::new`] (or [`crate::authz::compile_role`]) refused a
/// configuration. Each message is one line and names the role or policy id to fix.
///
/// The fields carry what a person needs to act: `role` is a role name, `index` a permission's
/// position in its role (from 0), `id` a policy id, `action` an action and `resource` how the
/// message names the resource it acts on, `message` Cedar's own diagnostic, on one line, and
/// `count`, `size` and `max` the figures of a bound. User input is quoted back bounded, with
/// [`airlock_model::echo::echo`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzError {
    // The built-in schema and shipped policies; these variants mean a bug in Airlock.
    /// The embedded schema did not load.
    #[error("the built-in authorization schema does not load: {message}; this is a bug in airlock")]
    Schema { message: String },
    /// The embedded shipped policies did not load.
    #[error("the shipped policies do not load: {message}; this is a bug in airlock")]
    Shipped { message: String },

    // Bounds on the configuration.
    /// More roles than [`crate::authz::ROLES_MAX`].
    #[error("{count} roles are defined; the limit is {max}")]
    TooManyRoles { count: usize, max: usize },
    /// A role with more permissions than [`crate::authz::ROLE_PERMISSIONS_MAX`].
    #[error("role `{role}` has {count} permissions; the limit is {max}")]
    TooManyPermissions { role: String, count: usize, max: usize },
    /// A permission listing more than [`crate::authz::PERMISSION_ENTRIES_MAX`] entries in one field.
    #[error("role `{role}` permission {index} lists {count} {field}; the limit is {max}")]
    TooManyEntries { role: String, index: usize, field: &'static str, count: usize, max: usize },
    /// More conflicting pairs than [`crate::authz::CONFLICTS_MAX`].
    #[error("{count} role conflicts are configured; the limit is {max}")]
    TooManyConflicts { count: usize, max: usize },
    /// More compatible pairs than [`crate::authz::COMPATIBLE_MAX`].
    #[error("{count} compatible role pairs are configured; the limit is {max}")]
    TooManyCompatible { count: usize, max: usize },
    /// Custom policy source larger than [`crate::authz::CUSTOM_POLICIES_MAX_BYTES`].
    #[error("custom policies are {size} bytes; the limit is {max}")]
    CustomTooLarge { size: usize, max: usize },

    // Roles.
    /// A role name outside `[a-z][a-z0-9-]{0,63}`.
    #[error(
        "role name `{role}` is invalid: start with a lowercase letter, then use up to 63 lowercase letters, digits and `-`"
    )]
    RoleName { role: String },
    /// Two roles with one name.
    #[error("role `{role}` is defined twice; define each role once")]
    DuplicateRole { role: String },
    /// A role in a table whose `name` is not its key.
    #[error("role table key `{key}` holds a role named `{name}`; drop `name` or make it match the key")]
    RoleNameMismatch { key: String, name: String },
    /// A permission without actions.
    #[error("role `{role}` permission {index} lists no actions; name at least one, like `pull`")]
    NoActions { role: String, index: usize },
    /// A permission stage that is neither a stage name nor `*`.
    #[error(
        "role `{role}` permission {index} names stage `{stage}`, which is not a stage name; use 1 to 32 lowercase letters, digits and single `-`, or `*` for every stage"
    )]
    Stage { role: String, index: usize, stage: String },
    /// A permission repository pattern that was refused.
    #[error("role `{role}` permission {index} has an invalid repository pattern: {source}")]
    Pattern {
        role: String,
        index: usize,
        #[source]
        source: RolePatternError,
    },
    /// A permission without stages for an action on a resource in a stage.
    #[error(
        "role `{role}` permission {index} lists no stages but action `{action}` acts on {resource}, which belongs to a stage; list stage names, or `*` for every stage"
    )]
    MissingStages { role: String, index: usize, action: Action, resource: &'static str },
    /// A permission with stages for an action on a resource outside any stage.
    #[error(
        "role `{role}` permission {index} lists stages but action `{action}` acts on {resource}, which belongs to no stage; move `{action}` to a permission with `stages = []`"
    )]
    UnexpectedStages { role: String, index: usize, action: Action, resource: &'static str },
    /// A permission without repositories for an action on a resource that names one.
    #[error(
        "role `{role}` permission {index} lists no repositories but action `{action}` acts on {resource}, which names a repository; list repository patterns, or `**` for every repository"
    )]
    MissingRepositories { role: String, index: usize, action: Action, resource: &'static str },
    /// A permission with repositories for an action on a resource that names none.
    #[error(
        "role `{role}` permission {index} lists repositories but action `{action}` acts on {resource}, which names no repository; move `{action}` to a permission with `repositories = []`"
    )]
    UnexpectedRepositories { role: String, index: usize, action: Action, resource: &'static str },
    /// The policies did not assemble into one set.
    #[error("the policy set does not assemble: {message}; this is a bug in airlock")]
    PolicySet { message: String },
    /// A compiled role policy did not parse.
    #[error("role policy `{id}` does not parse: {message}; this is a bug in airlock")]
    RolePolicy { id: String, message: String },

    // Custom policies.
    /// The custom policy source did not parse.
    #[error("custom policies do not parse: {message}")]
    CustomParse { message: String },
    /// A custom policy without an `@id` annotation.
    #[error("custom policy {position} (counting from 1) has no `@id`; start it with `@id(\"your-policy-name\")`")]
    CustomWithoutId { position: usize },
    /// A custom policy id outside `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`.
    #[error(
        "custom policy id `{id}` is invalid: use 1 to 128 letters, digits, `.`, `_` and `-`, starting with a letter or digit"
    )]
    CustomId { id: String },
    /// A custom policy with template slots.
    #[error(
        "custom policy `{id}` is a template; custom policies must be static, so replace `?principal` and `?resource`"
    )]
    CustomTemplate { id: String },
    /// A custom policy id already in use.
    #[error("custom policy id `{id}` is already the id of {owner}; give the custom policy another `@id`")]
    DuplicateId { id: String, owner: &'static str },
    /// A custom policy id with a reserved prefix (`airlock.`, `role.`).
    #[error(
        "custom policy id `{id}` starts with `{prefix}`, which is reserved for {owner}; give the custom policy another `@id`"
    )]
    ReservedId { id: String, prefix: &'static str, owner: &'static str },
    /// A custom policy that does not validate against the schema in strict mode.
    #[error("custom policy `{id}` does not validate against the schema: {message}; fix the policy or remove it")]
    CustomInvalid { id: String, message: String },
    /// A custom policy the validator proves never applies.
    #[error(
        "custom policy `{id}` can never apply to a request the schema allows: {message}; fix its scope or conditions, or remove it"
    )]
    CustomImpossible { id: String, message: String },
    /// A shipped or role policy that does not validate; a bug.
    #[error("{owner} `{id}` does not validate against the schema: {message}; this is a bug in airlock")]
    BuiltInInvalid { id: String, owner: &'static str, message: String },

    // Separation of duties.
    /// A conflicting pair naming an undefined role.
    #[error("role conflict names role `{role}`, which is not defined; define it under `[roles]` or fix the name")]
    ConflictUnknownRole { role: String },
    /// A conflicting pair naming one role twice.
    #[error("role conflict pairs role `{role}` with itself; a conflict names two different roles")]
    ConflictWithItself { role: String },
    /// A conflicting pair `["*", "*"]`, which would forbid holding any two roles.
    #[error(
        "role conflict `[\"*\", \"*\"]` pairs any role with any other; name a role on one side, like `[\"access-admin\", \"*\"]`"
    )]
    ConflictAnyWithAny,
    /// A compatible pair naming `*`.
    #[error("compatible roles name `*`, which only a conflict may use; name two defined roles")]
    CompatibleAnyRole,
    /// A compatible pair naming an undefined role.
    #[error("compatible roles name role `{role}`, which is not defined; define it under `[roles]` or fix the name")]
    CompatibleUnknownRole { role: String },
    /// A compatible pair naming one role twice.
    #[error("compatible roles pair role `{role}` with itself; a compatible pair names two different roles")]
    CompatibleWithItself { role: String },
}

/// Why a repository pattern of a role permission was refused: outside the repository pattern
/// grammar, or holding a `*` inside a segment, which role patterns used to read as crossing `/`.
/// `pattern` is the pattern as given, quoted back bounded; `instead` the spelling to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolePatternError {
    /// Outside the repository pattern grammar.
    #[error(transparent)]
    Grammar(#[from] airlock_model::pattern::PatternError),
    /// A `*` inside a segment.
    #[error(
        "pattern `{pattern}` has a `*` inside a segment, which in role `repositories` used to match `/` too and now stays within one segment; {instead}"
    )]
    StarInSegment { pattern: String, instead: String },
}

/// Why [`crate::authz::Authorizer::check_grant`] or [`crate::authz::Authorizer::check_held`]
/// refused a set of roles, or why [`crate::authz::Authorizer::authorize`] denied a principal
/// whatever it asked. Every field but `principal` (a principal id) is a role name: `adding` the
/// role being granted, `held` the held role it conflicts with, `first` and `second` two
/// conflicting held roles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SodError {
    /// A role that is not defined.
    #[error("role `{role}` is not defined; define it under `[roles]` or check the name")]
    UnknownRole { role: String },
    /// A grant that would join a conflicting pair.
    #[error(
        "granting role `{adding}` to a holder of role `{held}` breaks separation of duties: the two roles conflict; revoke `{held}` first or grant `{adding}` to someone else"
    )]
    Conflict { adding: String, held: String },
    /// Held roles that include a conflicting pair.
    #[error(
        "roles `{first}` and `{second}` are held together, which breaks separation of duties: the two roles conflict; revoke one of them"
    )]
    HeldTogether { first: String, second: String },
    /// A principal whose roles in force (bound and just in time) include a conflicting pair.
    #[error(
        "`{principal}` holds `{first}` and `{second}` together, which separation of duties forbids; revoke one of them"
    )]
    InForce { principal: String, first: String, second: String },
}
