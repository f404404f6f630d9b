//! The promotion engine over HTTP: gates that deny with their findings, approvals bound to what
//! was evaluated, separation of duties, and the commit that links the artifact's whole graph
//! into the next stage with a signed release record.

use std::collections::BTreeMap;

use airlock_core::ports::Clock as _;
use airlock_dsse::{Algorithm, PrivateKey, PublicKey};
use airlock_model::{Digest, Timestamp};
use airlock_test_support::oci::Image;
use airlock_test_support::promotion as support;
use airlock_test_support::{ADMIN_PASSWORD, ManualClock, Reply, TestApp, basic};
use airlock_trust::{Pattern, RepoPattern, Root, SignerRule, sign_root};
use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

const START: i64 = 1_795_669_200_000; // 2026-11-26T05:00:00Z, a Thursday
const DAY: u64 = 86_400_000;
const REPO: &str = "dev/payments/api";

pub(crate) struct Fixture {
    pub(crate) app: TestApp,
    pub(crate) clock: ManualClock,
    pub(crate) ci: PrivateKey,
    _policy: tempfile::TempDir,
}

pub(crate) fn stages_toml(policy: &std::path::Path, prod_extra: &str) -> String {
    format!(
        r#"
[policy]
bundle = "{}"

[[stages]]
name = "dev"
pushable = true

[[stages]]
name = "staging"
[[stages.attestations]]
name = "provenance"
predicate_types = ["https://slsa.dev/provenance/*"]
signers = ["ci"]

[[stages]]
name = "prod"
{prod_extra}
[stages.approvals]
count = 2
role = "release-approver"
ttl_secs = 3600
"#,
        policy.display()
    )
}

impl Fixture {
    pub(crate) async fn new(prod_extra: &str) -> Fixture {
        let policy = tempfile::tempdir().unwrap();
        std::fs::write(policy.path().join("policy.rego"), support::DENY_CRITICAL_POLICY).unwrap();
        let clock = ManualClock::at(START);
        let app = TestApp::with_clock(&stages_toml(policy.path(), prod_extra), clock.clone()).await;
        let root_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let ci = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let start = Timestamp::from_millis(START);
        let mut keys = BTreeMap::new();
        for k in [&root_key, &ci] {
            keys.insert(k.public_key().keyid().clone(), k.public_key().clone());
        }
        let root = Root {
            version: 1,
            expires: start.plus_millis(365 * DAY),
            keys,
            root_keyids: vec![root_key.public_key().keyid().clone()],
            root_threshold: 1,
            signers: vec![SignerRule {
                name: "ci".to_owned(),
                keyids: vec![ci.public_key().keyid().clone()],
                predicate_types: vec![Pattern::parse("https://**").unwrap()],
                repositories: vec![RepoPattern::parse("**").unwrap()],
                not_before: start,
                not_after: start.plus_millis(300 * DAY),
            }],
            thresholds: Vec::new(),
            revoked: Vec::new(),
            policy: None,
        };
        let document = sign_root(&root, &[&root_key]).unwrap();
        let applied = app.put_root(document).await;
        assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
        Fixture { app, clock, ci, _policy: policy }
    }

    /// The same data directory after a restart: a checkpoint signed, the app closed and opened
    /// again (the tester gets a new key).
    pub(crate) async fn restart(self) -> Fixture {
        self.restart_with(|_| {}).await
    }

    /// Like [`Fixture::restart`], with the configuration changed by `change`.
    pub(crate) async fn restart_with(self, change: impl FnOnce(&mut airlock_server::config::Config)) -> Fixture {
        let Fixture { app, clock, ci, _policy } = self;
        app.app.state.log.checkpoint().await.unwrap();
        app.app.close().await;
        let TestApp { app: closed, dir, .. } = app;
        let mut config = closed.config.clone();
        change(&mut config);
        let mut reopened = TestApp::with_config_and_clock(config, clock.clone()).await;
        // The data directory lives in the first app's temporary directory: keep it.
        reopened.dir = dir;
        Fixture { app: reopened, clock, ci, _policy }
    }

    pub(crate) fn now_secs(&self) -> u64 {
        (self.clock.now().as_millis() / 1000) as u64
    }

    pub(crate) async fn provenance(&self, subject: &Image, trigger: &str) -> String {
        support::attest(&self.app, REPO, subject, support::PROVENANCE, &support::provenance(subject, trigger), &self.ci)
            .await
    }

    pub(crate) async fn scan(&self, subject: &Image, critical: &[&str]) -> String {
        support::attest(&self.app, REPO, subject, support::SCAN, &support::scan(critical), &self.ci).await
    }

    /// Creates a user with `roles`, a second factor and the e-mail `NAME@example.com` (an
    /// approver is a person only with an e-mail); returns its TOTP secret.
    pub(crate) async fn user(&self, name: &str, roles: &[&str]) -> Vec<u8> {
        self.user_with_email(name, roles, Some(&format!("{name}@example.com"))).await
    }

    /// Like [`Fixture::user`], with the e-mail `email` (or none): two accounts with one e-mail
    /// are one person.
    pub(crate) async fn user_with_email(&self, name: &str, roles: &[&str], email: Option<&str>) -> Vec<u8> {
        let admin = self.token("admin", ADMIN_PASSWORD, None).await;
        self.app.create_user(&admin, name, roles, email).await
    }

