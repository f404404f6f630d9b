//! Attestations as OCI referrers, verified at ingest against the trust root, and the root's
//! rotation through the API: the evidence view re-verifies, so a revocation shows at once.

use std::collections::BTreeMap;

use airlock_dsse::{
    Algorithm, DSSE_MEDIA_TYPE, Envelope, IN_TOTO_PAYLOAD_TYPE, PrivateKey, Statement, StatementSubject,
};
use airlock_model::Timestamp;
use airlock_test_support::TestApp;
use airlock_test_support::oci::{Image, OCI_MANIFEST, digest};
use airlock_trust::{Pattern, RepoPattern, Revocation, Root, SignerRule, sign_root};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

const PROVENANCE: &str = "https://slsa.dev/provenance/v1";
const DAY: u64 = 86_400_000;

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    Timestamp::from_millis(i64::try_from(ms).unwrap())
}

/// A value unique to each call, so two attestations never share bytes (Ed25519 is deterministic).
fn uuid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("run-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn key() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

fn root(version: u64, root_keys: &[&PrivateKey], threshold: u32, ci: &PrivateKey, revoked: &[&PrivateKey]) -> Root {
    let mut keys = BTreeMap::new();
    for k in root_keys.iter().chain([&ci]).chain(revoked.iter()) {
        keys.insert(k.public_key().keyid().clone(), k.public_key().clone());
    }
    Root {
        version,
        expires: now().plus_millis(365 * DAY),
        keys,
        root_keyids: root_keys.iter().map(|k| k.public_key().keyid().clone()).collect(),
        root_threshold: threshold,
        signers: vec![SignerRule {
            name: "ci".to_owned(),
            keyids: vec![ci.public_key().keyid().clone()],
            predicate_types: vec![Pattern::parse("https://slsa.dev/provenance/*").unwrap()],
            repositories: vec![RepoPattern::parse("dev/**").unwrap()],
            not_before: now().plus_millis(0).plus_millis(0),
            not_after: now().plus_millis(30 * DAY),
        }],
        thresholds: Vec::new(),
        revoked: revoked
            .iter()
            .map(|k| Revocation {
                keyid: k.public_key().keyid().clone(),
                revoked_at: now(),
                reason: "rotated".to_owned(),
            })
            .collect(),
        policy: None,
    }
}

/// Pushes an envelope about `subject` as a referrer; returns the push reply and the referrer digest.
async fn attest(
    app: &TestApp,
    repo: &str,
    subject: &Image,
    statement_about: &str,
    key: &PrivateKey,
) -> (airlock_test_support::Reply, String) {
    let mut digests = BTreeMap::new();
    digests.insert("sha256".to_owned(), statement_about.trim_start_matches("sha256:").to_owned());
    let statement = Statement::new(
        vec![StatementSubject { name: repo.to_owned(), digest: digests }],
        PROVENANCE,
        &json!({"buildDefinition": {"buildType": "https://example.com/build"}, "run": uuid()}),
    );
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_json(), &[key]).unwrap().to_json();
    let config = app.push_blob(repo, b"{}").await;
    let layer = app.push_blob(repo, &envelope).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": IN_TOTO_PAYLOAD_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": DSSE_MEDIA_TYPE, "digest": layer, "size": envelope.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest(), "size": subject.manifest.len()},
    }))
    .unwrap();
    let referrer = digest(&manifest);
    let reply = app
        .send(Method::PUT, &format!("/v2/{repo}/manifests/{referrer}"), &[("content-type", OCI_MANIFEST)], manifest)
        .await;
    (reply, referrer)
}

async fn evidence(app: &TestApp, repo: &str, subject: &Image) -> serde_json::Value {
    let reply = app.get(&format!("/api/v1/artifacts/{repo}/{}/evidence", subject.digest())).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()
}

async fn put_root(app: &TestApp, document: Vec<u8>) -> airlock_test_support::Reply {
    app.put_root(document).await
}

