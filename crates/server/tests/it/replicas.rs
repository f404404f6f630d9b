//! Two servers over one store, as replicas behind a load balancer run: what one replica learns
//! about a login (a spent one-time code, a run of failures) holds on the other at once, and the
//! log they both append to stays one tree.

use airlock_test_support::{ADMIN_PASSWORD, ManualClock, TestApp, basic};
use axum::body::Body;
use http::{Request, StatusCode};

/// 2026-11-17T09:00:00Z.
const START_SECS: u64 = 1_795_669_200;

/// Two apps over one data directory with one clock, the admin enrolled with a second factor on
/// the first; returns them with the factor's secret.
async fn replicas() -> (TestApp, TestApp, Vec<u8>, ManualClock) {
    let clock = ManualClock::at(i64::try_from(START_SECS * 1000).unwrap());
    let mut a = TestApp::with_clock("", clock.clone()).await;
    let enroll = Request::post("/api/v1/auth/mfa").header("authorization", basic("admin", ADMIN_PASSWORD));
    let enrolled = a.send_anonymous(enroll.body(Body::empty()).unwrap()).await;
    assert_eq!(enrolled.status, StatusCode::OK, "{:?}", enrolled.body);
    let secret = airlock_test_support::promotion::base32_decode(enrolled.json()["secret"].as_str().unwrap());
    let b = TestApp::with_config_and_clock(a.app.config.clone(), clock.clone()).await;
    // Opening the second rotated the tester's key; both replicas log it in with the new one.
    a.tester_key = b.tester_key.clone();
    (a, b, secret, clock)
}

fn login(code: &str) -> Request<Body> {
    Request::post("/api/v1/auth/token")
        .header("authorization", basic("admin", ADMIN_PASSWORD))
        .header("x-airlock-otp", code)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_one_time_code_spent_on_one_replica_is_refused_on_another() {
    let (a, b, secret, _clock) = replicas().await;
    let code = airlock_access::totp::code_at(&secret, START_SECS);
    assert_eq!(a.send_anonymous(login(&code)).await.status, StatusCode::OK);
    let replay = b.send_anonymous(login(&code)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "the code was spent on the other replica: {:?}", replay.body);
    // An earlier step of the window is spent too: only later steps are accepted.
    let earlier = airlock_access::totp::code_at(&secret, START_SECS - 30);
    assert_eq!(b.send_anonymous(login(&earlier)).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn one_code_raced_at_two_replicas_logs_in_once() {
    let (a, b, secret, clock) = replicas().await;
    for round in 1..=5u64 {
        clock.advance(60_000);
        let code = airlock_access::totp::code_at(&secret, START_SECS + 60 * round);
        let (first, second) = tokio::join!(a.send_anonymous(login(&code)), b.send_anonymous(login(&code)));
        let mut statuses = [first.status, second.status];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED], "round {round}");
    }
}

#[tokio::test]
async fn failures_on_one_replica_back_off_the_guesser_on_another() {
    let (a, b, secret, _clock) = replicas().await;
    let valid: Vec<String> = [START_SECS - 30, START_SECS, START_SECS + 30]
        .iter()
        .map(|t| airlock_access::totp::code_at(&secret, *t))
        .collect();
    let guess = (1..)
        .map(|h| airlock_access::totp::code_at(&secret, START_SECS + 3600 * h))
        .find(|c| !valid.contains(c))
        .unwrap();
    for n in 0..airlock_server::caller::LOGIN_FAILURES_BEFORE_BACKOFF {
        let replica = if n % 2 == 0 { &a } else { &b };
        assert_eq!(replica.send_anonymous(login(&guess)).await.status, StatusCode::UNAUTHORIZED);
    }
    for replica in [&a, &b] {
        let next = replica.send_anonymous(login(&guess)).await;
        assert_eq!(next.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", next.body);
    }
}

#[tokio::test]
async fn appends_from_two_replicas_keep_one_log() {
    let (a, b, _secret, _clock) = replicas().await;
    // Each push appends an event; interleave them over both replicas.
    for n in 0..6u8 {
        let replica = if n % 2 == 0 { &a } else { &b };
        let image = airlock_test_support::oci::Image::new(&[("file", &[n; 16])]);
        let pushed = replica.push_image("dev/app", &image, &format!("v{n}")).await;
        assert_eq!(pushed.status, StatusCode::CREATED, "push {n}: {:?}", pushed.body);
    }
    // Either replica signs the checkpoint; the other's check of the stored log reproduces it.
    let checkpoint = b.app.state.log.checkpoint().await.expect("replica b signs a checkpoint");
    let verified = a.app.state.log.verify_stored(a.app.state.registry.log_facts()).await.unwrap();
    assert_eq!(verified, None, "the stored log reproduces the checkpoint after appends from both replicas");
    let entries = a.get(&format!("/api/v1/log/entries?start=0&end={}", checkpoint.size)).await.json();
    let pushes = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] == "registry.manifest.push")
        .count();
    assert_eq!(pushes, 6, "every push is on record once");
}
