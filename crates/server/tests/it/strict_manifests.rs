//! Manifests with one reading only (the CVE-2021-41190 pattern): bodies that a client could read
//! as another kind, descriptors whose size is not the content's, and indexes nested without end
//! are refused at push, and deep nesting is refused at promotion too.

use airlock_test_support::oci::{Image, OCI_INDEX, OCI_MANIFEST, digest, index};
use airlock_test_support::{Reply, TESTER, TestApp, basic, test_config};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

async fn put(app: &TestApp, repo: &str, reference: &str, content_type: &str, body: &Value) -> Reply {
    let body = Bytes::from(serde_json::to_vec(body).unwrap());
    app.send(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"), &[("content-type", content_type)], body).await
}

fn refused(reply: &Reply, code: &str, needle: &str) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(reply.error_code(), code, "{:?}", reply.body);
    let message = reply.json()["errors"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains(needle), "{message}");
}

async fn pushed_image(app: &TestApp, repo: &str, name: &str) -> (Image, Value) {
    let image = Image::new(&[(name, name.as_bytes())]);
    for blob in image.blobs() {
        app.push_blob(repo, blob).await;
    }
    let manifest: Value = serde_json::from_slice(&image.manifest).unwrap();
    (image, manifest)
}

fn child(body: &[u8], media_type: &str) -> Value {
    json!({"mediaType": media_type, "digest": digest(body), "size": body.len()})
}

#[tokio::test]
async fn ambiguous_manifest_is_refused() {
    let app = TestApp::new("").await;
    let (image, manifest) = pushed_image(&app, "dev/a", "a").await;
    assert_eq!(app.push_image("dev/a", &image, "base").await.status, StatusCode::CREATED);
    let entry = child(&image.manifest, OCI_MANIFEST);

    // An image manifest that also lists manifests: a client deciding by field presence sees an
    // index of other images.
    let mut image_with_manifests = manifest.clone();
    image_with_manifests["manifests"] = json!([entry]);
    let reply = put(&app, "dev/a", "x1", OCI_MANIFEST, &image_with_manifests).await;
    refused(&reply, "MANIFEST_INVALID", "image manifest also has `manifests`");

    // An index that also has layers, or a config.
    let base = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]});
    let mut with_layers = base.clone();
    with_layers["layers"] = manifest["layers"].clone();
    refused(&put(&app, "dev/a", "x2", OCI_INDEX, &with_layers).await, "MANIFEST_INVALID", "index also has `layers`");
    let mut with_config = base.clone();
    with_config["config"] = manifest["config"].clone();
    refused(&put(&app, "dev/a", "x3", OCI_INDEX, &with_config).await, "MANIFEST_INVALID", "index also has `config`");

    // No `mediaType` and the fields of both kinds.
    let mut ambiguous = image_with_manifests.clone();
    ambiguous.as_object_mut().unwrap().remove("mediaType");
    refused(&put(&app, "dev/a", "x4", OCI_MANIFEST, &ambiguous).await, "MANIFEST_INVALID", "kind is ambiguous");

    // A `mediaType` that disagrees with the `Content-Type`.
    let reply = put(&app, "dev/a", "x5", OCI_INDEX, &manifest).await;
    refused(&reply, "MANIFEST_INVALID", "make them agree");

    // An index whose descriptor calls an image manifest an index.
    let liar = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child(&image.manifest, OCI_INDEX)]});
    refused(&put(&app, "dev/a", "x6", OCI_INDEX, &liar).await, "MANIFEST_INVALID", "write the media type");

    // Nothing was stored under any of those tags.
    for tag in ["x1", "x2", "x3", "x4", "x5", "x6"] {
        assert_eq!(app.get(&format!("/v2/dev/a/manifests/{tag}")).await.status, StatusCode::NOT_FOUND, "{tag}");
    }

    // Real clients (skopeo, podman, Python oras) push without `mediaType` when the header says
    // what the body is; with one reading, that keeps working.
    let mut plain = manifest.clone();
    plain.as_object_mut().unwrap().remove("mediaType");
    assert_eq!(put(&app, "dev/a", "plain", OCI_MANIFEST, &plain).await.status, StatusCode::CREATED);
    let mut plain_index = base.clone();
    plain_index.as_object_mut().unwrap().remove("mediaType");
    assert_eq!(put(&app, "dev/a", "plain-index", OCI_INDEX, &plain_index).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn descriptor_size_must_match_the_blob() {
    let app = TestApp::new("").await;
    let (image, manifest) = pushed_image(&app, "dev/a", "a").await;

    let mut layer = manifest.clone();
    let real = image.layers[0].len() as u64;
    layer["layers"][0]["size"] = json!(real + 1);
    let reply = put(&app, "dev/a", "layer", OCI_MANIFEST, &layer).await;
    refused(&reply, "SIZE_INVALID", &format!("is {} bytes but it is {real}", real + 1));

    let mut config = manifest.clone();
    config["config"]["size"] = json!(1);
    refused(&put(&app, "dev/a", "config", OCI_MANIFEST, &config).await, "SIZE_INVALID", "manifest field `config`");

    // An index child's size is its manifest's length.
    assert_eq!(app.push_image("dev/a", &image, "v1").await.status, StatusCode::CREATED);
    let mut entry = child(&image.manifest, OCI_MANIFEST);
    entry["size"] = json!(7);
    let lying = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]});
    refused(&put(&app, "dev/a", "index", OCI_INDEX, &lying).await, "SIZE_INVALID", "manifest field `manifests`");

    // The truth is accepted.
    let body = index(&[&image]);
    let reply = app.send(Method::PUT, "/v2/dev/a/manifests/index", &[("content-type", OCI_INDEX)], body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
}

