//! Event-only log appends made at the same time share transactions (group commit), and each
//! caller's events still land once, in order, at exactly the indices it was given.

use std::collections::BTreeSet;

use airlock_core::audit::{Event, EventKind, Subject};
use airlock_model::{RepoName, Tag};
use airlock_test_support::ManualClock;
use airlock_test_support::engine::{Engine, actor};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_each_land_once_at_their_own_indices() {
    let clock = ManualClock::at(1_795_669_200_000);
    let engine = Engine::open("", clock.clone()).await;
    let start = engine.store().log_size().await.unwrap();
    let callers = 64u64;
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let registry = engine.registry.clone();
            let at = airlock_model::Timestamp::from_millis(1_795_669_200_000);
            tokio::spawn(async move {
                let events: Vec<Event> = (0..2)
                    .map(|n| {
                        let subject = Subject {
                            repository: Some(RepoName::parse("dev/app").unwrap()),
                            digest: None,
                            tag: Some(Tag::parse(&format!("caller{i}-event{n}")).unwrap()),
                        };
                        Event::allowed(EventKind::PolicyEvaluate, &actor("ci"), at, subject)
                    })
                    .collect();
                (i, registry.log_events(&events).await.unwrap())
            })
        })
        .collect();
    let mut given = BTreeSet::new();
    let mut answers = Vec::new();
    for task in tasks {
        let (i, indices) = task.await.unwrap();
        assert_eq!(indices.len(), 2, "caller {i}: {indices:?}");
        assert_eq!(indices[1], indices[0] + 1, "caller {i}'s events are contiguous, in order: {indices:?}");
        for index in &indices {
            assert!(given.insert(*index), "index {index} given twice");
        }
        answers.push((i, indices));
    }
    let end = engine.store().log_size().await.unwrap();
    assert_eq!(end - start, callers * 2, "every event once, nothing more");
    assert_eq!(given, (start..end).collect::<BTreeSet<u64>>());

    let leaves = engine.store().log_leaves(start, end).await.unwrap();
    for (i, indices) in answers {
        for (n, index) in indices.iter().enumerate() {
            let leaf = leaves.iter().find(|l| l.index == *index).unwrap();
            let entry: Value = serde_json::from_slice(&leaf.data).unwrap();
            let tag = entry.pointer("/subject/tag").or_else(|| entry.pointer("/event/subject/tag"));
            assert_eq!(
                tag.and_then(Value::as_str),
                Some(format!("caller{i}-event{n}").as_str()),
                "leaf {index}: {entry}"
            );
        }
    }
}
