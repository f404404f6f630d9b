//! Stage freezes, waivers and break-glass reviews.

use super::*;

pub async fn granting_rows_store_the_index_of_their_event(store: &dyn MetadataStore) {
    let event = |kind: EventKind| Event::allowed(kind, &actor(), at(1), Subject::default());
    // Something in the log first, so an index of zero would be wrong.
    store.append_events(&[event(EventKind::ServerStart)]).await.unwrap();

    // An approval stores its `promotion.approve` entry's index, whatever the caller passed.
    let promotion = PromotionRecord {
        id: "prm-1".to_owned(),
        source: repo("staging/a"),
        target: repo("prod/a"),
        digest: Digest::of(b"a"),
        tag: None,
        requester: "ci".to_owned(),
        reason: "release".to_owned(),
        status: PromotionStatus::Pending,
        policy_digest: "p".to_owned(),
        evidence_digest: "e".to_owned(),
        report: "{}".to_owned(),
        created_at: at(1),
        updated_at: at(1),
        closed_reason: None,
        release_digest: None,
        summary_digest: None,
        log_index: None,
        break_glass: false,
    };
    store.open_promotion(&promotion, &event(EventKind::PromotionRequest)).await.unwrap().unwrap();
    let approval = ApprovalRecord {
        promotion: "prm-1".to_owned(),
        approver: "alice".to_owned(),
        identity: "principal:alice".to_owned(),
        digest: Digest::of(b"a"),
        source: repo("staging/a"),
        target: repo("prod/a"),
        policy_digest: "p".to_owned(),
        evidence_digest: "e".to_owned(),
        comment: "ok".to_owned(),
        created_at: at(2),
        expires_at: at(3_600_002),
        log_index: Some(999),
    };
    assert!(store.add_approval(&approval, &event(EventKind::PromotionApprove)).await.unwrap());
    assert!(!store.add_approval(&approval, &event(EventKind::PromotionApprove)).await.unwrap());
    let stored = store.approvals("prm-1").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].log_index, Some(index_of(store, EventKind::PromotionApprove).await));

    // A waiver stores its `waiver.approve` entry's index when it becomes active, and keeps it.
    let waiver = WaiverRecord {
        id: "w-1".to_owned(),
        rule: "no-critical".to_owned(),
        vulnerability: None,
        component: None,
        repository: "*/a".to_owned(),
        justification: "unused".to_owned(),
        requester: "carol".to_owned(),
        state: WaiverState::Pending,
        approver: None,
        created_at: at(1),
        decided_at: None,
        expires_at: at(86_400_000),
        log_index: None,
    };
    store.create_waiver(&waiver, &event(EventKind::WaiverRequest)).await.unwrap();
    assert_eq!(store.waiver("w-1").await.unwrap().unwrap().log_index, None);
    let active = WaiverRecord {
        state: WaiverState::Active,
        approver: Some("alice".to_owned()),
        decided_at: Some(at(5)),
        ..waiver.clone()
    };
    let decided = store.decide_waiver(&active, WaiverState::Pending, &event(EventKind::WaiverApprove)).await.unwrap();
    let approve_index = index_of(store, EventKind::WaiverApprove).await;
    assert_eq!(decided.map(|w| w.log_index), Some(Some(approve_index)));
    let revoked = WaiverRecord { state: WaiverState::Revoked, ..active };
    store.decide_waiver(&revoked, WaiverState::Active, &event(EventKind::WaiverRevoke)).await.unwrap();
    assert_eq!(store.waiver("w-1").await.unwrap().unwrap().log_index, Some(approve_index));

    // A freeze's lift and the request before it store their entries' indices; the lifted
    // freeze stays stored, and freezing again replaces it.
    let stage = StageName::parse("prod").unwrap();
    let freeze = FreezeRecord {
        stage: stage.clone(),
        reason: "incident".to_owned(),
        frozen_by: "olga".to_owned(),
        frozen_at: at(10),
        unfreeze_by: None,
        unfreeze_index: None,
        lifted_by: None,
        lift_index: None,
    };
    assert!(store.freeze(&freeze, &event(EventKind::StageFreeze)).await.unwrap());
    assert!(!store.freeze(&freeze, &event(EventKind::StageFreeze)).await.unwrap(), "frozen already");
    assert!(!store.lift_freeze(&stage, "olga", "oscar", &event(EventKind::StageUnfreeze)).await.unwrap());
    assert!(
        store.request_unfreeze(&stage, "olga", None, &event(EventKind::StageUnfreezeRequest), at(11)).await.unwrap()
    );
    assert!(
        !store.request_unfreeze(&stage, "oscar", None, &event(EventKind::StageUnfreezeRequest), at(11)).await.unwrap(),
        "a request is waiting"
    );
    assert!(store.lift_freeze(&stage, "olga", "oscar", &event(EventKind::StageUnfreeze)).await.unwrap());
    assert!(!store.lift_freeze(&stage, "olga", "oscar", &event(EventKind::StageUnfreeze)).await.unwrap());
    let lifted = store.freezes().await.unwrap();
    assert_eq!(lifted.len(), 1, "a lifted freeze stays stored");
    assert_eq!(lifted[0].unfreeze_by.as_deref(), Some("olga"));
    assert_eq!(lifted[0].unfreeze_index, Some(index_of(store, EventKind::StageUnfreezeRequest).await));
    assert_eq!(lifted[0].lifted_by.as_deref(), Some("oscar"));
    assert_eq!(lifted[0].lift_index, Some(index_of(store, EventKind::StageUnfreeze).await));
    let again = FreezeRecord { reason: "again".to_owned(), ..freeze };
    assert!(store.freeze(&again, &event(EventKind::StageFreeze)).await.unwrap(), "a lifted stage freezes again");
    assert_eq!(store.freezes().await.unwrap(), vec![again]);
}

