//! The metadata store conformance suite: every backend (SQLite today, PostgreSQL later) must pass
//! each check. A backend's test binary instantiates them all with [`crate::store_conformance!`].
//!
//! The checks talk to the store only through `airlock_core::ports`, so they describe the
//! contract, not an implementation.

use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::{
    ApprovalRecord, EngineManifest, FreezeRecord, GrantKind, GrantRecord, GrantStatus, MetadataStore, NewAttestation,
    NewManifest, PrincipalChange, PrincipalRecord, PromotionRecord, PromotionStatus, PutManifestOutcome,
    StoredCheckpoint, StoredRoot, TagMode, UploadRecord, Verdict, WaiverRecord, WaiverState,
};
use airlock_model::{Digest, PrincipalId, PrincipalKind, RepoName, StageName, Tag, Timestamp, UploadId};
use airlock_tlog::{CompactRange, leaf_hash};
use bytes::Bytes;

/// Instantiates every conformance check as a `#[tokio::test]`. `$make` is an expression that
/// evaluates to a future yielding `(guard, store)`: a fresh, empty store and whatever must live
/// as long as it (a temporary directory, a database handle).
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@cases $make;
            blobs_are_visible_only_where_linked,
            mount_needs_a_holder,
            quarantine_hides_and_reinsert_heals,
            manifest_references_are_checked,
            tags_move_in_pushable_stages_only,
            deleting_a_manifest_removes_its_tags,
            tags_and_catalog_paginate,
            referrers_filter_by_artifact_type,
            uploads_live_until_deleted_or_idle,
            closing_an_upload_with_its_blob,
            blob_totals_count_live_blobs,
            log_appends_are_sequential_and_durable,
            state_changes_and_their_events_commit_together,
            log_nodes_reproduce_the_root,
            log_entries_are_read_by_index_in_the_order_asked,
            granting_rows_store_the_index_of_their_event,
            checkpoints_are_kept_by_size,
            trust_roots_keep_every_version,
            attestations_are_recorded_with_their_manifest,
            principals_change_with_their_epoch,
            grants_move_once_and_revocation_raises_the_epoch,
            release_bundles_attach_once_per_promotion,
        );
    };
    (@cases $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $make.await;
                $crate::conformance::$name(&store).await;
            }
        )*
    };
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).expect("valid repository name")
}

