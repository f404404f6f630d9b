//! Release verification with nothing but two public keys: a promoted artifact's release bundle
//! is exported, the server is stopped, and `airlock verify --bundle` and the independent
//! `scripts/verify_release.py` both accept it with no network; a flipped byte in any part (the
//! release record, the VSA, the log entry, the inclusion proof, the checkpoint) makes both refuse.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use airlock_test_support::oci::{Image, digest};
use airlock_test_support::process::ServerProcess;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::{airlock, cmd, python, show};

const BUNDLE_TYPE: &str = "application/vnd.airlock.release-bundle.v1+json";

fn ok_json(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "{}", show(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(output)))
}

/// A promoted artifact, its exported bundle and the two public keys, on disk.
struct Released {
    dir: tempfile::TempDir,
    server: ServerProcess,
    repo: String,
    digest: String,
    bundle: PathBuf,
    release_key: PathBuf,
    log_key: PathBuf,
}

/// Pushes an image into `dev/app`, promotes it into `staging` as a CI service account (no gate
/// in the way) and exports its release bundle as `tester`.
fn release() -> Released {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy");
    std::fs::create_dir_all(&policy).unwrap();
    std::fs::write(policy.join("policy.rego"), airlock_test_support::promotion::DENY_CRITICAL_POLICY).unwrap();
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nbundle = \"{}\"\n\n[[stages]]\nname = \"dev\"\npushable = true\n\n[[stages]]\nname = \"staging\"\n",
            policy.display()
        ),
    )
    .unwrap();
    let server = ServerProcess::start_with(
        airlock(),
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        "warn",
        Stdio::inherit(),
    );
    let url = format!("http://{}", server.addr);

    let image = Image::new(&[("app.bin", b"release bundle test")]);
    for blob in image.blobs() {
        let reply = server.request("POST", &format!("/v2/dev/app/blobs/uploads/?digest={}", digest(blob)), &[], blob);
        assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    }
    let reply =
        server.request("PUT", "/v2/dev/app/manifests/1.0", &[("Content-Type", image.media_type())], &image.manifest);
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));

    let ci = dir.path().join("home-ci");
    let key = server.service_account("ci-bot", &["ci"]);
    let login = cmd(&ci, &["login", &url, "--username", "ci-bot", "--output", "json"])
        .env("AIRLOCK_PASSWORD", &key)
        .output()
        .unwrap();
    ok_json(&login);
    let promoted = ok_json(
        &cmd(&ci, &["promote", "dev/app:1.0", "--to", "staging", "--tag", "1.0", "--output", "json"]).output().unwrap(),
    );
    assert_eq!(promoted["status"], "promoted", "{promoted}");

    let release_key: Value =
        serde_json::from_slice(&server.request("GET", "/api/v1/release-key", &[], b"").body).unwrap();
    let release_key_file = dir.path().join("release.pem");
    std::fs::write(&release_key_file, release_key["pem"].as_str().unwrap()).unwrap();
    let log_key_file = dir.path().join("log.vkey");
    std::fs::write(&log_key_file, server.request("GET", "/api/v1/log/key", &[], b"").body).unwrap();

    let bundle = dir.path().join("release-bundle.json");
    let exported = ok_json(
        &cmd(&dir.path().join("home-tester"), &["release", "export", "staging/app:1.0", "--out"])
            .arg(&bundle)
            .args(["--server", &url, "--output", "json"])
            .env("AIRLOCK_USERNAME", "tester")
            .env("AIRLOCK_PASSWORD", &server.tester_key)
            .output()
            .unwrap(),
    );
    assert_eq!(exported["promotion"], promoted["id"], "{exported}");
    assert_eq!(exported["log_index"], promoted["log_index"], "{exported}");
    Released {
        repo: "staging/app".to_owned(),
        digest: image.digest(),
        dir,
        server,
        bundle,
        release_key: release_key_file,
        log_key: log_key_file,
    }
}

