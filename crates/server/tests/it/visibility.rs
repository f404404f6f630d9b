//! Reads under `/api/v1` are authorized per resource: a principal that may pull one unrelated
//! repository sees none of another repository's promotions, approvals, waivers, freezes, reviews,
//! evidence or policy input, and a direct read of a hidden one answers exactly like a missing
//! one. Pullers of the repository and auditors see them.

use airlock_test_support::oci::Image;
use airlock_test_support::promotion as support;
use airlock_test_support::{ADMIN_PASSWORD, Reply};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::promotion::{Fixture, findings};

const REPO: &str = "dev/payments/api";
const OTHER: &str = "dev/other";

/// The scene every test reads: `dev/payments/api` promoted into staging, a promotion into prod
/// approved once and pending, a break-glass promotion with its review open, a waiver on
/// `*/payments/api`, and `dev` and `prod` frozen.
struct Scene {
    f: Fixture,
    /// Promoted into staging.
    staged: String,
    /// Pending in prod, approved by alice.
    pending: String,
    /// The break-glass promotion into staging.
    broken: String,
    review: String,
    waiver: String,
    alice: Vec<u8>,
}

/// Defines `role` with `permissions` and creates a service account `name` holding it; returns
/// its API token.
async fn service_account(f: &Fixture, name: &str, role: &str, permissions: Value) -> String {
    let admin = f.token("admin", ADMIN_PASSWORD, None).await;
    let defined = f.api(Method::POST, "/api/v1/roles", &admin, json!({"name": role, "permissions": permissions})).await;
    assert_eq!(defined.status, StatusCode::CREATED, "{:?}", defined.body);
    sa_with(f, name, &[role]).await
}