#[tokio::test]
async fn attestations_are_verified_at_ingest_and_re_verified_after_rotation() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("app", b"binary")]);
    app.push_image("dev/payments/api", &image, "1.0").await;
    let (r1, r2, r3) = (key(), key(), key());
    let ci_old = key();

    // Without a root, an attestation is recorded as untrusted.
    let (reply, early) = attest(&app, "dev/payments/api", &image, &image.digest(), &ci_old).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);

    // Root v1: 2 of 3 root keys, signer `ci`.
    let v1 = sign_root(&root(1, &[&r1, &r2, &r3], 2, &ci_old, &[]), &[&r1, &r2]).unwrap();
    let applied = put_root(&app, v1.clone()).await;
    assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
    assert_eq!(applied.json()["version"], 1);

    let (reply, trusted) = attest(&app, "dev/payments/api", &image, &image.digest(), &ci_old).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let listed = evidence(&app, "dev/payments/api", &image).await;
    assert_eq!(listed["trust_root_version"], 1);
    let by_referrer = |listed: &serde_json::Value, d: &str| {
        listed["attestations"].as_array().unwrap().iter().find(|a| a["referrer"] == d).cloned().unwrap()
    };
    let item = by_referrer(&listed, &trusted);
    assert_eq!(item["status"], "trusted", "{item}");
    assert_eq!(item["current"]["signers"], json!(["ci"]));
    let early_item = by_referrer(&listed, &early);
    assert_eq!(early_item["at_ingest"]["trusted"], false);
    assert!(early_item["at_ingest"]["reasons"][0].as_str().unwrap().contains("no trust root"));
    assert_eq!(early_item["status"], "trusted", "re-verified against the root now in force");

    // A statement about another artifact is refused outright.
    let (reply, _) = attest(&app, "dev/payments/api", &image, &digest(b"something else"), &ci_old).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "MANIFEST_INVALID");
    assert!(
        reply.json()["errors"][0]["message"].as_str().unwrap().contains("attest the artifact the referrer points at")
    );

    // v3 before v2: refused, and the refusal is logged.
    let skip = sign_root(&root(3, &[&r1, &r2, &r3], 2, &ci_old, &[]), &[&r1, &r2, &r3]).unwrap();
    let refused = put_root(&app, skip).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "TRUST_ROOT_REFUSED");

    // v2 rotates `ci` to a new key and revokes the old one.
    let ci_new = key();
    let v2 = sign_root(&root(2, &[&r1, &r2, &r3], 2, &ci_new, &[&ci_old]), &[&r2, &r3]).unwrap();
    let applied = put_root(&app, v2).await;
    assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
    let (_, fresh) = attest(&app, "dev/payments/api", &image, &image.digest(), &ci_new).await;
    let listed = evidence(&app, "dev/payments/api", &image).await;
    let old = by_referrer(&listed, &trusted);
    assert_eq!(old["at_ingest"]["trusted"], true);
    assert_eq!(old["status"], "untrusted", "the revocation shows at once");
    assert!(old["current"]["reasons"].to_string().contains("revoked"), "{old}");
    assert_eq!(by_referrer(&listed, &fresh)["status"], "trusted");

    // A v3 signed by one root key only is refused.
    let lone = sign_root(&root(3, &[&r1, &r2, &r3], 2, &ci_new, &[&ci_old]), &[&r1]).unwrap();
    assert_eq!(put_root(&app, lone).await.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Every version stays readable, byte for byte.
    let first = app.get("/api/v1/trust/root?version=1").await;
    assert_eq!(first.body, Bytes::from(v1));
    assert_eq!(app.get("/api/v1/trust/root").await.json()["signed"]["version"], 2);

    // The log holds the root changes, the refusals and every verdict.
    app.app.state.log.checkpoint().await.unwrap();
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    let kinds: Vec<String> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap().to_owned())
        .collect();
    for kind in ["trust.root.bootstrap", "trust.root.update", "trust.root.refused", "trust.attestation.ingest"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn the_first_root_can_come_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let (r1, ci) = (key(), key());
    let path = dir.path().join("root.json");
    std::fs::write(&path, sign_root(&root(1, &[&r1], 1, &ci, &[]), &[&r1]).unwrap()).unwrap();
    let app = TestApp::new(&format!("[trust]\nroot = \"{}\"\n", path.display())).await;
    let current = app.get("/api/v1/trust/root").await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.body, Bytes::from(std::fs::read(&path).unwrap()));
    assert_eq!(app.app.state.registry.trust().current().map(|r| r.version()), Some(1));
}

