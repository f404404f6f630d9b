//! Every class of bad input gets a clear 4xx: names, digests, tags, gated stages, limits.

use std::time::Duration;

use airlock_test_support::TestApp;
use airlock_test_support::oci::{Image, OCI_MANIFEST, digest};
use bytes::Bytes;
use http::{Method, StatusCode};

#[tokio::test]
async fn writes_to_gated_stages_are_denied() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"a")]);
    app.push_image("dev/a", &image, "v1").await;
    let d = image.digest();
    let b = digest(&image.config);
    for stage in ["staging", "prod"] {
        let attempts = [
            (Method::POST, format!("/v2/{stage}/a/blobs/uploads/"), Bytes::new()),
            (Method::POST, format!("/v2/{stage}/a/blobs/uploads/?digest={b}"), image.config.clone()),
            (Method::POST, format!("/v2/{stage}/a/blobs/uploads/?mount={b}&from=dev/a"), Bytes::new()),
            (Method::PUT, format!("/v2/{stage}/a/manifests/v1"), image.manifest.clone()),
            (Method::DELETE, format!("/v2/{stage}/a/manifests/v1"), Bytes::new()),
            (Method::DELETE, format!("/v2/{stage}/a/manifests/{d}"), Bytes::new()),
            (Method::DELETE, format!("/v2/{stage}/a/blobs/{b}"), Bytes::new()),
            (Method::PATCH, format!("/v2/{stage}/a/blobs/uploads/0123456789abcdef0123"), Bytes::new()),
        ];
        // `/token` never grants a write in a gated stage, so the token check refuses first.
        for (method, uri, body) in attempts.clone() {
            let reply = app.send(method.clone(), &uri, &[("content-type", OCI_MANIFEST)], body).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {uri}");
            assert_eq!(reply.error_code(), "DENIED", "{method} {uri}");
            assert!(reply.header("www-authenticate").contains("error=\"insufficient_scope\""), "{method} {uri}");
        }
        // A token claiming the write (what a stolen signing key could forge) is refused too:
        // every request is decided again against the roles in force, and no role writes here.
        let name = format!("{stage}/a");
        let forged =
            format!("Bearer {}", app.forge_token(&[(&name, &["pull", "push", "delete"]), ("dev/a", &["pull"])]).await);
        for (method, uri, body) in attempts {
            let reply = app
                .send(method.clone(), &uri, &[("content-type", OCI_MANIFEST), ("authorization", &forged)], body)
                .await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {uri}");
            assert_eq!(reply.error_code(), "DENIED", "{method} {uri}");
            assert!(reply.header("www-authenticate").contains("error=\"insufficient_scope\""), "{method} {uri}");
        }
        // Nothing leaked into the gated stage.
        assert_eq!(app.get(&format!("/v2/{stage}/a/blobs/{b}")).await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let app = TestApp::new("").await;
    let long = format!("dev/{}", "a".repeat(300));
    for name in
        ["dev/../prod/a", "dev/%2e%2e/a", "dev/%2E%2E/a", "dev//a", "dev/A", "dev/a_", "dev/.a", long.as_str(), "dev"]
    {
        let reply = app.get(&format!("/v2/{name}/tags/list")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(reply.error_code(), "NAME_INVALID", "{name}");
    }
    let reply = app.get("/v2/qa/a/tags/list").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = reply.json()["errors"][0]["message"].as_str().unwrap().to_owned();
    assert_eq!(message, "stage `qa` is not configured; repository names start with one of: `dev`, `staging`, `prod`");
}

#[tokio::test]
async fn bad_digests_are_refused() {
    let app = TestApp::new("").await;
    for d in [
        "sha256:abc",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "md5:abc",
        "sha256",
        "sha256:%00",
    ] {
        let reply = app.get(&format!("/v2/dev/a/blobs/{d}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{d}");
        assert_eq!(reply.error_code(), "DIGEST_INVALID", "{d}");
    }
    let reply = app.send(Method::POST, "/v2/dev/a/blobs/uploads/?digest=sha256:nope", &[], b"x".to_vec()).await;
    assert_eq!(reply.error_code(), "DIGEST_INVALID");
    let reply = app.get("/v2/dev/a/referrers/sha256:nope").await;
    assert_eq!(reply.error_code(), "DIGEST_INVALID");
    let reply = app.get("/v2/dev/a/manifests/sha256:nope").await;
    assert_eq!(reply.error_code(), "DIGEST_INVALID");
}

#[tokio::test]
async fn closing_an_upload_needs_a_digest() {
    let app = TestApp::new("").await;
    let start = app.send(Method::POST, "/v2/dev/a/blobs/uploads/", &[], Bytes::new()).await;
    let reply = app.send(Method::PUT, start.header("location"), &[], b"x".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "DIGEST_INVALID");
}

#[tokio::test]
async fn unknown_blobs_and_manifests() {
    let app = TestApp::new("").await;
    let d = digest(b"never pushed");
    let blob = app.get(&format!("/v2/dev/a/blobs/{d}")).await;
    assert_eq!((blob.status, blob.error_code().as_str()), (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"));
    let manifest = app.get(&format!("/v2/dev/a/manifests/{d}")).await;
    assert_eq!((manifest.status, manifest.error_code().as_str()), (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"));
    let tag = app.get("/v2/dev/a/manifests/latest").await;
    assert_eq!((tag.status, tag.error_code().as_str()), (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"));
    let upload = app.get("/v2/dev/a/blobs/uploads/0123456789abcdef0123").await;
    assert_eq!((upload.status, upload.error_code().as_str()), (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"));
}

#[tokio::test]
async fn invalid_tags_are_refused() {
    let app = TestApp::new("").await;
    let long = "a".repeat(129);
    for tag in ["-x", ".x", long.as_str(), "a%20b", "a@b"] {
        let reply =
            app.send(Method::PUT, &format!("/v2/dev/a/manifests/{tag}"), &[("content-type", OCI_MANIFEST)], "{}").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{tag}");
        assert_eq!(reply.error_code(), "MANIFEST_INVALID", "{tag}: the OCI spec has no tag code");
    }
}

#[tokio::test]
async fn unknown_endpoints_and_methods() {
    let app = TestApp::new("").await;
    let reply = app.get("/v2/dev/a/whatever").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = app.send(Method::POST, "/v2/dev/a/tags/list", &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error_code(), "UNSUPPORTED");
    let reply = app.get("/nothing-here").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn open_uploads_per_client_are_capped() {
    let app = TestApp::new("[limits]\nuploads_per_client = 2\n").await;
    for _ in 0..2 {
        let reply = app.send(Method::POST, "/v2/dev/a/blobs/uploads/", &[], Bytes::new()).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    let reply = app.send(Method::POST, "/v2/dev/a/blobs/uploads/", &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.error_code(), "TOOMANYREQUESTS");
}

/// A body that sends `first`, then one byte every `every`, forever.
fn drip(first: &'static [u8], every: Duration) -> axum::body::Body {
    let stream = futures::stream::unfold(true, move |start| async move {
        if start {
            return Some((Ok::<_, std::io::Error>(Bytes::from_static(first)), false));
        }
        tokio::time::sleep(every).await;
        Some((Ok(Bytes::from_static(b"x")), false))
    });
    axum::body::Body::from_stream(stream)
}

async fn start_upload(app: &TestApp) -> String {
    app.send(Method::POST, "/v2/dev/a/blobs/uploads/", &[], Bytes::new()).await.header("location").to_owned()
}

#[tokio::test]
async fn a_stalled_body_is_cut_off() {
    let app = TestApp::new("[limits]\nbody_idle_timeout_secs = 1\n").await;
    let location = start_upload(&app).await;
    let request = http::Request::builder()
        .method(Method::PATCH)
        .uri(&location)
        .body(drip(b"abc", Duration::from_secs(3600)))
        .unwrap();
    let reply = app.send_request(request).await;
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(reply.error_code(), "BLOB_UPLOAD_INVALID");
    // The partial chunk was rolled back; the session is still usable from zero.
    let status = app.get(&location).await;
    assert_eq!(status.header("range"), "0-0");
}

#[tokio::test]
async fn a_dripping_body_is_cut_off() {
    let app = TestApp::new("[limits]\nbody_rate_grace_secs = 1\nbody_min_bytes_per_sec = 1000\n").await;
    let location = start_upload(&app).await;
    let request = http::Request::builder()
        .method(Method::PATCH)
        .uri(&location)
        .body(drip(b"", Duration::from_millis(100)))
        .unwrap();
    let started = std::time::Instant::now();
    let reply = app.send_request(request).await;
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT);
    assert!(reply.json()["errors"][0]["message"].as_str().unwrap().contains("slower than 1000 bytes/s"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Behind the token and Cedar checks, the registry itself refuses gated writes and logs them:
/// the last line if both layers above were ever wrong.
#[tokio::test]
async fn the_registry_refuses_gated_writes_on_its_own() {
    let app = TestApp::new("").await;
    let registry = &app.app.state.registry;
    let prod = airlock_model::RepoName::parse("prod/a").unwrap();
    let refused = registry
        .ensure_pushable(
            &airlock_core::audit::Actor::system(),
            &prod,
            "blob.upload",
            airlock_core::audit::Subject::default(),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("only by promotion"), "{refused}");
    let dev = airlock_model::RepoName::parse("dev/a").unwrap();
    registry
        .ensure_pushable(
            &airlock_core::audit::Actor::system(),
            &dev,
            "blob.upload",
            airlock_core::audit::Subject::default(),
        )
        .await
        .unwrap();
    app.app.state.log.checkpoint().await.unwrap();
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    let denied: Vec<&serde_json::Value> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] == "registry.write.denied")
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["event"]["details"]["action"], "blob.upload");
}

/// The fourteen codes of the OCI distribution spec ("Error Codes"); clients key on them.
const OCI_CODES: [&str; 14] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

/// Before, `/v2` answered `NOT_FOUND`, `RANGE_INVALID` and `PAGINATION_NUMBER_INVALID` (and
/// `INTERNAL`, `UNAVAILABLE` on 5xx), which no OCI client knows.
#[tokio::test]
async fn v2_error_codes_are_only_the_oci_specs() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"a")]);
    app.push_image("dev/a", &image, "v1").await;
    let blob = digest(&image.config);
    let missing = digest(b"never pushed");
    type Attempt<'a> = (Method, String, Vec<(&'a str, &'a str)>, Bytes);
    let attempts: Vec<Attempt> = vec![
        (Method::GET, "/v2/dev/a/whatever".to_owned(), vec![], Bytes::new()),
        (Method::GET, "/v2/dev/a/tags/list?n=abc".to_owned(), vec![], Bytes::new()),
        (Method::GET, "/v2/_catalog?n=-1".to_owned(), vec![], Bytes::new()),
        (Method::GET, format!("/v2/dev/a/blobs/{blob}"), vec![("range", "bytes=1000-2000")], Bytes::new()),
        (Method::GET, format!("/v2/dev/a/blobs/{missing}"), vec![], Bytes::new()),
        (Method::GET, "/v2/dev/a/manifests/nope".to_owned(), vec![], Bytes::new()),
        (Method::GET, "/v2/dev/nothing/tags/list".to_owned(), vec![], Bytes::new()),
        (Method::GET, "/v2/Bad..Name/tags/list".to_owned(), vec![], Bytes::new()),
        (Method::GET, "/v2/dev/a/blobs/sha256:zz".to_owned(), vec![], Bytes::new()),
        (Method::PATCH, "/v2/dev/a/blobs/uploads/0123456789abcdef0123".to_owned(), vec![], Bytes::from_static(b"x")),
        (Method::POST, "/v2/dev/a/tags/list".to_owned(), vec![], Bytes::new()),
        (
            Method::PUT,
            "/v2/dev/a/manifests/v2".to_owned(),
            vec![("content-type", OCI_MANIFEST)],
            Bytes::from_static(b"{"),
        ),
        (
            Method::PUT,
            "/v2/prod/a/manifests/v1".to_owned(),
            vec![("content-type", OCI_MANIFEST)],
            image.manifest.clone(),
        ),
        (Method::POST, format!("/v2/dev/a/blobs/uploads/?digest={missing}"), vec![], Bytes::from_static(b"other")),
    ];
    for (method, uri, headers, body) in attempts {
        let reply = app.send(method.clone(), &uri, &headers, body).await;
        assert!(reply.status.is_client_error(), "{method} {uri}: {}", reply.status);
        let code = reply.error_code();
        assert!(OCI_CODES.contains(&code.as_str()), "{method} {uri} answered `{code}`, not an OCI spec code");
    }
}
