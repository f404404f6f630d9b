//! Promotions, approvals, the promotion commit, tag moves and release bundles.

use super::*;

/// A release bundle referrer of `subject` for `promotion`, its one layer inline.
fn bundle(subject: &Digest, promotion: &str, content: &'static [u8]) -> EngineManifest {
    use airlock_core::promotion::bundle::{PROMOTION_ANNOTATION, RELEASE_BUNDLE_MEDIA_TYPE};
    let layer = Digest::of(content);
    let body = serde_json::json!({"layers": [{"digest": layer.as_str()}], "promotion": promotion}).to_string();
    let mut manifest = self::manifest(&body, &[&layer], Some(subject), Some(RELEASE_BUNDLE_MEDIA_TYPE));
    manifest.annotations_json = serde_json::json!({ PROMOTION_ANNOTATION: promotion }).to_string();
    EngineManifest { manifest, blobs: vec![(layer, Bytes::from_static(content))] }
}

pub async fn release_bundles_attach_once_per_promotion(store: &dyn MetadataStore) {
    use airlock_core::promotion::bundle::RELEASE_BUNDLE_MEDIA_TYPE;
    let r = repo("prod/a");
    let subject = Digest::of(b"subject");
    let event = |promotion: &str| {
        Event::allowed(EventKind::PromotionBundleAttach, &Actor::system(), at(1), Subject::default())
            .with_detail("promotion", serde_json::json!(promotion))
    };
    let first = bundle(&subject, "p1", b"bundle one");
    let index = store.attach_release_bundle(&r, &first, &event("p1"), at(1)).await.unwrap();
    let index = index.expect("the first bundle of a promotion is attached");
    let logged = events(store, index).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["type"], "promotion.bundle.attach");
    assert_eq!(logged[0]["details"]["promotion"], "p1");
    let listed = store.referrers(&r, &subject, Some(RELEASE_BUNDLE_MEDIA_TYPE)).await.unwrap();
    assert_eq!(listed.iter().map(|x| &x.digest).collect::<Vec<_>>(), vec![&first.manifest.digest]);
    let layer = store.blob_in_repo(&r, &first.blobs[0].0).await.unwrap().expect("the bundle's layer is linked");
    assert_eq!(layer.inline.as_deref(), Some(&b"bundle one"[..]));

    // Another checkpointer (a replica) attaching again for the same promotion stores and logs
    // nothing, even with other bytes.
    let size = store.log_size().await.unwrap();
    let again = bundle(&subject, "p1", b"bundle one, later");
    assert_eq!(store.attach_release_bundle(&r, &again, &event("p1"), at(2)).await.unwrap(), None);
    assert_eq!(store.log_size().await.unwrap(), size);
    assert!(store.manifest_by_digest(&r, &again.manifest.digest).await.unwrap().is_none());

    // Another promotion of the same digest gets its own bundle.
    let second = bundle(&subject, "p2", b"bundle two");
    assert!(store.attach_release_bundle(&r, &second, &event("p2"), at(3)).await.unwrap().is_some());
    assert_eq!(store.referrers(&r, &subject, Some(RELEASE_BUNDLE_MEDIA_TYPE)).await.unwrap().len(), 2);
}

/// Where the promotion checks promote from and into.
pub const SOURCE: &str = "staging/a";
pub const TARGET: &str = "prod/a";

/// A pending promotion `id` of `digest` from [`SOURCE`] into [`TARGET`], under `tag_name`.
pub fn pending(id: &str, digest: &Digest, tag_name: Option<&str>) -> PromotionRecord {
    PromotionRecord {
        id: id.to_owned(),
        source: repo(SOURCE),
        target: repo(TARGET),
        digest: digest.clone(),
        tag: tag_name.map(tag),
        requester: "ci".to_owned(),
        reason: "release".to_owned(),
        status: PromotionStatus::Pending,
        policy_digest: "policy-1".to_owned(),
        evidence_digest: "evidence-1".to_owned(),
        report: "{}".to_owned(),
        created_at: at(1),
        updated_at: at(1),
        closed_reason: None,
        release_digest: None,
        summary_digest: None,
        log_index: None,
        break_glass: false,
    }
}

