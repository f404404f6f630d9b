//! Cedar authorization: the default roles' full authorization matrix against a table written
//! out by hand, the separation-of-duties rules (static conflicts and the shipped `forbid`s),
//! custom policies and the configuration errors, and a property test that arbitrary input never
//! panics and never gains access through a role that is not defined.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::collections::BTreeSet;
use std::sync::LazyLock;

use airlock_access::authz::{
    Action, Authorizer, AuthzConfig, AuthzContext, AuthzError, Permission, Principal, PrincipalKind, Resource,
    ResourceKind, RoleDefinition, SodError, compile_role, default_conflicts, default_roles,
};
use expect_test::{Expect, expect, expect_file};
use proptest::prelude::*;

const STAGES: [&str; 3] = ["dev", "staging", "prod"];
const ME: &str = "alice";
const SOMEONE_ELSE: &str = "bob";

static DEFAULTS: LazyLock<Authorizer> = LazyLock::new(|| Authorizer::new(&AuthzConfig::defaults()).unwrap());

fn user(roles: &[&str]) -> Principal {
    Principal { kind: PrincipalKind::User, id: ME.into(), roles: roles.iter().map(|r| (*r).to_owned()).collect() }
}

fn service_account(roles: &[&str]) -> Principal {
    Principal { kind: PrincipalKind::ServiceAccount, id: "ci-runner".into(), ..user(roles) }
}

/// Fresh MFA, nothing frozen, no incident.
fn context() -> AuthzContext {
    AuthzContext {
        now: 1_780_272_000,
        source_ip: "192.0.2.7".into(),
        mfa_fresh: true,
        stage_frozen: false,
        incident_mode: false,
        origin: None,
    }
}

/// The natural resource of `action` in `stage` (ignored for resources outside stages), owned,
/// requested and pushed by someone else. `dev` is pushable; `staging` and `prod` are gated.
fn resource(action: Action, stage: &str) -> Resource {
    match action.resource_kind() {
        ResourceKind::Repository => {
            Resource::Repository { stage: stage.into(), path: "team-42/app".into(), gated: stage != "dev" }
        }
        ResourceKind::Promotion => Resource::Promotion {
            id: "p-42".into(),
            repository: "team-42/app".into(),
            stage: stage.into(),
            requester_id: SOMEONE_ELSE.into(),
            pushers: vec![SOMEONE_ELSE.into()],
        },
        ResourceKind::Stage => Resource::Stage { name: stage.into(), gated: stage != "dev" },
        ResourceKind::Waiver => {
            Resource::Waiver { id: "w-7".into(), repository: "team-42/app".into(), requester_id: SOMEONE_ELSE.into() }
        }
        ResourceKind::TrustRoot => Resource::TrustRoot,
        ResourceKind::AccessGrant => {
            Resource::AccessGrant { id: "g-3".into(), requester_id: SOMEONE_ELSE.into(), role: "deployer".into() }
        }
        ResourceKind::Log => Resource::Log,
    }
}

/// What the default roles permit, written out by hand: `role action stages...`, where the stages
/// are those in which the action is allowed, or `-` for an action on a resource outside any
/// stage, allowed. Every pair not listed is denied everywhere.
const EXPECTED: &str = "
developer         pull              dev staging
developer         push              dev
developer         delete            dev
developer         promote.request   dev staging prod
developer         waiver.request    -
developer         access.request    -
developer         audit.read        -
ci                pull              dev
ci                push              dev
ci                promote.request   dev staging prod
release-approver  pull              dev staging prod
release-approver  promote.approve   dev staging prod
release-approver  promote.reject    dev staging prod
release-approver  waiver.approve    -
release-approver  audit.read        -
deployer          pull              staging prod
key-admin         trust.propose     -
key-admin         trust.sign        -
key-admin         audit.read        -
access-admin      access.grant      -
access-admin      access.approve    -
access-admin      audit.read        -
operator          freeze            dev staging prod
operator          rollback          dev staging prod
operator          audit.read        -
auditor           audit.read        -
auditor           pull              dev staging prod
break-glass       promote.request   dev staging prod
";

