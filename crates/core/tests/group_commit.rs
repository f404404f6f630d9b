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

/// A caller that goes away (its client disconnected, its request timed out) while its batch is
/// being committed must not fail the callers whose events rode in the same batch: they stayed,
/// and they get their indices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_fails_no_other() {
    let clock = ManualClock::at(1_795_669_200_000);
    let engine = Engine::open("", clock.clone()).await;
    let at = airlock_model::Timestamp::from_millis(1_795_669_200_000);
    let mut stayed_total = 0u64;
    let start = engine.store().log_size().await.unwrap();
    for round in 0..60u64 {
        let mut stayed = Vec::new();
        let mut leaving = Vec::new();
        for i in 0..12u64 {
            let registry = engine.registry.clone();
            let subject = Subject {
                repository: Some(RepoName::parse("dev/app").unwrap()),
                digest: None,
                tag: Some(Tag::parse(&format!("round{round}-caller{i}")).unwrap()),
            };
            let event = Event::allowed(EventKind::PolicyEvaluate, &actor("ci"), at, subject);
            let task = tokio::spawn(async move { registry.log_events(&[event]).await });
            if i % 3 == 0 { leaving.push(task) } else { stayed.push(task) }
        }
        // Cancel a third of them wherever they are: waiting, leading a batch, or done.
        tokio::time::sleep(std::time::Duration::from_micros(50 * (round % 10))).await;
        for task in &leaving {
            task.abort();
        }
        for (n, task) in stayed.into_iter().enumerate() {
            let answer = task.await.unwrap();
            assert!(answer.is_ok(), "round {round}, caller {n} stayed and got {answer:?}");
            stayed_total += 1;
        }
        for task in leaving {
            let _ = task.await;
        }
    }
    let end = engine.store().log_size().await.unwrap();
    assert!(end - start >= stayed_total, "every caller that stayed was logged: {} < {stayed_total}", end - start);
}

/// When every caller of a batch goes away mid-commit, the batch must not be left half-done
/// holding the store's writer: other writes go on at once, and so do later appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_callers_all_went_away_holds_no_writer() {
    let clock = ManualClock::at(1_795_669_200_000);
    let engine = Engine::open("", clock.clone()).await;
    let at = airlock_model::Timestamp::from_millis(1_795_669_200_000);
    let event = |tag: String| {
        let subject = Subject {
            repository: Some(RepoName::parse("dev/app").unwrap()),
            digest: None,
            tag: Some(Tag::parse(&tag).unwrap()),
        };
        Event::allowed(EventKind::PolicyEvaluate, &actor("ci"), at, subject)
    };
    let within = std::time::Duration::from_secs(5);
    for round in 0..40u64 {
        let tasks: Vec<_> = (0..4u64)
            .map(|i| {
                let registry = engine.registry.clone();
                let event = event(format!("round{round}-gone{i}"));
                tokio::spawn(async move { registry.log_events(&[event]).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_micros(40 * (round % 10))).await;
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        let direct =
            tokio::time::timeout(within, engine.store().append_events(&[event(format!("round{round}-direct"))]))
                .await
                .unwrap_or_else(|_| panic!("round {round}: a write outside the group waited over {within:?}"));
        assert!(direct.is_ok(), "round {round}: {direct:?}");
        let grouped = tokio::time::timeout(within, engine.registry.log_events(&[event(format!("round{round}-after"))]))
            .await
            .unwrap_or_else(|_| panic!("round {round}: the next append waited over {within:?}"));
        assert!(grouped.is_ok(), "round {round}: {grouped:?}");
    }
}