fn tag(name: &str) -> Tag {
    Tag::parse(name).expect("valid tag")
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn actor() -> Actor {
    Actor::anonymous("conformance")
}

/// A stored manifest's log index, or a panic naming what happened instead.
fn stored(outcome: PutManifestOutcome) -> u64 {
    match outcome {
        PutManifestOutcome::Stored { log_index } => log_index,
        other => panic!("expected the manifest to be stored, got {other:?}"),
    }
}

fn manifest(body: &str, blobs: &[&Digest], subject: Option<&Digest>, artifact_type: Option<&str>) -> NewManifest {
    NewManifest {
        digest: Digest::of(body.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        artifact_type: artifact_type.map(str::to_owned),
        subject: subject.cloned(),
        annotations_json: "{}".to_owned(),
        required_blobs: blobs.iter().map(|d| (*d).clone()).collect(),
        required_manifests: Vec::new(),
        attestation: None,
    }
}

async fn blob(store: &dyn MetadataStore, repo_name: &str, bytes: &'static [u8]) -> Digest {
    let digest = Digest::of(bytes);
    store
        .insert_blob(&repo(repo_name), &digest, bytes.len() as u64, Some(Bytes::from_static(bytes)), None, at(1))
        .await
        .expect("insert blob");
    digest
}

pub async fn blobs_are_visible_only_where_linked(store: &dyn MetadataStore) {
    let d = blob(store, "dev/a", b"one").await;
    let found = store.blob_in_repo(&repo("dev/a"), &d).await.unwrap().expect("linked where pushed");
    assert_eq!((found.size, found.inline.as_deref(), found.quarantined), (3, Some(&b"one"[..]), false));
    assert_eq!(store.blob_in_repo(&repo("dev/b"), &d).await.unwrap(), None, "not linked elsewhere");
    assert!(store.unlink_blob(&repo("dev/a"), &d, &actor(), at(9)).await.unwrap());
    assert!(!store.unlink_blob(&repo("dev/a"), &d, &actor(), at(9)).await.unwrap(), "second unlink finds nothing");
    assert_eq!(store.blob_in_repo(&repo("dev/a"), &d).await.unwrap(), None);
}

pub async fn mount_needs_a_holder(store: &dyn MetadataStore) {
    let d = blob(store, "dev/a", b"shared").await;
    assert!(!store.mount_blob(&repo("dev/b"), &repo("dev/c"), &d, at(2)).await.unwrap(), "dev/c holds nothing");
    assert_eq!(store.blob_in_repo(&repo("dev/b"), &d).await.unwrap(), None);
    assert!(store.mount_blob(&repo("dev/b"), &repo("dev/a"), &d, at(2)).await.unwrap());
    assert!(store.blob_in_repo(&repo("dev/b"), &d).await.unwrap().is_some());
}

pub async fn quarantine_hides_and_reinsert_heals(store: &dyn MetadataStore) {
    let d = blob(store, "dev/a", b"rotting").await;
    store.quarantine_blob(&d, at(5)).await.unwrap();
    let found = store.blob_in_repo(&repo("dev/a"), &d).await.unwrap().expect("still recorded");
    assert!(found.quarantined);
    assert!(store.blobs_after(None, 10).await.unwrap().is_empty(), "the scrubber skips quarantined blobs");
    assert!(!store.mount_blob(&repo("dev/b"), &repo("dev/a"), &d, at(6)).await.unwrap(), "no mounting corrupt bytes");
    blob(store, "dev/a", b"rotting").await;
    assert!(!store.blob_in_repo(&repo("dev/a"), &d).await.unwrap().unwrap().quarantined, "verified bytes heal it");
}

pub async fn manifest_references_are_checked(store: &dyn MetadataStore) {
    let layer = blob(store, "dev/a", b"layer").await;
    let missing = Digest::of(b"never pushed");
    let m = manifest("m1", &[&layer, &missing], None, None);
    let outcome = store.put_manifest(&repo("dev/a"), &m, None, &actor(), at(3)).await.unwrap();
    assert_eq!(outcome, PutManifestOutcome::MissingBlob(missing));
    assert_eq!(store.manifest_by_digest(&repo("dev/a"), &m.digest).await.unwrap(), None, "nothing stored");

    let m = manifest("m2", &[&layer], None, None);
    let outcome = store.put_manifest(&repo("dev/b"), &m, None, &actor(), at(3)).await.unwrap();
    assert_eq!(outcome, PutManifestOutcome::MissingBlob(layer.clone()), "a blob in another repository does not count");
    stored(store.put_manifest(&repo("dev/a"), &m, None, &actor(), at(3)).await.unwrap());

    let mut index = manifest("index", &[], None, None);
    index.required_manifests = vec![Digest::of(b"child")];
    let outcome = store.put_manifest(&repo("dev/a"), &index, None, &actor(), at(3)).await.unwrap();
    assert_eq!(outcome, PutManifestOutcome::MissingManifest(Digest::of(b"child")));
    index.required_manifests = vec![m.digest.clone()];
    stored(store.put_manifest(&repo("dev/a"), &index, None, &actor(), at(3)).await.unwrap());
}

pub async fn tags_move_in_pushable_stages_only(store: &dyn MetadataStore) {
    let first = manifest("first", &[], None, None);
    let second = manifest("second", &[], None, None);
    for (r, mode) in [("dev/a", TagMode::Mutable), ("prod/a", TagMode::WriteOnce)] {
        let t = tag("1.0");
        stored(store.put_manifest(&repo(r), &first, Some((&t, mode)), &actor(), at(1)).await.unwrap());
        // Re-setting a tag to the same digest is idempotent, in either mode.
        stored(store.put_manifest(&repo(r), &first, Some((&t, mode)), &actor(), at(2)).await.unwrap());
        let moved = store.put_manifest(&repo(r), &second, Some((&t, mode)), &actor(), at(3)).await.unwrap();
        let current = store.manifest_by_tag(&repo(r), &t).await.unwrap().unwrap().digest;
        match mode {
            TagMode::Mutable => {
                stored(moved);
                assert_eq!(current, second.digest);
            }
            TagMode::WriteOnce => {
                assert_eq!(moved, PutManifestOutcome::TagImmutable { current: first.digest.clone() });
                assert_eq!(current, first.digest, "a write-once tag never moves");
            }
        }
    }
}

pub async fn deleting_a_manifest_removes_its_tags(store: &dyn MetadataStore) {
    let m = manifest("doomed", &[], None, None);
    let r = repo("dev/a");
    store.put_manifest(&r, &m, Some((&tag("a"), TagMode::Mutable)), &actor(), at(1)).await.unwrap();
    store.put_manifest(&r, &m, Some((&tag("b"), TagMode::Mutable)), &actor(), at(1)).await.unwrap();
    assert!(store.delete_tag(&r, &tag("a"), &actor(), at(9)).await.unwrap());
    assert!(!store.delete_tag(&r, &tag("a"), &actor(), at(9)).await.unwrap());
    assert!(store.manifest_by_digest(&r, &m.digest).await.unwrap().is_some(), "deleting a tag keeps the manifest");
    assert!(store.delete_manifest(&r, &m.digest, &actor(), at(9)).await.unwrap());
    assert_eq!(store.manifest_by_tag(&r, &tag("b")).await.unwrap(), None);
    assert!(!store.delete_manifest(&r, &m.digest, &actor(), at(9)).await.unwrap());
    assert!(!store.delete_manifest(&repo("dev/none"), &m.digest, &actor(), at(9)).await.unwrap());
}

pub async fn tags_and_catalog_paginate(store: &dyn MetadataStore) {
    let m = manifest("paged", &[], None, None);
    let r = repo("dev/a");
    assert_eq!(store.tags(&r, None, 10).await.unwrap(), None, "an unknown repository has no tag list");
    for t in ["c", "a", "b"] {
        store.put_manifest(&r, &m, Some((&tag(t), TagMode::Mutable)), &actor(), at(1)).await.unwrap();
    }
    assert_eq!(store.tags(&r, None, 2).await.unwrap(), Some(vec!["a".to_owned(), "b".to_owned()]));
    assert_eq!(store.tags(&r, Some("b"), 2).await.unwrap(), Some(vec!["c".to_owned()]));
    assert_eq!(store.tags(&r, None, 0).await.unwrap(), Some(vec![]));
    blob(store, "dev/b", b"x").await;
    assert_eq!(store.catalog(None, 10).await.unwrap(), vec!["dev/a".to_owned(), "dev/b".to_owned()]);
    assert_eq!(store.catalog(Some("dev/a"), 10).await.unwrap(), vec!["dev/b".to_owned()]);
}

pub async fn referrers_filter_by_artifact_type(store: &dyn MetadataStore) {
    let r = repo("dev/a");
    let subject = Digest::of(b"subject");
    let sbom = manifest("sbom", &[], Some(&subject), Some("application/spdx+json"));
    let sig = manifest("sig", &[], Some(&subject), Some("application/vnd.dev.sigstore.bundle+json"));
    let other = manifest("other", &[], Some(&Digest::of(b"elsewhere")), Some("application/spdx+json"));
    for m in [&sbom, &sig, &other] {
        store.put_manifest(&r, m, None, &actor(), at(1)).await.unwrap();
    }
    let all = store.referrers(&r, &subject, None).await.unwrap();
    assert_eq!(all.iter().map(|x| &x.digest).collect::<Vec<_>>().len(), 2);
    let only = store.referrers(&r, &subject, Some("application/spdx+json")).await.unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].digest, sbom.digest);
    assert_eq!(only[0].size, 4);
    assert!(store.referrers(&repo("dev/b"), &subject, None).await.unwrap().is_empty());
}