/// The stages (or `-`) in which `role` may perform `action`, per [`EXPECTED`].
fn expected(role: &str, action: Action) -> Vec<&'static str> {
    EXPECTED
        .lines()
        .map(str::split_whitespace)
        .filter_map(|mut words| {
            let (r, a) = (words.next()?, words.next()?);
            (r == role && a == action.as_str()).then(|| words.collect::<Vec<_>>())
        })
        .next()
        .unwrap_or_default()
}

/// The stages to try `action` in: all three, or one for a resource outside any stage.
fn stages_for(action: Action) -> &'static [&'static str] {
    if action.resource_kind().has_stage() { &STAGES } else { &["-"] }
}

#[test]
fn expected_table_names_only_default_roles_and_real_actions() {
    let roles: BTreeSet<String> = default_roles().into_iter().map(|r| r.name).collect();
    for line in EXPECTED.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(roles.contains(words[0]), "{line}");
        let action: Action = words[1].parse().unwrap();
        for stage in &words[2..] {
            assert!(stages_for(action).contains(stage), "{line}");
        }
    }
}

#[test]
fn default_role_matrix() {
    let mut mismatches = Vec::new();
    let mut allowed = 0;
    for role in default_roles() {
        let principal = user(&[&role.name]);
        for action in Action::ALL {
            let expected = expected(&role.name, action);
            for &stage in stages_for(action) {
                let decision = DEFAULTS.authorize(&principal, action, &resource(action, stage), &context());
                assert!(decision.errors.is_empty(), "{} {action} {stage}: {:?}", role.name, decision.errors);
                let want = expected.contains(&stage);
                if decision.allowed != want {
                    mismatches.push(format!("{} {action} {stage}: got {:?}, want allowed={want}", role.name, decision));
                }
                if decision.allowed {
                    allowed += 1;
                    assert!(decision.reasons.iter().all(|r| r.starts_with(&format!("role.{}.", role.name))));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // The table above, counted: 48 allowed (role, action, stage) cells.
    assert_eq!(allowed, 48);
}

#[test]
fn an_authorizer_is_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Authorizer>();
    let decisions: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    DEFAULTS.authorize(&user(&["deployer"]), Action::Pull, &resource(Action::Pull, "prod"), &context())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap().allowed).collect()
    });
    assert_eq!(decisions, [true; 4]);
}

#[test]
fn no_role_no_access() {
    for principal in [user(&[]), service_account(&[]), user(&["not-a-role"])] {
        for action in Action::ALL {
            for &stage in stages_for(action) {
                let decision = DEFAULTS.authorize(&principal, action, &resource(action, stage), &context());
                // Denied by default, or by a shipped `forbid` (a push to a gated stage).
                assert!(!decision.allowed && decision.errors.is_empty(), "{action}: {decision:?}");
                assert!(decision.reasons.iter().all(|r| r.starts_with("airlock.")), "{action}: {decision:?}");
            }
        }
    }
}

/// Decides one request and shows it as `allow`/`deny`, the reasons and any errors.
fn show(
    authorizer: &Authorizer,
    principal: &Principal,
    action: Action,
    resource: &Resource,
    context: &AuthzContext,
) -> String {
    let decision = authorizer.authorize(principal, action, resource, context);
    let mut out = if decision.allowed { "allow".to_owned() } else { "deny".to_owned() };
    for reason in &decision.reasons {
        out.push_str(&format!(" {reason}"));
    }
    for error in &decision.errors {
        out.push_str(&format!("\nerror: {error}"));
    }
    out
}

/// [`show`], compared with a snapshot.
fn check(
    authorizer: &Authorizer,
    principal: &Principal,
    action: Action,
    resource: &Resource,
    context: &AuthzContext,
    expect: Expect,
) {
    expect.assert_eq(&show(authorizer, principal, action, resource, context));
}

