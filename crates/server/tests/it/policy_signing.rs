//! Policy is code under signature (issue 17): a stage's bundle loads only when a threshold of the
//! trust root's policy signers signed its manifest; otherwise the stage denies everything and
//! says why. Every load and every change of trust is logged, and the logged config digest covers
//! what the bundles hold.

use std::collections::BTreeMap;
use std::path::Path;

use airlock_dsse::{Algorithm, PrivateKey};
use airlock_model::Timestamp;
use airlock_test_support::oci::Image;
use airlock_test_support::promotion as support;
use airlock_test_support::{Reply, TestApp, basic};
use airlock_trust::{Pattern, PolicyRole, RepoPattern, Root, SignerRule, sign_root};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const DAY: u64 = 86_400_000;
const REPO: &str = "dev/payments/api";

fn key() -> PrivateKey {
    PrivateKey::generate(Algorithm::Ed25519).unwrap()
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    Timestamp::from_millis(i64::try_from(ms).unwrap())
}

/// The keys of one test: the root key, CI's, and the policy signers.
struct Keys {
    root: PrivateKey,
    ci: PrivateKey,
    policy: Vec<PrivateKey>,
}

impl Keys {
    fn new(policy: usize) -> Keys {
        Keys { root: key(), ci: key(), policy: (0..policy).map(|_| key()).collect() }
    }

    /// Root `version`: `ci` signs everything everywhere; the policy role holds every policy key
    /// with `threshold`, or is absent when `threshold` is 0.
    fn root(&self, version: u64, threshold: u32) -> Vec<u8> {
        let mut keys = BTreeMap::new();
        for k in [&self.root, &self.ci].into_iter().chain(&self.policy) {
            keys.insert(k.public_key().keyid().clone(), k.public_key().clone());
        }
        let root = Root {
            version,
            expires: now().plus_millis(365 * DAY),
            keys,
            root_keyids: vec![self.root.public_key().keyid().clone()],
            root_threshold: 1,
            signers: vec![SignerRule {
                name: "ci".to_owned(),
                keyids: vec![self.ci.public_key().keyid().clone()],
                predicate_types: vec![Pattern::parse("https://**").unwrap()],
                repositories: vec![RepoPattern::parse("**").unwrap()],
                not_before: now(),
                not_after: now().plus_millis(300 * DAY),
            }],
            thresholds: Vec::new(),
            revoked: Vec::new(),
            policy: (threshold > 0).then(|| PolicyRole {
                keyids: self.policy.iter().map(|k| k.public_key().keyid().clone()).collect(),
                threshold,
            }),
        };
        sign_root(&root, &[&self.root]).unwrap()
    }
}

/// A bundle directory holding the deny-critical policy.
fn write_bundle(dir: &Path) {
    std::fs::write(dir.join("policy.rego"), support::DENY_CRITICAL_POLICY).unwrap();
}

/// Adds `key`'s signature to the bundle's `bundle.sig`, as `airlock policy sign` does.
fn sign(dir: &Path, key: &PrivateKey) {
    let bundle = airlock_policy::Bundle::load_dir(dir).unwrap();
    let signed = airlock_policy::sign_bundle(&bundle, bundle.signature(), key).unwrap();
    std::fs::write(dir.join(airlock_policy::SIGNATURE_FILE), signed).unwrap();
}

/// A config whose stages use the bundle at `bundle` (as `policy.bundle`), with the trust root
/// file `root` when given.
fn config(bundle: &Path, root: Option<&Path>) -> String {
    let trust = root.map_or_else(String::new, |r| format!("[trust]\nroot = \"{}\"\n", r.display()));
    format!(
        "{trust}[policy]\nbundle = \"{}\"\n\n[[stages]]\nname = \"dev\"\npushable = true\n\n[[stages]]\nname = \"staging\"\n",
        bundle.display()
    )
}