/// The account that pushes the source images.
fn pusher_actor() -> Actor {
    Actor::authenticated(&PrincipalId::parse("ci").unwrap(), PrincipalKind::ServiceAccount, "conformance")
}

/// An image in [`SOURCE`] pushed by `ci`: its manifest's digest and its one layer's.
pub(super) async fn source_image(store: &dyn MetadataStore, body: &str) -> (Digest, Digest) {
    let layer = blob(store, SOURCE, b"promoted layer").await;
    let m = manifest(body, &[&layer], None, None);
    stored(store.put_manifest(&repo(SOURCE), &m, None, &pusher_actor(), at(1)).await.unwrap());
    (m.digest, layer)
}

/// The write of `p`'s tag, if it has one, to its digest where the tag points at `expected`, with
/// the event the engine would log for it: a set, or a move naming the previous digest.
pub fn tag_write(p: &PromotionRecord, expected: Option<&Digest>) -> Option<TagWrite> {
    let tag = p.tag.clone()?;
    let subject =
        Subject { repository: Some(p.target.clone()), digest: Some(p.digest.clone()), tag: Some(tag.clone()) };
    let event = match expected {
        None => Event::allowed(EventKind::TagCreate, &Actor::system(), at(5), subject),
        Some(previous) => Event::allowed(EventKind::TagMove, &Actor::system(), at(5), subject)
            .with_detail("previous", serde_json::json!(previous.as_str())),
    };
    let event = event.with_detail("promotion", serde_json::json!(p.id));
    Some(TagWrite { tag, digest: p.digest.clone(), expected: expected.cloned(), event })
}

/// What committing `p` links: `manifest` and its `layer`, and its tag where the tag points at
/// `expected` (`None`: where it is absent).
pub fn commit_of(p: &PromotionRecord, manifest: &Digest, layer: &Digest, expected: Option<&Digest>) -> PromotionCommit {
    PromotionCommit {
        promotion: p.clone(),
        manifests: vec![manifest.clone()],
        blobs: vec![layer.clone()],
        approvers: vec!["alice".to_owned()],
        tag: tag_write(p, expected),
    }
}

/// What a seal writes for `p` given the index its first event lands at: a release record naming
/// that index (its one layer inline), a summary beside it, and the commit event.
pub fn sealed(p: &PromotionRecord, index: u64) -> Sealed {
    let engine = |kind: &str| {
        let content = Bytes::from(format!("{kind} of {} at {index}", p.id));
        let layer = Digest::of(&content);
        let body = format!("{{\"{kind}\":\"{}\",\"index\":{index}}}", p.id);
        let manifest = manifest(&body, &[&layer], Some(&p.digest), Some("application/vnd.airlock.test+json"));
        EngineManifest { manifest, blobs: vec![(layer, content)] }
    };
    let (release, summary) = (engine("release"), engine("summary"));
    let commit = Event::allowed(EventKind::PromotionCommit, &Actor::system(), at(5), Subject::default())
        .with_detail("promotion", serde_json::json!(p.id))
        .with_detail("release", serde_json::json!(release.manifest.digest.as_str()));
    Sealed {
        release_digest: release.manifest.digest.clone(),
        summary_digest: summary.manifest.digest.clone(),
        release: vec![release, summary],
        events: vec![commit],
    }
}

/// A seal for `p` writing [`sealed`], recording in `seen` each index it is given.
fn sealer<'a>(
    p: &'a PromotionRecord,
    seen: &'a std::sync::Mutex<Vec<u64>>,
) -> impl Fn(u64) -> Result<Sealed, String> + Send + Sync + 'a {
    move |index| {
        seen.lock().unwrap().push(index);
        Ok(sealed(p, index))
    }
}