#[tokio::test]
async fn a_malformed_root_is_refused_clearly() {
    let app = TestApp::new("").await;
    let reply = put_root(&app, b"{\"signed\":{}}".to_vec()).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = reply.json();
    assert_eq!(body["error"]["code"], "TRUST_ROOT_REFUSED");
    assert!(body["error"]["remediation"].as_str().unwrap().contains("airlock trust propose"));
    assert_eq!(app.get("/api/v1/trust/root").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_policy_input_and_a_dry_run_decision() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("app", b"binary")]);
    app.push_image("dev/payments/api", &image, "1.0").await;
    let (r1, ci) = (key(), key());
    let v1 = sign_root(&root(1, &[&r1], 1, &ci, &[]), &[&r1]).unwrap();
    assert_eq!(put_root(&app, v1).await.status, StatusCode::OK);
    let (reply, referrer) = attest(&app, "dev/payments/api", &image, &image.digest(), &ci).await;
    assert_eq!(reply.status, StatusCode::CREATED);

    let base = format!("/api/v1/artifacts/dev/payments/api/{}", image.digest());
    let input = app.get(&format!("{base}/policy-input?to=staging")).await;
    assert_eq!(input.status, StatusCode::OK, "{:?}", input.body);
    let input = input.json();
    assert_eq!(input["artifact"]["digest"], json!(image.digest()));
    assert_eq!(input["source_stage"], "dev");
    assert_eq!(input["target_stage"], "staging");
    assert_eq!(input["attestations"][0]["referrer"], json!(referrer));
    assert_eq!(input["attestations"][0]["trusted"], true);
    assert_eq!(input["attestations"][0]["signers"], json!(["ci"]));
    assert_eq!(input["evidence"]["provenance"].as_array().map(Vec::len), Some(1), "{}", input["evidence"]);

    let missing = app.get(&format!("{base}/policy-input")).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.json()["error"]["remediation"].as_str().unwrap().contains("?to="));
    let unknown = app.get(&format!("{base}/policy-input?to=qa")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    // The default library denies staging without an SBOM and a scan, saying how to fix it.
    let decision = app.send(Method::POST, &format!("{base}/evaluate?to=staging"), &[], Bytes::new()).await;
    assert_eq!(decision.status, StatusCode::OK, "{:?}", decision.body);
    let decision = decision.json();
    assert_eq!(decision["outcome"], "deny", "{decision}");
    let rules: Vec<&str> =
        decision["violations"].as_array().unwrap().iter().filter_map(|v| v["rule"].as_str()).collect();
    assert!(rules.contains(&"sbom-required"), "{rules:?}");
    for v in decision["violations"].as_array().unwrap() {
        assert!(
            v["remediation"].is_string() && v["doc"].as_str().is_some_and(|d| d.starts_with("docs/policies/")),
            "{v}"
        );
    }
    app.app.state.log.checkpoint().await.unwrap();
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    let last = entries["entries"].as_array().unwrap().last().unwrap()["event"].clone();
    assert_eq!(last["type"], "policy.evaluate");
    assert_eq!(last["outcome"]["decision"], "denied");
    assert_eq!(last["details"]["bundle_digest"], decision["bundle_digest"]);
}

#[tokio::test]
async fn the_trust_root_in_force_survives_a_restart() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("app", b"binary")]);
    app.push_image("dev/payments/api", &image, "1.0").await;
    let (r1, ci) = (key(), key());
    let v1 = sign_root(&root(1, &[&r1], 1, &ci, &[]), &[&r1]).unwrap();
    assert_eq!(put_root(&app, v1).await.status, StatusCode::OK);
    attest(&app, "dev/payments/api", &image, &image.digest(), &ci).await;
    let config = app.app.config.clone();
    let data = app.dir;
    drop(app.router);
    app.app.close().await;

    let reopened = TestApp::with_config(config).await;
    let listed = evidence(&reopened, "dev/payments/api", &image).await;
    assert_eq!(listed["trust_root_version"], 1, "{listed}");
    assert_eq!(listed["attestations"][0]["status"], "trusted", "{listed}");
    // New attestations are verified against it too.
    let (reply, _) = attest(&reopened, "dev/payments/api", &image, &image.digest(), &ci).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(evidence(&reopened, "dev/payments/api", &image).await["attestations"][1]["status"], "trusted");
    drop(data);
}

