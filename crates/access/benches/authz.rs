//! `cargo bench -p airlock-access --bench authz`: one Cedar decision as the registry makes it on
//! every request, over a site-sized configuration: 100 synthesized roles of 2 or 3 permissions
//! each over distinct repository patterns (plus the default roles and the shipped policies),
//! and 1,000 bindings of 100 principals to 10 roles each. The timed decision is a `pull` of
//! `prod/team-42/app` by a principal holding 10 roles, one of which permits it; its roles were
//! looked up from the bindings before timing, as the caller does. Also timed: a denial (no role
//! matches), the first decision for a role combination (its policy set is built, not found in
//! the cache), and building the authorizer (compile, parse and validate every policy). Budget:
//! p50 at most 50 µs per decision.

use std::collections::HashMap;
use std::hint::black_box;

use airlock_access::authz::{
    Action, Authorizer, AuthzConfig, AuthzContext, POLICY_CACHE_MAX, Permission, Principal, PrincipalKind, Resource,
    RoleDefinition, default_compatible, default_conflicts, default_roles,
};
use criterion::{Criterion, criterion_group, criterion_main};

const ROLES: usize = 100;
const PRINCIPALS: usize = 100;
const ROLES_PER_PRINCIPAL: usize = 10;

fn permission(actions: &[Action], stages: &[&str], repositories: &[String]) -> Permission {
    Permission {
        actions: actions.to_vec(),
        stages: stages.iter().map(|s| (*s).to_owned()).collect(),
        repositories: repositories.to_vec(),
    }
}

/// Role `team-<i>`: pulls its team's repositories in staging and prod, pushes in dev, and every
/// other team also requests and approves promotions of its apps.
fn role(i: usize) -> RoleDefinition {
    let mut permissions = vec![
        permission(&[Action::Pull], &["staging", "prod"], &[format!("team-{i}/**")]),
        permission(&[Action::Push, Action::Delete], &["dev"], &[format!("team-{i}/**"), format!("shared/team-{i}/**")]),
    ];
    if i.is_multiple_of(2) {
        permissions.push(permission(
            &[Action::PromoteRequest, Action::PromoteApprove],
            &["*"],
            &[format!("team-{i}/app/**")],
        ));
    }
    RoleDefinition { name: format!("team-{i}"), description: format!("team {i}"), permissions }
}

fn config() -> AuthzConfig {
    let mut roles = default_roles();
    roles.extend((0..ROLES).map(role));
    AuthzConfig { roles, custom_policies: None, conflicts: default_conflicts(), compatible: default_compatible() }
}

/// 1,000 bindings: principal `user-<p>` holds `team-<p>` and 9 other teams' roles.
fn bindings() -> Vec<(String, String)> {
    (0..PRINCIPALS)
        .flat_map(|p| {
            (0..ROLES_PER_PRINCIPAL).map(move |k| (format!("user-{p}"), format!("team-{}", (p + k * 7) % ROLES)))
        })
        .collect()
}

fn authz(c: &mut Criterion) {
    let config = config();
    let authorizer = Authorizer::new(&config).expect("authorizer");
    let mut by_principal: HashMap<String, Vec<String>> = HashMap::new();
    for (principal, role) in bindings() {
        by_principal.entry(principal).or_default().push(role);
    }
    assert_eq!(by_principal.values().map(Vec::len).sum::<usize>(), 1000);
    let principal = Principal {
        kind: PrincipalKind::User,
        id: "user-42".into(),
        roles: by_principal.get("user-42").expect("bindings").clone(),
    };
    assert_eq!(principal.roles.len(), ROLES_PER_PRINCIPAL);
    let context = AuthzContext {
        now: 1_780_272_000,
        source_ip: "192.0.2.7".into(),
        mfa_fresh: true,
        stage_frozen: false,
        incident_mode: false,
        origin: None,
    };
    let app = Resource::Repository { stage: "prod".into(), path: "team-42/app".into(), gated: true };
    let other = Resource::Repository { stage: "prod".into(), path: "team-43/app".into(), gated: true };

    let decision = authorizer.authorize(&principal, Action::Pull, &app, &context);
    assert!(decision.allowed && decision.reasons == ["role.team-42.0"], "{decision:?}");
    let decision = authorizer.authorize(&principal, Action::Pull, &other, &context);
    assert!(!decision.allowed && decision.errors.is_empty(), "{decision:?}");

    c.bench_function("authorize pull prod/team-42/app, 10 of 108 roles (allow)", |b| {
        b.iter(|| authorizer.authorize(black_box(&principal), Action::Pull, black_box(&app), black_box(&context)))
    });
    c.bench_function("authorize pull prod/team-43/app, 10 of 108 roles (deny)", |b| {
        b.iter(|| authorizer.authorize(black_box(&principal), Action::Pull, black_box(&other), black_box(&context)))
    });
    // Five times more combinations of 10 roles than the policy-set cache holds, visited in
    // turn: nearly every decision builds its policy set, as the first decision for a
    // combination does. Combination `n` holds `team-42` and three roles read from `n`'s digits
    // (so no two combinations are the same set), plus six more.
    let combinations: Vec<Principal> = (0..5 * POLICY_CACHE_MAX)
        .map(|n| Principal {
            kind: PrincipalKind::User,
            id: "user-42".into(),
            roles: ["team-42".to_owned()]
                .into_iter()
                .chain([n % ROLES, n / ROLES % ROLES, n / (ROLES * ROLES)].map(|r| format!("team-{r}")))
                .chain((1..=6).map(|k| format!("team-{}", (n + k * 11) % ROLES)))
                .collect(),
        })
        .collect();
    let mut next = combinations.iter().cycle();
    c.bench_function("authorize pull prod/team-42/app, a new role combination each time (allow)", |b| {
        b.iter(|| {
            let principal = next.next().expect("cycle");
            authorizer.authorize(black_box(principal), Action::Pull, black_box(&app), black_box(&context))
        })
    });
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function("Authorizer::new, 108 roles", |b| b.iter(|| Authorizer::new(black_box(&config))));
    group.finish();
}

criterion_group!(benches, authz);
criterion_main!(benches);