fn promotion(requester: &str, pushers: &[&str]) -> Resource {
    Resource::Promotion {
        id: "p-42".into(),
        repository: "team-42/app".into(),
        stage: "prod".into(),
        requester_id: requester.into(),
        pushers: pushers.iter().map(|p| (*p).to_owned()).collect(),
    }
}

#[test]
fn self_approval_is_refused_even_for_a_release_approver() {
    let approver = user(&["release-approver"]);
    let a = Action::PromoteApprove;
    check(
        &DEFAULTS,
        &approver,
        a,
        &promotion(SOMEONE_ELSE, &[SOMEONE_ELSE]),
        &context(),
        expect!["allow role.release-approver.1"],
    );
    check(
        &DEFAULTS,
        &approver,
        a,
        &promotion(ME, &[SOMEONE_ELSE]),
        &context(),
        expect!["deny airlock.no-self-approval"],
    );
    // Rejecting one's own request is not an approval.
    check(
        &DEFAULTS,
        &approver,
        Action::PromoteReject,
        &promotion(ME, &[ME]),
        &context(),
        expect!["allow role.release-approver.1"],
    );
}

#[test]
fn approving_an_artifact_one_pushed_is_refused() {
    let approver = user(&["release-approver", "developer"]);
    let resource = promotion(SOMEONE_ELSE, &["carol", ME]);
    check(
        &DEFAULTS,
        &approver,
        Action::PromoteApprove,
        &resource,
        &context(),
        expect!["deny airlock.no-approving-own-push"],
    );
    let both = promotion(ME, &[ME]);
    check(
        &DEFAULTS,
        &approver,
        Action::PromoteApprove,
        &both,
        &context(),
        expect!["deny airlock.no-approving-own-push airlock.no-self-approval"],
    );
}

#[test]
fn self_approval_of_waivers_and_access_is_refused() {
    let waiver = |requester: &str| Resource::Waiver {
        id: "w-7".into(),
        repository: "team-42/app".into(),
        requester_id: requester.into(),
    };
    let approver = user(&["release-approver"]);
    check(
        &DEFAULTS,
        &approver,
        Action::WaiverApprove,
        &waiver(SOMEONE_ELSE),
        &context(),
        expect!["allow role.release-approver.2"],
    );
    check(&DEFAULTS, &approver, Action::WaiverApprove, &waiver(ME), &context(), expect!["deny airlock.no-self-waiver"]);

    let grant = |requester: &str| Resource::AccessGrant {
        id: "g-3".into(),
        requester_id: requester.into(),
        role: "access-admin".into(),
    };
    let admin = user(&["access-admin"]);
    check(
        &DEFAULTS,
        &admin,
        Action::AccessApprove,
        &grant(SOMEONE_ELSE),
        &context(),
        expect!["allow role.access-admin.0"],
    );
    check(
        &DEFAULTS,
        &admin,
        Action::AccessApprove,
        &grant(ME),
        &context(),
        expect!["deny airlock.no-self-access-approval"],
    );
}

#[test]
fn a_service_account_holding_release_approver_cannot_approve() {
    let bot = service_account(&["release-approver", "access-admin"]);
    for action in [Action::PromoteApprove, Action::WaiverApprove, Action::AccessApprove] {
        let shown = show(&DEFAULTS, &bot, action, &resource(action, "prod"), &context());
        assert_eq!(shown, "deny airlock.service-accounts-do-not-approve", "{action}");
    }
    // Its other permissions still hold, and it needs no second factor for them.
    let stale = AuthzContext { mfa_fresh: false, ..context() };
    check(
        &DEFAULTS,
        &bot,
        Action::PromoteReject,
        &promotion(SOMEONE_ELSE, &[]),
        &stale,
        expect!["allow role.release-approver.1"],
    );
}