/// Opens `p`, which must be stored.
pub(super) async fn open(store: &dyn MetadataStore, p: &PromotionRecord) {
    let opened = store.open_promotion(p, &event(EventKind::PromotionRequest)).await.unwrap();
    assert_eq!(opened, Ok(()), "promotion `{}` opens", p.id);
}

pub async fn promotions_open_once_per_key_and_list_newest_first(store: &dyn MetadataStore) {
    let (one, two) = (Digest::of(b"one"), Digest::of(b"two"));
    let first = pending("prm-1", &one, None);
    let before = store.log_size().await.unwrap();
    open(store, &first).await;
    assert_eq!(store.log_size().await.unwrap(), before + 1, "opening logs its event with it");
    assert_eq!(store.promotion("prm-1").await.unwrap(), Some(first.clone()));
    assert_eq!(store.promotion("prm-none").await.unwrap(), None);

    let again = PromotionRecord { id: "prm-again".to_owned(), created_at: at(9), ..first.clone() };
    let refused = store.open_promotion(&again, &event(EventKind::PromotionRequest)).await.unwrap();
    assert_eq!(refused, Err(first.clone()), "an open promotion of the same key is returned instead");
    assert_eq!(store.promotion("prm-again").await.unwrap(), None, "nothing stored");
    assert_eq!(store.log_size().await.unwrap(), before + 1, "nothing logged");

    let second = PromotionRecord { created_at: at(2), ..pending("prm-2", &two, None) };
    open(store, &second).await;
    let third = PromotionRecord {
        target: repo("prod/b"),
        status: PromotionStatus::Denied,
        created_at: at(3),
        ..pending("prm-3", &one, Some("1.0"))
    };
    open(store, &third).await;
    let ids = |list: Vec<PromotionRecord>| list.into_iter().map(|p| p.id).collect::<Vec<_>>();
    let filter = PromotionFilter { limit: 10, ..PromotionFilter::default() };
    assert_eq!(ids(store.promotions(&filter).await.unwrap()), ["prm-3", "prm-2", "prm-1"], "newest first");
    let limited = PromotionFilter { limit: 2, ..filter.clone() };
    assert_eq!(ids(store.promotions(&limited).await.unwrap()), ["prm-3", "prm-2"], "at most `limit`");
    let denied = PromotionFilter { status: Some(PromotionStatus::Denied), ..filter.clone() };
    assert_eq!(ids(store.promotions(&denied).await.unwrap()), ["prm-3"]);
    let into = PromotionFilter { target: Some(repo(TARGET)), ..filter.clone() };
    assert_eq!(ids(store.promotions(&into).await.unwrap()), ["prm-2", "prm-1"]);
    let of = PromotionFilter { digest: Some(two), ..filter.clone() };
    assert_eq!(ids(store.promotions(&of).await.unwrap()), ["prm-2"]);
    let none = PromotionFilter { target: Some(repo("prod/none")), ..filter };
    assert!(store.promotions(&none).await.unwrap().is_empty());
}

/// An approval of `promotion` by `approver`, the person `identity`, given at `when`.
fn approval(promotion: &PromotionRecord, approver: &str, identity: &str, when: i64) -> ApprovalRecord {
    ApprovalRecord {
        promotion: promotion.id.clone(),
        approver: approver.to_owned(),
        identity: identity.to_owned(),
        digest: promotion.digest.clone(),
        source: promotion.source.clone(),
        target: promotion.target.clone(),
        policy_digest: promotion.policy_digest.clone(),
        evidence_digest: promotion.evidence_digest.clone(),
        comment: "ok".to_owned(),
        created_at: at(when),
        expires_at: at(when + 3_600_000),
        log_index: None,
    }
}