fn upload(id: &str, client: &str, updated: i64) -> UploadRecord {
    UploadRecord {
        id: UploadId::parse(id).expect("valid upload id"),
        repo: repo("dev/a"),
        client: client.to_owned(),
        created_at: at(updated),
        updated_at: at(updated),
    }
}

pub async fn uploads_live_until_deleted_or_idle(store: &dyn MetadataStore) {
    let a = upload("aaaaaaaaaaaaaaaaaaaa", "10.0.0.1", 100);
    let b = upload("bbbbbbbbbbbbbbbbbbbb", "10.0.0.1", 200);
    let c = upload("cccccccccccccccccccc", "10.0.0.2", 300);
    for u in [&a, &b, &c] {
        store.create_upload(u).await.unwrap();
    }
    assert_eq!(store.upload(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.uploads_by_client("10.0.0.1").await.unwrap(), 2);
    store.touch_upload(&a.id, at(400)).await.unwrap();
    assert_eq!(store.idle_uploads(at(350), 10).await.unwrap(), vec![b.id.clone(), c.id.clone()]);
    store.delete_upload(&b.id).await.unwrap();
    assert_eq!(store.upload(&b.id).await.unwrap(), None);
    assert_eq!(store.uploads_by_client("10.0.0.1").await.unwrap(), 1);
}

pub async fn closing_an_upload_with_its_blob(store: &dyn MetadataStore) {
    let u = upload("dddddddddddddddddddd", "10.0.0.3", 1);
    store.create_upload(&u).await.unwrap();
    let d = Digest::of(b"done");
    store.insert_blob(&u.repo, &d, 4, Some(Bytes::from_static(b"done")), Some(&u.id), at(2)).await.unwrap();
    assert_eq!(store.upload(&u.id).await.unwrap(), None, "the session ended with the blob's transaction");
    assert!(store.blob_in_repo(&u.repo, &d).await.unwrap().is_some());
}

pub async fn blob_totals_count_live_blobs(store: &dyn MetadataStore) {
    blob(store, "dev/a", b"12345").await;
    let d = blob(store, "dev/b", b"123").await;
    blob(store, "dev/c", b"123").await;
    let totals = store.blob_totals().await.unwrap();
    assert_eq!((totals.count, totals.bytes), (2, 8), "a blob linked twice is stored once");
    store.quarantine_blob(&d, at(9)).await.unwrap();
    let totals = store.blob_totals().await.unwrap();
    assert_eq!((totals.count, totals.bytes), (1, 5));
}

fn kinds(store_events: &[serde_json::Value]) -> Vec<String> {
    store_events.iter().map(|e| e["type"].as_str().unwrap_or("?").to_owned()).collect()
}

async fn events(store: &dyn MetadataStore, from: u64) -> Vec<serde_json::Value> {
    let size = store.log_size().await.unwrap();
    store
        .log_leaves(from, size)
        .await
        .unwrap()
        .iter()
        .map(|l| serde_json::from_slice(&l.data).expect("leaves are JSON"))
        .collect()
}

pub async fn log_appends_are_sequential_and_durable(store: &dyn MetadataStore) {
    assert_eq!(store.log_size().await.unwrap(), 0);
    let event = |n: i64| Event::allowed(EventKind::ServerStart, &Actor::system(), at(n), Subject::default());
    assert_eq!(store.append_events(&[event(1), event(2)]).await.unwrap(), vec![0, 1]);
    assert_eq!(store.append_events(&[event(3)]).await.unwrap(), vec![2]);
    assert_eq!(store.log_size().await.unwrap(), 3);
    let leaves = store.log_leaves(1, 3).await.unwrap();
    assert_eq!(leaves.iter().map(|l| l.index).collect::<Vec<_>>(), vec![1, 2]);
    for leaf in &leaves {
        assert_eq!(leaf.leaf_hash, leaf_hash(&leaf.data), "the recorded leaf hash matches the bytes");
    }
    assert_eq!(leaves[0].data.as_ref(), event(2).to_leaf().unwrap().as_slice(), "leaf bytes are the canonical event");
}

pub async fn state_changes_and_their_events_commit_together(store: &dyn MetadataStore) {
    let r = repo("dev/a");
    let layer = blob(store, "dev/a", b"layer").await;
    let missing = Digest::of(b"missing");
    let before = store.log_size().await.unwrap();
    let refused =
        store.put_manifest(&r, &manifest("bad", &[&missing], None, None), None, &actor(), at(1)).await.unwrap();
    assert_eq!(refused, PutManifestOutcome::MissingBlob(missing));
    assert_eq!(store.log_size().await.unwrap(), before, "a refused change logs nothing");

    let first = manifest("first", &[&layer], None, None);
    let index =
        stored(store.put_manifest(&r, &first, Some((&tag("v1"), TagMode::Mutable)), &actor(), at(2)).await.unwrap());
    assert_eq!(index, before);
    let second = manifest("second", &[&layer], None, None);
    stored(store.put_manifest(&r, &second, Some((&tag("v1"), TagMode::Mutable)), &actor(), at(3)).await.unwrap());
    stored(store.put_manifest(&r, &second, Some((&tag("v1"), TagMode::Mutable)), &actor(), at(4)).await.unwrap());
    assert!(store.delete_tag(&r, &tag("v1"), &actor(), at(5)).await.unwrap());
    assert!(store.delete_manifest(&r, &first.digest, &actor(), at(6)).await.unwrap());
    assert!(store.unlink_blob(&r, &layer, &actor(), at(7)).await.unwrap());
    assert!(!store.unlink_blob(&r, &layer, &actor(), at(8)).await.unwrap());
    let logged = events(store, before).await;
    assert_eq!(
        kinds(&logged),
        [
            "registry.manifest.push",
            "registry.tag.create",
            "registry.manifest.push",
            "registry.tag.move",
            "registry.manifest.push",
            "registry.tag.delete",
            "registry.manifest.delete",
            "registry.blob.delete",
        ],
        "a re-push logs the push but no tag change; a no-op unlink logs nothing"
    );
    assert_eq!(logged[3]["details"]["previous"], serde_json::json!(first.digest.as_str()));
    assert_eq!(logged[3]["subject"]["tag"], "v1");
    assert_eq!(logged[5]["subject"]["digest"], serde_json::json!(second.digest.as_str()));
    assert_eq!(logged[0]["request_id"], "conformance");
}

pub async fn log_nodes_reproduce_the_root(store: &dyn MetadataStore) {
    let mut range = CompactRange::new();
    for n in 0..37 {
        let event = Event::allowed(EventKind::ServerStart, &Actor::system(), at(n), Subject::default());
        store.append_events(std::slice::from_ref(&event)).await.unwrap();
        range.push(leaf_hash(&event.to_leaf().unwrap()));
        let size = range.size();
        let ids = airlock_tlog::root_nodes(size);
        let found = store.log_nodes(&ids).await.unwrap();
        let lookup: std::collections::HashMap<_, _> =
            ids.iter().zip(found).map(|(id, h)| (*id, h.expect("node stored"))).collect();
        let root = airlock_tlog::root(size, |id| lookup.get(&id).copied()).unwrap();
        assert_eq!(root, range.root(), "root at size {size}");
    }
    let missing = store.log_nodes(&[airlock_tlog::NodeId { level: 0, index: 1000 }]).await.unwrap();
    assert_eq!(missing, vec![None]);
}

pub async fn log_entries_are_read_by_index_in_the_order_asked(store: &dyn MetadataStore) {
    // More than one lookup batch's worth, so a backend that batches is exercised across batches.
    let events: Vec<Event> =
        (0..450).map(|n| Event::allowed(EventKind::ServerStart, &Actor::system(), at(n), Subject::default())).collect();
    store.append_events(&events).await.unwrap();
    let asked = [5, 449, 5, 450, 1_000_000, 0, 230];
    let found = store.log_entries(&asked).await.unwrap();
    assert_eq!(found.len(), asked.len(), "one answer per index asked, repeats included");
    for (index, leaf) in asked.iter().zip(&found) {
        match usize::try_from(*index).ok().and_then(|i| events.get(i)) {
            Some(event) => {
                let leaf = leaf.as_ref().unwrap_or_else(|| panic!("entry {index} is stored"));
                assert_eq!(leaf.index, *index);
                assert_eq!(leaf.data.as_ref(), event.to_leaf().unwrap().as_slice());
                assert_eq!(leaf.leaf_hash, leaf_hash(&leaf.data));
            }
            None => assert_eq!(leaf, &None, "index {index} is past the end"),
        }
    }
    assert_eq!(store.log_entries(&[]).await.unwrap(), Vec::new());
}

/// The index of the only event of `kind` in the log.
async fn index_of(store: &dyn MetadataStore, kind: EventKind) -> u64 {
    let size = store.log_size().await.unwrap();
    let leaves = store.log_leaves(0, size).await.unwrap();
    let found: Vec<u64> = leaves
        .iter()
        .filter(|l| {
            serde_json::from_slice::<serde_json::Value>(&l.data).unwrap()["type"] == serde_json::json!(kind.as_str())
        })
        .map(|l| l.index)
        .collect();
    assert_eq!(found.len(), 1, "one `{}` event", kind.as_str());
    found[0]
}

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

pub async fn checkpoints_are_kept_by_size(store: &dyn MetadataStore) {
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    for (size, note) in [(3, "three"), (7, "seven"), (5, "five"), (7, "seven again")] {
        store.put_checkpoint(&StoredCheckpoint { size, note: note.to_owned() }, at(1)).await.unwrap();
    }
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!((latest.size, latest.note.as_str()), (7, "seven"), "the first checkpoint of a size stays");
}

pub async fn trust_roots_keep_every_version(store: &dyn MetadataStore) {
    assert_eq!(store.latest_root().await.unwrap(), None);
    let event = |v: u64| {
        Event::allowed(EventKind::TrustRootUpdate, &actor(), at(1), Subject::default())
            .with_detail("version", serde_json::Value::from(v))
    };
    let before = store.log_size().await.unwrap();
    for v in [1u64, 2] {
        let root = StoredRoot { version: v, document: Bytes::from(format!("root {v}")) };
        assert!(store.put_root(&root, &event(v), at(1)).await.unwrap());
    }
    let again = StoredRoot { version: 2, document: Bytes::from_static(b"another root 2") };
    assert!(!store.put_root(&again, &event(2), at(1)).await.unwrap(), "a version is stored once");
    assert_eq!(store.log_size().await.unwrap(), before + 2, "each stored version is logged, the refused one is not");
    assert_eq!(store.latest_root().await.unwrap().unwrap().document.as_ref(), b"root 2");
    assert_eq!(store.root_version(1).await.unwrap().unwrap().document.as_ref(), b"root 1");
    assert_eq!(store.root_version(3).await.unwrap(), None);
}

pub async fn attestations_are_recorded_with_their_manifest(store: &dyn MetadataStore) {
    let r = repo("dev/a");
    let subject = Digest::of(b"the artifact");
    let verdict =
        Verdict { trusted: false, signers: vec![], reasons: vec!["no trust root".to_owned()], root_version: 0 };
    let mut m = manifest("attestation", &[], Some(&subject), Some("application/vnd.in-toto+json"));
    m.attestation = Some(NewAttestation {
        subject: subject.clone(),
        predicate_type: "https://slsa.dev/provenance/v1".to_owned(),
        envelope: Bytes::from_static(b"{\"payloadType\":\"x\"}"),
        verdict: verdict.clone(),
    });
    let before = store.log_size().await.unwrap();
    stored(store.put_manifest(&r, &m, None, &actor(), at(5)).await.unwrap());
    let logged = events(store, before).await;
    assert_eq!(kinds(&logged), ["registry.manifest.push", "trust.attestation.ingest"]);
    assert_eq!(logged[1]["outcome"]["decision"], "denied", "an untrusted attestation is logged as denied");
    assert_eq!(logged[1]["details"]["referrer"], serde_json::json!(m.digest.as_str()));
    let found = store.attestations(&r, &subject).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].manifest, m.digest);
    assert_eq!(found[0].verdict, verdict);
    assert_eq!(found[0].envelope.as_ref(), b"{\"payloadType\":\"x\"}");
    assert!(store.attestations(&repo("dev/b"), &subject).await.unwrap().is_empty());
    assert!(store.delete_manifest(&r, &m.digest, &actor(), at(6)).await.unwrap());
    assert!(store.attestations(&r, &subject).await.unwrap().is_empty(), "deleting the referrer drops its attestation");
}

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

