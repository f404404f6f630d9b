//! Principals, their changes and epochs, and the grants that wait for approval.

use super::*;

pub async fn principals_change_with_their_epoch(store: &dyn MetadataStore) {
    let alice = PrincipalId::parse("alice").unwrap();
    assert_eq!(store.principal(&alice).await.unwrap(), None);
    let record = PrincipalRecord {
        id: alice.clone(),
        kind: PrincipalKind::User,
        epoch: 1,
        disabled: false,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned()),
        totp_secret: None,
        api_key_hash: None,
        api_key_expires_at: None,
        roles: vec!["developer".to_owned()],
        created_at: at(1),
        email: Some("alice@example.com".to_owned()),
        enrollment_hash: None,
        enrollment_expires_at: None,
    };
    let event = |kind| Event::allowed(kind, &actor(), at(2), Subject::default());
    let before = store.log_size().await.unwrap();
    assert!(store.create_principal(&record, &event(EventKind::PrincipalCreate)).await.unwrap());
    assert!(
        !store.create_principal(&record, &event(EventKind::PrincipalCreate)).await.unwrap(),
        "a name is taken once"
    );
    assert_eq!(store.principal(&alice).await.unwrap().as_ref(), Some(&record));
    let changes = [
        PrincipalChange::GrantRole { role: "auditor".to_owned() },
        PrincipalChange::RevokeRole { role: "developer".to_owned() },
        PrincipalChange::SetTotp { secret: Some("JBSWY3DPEHPK3PXP".to_owned()) },
        PrincipalChange::Disable,
    ];
    for (i, change) in changes.iter().enumerate() {
        let changed =
            store.change_principal(&alice, change, &event(EventKind::PrincipalChange)).await.unwrap().unwrap();
        assert_eq!(changed.epoch, 2 + i as u64, "every change bumps the epoch: {change:?}");
    }
    let now = store.principal(&alice).await.unwrap().unwrap();
    assert_eq!(now.roles, vec!["auditor".to_owned()]);
    assert_eq!(now.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
    assert!(now.disabled);
    let ghost = PrincipalId::parse("ghost").unwrap();
    assert_eq!(
        store.change_principal(&ghost, &PrincipalChange::Enable, &event(EventKind::PrincipalChange)).await.unwrap(),
        None
    );
    assert_eq!(
        store.log_size().await.unwrap(),
        before + 5,
        "the creation and each change are logged, the refusals are not"
    );
    let sa = PrincipalRecord {
        id: PrincipalId::parse("ci-payments").unwrap(),
        kind: PrincipalKind::ServiceAccount,
        password_hash: None,
        api_key_hash: Some("ab".repeat(32)),
        api_key_expires_at: Some(at(90)),
        roles: vec!["ci".to_owned()],
        email: None,
        ..record
    };
    assert!(store.create_principal(&sa, &event(EventKind::PrincipalCreate)).await.unwrap());
    let all: Vec<String> = store.principals().await.unwrap().into_iter().map(|p| p.id.to_string()).collect();
    assert_eq!(all, ["alice", "ci-payments"]);
}

/// User `id`, holding no role and no credential, created at 1.
fn user(id: &PrincipalId, email: Option<&str>) -> PrincipalRecord {
    PrincipalRecord { email: email.map(str::to_owned), ..PrincipalRecord::new(id, PrincipalKind::User, &[], at(1)) }
}