pub async fn approvals_count_once_per_person(store: &dyn MetadataStore) {
    let p = pending("prm-1", &Digest::of(b"one"), None);
    open(store, &p).await;
    assert!(store.approvals("prm-1").await.unwrap().is_empty());
    let approve = |who: &str| event(EventKind::PromotionApprove).with_detail("approver", serde_json::json!(who));
    let before = store.log_size().await.unwrap();
    let bob = approval(&p, "bob", "email:bob@example.com", 3);
    let alice = approval(&p, "alice", "email:alice@example.com", 2);
    assert!(store.add_approval(&bob, &approve("bob")).await.unwrap());
    assert!(store.add_approval(&alice, &approve("alice")).await.unwrap());
    assert!(!store.add_approval(&alice, &approve("alice")).await.unwrap(), "an approver approves once");
    let alias = approval(&p, "alice-admin", "email:alice@example.com", 4);
    assert!(!store.add_approval(&alias, &approve("alice-admin")).await.unwrap(), "so does a person");
    assert_eq!(store.log_size().await.unwrap(), before + 2, "only the two approvals are logged");
    let stored = store.approvals("prm-1").await.unwrap();
    let approvers: Vec<&str> = stored.iter().map(|a| a.approver.as_str()).collect();
    assert_eq!(approvers, ["alice", "bob"], "oldest first");
    for a in &stored {
        let index = a.log_index.expect("an approval stores its event's index");
        assert_eq!(entry(store, index).await["details"]["approver"], serde_json::json!(a.approver));
        assert_eq!(
            ApprovalRecord { log_index: None, ..a.clone() },
            approval(&p, &a.approver, &a.identity, a.created_at.as_millis())
        );
    }

    let reject = event(EventKind::PromotionReject);
    let closed = store.close_promotion("prm-1", PromotionStatus::Rejected, "no", &reject, at(5));
    closed.await.unwrap().expect("pending until now");
    let size = store.log_size().await.unwrap();
    let carol = approval(&p, "carol", "email:carol@example.com", 6);
    assert!(!store.add_approval(&carol, &approve("carol")).await.unwrap(), "a closed promotion takes no approval");
    let ghost = ApprovalRecord { promotion: "prm-none".to_owned(), ..carol };
    assert!(!store.add_approval(&ghost, &approve("carol")).await.unwrap(), "nor does one never opened");
    assert_eq!(store.log_size().await.unwrap(), size, "a refused approval logs nothing");
    assert_eq!(store.approvals("prm-1").await.unwrap().len(), 2);
}

pub async fn evaluations_update_only_pending_promotions(store: &dyn MetadataStore) {
    let p = pending("prm-1", &Digest::of(b"one"), None);
    open(store, &p).await;
    let size = store.log_size().await.unwrap();
    let evaluated = PromotionRecord {
        policy_digest: "policy-2".to_owned(),
        evidence_digest: "evidence-2".to_owned(),
        report: "{\"findings\":[]}".to_owned(),
        updated_at: at(7),
        ..p.clone()
    };
    store.update_evaluation(&evaluated).await.unwrap();
    assert_eq!(store.promotion("prm-1").await.unwrap(), Some(evaluated.clone()));
    let expire = event(EventKind::PromotionReject);
    let closed = store.close_promotion("prm-1", PromotionStatus::Expired, "stale", &expire, at(8));
    let closed = closed.await.unwrap().expect("pending until now");
    let late = PromotionRecord { policy_digest: "policy-3".to_owned(), updated_at: at(9), ..evaluated };
    store.update_evaluation(&late).await.unwrap();
    assert_eq!(store.promotion("prm-1").await.unwrap(), Some(closed), "a closed promotion's evaluation stays");
    assert_eq!(store.log_size().await.unwrap(), size + 1, "only the close is logged");
}

