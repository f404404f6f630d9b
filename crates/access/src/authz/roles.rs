//! Roles: named bundles of permissions, compiled to one Cedar `permit` per permission, and the
//! default roles.
//!
//! A permission names actions, stages and repository patterns. Which of `stages` and
//! `repositories` it must list follows from the resource its actions act on:
//!
//! | resource (actions)                                     | `stages`   | `repositories` |
//! |--------------------------------------------------------|------------|----------------|
//! | repository (`pull`, `push`, `delete`, `rollback`)       | required   | required       |
//! | promotion (`promote.*`; the stage is the target)        | required   | required       |
//! | stage (`freeze`)                                       | required   | `[]`           |
//! | waiver (`waiver.*`)                                    | `[]`       | required       |
//! | trust root, access grant, log (`trust.*`, `access.*`, `audit.read`) | `[]` | `[]`   |
//!
//! so every action of one permission must agree; a permission that does not fit one of its
//! actions is refused rather than silently widened or narrowed.
//!
//! `stages` are stage names or `*` (every stage). `repositories` are repository patterns
//! ([`RepoPattern`], README.md "Repository patterns") over the repository **path after the
//! stage** (`team-42/app` in `prod/team-42/app`): an exact path, `team-42/**` for every path below
//! `team-42/`, or `**` for every repository. A `*` inside a segment is refused here: role patterns
//! used to be Cedar `like` patterns, where `*` also matched `/`, so `team-42/*` meant what
//! `team-42/**` means now; it is refused with that spelling rather than silently narrowed. What is
//! accepted compiles to a Cedar `like` whose `**` means the same as the pattern's. The repository
//! alphabet holds no `"`, `\` or control character: patterns become Cedar string literals, and
//! without the characters that end or escape a literal no pattern can inject Cedar syntax.

use std::collections::BTreeMap;

use airlock_model::StageName;
use airlock_model::echo::echo;
use airlock_model::pattern::{REPO_PATTERN_MAX_LEN, RepoPattern};

use crate::authz::action::{Action, ResourceKind};
use crate::authz::error::{AuthzError, RolePatternError};

/// Most roles one configuration defines.
pub const ROLES_MAX: usize = 1024;
/// Most permissions one role has.
pub const ROLE_PERMISSIONS_MAX: usize = 64;
/// Most entries in one permission's `actions`, `stages` or `repositories`.
pub const PERMISSION_ENTRIES_MAX: usize = 64;
/// Longest repository pattern, in bytes.
pub const ROLE_PATTERN_MAX_LEN: usize = REPO_PATTERN_MAX_LEN;
/// Longest role name, in bytes.
pub const ROLE_NAME_MAX_LEN: usize = 64;

/// A role: a name, what it is for, and what it permits.
///
/// Deserializes from configuration shaped like
/// `[roles.deployer] permissions = [{ actions = ["pull"], stages = ["prod"], repositories = ["**"] }]`;
/// [`roles_from_table`] takes the role names from the table keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDefinition {
    /// `[a-z][a-z0-9-]{0,63}`. Empty when read from a table keyed by name.
    #[serde(default)]
    pub name: String,
    /// What the role is for, for people.
    #[serde(default)]
    pub description: String,
    /// What the role permits; each compiles to one `permit` policy, `role.<name>.<index>`.
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

/// One permission of a role: these actions, in these stages, on these repositories. See the
/// module documentation for which of `stages` and `repositories` an action needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// The actions permitted.
    pub actions: Vec<Action>,
    /// Stage names, or `*` for every stage; `[]` for actions on resources outside any stage.
    #[serde(default)]
    pub stages: Vec<String>,
    /// Repository patterns over the path after the stage (`team-42/app`, `team-42/**`, `**`; see
    /// the module documentation); `[]` for actions on resources that name no repository.
    #[serde(default)]
    pub repositories: Vec<String>,
}

/// A role permission compiled to Cedar: its policy id and its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePolicy {
    id: String,
    text: String,
}