/// An API token of the `tester` service account (roles `developer` and `auditor`: no
/// `trust.sign`).
async fn tester_api_token(app: &TestApp) -> String {
    let basic = airlock_test_support::basic(airlock_test_support::TESTER, &app.tester_key);
    let reply = app.send(Method::POST, "/api/v1/auth/token", &[("authorization", &basic)], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()["token"].as_str().unwrap().to_owned()
}

/// The logged events of `kind`, oldest first.
async fn logged(app: &TestApp, kind: &str) -> Vec<serde_json::Value> {
    app.app.state.log.checkpoint().await.unwrap();
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    entries["entries"].as_array().unwrap().iter().map(|e| e["event"].clone()).filter(|e| e["type"] == kind).collect()
}

/// Issue 17: on a server started without `trust.root`, an anonymous `PUT /api/v1/trust/root`
/// installed a self-signed root (200, logged as `anonymous`), and whoever came first decided
/// every attestation verdict from then on.
#[tokio::test]
async fn first_trust_root_needs_a_key_admin() {
    let app = TestApp::new("").await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    let ready = String::from_utf8_lossy(&ready.body).to_string();
    assert!(ready.contains("warning: no trust root is in force"), "{ready}");
    assert!(ready.contains("airlock trust apply"), "{ready}");

    let (r1, ci) = (key(), key());
    let v1 = sign_root(&root(1, &[&r1], 1, &ci, &[]), &[&r1]).unwrap();

    // Anonymous: 401 with a challenge, refused before the body is read (a malformed body is
    // refused the same way), and nothing is installed.
    for body in [v1.clone(), b"{\"signed\":{}}".to_vec()] {
        let anonymous = app.send(Method::PUT, "/api/v1/trust/root", &[], body).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{:?}", anonymous.body);
        assert!(anonymous.header("www-authenticate").starts_with("Bearer realm="), "{:?}", anonymous.headers);
        assert!(anonymous.error_message().contains("authentication required"), "{}", anonymous.error_message());
        assert!(anonymous.json()["error"]["remediation"].as_str().unwrap().contains("airlock login"));
    }
    assert_eq!(app.get("/api/v1/trust/root").await.status, StatusCode::NOT_FOUND);

    // Authenticated without `trust.sign`: 403, and the refusal is logged with its actor.
    let bearer = format!("Bearer {}", tester_api_token(&app).await);
    let denied = app.send(Method::PUT, "/api/v1/trust/root", &[("authorization", &bearer)], v1.clone()).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{:?}", denied.body);
    assert!(denied.error_message().contains("trust.sign"), "{}", denied.error_message());
    assert_eq!(app.get("/api/v1/trust/root").await.status, StatusCode::NOT_FOUND);
    assert!(logged(&app, "trust.root.refused").await.is_empty(), "refused before any work");
    let denials = logged(&app, "access.denied").await;
    assert!(denials.iter().any(|e| e["actor"] == "tester" && e["details"]["action"] == "trust.sign"), "{denials:?}");

    // A key admin installs it; the log names who did.
    let applied = app.put_root(v1).await;
    assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
    assert_eq!(applied.json()["version"], 1);
    let bootstrap = logged(&app, "trust.root.bootstrap").await;
    assert_eq!(bootstrap.len(), 1, "{bootstrap:?}");
    assert_eq!(bootstrap[0]["actor"], airlock_test_support::KEY_ADMIN);
    let ready = String::from_utf8_lossy(&app.get("/readyz").await.body).to_string();
    assert!(!ready.contains("no trust root"), "{ready}");
}

/// Issue 17: later versions need the same authentication on top of the root-key signatures (the
/// signatures stay the authority; the principal is accountable).
#[tokio::test]
async fn later_trust_root_versions_need_authentication() {
    let app = TestApp::new("").await;
    let (r1, r2, ci) = (key(), key(), key());
    let v1 = sign_root(&root(1, &[&r1, &r2], 1, &ci, &[]), &[&r1]).unwrap();
    assert_eq!(app.put_root(v1).await.status, StatusCode::OK);
    let v2 = sign_root(&root(2, &[&r1, &r2], 1, &ci, &[]), &[&r1, &r2]).unwrap();

    let anonymous = app.send(Method::PUT, "/api/v1/trust/root", &[], v2.clone()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{:?}", anonymous.body);
    let bearer = format!("Bearer {}", tester_api_token(&app).await);
    let denied = app.send(Method::PUT, "/api/v1/trust/root", &[("authorization", &bearer)], v2.clone()).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{:?}", denied.body);
    assert_eq!(app.app.state.registry.trust().current().map(|r| r.version()), Some(1));

    // A key admin still needs the root keys' signatures: a lone signature by an unknown key is
    // refused under the rotation rules.
    let stranger = key();
    let forged = sign_root(&root(2, &[&stranger], 1, &ci, &[]), &[&stranger]).unwrap();
    assert_eq!(app.put_root(forged).await.status, StatusCode::UNPROCESSABLE_ENTITY);

    let applied = app.put_root(v2).await;
    assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
    let updates = logged(&app, "trust.root.update").await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["actor"], airlock_test_support::KEY_ADMIN);
    assert_eq!(updates[0]["details"]["version"], 2);
}

/// Issue 17: every apply, refused or not, is a log entry, and nothing bounded how many one
/// principal could send, so a stolen key admin's credentials could flood the log with refusals.
/// A principal applies at most `TRUST_ROOT_APPLIES_PER_MINUTE` documents a minute; the next is
/// refused with 429 and `Retry-After` before it is read or logged.
#[tokio::test]
async fn a_key_admin_cannot_flood_the_log_with_trust_roots() {
    use airlock_server::TRUST_ROOT_APPLIES_PER_MINUTE;
    let app = TestApp::new("").await;
    let (r1, ci, stranger) = (key(), key(), key());
    let v1 = sign_root(&root(1, &[&r1], 1, &ci, &[]), &[&r1]).unwrap();
    assert_eq!(app.put_root(v1).await.status, StatusCode::OK);
    let forged = sign_root(&root(2, &[&stranger], 1, &ci, &[]), &[&stranger]).unwrap();
    for n in 1..TRUST_ROOT_APPLIES_PER_MINUTE {
        let refused = app.put_root(forged.clone()).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "apply {n}: {:?}", refused.body);
    }
    let throttled = app.put_root(forged.clone()).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", throttled.body);
    let wait: u64 = throttled.header("retry-after").parse().unwrap_or_default();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let body = throttled.json();
    assert_eq!(body["error"]["code"], "TOOMANYREQUESTS", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(airlock_test_support::KEY_ADMIN) && message.contains("in the last minute"), "{body}");
    // Every refused apply is on record (identical ones logged once in full, then counted into
    // an aggregate); the throttled apply is not.
    airlock_server::log::close_refusals(&app.app.state.registry, true).await;
    let mut refusals = logged(&app, "trust.root.refused").await;
    assert_eq!(refusals.len(), 1, "one in full");
    refusals.extend(logged(&app, "refusal.aggregate").await);
    let on_record = airlock_test_support::refusals_on_record(&refusals, "trust.root.refused");
    assert_eq!(on_record, u64::from(TRUST_ROOT_APPLIES_PER_MINUTE - 1));
    assert_eq!(app.app.state.registry.trust().current().map(|r| r.version()), Some(1));
}