/// A freeze of `stage` by `olga`, no one yet asking to lift it.
fn frozen(stage: &StageName) -> FreezeRecord {
    FreezeRecord {
        stage: stage.clone(),
        reason: "incident".to_owned(),
        frozen_by: "olga".to_owned(),
        frozen_at: at(10),
        unfreeze_by: None,
        unfreeze_index: None,
        lifted_by: None,
        lift_index: None,
    }
}

pub async fn unfreeze_requests_and_lifts_race_once(store: &dyn MetadataStore) {
    let stage = StageName::parse("prod").unwrap();
    let other = StageName::parse("staging").unwrap();
    let request = |who: &str| event(EventKind::StageUnfreezeRequest).with_detail("by", serde_json::json!(who));
    let lift = |who: &str| event(EventKind::StageUnfreeze).with_detail("by", serde_json::json!(who));
    assert!(!store.request_unfreeze(&other, "pat", None, &request("pat"), at(11)).await.unwrap(), "not frozen");
    assert!(!store.lift_freeze(&other, "pat", "quinn", &lift("quinn")).await.unwrap(), "not frozen");
    assert!(store.freeze(&frozen(&stage), &event(EventKind::StageFreeze)).await.unwrap());
    let size = store.log_size().await.unwrap();

    let (by_pat, by_quinn) = (request("pat"), request("quinn"));
    let (first, second) = tokio::join!(
        store.request_unfreeze(&stage, "pat", None, &by_pat, at(11)),
        store.request_unfreeze(&stage, "quinn", None, &by_quinn, at(12)),
    );
    let (winner, ()) = one_winner(first.unwrap().then_some(()), second.unwrap().then_some(()));
    let first_person = ["pat", "quinn"][winner];
    let stored = store.freezes().await.unwrap().remove(0);
    assert_eq!(stored.unfreeze_by.as_deref(), Some(first_person));
    assert_eq!(stored.unfreeze_index, Some(size), "the request stores its event's index");
    assert_eq!(entry(store, size).await["details"]["by"], serde_json::json!(first_person));

    // A waiting request is replaced only by naming it.
    assert!(!store.request_unfreeze(&stage, "rita", Some("nobody"), &request("rita"), at(13)).await.unwrap());
    assert!(store.request_unfreeze(&stage, "rita", Some(first_person), &request("rita"), at(13)).await.unwrap());
    let stored = store.freezes().await.unwrap().remove(0);
    assert_eq!((stored.unfreeze_by.as_deref(), stored.unfreeze_index), (Some("rita"), Some(size + 1)));
    assert!(!store.lift_freeze(&stage, first_person, "sam", &lift("sam")).await.unwrap(), "the replaced request");

    let (by_sam, by_tom) = (lift("sam"), lift("tom"));
    let (first, second) = tokio::join!(
        store.lift_freeze(&stage, "rita", "sam", &by_sam),
        store.lift_freeze(&stage, "rita", "tom", &by_tom),
    );
    let (winner, ()) = one_winner(first.unwrap().then_some(()), second.unwrap().then_some(()));
    let second_person = ["sam", "tom"][winner];
    let lifted = store.freezes().await.unwrap();
    assert_eq!(
        lifted,
        vec![FreezeRecord {
            unfreeze_by: Some("rita".to_owned()),
            unfreeze_index: Some(size + 1),
            lifted_by: Some(second_person.to_owned()),
            lift_index: Some(size + 2),
            ..frozen(&stage)
        }]
    );
    assert_eq!(entry(store, size + 2).await["details"]["by"], serde_json::json!(second_person));
    assert_eq!(store.log_size().await.unwrap(), size + 3, "the losers and refusals log nothing");
}