impl RolePolicy {
    /// The policy id, `role.deployer.0`: the reason a decision this policy permits gives.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The policy's Cedar source.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Roles read from a table keyed by role name (`[roles.deployer]`): each role's name is its key.
/// A role that also states a `name` must state its key.
pub fn roles_from_table(table: BTreeMap<String, RoleDefinition>) -> Result<Vec<RoleDefinition>, AuthzError> {
    table
        .into_iter()
        .map(|(key, mut role)| {
            if !role.name.is_empty() && role.name != key {
                return Err(AuthzError::RoleNameMismatch { key: echo(&key), name: echo(&role.name) });
            }
            role.name = key;
            Ok(role)
        })
        .collect()
}

/// Whether `name` is a valid role name: `[a-z][a-z0-9-]{0,63}`.
pub fn is_role_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= ROLE_NAME_MAX_LEN
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks one repository pattern; see the module documentation for what a role accepts.
fn check_pattern(text: &str) -> Result<RepoPattern, RolePatternError> {
    let pattern = RepoPattern::parse(text)?;
    if pattern.pattern().glob_segments() > 0 {
        let instead = match text.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') && (prefix.is_empty() || prefix.ends_with('/')) => {
                format!("write `{prefix}**` for every repository below")
            }
            _ => "write an exact path, `PREFIX/**` for every repository below `PREFIX/`, or `**` for all".to_owned(),
        };
        return Err(RolePatternError::StarInSegment { pattern: echo(text), instead });
    }
    Ok(pattern)
}

/// Checks a role and compiles each of its permissions to a Cedar `permit` policy, in order.
/// The policy ids are `role.<name>.<index>`, stable as long as the permissions keep their order.
pub fn compile_role(role: &RoleDefinition) -> Result<Vec<RolePolicy>, AuthzError> {
    if !is_role_name(&role.name) {
        return Err(AuthzError::RoleName { role: echo(&role.name) });
    }
    if role.permissions.len() > ROLE_PERMISSIONS_MAX {
        return Err(AuthzError::TooManyPermissions {
            role: role.name.clone(),
            count: role.permissions.len(),
            max: ROLE_PERMISSIONS_MAX,
        });
    }
    role.permissions.iter().enumerate().map(|(index, permission)| compile(&role.name, index, permission)).collect()
}

/// Checks one permission against the rules of the module documentation and writes its policy.
fn compile(role: &str, index: usize, permission: &Permission) -> Result<RolePolicy, AuthzError> {
    let too_many = |field: &'static str, count: usize| AuthzError::TooManyEntries {
        role: role.to_owned(),
        index,
        field,
        count,
        max: PERMISSION_ENTRIES_MAX,
    };
    for (field, count) in [
        ("actions", permission.actions.len()),
        ("stages", permission.stages.len()),
        ("repositories", permission.repositories.len()),
    ] {
        if count > PERMISSION_ENTRIES_MAX {
            return Err(too_many(field, count));
        }
    }
    if permission.actions.is_empty() {
        return Err(AuthzError::NoActions { role: role.to_owned(), index });
    }
    for stage in &permission.stages {
        if stage != "*" && StageName::parse(stage).is_err() {
            return Err(AuthzError::Stage { role: role.to_owned(), index, stage: echo(stage) });
        }
    }
    for pattern in &permission.repositories {
        check_pattern(pattern).map_err(|source| AuthzError::Pattern { role: role.to_owned(), index, source })?;
    }
    let mut actions: Vec<Action> = Vec::with_capacity(permission.actions.len());
    let mut kinds: Vec<ResourceKind> = Vec::new();
    for &action in &permission.actions {
        let kind = action.resource_kind();
        let (role, resource) = (role.to_owned(), kind.describe());
        match (kind.has_stage(), permission.stages.is_empty()) {
            (true, true) => return Err(AuthzError::MissingStages { role, index, action, resource }),
            (false, false) => return Err(AuthzError::UnexpectedStages { role, index, action, resource }),
            _ => {}
        }
        match (kind.has_repository(), permission.repositories.is_empty()) {
            (true, true) => return Err(AuthzError::MissingRepositories { role, index, action, resource }),
            (false, false) => return Err(AuthzError::UnexpectedRepositories { role, index, action, resource }),
            _ => {}
        }
        if !actions.contains(&action) {
            actions.push(action);
        }
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let id = format!("role.{role}.{index}");
    let text = policy_text(&id, role, &actions, &kinds, permission);
    Ok(RolePolicy { id, text })
}

