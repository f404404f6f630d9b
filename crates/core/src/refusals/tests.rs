//! The aggregator's own tests: which refusals are identical, when windows close, and what the
//! table holds when it is full.

use super::*;
use airlock_model::PrincipalKind;

const SECOND: u64 = 1000;

fn at(millis: u64) -> Timestamp {
    Timestamp::from_millis(1_795_669_200_000).plus_millis(millis)
}

/// A failed login from `source` claiming `name`, at `millis` into the test.
fn login(name: &str, source: &str, millis: u64, request: &str) -> Event {
    Event {
        kind: EventKind::LoginFailed,
        time: at(millis),
        actor: Actor::anonymous(request),
        subject: Subject::default(),
        outcome: Outcome::Denied { reasons: vec!["wrong password".to_owned()] },
        details: Map::new(),
    }
    .with_detail("principal", json!(name))
    .with_detail("source", json!(source))
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn identical_refusals_in_a_window_are_logged_once_and_counted() {
    let refusals = Refusals::new(RefusalLimits { window_secs: 10, keys_max: 8 });
    assert_eq!(kinds(&refusals.admit(&login("root", "192.0.2.1", 0, "r-0"))), ["access.login.failed"]);
    for i in 1..100u64 {
        // Another request id and time: still identical.
        assert!(refusals.admit(&login("root", "192.0.2.1", i * 50, &format!("r-{i}"))).is_empty());
    }
    assert!(refusals.close(at(9 * SECOND), false).is_empty(), "the window is still open");
    let closed = refusals.close(at(10 * SECOND), false);
    assert_eq!(kinds(&closed), ["refusal.aggregate"]);
    let json = closed[0].to_json();
    assert_eq!(json["details"]["refused"], "access.login.failed");
    assert_eq!(json["details"]["count"], 100, "the refusal logged in full is counted too");
    assert_eq!(json["details"]["first"], at(0).to_rfc3339());
    assert_eq!(json["details"]["last"], at(99 * 50).to_rfc3339());
    assert_eq!(json["details"]["window_secs"], 10);
    assert_eq!(json["details"]["overflow"], false);
    assert_eq!(json["details"]["details"]["source"], "192.0.2.1");
    assert_eq!(json["actor"], "anonymous");
    assert_eq!(json["actor_kind"], "anonymous");
    assert_eq!(json["request_id"], serde_json::Value::Null, "an aggregate sums up many requests");
    assert_eq!(json["outcome"]["reasons"][0], "wrong password");
    assert_eq!(refusals.open_windows(), 0);
}

#[test]
fn refusals_that_differ_are_each_on_record() {
    let refusals = Refusals::default();
    let differing = [
        login("root", "192.0.2.1", 0, "r-1"),
        login("root", "192.0.2.2", 0, "r-2"),
        Event {
            outcome: Outcome::Denied { reasons: vec!["unknown principal".to_owned()] },
            ..login("root", "192.0.2.1", 0, "r-4")
        },
        Event { kind: EventKind::AccessDenied, ..login("root", "192.0.2.1", 0, "r-5") },
        Event {
            actor: Actor::authenticated(
                &airlock_model::PrincipalId::parse("alice").unwrap(),
                PrincipalKind::User,
                "r-6",
            ),
            ..login("root", "192.0.2.1", 0, "r-6")
        },
    ];
    for event in &differing {
        assert_eq!(refusals.admit(event).len(), 1, "{:?}", event.to_json());
    }
    assert!(refusals.close(at(3600 * SECOND), true).is_empty(), "each window held one refusal, logged in full");
}

#[test]
fn names_sprayed_from_one_address_are_one_key() {
    let refusals = Refusals::default();
    let mut logged = Vec::new();
    for name in ["root", "admin", "oracle", "postgres"] {
        logged.extend(refusals.admit(&login(name, "192.0.2.1", 0, name)));
    }
    assert_eq!(logged.len(), 1, "the claimed name is not part of the key");
    let closed = refusals.close(at(0), true);
    let json = closed[0].to_json();
    assert_eq!(json["details"]["count"], 4);
    assert_eq!(json["details"]["details"]["principal"], "root", "the first refusal's details");
}

#[test]
fn the_next_refusal_after_a_window_closes_it_and_opens_another() {
    let refusals = Refusals::new(RefusalLimits { window_secs: 1, keys_max: 8 });
    refusals.admit(&login("root", "192.0.2.1", 0, "a"));
    refusals.admit(&login("root", "192.0.2.1", 500, "b"));
    let out = refusals.admit(&login("root", "192.0.2.1", 1500, "c"));
    assert_eq!(kinds(&out), ["refusal.aggregate", "access.login.failed"]);
    assert_eq!(out[0].to_json()["details"]["count"], 2);
    assert_eq!(out[0].time, at(1500));
    assert_eq!(out[1].to_json()["request_id"], "c");
}

#[test]
fn a_full_table_folds_new_keys_into_one_overflow_tally_per_type() {
    let refusals = Refusals::new(RefusalLimits { window_secs: 60, keys_max: 3 });
    let mut logged = 0;
    for i in 0..1000u64 {
        logged += refusals.admit(&login("root", &format!("192.0.2.{i}"), i, "r")).len();
    }
    assert_eq!(logged, 3, "only the keys that fit were logged in full");
    assert_eq!(refusals.open_windows(), 4, "three keys and one overflow tally");
    let closed = refusals.close(at(61 * SECOND), false);
    assert_eq!(closed.len(), 1, "the windows of the three keys held one refusal each");
    let json = closed[0].to_json();
    assert_eq!(json["details"]["overflow"], true);
    assert_eq!(json["details"]["count"], 997);
    assert_eq!(json["actor"], "airlock");
    assert!(json["details"].get("details").is_none(), "an overflow tally keeps no one refusal's details");
}

#[test]
fn shutdown_closes_every_open_window() {
    let refusals = Refusals::default();
    refusals.admit(&login("root", "192.0.2.1", 0, "a"));
    refusals.admit(&login("root", "192.0.2.1", 1, "b"));
    refusals.admit(&login("root", "192.0.2.2", 2, "c"));
    let closed = refusals.close(at(3), true);
    assert_eq!(kinds(&closed), ["refusal.aggregate"], "the window of 192.0.2.2 held only its logged refusal");
    assert_eq!(refusals.open_windows(), 0);
}
