//! Blobs, manifests, tags, referrers and upload sessions: the registry's ports.

use super::*;

pub async fn blobs_are_visible_only_where_linked(store: &dyn MetadataStore) {
    let d = blob(store, "dev/a", b"one").await;
    let found = store.blob_in_repo(&repo("dev/a"), &d).await.unwrap().expect("linked where pushed");
    assert_eq!((found.size, found.inline.as_deref(), found.quarantined), (3, Some(&b"one"[..]), false));
    assert_eq!(store.blob_in_repo(&repo("dev/b"), &d).await.unwrap(), None, "not linked elsewhere");
    assert!(store.unlink_blob(&repo("dev/a"), &d, &actor(), at(9)).await.unwrap());
    assert!(!store.unlink_blob(&repo("dev/a"), &d, &actor(), at(9)).await.unwrap(), "second unlink finds nothing");
    assert_eq!(store.blob_in_repo(&repo("dev/a"), &d).await.unwrap(), None);
}

pub async fn blob_sizes_are_read_together_where_linked(store: &dyn MetadataStore) {
    let a = repo("dev/a");
    let one = blob(store, "dev/a", b"one").await;
    let elsewhere = blob(store, "dev/b", b"elsewhere").await;
    let rotting = blob(store, "dev/a", b"rotting").await;
    store.quarantine_blob(&rotting, at(5)).await.unwrap();
    let unknown = Digest::of(b"never pushed");
    let sizes =
        store.blob_sizes_in_repo(&a, &[one.clone(), elsewhere.clone(), rotting.clone(), unknown]).await.unwrap();
    let expected: std::collections::HashMap<Digest, u64> =
        [(one.clone(), 3), (rotting.clone(), 7)].into_iter().collect();
    assert_eq!(sizes, expected, "linked here, quarantined or not, as `blob_in_repo` finds them");
    assert!(store.blob_sizes_in_repo(&a, &[]).await.unwrap().is_empty());
    // Past one query's batch: every digest linked here is found.
    let mut many = Vec::new();
    for i in 0..450u32 {
        let bytes: &'static [u8] = Box::leak(format!("blob {i}").into_bytes().into_boxed_slice());
        many.push(blob(store, "dev/c", bytes).await);
    }
    let sizes = store.blob_sizes_in_repo(&repo("dev/c"), &many).await.unwrap();
    assert_eq!(sizes.len(), 450);
    assert_eq!(sizes.get(&many[449]), Some(&8), "`blob 449` is eight bytes");
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
    assert_eq!(outcome, PutManifestOutcome::MissingBlob(missing.clone()));
    assert_eq!(store.manifest_by_digest(&repo("dev/a"), &m.digest).await.unwrap(), None, "nothing stored");
    // Checked together, the first missing in the manifest's order is named; a layer named twice
    // is held once.
    let also_missing = Digest::of(b"never pushed either");
    let m = manifest("m1b", &[&layer, &also_missing, &layer, &missing], None, None);
    let outcome = store.put_manifest(&repo("dev/a"), &m, None, &actor(), at(3)).await.unwrap();
    assert_eq!(outcome, PutManifestOutcome::MissingBlob(also_missing));
    let absent = Digest::of(b"absent after many held");
    let mut refs: Vec<&Digest> = vec![&layer; 449];
    refs.push(&absent);
    let m = manifest("m1c", &refs, None, None);
    let outcome = store.put_manifest(&repo("dev/a"), &m, None, &actor(), at(3)).await.unwrap();
    assert_eq!(outcome, PutManifestOutcome::MissingBlob(absent), "past the first batch of digests");

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
        assert!(store.create_upload(u, 2).await.unwrap());
    }
    assert_eq!(store.upload(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.uploads_by_client("10.0.0.1").await.unwrap(), 2);
    // A client holding its most sessions opens no other; another client still may.
    let over = upload("eeeeeeeeeeeeeeeeeeee", "10.0.0.1", 250);
    assert!(!store.create_upload(&over, 2).await.unwrap(), "a third session over a limit of two");
    assert_eq!(store.upload(&over.id).await.unwrap(), None, "nothing stored");
    assert_eq!(store.uploads_by_client("10.0.0.1").await.unwrap(), 2);
    assert!(store.create_upload(&over, 3).await.unwrap(), "under a higher limit");
    store.delete_upload(&over.id).await.unwrap();
    store.touch_upload(&a.id, at(400)).await.unwrap();
    assert_eq!(store.idle_uploads(at(350), 10).await.unwrap(), vec![b.id.clone(), c.id.clone()]);
    store.delete_upload(&b.id).await.unwrap();
    assert_eq!(store.upload(&b.id).await.unwrap(), None);
    assert_eq!(store.uploads_by_client("10.0.0.1").await.unwrap(), 1);
}