#[test]
fn approval_without_fresh_mfa_is_refused() {
    let stale = AuthzContext { mfa_fresh: false, ..context() };
    let approver = user(&["release-approver", "access-admin", "key-admin"]);
    for action in [Action::PromoteApprove, Action::WaiverApprove, Action::AccessApprove, Action::TrustSign] {
        let shown = show(&DEFAULTS, &approver, action, &resource(action, "prod"), &stale);
        assert_eq!(shown, "deny airlock.approval-needs-fresh-mfa", "{action}");
        assert!(DEFAULTS.authorize(&approver, action, &resource(action, "prod"), &context()).allowed, "{action}");
    }
    // Reading needs no second factor.
    check(
        &DEFAULTS,
        &approver,
        Action::Pull,
        &resource(Action::Pull, "prod"),
        &stale,
        expect!["allow role.release-approver.0"],
    );
}

#[test]
fn a_frozen_stage_refuses_promotion_requests_and_approvals() {
    let frozen = AuthzContext { stage_frozen: true, ..context() };
    let developer = user(&["developer"]);
    check(
        &DEFAULTS,
        &developer,
        Action::PromoteRequest,
        &promotion(ME, &[ME]),
        &frozen,
        expect!["deny airlock.frozen-stage"],
    );
    check(
        &DEFAULTS,
        &developer,
        Action::PromoteRequest,
        &promotion(ME, &[ME]),
        &context(),
        expect!["allow role.developer.2"],
    );
    let approver = user(&["release-approver"]);
    check(
        &DEFAULTS,
        &approver,
        Action::PromoteApprove,
        &promotion(SOMEONE_ELSE, &[]),
        &frozen,
        expect!["deny airlock.frozen-stage"],
    );
    check(
        &DEFAULTS,
        &approver,
        Action::PromoteReject,
        &promotion(SOMEONE_ELSE, &[]),
        &frozen,
        expect!["allow role.release-approver.1"],
    );
}

#[test]
fn no_role_writes_to_a_gated_stage() {
    let prod_pusher = RoleDefinition {
        name: "prod-pusher".into(),
        description: "tries to push to prod".into(),
        permissions: vec![Permission {
            actions: vec![Action::Push, Action::Delete],
            stages: vec!["*".into()],
            repositories: vec!["*".into()],
        }],
    };
    let authorizer = Authorizer::new(&AuthzConfig { roles: vec![prod_pusher], ..AuthzConfig::default() }).unwrap();
    let pusher = user(&["prod-pusher"]);
    for action in [Action::Push, Action::Delete] {
        check(&authorizer, &pusher, action, &resource(action, "dev"), &context(), expect!["allow role.prod-pusher.0"]);
        check(
            &authorizer,
            &pusher,
            action,
            &resource(action, "prod"),
            &context(),
            expect!["deny airlock.gated-stage-read-only"],
        );
    }
}

#[test]
fn repository_patterns_match_the_path_after_the_stage() {
    let team = RoleDefinition {
        name: "team-42".into(),
        description: String::new(),
        permissions: vec![Permission {
            actions: vec![Action::Pull, Action::PromoteApprove],
            stages: vec!["prod".into()],
            repositories: vec!["team-42/*".into()],
        }],
    };
    let authorizer = Authorizer::new(&AuthzConfig { roles: vec![team], ..AuthzConfig::default() }).unwrap();
    let member = user(&["team-42"]);
    let repo = |stage: &str, path: &str| Resource::Repository { stage: stage.into(), path: path.into(), gated: true };
    let pull = |r: &Resource| authorizer.authorize(&member, Action::Pull, r, &context()).allowed;
    assert!(pull(&repo("prod", "team-42/app")));
    assert!(pull(&repo("prod", "team-42/app/v2")), "`*` spans `/`");
    assert!(!pull(&repo("prod", "team-43/app")));
    assert!(!pull(&repo("prod", "team-42")));
    assert!(!pull(&repo("staging", "team-42/app")));
    assert!(!pull(&repo("prod", "prod/team-42/app")), "patterns do not include the stage");
    let approve = |path: &str| {
        let p = Resource::Promotion {
            id: "p".into(),
            repository: path.into(),
            stage: "prod".into(),
            requester_id: SOMEONE_ELSE.into(),
            pushers: vec![],
        };
        authorizer.authorize(&member, Action::PromoteApprove, &p, &context()).allowed
    };
    assert!(approve("team-42/app"));
    assert!(!approve("team-43/app"));
}