/// An expired root says so, across a restart too: the evidence names the version, when it
/// expired and that a new version must be applied (not "no trust root", which a restart used to
/// say after dropping the expired root), and version 2 must still be signed by version 1's root
/// keys: a self-signed stranger is not taken as a first root.
#[tokio::test]
async fn expired_root_says_so() {
    let clock = airlock_test_support::ManualClock::at(now().as_millis());
    let app = TestApp::with_clock("", clock.clone()).await;
    let image = Image::new(&[("app", b"binary")]);
    app.push_image("dev/payments/api", &image, "1.0").await;
    let (r1, ci) = (key(), key());
    let v1 = sign_root(&root(1, &[&r1], 1, &ci, &[]), &[&r1]).unwrap();
    assert_eq!(put_root(&app, v1).await.status, StatusCode::OK);
    clock.advance(1000);
    attest(&app, "dev/payments/api", &image, &image.digest(), &ci).await;
    assert_eq!(evidence(&app, "dev/payments/api", &image).await["attestations"][0]["status"], "trusted");
    clock.advance(366 * DAY as i64);
    let says_expired = |listed: &serde_json::Value| {
        let reason = listed["attestations"][0]["current"]["reasons"][0].as_str().unwrap_or_default().to_owned();
        assert!(
            reason.starts_with("trust root version 1 expired at ")
                && reason.contains("sign version 2 with the root keys and apply it with `airlock trust apply`"),
            "{listed}"
        );
        assert_eq!(listed["attestations"][0]["status"], "untrusted", "{listed}");
    };
    // (The app's cached tokens expired with the clock; ask the registry directly.)
    let repo = airlock_model::RepoName::parse("dev/payments/api").unwrap();
    let subject = airlock_model::Digest::parse(&image.digest()).unwrap();
    let items = app.app.state.registry.evidence(&repo, &subject).await.unwrap();
    says_expired(&json!({"attestations": [{
        "status": if items[0].current.trusted { "trusted" } else { "untrusted" },
        "current": {"reasons": items[0].current.reasons},
    }]}));

    let config = app.app.config.clone();
    let data = app.dir;
    drop(app.router);
    app.app.close().await;
    let reopened = TestApp::with_config_and_clock(config, clock.clone()).await;
    says_expired(&evidence(&reopened, "dev/payments/api", &image).await);

    // A stranger's self-signed root is no first root while the expired one is in force.
    let (stranger, their_ci) = (key(), key());
    let mut theirs = root(2, &[&stranger], 1, &their_ci, &[]);
    theirs.expires = airlock_core::ports::Clock::now(&clock).plus_millis(365 * DAY);
    let refused = put_root(&reopened, sign_root(&theirs, &[&stranger]).unwrap()).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.body);
    // Version 2 signed by version 1's root key is applied over the expired root.
    let mut v2 = root(2, &[&r1], 1, &ci, &[]);
    v2.expires = airlock_core::ports::Clock::now(&clock).plus_millis(365 * DAY);
    v2.signers[0].not_after = airlock_core::ports::Clock::now(&clock).plus_millis(30 * DAY);
    let applied = put_root(&reopened, sign_root(&v2, &[&r1]).unwrap()).await;
    assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
    let listed = evidence(&reopened, "dev/payments/api", &image).await;
    assert_eq!(listed["attestations"][0]["status"], "trusted", "{listed}");
    drop(data);
}

