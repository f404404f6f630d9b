//! State backed by the log: rows typed into the database while the server runs (an approval,
//! a waiver approval, a freeze lift, a break-glass approval) count for nothing unless the log
//! entry that recorded them is at the index stored with them and says the same.

use std::process::Command;

use airlock_core::ports::Clock as _;
use airlock_test_support::oci::Image;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::promotion::{Fixture, findings};

const REPO: &str = "dev/payments/api";

/// Runs `sql` against the server's database with the `sqlite3` CLI, as an attacker with write
/// access to the data directory would, while the server runs.
fn sqlite(f: &Fixture, sql: &str) {
    let db = f.app.app.config.data_dir.join("metadata.db");
    let out = Command::new("sqlite3").arg(&db).arg(sql).output().expect("sqlite3 runs");
    assert!(out.status.success(), "sqlite3 failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Inserts an approval by `approver` for promotion `id`, bound to what the promotion last
/// evaluated (so only the log can tell it from a real one); `extra` adds columns.
fn forge_approval(f: &Fixture, id: &str, approver: &str, extra: Option<(&str, &str)>) {
    let now = f.clock.now().as_millis();
    let (columns, values) = extra.map_or((String::new(), String::new()), |(c, v)| (format!(", {c}"), format!(", {v}")));
    sqlite(
        f,
        &format!(
            "INSERT INTO approvals (promotion, approver, identity, digest, source, target, policy_digest, \
             evidence_digest, comment, created_at, expires_at{columns}) \
             SELECT id, '{approver}', 'principal:{approver}', digest, source, target, policy_digest, evidence_digest, \
             'lgtm', {now}, {} {values} FROM promotions WHERE id = '{id}'",
            now + 3_600_000
        ),
    );
}

/// Pushes `tag` with provenance, promotes it into staging and asks for prod; returns the
/// pending prod promotion's id.
async fn pending_in_prod(f: &Fixture, content: &[u8], tag: &str) -> String {
    let image = Image::new(&[("app", content)]);
    f.app.push_image(REPO, &image, tag).await;
    f.provenance(&image, "ci-bot").await;
    let ci = f.tester_token().await;
    assert_eq!(f.promote(&ci, REPO, tag, "staging", Some(tag)).await.json()["status"], "promoted");
    let pending = f.promote(&ci, "staging/payments/api", tag, "prod", Some(tag)).await;
    assert_eq!(pending.json()["status"], "pending", "{}", pending.json());
    pending.json()["id"].as_str().unwrap().to_owned()
}

async fn mismatches(f: &Fixture) -> Vec<Value> {
    f.app.get("/api/v1/log/entries?start=0").await.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] == "integrity.mismatch")
        .map(|e| e["event"].clone())
        .collect()
}

