//! The metadata store conformance suite: every backend (SQLite today, PostgreSQL later) must pass
//! each check. A backend's test binary instantiates them all with [`crate::store_conformance!`].
//!
//! The checks talk to the store only through `airlock_core::ports`, so they describe the
//! contract, not an implementation.

use airlock_core::ports::{MetadataStore, NewManifest, PutManifestOutcome, TagMode, UploadRecord};
use airlock_model::{Digest, RepoName, Tag, Timestamp, UploadId};
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
    assert!(store.unlink_blob(&repo("dev/a"), &d).await.unwrap());
    assert!(!store.unlink_blob(&repo("dev/a"), &d).await.unwrap(), "second unlink finds nothing");
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
    let outcome = store.put_manifest(&repo("dev/a"), &m, None, at(3)).await.unwrap();
    assert_eq!(outcome, PutManifestOutcome::MissingBlob(missing));
    assert_eq!(store.manifest_by_digest(&repo("dev/a"), &m.digest).await.unwrap(), None, "nothing stored");

    let m = manifest("m2", &[&layer], None, None);
    let outcome = store.put_manifest(&repo("dev/b"), &m, None, at(3)).await.unwrap();
    assert_eq!(outcome, PutManifestOutcome::MissingBlob(layer.clone()), "a blob in another repository does not count");
    assert_eq!(store.put_manifest(&repo("dev/a"), &m, None, at(3)).await.unwrap(), PutManifestOutcome::Stored);

    let mut index = manifest("index", &[], None, None);
    index.required_manifests = vec![Digest::of(b"child")];
    let outcome = store.put_manifest(&repo("dev/a"), &index, None, at(3)).await.unwrap();
    assert_eq!(outcome, PutManifestOutcome::MissingManifest(Digest::of(b"child")));
    index.required_manifests = vec![m.digest.clone()];
    assert_eq!(store.put_manifest(&repo("dev/a"), &index, None, at(3)).await.unwrap(), PutManifestOutcome::Stored);
}

pub async fn tags_move_in_pushable_stages_only(store: &dyn MetadataStore) {
    let first = manifest("first", &[], None, None);
    let second = manifest("second", &[], None, None);
    for (r, mode) in [("dev/a", TagMode::Mutable), ("prod/a", TagMode::WriteOnce)] {
        let t = tag("1.0");
        assert_eq!(
            store.put_manifest(&repo(r), &first, Some((&t, mode)), at(1)).await.unwrap(),
            PutManifestOutcome::Stored
        );
        let again = store.put_manifest(&repo(r), &first, Some((&t, mode)), at(2)).await.unwrap();
        assert_eq!(again, PutManifestOutcome::Stored, "re-setting a tag to the same digest is idempotent");
        let moved = store.put_manifest(&repo(r), &second, Some((&t, mode)), at(3)).await.unwrap();
        let current = store.manifest_by_tag(&repo(r), &t).await.unwrap().unwrap().digest;
        match mode {
            TagMode::Mutable => {
                assert_eq!(moved, PutManifestOutcome::Stored);
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
    store.put_manifest(&r, &m, Some((&tag("a"), TagMode::Mutable)), at(1)).await.unwrap();
    store.put_manifest(&r, &m, Some((&tag("b"), TagMode::Mutable)), at(1)).await.unwrap();
    assert!(store.delete_tag(&r, &tag("a")).await.unwrap());
    assert!(!store.delete_tag(&r, &tag("a")).await.unwrap());
    assert!(store.manifest_by_digest(&r, &m.digest).await.unwrap().is_some(), "deleting a tag keeps the manifest");
    assert!(store.delete_manifest(&r, &m.digest).await.unwrap());
    assert_eq!(store.manifest_by_tag(&r, &tag("b")).await.unwrap(), None);
    assert!(!store.delete_manifest(&r, &m.digest).await.unwrap());
    assert!(!store.delete_manifest(&repo("dev/none"), &m.digest).await.unwrap());
}

pub async fn tags_and_catalog_paginate(store: &dyn MetadataStore) {
    let m = manifest("paged", &[], None, None);
    let r = repo("dev/a");
    assert_eq!(store.tags(&r, None, 10).await.unwrap(), None, "an unknown repository has no tag list");
    for t in ["c", "a", "b"] {
        store.put_manifest(&r, &m, Some((&tag(t), TagMode::Mutable)), at(1)).await.unwrap();
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
        store.put_manifest(&r, m, None, at(1)).await.unwrap();
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