#[test]
fn an_action_on_the_wrong_resource_is_denied_with_an_error() {
    let auditor = user(&["auditor"]);
    check(
        &DEFAULTS,
        &auditor,
        Action::Pull,
        &Resource::Log,
        &context(),
        expect![[r#"
            deny
            error: action `pull` acts on a repository, not on the audit log"#]],
    );
}

#[test]
fn too_many_roles_deny_with_an_error() {
    let roles: Vec<String> = (0..300).map(|i| format!("r{i}")).chain(["auditor".to_owned()]).collect();
    let principal = Principal { kind: PrincipalKind::User, id: ME.into(), roles };
    check(
        &DEFAULTS,
        &principal,
        Action::AuditRead,
        &Resource::Log,
        &context(),
        expect![[r#"
            deny
            error: principal `alice` holds 301 roles; the limit is 256"#]],
    );
}

// Separation of duties: static conflicts.

fn held(roles: &[&str]) -> Vec<String> {
    roles.iter().map(|r| (*r).to_owned()).collect()
}

#[test]
fn conflicting_grants_are_refused_both_ways() {
    assert_eq!(
        default_conflicts(),
        [("key-admin".to_owned(), "release-approver".to_owned()), ("access-admin".to_owned(), "deployer".to_owned())]
    );
    for (a, b) in default_conflicts() {
        assert_eq!(
            DEFAULTS.check_grant(&held(&["developer", &a]), &b),
            Err(SodError::Conflict { adding: b.clone(), held: a.clone() })
        );
        assert_eq!(
            DEFAULTS.check_grant(&held(&[&b]), &a),
            Err(SodError::Conflict { adding: a.clone(), held: b.clone() })
        );
    }
    expect!["granting role `key-admin` to a holder of role `release-approver` breaks separation of duties: the two roles conflict; revoke `release-approver` first or grant `key-admin` to someone else"]
        .assert_eq(&DEFAULTS.check_grant(&held(&["release-approver"]), "key-admin").unwrap_err().to_string());
}

#[test]
fn non_conflicting_grants_are_allowed() {
    assert_eq!(DEFAULTS.check_grant(&held(&["developer", "auditor"]), "deployer"), Ok(()));
    assert_eq!(DEFAULTS.check_grant(&held(&["key-admin"]), "access-admin"), Ok(()));
    assert_eq!(DEFAULTS.check_grant(&held(&[]), "release-approver"), Ok(()));
    assert_eq!(DEFAULTS.check_grant(&held(&["deployer"]), "deployer"), Ok(()));
}

#[test]
fn granting_an_unknown_role_is_refused() {
    expect!["role `admin` is not defined; define it under `[roles]` or check the name"]
        .assert_eq(&DEFAULTS.check_grant(&held(&[]), "admin").unwrap_err().to_string());
}

#[test]
fn held_roles_are_checked_together() {
    assert_eq!(DEFAULTS.check_held(&held(&["developer", "deployer", "auditor"])), Ok(()));
    expect!["roles `deployer` and `access-admin` are held together, which breaks separation of duties: the two roles conflict; revoke one of them"]
        .assert_eq(&DEFAULTS.check_held(&held(&["deployer", "auditor", "access-admin"])).unwrap_err().to_string());
    assert_eq!(DEFAULTS.check_held(&held(&["ghost"])), Err(SodError::UnknownRole { role: "ghost".into() }));
}

// Custom policies and configuration errors.

fn with_custom(source: &str) -> Result<Authorizer, AuthzError> {
    Authorizer::new(&AuthzConfig { custom_policies: Some(source.to_owned()), ..AuthzConfig::defaults() })
}

fn check_new(config: &AuthzConfig, expect: Expect) {
    let actual = match Authorizer::new(config) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    assert!(!actual.contains('\n'), "{actual}");
    expect.assert_eq(&actual);
}

fn check_custom(source: &str, expect: Expect) {
    check_new(&AuthzConfig { custom_policies: Some(source.to_owned()), ..AuthzConfig::defaults() }, expect);
}

#[test]
fn a_custom_forbid_takes_effect() {
    let authorizer = with_custom(
        r#"
        // During an incident, nothing leaves prod.
        @id("incident-freezes-prod-pulls")
        forbid (principal, action == Airlock::Action::"pull", resource is Airlock::Repository)
        when { resource.stage == "prod" && context.incident_mode };
        "#,
    )
    .unwrap();
    let deployer = user(&["deployer"]);
    let incident = AuthzContext { incident_mode: true, ..context() };
    check(
        &authorizer,
        &deployer,
        Action::Pull,
        &resource(Action::Pull, "prod"),
        &context(),
        expect!["allow role.deployer.0"],
    );
    check(
        &authorizer,
        &deployer,
        Action::Pull,
        &resource(Action::Pull, "prod"),
        &incident,
        expect!["deny incident-freezes-prod-pulls"],
    );
    check(
        &authorizer,
        &deployer,
        Action::Pull,
        &resource(Action::Pull, "staging"),
        &incident,
        expect!["allow role.deployer.0"],
    );
    assert!(authorizer.policy_ids().contains(&"incident-freezes-prod-pulls".to_owned()));
}

#[test]
fn a_custom_permit_takes_effect_but_not_over_a_shipped_forbid() {
    let authorizer = with_custom(
        r#"@id("alice-pushes")
        permit (principal == Airlock::User::"alice", action == Airlock::Action::"push", resource is Airlock::Repository);"#,
    )
    .unwrap();
    check(
        &authorizer,
        &user(&[]),
        Action::Push,
        &resource(Action::Push, "dev"),
        &context(),
        expect!["allow alice-pushes"],
    );
    check(
        &authorizer,
        &user(&[]),
        Action::Push,
        &resource(Action::Push, "prod"),
        &context(),
        expect!["deny airlock.gated-stage-read-only"],
    );
}

#[test]
fn custom_policies_that_do_not_validate_are_refused() {
    check_custom(
        r#"@id("owner-only") forbid (principal, action == Airlock::Action::"pull", resource is Airlock::Repository) when { resource.owner != principal.id };"#,
        expect![
            "custom policy `owner-only` does not validate against the schema: attribute `owner` on entity type `Airlock::Repository` not found; fix the policy or remove it"
        ],
    );
    check_custom(
        r#"@id("no-publish") forbid (principal, action == Airlock::Action::"publish", resource);"#,
        expect![[
            r#"custom policy `no-publish` does not validate against the schema: unrecognized action `Airlock::Action::"publish"`; fix the policy or remove it"#
        ]],
    );
    check_custom(
        r#"@id("typo") forbid (principal, action, resource is Airlock::Repo);"#,
        expect![
            "custom policy `typo` does not validate against the schema: unrecognized entity type `Airlock::Repo`; fix the policy or remove it"
        ],
    );
    check_custom(
        r#"@id("wrong-type") forbid (principal, action == Airlock::Action::"pull", resource is Airlock::Repository) when { resource.gated == "yes" };"#,
        expect![
            "custom policy `wrong-type` does not validate against the schema: the types Bool and String are not compatible; fix the policy or remove it"
        ],
    );
    check_custom(
        r#"@id("never") forbid (principal, action, resource) when { false };"#,
        expect![
            "custom policy `never` can never apply to a request the schema allows: policy is impossible: the policy expression evaluates to false for all valid requests; fix its scope or conditions, or remove it"
        ],
    );
}

#[test]
fn custom_policy_ids_are_checked() {
    check_custom(
        r#"@id("airlock.no-self-approval") permit (principal, action, resource);"#,
        expect![
            "custom policy id `airlock.no-self-approval` is already the id of a shipped policy; give the custom policy another `@id`"
        ],
    );
    check_custom(
        r#"@id("role.deployer.0") permit (principal, action, resource);"#,
        expect![
            "custom policy id `role.deployer.0` is already the id of a role permission; give the custom policy another `@id`"
        ],
    );
    check_custom(
        r#"@id("a") forbid (principal, action, resource) when { context.incident_mode }; @id("a") forbid (principal, action, resource) when { context.stage_frozen };"#,
        expect![
            "custom policy id `a` is already the id of another custom policy; give the custom policy another `@id`"
        ],
    );
    check_custom(
        r#"@id("role.superuser.0") permit (principal, action, resource);"#,
        expect![
            "custom policy id `role.superuser.0` starts with `role.`, which is reserved for role permissions; give the custom policy another `@id`"
        ],
    );
    check_custom(
        r#"@id("no spaces") forbid (principal, action, resource) when { context.incident_mode };"#,
        expect![
            "custom policy id `no spaces` is invalid: use 1 to 128 letters, digits, `.`, `_` and `-`, starting with a letter or digit"
        ],
    );
    check_custom(
        r#"@id("ok") forbid (principal, action, resource) when { context.incident_mode }; forbid (principal, action, resource) when { context.stage_frozen };"#,
        expect![[r#"custom policy 2 (counting from 1) has no `@id`; start it with `@id("your-policy-name")`"#]],
    );
}

#[test]
fn custom_policies_that_do_not_parse_or_are_templates_are_refused() {
    check_custom(
        r#"@id("x") forbid (principal, action, resource) when { context.incident_mode "#,
        expect!["custom policies do not parse: unexpected end of input"],
    );
    check_custom(
        r#"@id("tpl") permit (principal == ?principal, action, resource);"#,
        expect![
            "custom policy `tpl` is a template; custom policies must be static, so replace `?principal` and `?resource`"
        ],
    );
    check_custom("", expect!["ok"]);
}

fn role(name: &str, permissions: Vec<Permission>) -> RoleDefinition {
    RoleDefinition { name: name.into(), description: String::new(), permissions }
}

fn pull(repositories: &[&str]) -> Permission {
    Permission {
        actions: vec![Action::Pull],
        stages: vec!["dev".into()],
        repositories: repositories.iter().map(|r| (*r).to_owned()).collect(),
    }
}

#[test]
fn role_configuration_errors() {
    let config = |roles: Vec<RoleDefinition>, conflicts: &[(&str, &str)]| AuthzConfig {
        roles,
        custom_policies: None,
        conflicts: conflicts.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect(),
    };
    check_new(
        &config(vec![role("r", vec![pull(&["ok/*", r#"x" || principal == principal || ""#])])], &[]),
        expect![[
            r#"role `r` permission 0 has an invalid repository pattern: pattern `x" || principal == principal || "` contains `"`; repository paths never contain it, so remove it"#
        ]],
    );
    check_new(
        &config(vec![role("Release", vec![])], &[]),
        expect![
            "role name `Release` is invalid: start with a lowercase letter, then use up to 63 lowercase letters, digits and `-`"
        ],
    );
    check_new(
        &config(vec![role("r", vec![pull(&["*"])]), role("r", vec![])], &[]),
        expect!["role `r` is defined twice; define each role once"],
    );
    check_new(
        &config(vec![role("r", vec![])], &[("r", "s")]),
        expect!["role conflict names role `s`, which is not defined; define it under `[roles]` or fix the name"],
    );
    check_new(
        &config(vec![role("r", vec![])], &[("r", "r")]),
        expect!["role conflict pairs role `r` with itself; a conflict names two different roles"],
    );
    check_new(&config(vec![role("r", vec![pull(&["é/*", "a b"])])], &[]), expect!["ok"]);
}

#[test]
fn default_policies_are_listed_and_compiled_as_recorded() {
    expect![[r#"
        airlock.approval-needs-fresh-mfa
        airlock.frozen-stage
        airlock.gated-stage-read-only
        airlock.no-approving-own-push
        airlock.no-self-access-approval
        airlock.no-self-approval
        airlock.no-self-waiver
        airlock.service-accounts-do-not-approve
        role.access-admin.0
        role.auditor.0
        role.auditor.1
        role.break-glass.0
        role.ci.0
        role.ci.1
        role.deployer.0
        role.developer.0
        role.developer.1
        role.developer.2
        role.developer.3
        role.developer.4
        role.key-admin.0
        role.operator.0
        role.operator.1
        role.operator.2
        role.release-approver.0
        role.release-approver.1
        role.release-approver.2
        role.release-approver.3"#]]
    .assert_eq(&DEFAULTS.policy_ids().join("\n"));
    let compiled: Vec<String> =
        default_roles().iter().flat_map(|r| compile_role(r).unwrap()).map(|p| p.text().to_owned()).collect();
    let header = "// The default roles (`default_roles()`), compiled to Cedar by `compile_role`: one `permit` per\n\
                  // permission. Generated; regenerate with\n\
                  // `UPDATE_EXPECT=1 cargo test -p airlock-access --test authz` and review the diff.\n\n";
    expect_file!["data/authz/default-roles.cedar"].assert_eq(&format!("{header}{}\n", compiled.join("\n\n")));
}

// Arbitrary input.

fn default_role_names() -> BTreeSet<String> {
    default_roles().into_iter().map(|r| r.name).collect()
}

/// Every resource shape, built from arbitrary strings.
fn arbitrary_resources(stage: &str, path: &str, id: &str, gated: bool) -> Vec<Resource> {
    vec![
        Resource::Stage { name: stage.into(), gated },
        Resource::Repository { stage: stage.into(), path: path.into(), gated },
        Resource::Promotion {
            id: id.into(),
            repository: path.into(),
            stage: stage.into(),
            requester_id: id.into(),
            pushers: vec![id.into(), path.into()],
        },
        Resource::Waiver { id: id.into(), repository: path.into(), requester_id: stage.into() },
        Resource::TrustRoot,
        Resource::AccessGrant { id: id.into(), requester_id: path.into(), role: stage.into() },
        Resource::Log,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// With a role outside the defaults, nothing is allowed, whatever the strings; with a
    /// default role, nothing panics; an action name outside the sixteen does not parse.
    #[test]
    fn authorize_never_panics_and_unknown_roles_never_allow(
        stage in ".{0,40}",
        path in ".{0,80}",
        role in ".{0,40}",
        action in ".{0,24}",
        id in ".{0,24}",
        gated in any::<bool>(),
        service in any::<bool>(),
        default_role in prop::sample::select(default_role_names().into_iter().collect::<Vec<_>>()),
    ) {
        if Action::ALL.iter().all(|a| a.as_str() != action) {
            prop_assert!(action.parse::<Action>().is_err());
        }
        let kind = if service { PrincipalKind::ServiceAccount } else { PrincipalKind::User };
        let outsider = !default_role_names().contains(&role);
        let strangers = Principal { kind, id: id.clone(), roles: vec![role.clone()] };
        let insider = Principal { kind, id: id.clone(), roles: vec![default_role, role.clone()] };
        let ctx = AuthzContext { source_ip: path.clone(), stage_frozen: gated, ..context() };
        for resource in arbitrary_resources(&stage, &path, &id, gated) {
            for action in Action::ALL {
                let decision = DEFAULTS.authorize(&strangers, action, &resource, &ctx);
                if outsider {
                    prop_assert!(!decision.allowed, "{action} {resource:?} {decision:?}");
                }
                if action.resource_kind() == resource.kind() {
                    prop_assert!(decision.errors.is_empty(), "{decision:?}");
                }
                let decision = DEFAULTS.authorize(&insider, action, &resource, &ctx);
                prop_assert!(!decision.allowed || decision.errors.is_empty());
            }
        }
    }
}
