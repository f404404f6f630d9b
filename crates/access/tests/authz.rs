//! Cedar authorization: the default roles' full authorization matrix against a table written
//! out by hand, the separation-of-duties rules (the conflicts, `*` and compatible pairs, checked
//! at grant time and over the roles in force, bound and just in time, at every decision; and the
//! shipped `forbid`s), custom policies and the configuration errors, and property tests that
//! arbitrary input never panics and never gains access through a role that is not defined, and
//! that conflicting roles in force never allow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::collections::BTreeSet;
use std::sync::LazyLock;

use airlock_access::authz::{
    ANY_ROLE, Action, Authorizer, AuthzConfig, AuthzContext, AuthzError, Permission, Principal, PrincipalKind,
    Resource, ResourceKind, RoleDefinition, SOD_REASON, SodError, compile_role, default_compatible, default_conflicts,
    default_roles,
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
    let bot = service_account(&["release-approver"]);
    let admin_bot = service_account(&["access-admin"]);
    for (bot, action) in
        [(&bot, Action::PromoteApprove), (&bot, Action::WaiverApprove), (&admin_bot, Action::AccessApprove)]
    {
        let shown = show(&DEFAULTS, bot, action, &resource(action, "prod"), &context());
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
    let approver = user(&["release-approver"]);
    // Three people: the three roles conflict.
    for (holder, action) in [
        (&approver, Action::PromoteApprove),
        (&approver, Action::WaiverApprove),
        (&user(&["access-admin"]), Action::AccessApprove),
        (&user(&["key-admin"]), Action::TrustSign),
    ] {
        let shown = show(&DEFAULTS, holder, action, &resource(action, "prod"), &stale);
        assert_eq!(shown, "deny airlock.approval-needs-fresh-mfa", "{action}");
        assert!(DEFAULTS.authorize(holder, action, &resource(action, "prod"), &context()).allowed, "{action}");
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
            repositories: vec!["**".into()],
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
            repositories: vec!["team-42/**".into()],
        }],
    };
    let authorizer = Authorizer::new(&AuthzConfig { roles: vec![team], ..AuthzConfig::default() }).unwrap();
    let member = user(&["team-42"]);
    let repo = |stage: &str, path: &str| Resource::Repository { stage: stage.into(), path: path.into(), gated: true };
    let pull = |r: &Resource| authorizer.authorize(&member, Action::Pull, r, &context()).allowed;
    assert!(pull(&repo("prod", "team-42/app")));
    assert!(pull(&repo("prod", "team-42/app/v2")), "`**` spans `/`");
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
    let shown =
        |pairs: Vec<(String, String)>| pairs.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>().join("\n");
    expect![[r#"
        release-approver access-admin
        release-approver key-admin
        release-approver deployer
        access-admin *
        key-admin deployer"#]]
    .assert_eq(&shown(default_conflicts()));
    expect!["access-admin auditor"].assert_eq(&shown(default_compatible()));
    for (a, b) in default_conflicts().into_iter().filter(|(a, b)| a != ANY_ROLE && b != ANY_ROLE) {
        assert_eq!(
            DEFAULTS.check_grant(&held(&["auditor", &a]), &b),
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
    assert_eq!(DEFAULTS.check_grant(&held(&["key-admin", "operator"]), "auditor"), Ok(()));
    assert_eq!(DEFAULTS.check_grant(&held(&["release-approver", "developer"]), "operator"), Ok(()));
    assert_eq!(DEFAULTS.check_grant(&held(&["access-admin"]), "access-admin"), Ok(()));
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

// Separation of duties at every decision: the roles in force (bound plus just-in-time).

/// The reason a decision names when the roles in force break separation of duties.
const SOD: &str = "airlock.separation-of-duties";

#[test]
fn the_separation_of_duties_reason_is_reserved() {
    assert_eq!(SOD_REASON, SOD);
    check_custom(
        r#"@id("airlock.separation-of-duties") forbid (principal, action, resource) when { context.incident_mode };"#,
        expect![
            "custom policy id `airlock.separation-of-duties` starts with `airlock.`, which is reserved for shipped policies; give the custom policy another `@id`"
        ],
    );
}

/// A principal whose roles in force are its `bound` roles plus the just-in-time grant `jit`.
fn elevated(bound: &[&str], jit: &str) -> Principal {
    let mut principal = user(bound);
    principal.roles.push(jit.to_owned());
    principal
}

/// Asserts that `a` and `b` are kept apart: neither is granted to a holder of the other, both
/// are refused as bindings held together, and a principal holding both in force (bound, or one
/// of them just in time, in either order, person or machine) is denied every action in every
/// stage, naming the two roles.
fn assert_kept_apart(authorizer: &Authorizer, a: &str, b: &str) {
    assert_eq!(
        authorizer.check_grant(&held(&[a]), b),
        Err(SodError::Conflict { adding: b.to_owned(), held: a.to_owned() }),
        "{a} + {b}"
    );
    assert_eq!(
        authorizer.check_grant(&held(&["auditor", b]), a),
        Err(SodError::Conflict { adding: a.to_owned(), held: b.to_owned() }),
        "{b} + {a}"
    );
    assert_eq!(
        authorizer.check_held(&held(&[a, b])),
        Err(SodError::HeldTogether { first: a.to_owned(), second: b.to_owned() }),
        "{a} + {b}"
    );
    for (principal, first, second) in
        [(user(&[a, b]), a, b), (elevated(&[b], a), b, a), (elevated(&[a], b), a, b), (service_account(&[a, b]), a, b)]
    {
        let id = principal.id.clone();
        for action in Action::ALL {
            for &stage in stages_for(action) {
                let decision = authorizer.authorize(&principal, action, &resource(action, stage), &context());
                assert!(!decision.allowed, "{a} + {b}: {action} {stage}: {decision:?}");
                assert_eq!(decision.reasons, [SOD], "{a} + {b}: {action} {stage}");
                assert_eq!(
                    decision.errors,
                    [format!(
                        "`{id}` holds `{first}` and `{second}` together, which separation of duties forbids; revoke one of them"
                    )],
                    "{a} + {b}: {action} {stage}"
                );
            }
        }
    }
}

#[test]
fn a_jit_role_adds_its_permissions_to_the_bound_roles() {
    let pull_prod = |principal: &Principal| {
        DEFAULTS.authorize(principal, Action::Pull, &resource(Action::Pull, "prod"), &context()).allowed
    };
    assert!(!pull_prod(&user(&["developer"])));
    assert!(pull_prod(&elevated(&["developer"], "deployer")));
    check(
        &DEFAULTS,
        &elevated(&["developer"], "operator"),
        Action::Freeze,
        &resource(Action::Freeze, "prod"),
        &context(),
        expect!["allow role.operator.1"],
    );
    // The bound roles keep theirs.
    check(
        &DEFAULTS,
        &elevated(&["developer"], "deployer"),
        Action::Push,
        &resource(Action::Push, "dev"),
        &context(),
        expect!["allow role.developer.0"],
    );
}

#[test]
fn a_jit_grant_joining_conflicting_duties_is_never_usable() {
    // A key admin elevated to release approver approves nothing, signs nothing, reads nothing.
    let joined = elevated(&["key-admin"], "release-approver");
    check(
        &DEFAULTS,
        &joined,
        Action::PromoteApprove,
        &promotion(SOMEONE_ELSE, &[SOMEONE_ELSE]),
        &context(),
        expect![[r#"
            deny airlock.separation-of-duties
            error: `alice` holds `key-admin` and `release-approver` together, which separation of duties forbids; revoke one of them"#]],
    );
    for action in Action::ALL {
        for &stage in stages_for(action) {
            let decision = DEFAULTS.authorize(&joined, action, &resource(action, stage), &context());
            assert!(!decision.allowed, "{action} {stage}: {decision:?}");
            assert_eq!(decision.reasons, [SOD], "{action} {stage}");
        }
    }
    // Asking for it is refused already, with the bound and just-in-time roles in force.
    assert_eq!(
        DEFAULTS.check_grant(&joined.roles[..1], "release-approver"),
        Err(SodError::Conflict { adding: "release-approver".into(), held: "key-admin".into() })
    );
    assert_eq!(
        DEFAULTS.check_grant(&held(&["developer", "deployer"]), "key-admin"),
        Err(SodError::Conflict { adding: "key-admin".into(), held: "deployer".into() })
    );
}

#[test]
fn an_approver_who_also_grants_access_acts_as_neither() {
    assert_kept_apart(&DEFAULTS, "release-approver", "access-admin");
}

#[test]
fn an_approver_who_also_manages_keys_acts_as_neither() {
    assert_kept_apart(&DEFAULTS, "release-approver", "key-admin");
}

#[test]
fn an_approver_who_also_deploys_acts_as_neither() {
    assert_kept_apart(&DEFAULTS, "release-approver", "deployer");
}

#[test]
fn a_key_admin_who_also_deploys_acts_as_neither() {
    assert_kept_apart(&DEFAULTS, "key-admin", "deployer");
}

#[test]
fn an_access_admin_holding_any_other_role_acts_as_neither() {
    for other in ["developer", "ci", "release-approver", "deployer", "key-admin", "operator", "break-glass"] {
        assert_kept_apart(&DEFAULTS, "access-admin", other);
    }
}

#[test]
fn an_access_admin_holding_a_role_defined_later_acts_as_neither() {
    // Like a role defined through the API: the authorizer is rebuilt with it, the conflicts
    // unchanged.
    let mut roles = default_roles();
    roles.push(role("release-manager", vec![pull(&["**"])]));
    let authorizer = Authorizer::new(&AuthzConfig { roles, ..AuthzConfig::defaults() }).unwrap();
    assert_kept_apart(&authorizer, "access-admin", "release-manager");
    assert_kept_apart(&authorizer, "release-manager", "access-admin");
    assert!(
        authorizer
            .authorize(
                &user(&["release-manager", "developer"]),
                Action::Pull,
                &resource(Action::Pull, "dev"),
                &context()
            )
            .allowed
    );
}

#[test]
fn an_access_admin_may_also_audit() {
    assert_eq!(DEFAULTS.check_grant(&held(&["access-admin"]), "auditor"), Ok(()));
    assert_eq!(DEFAULTS.check_grant(&held(&["auditor"]), "access-admin"), Ok(()));
    assert_eq!(DEFAULTS.check_held(&held(&["auditor", "access-admin"])), Ok(()));
    let both = elevated(&["auditor"], "access-admin");
    check(
        &DEFAULTS,
        &both,
        Action::AccessApprove,
        &resource(Action::AccessApprove, "-"),
        &context(),
        expect!["allow role.access-admin.0"],
    );
    check(&DEFAULTS, &both, Action::Pull, &resource(Action::Pull, "prod"), &context(), expect!["allow role.auditor.1"]);
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
        conflicts: pairs(conflicts),
        compatible: Vec::new(),
    };
    check_new(
        &config(vec![role("r", vec![pull(&["ok/**", r#"x" || principal == principal || ""#])])], &[]),
        expect![[
            r#"role `r` permission 0 has an invalid repository pattern: pattern `x" || principal == principal || "` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"#
        ]],
    );
    check_new(
        &config(vec![role("Release", vec![])], &[]),
        expect![
            "role name `Release` is invalid: start with a lowercase letter, then use up to 63 lowercase letters, digits and `-`"
        ],
    );
    check_new(
        &config(vec![role("r", vec![pull(&["**"])]), role("r", vec![])], &[]),
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
    // Repository patterns are in the repository alphabet: no other letters, no spaces.
    check_new(
        &config(vec![role("r", vec![pull(&["é/**"])])], &[]),
        expect![
            "role `r` permission 0 has an invalid repository pattern: pattern `é/**` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"
        ],
    );
    check_new(
        &config(vec![role("r", vec![pull(&["a b"])])], &[]),
        expect![
            "role `r` permission 0 has an invalid repository pattern: pattern `a b` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"
        ],
    );
    check_new(&config(vec![role("r", vec![pull(&["a.b/c_d-e/**", "x"])])], &[]), expect!["ok"]);
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

/// Roles `a`, `b`, `c` and `d`, each pulling in `dev`, with `conflicts` and `compatible`.
fn abcd(conflicts: &[(&str, &str)], compatible: &[(&str, &str)]) -> AuthzConfig {
    AuthzConfig {
        roles: ["a", "b", "c", "d"].into_iter().map(|r| role(r, vec![pull(&["**"])])).collect(),
        custom_policies: None,
        conflicts: pairs(conflicts),
        compatible: pairs(compatible),
    }
}

/// Which pairs of `a`..`d` the authorizer keeps apart, at grant time and at decision time
/// (which must agree), as `a+b` lines.
fn kept_apart(config: &AuthzConfig) -> String {
    let authorizer = Authorizer::new(config).unwrap();
    let roles = ["a", "b", "c", "d"];
    let mut out = Vec::new();
    for (i, a) in roles.iter().enumerate() {
        for b in &roles[i + 1..] {
            let granted = authorizer.check_grant(&held(&[a]), b).is_ok();
            assert_eq!(granted, authorizer.check_grant(&held(&[b]), a).is_ok(), "{a} {b}");
            let decision =
                authorizer.authorize(&user(&[a, b]), Action::Pull, &resource(Action::Pull, "dev"), &context());
            assert_eq!(granted, decision.allowed, "{a} {b}: {decision:?}");
            if !granted {
                out.push(format!("{a}+{b}"));
            }
        }
    }
    out.join(" ")
}

#[test]
fn any_role_conflicts_with_every_other_role_but_the_compatible_ones() {
    expect!["a+b a+c a+d"].assert_eq(&kept_apart(&abcd(&[("a", "*")], &[])));
    expect!["a+b a+c a+d"].assert_eq(&kept_apart(&abcd(&[("*", "a")], &[])));
    expect!["a+c"].assert_eq(&kept_apart(&abcd(&[("a", "*")], &[("a", "b"), ("d", "a")])));
    // A compatible pair exempts from `*` only: a pair naming both still conflicts.
    expect!["a+b a+c"].assert_eq(&kept_apart(&abcd(&[("a", "*"), ("b", "a")], &[("a", "b"), ("a", "d")])));
    // Both sides' `*`: `a` and `b` conflict with each other and with the rest.
    expect!["a+b a+c a+d b+c b+d"].assert_eq(&kept_apart(&abcd(&[("a", "*"), ("b", "*")], &[])));
    expect!["a+c a+d b+c b+d"].assert_eq(&kept_apart(&abcd(&[("a", "*"), ("b", "*")], &[("b", "a")])));
    // Compatible pairs without a `*` change nothing.
    expect!["c+d"].assert_eq(&kept_apart(&abcd(&[("c", "d")], &[("a", "b"), ("c", "d")])));
    expect![""].assert_eq(&kept_apart(&abcd(&[], &[])));
}

#[test]
fn any_role_counts_roles_the_configuration_does_not_define() {
    // An undefined role grants nothing, but holding it beside a role that conflicts with every
    // other role still denies.
    let authorizer = Authorizer::new(&abcd(&[("a", "*")], &[])).unwrap();
    let decision =
        authorizer.authorize(&user(&["a", "ghost"]), Action::Pull, &resource(Action::Pull, "dev"), &context());
    assert!(!decision.allowed);
    assert_eq!(decision.reasons, [SOD]);
    assert_eq!(authorizer.check_held(&held(&["a", "ghost"])), Err(SodError::UnknownRole { role: "ghost".into() }));
    assert!(
        authorizer.authorize(&user(&["b", "ghost"]), Action::Pull, &resource(Action::Pull, "dev"), &context()).allowed
    );
}

#[test]
fn separation_of_duties_configuration_errors() {
    let check = |conflicts: &[(&str, &str)], compatible: &[(&str, &str)], expect: Expect| {
        check_new(&abcd(conflicts, compatible), expect);
    };
    check(&[("a", "*"), ("*", "b")], &[("a", "b")], expect!["ok"]);
    check(
        &[("a", "*"), ("*", "*")],
        &[],
        expect![[
            r#"role conflict `["*", "*"]` pairs any role with any other; name a role on one side, like `["access-admin", "*"]`"#
        ]],
    );
    check(
        &[("*", "e")],
        &[],
        expect!["role conflict names role `e`, which is not defined; define it under `[roles]` or fix the name"],
    );
    check(
        &[("a", "*")],
        &[("a", "*")],
        expect!["compatible roles name `*`, which only a conflict may use; name two defined roles"],
    );
    check(
        &[("a", "*")],
        &[("*", "*")],
        expect!["compatible roles name `*`, which only a conflict may use; name two defined roles"],
    );
    check(
        &[("a", "*")],
        &[("a", "auditor")],
        expect![
            "compatible roles name role `auditor`, which is not defined; define it under `[roles]` or fix the name"
        ],
    );
    check(
        &[("a", "*")],
        &[("b", "b")],
        expect!["compatible roles pair role `b` with itself; a compatible pair names two different roles"],
    );
    let many: Vec<(&str, &str)> = vec![("a", "b"); 1025];
    check(&many, &[], expect!["1025 role conflicts are configured; the limit is 1024"]);
    check(&[], &many, expect!["1025 compatible role pairs are configured; the limit is 1024"]);
    check(&many[..1024], &many[..1024], expect!["ok"]);
    // The defaults name default roles: replacing the roles without them refuses the defaults.
    check_new(
        &AuthzConfig { roles: abcd(&[], &[]).roles, ..AuthzConfig::defaults() },
        expect![
            "role conflict names role `release-approver`, which is not defined; define it under `[roles]` or fix the name"
        ],
    );
    check_new(
        &AuthzConfig { roles: default_roles(), compatible: default_compatible(), ..AuthzConfig::default() },
        expect!["ok"],
    );
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

    /// Whatever roles are in force, bound or just in time, a set that holds two conflicting
    /// roles allows nothing.
    #[test]
    fn roles_in_force_that_break_separation_of_duties_never_allow(
        bound in prop::sample::subsequence(default_role_names().into_iter().collect::<Vec<_>>(), 0..4),
        jit in prop::sample::select(default_role_names().into_iter().collect::<Vec<_>>()),
        action in prop::sample::select(Action::ALL.to_vec()),
        stage in prop::sample::select(STAGES.to_vec()),
        mfa_fresh in any::<bool>(),
    ) {
        let mut roles = bound;
        roles.push(jit);
        let principal = Principal { kind: PrincipalKind::User, id: ME.into(), roles };
        let ctx = AuthzContext { mfa_fresh, ..context() };
        let decision = DEFAULTS.authorize(&principal, action, &resource(action, stage), &ctx);
        match DEFAULTS.check_held(&principal.roles) {
            Err(SodError::HeldTogether { .. }) => {
                prop_assert!(!decision.allowed, "{principal:?} {action} {stage}: {decision:?}");
                prop_assert_eq!(decision.reasons, [SOD]);
            }
            _ => prop_assert!(decision.reasons.iter().all(|r| r != SOD), "{principal:?}: {decision:?}"),
        }
    }
}