pub async fn grants_move_once_and_revocation_raises_the_epoch(store: &dyn MetadataStore) {
    let bob = PrincipalId::parse("bob").unwrap();
    let record = PrincipalRecord {
        enrollment_hash: Some("e1".repeat(32)),
        enrollment_expires_at: Some(at(100)),
        ..user(&bob, None)
    };
    let event = |kind| Event::allowed(kind, &actor(), at(2), Subject::default());
    assert!(store.create_principal(&record, &event(EventKind::PrincipalCreate)).await.unwrap());
    let pending = GrantRecord {
        id: "g-1".to_owned(),
        kind: GrantKind::Jit,
        principal: bob.clone(),
        requested_by: bob.clone(),
        approved_by: None,
        role: "deployer".to_owned(),
        reason: "incident 42".to_owned(),
        duration_secs: 1800,
        status: GrantStatus::Pending,
        requested_at: at(3),
        decided_by: None,
        decided_at: None,
        expires_at: None,
    };
    assert_eq!(store.principal_granted(&bob).await.unwrap().map(|(_, g)| g), Some(false), "no grant yet");
    store.create_grant(&pending, &event(EventKind::AccessRequest)).await.unwrap();
    assert_eq!(store.grant("g-1").await.unwrap().as_ref(), Some(&pending));
    let (read, granted) = store.principal_granted(&bob).await.unwrap().unwrap();
    assert!(!granted, "a pending grant gives nothing");
    assert_eq!(Some(read), store.principal(&bob).await.unwrap(), "the same principal as `principal` reads");
    let active = GrantRecord {
        status: GrantStatus::Active,
        decided_by: Some("alice".to_owned()),
        decided_at: Some(at(4)),
        expires_at: Some(at(4 + 1_800_000)),
        ..pending.clone()
    };
    let stored =
        store.decide_grant(&active, GrantStatus::Pending, None, &event(EventKind::AccessApprove)).await.unwrap();
    assert_eq!(stored.as_ref(), Some(&active));
    assert!(active.in_force(at(5)) && !active.in_force(at(4 + 1_800_000)));
    assert_eq!(store.principal_granted(&bob).await.unwrap().map(|(_, g)| g), Some(true), "an active grant is named");
    assert_eq!(
        store.decide_grant(&active, GrantStatus::Pending, None, &event(EventKind::AccessApprove)).await.unwrap(),
        None,
        "a grant is decided once"
    );
    let revoked = GrantRecord { status: GrantStatus::Revoked, ..active };
    store.decide_grant(&revoked, GrantStatus::Active, None, &event(EventKind::AccessRevoke)).await.unwrap().unwrap();
    assert_eq!(store.principal(&bob).await.unwrap().unwrap().epoch, 2, "revoking kills the principal's tokens");
    assert_eq!(store.principal_granted(&bob).await.unwrap().map(|(_, g)| g), Some(false), "a revoked grant is not");
    assert_eq!(store.grants(Some(&bob)).await.unwrap().len(), 1);
    assert_eq!(store.grants(None).await.unwrap().len(), 1);

    // A privileged change waits for two approvals: the first lands once, and the change is
    // applied to the principal in the same transaction as the second.
    let alice = PrincipalId::parse("alice").unwrap();
    let admin = PrincipalRecord { id: alice.clone(), roles: vec!["access-admin".to_owned()], ..record.clone() };
    assert!(store.create_principal(&admin, &event(EventKind::PrincipalCreate)).await.unwrap());
    let bind = GrantRecord {
        id: "g-2".to_owned(),
        kind: GrantKind::Bind,
        requested_by: alice.clone(),
        role: "release-approver".to_owned(),
        duration_secs: 0,
        ..pending
    };
    store.create_grant(&bind, &event(EventKind::AccessRequest)).await.unwrap();
    let first = GrantRecord { approved_by: Some("carol".to_owned()), ..bind.clone() };
    store.decide_grant(&first, GrantStatus::Pending, None, &event(EventKind::AccessApprove)).await.unwrap().unwrap();
    let rival = GrantRecord { approved_by: Some("dave".to_owned()), ..bind.clone() };
    assert_eq!(
        store.decide_grant(&rival, GrantStatus::Pending, None, &event(EventKind::AccessApprove)).await.unwrap(),
        None,
        "a second first approval loses"
    );
    let done = GrantRecord { status: GrantStatus::Active, decided_by: Some("dave".to_owned()), ..first };
    let change = PrincipalChange::GrantRole { role: "release-approver".to_owned() };
    store
        .decide_grant(&done, GrantStatus::Pending, Some(&change), &event(EventKind::AccessApprove))
        .await
        .unwrap()
        .unwrap();
    let now = store.principal(&bob).await.unwrap().unwrap();
    assert_eq!(now.roles, ["release-approver"]);
    assert_eq!(
        store.principal_granted(&bob).await.unwrap().map(|(_, g)| g),
        Some(false),
        "a role binding is a role, not a just-in-time grant"
    );
    assert_eq!(now.epoch, 3, "binding a role raises the epoch");
    assert!(!done.in_force(at(5)), "a binding is not a just-in-time grant");

    // An enrollment is spent once, and only with its token.
    let enroll = |hash: &str| PrincipalChange::Enroll {
        token_hash: hash.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        totp_secret: "ab".repeat(20),
    };
    let log_before = store.log_size().await.unwrap();
    assert_eq!(
        store.change_principal(&bob, &enroll(&"00".repeat(32)), &event(EventKind::PrincipalChange)).await.unwrap(),
        None,
        "another token's hash changes nothing"
    );
    assert_eq!(store.log_size().await.unwrap(), log_before, "nor logs anything");
    let enrolled = store
        .change_principal(&bob, &enroll(&"e1".repeat(32)), &event(EventKind::PrincipalChange))
        .await
        .unwrap()
        .unwrap();
    assert!(enrolled.password_hash.is_some() && enrolled.totp_secret.is_some());
    assert_eq!((enrolled.enrollment_hash, enrolled.enrollment_expires_at), (None, None));
    assert_eq!(
        store.change_principal(&bob, &enroll(&"e1".repeat(32)), &event(EventKind::PrincipalChange)).await.unwrap(),
        None,
        "a token works once"
    );
    let reset = PrincipalChange::SetEnrollment { hash: "f2".repeat(32), expires_at: at(200) };
    let reset = store.change_principal(&bob, &reset, &event(EventKind::PrincipalChange)).await.unwrap().unwrap();
    assert_eq!((reset.password_hash, reset.totp_secret), (None, None), "a reset clears the old secrets");
    assert_eq!(reset.enrollment_hash, Some("f2".repeat(32)));
}