/// `airlock verify --bundle` with no credentials and a server address nothing listens on.
fn verify_bundle(r: &Released, bundle: &Path) -> Output {
    cmd(&r.dir.path().join("home-offline"), &["verify", "--bundle"])
        .arg(bundle)
        .arg("--release-key")
        .arg(&r.release_key)
        .arg("--log-key")
        .arg(&r.log_key)
        .env("AIRLOCK_SERVER", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

fn independent(r: &Released, bundle: &Path) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/verify_release.py");
    Command::new(python()).arg(script).arg(bundle).arg(&r.release_key).arg(&r.log_key).output().unwrap_or_else(|e| {
        panic!("cannot run the Python verifier: {e}; run the tests through `scripts/test`, which installs it")
    })
}

/// The engine attaches the bundle as a referrer once a signed checkpoint covers the commit.
fn attached_bundle(r: &Released) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let manifest = loop {
        // `+` in a query is a space: encode it.
        let path = format!("/v2/{}/referrers/{}?artifactType={}", r.repo, r.digest, BUNDLE_TYPE.replace('+', "%2B"));
        let index: Value = serde_json::from_slice(&r.server.request("GET", &path, &[], b"").body).unwrap();
        if let Some(m) = index["manifests"].as_array().and_then(|m| m.last()) {
            assert_eq!(m["annotations"]["dev.airlock.repository"], r.repo.as_str(), "{index}");
            break m["digest"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no release bundle attached within 10 s: {index}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let reply = r.server.request(
        "GET",
        &format!("/v2/{}/manifests/{manifest}", r.repo),
        &[("accept", "application/vnd.oci.image.manifest.v1+json")],
        b"",
    );
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    let layer = body["layers"][0]["digest"].as_str().unwrap();
    r.server.request("GET", &format!("/v2/{}/blobs/{layer}", r.repo), &[], b"").body
}

#[test]
fn offline_verify_needs_no_server() {
    let mut r = release();

    // The engine attached the same kind of bundle as a referrer, logged; it verifies too, and
    // `airlock verify REF --offline` reads it with the pinned keys.
    let attached = r.dir.path().join("attached.json");
    std::fs::write(&attached, attached_bundle(&r)).unwrap();
    let out = independent(&r, &attached);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let url = format!("http://{}", r.server.addr);
    let online = ok_json(
        &cmd(&r.dir.path().join("home-tester"), &["verify", &format!("{}:1.0", r.repo), "--offline"])
            .arg("--release-key")
            .arg(&r.release_key)
            .arg("--log-key")
            .arg(&r.log_key)
            .args(["--server", &url, "--output", "json"])
            .env("AIRLOCK_USERNAME", "tester")
            .env("AIRLOCK_PASSWORD", &r.server.tester_key)
            .output()
            .unwrap(),
    );
    assert_eq!(online["verified"], true, "{online}");
    let entries: Value =
        serde_json::from_slice(&r.server.request("GET", "/api/v1/log/entries?start=0", &[], b"").body).unwrap();
    let attach = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"]["type"] == "promotion.bundle.attach")
        .unwrap_or_else(|| panic!("no promotion.bundle.attach event: {entries}"));
    assert_eq!(attach["event"]["actor"], "airlock", "{attach}");
    assert_eq!(attach["event"]["details"]["promotion"], online["proof"]["promotion"], "{attach}");

    // With the server stopped, the exported bundle verifies with the two keys alone.
    r.server.terminate();
    let out = verify_bundle(&r, &r.bundle);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("verified: {} was promoted into {}", r.digest, r.repo))
    );
    let json = cmd(&r.dir.path().join("home-offline"), &["verify", &format!("{}@{}", r.repo, r.digest), "--bundle"])
        .arg(&r.bundle)
        .arg("--release-key")
        .arg(&r.release_key)
        .arg("--log-key")
        .arg(&r.log_key)
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert_eq!(ok_json(&json)["verified"], true);
    let out = independent(&r, &r.bundle);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!("ok {}@{} ", r.repo, r.digest)),
        "{}",
        show(&out)
    );

    // A bundle checked against another artifact's name proves nothing about it.
    let other = format!("{}@sha256:{}", r.repo, "0".repeat(64));
    let wrong = cmd(&r.dir.path().join("home-offline"), &["verify", &other, "--bundle"])
        .arg(&r.bundle)
        .arg("--release-key")
        .arg(&r.release_key)
        .arg("--log-key")
        .arg(&r.log_key)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(3), "{}", show(&wrong));
}