fn ignored(reply: &Value) -> Vec<(String, String)> {
    reply["report"]["approvals"]["ignored"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|i| (i["row"].as_str().unwrap().to_owned(), i["reason"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn forged_approval_row_does_not_count() {
    let f = Fixture::new("").await;
    let alice = f.user("alice", &["release-approver"]).await;
    let bob = f.user("bob", &["release-approver"]).await;
    f.user("sam", &["release-approver"]).await;
    let id = pending_in_prod(&f, b"payments 11.0", "11.0").await;
    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.json()["report"]["approvals"]["missing"], 1, "{}", one.json());

    // A second approval typed into the database: sam never approved.
    forge_approval(&f, &id, "sam", None);
    let ci = f.tester_token().await;
    let again = f.promote(&ci, "staging/payments/api", "11.0", "prod", Some("11.0")).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    let again = again.json();
    assert_eq!(again["status"], "pending", "the forged row must not complete the quorum: {again}");
    assert_eq!(again["report"]["approvals"]["counted"], json!(["alice"]), "{again}");
    let ignored = ignored(&again);
    assert_eq!(ignored.len(), 1, "{again}");
    assert!(ignored[0].0.contains("sam") && ignored[0].0.contains(&id), "names the row: {ignored:?}");
    assert!(ignored[0].1.contains("no log index"), "says why: {ignored:?}");
    let commits = f.log_types().await.iter().filter(|t| *t == "promotion.commit").count();
    assert_eq!(commits, 1, "only the staging promotion committed");
    let found = mismatches(&f).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["details"]["table"], "approvals");
    assert_eq!(found[0]["details"]["promotion"], id.as_str());

    // Asking again reports the row again but logs it once.
    let third = f.promote(&ci, "staging/payments/api", "11.0", "prod", Some("11.0")).await.json();
    assert_eq!(third["status"], "pending");
    assert_eq!(mismatches(&f).await.len(), 1);

    // A real second approval commits it; the commit names the people who approved.
    let done = f.approve(&f.user_token("bob", &bob).await, &id).await.json();
    assert_eq!(done["status"], "promoted", "{done}");
    let entries = f.app.get("/api/v1/log/entries?start=0").await.json();
    let commit = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["event"]["type"] == "promotion.commit")
        .unwrap()
        .clone();
    assert_eq!(commit["event"]["details"]["approvers"], json!(["alice", "bob"]));
}

#[tokio::test]
async fn approval_rows_pointing_at_another_entry_or_past_the_log_do_not_count() {
    let f = Fixture::new("").await;
    let alice = f.user("alice", &["release-approver"]).await;
    f.user("sam", &["release-approver"]).await;
    f.user("tom", &["release-approver"]).await;
    let id = pending_in_prod(&f, b"payments 12.0", "12.0").await;
    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
    let entries = f.app.get("/api/v1/log/entries?start=0").await.json();
    let alices = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"]["type"] == "promotion.approve")
        .unwrap()["index"]
        .as_u64()
        .unwrap();

    // Sam's row replays alice's entry; tom's points past the end of the log.
    forge_approval(&f, &id, "sam", Some(("log_index", &alices.to_string())));
    forge_approval(&f, &id, "tom", Some(("log_index", "999999")));
    let ci = f.tester_token().await;
    let again = f.promote(&ci, "staging/payments/api", "12.0", "prod", Some("12.0")).await.json();
    assert_eq!(again["status"], "pending", "{again}");
    assert_eq!(again["report"]["approvals"]["counted"], json!(["alice"]), "{again}");
    let ignored = ignored(&again);
    let sam = ignored.iter().find(|(row, _)| row.contains("sam")).expect("sam's row is named");
    assert!(sam.1.contains("`alice`"), "the entry is alice's: {sam:?}");
    let tom = ignored.iter().find(|(row, _)| row.contains("tom")).expect("tom's row is named");
    assert!(tom.1.contains("999999"), "{tom:?}");
    assert_eq!(mismatches(&f).await.len(), 2);
}

#[tokio::test]
async fn forged_break_glass_approval_does_not_count() {
    let f = Fixture::new("").await;
    let gus = f.user("gus", &["developer", "break-glass"]).await;
    f.user("alice", &["release-approver"]).await;
    let image = Image::new(&[("app", b"payments hotfix 13")]);
    f.app.push_image(REPO, &image, "13.0").await;
    f.provenance(&image, "ci-bot").await;
    f.scan(&image, &["CVE-2026-0013"]).await;
    let body = json!({"repository": REPO, "reference": "13.0", "to": "staging", "tag": "13.0", "reason": "outage", "break_glass": true});
    let gus_token = f.user_token("gus", &gus).await;
    let opened = f.api(Method::POST, "/api/v1/promotions", &gus_token, body.clone()).await;
    assert_eq!(opened.json()["status"], "pending", "{}", opened.json());
    let id = opened.json()["id"].as_str().unwrap().to_owned();

    // The second person's approval, typed into the database.
    forge_approval(&f, &id, "alice", None);
    let again = f.api(Method::POST, "/api/v1/promotions", &gus_token, body).await.json();
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["status"], "pending", "a forged second person must not commit it: {again}");
    let ignored = ignored(&again);
    assert!(ignored.iter().any(|(row, _)| row.contains("alice")), "{again}");
    assert_eq!(f.app.get("/v2/staging/payments/api/manifests/13.0").await.status, StatusCode::NOT_FOUND);
    assert_eq!(mismatches(&f).await.len(), 1);
}