pub async fn closing_a_promotion_races_once(store: &dyn MetadataStore) {
    let p = pending("prm-1", &Digest::of(b"one"), None);
    open(store, &p).await;
    let size = store.log_size().await.unwrap();
    let reject = event(EventKind::PromotionReject).with_detail("reason", serde_json::json!("no"));
    let cancel = event(EventKind::PromotionReject).with_detail("reason", serde_json::json!("withdrawn"));
    let (first, second) = tokio::join!(
        store.close_promotion("prm-1", PromotionStatus::Rejected, "no", &reject, at(3)),
        store.close_promotion("prm-1", PromotionStatus::Cancelled, "withdrawn", &cancel, at(4)),
    );
    let (winner, closed) = one_winner(first.unwrap(), second.unwrap());
    let (status, reason, when) =
        [(PromotionStatus::Rejected, "no", 3), (PromotionStatus::Cancelled, "withdrawn", 4)][winner];
    assert_eq!(
        closed,
        PromotionRecord { status, closed_reason: Some(reason.to_owned()), updated_at: at(when), ..p },
        "the winner's close is stored"
    );
    assert_eq!(store.promotion("prm-1").await.unwrap(), Some(closed));
    assert_eq!(store.log_size().await.unwrap(), size + 1, "the loser logs nothing");
    assert_eq!(entry(store, size).await["details"]["reason"], serde_json::json!(reason));
    let none = store.close_promotion("prm-none", PromotionStatus::Rejected, "no", &reject, at(5)).await.unwrap();
    assert_eq!(none, None, "a promotion never opened is not pending");
}

pub async fn promotion_commits_link_seal_and_log_together(store: &dyn MetadataStore) {
    let (m, layer) = source_image(store, "candidate").await;
    let p = pending("prm-1", &m, Some("1.0"));
    open(store, &p).await;
    let before = store.log_size().await.unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let outcome = store.commit_promotion(&commit_of(&p, &m, &layer, None), &sealer(&p, &seen), at(5)).await.unwrap();
    let expected = sealed(&p, before);
    assert_eq!(
        outcome,
        PromotionCommitOutcome::Committed { log_index: before, release_digest: expected.release_digest.clone() }
    );
    assert_eq!(*seen.lock().unwrap(), [before], "the seal is given the index the commit event lands at");
    let promoted = store.promotion("prm-1").await.unwrap().unwrap();
    assert_eq!(
        promoted,
        PromotionRecord {
            status: PromotionStatus::Promoted,
            release_digest: Some(expected.release_digest.clone()),
            summary_digest: Some(expected.summary_digest.clone()),
            log_index: Some(before),
            updated_at: at(5),
            ..p.clone()
        }
    );
    let logged = events(store, before).await;
    assert_eq!(kinds(&logged), [EventKind::PromotionCommit.as_str(), EventKind::TagCreate.as_str()]);
    assert_eq!(logged[0]["details"]["release"], serde_json::json!(expected.release_digest.as_str()));
    assert_eq!(logged[1]["details"]["promotion"], "prm-1", "the tag event names its promotion");
    assert_eq!(logged[1]["subject"]["tag"], "1.0");
    assert_eq!(logged[1]["subject"]["digest"], serde_json::json!(m.as_str()));
    let passed = tag_write(&p, None).map(|w| w.event.to_json());
    assert_eq!(logged.get(1), passed.as_ref(), "the tag write's event is logged as it was passed");

    let target = repo(TARGET);
    assert_eq!(store.manifest_by_tag(&target, &tag("1.0")).await.unwrap().map(|r| r.digest), Some(m.clone()));
    assert!(store.blob_in_repo(&target, &layer).await.unwrap().is_some(), "the layer is linked");
    for written in &expected.release {
        let found = store.manifest_by_digest(&target, &written.manifest.digest).await.unwrap();
        assert_eq!(found.map(|r| r.body), Some(written.manifest.body.clone()), "the sealed manifests are stored");
        let (digest, bytes) = &written.blobs[0];
        let held = store.blob_in_repo(&target, digest).await.unwrap().expect("with their blobs");
        assert_eq!(held.inline.as_ref(), Some(bytes));
    }
    assert_eq!(store.pusher(&repo(SOURCE), &m).await.unwrap().as_deref(), Some("ci"));
    assert_eq!(store.pusher(&target, &m).await.unwrap().as_deref(), Some("ci"), "promotion keeps the pusher");
    assert_eq!(store.pusher(&target, &Digest::of(b"never pushed")).await.unwrap(), None);
    assert_eq!(store.pusher(&repo("dev/none"), &m).await.unwrap(), None);
}