pub async fn roles_are_defined_once(store: &dyn MetadataStore) {
    assert!(store.defined_roles().await.unwrap().is_empty());
    let define = |name: &str| event(EventKind::RoleDefine).with_detail("role", serde_json::json!(name));
    let size = store.log_size().await.unwrap();
    assert!(store.define_role("scanner", "{\"allow\":[\"pull\"]}", &define("scanner")).await.unwrap());
    assert!(!store.define_role("scanner", "{\"allow\":[\"push\"]}", &define("scanner")).await.unwrap(), "taken");
    assert!(store.define_role("auditor-lite", "{\"allow\":[]}", &define("auditor-lite")).await.unwrap());
    assert_eq!(
        store.defined_roles().await.unwrap(),
        [
            ("auditor-lite".to_owned(), "{\"allow\":[]}".to_owned()),
            ("scanner".to_owned(), "{\"allow\":[\"pull\"]}".to_owned()),
        ],
        "by name, the first definition kept"
    );
    assert_eq!(store.log_size().await.unwrap(), size + 2, "the refused definition logs nothing");
    assert_eq!(entry(store, size).await["details"]["role"], "scanner");
}

pub async fn grant_decisions_race_once(store: &dyn MetadataStore) {
    let dana = PrincipalId::parse("dana").unwrap();
    let record = user(&dana, Some("dana@example.com"));
    assert!(store.create_principal(&record, &event(EventKind::PrincipalCreate)).await.unwrap());
    let pending = GrantRecord {
        id: "g-1".to_owned(),
        kind: GrantKind::Jit,
        principal: dana.clone(),
        requested_by: dana.clone(),
        approved_by: None,
        role: "deployer".to_owned(),
        reason: "hotfix".to_owned(),
        duration_secs: 600,
        status: GrantStatus::Pending,
        requested_at: at(2),
        decided_by: None,
        decided_at: None,
        expires_at: None,
    };
    store.create_grant(&pending, &event(EventKind::AccessRequest)).await.unwrap();
    assert_eq!(store.grant("g-none").await.unwrap(), None);
    assert!(store.grants(Some(&PrincipalId::parse("erin").unwrap())).await.unwrap().is_empty());
    let size = store.log_size().await.unwrap();
    let decided = |status, by: &str| GrantRecord {
        status,
        decided_by: Some(by.to_owned()),
        decided_at: Some(at(3)),
        expires_at: (status == GrantStatus::Active).then(|| at(603)),
        ..pending.clone()
    };
    let (approve, deny) = (decided(GrantStatus::Active, "alice"), decided(GrantStatus::Denied, "bob"));
    let (approved, denied) = (event(EventKind::AccessApprove), event(EventKind::AccessRevoke));
    let (first, second) = tokio::join!(
        store.decide_grant(&approve, GrantStatus::Pending, None, &approved),
        store.decide_grant(&deny, GrantStatus::Pending, None, &denied),
    );
    let (winner, stored) = one_winner(first.unwrap(), second.unwrap());
    let expected = [&approve, &deny][winner];
    assert_eq!(&stored, expected, "the winner's decision is stored");
    assert_eq!(store.grant("g-1").await.unwrap().as_ref(), Some(expected));
    assert_eq!(store.log_size().await.unwrap(), size + 1, "the loser logs nothing");
    assert_eq!(store.principal(&dana).await.unwrap().unwrap().epoch, 1, "a decision without a change keeps the epoch");
}
