//! The transparency log: appends, leaves, nodes, entries, checkpoints, and the events every
//! registry change commits with.

use super::*;

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

pub async fn checkpoints_are_kept_by_size(store: &dyn MetadataStore) {
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    for (size, note) in [(3, "three"), (7, "seven"), (5, "five"), (7, "seven again")] {
        store.put_checkpoint(&StoredCheckpoint { size, note: note.to_owned() }, at(1)).await.unwrap();
    }
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!((latest.size, latest.note.as_str()), (7, "seven"), "the first checkpoint of a size stays");
}