#[tokio::test]
async fn forged_waiver_approval_does_not_count() {
    let f = Fixture::new("").await;
    f.user("carol", &["developer"]).await;
    f.user("alice", &["release-approver"]).await;
    let image = Image::new(&[("app", b"payments 14.0")]);
    f.app.push_image(REPO, &image, "14.0").await;
    f.provenance(&image, "ci-bot").await;
    f.scan(&image, &["CVE-2026-0014"]).await;
    let ci = f.tester_token().await;
    assert_eq!(findings(&f.promote(&ci, REPO, "14.0", "staging", Some("14.0")).await), ["no-critical"]);

    // An active waiver approved by alice, typed into the database: nobody approved it.
    let now = f.clock.now().as_millis();
    sqlite(
        &f,
        &format!(
            "INSERT INTO waivers (id, rule, vulnerability, component, repository, justification, requester, status, \
             approver, created_at, decided_at, expires_at) VALUES ('w-forged', 'no-critical', 'CVE-2026-0014', NULL, \
             '*/payments/api', 'not reachable', 'carol', 'active', 'alice', {now}, {now}, {})",
            now + 7 * 86_400_000
        ),
    );
    let denied = f.promote(&ci, REPO, "14.0", "staging", Some("14.0")).await;
    assert_eq!(findings(&denied), ["no-critical"], "the forged waiver must waive nothing: {}", denied.json());
    let warnings = denied.json()["report"]["warnings"].clone();
    let integrity: Vec<&Value> =
        warnings.as_array().unwrap().iter().filter(|w| w["rule"] == "integrity-mismatch").collect();
    assert_eq!(integrity.len(), 1, "{warnings}");
    assert!(integrity[0]["message"].as_str().unwrap().contains("w-forged"), "{warnings}");
    let found = mismatches(&f).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["details"]["table"], "waivers");
}

#[tokio::test]
async fn forged_unfreeze_request_does_not_count_as_the_first_person() {
    let f = Fixture::new("").await;
    let olga = f.user("olga", &["operator"]).await;
    let oscar = f.user("oscar", &["operator"]).await;
    let image = Image::new(&[("app", b"payments 15.0")]);
    f.app.push_image(REPO, &image, "15.0").await;
    f.provenance(&image, "ci-bot").await;
    let ci = f.tester_token().await;
    let olga_token = f.user_token("olga", &olga).await;
    let frozen =
        f.api(Method::POST, "/api/v1/stages/staging/freeze", &olga_token, json!({"reason": "incident 7"})).await;
    assert_eq!(frozen.status, StatusCode::CREATED, "{:?}", frozen.body);

    // The first of the two people, typed into the database: olga never asked to lift it.
    sqlite(&f, &format!("UPDATE stage_freezes SET unfreeze_by = 'olga', unfreeze_at = {}", f.clock.now().as_millis()));
    let oscar_token = f.user_token("oscar", &oscar).await;
    let second = f.api(Method::POST, "/api/v1/stages/staging/unfreeze", &oscar_token, Value::Null).await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    assert_eq!(second.json()["frozen"], true, "one real person must not lift a freeze: {}", second.json());
    assert_eq!(findings(&f.promote(&ci, REPO, "15.0", "staging", Some("15.0")).await), ["stage-frozen"]);
    assert_eq!(mismatches(&f).await.len(), 1);
    // Olga, for real now, completes it.
    let lifted = f.api(Method::POST, "/api/v1/stages/staging/unfreeze", &olga_token, Value::Null).await;
    assert_eq!(lifted.json()["frozen"], false, "{}", lifted.json());
    assert_eq!(f.promote(&ci, REPO, "15.0", "staging", Some("15.0")).await.json()["status"], "promoted");
}