#[tokio::test]
async fn a_key_revoked_on_one_replica_stops_counting_on_another_at_once() {
    let mut a = TestApp::new("").await;
    let b = TestApp::with_config(a.app.config.clone()).await;
    // Opening the second rotated the tester's key; both replicas push with the new one.
    a.tester_key = b.tester_key.clone();
    let image = Image::new(&[("app", b"binary")]);
    a.push_image("dev/payments/api", &image, "1.0").await;
    let (r1, r2, r3, ci_old) = (key(), key(), key(), key());
    let v1 = sign_root(&root(1, &[&r1, &r2, &r3], 2, &ci_old, &[]), &[&r1, &r2]).unwrap();
    assert_eq!(put_root(&a, v1).await.status, StatusCode::OK);
    let (reply, trusted) = attest(&b, "dev/payments/api", &image, &image.digest(), &ci_old).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let item = |listed: &serde_json::Value| {
        listed["attestations"].as_array().unwrap().iter().find(|i| i["referrer"] == trusted).cloned().unwrap()
    };
    let on_b = evidence(&b, "dev/payments/api", &image).await;
    assert_eq!(on_b["trust_root_version"], 1, "the root applied on the other replica is in force");
    assert_eq!(item(&on_b)["at_ingest"]["trusted"], true, "verified at ingest under the other replica's root");

    // v2, applied on a, revokes the key; b counts it no more, at once.
    let ci_new = key();
    let v2 = sign_root(&root(2, &[&r1, &r2, &r3], 2, &ci_new, &[&ci_old]), &[&r2, &r3]).unwrap();
    assert_eq!(put_root(&a, v2).await.status, StatusCode::OK);
    let on_b = evidence(&b, "dev/payments/api", &image).await;
    assert_eq!(on_b["trust_root_version"], 2);
    assert_eq!(item(&on_b)["status"], "untrusted", "{on_b}");
    assert_eq!(b.get("/api/v1/trust/root").await.json()["signed"]["version"], 2);
    // b follows on from v2: v3 applies there, and a sees it.
    let v3 = sign_root(&root(3, &[&r1, &r2, &r3], 2, &ci_new, &[&ci_old]), &[&r1, &r3]).unwrap();
    let applied = put_root(&b, v3).await;
    assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
    assert_eq!(evidence(&a, "dev/payments/api", &image).await["trust_root_version"], 3);
}

