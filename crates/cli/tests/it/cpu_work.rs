//! Policy evaluation runs on a bounded pool, not on the async workers: sixteen evaluations that
//! each run for the whole time budget leave `/healthz` answering at once. A dry run needs
//! `promote.request` and is rate-limited per principal.

use std::process::Stdio;
use std::time::{Duration, Instant};

use airlock_test_support::process::{ServerProcess, request};
use airlock_test_support::{TESTER, basic};

use crate::airlock;
use crate::crash_support::push;

/// A policy only the time budget stops (30^8 iterations), the policy engine's own case.
const ENDLESS_POLICY: &str = include_str!("../../../policy/tests/cases/timeout-exponential/bundle/policy.rego");

const CONCURRENT: usize = 16;
const PER_MINUTE: usize = 20;
const HEALTH_SAMPLES: usize = 100;

/// Before, the evaluations ran on the async workers: 16 of them at the 250 ms budget pushed
/// `/healthz` to 745 ms, and a pull-only principal could run them without limit.
#[test]
fn worst_case_evaluations_leave_the_runtime_free() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("policy.rego"), ENDLESS_POLICY).unwrap();
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nbundle = {:?}\n\n[limits]\nevaluations_per_minute = {PER_MINUTE}\n",
            bundle.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server =
        ServerProcess::start_with(airlock(), &data, &["--config", config.to_str().unwrap()], "warn", Stdio::inherit());
    let image = push(&server, "dev/app", "v1", b"one");
    let path = format!("/api/v1/artifacts/dev/app/{}/evaluate?to=staging", image.digest());

    // A principal that may pull but not ask for a promotion may not run a dry run either.
    let reader = server.service_account("reader", &["auditor"]);
    let reader = bearer(&server, "reader", &reader);
    let refused = request(server.addr, "POST", &path, &[("authorization", &reader)], b"");
    assert_eq!(refused.status, 403, "{}", String::from_utf8_lossy(&refused.body));

    let auth = bearer(&server, TESTER, &server.tester_key);
    let addr = server.addr;
    let evaluations: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (path, auth) = (path.clone(), auth.clone());
            std::thread::spawn(move || request(addr, "POST", &path, &[("authorization", &auth)], b""))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let mut took = Vec::with_capacity(HEALTH_SAMPLES);
    for _ in 0..HEALTH_SAMPLES {
        let started = Instant::now();
        let health = request(addr, "GET", "/healthz", &[], b"");
        took.push(started.elapsed());
        assert_eq!(health.status, 200);
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut timeouts = 0;
    for evaluation in evaluations {
        let reply = evaluation.join().unwrap();
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        let decision: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(decision["outcome"], "deny", "{decision}");
        timeouts += usize::from(decision["errors"][0]["code"] == "timeout");
    }
    assert_eq!(timeouts, CONCURRENT, "every evaluation ran for its whole budget");
    took.sort();
    let p99 = took[HEALTH_SAMPLES * 99 / 100 - 1];
    assert!(p99 < Duration::from_millis(50), "/healthz p99 {p99:?} while {CONCURRENT} evaluations ran: {took:?}");

    // The principal's quota: what is left of the minute's burst (plus one refilled every 60 / N s
    // meanwhile), then 429 with Retry-After.
    let mut answered = 0;
    let throttled = loop {
        let reply = request(addr, "POST", &path, &[("authorization", &auth)], b"");
        if reply.status != 200 {
            break reply;
        }
        answered += 1;
        assert!(answered <= PER_MINUTE - CONCURRENT + 3, "no 429 after {answered} more dry runs");
    };
    assert_eq!(throttled.status, 429, "{}", String::from_utf8_lossy(&throttled.body));
    assert!(throttled.header("retry-after").parse::<u64>().is_ok_and(|s| s >= 1), "{:?}", throttled.headers);
}

/// `Authorization: Bearer` with an API token for a service account.
fn bearer(server: &ServerProcess, name: &str, key: &str) -> String {
    let reply = request(server.addr, "POST", "/api/v1/auth/token", &[("authorization", &basic(name, key))], b"");
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    format!("Bearer {}", body["token"].as_str().unwrap())
}