pub async fn promotion_commits_race_once(store: &dyn MetadataStore) {
    let (m, layer) = source_image(store, "candidate").await;
    let p = pending("prm-1", &m, Some("1.0"));
    open(store, &p).await;
    let before = store.log_size().await.unwrap();
    let commit = commit_of(&p, &m, &layer, None);
    let seen = std::sync::Mutex::new(Vec::new());
    let (seal_one, seal_two) = (sealer(&p, &seen), sealer(&p, &seen));
    let (first, second) = tokio::join!(
        store.commit_promotion(&commit, &seal_one, at(5)),
        store.commit_promotion(&commit, &seal_two, at(6)),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let committed = |o: &PromotionCommitOutcome| matches!(o, PromotionCommitOutcome::Committed { .. });
    let (won, lost) = match (committed(&first), committed(&second)) {
        (true, false) => (first, second),
        (false, true) => (second, first),
        _ => panic!("exactly one of two commits must win, got {first:?} and {second:?}"),
    };
    assert_eq!(lost, PromotionCommitOutcome::NotPending { status: PromotionStatus::Promoted });
    assert_eq!(
        won,
        PromotionCommitOutcome::Committed { log_index: before, release_digest: sealed(&p, before).release_digest }
    );
    assert_eq!(store.log_size().await.unwrap(), before + 2, "the winner's commit and tag events, nothing more");

    // A promotion closed first is not committed.
    let (m2, _) = source_image(store, "second").await;
    let q = pending("prm-2", &m2, None);
    open(store, &q).await;
    let reject = event(EventKind::PromotionReject);
    store.close_promotion("prm-2", PromotionStatus::Rejected, "no", &reject, at(3)).await.unwrap().unwrap();
    let size = store.log_size().await.unwrap();
    let outcome = store.commit_promotion(&commit_of(&q, &m2, &layer, None), &sealer(&q, &seen), at(5)).await.unwrap();
    assert_eq!(outcome, PromotionCommitOutcome::NotPending { status: PromotionStatus::Rejected });
    assert_eq!(store.log_size().await.unwrap(), size);
    assert_eq!(store.manifest_by_digest(&repo(TARGET), &m2).await.unwrap(), None, "nothing linked");

    let ghost = commit_of(&pending("prm-none", &m2, None), &m2, &layer, None);
    let seal = |index: u64| Ok(sealed(&ghost.promotion, index));
    assert!(store.commit_promotion(&ghost, &seal, at(5)).await.is_err(), "a promotion never opened is an error");
}

pub async fn promotion_commits_refuse_what_the_source_lacks(store: &dyn MetadataStore) {
    let (m, layer) = source_image(store, "candidate").await;
    let p = pending("prm-1", &m, Some("1.0"));
    open(store, &p).await;
    let size = store.log_size().await.unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let absent = Digest::of(b"absent");
    let mut lacking_blob = commit_of(&p, &m, &layer, None);
    lacking_blob.blobs.push(absent.clone());
    let mut lacking_manifest = commit_of(&p, &m, &layer, None);
    lacking_manifest.manifests.push(absent.clone());
    for commit in [lacking_blob, lacking_manifest] {
        let outcome = store.commit_promotion(&commit, &sealer(&p, &seen), at(5)).await.unwrap();
        assert_eq!(outcome, PromotionCommitOutcome::Missing { digest: absent.clone() });
    }
    assert_eq!(store.log_size().await.unwrap(), size, "nothing logged");
    assert_eq!(store.promotion("prm-1").await.unwrap(), Some(p), "still pending, unchanged");
    let target = repo(TARGET);
    assert_eq!(store.manifest_by_tag(&target, &tag("1.0")).await.unwrap(), None, "no tag set");
    assert_eq!(store.manifest_by_digest(&target, &m).await.unwrap(), None, "nothing linked");
    assert_eq!(store.blob_in_repo(&target, &layer).await.unwrap(), None);
}

/// A commit's tag write lands only where the tag points at what it expects (`None`: where it is
/// absent). A stale expectation loses: nothing is linked, committed or logged. The store applies
/// no tag rule of its own: a write expecting where the tag stands moves it, with the event
/// passed in.
pub async fn promotion_tag_writes_are_conditional(store: &dyn MetadataStore) {
    let (one, layer) = source_image(store, "one").await;
    let (two, _) = source_image(store, "two").await;
    let seen = std::sync::Mutex::new(Vec::new());
    let first = pending("prm-1", &one, Some("1.0"));
    open(store, &first).await;
    let outcome =
        store.commit_promotion(&commit_of(&first, &one, &layer, None), &sealer(&first, &seen), at(5)).await.unwrap();
    assert!(matches!(outcome, PromotionCommitOutcome::Committed { .. }), "{outcome:?}");

    let second = pending("prm-2", &two, Some("1.0"));
    open(store, &second).await;
    let size = store.log_size().await.unwrap();
    let target = repo(TARGET);
    let elsewhere = Digest::of(b"elsewhere");
    for stale in [None, Some(&elsewhere)] {
        let commit = commit_of(&second, &two, &layer, stale);
        let outcome = store.commit_promotion(&commit, &sealer(&second, &seen), at(5)).await.unwrap();
        assert_eq!(outcome, PromotionCommitOutcome::TagMoved { current: Some(one.clone()) }, "expecting {stale:?}");
    }
    assert_eq!(store.manifest_by_tag(&target, &tag("1.0")).await.unwrap().map(|r| r.digest), Some(one.clone()));
    assert_eq!(store.manifest_by_digest(&target, &two).await.unwrap(), None, "nothing linked");
    assert_eq!(store.promotion("prm-2").await.unwrap(), Some(second.clone()), "still pending");
    assert_eq!(store.log_size().await.unwrap(), size, "nothing logged");

    let commit = commit_of(&second, &two, &layer, Some(&one));
    let outcome = store.commit_promotion(&commit, &sealer(&second, &seen), at(5)).await.unwrap();
    assert_eq!(
        outcome,
        PromotionCommitOutcome::Committed { log_index: size, release_digest: sealed(&second, size).release_digest }
    );
    assert_eq!(store.manifest_by_tag(&target, &tag("1.0")).await.unwrap().map(|r| r.digest), Some(two.clone()));
    let logged = events(store, size).await;
    assert_eq!(kinds(&logged), [EventKind::PromotionCommit.as_str(), EventKind::TagMove.as_str()]);
    let passed = commit.tag.map(|w| w.event.to_json());
    assert_eq!(logged.get(1), passed.as_ref(), "the tag write's event is logged as it was passed");

    // A write expecting a digest fails where the tag is absent.
    let third = pending("prm-3", &one, Some("2.0"));
    open(store, &third).await;
    let size = store.log_size().await.unwrap();
    let outcome =
        store.commit_promotion(&commit_of(&third, &one, &layer, Some(&two)), &sealer(&third, &seen), at(5)).await;
    assert_eq!(outcome.unwrap(), PromotionCommitOutcome::TagMoved { current: None });
    assert_eq!(store.manifest_by_tag(&target, &tag("2.0")).await.unwrap(), None, "no tag set");
    assert_eq!(store.promotion("prm-3").await.unwrap(), Some(third), "still pending");
    assert_eq!(store.log_size().await.unwrap(), size, "nothing logged");
}

/// Two commits writing one absent tag, each to its own digest: exactly one lands; the other
/// finds the tag at the winner's digest and commits nothing.
pub async fn promotion_tag_writes_race_once(store: &dyn MetadataStore) {
    let (one, layer) = source_image(store, "one").await;
    let (two, _) = source_image(store, "two").await;
    let (first, second) = (pending("prm-1", &one, Some("1.0")), pending("prm-2", &two, Some("1.0")));
    open(store, &first).await;
    open(store, &second).await;
    let before = store.log_size().await.unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let (commit_one, commit_two) = (commit_of(&first, &one, &layer, None), commit_of(&second, &two, &layer, None));
    let (seal_one, seal_two) = (sealer(&first, &seen), sealer(&second, &seen));
    let (outcome_one, outcome_two) = tokio::join!(
        store.commit_promotion(&commit_one, &seal_one, at(5)),
        store.commit_promotion(&commit_two, &seal_two, at(6)),
    );
    let (outcome_one, outcome_two) = (outcome_one.unwrap(), outcome_two.unwrap());
    let committed = |o: &PromotionCommitOutcome| matches!(o, PromotionCommitOutcome::Committed { .. });
    let (winner, won, lost) = match (committed(&outcome_one), committed(&outcome_two)) {
        (true, false) => (0, outcome_one, outcome_two),
        (false, true) => (1, outcome_two, outcome_one),
        _ => panic!("exactly one of two tag writes must land, got {outcome_one:?} and {outcome_two:?}"),
    };
    let (won_by, loser, digest) = [(&first, &second, &one), (&second, &first, &two)][winner];
    assert_eq!(
        won,
        PromotionCommitOutcome::Committed { log_index: before, release_digest: sealed(won_by, before).release_digest }
    );
    assert_eq!(lost, PromotionCommitOutcome::TagMoved { current: Some(digest.clone()) });
    let target = repo(TARGET);
    assert_eq!(store.manifest_by_tag(&target, &tag("1.0")).await.unwrap().map(|r| r.digest).as_ref(), Some(digest));
    assert_eq!(store.promotion(&loser.id).await.unwrap().as_ref(), Some(loser), "the loser is still pending");
    let logged = events(store, before).await;
    assert_eq!(kinds(&logged), [EventKind::PromotionCommit.as_str(), EventKind::TagCreate.as_str()]);
    assert_eq!(logged[1]["details"]["promotion"], serde_json::json!(won_by.id), "only the winner's tag event");
}

pub async fn tags_move_only_from_where_they_stand(store: &dyn MetadataStore) {
    let target = repo(TARGET);
    let [one, two, three] = ["one", "two", "three"].map(|b| manifest(b, &[], None, None));
    stored(store.put_manifest(&target, &one, Some((&tag("live"), TagMode::WriteOnce)), &actor(), at(1)).await.unwrap());
    for m in [&two, &three] {
        stored(store.put_manifest(&target, m, None, &actor(), at(1)).await.unwrap());
    }
    let size = store.log_size().await.unwrap();
    let rollback = |to: &Digest| event(EventKind::PromotionRollback).with_detail("to", serde_json::json!(to.as_str()));
    let (to_two, to_three) = (rollback(&two.digest), rollback(&three.digest));
    let live = tag("live");
    let (first, second) = tokio::join!(
        store.move_tag(&target, &live, &one.digest, &two.digest, &to_two),
        store.move_tag(&target, &live, &one.digest, &three.digest, &to_three),
    );
    let (winner, index) = one_winner(first.unwrap(), second.unwrap());
    let to = [&two.digest, &three.digest][winner];
    assert_eq!(index, size, "the move's index is its event's");
    assert_eq!(entry(store, index).await["details"]["to"], serde_json::json!(to.as_str()));
    assert_eq!(store.manifest_by_tag(&target, &tag("live")).await.unwrap().map(|r| r.digest).as_ref(), Some(to));

    let refusals = [
        (target.clone(), tag("live"), &one.digest, &three.digest, "the tag no longer names `from`"),
        (target.clone(), tag("live"), to, &Digest::of(b"elsewhere"), "the repository lacks `to`"),
        (target.clone(), tag("gone"), to, &one.digest, "no such tag"),
        (repo("prod/none"), tag("live"), to, &one.digest, "no such repository"),
    ];
    for (r, t, from, to, why) in refusals {
        assert_eq!(store.move_tag(&r, &t, from, to, &rollback(to)).await.unwrap(), None, "{why}");
    }
    assert_eq!(store.log_size().await.unwrap(), size + 1, "a refused move logs nothing");
    assert_eq!(store.manifest_by_tag(&target, &tag("live")).await.unwrap().map(|r| r.digest).as_ref(), Some(to));
}