pub async fn closing_an_upload_with_its_blob(store: &dyn MetadataStore) {
    let u = upload("dddddddddddddddddddd", "10.0.0.3", 1);
    assert!(store.create_upload(&u, 1).await.unwrap());
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

pub async fn scans_and_pages_stay_in_bounds(store: &dyn MetadataStore) {
    let mut digests = [
        blob(store, "dev/a", b"first").await,
        blob(store, "dev/a", b"second").await,
        blob(store, "dev/b", b"third").await,
    ];
    digests.sort();
    let scan = async |after: Option<&Digest>, limit| {
        store.blobs_after(after, limit).await.unwrap().into_iter().map(|b| b.digest).collect::<Vec<_>>()
    };
    assert_eq!(scan(None, 2).await, digests[..2], "digest order, at most `limit`");
    assert_eq!(scan(Some(&digests[1]), 2).await, digests[2..]);
    assert!(scan(Some(&digests[2]), 2).await.is_empty(), "nothing after the last");
    assert!(scan(None, 0).await.is_empty());

    assert_eq!(store.catalog(None, 1).await.unwrap(), ["dev/a"]);
    assert!(store.catalog(Some("dev/b"), 10).await.unwrap().is_empty());
    assert!(store.catalog(None, 0).await.unwrap().is_empty());

    let (old, new) = (upload("eeeeeeeeeeeeeeeeeeee", "10.0.0.1", 100), upload("ffffffffffffffffffff", "10.0.0.1", 200));
    for u in [&new, &old] {
        assert!(store.create_upload(u, 2).await.unwrap());
    }
    assert_eq!(store.idle_uploads(at(300), 1).await.unwrap(), std::slice::from_ref(&old.id), "the longest idle first");
    assert!(store.idle_uploads(at(100), 10).await.unwrap().is_empty(), "idle since before, strictly");
    let ghost = UploadId::parse("00000000000000000000").unwrap();
    assert_eq!(store.upload(&ghost).await.unwrap(), None);
    store.touch_upload(&ghost, at(400)).await.unwrap();
    store.delete_upload(&ghost).await.unwrap();
    assert_eq!(store.upload(&ghost).await.unwrap(), None, "touching or deleting nothing creates nothing");
    assert_eq!(store.uploads_by_client("10.0.0.9").await.unwrap(), 0);

    let r = repo("dev/a");
    store.put_manifest(&r, &manifest("x", &[], None, None), None, &actor(), at(1)).await.unwrap();
    store.put_manifest(&r, &manifest("y", &[], None, None), None, &actor(), at(1)).await.unwrap();
    let size = store.log_size().await.unwrap();
    let indices = |leaves: Vec<airlock_core::ports::LogLeaf>| leaves.into_iter().map(|l| l.index).collect::<Vec<_>>();
    assert_eq!(indices(store.log_leaves(size - 1, size + 10).await.unwrap()), [size - 1], "up to the end");
    assert!(store.log_leaves(size, size + 5).await.unwrap().is_empty(), "nothing past the end");
    assert!(store.log_leaves(1, 1).await.unwrap().is_empty(), "an empty range");
}
