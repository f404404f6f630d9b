//! A server that dies at any step of a promotion's commit (the failpoints in the store's
//! `commit_promotion`, which abort the process like `kill -9`) leaves the promotion all or
//! nothing: either committed with its tag, release record and log events, or still pending with
//! none of them, and then asking again finishes it exactly once. The log verifies either way.
//! Part of the crash campaign: `scripts/crash-campaign` runs these.

use std::path::Path;
use std::time::Instant;

use airlock_test_support::oci::{Image, digest};
use airlock_test_support::process::{RawReply, ServerProcess};
use serde_json::{Value, json};

use crate::crash_support::{
    api, api_into_crash, api_token, audit_verifies, body_text, json_of, log_entries, push, sql, start, tester_token,
    wait_for_abort, writes_accepted,
};

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

fn promotion_body(repo: &str, to: &str) -> Value {
    json!({"repository": repo, "reference": TAG, "to": to, "tag": TAG, "reason": "crash test"})
}

/// The entries of type `kind` about promotion `id`.
fn events_of(entries: &[Value], kind: &str, id: &str) -> Vec<Value> {
    entries.iter().filter(|e| e["event"]["type"] == kind && e["event"]["details"]["promotion"] == id).cloned().collect()
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

/// Part of the crash campaign, run by `scripts/crash-campaign` (see `crash_campaign.rs`).
#[test]
fn crash_campaign_a_crash_at_any_commit_step_leaves_the_promotion_all_or_nothing() {
    for (point, durable) in FAILPOINTS {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path());
        let data = dir.path().join("data");

        // The server dies inside the commit of the first promotion.
        let mut server = start(&data, &["--config", &config], Some(point));
        let image = push(&server, SOURCE, TAG, format!("payments api, crash at {point}").as_bytes());
        let token = tester_token(&server);
        let answer = api_into_crash(&server, "POST", "/api/v1/promotions", &token, &promotion_body(SOURCE, "staging"));
        assert!(answer.is_empty(), "{point}: the server answered before dying: {}", String::from_utf8_lossy(&answer));
        wait_for_abort(&mut server, point);
        drop(server);

        // Restarted over the same data without the failpoint.
        let server = start(&data, &["--config", &config], None);
        writes_accepted(&server, SOURCE, point);
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
        let outcome = if committed { "committed" } else { "rolled back" };
        println!("crash-campaign: {point}: ok ({outcome}) in {:.1?}", started.elapsed());
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

/// Part of the crash campaign, run by `scripts/crash-campaign` (see `crash_campaign.rs`).
#[test]
fn crash_campaign_a_crash_committing_an_approved_promotion_keeps_the_approval_for_the_retry() {
    const POINT: &str = "promotion-commit-logged";
    const PROD: &str = "prod/payments/api";
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let (password, roles) = ("alice-password-123", ["release-approver"]);

    // Into staging first, and an approver with a second factor, on a server without failpoint.
    let mut server = start(&data, &["--config", &config], None);
    let image = push(&server, SOURCE, TAG, b"payments api, approved then crashed");
    let token = tester_token(&server);
    let staged = api(&server, "POST", "/api/v1/promotions", &token, Some(&promotion_body(SOURCE, "staging")));
    assert_eq!(json_of(&staged)["status"], "promoted", "{}", body_text(&staged));
    let secret = user_with_mfa(&server, "alice", password, &roles);
    assert!(server.terminate().success());

    // Prod waits for one approval; the approving request dies just before the commit's COMMIT.
    let mut server = start(&data, &["--config", &config], Some(POINT));
    let token = tester_token(&server);
    let pending = api(&server, "POST", "/api/v1/promotions", &token, Some(&promotion_body(TARGET, "prod")));
    assert_eq!(pending.status, 201, "{}", body_text(&pending));
    let pending = json_of(&pending);
    assert_eq!(pending["status"], "pending", "{pending}");
    let id = pending["id"].as_str().unwrap().to_owned();
    let alice = api_token(&server, "alice", password, Some(&otp(&secret)));
    let path = format!("/api/v1/promotions/{id}/approve");
    let answer = api_into_crash(&server, "POST", &path, &alice, &json!({"comment": "ship it"}));
    assert!(answer.is_empty(), "the server answered before dying: {}", String::from_utf8_lossy(&answer));
    wait_for_abort(&mut server, POINT);
    drop(server);

    // After the restart: still pending, the approval stored and not consumed, nothing in prod.
    let server = start(&data, &["--config", &config], None);
    writes_accepted(&server, SOURCE, POINT);
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
    println!(
        "crash-campaign: {POINT} (approved into prod): ok (rolled back, approval kept) in {:.1?}",
        started.elapsed()
    );
}