pub async fn grants_move_once_and_revocation_raises_the_epoch(store: &dyn MetadataStore) {
    let bob = PrincipalId::parse("bob").unwrap();
    let record = PrincipalRecord {
        id: bob.clone(),
        kind: PrincipalKind::User,
        epoch: 1,
        disabled: false,
        password_hash: None,
        totp_secret: None,
        api_key_hash: None,
        api_key_expires_at: None,
        roles: vec![],
        created_at: at(1),
        email: None,
        enrollment_hash: Some("e1".repeat(32)),
        enrollment_expires_at: Some(at(100)),
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
    store.create_grant(&pending, &event(EventKind::AccessRequest)).await.unwrap();
    assert_eq!(store.grant("g-1").await.unwrap().as_ref(), Some(&pending));
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
    assert_eq!(
        store.decide_grant(&active, GrantStatus::Pending, None, &event(EventKind::AccessApprove)).await.unwrap(),
        None,
        "a grant is decided once"
    );
    let revoked = GrantRecord { status: GrantStatus::Revoked, ..active };
    store.decide_grant(&revoked, GrantStatus::Active, None, &event(EventKind::AccessRevoke)).await.unwrap().unwrap();
    assert_eq!(store.principal(&bob).await.unwrap().unwrap().epoch, 2, "revoking kills the principal's tokens");
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