/// A service account `name` holding `roles`; returns its API token.
async fn sa_with(f: &Fixture, name: &str, roles: &[&str]) -> String {
    let admin = f.token("admin", ADMIN_PASSWORD, None).await;
    let created = f
        .api(
            Method::POST,
            "/api/v1/principals",
            &admin,
            json!({"name": name, "kind": "service_account", "roles": roles}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let key = created.json()["api_key"].as_str().unwrap().to_owned();
    f.token(name, &key, None).await
}

/// The attacker: a service account that may pull `dev/other` only, and read the audit log.
async fn outsider(f: &Fixture) -> String {
    service_account(
        f,
        "outsider",
        "other-reader",
        json!([{"actions": ["pull"], "stages": ["dev"], "repositories": ["other"]}, {"actions": ["audit.read"]}]),
    )
    .await
}

/// A service account that may pull `payments/api` in every stage (and read the audit log).
async fn insider(f: &Fixture) -> String {
    service_account(
        f,
        "insider",
        "payments-reader",
        json!([{"actions": ["pull"], "stages": ["*"], "repositories": ["payments/api"]}, {"actions": ["audit.read"]}]),
    )
    .await
}

impl Scene {
    async fn new() -> Scene {
        let f = Fixture::new("").await;
        let alice = f.user("alice", &["release-approver"]).await;
        let gus = f.user("gus", &["developer", "break-glass"]).await;
        let carol = f.user("carol", &["developer"]).await;
        let olga = f.user("olga", &["operator"]).await;
        let ci = f.tester_token().await;

        let image = Image::new(&[("app", b"payments 1.0")]);
        f.app.push_image(REPO, &image, "1.0").await;
        f.provenance(&image, "ci-bot").await;
        let staged = f.promote(&ci, REPO, "1.0", "staging", Some("1.0")).await;
        assert_eq!(staged.json()["status"], "promoted", "{:?}", staged.body);
        let staged = staged.json()["id"].as_str().unwrap().to_owned();
        f.clock.advance(1_000);
        let pending = f.promote(&ci, "staging/payments/api", "1.0", "prod", Some("1.0")).await;
        assert_eq!(pending.json()["status"], "pending", "{:?}", pending.body);
        let pending = pending.json()["id"].as_str().unwrap().to_owned();
        let approved = f.approve(&f.user_token("alice", &alice).await, &pending).await;
        assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);

        f.clock.advance(31_000);
        let hotfix = Image::new(&[("app", b"payments hotfix")]);
        f.app.push_image(REPO, &hotfix, "1.1").await;
        f.provenance(&hotfix, "ci-bot").await;
        f.scan(&hotfix, &["CVE-2026-0042"]).await;
        let body = json!({"repository": REPO, "reference": "1.1", "to": "staging", "tag": "1.1", "reason": "outage", "break_glass": true});
        let broken = f.api(Method::POST, "/api/v1/promotions", &f.user_token("gus", &gus).await, body).await;
        assert_eq!(findings(&broken), ["no-critical"], "{:?}", broken.body);
        let broken = broken.json()["id"].as_str().unwrap().to_owned();
        f.clock.advance(31_000);
        let done = f.approve(&f.user_token("alice", &alice).await, &broken).await;
        assert_eq!(done.json()["status"], "promoted", "{:?}", done.body);
        let reviews = f.api(Method::GET, "/api/v1/reviews", &ci, Value::Null).await.json();
        let review = reviews.as_array().unwrap().iter().find(|r| r["promotion"] == broken.as_str()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let request = json!({
            "rule": "no-critical", "vulnerability": "CVE-2026-0042", "repository": "*/payments/api",
            "expires": "2026-12-10T00:00:00Z", "justification": "not reachable",
        });
        let asked = f.api(Method::POST, "/api/v1/waivers", &f.user_token("carol", &carol).await, request).await;
        assert_eq!(asked.status, StatusCode::CREATED, "{:?}", asked.body);
        let waiver = asked.json()["id"].as_str().unwrap().to_owned();

        let olga_token = f.user_token("olga", &olga).await;
        for stage in ["dev", "prod"] {
            let frozen = f
                .api(
                    Method::POST,
                    &format!("/api/v1/stages/{stage}/freeze"),
                    &olga_token,
                    json!({"reason": "incident"}),
                )
                .await;
            assert_eq!(frozen.status, StatusCode::CREATED, "{:?}", frozen.body);
        }
        Scene { f, staged, pending, broken, review, waiver, alice }
    }

    async fn get(&self, token: &str, uri: &str) -> Reply {
        self.f.api(Method::GET, uri, token, Value::Null).await
    }

    /// The `field` of every item `uri` lists for `token`.
    async fn listed(&self, token: &str, uri: &str, field: &str) -> Vec<String> {
        let reply = self.get(token, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {:?}", reply.body);
        reply.json().as_array().unwrap().iter().map(|v| v[field].as_str().unwrap_or_default().to_owned()).collect()
    }
}

/// A reply with `id` written as `ID`: what a hidden thing answers must read exactly like what a
/// missing one answers, its own id aside.
fn shape(reply: &Reply, id: &str) -> (StatusCode, String, String) {
    let body = String::from_utf8_lossy(&reply.body).replace(id, "ID");
    (reply.status, reply.header("content-type").to_owned(), body)
}

#[tokio::test]
async fn promotions_are_invisible_without_pull() {
    let s = Scene::new().await;
    let outsider = outsider(&s.f).await;

    let listed = s.listed(&outsider, "/api/v1/promotions", "id").await;
    assert!(listed.is_empty(), "an outsider lists dev/payments/api's promotions: {listed:?}");
    for filter in ["?target=staging/payments/api", "?status=pending", "?limit=500"] {
        let listed = s.listed(&outsider, &format!("/api/v1/promotions{filter}"), "id").await;
        assert!(listed.is_empty(), "{filter}: {listed:?}");
    }
    let missing = "prm-00000000000000000000";
    let unknown = shape(&s.get(&outsider, &format!("/api/v1/promotions/{missing}")).await, missing);
    assert_eq!(unknown.0, StatusCode::NOT_FOUND);
    for id in [&s.staged, &s.pending, &s.broken] {
        let hidden = s.get(&outsider, &format!("/api/v1/promotions/{id}")).await;
        assert_eq!(shape(&hidden, id), unknown, "a hidden promotion reads like a missing one: {:?}", hidden.body);
    }
}

#[tokio::test]
async fn approvals_are_invisible_without_pull() {
    let s = Scene::new().await;
    let outsider = outsider(&s.f).await;
    let missing = "prm-00000000000000000000";
    for verb in ["approve", "reject"] {
        let body = json!({"comment": "ok", "reason": "no"});
        let unknown =
            s.f.api(Method::POST, &format!("/api/v1/promotions/{missing}/{verb}"), &outsider, body.clone()).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        // Refused with 403 where a missing one is 404 tells that it exists.
        let hidden = s.f.api(Method::POST, &format!("/api/v1/promotions/{}/{verb}", s.pending), &outsider, body).await;
        assert_eq!(shape(&hidden, &s.pending), shape(&unknown, missing), "{verb}: {:?}", hidden.body);
    }
    // The approval alice gave shows nowhere.
    let listed = s.get(&outsider, "/api/v1/promotions?status=pending").await;
    assert!(!String::from_utf8_lossy(&listed.body).contains("alice"), "{:?}", listed.body);
    let pending = s.get(&outsider, &format!("/api/v1/promotions/{}", s.pending)).await;
    assert!(!String::from_utf8_lossy(&pending.body).contains("alice"), "{:?}", pending.body);
}

#[tokio::test]
async fn waivers_are_invisible_without_pull() {
    let s = Scene::new().await;
    let outsider = outsider(&s.f).await;
    let listed = s.listed(&outsider, "/api/v1/waivers", "id").await;
    assert!(listed.is_empty(), "an outsider lists a waiver on */payments/api: {listed:?}");
    let missing = "w-0000000000000000";
    for verb in ["approve", "revoke"] {
        let unknown = s.f.api(Method::POST, &format!("/api/v1/waivers/{missing}/{verb}"), &outsider, Value::Null).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        let hidden =
            s.f.api(Method::POST, &format!("/api/v1/waivers/{}/{verb}", s.waiver), &outsider, Value::Null).await;
        assert_eq!(shape(&hidden, &s.waiver), shape(&unknown, missing), "{verb}: {:?}", hidden.body);
    }
}

#[tokio::test]
async fn freezes_are_invisible_without_pull() {
    let s = Scene::new().await;
    let outsider = outsider(&s.f).await;
    // The outsider pulls in `dev`, so it sees dev's freeze; it pulls nothing in prod.
    let stages = s.listed(&outsider, "/api/v1/stages/freezes", "stage").await;
    assert_eq!(stages, ["dev"], "an outsider sees the freezes of stages it pulls nothing from");
    // A principal that pulls nothing at all sees no freeze.
    let nobody = sa_with(&s.f, "nobody", &["key-admin"]).await;
    assert!(s.listed(&nobody, "/api/v1/stages/freezes", "stage").await.is_empty());
}

#[tokio::test]
async fn reviews_are_invisible_without_pull() {
    let s = Scene::new().await;
    let outsider = outsider(&s.f).await;
    // `audit.read` lets the outsider list reviews, but only those of what it may pull.
    let listed = s.listed(&outsider, "/api/v1/reviews", "id").await;
    assert!(listed.is_empty(), "an outsider lists a break-glass review of dev/payments/api: {listed:?}");
    let missing = "rev-0000000000000000";
    let note = json!({"note": "seen"});
    let unknown = s.f.api(Method::POST, &format!("/api/v1/reviews/{missing}/close"), &outsider, note.clone()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let hidden = s.f.api(Method::POST, &format!("/api/v1/reviews/{}/close", s.review), &outsider, note).await;
    assert_eq!(shape(&hidden, &s.review), shape(&unknown, missing), "{:?}", hidden.body);
}

#[tokio::test]
async fn evidence_and_policy_input_are_invisible_without_pull() {
    let s = Scene::new().await;
    let outsider = outsider(&s.f).await;
    let promoted = s.get(&s.f.tester_token().await, &format!("/api/v1/promotions/{}", s.staged)).await;
    let digest = promoted.json()["digest"].as_str().unwrap().to_owned();
    for (method, uri) in [
        (Method::GET, format!("/api/v1/artifacts/{REPO}/{digest}/evidence")),
        (Method::GET, format!("/api/v1/artifacts/{REPO}/{digest}/policy-input?to=staging")),
        (Method::POST, format!("/api/v1/artifacts/{REPO}/{digest}/evaluate?to=staging")),
        (Method::GET, format!("/api/v1/artifacts/staging/payments/api/{digest}/promotions")),
    ] {
        let refused = s.f.api(method.clone(), &uri, &outsider, Value::Null).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{uri}: {:?}", refused.body);
        assert!(!String::from_utf8_lossy(&refused.body).contains("provenance"), "{uri}: {:?}", refused.body);
        // The refusal depends on the name alone: the same for an artifact that is not there.
        let absent = uri.replace(&digest, &format!("sha256:{}", "0".repeat(64)));
        let nothing = s.f.api(method, &absent, &outsider, Value::Null).await;
        assert_eq!((nothing.status, nothing.body), (refused.status, refused.body), "{uri}");
    }
}

#[tokio::test]
async fn a_short_page_still_finds_what_the_caller_may_see() {
    let s = Scene::new().await;
    let outsider = outsider(&s.f).await;
    // An older promotion of `dev/other`, which the outsider may pull, under newer ones it may not.
    let image = Image::new(&[("app", b"other 1.0")]);
    s.f.app.push_image(OTHER, &image, "1.0").await;
    support::attest(&s.f.app, OTHER, &image, support::PROVENANCE, &support::provenance(&image, "ci-bot"), &s.f.ci)
        .await;
    let ci = s.f.tester_token().await;
    let other = s.f.promote(&ci, OTHER, "1.0", "staging", Some("1.0")).await;
    assert_eq!(other.json()["status"], "promoted", "{:?}", other.body);
    let other = other.json()["id"].as_str().unwrap().to_owned();
    for n in 0..3 {
        s.f.clock.advance(1_000);
        let image = Image::new(&[("app", format!("payments 2.{n}").as_bytes())]);
        s.f.app.push_image(REPO, &image, &format!("2.{n}")).await;
        s.f.provenance(&image, "ci-bot").await;
        s.f.promote(&ci, REPO, &format!("2.{n}"), "staging", Some(&format!("2.{n}"))).await;
    }
    assert_eq!(s.listed(&outsider, "/api/v1/promotions?limit=1", "id").await, [other.as_str()]);
    assert_eq!(s.listed(&outsider, "/api/v1/promotions", "id").await, [other.as_str()]);
    let read = s.get(&outsider, &format!("/api/v1/promotions/{other}")).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
}

#[tokio::test]
async fn a_puller_of_the_repository_and_an_auditor_see_them() {
    let s = Scene::new().await;
    let insider = insider(&s.f).await;
    let auditor = sa_with(&s.f, "inspector", &["auditor"]).await;
    for token in [&insider, &auditor] {
        let mut listed = s.listed(token, "/api/v1/promotions", "id").await;
        listed.sort();
        let mut all = vec![s.staged.clone(), s.pending.clone(), s.broken.clone()];
        all.sort();
        assert_eq!(listed, all);
        let pending = s.get(token, &format!("/api/v1/promotions/{}", s.pending)).await;
        assert_eq!(pending.status, StatusCode::OK, "{:?}", pending.body);
        assert_eq!(pending.json()["approvals"][0]["approver"], "alice");
        assert_eq!(s.listed(token, "/api/v1/waivers", "id").await, [s.waiver.as_str()]);
        assert_eq!(s.listed(token, "/api/v1/stages/freezes", "stage").await, ["dev", "prod"]);
        assert_eq!(s.listed(token, "/api/v1/reviews", "id").await, [s.review.as_str()]);
        let digest = pending.json()["digest"].as_str().unwrap().to_owned();
        let evidence = s.get(token, &format!("/api/v1/artifacts/{REPO}/{digest}/evidence")).await;
        assert_eq!(evidence.status, StatusCode::OK, "{:?}", evidence.body);
        let input = s.get(token, &format!("/api/v1/artifacts/{REPO}/{digest}/policy-input?to=staging")).await;
        assert_eq!(input.status, StatusCode::OK, "{:?}", input.body);
    }
    // The approver who may act on a promotion still sees and decides it.
    s.f.clock.advance(31_000);
    let alice = s.f.user_token("alice", &s.alice).await;
    let read = s.get(&alice, &format!("/api/v1/promotions/{}", s.pending)).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
}

#[tokio::test]
async fn a_waiver_over_a_glob_is_seen_by_who_pulls_a_repository_it_covers() {
    let s = Scene::new().await;
    let carol = s.f.user("carol2", &["developer"]).await;
    let request = json!({
        "rule": "no-critical", "vulnerability": "CVE-2026-0043", "repository": "dev/payments/*",
        "expires": "2026-12-10T00:00:00Z", "justification": "not reachable",
    });
    let asked = s.f.api(Method::POST, "/api/v1/waivers", &s.f.user_token("carol2", &carol).await, request).await;
    assert_eq!(asked.status, StatusCode::CREATED, "{:?}", asked.body);
    let glob = asked.json()["id"].as_str().unwrap().to_owned();
    // `payments/api` in every stage: covered by `*/payments/api` and by `dev/payments/*`.
    let insider = insider(&s.f).await;
    let mut seen = s.listed(&insider, "/api/v1/waivers", "id").await;
    seen.sort();
    let mut both = vec![s.waiver.clone(), glob.clone()];
    both.sort();
    assert_eq!(seen, both);
    // `payments/api` in prod only: `dev/payments/*` covers nothing it may pull.
    let prod = service_account(
        &s.f,
        "prod-reader",
        "payments-prod",
        json!([{"actions": ["pull"], "stages": ["prod"], "repositories": ["payments/**"]}]),
    )
    .await;
    assert_eq!(s.listed(&prod, "/api/v1/waivers", "id").await, [s.waiver.as_str()]);
}

#[tokio::test]
async fn a_requester_that_may_pull_nothing_sees_only_its_own_requests() {
    let s = Scene::new().await;
    let asker = service_account(
        &s.f,
        "asker",
        "waiver-asker",
        json!([{"actions": ["waiver.request"], "repositories": ["**"]}]),
    )
    .await;
    let request = json!({
        "rule": "no-critical", "vulnerability": "CVE-2026-0044", "repository": "prod/payments/api",
        "expires": "2026-12-10T00:00:00Z", "justification": "not reachable",
    });
    let asked = s.f.api(Method::POST, "/api/v1/waivers", &asker, request).await;
    assert_eq!(asked.status, StatusCode::CREATED, "{:?}", asked.body);
    let own = asked.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.listed(&asker, "/api/v1/waivers", "id").await, [own]);
    assert!(s.listed(&asker, "/api/v1/promotions", "id").await.is_empty());
}