/// Pushes an image with provenance and asks to promote it to staging, as `tester`.
async fn promote(app: &TestApp, keys: &Keys, tag: &str) -> Reply {
    let image = Image::new(&[("app", tag.as_bytes())]);
    app.push_image(REPO, &image, tag).await;
    support::attest(app, REPO, &image, support::PROVENANCE, &support::provenance(&image, "dana"), &keys.ci).await;
    let basic = basic(airlock_test_support::TESTER, &app.tester_key);
    let token = app.send(Method::POST, "/api/v1/auth/token", &[("authorization", &basic)], "").await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {token}");
    let body = json!({"repository": REPO, "reference": image.digest(), "to": "staging", "tag": tag, "reason": "r"});
    app.send(
        Method::POST,
        "/api/v1/promotions",
        &[("authorization", &bearer), ("content-type", "application/json")],
        body.to_string(),
    )
    .await
}

/// The promotion's findings of rule `rule`.
fn finding(reply: &Reply, rule: &str) -> Option<Value> {
    reply.json()["report"]["findings"].as_array()?.iter().find(|f| f["rule"] == rule).cloned()
}

async fn events(app: &TestApp, kind: &str) -> Vec<Value> {
    app.app.state.log.checkpoint().await.unwrap();
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    entries["entries"].as_array().unwrap().iter().map(|e| e["event"].clone()).filter(|e| e["type"] == kind).collect()
}

async fn readyz(app: &TestApp) -> String {
    String::from_utf8_lossy(&app.get("/readyz").await.body).into_owned()
}