#[tokio::test]
async fn forged_freeze_lift_does_not_count() {
    let f = Fixture::new("").await;
    let olga = f.user("olga", &["operator"]).await;
    let image = Image::new(&[("app", b"payments 16.0")]);
    f.app.push_image(REPO, &image, "16.0").await;
    f.provenance(&image, "ci-bot").await;
    let ci = f.tester_token().await;
    let olga_token = f.user_token("olga", &olga).await;
    let frozen =
        f.api(Method::POST, "/api/v1/stages/staging/freeze", &olga_token, json!({"reason": "incident 8"})).await;
    assert_eq!(frozen.status, StatusCode::CREATED, "{:?}", frozen.body);

    // A lift by two people, typed into the database.
    sqlite(&f, "UPDATE stage_freezes SET unfreeze_by = 'olga', lifted_by = 'oscar'");
    let denied = f.promote(&ci, REPO, "16.0", "staging", Some("16.0")).await;
    assert_eq!(findings(&denied), ["stage-frozen"], "{}", denied.json());
    let message = denied.json()["report"]["findings"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("incident 8"), "{message}");
    let warnings = denied.json()["report"]["warnings"].to_string();
    assert!(warnings.contains("integrity-mismatch") && warnings.contains("stage_freezes"), "{warnings}");
    let listed = f.api(Method::GET, "/api/v1/stages/freezes", &olga_token, Value::Null).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "still listed as frozen: {listed}");
    assert_eq!(mismatches(&f).await.len(), 1);
}

/// A freeze row deleted behind the server's back lifted the freeze with nobody's approval: the
/// engine read only the table. The log's `stage.freeze` entry with no `stage.unfreeze` after it
/// keeps the stage frozen; the report names the missing row. A lift needs the freeze stored
/// again, then two people, as always.
#[tokio::test]
async fn deleted_freeze_row_keeps_the_stage_frozen() {
    let f = Fixture::new("").await;
    let olga = f.user("olga", &["operator"]).await;
    let oscar = f.user("oscar", &["operator"]).await;
    let image = Image::new(&[("app", b"payments 17.0")]);
    f.app.push_image(REPO, &image, "17.0").await;
    f.provenance(&image, "ci-bot").await;
    let ci = f.tester_token().await;
    let olga_token = f.user_token("olga", &olga).await;
    let frozen =
        f.api(Method::POST, "/api/v1/stages/staging/freeze", &olga_token, json!({"reason": "incident 9"})).await;
    assert_eq!(frozen.status, StatusCode::CREATED, "{:?}", frozen.body);

    sqlite(&f, "DELETE FROM stage_freezes");
    let denied = f.promote(&ci, REPO, "17.0", "staging", Some("17.0")).await;
    assert_eq!(findings(&denied), ["stage-frozen"], "a deleted row must not lift the freeze: {}", denied.json());
    let message = denied.json()["report"]["findings"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("incident 9"), "{message}");
    let warnings = denied.json()["report"]["warnings"].to_string();
    assert!(warnings.contains("integrity-mismatch") && warnings.contains("stage_freezes"), "{warnings}");
    let listed = f.api(Method::GET, "/api/v1/stages/freezes", &olga_token, Value::Null).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "still listed as frozen: {listed}");
    let found = mismatches(&f).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["details"]["table"], "stage_freezes");

    // Its row is gone, so it cannot be lifted as it is: freeze it again, then two people lift it.
    let oscar_token = f.user_token("oscar", &oscar).await;
    let refused = f.api(Method::POST, "/api/v1/stages/staging/unfreeze", &oscar_token, Value::Null).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    assert!(refused.error_message().contains("freeze it again"), "{}", refused.error_message());
    let again =
        f.api(Method::POST, "/api/v1/stages/staging/freeze", &olga_token, json!({"reason": "incident 9, again"})).await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    let first = f.api(Method::POST, "/api/v1/stages/staging/unfreeze", &olga_token, Value::Null).await;
    assert_eq!(first.json()["frozen"], true, "{}", first.json());
    let lifted = f.api(Method::POST, "/api/v1/stages/staging/unfreeze", &oscar_token, Value::Null).await;
    assert_eq!(lifted.json()["frozen"], false, "{}", lifted.json());
    assert_eq!(f.promote(&ci, REPO, "17.0", "staging", Some("17.0")).await.json()["status"], "promoted");
}