    /// An API token; with a fresh second factor when `secret` is given.
    pub(crate) async fn token(&self, name: &str, password: &str, secret: Option<&[u8]>) -> String {
        let mut request = Request::post("/api/v1/auth/token").header("authorization", basic(name, password));
        if let Some(secret) = secret {
            request = request.header("x-airlock-otp", airlock_access::totp::code_at(secret, self.now_secs()));
        }
        let reply = self.app.send_anonymous(request.body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.json()["token"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn user_token(&self, name: &str, secret: &[u8]) -> String {
        self.token(name, &format!("{name}-password-123"), Some(secret)).await
    }

    pub(crate) async fn tester_token(&self) -> String {
        self.token(airlock_test_support::TESTER, &self.app.tester_key.clone(), None).await
    }

    pub(crate) async fn api(&self, method: Method, uri: &str, token: &str, body: Value) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.app.send_anonymous(request).await
    }

    pub(crate) async fn promote(&self, token: &str, repo: &str, reference: &str, to: &str, tag: Option<&str>) -> Reply {
        self.api(
            Method::POST,
            "/api/v1/promotions",
            token,
            json!({"repository": repo, "reference": reference, "to": to, "tag": tag, "reason": "release"}),
        )
        .await
    }

    pub(crate) async fn approve(&self, token: &str, id: &str) -> Reply {
        self.api(Method::POST, &format!("/api/v1/promotions/{id}/approve"), token, json!({"comment": "ok"})).await
    }

    pub(crate) async fn log_types_all(&self) -> Vec<String> {
        self.app.get("/api/v1/log/entries?start=0").await.json()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"]["type"].as_str().unwrap().to_owned())
            .collect()
    }

    pub(crate) async fn log_types(&self) -> Vec<String> {
        self.app.get("/api/v1/log/entries?start=0").await.json()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"]["type"].as_str().unwrap().to_owned())
            .filter(|t| t.starts_with("promotion."))
            .collect()
    }
}

pub(crate) fn findings(reply: &Reply) -> Vec<String> {
    reply.json()["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_artifact_moves_through_its_gates_with_two_approvals_and_a_release_record() {
    let f = Fixture::new("").await;
    let image = Image::new(&[("app", b"payments 1.4.2")]);
    assert_eq!(f.app.push_image(REPO, &image, "1.4.2").await.status, StatusCode::CREATED);
    let ci = f.tester_token().await;

    // No provenance yet: denied at once, with the finding and its remediation.
    let denied = f.promote(&ci, REPO, "1.4.2", "staging", Some("1.4.2")).await;
    assert_eq!(denied.status, StatusCode::CREATED, "{:?}", denied.body);
    assert_eq!(denied.json()["status"], "denied");
    assert_eq!(findings(&denied), ["provenance"]);
    assert!(denied.json()["report"]["findings"][0]["remediation"].as_str().unwrap().contains("attach"));
    assert_eq!(denied.json()["report"]["findings"][0]["doc"], "docs/promotion-lifecycle.md#request");

    // Provenance and a scan with a critical CVE: the policy denies.
    f.provenance(&image, "dave").await;
    f.scan(&image, &["CVE-2026-0001"]).await;
    let denied = f.promote(&ci, REPO, "1.4.2", "staging", Some("1.4.2")).await;
    assert_eq!(findings(&denied), ["no-critical"], "{:?}", denied.json());

    // A clean image passes into staging with no approval; the whole graph travels.
    let fixed = Image::new(&[("app", b"payments 1.4.3")]);
    assert_eq!(f.app.push_image(REPO, &fixed, "1.4.3").await.status, StatusCode::CREATED);
    let provenance = f.provenance(&fixed, "dave").await;
    f.scan(&fixed, &[]).await;
    let staged = f.promote(&ci, REPO, &fixed.digest(), "staging", Some("1.4.3")).await;
    assert_eq!(staged.json()["status"], "promoted", "{:?}", staged.json());
    let tagged = f.app.get("/v2/staging/payments/api/manifests/1.4.3").await;
    assert_eq!(tagged.status, StatusCode::OK);
    assert_eq!(tagged.header("docker-content-digest"), fixed.digest());
    let referrers = f.app.get(&format!("/v2/staging/payments/api/referrers/{}", fixed.digest())).await.json();
    let listed: Vec<&str> =
        referrers["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
    assert!(listed.contains(&provenance.as_str()), "the provenance travels: {listed:?}");
    let release = staged.json()["release_record"].as_str().unwrap().to_owned();
    assert!(listed.contains(&release.as_str()), "the release record is a referrer: {listed:?}");

    // The same request again returns the same promotion.
    let again = f.promote(&ci, REPO, &fixed.digest(), "staging", Some("1.4.3")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["id"], staged.json()["id"]);

    // Prod waits for two release approvers.
    let alice = f.user("alice", &["release-approver"]).await;
    let bob = f.user("bob", &["release-approver"]).await;
    let carol = f.user("carol", &["developer"]).await;
    let dave = f.user("dave", &["release-approver"]).await;
    let pending = f.promote(&ci, "staging/payments/api", "1.4.3", "prod", Some("1.4.3")).await;
    assert_eq!(pending.json()["status"], "pending", "{:?}", pending.json());
    assert_eq!(pending.json()["report"]["approvals"]["missing"], 2);
    let id = pending.json()["id"].as_str().unwrap().to_owned();

    // The build's trigger, someone without the role, and an approver without a fresh second
    // factor are all refused.
    let refused = f.approve(&f.user_token("dave", &dave).await, &id).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    assert!(refused.error_message().contains("triggered the build"), "{:?}", refused.body);
    let refused = f.approve(&f.user_token("carol", &carol).await, &id).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    let stale = f.token("alice", "alice-password-123", None).await;
    assert_eq!(f.approve(&stale, &id).await.status, StatusCode::FORBIDDEN);

    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
    assert_eq!(one.json()["status"], "pending");
    assert_eq!(one.json()["report"]["approvals"]["missing"], 1);
    // Approving twice counts once.
    f.clock.advance(31_000);
    let twice = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", twice.body);

    let done = f.approve(&f.user_token("bob", &bob).await, &id).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.json()["status"], "promoted", "{:?}", done.json());
    let prod = f.app.get("/v2/prod/payments/api/manifests/1.4.3").await;
    assert_eq!(prod.header("docker-content-digest"), fixed.digest());

    // The release record verifies with the release key and names the commit's log index.
    let key = f.app.get("/api/v1/release-key").await.json();
    let key = PublicKey::from_pem(key["pem"].as_str().unwrap()).unwrap();
    let record = done.json()["release_record"].as_str().unwrap().to_owned();
    let manifest = f.app.get(&format!("/v2/prod/payments/api/manifests/{record}")).await.json();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let envelope = f.app.get(&format!("/v2/prod/payments/api/blobs/{layer}")).await.body;
    let verified = airlock_core::promotion::record::verify_record(
        &envelope,
        &key,
        &Digest::parse(&fixed.digest()).unwrap(),
        "prod",
    )
    .unwrap();
    assert_eq!(verified.log_index, done.json()["log_index"].as_u64().unwrap());
    assert_eq!(verified.predicate["approvals"].as_array().unwrap().len(), 2);
    let entry =
        f.app.get(&format!("/api/v1/log/entries?start={}&end={}", verified.log_index, verified.log_index + 1)).await;
    assert_eq!(entry.json()["entries"][0]["event"]["type"], "promotion.commit");
    assert_eq!(entry.json()["entries"][0]["event"]["details"]["release_record"], record);

    // The artifact API serves the same result, for the promoted digest and for one never promoted.
    let history = f.app.get(&format!("/api/v1/artifacts/prod/payments/api/{}/promotions", fixed.digest())).await;
    assert_eq!(history.status, StatusCode::OK, "{:?}", history.body);
    assert_eq!(history.json()["promoted"], true, "{}", history.json());
    assert_eq!(history.json()["promotions"][0]["release_record"], record);
    let never = f.app.get(&format!("/api/v1/artifacts/prod/payments/api/{}/promotions", image.digest())).await;
    assert_eq!(never.json()["promoted"], false);
    assert!(never.json()["reason"].as_str().unwrap().contains("never promoted"));

    assert_eq!(
        f.log_types().await,
        [
            "promotion.deny",
            "promotion.deny",
            "promotion.request",
            "promotion.commit",
            "promotion.request",
            "promotion.approve",
            "promotion.approve",
            "promotion.commit"
        ]
    );
}

#[tokio::test]
async fn approvals_expire_and_stop_counting_when_the_role_is_lost_and_a_reject_ends_it() {
    let f = Fixture::new("").await;
    let image = Image::new(&[("app", b"payments 2.0")]);
    f.app.push_image(REPO, &image, "2.0").await;
    f.provenance(&image, "ci-bot").await;
    let ci = f.tester_token().await;
    assert_eq!(f.promote(&ci, REPO, "2.0", "staging", Some("2.0")).await.json()["status"], "promoted");
    let alice = f.user("alice", &["release-approver"]).await;
    let bob = f.user("bob", &["release-approver"]).await;
    let erin = f.user("erin", &["release-approver"]).await;
    let id = f.promote(&ci, "staging/payments/api", "2.0", "prod", Some("2.0")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(f.approve(&f.user_token("alice", &alice).await, &id).await.json()["report"]["approvals"]["missing"], 1);

    // The approval lives an hour (`ttl_secs = 3600`): after that, bob's alone is not a quorum.
    f.clock.advance(3_601_000);
    let after = f.approve(&f.user_token("bob", &bob).await, &id).await;
    assert_eq!(after.status, StatusCode::OK, "{:?}", after.body);
    assert_eq!(after.json()["status"], "pending");
    assert_eq!(after.json()["report"]["approvals"]["counted"], json!(["bob"]));

    // Bob loses the role: his approval stops counting, so erin's does not complete the quorum.
    let admin = f.token("admin", ADMIN_PASSWORD, None).await;
    let revoked = f.api(Method::DELETE, "/api/v1/principals/bob/roles/release-approver", &admin, Value::Null).await;
    assert_eq!(revoked.status, StatusCode::OK, "{:?}", revoked.body);
    let third = f.approve(&f.user_token("erin", &erin).await, &id).await;
    assert_eq!(third.json()["status"], "pending", "{:?}", third.json());
    assert_eq!(third.json()["report"]["approvals"]["counted"], json!(["erin"]));

    // A reject closes it; nobody can approve it afterwards.
    f.clock.advance(31_000);
    let rejected = f
        .api(
            Method::POST,
            &format!("/api/v1/promotions/{id}/reject"),
            &f.user_token("alice", &alice).await,
            json!({"reason": "not this week"}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{:?}", rejected.body);
    assert_eq!(rejected.json()["status"], "rejected");
    f.clock.advance(31_000);
    let late = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{:?}", late.body);
}

#[tokio::test]
async fn a_frozen_stage_and_a_closed_window_deny_with_when_to_retry() {
    let f = Fixture::new("freeze = true").await;
    let image = Image::new(&[("app", b"payments 3.0")]);
    f.app.push_image(REPO, &image, "3.0").await;
    f.provenance(&image, "ci-bot").await;
    let ci = f.tester_token().await;
    assert_eq!(f.promote(&ci, REPO, "3.0", "staging", None).await.json()["status"], "promoted");
    let frozen = f.promote(&ci, "staging/payments/api", &image.digest(), "prod", None).await;
    assert_eq!(findings(&frozen), ["stage-frozen"]);

    // Thursday 05:00 UTC is outside a Monday-to-Wednesday window.
    let windowed = Fixture::new("[[stages.windows]]\ndays = [\"mon\", \"tue\", \"wed\"]\nstart = \"09:00\"\nend = \"17:00\"\ntimezone = \"Europe/Berlin\"").await;
    windowed.app.push_image(REPO, &image, "3.0").await;
    windowed.provenance(&image, "ci-bot").await;
    let ci = windowed.tester_token().await;
    assert_eq!(windowed.promote(&ci, REPO, "3.0", "staging", None).await.json()["status"], "promoted");
    let closed = windowed.promote(&ci, "staging/payments/api", &image.digest(), "prod", None).await;
    assert_eq!(findings(&closed), ["change-window"]);
    let message = closed.json()["report"]["findings"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("2026-11-30T08:00:00.000Z"), "the next window opens Monday 09:00 Berlin: {message}");
}

#[tokio::test]
async fn promotion_requests_refuse_bad_input_without_a_500() {
    let f = Fixture::new("").await;
    let ci = f.tester_token().await;
    let image = Image::new(&[("app", b"x")]);
    f.app.push_image(REPO, &image, "1").await;
    for (body, status) in [
        (json!({"repository": "dev/payments/api", "reference": "1", "to": "prod"}), StatusCode::BAD_REQUEST),
        (json!({"repository": "dev/payments/api", "reference": "1", "to": "dev"}), StatusCode::BAD_REQUEST),
        (json!({"repository": "dev/payments/api", "reference": "nope", "to": "staging"}), StatusCode::NOT_FOUND),
        (json!({"repository": "Dev/x", "reference": "1", "to": "staging"}), StatusCode::BAD_REQUEST),
        (
            json!({"repository": "dev/payments/api", "reference": "1", "to": "staging", "extra": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"repository": "dev/payments/api", "reference": "1", "to": "staging", "tag": "bad tag"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let reply = f.api(Method::POST, "/api/v1/promotions", &ci, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {:?}", reply.body);
    }
    let oversized = f.api(Method::POST, "/api/v1/promotions", &ci, json!({"reason": "x".repeat(20_000)})).await;
    // Issue 13: an oversized body is 413 naming the limit's config key, not a 400.
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(String::from_utf8_lossy(&oversized.body).contains("`limits.api_body_max_bytes`"), "{:?}", oversized.body);
    assert_eq!(f.api(Method::GET, "/api/v1/promotions/prm-nope", &ci, Value::Null).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        f.api(Method::POST, "/api/v1/promotions/prm-nope/approve", &ci, json!({})).await.status,
        StatusCode::NOT_FOUND
    );
    let anonymous = f.app.send_anonymous(Request::get("/api/v1/promotions").body(Body::empty()).unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_request_cut_off_before_its_commit_is_finished_by_asking_again() {
    use airlock_core::audit::{Actor, Event, EventKind, Subject};
    use airlock_core::ports::{PromotionRecord, PromotionStatus};
    use airlock_model::{RepoName, Tag};
    let f = Fixture::new("").await;
    let image = Image::new(&[("app", b"payments 5.0")]);
    f.app.push_image(REPO, &image, "5.0").await;
    f.provenance(&image, "ci-bot").await;
    // What a crash (or a client gone) between opening a promotion and committing it leaves: an
    // open promotion with its request logged, and nothing in staging.
    let now = f.clock.now();
    let record = PromotionRecord {
        id: "prm-cut-off".to_owned(),
        source: RepoName::parse(REPO).unwrap(),
        target: RepoName::parse("staging/payments/api").unwrap(),
        digest: Digest::parse(&image.digest()).unwrap(),
        tag: Some(Tag::parse("5.0").unwrap()),
        requester: airlock_test_support::TESTER.to_owned(),
        reason: "release".to_owned(),
        status: PromotionStatus::Pending,
        policy_digest: String::new(),
        evidence_digest: String::new(),
        report: "{}".to_owned(),
        created_at: now,
        updated_at: now,
        closed_reason: None,
        release_digest: None,
        summary_digest: None,
        log_index: None,
        break_glass: false,
    };
    let event = Event::allowed(EventKind::PromotionRequest, &Actor::system(), now, Subject::default());
    f.app.app.store.open_promotion(&record, &event).await.unwrap().unwrap();
    assert_eq!(f.app.get("/v2/staging/payments/api/manifests/5.0").await.status, StatusCode::NOT_FOUND);

    let ci = f.tester_token().await;
    let again = f.promote(&ci, REPO, &image.digest(), "staging", Some("5.0")).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.json()["id"], "prm-cut-off");
    assert_eq!(again.json()["status"], "promoted", "{}", again.json());
    assert_eq!(f.app.get("/v2/staging/payments/api/manifests/5.0").await.status, StatusCode::OK);
}

/// Promotes `image` (tagged `tag` in dev, with provenance) to staging and then to prod with
/// alice's and bob's approvals; returns the prod promotion's reply.
async fn to_prod(f: &Fixture, image: &Image, tag: &str, approvers: [(&str, &[u8]); 2]) -> Reply {
    f.app.push_image(REPO, image, tag).await;
    f.provenance(image, "ci-bot").await;
    let ci = f.tester_token().await;
    let staged = f.promote(&ci, REPO, tag, "staging", Some(tag)).await;
    assert_eq!(staged.json()["status"], "promoted", "{:?}", staged.body);
    let id =
        f.promote(&ci, "staging/payments/api", tag, "prod", Some(tag)).await.json()["id"].as_str().unwrap().to_owned();
    let mut last = None;
    for (name, secret) in approvers {
        last = Some(f.approve(&f.user_token(name, secret).await, &id).await);
    }
    f.clock.advance(31_000);
    last.unwrap()
}

#[tokio::test]
async fn a_freeze_denies_promotions_until_two_people_lift_it() {
    let f = Fixture::new("").await;
    let olga = f.user("olga", &["operator"]).await;
    let oscar = f.user("oscar", &["operator"]).await;
    let image = Image::new(&[("app", b"payments 6.0")]);
    f.app.push_image(REPO, &image, "6.0").await;
    f.provenance(&image, "ci-bot").await;
    let ci = f.tester_token().await;

    let olga_token = f.user_token("olga", &olga).await;
    let frozen =
        f.api(Method::POST, "/api/v1/stages/staging/freeze", &olga_token, json!({"reason": "incident 42"})).await;
    assert_eq!(frozen.status, StatusCode::CREATED, "{:?}", frozen.body);
    // A developer may not freeze.
    let refused = f.api(Method::POST, "/api/v1/stages/prod/freeze", &ci, json!({"reason": "mine"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let denied = f.promote(&ci, REPO, "6.0", "staging", Some("6.0")).await;
    assert_eq!(findings(&denied), ["stage-frozen"]);
    assert!(denied.json()["report"]["findings"][0]["message"].as_str().unwrap().contains("incident 42"));

    // The one who asks to lift it cannot also confirm it.
    let first = f.api(Method::POST, "/api/v1/stages/staging/unfreeze", &olga_token, Value::Null).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.json()["frozen"], true);
    let again = f.api(Method::POST, "/api/v1/stages/staging/unfreeze", &olga_token, Value::Null).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", again.body);
    assert_eq!(findings(&f.promote(&ci, REPO, "6.0", "staging", Some("6.0")).await), ["stage-frozen"]);
    let second =
        f.api(Method::POST, "/api/v1/stages/staging/unfreeze", &f.user_token("oscar", &oscar).await, Value::Null).await;
    assert_eq!(second.json()["frozen"], false, "{:?}", second.body);
    assert_eq!(f.promote(&ci, REPO, "6.0", "staging", Some("6.0")).await.json()["status"], "promoted");
    let types = f.log_types_all().await;
    for kind in ["stage.freeze", "stage.unfreeze.request", "stage.unfreeze"] {
        assert_eq!(types.iter().filter(|t| *t == kind).count(), 1, "{kind}: {types:?}");
    }
}

#[tokio::test]
async fn an_approved_waiver_meets_the_policy_in_the_same_decision_until_revoked() {
    let f = Fixture::new("").await;
    let carol = f.user("carol", &["developer"]).await;
    let alice = f.user("alice", &["release-approver"]).await;
    let image = Image::new(&[("app", b"payments 7.0")]);
    f.app.push_image(REPO, &image, "7.0").await;
    f.provenance(&image, "ci-bot").await;
    f.scan(&image, &["CVE-2026-0007"]).await;
    let ci = f.tester_token().await;
    assert_eq!(findings(&f.promote(&ci, REPO, "7.0", "staging", Some("7.0")).await), ["no-critical"]);

    let carol_token = f.user_token("carol", &carol).await;
    let request = json!({
        "rule": "no-critical", "vulnerability": "CVE-2026-0007", "repository": "*/payments/api",
        "expires": "2026-12-10T00:00:00Z", "justification": "not reachable: the TLS code path is unused",
    });
    // Waivers that could widen are refused before they are stored.
    for (field, value) in [
        ("repository", json!("**")),
        ("expires", json!("2027-06-01T00:00:00Z")),
        ("expires", json!("2026-01-01T00:00:00Z")),
    ] {
        let mut wide = request.clone();
        wide[field] = value;
        let refused = f.api(Method::POST, "/api/v1/waivers", &carol_token, wide).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {:?}", refused.body);
    }
    let asked = f.api(Method::POST, "/api/v1/waivers", &carol_token, request).await;
    assert_eq!(asked.status, StatusCode::CREATED, "{:?}", asked.body);
    let id = asked.json()["id"].as_str().unwrap().to_owned();
    // Pending waives nothing; the requester cannot approve it.
    assert_eq!(findings(&f.promote(&ci, REPO, "7.0", "staging", Some("7.0")).await), ["no-critical"]);
    let own = f.api(Method::POST, &format!("/api/v1/waivers/{id}/approve"), &carol_token, Value::Null).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{:?}", own.body);
    let approved = f
        .api(Method::POST, &format!("/api/v1/waivers/{id}/approve"), &f.user_token("alice", &alice).await, Value::Null)
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(approved.json()["status"], "active");
    let staged = f.promote(&ci, REPO, "7.0", "staging", Some("7.0")).await;
    assert_eq!(staged.json()["status"], "promoted", "{:?}", staged.json());

    // Revoked, it waives nothing again.
    let revoked = f.api(Method::POST, &format!("/api/v1/waivers/{id}/revoke"), &carol_token, Value::Null).await;
    assert_eq!(revoked.json()["status"], "revoked", "{:?}", revoked.body);
    let other = Image::new(&[("app", b"payments 7.1")]);
    f.app.push_image(REPO, &other, "7.1").await;
    f.provenance(&other, "ci-bot").await;
    f.scan(&other, &["CVE-2026-0007"]).await;
    assert_eq!(findings(&f.promote(&ci, REPO, "7.1", "staging", Some("7.1")).await), ["no-critical"]);
}

#[tokio::test]
async fn rollback_moves_a_gated_tag_only_to_a_digest_promoted_there_before() {
    let f = Fixture::new("").await;
    let alice = f.user("alice", &["release-approver"]).await;
    let bob = f.user("bob", &["release-approver"]).await;
    let olga = f.user("olga", &["operator"]).await;
    let one = Image::new(&[("app", b"payments 8.0")]);
    let two = Image::new(&[("app", b"payments 8.1")]);
    assert_eq!(to_prod(&f, &one, "8.0", [("alice", &alice), ("bob", &bob)]).await.json()["status"], "promoted");
    assert_eq!(to_prod(&f, &two, "8.1", [("alice", &alice), ("bob", &bob)]).await.json()["status"], "promoted");
    let olga_token = f.user_token("olga", &olga).await;
    let rollback =
        |to: &str| json!({"repository": "prod/payments/api", "tag": "8.1", "to": to, "reason": "8.1 breaks checkout"});

    // Never to a digest that was not promoted there.
    let never = Image::new(&[("app", b"never promoted")]);
    f.app.push_image(REPO, &never, "x").await;
    let refused = f.api(Method::POST, "/api/v1/rollbacks", &olga_token, rollback(&never.digest())).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    assert!(refused.error_message().contains("never promoted"), "{:?}", refused.body);
    // Not by a developer.
    let ci = f.tester_token().await;
    assert_eq!(f.api(Method::POST, "/api/v1/rollbacks", &ci, rollback("previous")).await.status, StatusCode::FORBIDDEN);

    let moved = f.api(Method::POST, "/api/v1/rollbacks", &olga_token, rollback("previous")).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.json()["from"], two.digest().as_str());
    assert_eq!(moved.json()["to"], one.digest().as_str());
    assert_eq!(f.app.get("/v2/prod/payments/api/manifests/8.1").await.header("docker-content-digest"), one.digest());
    let index = moved.json()["log_index"].as_u64().unwrap();
    let entry = f.app.get(&format!("/api/v1/log/entries?start={index}&end={}", index + 1)).await.json();
    assert_eq!(entry["entries"][0]["event"]["type"], "promotion.rollback");
    assert_eq!(entry["entries"][0]["event"]["details"]["previous"], two.digest().as_str());
}

#[tokio::test]
async fn break_glass_passes_failing_gates_with_a_second_person_and_leaves_a_review_open() {
    let f = Fixture::new("").await;
    let gus = f.user("gus", &["developer", "break-glass"]).await;
    let carol = f.user("carol", &["developer"]).await;
    let alice = f.user("alice", &["release-approver"]).await;
    let bob = f.user("bob", &["release-approver"]).await;
    let image = Image::new(&[("app", b"payments hotfix")]);
    f.app.push_image(REPO, &image, "9.0").await;
    f.provenance(&image, "ci-bot").await;
    f.scan(&image, &["CVE-2026-0009"]).await;
    let body = |reason: &str| json!({"repository": REPO, "reference": "9.0", "to": "staging", "tag": "9.0", "reason": reason, "break_glass": true});
    // Only with the role, and only with a reason.
    let carol_token = f.user_token("carol", &carol).await;
    let refused = f.api(Method::POST, "/api/v1/promotions", &carol_token, body("outage")).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    assert!(refused.error_message().contains("break-glass"), "{:?}", refused.body);
    let gus_token = f.user_token("gus", &gus).await;
    let no_reason = f.api(Method::POST, "/api/v1/promotions", &gus_token, body("")).await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);

    let opened = f.api(Method::POST, "/api/v1/promotions", &gus_token, body("checkout is down; hotfix")).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
    assert_eq!(opened.json()["status"], "pending", "the failing policy does not deny: {}", opened.json());
    assert_eq!(opened.json()["break_glass"], true);
    assert_eq!(findings(&opened), ["no-critical"], "the findings are still reported");
    let id = opened.json()["id"].as_str().unwrap().to_owned();
    assert!(f.log_types().await.contains(&"promotion.break_glass".to_owned()));
    // Its requester cannot be the second person.
    f.clock.advance(31_000);
    let own = f.approve(&f.user_token("gus", &gus).await, &id).await;
    assert!(own.status.is_client_error(), "{:?}", own.body);
    let done = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(done.json()["status"], "promoted", "one approval commits it: {}", done.json());

    // The release record says so, and a review stays open until someone else closes it.
    let history =
        f.app.get(&format!("/api/v1/artifacts/staging/payments/api/{}/promotions", image.digest())).await.json();
    assert_eq!(history["promoted"], true, "{history}");
    let key = PublicKey::from_pem(f.app.get("/api/v1/release-key").await.json()["pem"].as_str().unwrap()).unwrap();
    use base64::Engine as _;
    let envelope = base64::engine::general_purpose::STANDARD
        .decode(history["promotions"][0]["record_envelope"].as_str().unwrap())
        .unwrap();
    let record = airlock_core::promotion::record::verify_record(
        &envelope,
        &key,
        &Digest::parse(&image.digest()).unwrap(),
        "staging",
    )
    .unwrap();
    assert!(record.break_glass);
    assert_eq!(record.predicate["decision"], "break-glass");
    // Reviews are read by who may pull what they concern: an approver, not the administrator.
    let admin = f.token("admin", ADMIN_PASSWORD, None).await;
    let hidden = f.api(Method::GET, "/api/v1/reviews", &admin, Value::Null).await.json();
    assert_eq!(hidden, json!([]), "the administrator (access-admin) may pull nothing");
    let reader = f.token("bob", "bob-password-123", None).await;
    let reviews = f.api(Method::GET, "/api/v1/reviews", &reader, Value::Null).await.json();
    let review = reviews.as_array().unwrap().iter().find(|r| r["promotion"] == id.as_str()).unwrap().clone();
    assert_eq!(review["open"], true);
    let review_id = review["id"].as_str().unwrap().to_owned();
    f.clock.advance(31_000);
    let by_gus = f
        .api(
            Method::POST,
            &format!("/api/v1/reviews/{review_id}/close"),
            &f.user_token("gus", &gus).await,
            json!({"note": "fine"}),
        )
        .await;
    assert_eq!(by_gus.status, StatusCode::FORBIDDEN, "{:?}", by_gus.body);
    let closed = f
        .api(
            Method::POST,
            &format!("/api/v1/reviews/{review_id}/close"),
            &f.user_token("bob", &bob).await,
            json!({"note": "CVE-2026-0009 is fixed in 9.1, promoted normally"}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{:?}", closed.body);
    assert_eq!(closed.json()["open"], false);
}

#[tokio::test]
async fn custom_cedar_policies_see_where_the_artifact_came_from() {
    let cedar = tempfile::tempdir().unwrap();
    let policies = cedar.path().join("custom.cedar");
    std::fs::write(
        &policies,
        "@id(\"custom.only-our-source\")\nforbid (principal, action == Airlock::Action::\"promote.request\", resource)\n\
         unless { context has origin_source && context.origin_source == \"github.com/acme/payments\" };\n",
    )
    .unwrap();
    let f = Fixture::new(&format!("[access]\npolicies = \"{}\"\n", policies.display())).await;
    let ci = f.tester_token().await;
    // Without provenance there is no origin, so the custom policy refuses.
    let image = Image::new(&[("app", b"payments 11.0")]);
    f.app.push_image(REPO, &image, "11.0").await;
    let refused = f.promote(&ci, REPO, "11.0", "staging", Some("11.0")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert!(refused.error_message().contains("custom.only-our-source"), "{:?}", refused.body);
    // Trusted provenance naming the allowed source: the request goes through to the gates.
    f.provenance(&image, "ci-bot").await;
    let allowed = f.promote(&ci, REPO, "11.0", "staging", Some("11.0")).await;
    assert_eq!(allowed.json()["status"], "promoted", "{:?}", allowed.body);
}

#[tokio::test]
async fn a_policy_change_voids_the_approvals_given_under_the_old_one() {
    let mut f = Fixture::new("").await;
    let alice = f.user("alice", &["release-approver"]).await;
    let bob = f.user("bob", &["release-approver"]).await;
    let image = Image::new(&[("app", b"payments 12.0")]);
    f.app.push_image(REPO, &image, "12.0").await;
    f.provenance(&image, "ci-bot").await;
    let ci = f.tester_token().await;
    assert_eq!(f.promote(&ci, REPO, "12.0", "staging", Some("12.0")).await.json()["status"], "promoted");
    let id = f.promote(&ci, "staging/payments/api", "12.0", "prod", Some("12.0")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = f.approve(&f.user_token("alice", &alice).await, &id).await;
    assert_eq!(one.json()["report"]["approvals"]["counted"], json!(["alice"]));
    let before = one.json()["policy_digest"].as_str().unwrap().to_owned();

    // The policy gains a rule and the server restarts with it: alice approved another policy.
    std::fs::write(
        f._policy.path().join("extra.rego"),
        "package airlock\nimport rego.v1\n\nwarn contains \"never\" if { false }\n",
    )
    .unwrap();
    let config = f.app.app.config.clone();
    f.app.app.close().await;
    let reopened = TestApp::with_config_and_clock(config, f.clock.clone()).await;
    let old = std::mem::replace(&mut f.app, reopened);
    f.clock.advance(31_000);
    let two = f.approve(&f.user_token("bob", &bob).await, &id).await;
    assert_eq!(two.status, StatusCode::OK, "{:?}", two.body);
    assert_ne!(two.json()["policy_digest"], before.as_str(), "the bundle changed");
    assert_eq!(two.json()["status"], "pending", "{}", two.json());
    assert_eq!(two.json()["report"]["approvals"]["counted"], json!(["bob"]));
    drop(old.dir);
}

/// A bundle that only one stage names: it denies everything, by a rule of its own.
const PROD_ONLY_POLICY: &str = r#"package airlock
import rego.v1

deny contains {"rule": "prod-only-rule", "msg": "prod takes nothing today", "remediation": "wait"} if {
	true
}
"#;

#[tokio::test]
async fn a_dry_run_is_decided_by_the_target_stage_s_own_policy() {
    let own = tempfile::tempdir().unwrap();
    std::fs::write(own.path().join("policy.rego"), PROD_ONLY_POLICY).unwrap();
    let f = Fixture::new(&format!("policy = \"{}\"", own.path().display())).await;
    let ci = f.tester_token().await;
    let image = Image::new(&[("app", b"payments 12.0")]);
    f.app.push_image(REPO, &image, "12.0").await;
    let dry_run = |to: &'static str| {
        let uri = format!("/api/v1/artifacts/{REPO}/{}/evaluate?to={to}", image.digest());
        let f = &f;
        let ci = ci.clone();
        async move { f.api(Method::POST, &uri, &ci, Value::Null).await }
    };
    // Staging names no bundle of its own: the default one decides, and finds nothing.
    let staging = dry_run("staging").await;
    assert_eq!(staging.status, StatusCode::OK, "{:?}", staging.body);
    assert_eq!(staging.json()["outcome"], "allow", "{}", staging.json());
    // Prod names its own: it decides the dry run, as it would decide the promotion.
    let prod = dry_run("prod").await;
    assert_eq!(prod.status, StatusCode::OK, "{:?}", prod.body);
    let decision = prod.json();
    assert_eq!(decision["outcome"], "deny", "{decision}");
    let rules: Vec<&str> =
        decision["violations"].as_array().unwrap().iter().filter_map(|v| v["rule"].as_str()).collect();
    assert_eq!(rules, ["prod-only-rule"], "{decision}");
    assert_ne!(decision["bundle_digest"], staging.json()["bundle_digest"]);
    // The same bundle a real promotion into staging is decided by, for the stage without one.
    let promoted = f.promote(&ci, REPO, "12.0", "staging", Some("12.0")).await;
    assert_eq!(promoted.json()["policy_digest"], staging.json()["bundle_digest"], "{:?}", promoted.body);
}

/// `GET …/policy-input` shows the document the gates evaluate for the caller, byte for byte:
/// its canonical digest is the promotion's `input_digest` (a service account is named
/// `service` in both; the input shown used to say `service_account`).
#[tokio::test]
async fn the_policy_input_shown_is_the_one_the_gates_evaluate() {
    let f = Fixture::new("").await;
    let ci = f.tester_token().await;
    let image = Image::new(&[("app", b"payments 14.0")]);
    f.app.push_image(REPO, &image, "14.0").await;
    f.provenance(&image, "ci-bot").await;
    let shown = f
        .api(
            Method::GET,
            &format!("/api/v1/artifacts/{REPO}/{}/policy-input?to=staging", image.digest()),
            &ci,
            Value::Null,
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.body);
    let shown = shown.json();
    assert_eq!(shown["requester"]["kind"], "service", "{}", shown["requester"]);
    let canonical = airlock_model::jcs::canonicalize(&shown).unwrap();
    let promoted = f.promote(&ci, REPO, "14.0", "staging", Some("14.0")).await;
    assert_eq!(promoted.json()["status"], "promoted", "{:?}", promoted.body);
    assert_eq!(promoted.json()["report"]["input_digest"], airlock_model::Digest::of(&canonical).as_str());
}