/// The attack: a root names policy signers, yet the bundle on disk is unsigned code that
/// anyone with write access to the directory wrote.
#[tokio::test]
async fn unsigned_bundle_is_refused_when_root_names_policy_signers() {
    let keys = Keys::new(1);
    let bundle = tempfile::tempdir().unwrap();
    write_bundle(bundle.path());
    let app = TestApp::new(&config(bundle.path(), None)).await;
    // No root yet: the unsigned bundle loads, with a warning.
    assert!(readyz(&app).await.contains("is unsigned and loads only because the trust root names no policy signers"));
    let loads = events(&app, "policy.bundle.load").await;
    assert!(loads.iter().any(|e| e["details"]["trust"] == "unsigned"), "{loads:?}");

    // A root naming a policy signer: the unsigned bundle is no longer trusted, at once.
    assert_eq!(app.put_root(keys.root(1, 1)).await.status, StatusCode::OK);
    let loads = events(&app, "policy.bundle.load").await;
    let refused = loads.last().unwrap();
    assert_eq!(refused["details"]["trust"], "refused", "{refused}");
    assert_eq!(refused["actor"], airlock_test_support::KEY_ADMIN);
    assert_eq!(refused["details"]["stages"], json!(["staging"]));
    assert!(readyz(&app).await.contains("is not trusted"), "{}", readyz(&app).await);

    let denied = promote(&app, &keys, "1.0").await;
    assert_eq!(denied.json()["status"], "denied", "{:?}", denied.body);
    let f = finding(&denied, "policy-untrusted").unwrap_or_else(|| panic!("{}", denied.json()));
    assert!(f["message"].as_str().unwrap().contains("unsigned"), "{f}");
    assert!(f["remediation"].as_str().unwrap().contains("airlock policy sign"), "{f}");
    // The dry run refuses too.
    let image = Image::new(&[("app", b"1.0")]);
    let dry = app
        .send(Method::POST, &format!("/api/v1/artifacts/{REPO}/{}/evaluate?to=staging", image.digest()), &[], "")
        .await;
    assert_eq!(dry.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", dry.body);
    assert_eq!(dry.json()["error"]["code"], "POLICY_UNTRUSTED");

    // Signed by the policy signer, it loads at the next start and the stage decides again.
    sign(bundle.path(), &keys.policy[0]);
    app.app.close().await;
    let again = TestApp::with_config(app.app.config.clone()).await;
    let allowed = promote(&again, &keys, "2.0").await;
    assert!(finding(&allowed, "policy-untrusted").is_none(), "{}", allowed.json());
    assert_eq!(allowed.json()["status"], "promoted", "{}", allowed.json());
    let loads = events(&again, "policy.bundle.load").await;
    let signed = loads.last().unwrap();
    assert_eq!(signed["details"]["trust"], "signed", "{signed}");
    assert_eq!(signed["details"]["signers"], json!([keys.policy[0].public_key().keyid().as_str()]));
}

/// The attack: a signed bundle is edited on disk after signing (here a rule is weakened).
#[tokio::test]
async fn tampered_bundle_is_refused() {
    let keys = Keys::new(1);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    write_bundle(&bundle);
    sign(&bundle, &keys.policy[0]);
    std::fs::write(bundle.join("policy.rego"), "package airlock\n\ndeny := set()\n").unwrap();
    let root = dir.path().join("root.json");
    std::fs::write(&root, keys.root(1, 1)).unwrap();
    let app = TestApp::new(&config(&bundle, Some(&root))).await;
    let denied = promote(&app, &keys, "1.0").await;
    assert_eq!(denied.json()["status"], "denied", "{:?}", denied.body);
    let f = finding(&denied, "policy-untrusted").unwrap_or_else(|| panic!("{}", denied.json()));
    assert!(f["message"].as_str().unwrap().contains("file `policy.rego` changed"), "{f}");
    let loads = events(&app, "policy.bundle.load").await;
    assert_eq!(loads.last().unwrap()["outcome"]["decision"], "denied", "{loads:?}");
}

/// The attack: one policy signer (or one key signing twice) where the root asks for two.
#[tokio::test]
async fn bundle_under_threshold_is_refused() {
    let keys = Keys::new(3);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    write_bundle(&bundle);
    sign(&bundle, &keys.policy[0]);
    // A second signature by the same key, under another key id hint, is the same key.
    let file = bundle.join(airlock_policy::SIGNATURE_FILE);
    let mut envelope =
        airlock_dsse::Envelope::parse(&std::fs::read(&file).unwrap(), &airlock_dsse::EnvelopeLimits::default())
            .unwrap();
    let mut again = envelope.signatures[0].clone();
    again.keyid = Some(keys.policy[1].public_key().keyid().to_string());
    envelope.signatures.push(again);
    std::fs::write(&file, envelope.to_json()).unwrap();
    let root = dir.path().join("root.json");
    std::fs::write(&root, keys.root(1, 2)).unwrap();
    let app = TestApp::new(&config(&bundle, Some(&root))).await;
    let denied = promote(&app, &keys, "1.0").await;
    assert_eq!(denied.json()["status"], "denied", "{:?}", denied.body);
    let f = finding(&denied, "policy-untrusted").unwrap_or_else(|| panic!("{}", denied.json()));
    assert!(f["message"].as_str().unwrap().contains("signed by 1 distinct policy signer key(s)"), "{f}");
    assert!(f["message"].as_str().unwrap().contains("and needs 2"), "{f}");
}

/// The attack: a policy change needed one person and left no trace; `server.start`'s config
/// digest covered the bundle's path, not its content.
#[tokio::test]
async fn policy_change_changes_config_digest_and_is_logged() {
    let bundle = tempfile::tempdir().unwrap();
    write_bundle(bundle.path());
    let app = TestApp::new(&config(bundle.path(), None)).await;
    let first_start = events(&app, "server.start").await.last().unwrap().clone();
    let first_load = events(&app, "policy.bundle.load").await.last().unwrap().clone();
    let first_digest = airlock_policy::Bundle::load_dir(bundle.path()).unwrap().digest().to_string();
    assert_eq!(first_load["details"]["bundle_digest"], json!(first_digest));

    // Someone edits the bundle on disk and restarts.
    std::fs::write(bundle.path().join("policy.rego"), "package airlock\n\ndeny := set()\n").unwrap();
    app.app.close().await;
    let again = TestApp::with_config(app.app.config.clone()).await;
    let second_start = events(&again, "server.start").await.last().unwrap().clone();
    assert_ne!(
        first_start["details"]["config_digest"], second_start["details"]["config_digest"],
        "the config digest covers the bundle's content"
    );
    let second_digest = airlock_policy::Bundle::load_dir(bundle.path()).unwrap().digest().to_string();
    assert_ne!(first_digest, second_digest);
    let second_load = events(&again, "policy.bundle.load").await.last().unwrap().clone();
    assert_eq!(second_load["details"]["bundle_digest"], json!(second_digest), "{second_load}");
    assert_eq!(second_start["details"]["policy_bundles"]["default"], json!(second_digest));
}