/// A revoked waiver set back to `active` in the database waived again: its approval's entry
/// still backs it. The log's `waiver.revoke` entry says it was revoked, so it waives nothing.
#[tokio::test]
async fn revoked_waiver_set_back_to_active_does_not_count() {
    let f = Fixture::new("").await;
    let carol = f.user("carol", &["developer"]).await;
    let alice = f.user("alice", &["release-approver"]).await;
    let image = Image::new(&[("app", b"payments 18.0")]);
    f.app.push_image(REPO, &image, "18.0").await;
    f.provenance(&image, "ci-bot").await;
    f.scan(&image, &["CVE-2026-0018"]).await;
    let ci = f.tester_token().await;
    let carol_token = f.user_token("carol", &carol).await;
    let request = json!({
        "rule": "no-critical", "vulnerability": "CVE-2026-0018", "repository": "*/payments/api",
        "expires": "2026-12-10T00:00:00Z", "justification": "not reachable",
    });
    let asked = f.api(Method::POST, "/api/v1/waivers", &carol_token, request).await;
    assert_eq!(asked.status, StatusCode::CREATED, "{:?}", asked.body);
    let id = asked.json()["id"].as_str().unwrap().to_owned();
    let alice_token = f.user_token("alice", &alice).await;
    let approved = f.api(Method::POST, &format!("/api/v1/waivers/{id}/approve"), &alice_token, Value::Null).await;
    assert_eq!(approved.json()["status"], "active", "{:?}", approved.body);
    let revoked = f.api(Method::POST, &format!("/api/v1/waivers/{id}/revoke"), &carol_token, Value::Null).await;
    assert_eq!(revoked.json()["status"], "revoked", "{:?}", revoked.body);

    sqlite(&f, &format!("UPDATE waivers SET status = 'active' WHERE id = '{id}'"));
    let denied = f.promote(&ci, REPO, "18.0", "staging", Some("18.0")).await;
    assert_eq!(findings(&denied), ["no-critical"], "a revoked waiver must waive nothing: {}", denied.json());
    let warnings = denied.json()["report"]["warnings"].to_string();
    assert!(warnings.contains("integrity-mismatch") && warnings.contains(&id), "{warnings}");
    let found = mismatches(&f).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["details"]["table"], "waivers");
}

/// The same, across a restart: the start-up check of the log reads the freeze back.
#[tokio::test]
async fn deleted_freeze_row_keeps_the_stage_frozen_across_a_restart() {
    let f = Fixture::new("").await;
    let olga = f.user("olga", &["operator"]).await;
    let image = Image::new(&[("app", b"payments 19.0")]);
    f.app.push_image(REPO, &image, "19.0").await;
    f.provenance(&image, "ci-bot").await;
    let olga_token = f.user_token("olga", &olga).await;
    let frozen =
        f.api(Method::POST, "/api/v1/stages/staging/freeze", &olga_token, json!({"reason": "incident 10"})).await;
    assert_eq!(frozen.status, StatusCode::CREATED, "{:?}", frozen.body);
    sqlite(&f, "DELETE FROM stage_freezes");

    let f = f.restart().await;
    let ci = f.tester_token().await;
    let denied = f.promote(&ci, REPO, "19.0", "staging", Some("19.0")).await;
    assert_eq!(findings(&denied), ["stage-frozen"], "{}", denied.json());
    let message = denied.json()["report"]["findings"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("incident 10"), "{message}");
}

/// Two accounts of one person (one e-mail) approve once between them: the second account's
/// approval is refused while the first's row names the person. Rewriting that row's person in
/// the database let the second account approve and count as a second person. The approve entry
/// records the person too, so the rewritten row is ignored.
#[tokio::test]
async fn approval_identity_rewritten_in_the_database_does_not_split_one_person() {
    let f = Fixture::new("").await;
    let alice = f.user_with_email("alice", &["release-approver"], Some("alice@example.com")).await;
    let alice2 = f.user_with_email("alice2", &["release-approver"], Some("alice@example.com")).await;
    let id = pending_in_prod(&f, b"payments 20.0", "20.0").await;
    let one = f.approve(&f.user_token("alice", &alice).await, &id).await.json();
    assert_eq!(one["report"]["approvals"]["missing"], 1, "{one}");

    sqlite(&f, "UPDATE approvals SET identity = 'email:someone.else@example.com' WHERE approver = 'alice'");
    let second = f.approve(&f.user_token("alice2", &alice2).await, &id).await;
    let second = second.json();
    assert_eq!(second["status"], "pending", "one person with two accounts must not complete the quorum: {second}");
    let ignored = ignored(&second);
    assert_eq!(ignored.len(), 1, "{second}");
    assert!(ignored[0].0.contains("alice") && ignored[0].1.contains("details.identity_digest"), "{ignored:?}");
}
