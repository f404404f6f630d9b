//! A server that dies at any step of a promotion's commit (the failpoints in the store's
//! `commit_promotion`, which abort the process like `kill -9`) leaves the promotion all or
//! nothing: either committed with its tag, release record and log events, or still pending with
//! none of them, and then asking again finishes it exactly once. The log verifies either way.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock_test_support::oci::{Image, digest};
use airlock_test_support::process::{RawReply, ServerProcess, request, start_request};
use serde_json::{Value, json};

use crate::airlock;

/// Each failpoint in the commit, in order, and whether the commit is durable when it fires.
const FAILPOINTS: [(&str, bool); 5] = [
    ("promotion-commit-begin", false),
    ("promotion-commit-linked", false),
    ("promotion-commit-sealed", false),
    ("promotion-commit-logged", false),
    ("promotion-commit-done", true),
];

const SOURCE: &str = "dev/payments/api";
const TARGET: &str = "staging/payments/api";
const TAG: &str = "1.0";
/// `airlock_store::FAILPOINT_ENV` (the store is not a dependency of this crate).
const FAILPOINT_ENV: &str = "AIRLOCK_FAILPOINT";
/// What `abort()` ends a process with.
const SIGABRT: i32 = 6;

/// A policy whose only rule never fires, so the gates pass on their own.
const POLICY: &str = r#"package airlock
import rego.v1

deny contains {"rule": "never", "msg": "no vulnerability has this severity"} if {
	some v in input.evidence.vulnerabilities
	v.severity == "not-a-severity"
}
"#;

/// The policy bundle and a config: dev pushable, staging with no gate but the policy, prod with
/// one release approver; returns the config's path.
fn write_config(dir: &Path) -> String {
    let bundle = dir.join("policy");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("policy.rego"), POLICY).unwrap();
    let config = format!(
        r#"[policy]
bundle = "{}"

[[stages]]
name = "dev"
pushable = true

[[stages]]
name = "staging"

[[stages]]
name = "prod"
[stages.approvals]
count = 1
role = "release-approver"
"#,
        bundle.display()
    );
    let path = dir.join("airlock.toml");
    std::fs::write(&path, config).unwrap();
    path.to_str().unwrap().to_owned()
}

fn body_text(reply: &RawReply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn json_of(reply: &RawReply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", body_text(reply)))
}

/// Pushes a one-layer image as `repo:tag` over the raw HTTP API; returns it.
pub(crate) fn push(server: &ServerProcess, repo: &str, tag: &str, contents: &[u8]) -> Image {
    let image = Image::new(&[("app.bin", contents)]);
    for blob in image.blobs() {
        let d = digest(blob);
        let reply = server.request("POST", &format!("/v2/{repo}/blobs/uploads/?digest={d}"), &[], blob);
        assert_eq!(reply.status, 201, "{}", body_text(&reply));
    }
    let reply = server.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", image.media_type())],
        &image.manifest,
    );
    assert_eq!(reply.status, 201, "{}", body_text(&reply));
    image
}

/// An API token for `name`, with a second factor when `otp` is given.
fn api_token(server: &ServerProcess, name: &str, secret: &str, otp: Option<&str>) -> String {
    let basic = airlock_test_support::basic(name, secret);
    let mut headers = vec![("authorization", basic.as_str())];
    headers.extend(otp.map(|code| ("x-airlock-otp", code)));
    let reply = request(server.addr, "POST", "/api/v1/auth/token", &headers, b"");
    assert_eq!(reply.status, 200, "token for {name}: {}", body_text(&reply));
    json_of(&reply)["token"].as_str().expect("token").to_owned()
}

fn tester_token(server: &ServerProcess) -> String {
    api_token(server, airlock_test_support::TESTER, &server.tester_key, None)
}

/// A request to `/api/v1` with an API token and, when given, a JSON body.
fn api(server: &ServerProcess, method: &str, path: &str, token: &str, body: Option<&Value>) -> RawReply {
    let bearer = format!("Bearer {token}");
    let body = body.map(Value::to_string).unwrap_or_default();
    request(
        server.addr,
        method,
        path,
        &[("authorization", bearer.as_str()), ("content-type", "application/json")],
        body.as_bytes(),
    )
}