/// The Cedar text of one permission. Every string in it was checked above: the role name and
/// stage names by their grammars, the patterns by the repository pattern grammar (no `"`, `\` or
/// control character; `*` only in a final `**`, which Cedar's `like` reads the same way).
fn policy_text(id: &str, role: &str, actions: &[Action], kinds: &[ResourceKind], permission: &Permission) -> String {
    let action_scope = match actions {
        [action] => format!("action == Airlock::Action::\"{action}\""),
        _ => {
            let list: Vec<String> = actions.iter().map(|a| format!("Airlock::Action::\"{a}\"")).collect();
            format!("action in [{}]", list.join(", "))
        }
    };
    let any_stage = permission.stages.iter().any(|s| s == "*");
    let any_repository = permission.repositories.iter().any(|r| r == "**");
    let conditions = |kind: ResourceKind| -> Vec<String> {
        let mut out = Vec::new();
        if kind.has_stage() && !any_stage {
            out.push(match kind {
                ResourceKind::Stage => stage_entity_condition(&permission.stages),
                _ => stage_attribute_condition(&permission.stages),
            });
        }
        if kind.has_repository() && !any_repository {
            let attribute = if kind == ResourceKind::Repository { "path" } else { "repository" };
            out.push(repository_condition(attribute, &permission.repositories));
        }
        out
    };
    let (resource_scope, when) = match kinds {
        [kind] => (format!("resource is Airlock::{}", kind.type_name()), conditions(*kind).join(" && ")),
        _ => {
            let alternatives: Vec<String> = kinds
                .iter()
                .map(|&kind| {
                    let mut parts = vec![format!("resource is Airlock::{}", kind.type_name())];
                    parts.extend(conditions(kind));
                    format!("({})", parts.join(" && "))
                })
                .collect();
            ("resource".to_owned(), alternatives.join(" || "))
        }
    };
    let mut text = format!(
        "@id(\"{id}\")\npermit (\n    principal in Airlock::Role::\"{role}\",\n    {action_scope},\n    {resource_scope}\n)"
    );
    if !when.is_empty() {
        text.push_str(&format!("\nwhen {{ {when} }}"));
    }
    text.push(';');
    text
}

/// `resource.stage == "dev"`, or `["staging", "prod"].contains(resource.stage)`.
fn stage_attribute_condition(stages: &[String]) -> String {
    match stages {
        [stage] => format!("resource.stage == \"{stage}\""),
        _ => {
            let list: Vec<String> = stages.iter().map(|s| format!("\"{s}\"")).collect();
            format!("[{}].contains(resource.stage)", list.join(", "))
        }
    }
}

/// `resource == Airlock::Stage::"dev"`, or `resource in [Airlock::Stage::"dev", ...]`: a stage
/// has no parents, so `in` a set of stages is being one of them.
fn stage_entity_condition(stages: &[String]) -> String {
    match stages {
        [stage] => format!("resource == Airlock::Stage::\"{stage}\""),
        _ => {
            let list: Vec<String> = stages.iter().map(|s| format!("Airlock::Stage::\"{s}\"")).collect();
            format!("resource in [{}]", list.join(", "))
        }
    }
}

/// `resource.path like "team-42/*"`, or a disjunction of such in parentheses.
fn repository_condition(attribute: &str, patterns: &[String]) -> String {
    match patterns {
        [pattern] => format!("resource.{attribute} like \"{pattern}\""),
        _ => {
            let list: Vec<String> = patterns.iter().map(|p| format!("resource.{attribute} like \"{p}\"")).collect();
            format!("({})", list.join(" || "))
        }
    }
}