/// Decisions keep what they verified for the next ones (the envelopes read, the signature checks,
/// keyed by envelope and trust root content); nothing kept outlives the root, the repository
/// scope or the clock it was decided under. Replica `b` decides warm while the root changes on
/// replica `a`: a revoked key, a signer rule narrowed to another repository, a signer past the
/// end of its rule, each stops counting at `b`'s very next decision.
#[tokio::test]
async fn a_warm_decision_never_counts_what_the_root_or_the_clock_no_longer_allows() {
    let clock = airlock_test_support::ManualClock::at(now().as_millis());
    let mut a = TestApp::with_clock("", clock.clone()).await;
    let b = TestApp::with_config_and_clock(a.app.config.clone(), clock.clone()).await;
    // Opening the second rotated the tester's key; both replicas push with the new one.
    a.tester_key = b.tester_key.clone();
    let image = Image::new(&[("app", b"binary")]);
    a.push_image("dev/payments/api", &image, "1.0").await;
    let base = format!("/api/v1/artifacts/dev/payments/api/{}", image.digest());
    // The attestation `referrer` in `b`'s policy input, after two decisions on `b` warmed it.
    let warm = |referrer: String| {
        let (b, base) = (&b, &base);
        async move {
            for _ in 0..2 {
                let decision = b.send(Method::POST, &format!("{base}/evaluate?to=staging"), &[], Bytes::new()).await;
                assert_eq!(decision.status, StatusCode::OK, "{:?}", decision.body);
            }
            listed(b, base, &referrer).await
        }
    };
    let (r1, r2, r3, ci_old, ci_new) = (key(), key(), key(), key(), key());
    let v1 = sign_root(&root(1, &[&r1, &r2, &r3], 2, &ci_old, &[]), &[&r1, &r2]).unwrap();
    assert_eq!(put_root(&a, v1).await.status, StatusCode::OK);
    // The signer rules start at the wall clock's now.
    clock.advance(1000);
    let (reply, old) = attest(&b, "dev/payments/api", &image, &image.digest(), &ci_old).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let item = warm(old.clone()).await;
    assert_eq!(item["trusted"], true, "{item}");

    // 1. v2 revokes `ci_old`: not counted at `b`'s next decision.
    let v2 = sign_root(&root(2, &[&r1, &r2, &r3], 2, &ci_new, &[&ci_old]), &[&r1, &r2]).unwrap();
    assert_eq!(put_root(&a, v2).await.status, StatusCode::OK);
    clock.advance(1000);
    let item = listed(&b, &base, &old).await;
    assert_eq!(item["trusted"], false, "{item}");
    assert!(item["reasons"].to_string().contains("the key is revoked"), "{item}");

    // 2. v3 narrows `ci` to another repository, same keys: not counted at `b`'s next decision.
    let (reply, new) = attest(&b, "dev/payments/api", &image, &image.digest(), &ci_new).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let item = warm(new.clone()).await;
    assert_eq!(item["trusted"], true, "{item}");
    let mut v3 = root(3, &[&r1, &r2, &r3], 2, &ci_new, &[&ci_old]);
    v3.signers[0].repositories = vec![RepoPattern::parse("dev/other/**").unwrap()];
    assert_eq!(put_root(&a, sign_root(&v3, &[&r1, &r2]).unwrap()).await.status, StatusCode::OK);
    clock.advance(1000);
    let item = listed(&b, &base, &new).await;
    assert_eq!(item["trusted"], false, "{item}");
    assert!(item["reasons"].to_string().contains("may not sign for repository"), "{item}");

    // 3. v4 scopes `ci` back, for one more minute: counted, warm, until the clock passes it.
    let mut v4 = root(4, &[&r1, &r2, &r3], 2, &ci_new, &[&ci_old]);
    v4.signers[0].not_after = airlock_core::ports::Clock::now(&clock).plus_millis(60_000);
    assert_eq!(put_root(&a, sign_root(&v4, &[&r1, &r2]).unwrap()).await.status, StatusCode::OK);
    clock.advance(1000);
    let item = warm(new.clone()).await;
    assert_eq!(item["trusted"], true, "{item}");
    clock.advance(120_000);
    let item = listed(&b, &base, &new).await;
    assert_eq!(item["trusted"], false, "{item}");
    assert!(item["reasons"].to_string().contains("signer `ci` expired at"), "{item}");
}

/// The attestation `referrer` as the policy input for staging lists it.
async fn listed(app: &TestApp, base: &str, referrer: &str) -> serde_json::Value {
    let input = app.get(&format!("{base}/policy-input?to=staging")).await;
    assert_eq!(input.status, StatusCode::OK, "{:?}", input.body);
    let input = input.json();
    input["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["referrer"] == referrer)
        .cloned()
        .unwrap_or_else(|| panic!("`{referrer}` not listed: {input}"))
}