fn promotion_body(repo: &str, to: &str) -> Value {
    json!({"repository": repo, "reference": TAG, "to": to, "tag": TAG, "reason": "crash test"})
}

/// Sends a request to a server about to abort; returns whatever came back (nothing, when the
/// process died first), never failing on a dropped connection.
fn request_into_crash(server: &ServerProcess, path: &str, token: &str, body: &Value) -> Vec<u8> {
    let bearer = format!("Bearer {token}");
    let body = body.to_string();
    let headers = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let mut stream = start_request(server.addr, "POST", path, &headers, body.len() as u64);
    let _ = stream.write_all(body.as_bytes());
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw
}

/// Waits for the server to die at its failpoint and checks it aborted.
fn wait_for_abort(server: &mut ServerProcess, point: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().expect("wait on the server") {
            assert_eq!(status.signal(), Some(SIGABRT), "{point}: the server should abort at the failpoint: {status}");
            return;
        }
        if Instant::now() > deadline {
            server.kill_hard();
            panic!("{point}: the server did not reach its failpoint within 15 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn start_plain(data: &Path, config: &str) -> ServerProcess {
    ServerProcess::start_with(airlock(), data, &["--config", config], "warn", Stdio::inherit())
}

/// The log's entries, in order.
fn log_entries(server: &ServerProcess) -> Vec<Value> {
    let reply = server.request("GET", "/api/v1/log/entries?start=0", &[], b"");
    assert_eq!(reply.status, 200, "{}", body_text(&reply));
    let page = json_of(&reply);
    let entries = page["entries"].as_array().expect("entries").clone();
    assert_eq!(Some(entries.len() as u64), page["size"].as_u64(), "one page holds the whole log");
    entries
}

/// The entries of type `kind` about promotion `id`.
fn events_of(entries: &[Value], kind: &str, id: &str) -> Vec<Value> {
    entries.iter().filter(|e| e["event"]["type"] == kind && e["event"]["details"]["promotion"] == id).cloned().collect()
}

/// Waits until the log has settled, and returns its size: every committed promotion has its
/// release bundle attached (the engine attaches it, and logs that, once a checkpoint covers the
/// commit) and the latest signed checkpoint covers the whole log.
fn wait_for_checkpoint(server: &ServerProcess) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = log_entries(server);
        let size = entries.len() as u64;
        let of_kind = |kind: &str| {
            entries
                .iter()
                .filter(|e| e["event"]["type"] == kind)
                .map(|e| e["event"]["details"]["promotion"].clone())
                .collect::<Vec<_>>()
        };
        let attached = of_kind("promotion.bundle.attach");
        let bundled = of_kind("promotion.commit").iter().all(|id| attached.contains(id));
        let reply = server.request("GET", "/api/v1/log/checkpoint", &[], b"");
        let note = body_text(&reply);
        if bundled && note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) == Some(size) {
            return size;
        }
        assert!(Instant::now() < deadline, "no checkpoint of size {size} within 10 s; latest:\n{note}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `airlock audit verify` against the server with the log key it serves: exit 0, whole log.
pub(crate) fn audit_verifies(server: &ServerProcess, dir: &Path, context: &str) {
    let size = wait_for_checkpoint(server);
    let key = server.request("GET", "/api/v1/log/key", &[], b"");
    assert_eq!(key.status, 200);
    let key_file = dir.join("log.vkey");
    std::fs::write(&key_file, &key.body).unwrap();
    let out = Command::new(airlock())
        .args(["audit", "verify", "--server", &format!("http://{}", server.addr), "--key"])
        .arg(&key_file)
        .args(["--output", "json"])
        .output()
        .expect("airlock runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{context}: the log verifies after the crash\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("verify prints JSON");
    assert_eq!(report["result"]["size"], size, "{context}: {report}");
}

/// The restarted server accepts writes: its start-up checks found nothing wrong.
fn writes_accepted(server: &ServerProcess, context: &str) {
    let write = server.request("POST", &format!("/v2/{SOURCE}/blobs/uploads/"), &[], b"");
    assert_eq!(write.status, 202, "{context}: the restarted server refuses writes: {}", body_text(&write));
}

/// Runs a query on the data directory's database with the sqlite3 shell, read-only.
fn sql(data: &Path, query: &str) -> String {
    let out = Command::new("sqlite3").arg("-readonly").arg(data.join("metadata.db")).arg(query).output().unwrap();
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn manifest_status(server: &ServerProcess, repo: &str, reference: &str) -> RawReply {
    server.request("GET", &format!("/v2/{repo}/manifests/{reference}"), &[], b"")
}

/// What the artifact API says about `digest` in `repo`.
fn history(server: &ServerProcess, repo: &str, digest: &str) -> Value {
    let reply = server.request("GET", &format!("/api/v1/artifacts/{repo}/{digest}/promotions"), &[], b"");
    assert_eq!(reply.status, 200, "{}", body_text(&reply));
    json_of(&reply)
}

/// The state once a promotion of `image` into `repo:TAG` committed: promoted with a release
/// record, exactly one commit event naming it at the promotion's log index, one tag event,
/// the tag and the release record in place, and the artifact API agreeing.
fn assert_committed(server: &ServerProcess, token: &str, id: &str, repo: &str, image: &Image, context: &str) -> Value {
    let promotion = json_of(&api(server, "GET", &format!("/api/v1/promotions/{id}"), token, None));
    assert_eq!(promotion["status"], "promoted", "{context}: {promotion}");
    let record = promotion["release_record"].as_str().unwrap_or_else(|| panic!("{context}: no record: {promotion}"));
    let entries = log_entries(server);
    let commits = events_of(&entries, "promotion.commit", id);
    assert_eq!(commits.len(), 1, "{context}: exactly one commit event: {commits:?}");
    assert_eq!(commits[0]["index"], promotion["log_index"], "{context}: the record names the commit's index");
    assert_eq!(commits[0]["event"]["details"]["release_record"], record, "{context}");
    let tags: Vec<_> = events_of(&entries, "registry.tag.create", id);
    assert_eq!(tags.len(), 1, "{context}: exactly one tag event: {tags:?}");
    assert_eq!(events_of(&entries, "promotion.request", id).len(), 1, "{context}: one request event");

    let tagged = manifest_status(server, repo, TAG);
    assert_eq!(tagged.status, 200, "{context}: {}", body_text(&tagged));
    assert_eq!(tagged.header("docker-content-digest"), image.digest(), "{context}");
    let referrers = server.request("GET", &format!("/v2/{repo}/referrers/{}", image.digest()), &[], b"");
    assert_eq!(referrers.status, 200, "{context}: {}", body_text(&referrers));
    let listed: Vec<String> = json_of(&referrers)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["digest"].as_str().map(str::to_owned))
        .collect();
    assert!(listed.iter().any(|d| d == record), "{context}: the release record is a referrer: {listed:?}");
    let history = history(server, repo, &image.digest());
    assert_eq!(history["promoted"], true, "{context}: {history}");
    assert_eq!(history["promotions"][0]["id"], id, "{context}: {history}");
    assert_eq!(history["promotions"][0]["verified"], true, "{context}: {history}");
    promotion
}

/// The state when a promotion of `image` into `repo:TAG` did not commit: pending, no release
/// record, no commit or tag event, and nothing of it in the target repository.
fn assert_not_committed(
    server: &ServerProcess,
    token: &str,
    id: &str,
    repo: &str,
    image: &Image,
    context: &str,
) -> Value {
    let promotion = json_of(&api(server, "GET", &format!("/api/v1/promotions/{id}"), token, None));
    assert_eq!(promotion["status"], "pending", "{context}: {promotion}");
    assert_eq!(promotion["release_record"], Value::Null, "{context}: {promotion}");
    assert_eq!(promotion["log_index"], Value::Null, "{context}: {promotion}");
    let entries = log_entries(server);
    assert_eq!(events_of(&entries, "promotion.request", id).len(), 1, "{context}: the request event stays");
    assert!(events_of(&entries, "promotion.commit", id).is_empty(), "{context}: a commit event without a commit");
    assert!(events_of(&entries, "registry.tag.create", id).is_empty(), "{context}: a tag event without a commit");

    let tagged = manifest_status(server, repo, TAG);
    assert_eq!(tagged.status, 404, "{context}: the tag exists without a commit: {}", body_text(&tagged));
    let linked = manifest_status(server, repo, &image.digest());
    assert_eq!(linked.status, 404, "{context}: the manifest is linked without a commit: {}", body_text(&linked));
    for blob in image.blobs() {
        let head = server.request("HEAD", &format!("/v2/{repo}/blobs/{}", digest(blob)), &[], b"");
        assert_eq!(head.status, 404, "{context}: a blob is linked without a commit");
    }
    let history = history(server, repo, &image.digest());
    assert_eq!(history["promoted"], false, "{context}: {history}");
    assert_eq!(history["promotions"], json!([]), "{context}: {history}");
    promotion
}

#[test]
fn a_crash_at_any_commit_step_leaves_the_promotion_all_or_nothing() {
    for (point, durable) in FAILPOINTS {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path());
        let data = dir.path().join("data");

        // The server dies inside the commit of the first promotion.
        let mut server = ServerProcess::start_env(airlock(), &data, &["--config", &config], &[(FAILPOINT_ENV, point)]);
        let image = push(&server, SOURCE, TAG, format!("payments api, crash at {point}").as_bytes());
        let token = tester_token(&server);
        let answer = request_into_crash(&server, "/api/v1/promotions", &token, &promotion_body(SOURCE, "staging"));
        assert!(answer.is_empty(), "{point}: the server answered before dying: {}", String::from_utf8_lossy(&answer));
        wait_for_abort(&mut server, point);
        drop(server);

        // Restarted over the same data without the failpoint.
        let server = start_plain(&data, &config);
        writes_accepted(&server, point);
        let token = tester_token(&server);
        let listed = json_of(&api(&server, "GET", "/api/v1/promotions", &token, None));
        let listed = listed.as_array().expect("a list");
        assert_eq!(listed.len(), 1, "{point}: one promotion: {listed:?}");
        let id = listed[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(listed[0]["digest"], image.digest(), "{point}");
        assert_eq!(listed[0]["target"], TARGET, "{point}");

        // All or nothing: the commit event exists exactly when the commit is durable.
        let committed = !events_of(&log_entries(&server), "promotion.commit", &id).is_empty();
        assert_eq!(committed, durable, "{point}: committed {committed}, expected {durable}");
        let before = if committed {
            assert_committed(&server, &token, &id, TARGET, &image, point)
        } else {
            assert_not_committed(&server, &token, &id, TARGET, &image, point)
        };

        // Asking again returns the same promotion, committed once (now, or already).
        let again = api(&server, "POST", "/api/v1/promotions", &token, Some(&promotion_body(SOURCE, "staging")));
        assert_eq!(again.status, 200, "{point}: {}", body_text(&again));
        let again = json_of(&again);
        assert_eq!(again["id"], id.as_str(), "{point}: {again}");
        assert_eq!(again["status"], "promoted", "{point}: {again}");
        let after = assert_committed(&server, &token, &id, TARGET, &image, &format!("{point}, asked again"));
        assert_eq!(again["release_record"], after["release_record"], "{point}");
        if committed {
            assert_eq!(before["release_record"], after["release_record"], "{point}: the record did not change");
        }

        audit_verifies(&server, dir.path(), point);
        eprintln!("{point}: {} in {:.1?}", if committed { "committed" } else { "rolled back" }, started.elapsed());
    }
}

/// Creates user `name` with `roles` and the e-mail `NAME@example.com` (approvers are people only
/// with an e-mail) through the admin API and enrolls a TOTP authenticator; returns its secret.
fn user_with_mfa(server: &ServerProcess, name: &str, password: &str, roles: &[&str]) -> Vec<u8> {
    server.user(name, password, roles, Some(&format!("{name}@example.com")))
}

fn otp(secret: &[u8]) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    airlock_access::totp::code_at(secret, now)
}

#[test]
fn a_crash_committing_an_approved_promotion_keeps_the_approval_for_the_retry() {
    const POINT: &str = "promotion-commit-logged";
    const PROD: &str = "prod/payments/api";
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let (password, roles) = ("alice-password-123", ["release-approver"]);

    // Into staging first, and an approver with a second factor, on a server without failpoint.
    let mut server = start_plain(&data, &config);
    let image = push(&server, SOURCE, TAG, b"payments api, approved then crashed");
    let token = tester_token(&server);
    let staged = api(&server, "POST", "/api/v1/promotions", &token, Some(&promotion_body(SOURCE, "staging")));
    assert_eq!(json_of(&staged)["status"], "promoted", "{}", body_text(&staged));
    let secret = user_with_mfa(&server, "alice", password, &roles);
    assert!(server.terminate().success());

    // Prod waits for one approval; the approving request dies just before the commit's COMMIT.
    let mut server = ServerProcess::start_env(airlock(), &data, &["--config", &config], &[(FAILPOINT_ENV, POINT)]);
    let token = tester_token(&server);
    let pending = api(&server, "POST", "/api/v1/promotions", &token, Some(&promotion_body(TARGET, "prod")));
    assert_eq!(pending.status, 201, "{}", body_text(&pending));
    let pending = json_of(&pending);
    assert_eq!(pending["status"], "pending", "{pending}");
    let id = pending["id"].as_str().unwrap().to_owned();
    let alice = api_token(&server, "alice", password, Some(&otp(&secret)));
    let path = format!("/api/v1/promotions/{id}/approve");
    let answer = request_into_crash(&server, &path, &alice, &json!({"comment": "ship it"}));
    assert!(answer.is_empty(), "the server answered before dying: {}", String::from_utf8_lossy(&answer));
    wait_for_abort(&mut server, POINT);
    drop(server);

    // After the restart: still pending, the approval stored and not consumed, nothing in prod.
    let server = start_plain(&data, &config);
    writes_accepted(&server, POINT);
    let token = tester_token(&server);
    let before = assert_not_committed(&server, &token, &id, PROD, &image, POINT);
    assert_eq!(before["approvals"][0]["approver"], "alice", "{before}");
    assert_eq!(before["approvals"].as_array().map(Vec::len), Some(1), "{before}");
    assert_eq!(events_of(&log_entries(&server), "promotion.approve", &id).len(), 1, "one approve event");
    let consumed = format!("SELECT approver, consumed_at IS NOT NULL FROM approvals WHERE promotion = '{id}'");
    assert_eq!(sql(&data, &consumed), "alice|0", "the approval is not consumed by a commit that did not happen");

    // The same request again commits it with the stored approval, and consumes it.
    let again = api(&server, "POST", "/api/v1/promotions", &token, Some(&promotion_body(TARGET, "prod")));
    assert_eq!(again.status, 200, "{}", body_text(&again));
    let again = json_of(&again);
    assert_eq!((&again["id"], &again["status"]), (&json!(id), &json!("promoted")), "{again}");
    assert_eq!(again["report"]["approvals"]["counted"], json!(["alice"]), "{again}");
    assert_committed(&server, &token, &id, PROD, &image, "prod, asked again");
    let commits = events_of(&log_entries(&server), "promotion.commit", &id);
    assert_eq!(commits[0]["event"]["details"]["approvers"], json!(["alice"]), "{commits:?}");
    assert_eq!(sql(&data, &consumed), "alice|1", "the commit consumed the approval");
    audit_verifies(&server, dir.path(), "prod");
}