/// A pending waiver `id` requested at `when`.
fn waiver(id: &str, when: i64) -> WaiverRecord {
    WaiverRecord {
        id: id.to_owned(),
        rule: "no-critical".to_owned(),
        vulnerability: Some("CVE-2026-0001".to_owned()),
        component: Some("pkg:apk/alpine/openssl@3.0.1".to_owned()),
        repository: "*/a".to_owned(),
        justification: "not reachable".to_owned(),
        requester: "carol".to_owned(),
        state: WaiverState::Pending,
        approver: None,
        created_at: at(when),
        decided_at: None,
        expires_at: at(when + 86_400_000),
        log_index: None,
    }
}

pub async fn waiver_decisions_race_once(store: &dyn MetadataStore) {
    let (older, newer) = (waiver("w-1", 1), waiver("w-2", 2));
    for w in [&older, &newer] {
        store.create_waiver(w, &event(EventKind::WaiverRequest)).await.unwrap();
    }
    assert_eq!(store.waivers().await.unwrap(), vec![newer.clone(), older.clone()], "newest first");
    assert_eq!(store.waiver("w-1").await.unwrap(), Some(older.clone()));
    assert_eq!(store.waiver("w-none").await.unwrap(), None);

    let size = store.log_size().await.unwrap();
    let decided =
        |state| WaiverRecord { state, approver: Some("alice".to_owned()), decided_at: Some(at(5)), ..older.clone() };
    let (active, denied) = (decided(WaiverState::Active), decided(WaiverState::Denied));
    let (approve, deny) = (event(EventKind::WaiverApprove), event(EventKind::WaiverRevoke));
    let (first, second) = tokio::join!(
        store.decide_waiver(&active, WaiverState::Pending, &approve),
        store.decide_waiver(&denied, WaiverState::Pending, &deny),
    );
    let (winner, stored) = one_winner(first.unwrap(), second.unwrap());
    let expected = match winner {
        0 => WaiverRecord { log_index: Some(size), ..active.clone() },
        _ => denied.clone(),
    };
    assert_eq!(stored, expected, "the winner's decision is stored");
    assert_eq!(store.waiver("w-1").await.unwrap(), Some(expected));
    assert_eq!(store.log_size().await.unwrap(), size + 1, "the loser logs nothing");
    assert_eq!(
        store.decide_waiver(&active, WaiverState::Pending, &event(EventKind::WaiverApprove)).await.unwrap(),
        None
    );
    let ghost = WaiverRecord { id: "w-none".to_owned(), ..active };
    assert_eq!(
        store.decide_waiver(&ghost, WaiverState::Pending, &event(EventKind::WaiverApprove)).await.unwrap(),
        None
    );
    assert_eq!(store.log_size().await.unwrap(), size + 1);
}

pub async fn break_glass_reviews_close_once(store: &dyn MetadataStore) {
    use super::promotion::{commit_of, open, pending, sealed, source_image};
    assert!(store.reviews().await.unwrap().is_empty());
    let (m, layer) = source_image(store, "urgent").await;
    let p = PromotionRecord { break_glass: true, ..pending("prm-1", &m, None) };
    open(store, &p).await;
    let seal = |index: u64| Ok(sealed(&p, index));
    let outcome = store.commit_promotion(&commit_of(&p, &m, &layer, None), &seal, at(5)).await.unwrap();
    assert!(matches!(outcome, PromotionCommitOutcome::Committed { .. }), "{outcome:?}");
    let open_reviews = store.reviews().await.unwrap();
    assert_eq!(open_reviews.len(), 1, "a break-glass commit leaves one review open");
    let review = open_reviews[0].clone();
    assert_eq!((review.promotion.as_str(), review.opened_at), ("prm-1", at(5)));
    assert_eq!((&review.closed_by, review.closed_at, &review.note), (&None, None, &None));

    let size = store.log_size().await.unwrap();
    let close = event(EventKind::ReviewClose);
    let (first, second) = tokio::join!(
        store.close_review(&review.id, "alice", "justified", &close, at(6)),
        store.close_review(&review.id, "bob", "fine", &close, at(7)),
    );
    let (winner, closed) = one_winner(first.unwrap(), second.unwrap());
    let (by, note, when) = [("alice", "justified", 6), ("bob", "fine", 7)][winner];
    let expected = ReviewRecord {
        closed_by: Some(by.to_owned()),
        closed_at: Some(at(when)),
        note: Some(note.to_owned()),
        ..review
    };
    assert_eq!(closed, expected);
    assert_eq!(store.reviews().await.unwrap(), vec![expected]);
    assert_eq!(store.close_review("rev-none", "alice", "x", &close, at(8)).await.unwrap(), None);
    assert_eq!(store.log_size().await.unwrap(), size + 1, "only the winning close is logged");
}