/// Pushes a chain of `levels` indexes over `image`, each holding the one before; returns the
/// outermost index's digest, or the refusal of the first that was not stored.
async fn push_chain(app: &TestApp, repo: &str, image: &Image, levels: usize) -> Result<String, Reply> {
    let mut below = (image.manifest.clone(), OCI_MANIFEST);
    for level in 1..=levels {
        let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child(&below.0, below.1)]});
        let reply = put(app, repo, &format!("level-{level}"), OCI_INDEX, &body).await;
        if reply.status != StatusCode::CREATED {
            return Err(reply);
        }
        below = (Bytes::from(serde_json::to_vec(&body).unwrap()), OCI_INDEX);
    }
    Ok(digest(&below.0))
}

#[tokio::test]
async fn index_nesting_is_bounded() {
    let app = TestApp::new("").await;
    let (image, _) = pushed_image(&app, "dev/a", "a").await;
    assert_eq!(app.push_image("dev/a", &image, "v1").await.status, StatusCode::CREATED);
    // Eight levels are accepted; the ninth is refused, naming the config key.
    let refusal = push_chain(&app, "dev/a", &image, 9).await.unwrap_err();
    refused(&refusal, "MANIFEST_INVALID", "indexes nest more than 8 deep (config key `limits.max_index_depth`)");
    assert_eq!(app.get("/v2/dev/a/manifests/level-8").await.status, StatusCode::OK);
    assert_eq!(app.get("/v2/dev/a/manifests/level-9").await.status, StatusCode::NOT_FOUND);

    // The limit is a config key, and an index reached twice is walked once.
    let small = TestApp::new("[limits]\nmax_index_depth = 2\n").await;
    let (image, _) = pushed_image(&small, "dev/a", "a").await;
    assert_eq!(small.push_image("dev/a", &image, "v1").await.status, StatusCode::CREATED);
    let refusal = push_chain(&small, "dev/a", &image, 3).await.unwrap_err();
    refused(&refusal, "MANIFEST_INVALID", "more than 2 deep");
    let level_1 = small.get("/v2/dev/a/manifests/level-1").await.body;
    let level_2 = small.get("/v2/dev/a/manifests/level-2").await.body;
    let wide = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        child(&level_1, OCI_INDEX), child(&level_2, OCI_INDEX), child(&level_1, OCI_INDEX)
    ]});
    refused(&put(&small, "dev/a", "wide", OCI_INDEX, &wide).await, "MANIFEST_INVALID", "more than 2 deep");
    let flat = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        child(&image.manifest, OCI_MANIFEST), child(&level_1, OCI_INDEX)
    ]});
    assert_eq!(put(&small, "dev/a", "flat", OCI_INDEX, &flat).await.status, StatusCode::CREATED);
}

/// Stages `dev` (pushable) and `staging` gated by a policy that denies critical CVEs; the
/// policy's directory lives as long as the first value.
fn dev_and_staging() -> (tempfile::TempDir, String) {
    let policy = tempfile::tempdir().unwrap();
    std::fs::write(policy.path().join("policy.rego"), airlock_test_support::promotion::DENY_CRITICAL_POLICY).unwrap();
    let stages = format!(
        "[policy]\nbundle = \"{}\"\n[[stages]]\nname = \"dev\"\npushable = true\n[[stages]]\nname = \"staging\"\n",
        policy.path().display()
    );
    (policy, stages)
}