/// Replaces the base64 character at `at` with another one.
fn flip_b64_char(text: &str, at: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Flips one byte in the decoded base64 member at `pointer`, with `flip` choosing where.
fn flip_decoded(bundle: &mut Value, pointer: &str, flip: impl Fn(&mut Vec<u8>)) {
    let member = bundle.pointer_mut(pointer).unwrap();
    let mut bytes = STANDARD.decode(member.as_str().unwrap()).unwrap();
    flip(&mut bytes);
    *member = Value::from(STANDARD.encode(&bytes));
}

/// Flips one character of an envelope's payload, so the signed bytes differ.
fn flip_payload(bytes: &mut Vec<u8>) {
    let text = String::from_utf8(bytes.clone()).unwrap();
    let at = text.find("\"payload\":\"").unwrap() + "\"payload\":\"".len() + 40;
    *bytes = flip_b64_char(&text, at).into_bytes();
}

#[test]
fn tampered_release_bundle_is_rejected() {
    let mut r = release();
    r.server.terminate();
    let good: Value = serde_json::from_slice(&std::fs::read(&r.bundle).unwrap()).unwrap();

    let mut cases: Vec<(&str, &str, Value)> = Vec::new();
    let mut record = good.clone();
    flip_decoded(&mut record, "/releaseRecord/envelope", flip_payload);
    cases.push(("release record", "step 2", record));
    let mut vsa = good.clone();
    flip_decoded(&mut vsa, "/verificationSummary/envelope", flip_payload);
    cases.push(("verification summary", "step 3", vsa));
    // One digit of the event's time: still this promotion's commit, but not the logged bytes.
    let mut entry = good.clone();
    flip_decoded(&mut entry, "/logEntry/leaf", |b| {
        let at = String::from_utf8_lossy(b).find("\"time\":\"").unwrap() + "\"time\":\"".len() + 3;
        b[at] = if b[at] == b'1' { b'2' } else { b'1' };
    });
    cases.push(("log entry", "step 7", entry));
    let mut proof = good.clone();
    let first = proof.pointer_mut("/inclusionProof/hashes/0").expect("a proof with hashes");
    let mut hash = STANDARD.decode(first.as_str().unwrap()).unwrap();
    hash[0] ^= 1;
    *first = Value::from(STANDARD.encode(&hash));
    cases.push(("inclusion proof", "step 7", proof));
    // One character of the root hash line of the signed note.
    let mut checkpoint = good.clone();
    let note = checkpoint["checkpoint"].as_str().unwrap().to_owned();
    let root_line = note.match_indices('\n').nth(1).unwrap().0 + 1;
    checkpoint["checkpoint"] = Value::from(flip_b64_char(&note, root_line));
    cases.push(("checkpoint", "step 6", checkpoint));

    for (part, step, tampered) in cases {
        let path = r.dir.path().join(format!("tampered-{}.json", part.replace(' ', "-")));
        std::fs::write(&path, serde_json::to_vec(&tampered).unwrap()).unwrap();
        let out = verify_bundle(&r, &path);
        assert_eq!(out.status.code(), Some(3), "{part}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(step), "{part} must fail at {step}: {}", show(&out));
        assert_eq!(stderr.trim().lines().count(), 1, "{part}: one line: {}", show(&out));
        let out = independent(&r, &path);
        assert_eq!(out.status.code(), Some(1), "{part}: the independent verifier accepted it: {}", show(&out));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("FAILED: "), "{part}: {}", show(&out));
    }
}
