//! `airlock serve` start-up and shutdown, and `airlock scrub` output.

use std::process::Command;

use airlock_test_support::process::ServerProcess;

use crate::{airlock, run};

#[test]
fn serve_reports_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let health = server.request("GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200);
    assert!(!health.header("x-request-id").is_empty());
    let status = server.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn json_logs_carry_the_request_id_of_the_response() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server =
        ServerProcess::start_with(airlock(), &dir.path().join("data"), &["--log-format", "json"], "info", log.into());
    let denied = server.request("POST", "/v2/prod/a/blobs/uploads/", &[], b"");
    assert_eq!(denied.status, 403);
    let id = denied.header("x-request-id").to_owned();
    assert_eq!(server.terminate().code(), Some(0));
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let refused = lines
        .iter()
        .find(|l| l["message"] == "request refused")
        .unwrap_or_else(|| panic!("no `request refused` line in:\n{text}"));
    assert_eq!(refused["span"]["request_id"], serde_json::json!(id));
    assert_eq!(refused["code"], "DENIED");
    assert_eq!(refused["status"], 403);
}

#[test]
fn serve_reports_its_start_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(airlock())
        .args(["serve", "--listen", "127.0.0.1:0", "--output", "json", "--data"])
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let started: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(started["listen"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{started}");
    assert_eq!(
        started["stages"],
        serde_json::json!([
            {"name": "dev", "pushable": true},
            {"name": "staging", "pushable": false},
            {"name": "prod", "pushable": false}
        ])
    );
}

#[test]
fn scrub_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let server = ServerProcess::start(airlock(), &data);
        let d = airlock_test_support::oci::digest(b"scrub me");
        let put = server.request("POST", &format!("/v2/dev/a/blobs/uploads/?digest={d}"), &[], b"scrub me");
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

#[test]
fn demo_runs_the_main_job_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out =
        run(Command::new(airlock()).args(["demo", "--output", "json", "--data"]).arg(&data).env("RUST_LOG", "warn"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps: Vec<&str> = report["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps.len(), 14, "{steps:?}");
    assert!(steps[0].starts_with("created user `admin`"));
    assert!(report["steps"][0]["detail"].as_str().unwrap().len() >= 12, "a one-time password is shown");
    assert!(report["steps"][1]["detail"].as_str().unwrap().starts_with("alk_"), "the CI account's key is shown");
    // The root is applied by a key admin, never anonymously, and names the bundle's signer.
    assert!(steps[3].starts_with("`kim` (key-admin) applied a trust root"), "{steps:?}");
    assert!(steps[3].contains("`policy` signs the policy bundle"), "{steps:?}");
    assert!(data.join("demo-policy/bundle.sig").is_file(), "the demo's bundle is signed");
    assert!(steps[6].starts_with("promotion to staging DENIED"), "{steps:?}");
    assert!(report["steps"][6]["detail"].as_str().unwrap().contains("no-critical-vulnerabilities"));
    assert!(steps[7].ends_with("promoted to staging"), "{steps:?}");
    assert!(steps[8].ends_with("is pending"), "{steps:?}");
    assert!(steps[9].contains("own approval was refused (403)"), "{steps:?}");
    assert!(steps[11].ends_with("promoted"), "{steps:?}");
    assert!(steps[12].starts_with("verified prod/demo/hello@sha256:"), "{steps:?}");
    assert!(steps[13].starts_with("verified the transparency log"));
    let digest = report["summary"]["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"));
    // A second run on the same data keeps the root (loaded at start) and promotes again.
    let again =
        run(Command::new(airlock()).args(["demo", "--output", "json", "--data"]).arg(&data).env("RUST_LOG", "warn"));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let steps: Vec<&str> = report["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert!(!steps[0].starts_with("created user `admin`"), "the administrator is created once: {steps:?}");
    assert_eq!(report["steps"][2]["step"], "a trust root is already in force; keeping it");
    assert!(steps.last().unwrap().starts_with("verified the transparency log"), "{steps:?}");
    assert_ne!(report["summary"]["digest"].as_str().unwrap(), digest, "each run builds a new image");
}