/// An API token of the `tester` service account.
async fn tester_token(app: &TestApp) -> String {
    let login = http::Request::post("/api/v1/auth/token")
        .header("authorization", basic(TESTER, &app.tester_key))
        .body(axum::body::Body::empty())
        .unwrap();
    app.send_anonymous(login).await.json()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn index_nesting_is_bounded_at_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let (_policy, stages) = dev_and_staging();
    // Pushed under a limit of 3, three levels deep.
    let mut config = test_config(dir.path(), &format!("{stages}[limits]\nmax_index_depth = 3\n"));
    let app = TestApp::with_config(config.clone()).await;
    let (image, _) = pushed_image(&app, "dev/a", "a").await;
    assert_eq!(app.push_image("dev/a", &image, "v1").await.status, StatusCode::CREATED);
    let top = push_chain(&app, "dev/a", &image, 3).await.unwrap();
    app.app.close().await;
    drop(app);

    // The limit is lowered to 2: the chain stored earlier may not be promoted.
    config.limits.max_index_depth = 2;
    let app = TestApp::with_config(config).await;
    let bearer = format!("Bearer {}", tester_token(&app).await);
    let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    let promote = |reference: String| {
        let body = json!({"repository": "dev/a", "reference": reference, "to": "staging", "reason": "release"});
        app.send(Method::POST, "/api/v1/promotions", &headers, body.to_string())
    };
    let reply = promote(top.clone()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "MANIFEST_INVALID", "{:?}", reply.body);
    assert!(reply.error_message().contains("more than 2 deep"), "{}", reply.error_message());
    assert_eq!(app.get(&format!("/v2/staging/a/manifests/{top}")).await.status, StatusCode::NOT_FOUND);

    // Two levels still travel.
    let level_2 = app.get("/v2/dev/a/manifests/level-2").await.header("docker-content-digest").to_owned();
    let reply = promote(level_2.clone()).await;
    assert_eq!(reply.json()["status"], "promoted", "{:?}", reply.body);
    assert_eq!(app.get(&format!("/v2/staging/a/manifests/{level_2}")).await.status, StatusCode::OK);
}

/// Writes `body` straight into the store, as a server before the strict checks accepted it.
async fn store_as_before(
    app: &TestApp,
    body: &Value,
    image: &Image,
    subject: Option<&str>,
    tag: Option<&str>,
) -> String {
    use airlock_core::ports::{NewManifest, TagMode};
    use airlock_model::{Digest, RepoName, Tag};
    let body = Bytes::from(serde_json::to_vec(body).unwrap());
    let stored = Digest::parse(&digest(&body)).unwrap();
    let record = NewManifest {
        digest: stored.clone(),
        media_type: OCI_MANIFEST.to_owned(),
        body,
        artifact_type: None,
        subject: subject.map(|s| Digest::parse(s).unwrap()),
        annotations_json: "{}".to_owned(),
        required_blobs: image.blobs().map(|b| Digest::parse(&digest(b)).unwrap()).collect(),
        required_manifests: vec![Digest::parse(&image.digest()).unwrap()],
        attestation: None,
    };
    let tag = tag.map(|t| Tag::parse(t).unwrap());
    let now = app.app.clock.now();
    let repo = RepoName::parse("dev/a").unwrap();
    let tag = tag.as_ref().map(|t| (t, TagMode::Mutable));
    app.app.store.put_manifest(&repo, &record, tag, &airlock_server::Actor::system(), now).await.unwrap();
    stored.to_string()
}

/// Issue 17: a manifest stored before the strict checks (here an image manifest that also lists
/// `manifests`, as an older server accepted it) made its promotion fail with a 500 that said
/// nothing. It is refused with 400 `MANIFEST_INVALID` naming the manifest, nothing reaches the
/// target, and the promotion is closed as denied. Such a manifest stored as a referrer of a good
/// artifact stays behind when the artifact is promoted (it was linked without its blobs).
#[tokio::test]
async fn an_ambiguous_manifest_stored_earlier_is_refused_at_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let (_policy, stages) = dev_and_staging();
    let app = TestApp::with_config(test_config(dir.path(), &stages)).await;
    let (image, manifest) = pushed_image(&app, "dev/a", "a").await;
    assert_eq!(app.push_image("dev/a", &image, "v1").await.status, StatusCode::CREATED);
    let mut ambiguous = manifest.clone();
    ambiguous["manifests"] = json!([child(&image.manifest, OCI_MANIFEST)]);
    let stored = store_as_before(&app, &ambiguous, &image, None, Some("old")).await;
    let mut referrer = ambiguous.clone();
    referrer["subject"] = child(&image.manifest, OCI_MANIFEST);
    let referrer = store_as_before(&app, &referrer, &image, Some(&image.digest()), None).await;

    let bearer = format!("Bearer {}", tester_token(&app).await);
    let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    let promote = |reference: &str| {
        let body = json!({"repository": "dev/a", "reference": reference, "to": "staging", "reason": "release"});
        app.send(Method::POST, "/api/v1/promotions", &headers, body.to_string())
    };
    let reply = promote("old").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "MANIFEST_INVALID", "{:?}", reply.body);
    let message = reply.error_message();
    assert!(
        message.contains(&format!("stored manifest `{stored}` fails today's manifest checks"))
            && message.contains("image manifest also has `manifests`"),
        "{message}"
    );
    assert_eq!(app.get(&format!("/v2/staging/a/manifests/{stored}")).await.status, StatusCode::NOT_FOUND);
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    let denied = entries["entries"].as_array().unwrap().iter().any(|e| {
        e["event"]["type"] == "promotion.deny"
            && e["event"]["outcome"].to_string().contains("fails today's manifest checks")
    });
    assert!(denied, "the promotion is closed as denied, saying why: {entries}");

    let reply = promote("v1").await;
    assert_eq!(reply.json()["status"], "promoted", "{:?}", reply.body);
    assert_eq!(app.get(&format!("/v2/staging/a/manifests/{}", image.digest())).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/v2/staging/a/manifests/{referrer}")).await.status, StatusCode::NOT_FOUND);
}
