//! `airlock serve` start-up and shutdown, and `airlock scrub` output.

use std::process::Command;

use airlock_test_support::process::{ServerProcess, request};

use crate::{airlock, run};

#[test]
fn serve_reports_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let health = request(server.addr, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200);
    assert!(!health.header("x-request-id").is_empty());
    let status = server.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn scrub_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let server = ServerProcess::start(airlock(), &data);
        let d = airlock_test_support::oci::digest(b"scrub me");
        let put = request(server.addr, "POST", &format!("/v2/dev/a/blobs/uploads/?digest={d}"), &[], b"scrub me");
        assert_eq!(put.status, 201);
    }
    let out = run(Command::new(airlock()).args(["scrub", "--output", "json", "--data"]).arg(&data));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report, serde_json::json!({"checked": 1, "bytes": 8, "quarantined": []}));
}

#[test]
fn unknown_config_keys_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("airlock.toml");
    std::fs::write(&config, "[limits]\npage_maximum = 5\n").unwrap();
    let out =
        run(Command::new(airlock()).args(["scrub", "--config"]).arg(&config).arg("--data").arg(dir.path().join("d")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown config key `limits.page_maximum`"), "{stderr}");
}