/// Shorthand for the default roles' permissions.
fn permission(actions: &[Action], stages: &[&str], repositories: &[&str]) -> Permission {
    Permission {
        actions: actions.to_vec(),
        stages: stages.iter().map(|s| (*s).to_owned()).collect(),
        repositories: repositories.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// The roles Airlock ships:
///
/// | role               | permits                                                                 |
/// |--------------------|-------------------------------------------------------------------------|
/// | `developer`        | `pull`, `push`, `delete` in `dev`; `pull` in `staging`; `promote.request`; `waiver.request`; `access.request`; `audit.read` |
/// | `ci`               | `pull`, `push` in `dev`; `promote.request`                              |
/// | `release-approver` | `pull` in every stage; `promote.approve`, `promote.reject`; `waiver.approve`; `audit.read` |
/// | `deployer`         | `pull` in `staging` and `prod`                                          |
/// | `key-admin`        | `trust.propose`, `trust.sign`, `audit.read`                             |
/// | `access-admin`     | `access.grant`, `access.approve`, `audit.read`                          |
/// | `operator`         | `freeze` and `rollback` in every stage; `audit.read`                    |
/// | `auditor`          | `audit.read`; `pull` in every stage                                     |
/// | `break-glass`      | `promote.request` into every stage; the engine lets its holder pass failing gates with a second person's approval |
///
/// Every repository pattern is `*`, and promotions are to any stage. The shipped policies still
/// apply: nobody pushes to a gated stage or approves their own request, and so on.
pub fn default_roles() -> Vec<RoleDefinition> {
    use Action::*;
    let role = |name: &str, description: &str, permissions: Vec<Permission>| RoleDefinition {
        name: name.to_owned(),
        description: description.to_owned(),
        permissions,
    };
    vec![
        role(
            "developer",
            "builds and tests in dev, reads staging, asks for promotions, waivers and access",
            vec![
                permission(&[Pull, Push, Delete], &["dev"], &["**"]),
                permission(&[Pull], &["staging"], &["**"]),
                permission(&[PromoteRequest], &["*"], &["**"]),
                permission(&[WaiverRequest], &[], &["**"]),
                permission(&[AccessRequest, AuditRead], &[], &[]),
            ],
        ),
        role(
            "ci",
            "pushes builds to dev and asks for their promotion",
            vec![permission(&[Pull, Push], &["dev"], &["**"]), permission(&[PromoteRequest], &["*"], &["**"])],
        ),
        role(
            "release-approver",
            "reads every stage, approves or rejects promotions and approves waivers",
            vec![
                permission(&[Pull], &["*"], &["**"]),
                permission(&[PromoteApprove, PromoteReject], &["*"], &["**"]),
                permission(&[WaiverApprove], &[], &["**"]),
                permission(&[AuditRead], &[], &[]),
            ],
        ),
        role(
            "deployer",
            "pulls what was promoted to staging and prod",
            vec![permission(&[Pull], &["staging", "prod"], &["**"])],
        ),
        role(
            "key-admin",
            "proposes and signs trust root versions",
            vec![permission(&[TrustPropose, TrustSign, AuditRead], &[], &[])],
        ),
        role(
            "access-admin",
            "grants roles and approves just-in-time access requests",
            vec![permission(&[AccessGrant, AccessApprove, AuditRead], &[], &[])],
        ),
        role(
            "operator",
            "freezes stages and rolls back repositories",
            vec![
                permission(&[Rollback], &["*"], &["**"]),
                permission(&[Freeze], &["*"], &[]),
                permission(&[AuditRead], &[], &[]),
            ],
        ),
        role(
            "auditor",
            "reads the audit log and every stage",
            vec![permission(&[AuditRead], &[], &[]), permission(&[Pull], &["*"], &["**"])],
        ),
        role(
            "break-glass",
            "asks for emergency promotions past failing gates (a second person approves; a review follows)",
            vec![permission(&[PromoteRequest], &["*"], &["**"])],
        ),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// Compiles a one-permission role `r` and shows its policy or its error.
    fn check(actions: &[Action], stages: &[&str], repositories: &[&str], expect: Expect) {
        let role = RoleDefinition {
            name: "r".into(),
            description: String::new(),
            permissions: vec![permission(actions, stages, repositories)],
        };
        let actual = match compile_role(&role) {
            Ok(policies) => policies.iter().map(|p| format!("{}\n{}", p.id(), p.text())).collect::<Vec<_>>().join("\n"),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn compiles_each_resource_shape() {
        use Action::*;
        check(
            &[Pull, Push],
            &["dev"],
            &["team-42/**"],
            expect![[r#"
                role.r.0
                @id("role.r.0")
                permit (
                    principal in Airlock::Role::"r",
                    action in [Airlock::Action::"pull", Airlock::Action::"push"],
                    resource is Airlock::Repository
                )
                when { resource.stage == "dev" && resource.path like "team-42/**" };"#]],
        );
        check(
            &[Pull],
            &["staging", "prod"],
            &["**"],
            expect![[r#"
                role.r.0
                @id("role.r.0")
                permit (
                    principal in Airlock::Role::"r",
                    action == Airlock::Action::"pull",
                    resource is Airlock::Repository
                )
                when { ["staging", "prod"].contains(resource.stage) };"#]],
        );
        check(
            &[PromoteApprove],
            &["*"],
            &["a/**", "b"],
            expect![[r#"
                role.r.0
                @id("role.r.0")
                permit (
                    principal in Airlock::Role::"r",
                    action == Airlock::Action::"promote.approve",
                    resource is Airlock::Promotion
                )
                when { (resource.repository like "a/**" || resource.repository like "b") };"#]],
        );
        check(
            &[Freeze],
            &["staging", "prod"],
            &[],
            expect![[r#"
                role.r.0
                @id("role.r.0")
                permit (
                    principal in Airlock::Role::"r",
                    action == Airlock::Action::"freeze",
                    resource is Airlock::Stage
                )
                when { resource in [Airlock::Stage::"staging", Airlock::Stage::"prod"] };"#]],
        );
        check(
            &[AuditRead, TrustSign],
            &[],
            &[],
            expect![[r#"
                role.r.0
                @id("role.r.0")
                permit (
                    principal in Airlock::Role::"r",
                    action in [Airlock::Action::"audit.read", Airlock::Action::"trust.sign"],
                    resource
                )
                when { (resource is Airlock::Log) || (resource is Airlock::TrustRoot) };"#]],
        );
        check(
            &[Pull, PromoteRequest],
            &["prod"],
            &["app"],
            expect![[r#"
                role.r.0
                @id("role.r.0")
                permit (
                    principal in Airlock::Role::"r",
                    action in [Airlock::Action::"pull", Airlock::Action::"promote.request"],
                    resource
                )
                when { (resource is Airlock::Repository && resource.stage == "prod" && resource.path like "app") || (resource is Airlock::Promotion && resource.stage == "prod" && resource.repository like "app") };"#]],
        );
    }

    #[test]
    fn refuses_permissions_that_do_not_fit() {
        use Action::*;
        check(
            &[],
            &["dev"],
            &["**"],
            expect!["err role `r` permission 0 lists no actions; name at least one, like `pull`"],
        );
        check(
            &[Pull],
            &[],
            &["**"],
            expect![
                "err role `r` permission 0 lists no stages but action `pull` acts on a repository, which belongs to a stage; list stage names, or `*` for every stage"
            ],
        );
        check(
            &[Pull, Freeze],
            &["dev"],
            &["**"],
            expect![
                "err role `r` permission 0 lists repositories but action `freeze` acts on a stage, which names no repository; move `freeze` to a permission with `repositories = []`"
            ],
        );
        check(
            &[AuditRead],
            &["prod"],
            &[],
            expect![
                "err role `r` permission 0 lists stages but action `audit.read` acts on the audit log, which belongs to no stage; move `audit.read` to a permission with `stages = []`"
            ],
        );
        check(
            &[WaiverApprove],
            &[],
            &[],
            expect![
                "err role `r` permission 0 lists no repositories but action `waiver.approve` acts on a waiver, which names a repository; list repository patterns, or `**` for every repository"
            ],
        );
        check(
            &[Pull],
            &["Prod"],
            &["**"],
            expect![
                "err role `r` permission 0 names stage `Prod`, which is not a stage name; use 1 to 32 lowercase letters, digits and single `-`, or `*` for every stage"
            ],
        );
        check(
            &[Pull],
            &["dev"],
            &["a\" || true || \""],
            expect![[
                r#"err role `r` permission 0 has an invalid repository pattern: pattern `a" || true || "` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"#
            ]],
        );
        check(
            &[Pull],
            &["dev"],
            &["a\\"],
            expect![[
                r#"err role `r` permission 0 has an invalid repository pattern: pattern `a\` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"#
            ]],
        );
        check(
            &[Pull],
            &["dev"],
            &["a\nb"],
            expect![[
                r#"err role `r` permission 0 has an invalid repository pattern: pattern `a\nb` contains a control character"#
            ]],
        );
        check(
            &[Pull],
            &["dev"],
            &[""],
            expect![
                "err role `r` permission 0 has an invalid repository pattern: pattern is empty; write the exact name, or `**` to match everything"
            ],
        );
    }

    /// Role patterns were Cedar `like` patterns, where `*` also matched `/`: such a `*` is refused
    /// with the spelling that keeps its meaning, never narrowed to one segment silently.
    #[test]
    fn refuses_a_star_that_used_to_cross_segments() {
        use Action::*;
        let refused = |pattern: &str, expect: Expect| check(&[Pull], &["dev"], &[pattern], expect);
        refused(
            "*",
            expect![
                "err role `r` permission 0 has an invalid repository pattern: pattern `*` has a `*` inside a segment, which in role `repositories` used to match `/` too and now stays within one segment; write `**` for every repository below"
            ],
        );
        refused(
            "team-42/*",
            expect![
                "err role `r` permission 0 has an invalid repository pattern: pattern `team-42/*` has a `*` inside a segment, which in role `repositories` used to match `/` too and now stays within one segment; write `team-42/**` for every repository below"
            ],
        );
        refused(
            "team-*",
            expect![
                "err role `r` permission 0 has an invalid repository pattern: pattern `team-*` has a `*` inside a segment, which in role `repositories` used to match `/` too and now stays within one segment; write an exact path, `PREFIX/**` for every repository below `PREFIX/`, or `**` for all"
            ],
        );
        refused(
            "*/app/**",
            expect![
                "err role `r` permission 0 has an invalid repository pattern: pattern `*/app/**` has a `*` inside a segment, which in role `repositories` used to match `/` too and now stays within one segment; write an exact path, `PREFIX/**` for every repository below `PREFIX/`, or `**` for all"
            ],
        );
        refused(
            "team/**/app",
            expect![
                "err role `r` permission 0 has an invalid repository pattern: pattern `team/**/app` has `**` other than as its whole last segment; use `*` within one `/` segment, or end the pattern with `/**` for every name below"
            ],
        );
        refused(
            "Team/app",
            expect![
                "err role `r` permission 0 has an invalid repository pattern: pattern `Team/app` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"
            ],
        );
        refused(
            "team/../app",
            expect![
                "err role `r` permission 0 has an invalid repository pattern: pattern `team/../app` has an empty, `.` or `..` segment"
            ],
        );
    }

    #[test]
    fn role_names() {
        for good in ["a", "release-approver", "k8s", &"a".repeat(64)] {
            assert!(is_role_name(good), "{good}");
        }
        for bad in ["", "A", "1a", "-a", "a_b", "a.b", "a\"", &"a".repeat(65)] {
            assert!(!is_role_name(bad), "{bad}");
        }
    }

    #[test]
    fn roles_from_a_table_take_their_keys_as_names() {
        let table: BTreeMap<String, RoleDefinition> = serde_json::from_value(serde_json::json!({
            "deployer": {"permissions": [{"actions": ["pull"], "stages": ["prod"], "repositories": ["**"]}]},
            "auditor": {"name": "auditor", "description": "reads", "permissions": [{"actions": ["audit.read"]}]},
        }))
        .unwrap();
        let roles = roles_from_table(table).unwrap();
        assert_eq!(roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["auditor", "deployer"]);
        assert_eq!(roles[1].permissions[0].actions, [Action::Pull]);

        let table: BTreeMap<String, RoleDefinition> =
            serde_json::from_value(serde_json::json!({"a": {"name": "b"}})).unwrap();
        expect!["role table key `a` holds a role named `b`; drop `name` or make it match the key"]
            .assert_eq(&roles_from_table(table).unwrap_err().to_string());

        let err = serde_json::from_value::<RoleDefinition>(serde_json::json!({"permissions": [{"actions": ["pul"]}]}))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unknown action `pul`; the actions are `pull`"), "{err}");
    }
}
