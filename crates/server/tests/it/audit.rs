//! Every event type the registry logs appears in the log through the public API, and each one
//! has an inclusion proof that verifies against a signed checkpoint.

use airlock_test_support::TestApp;
use airlock_test_support::oci::Image;
use airlock_tlog::{Checkpoint, Hash, Verifier, leaf_hash, verify_inclusion};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, StatusCode};

#[tokio::test]
async fn every_event_type_is_logged_with_a_verifying_inclusion_proof() {
    let app = TestApp::new("").await;
    let first = Image::new(&[("a", b"first")]);
    let second = Image::new(&[("a", b"second")]);
    app.push_image("dev/app", &first, "v1").await; // push + tag.create
    app.push_image("dev/app", &second, "v1").await; // push + tag.move
    let reply = app.send(Method::DELETE, "/v2/dev/app/manifests/v1", &[], Bytes::new()).await; // tag.delete
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let reply = app.send(Method::DELETE, &format!("/v2/dev/app/manifests/{}", first.digest()), &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED); // manifest.delete
    let layer = airlock_test_support::oci::digest(&first.layers[0]);
    let reply = app.send(Method::DELETE, &format!("/v2/dev/app/blobs/{layer}"), &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED); // blob.delete
    // A forged token claiming a write in `prod` gets past the token check; the registry refuses.
    let forged = format!("Bearer {}", app.forge_token(&[("prod/app", &["push"])]).await);
    let denied =
        app.send(Method::POST, "/v2/prod/app/blobs/uploads/", &[("authorization", &forged)], Bytes::new()).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN); // write.denied
    let denied_id = denied.header("x-request-id").to_owned();
    // Asking `/token` for a write in `prod` grants only the read.
    app.token(&["repository:prod/app:pull,push".to_owned()]).await; // access.denied
    let bad = http::Request::get("/token?scope=repository:dev/app:pull")
        .header("authorization", airlock_test_support::basic("tester", "alk_wrong"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send_anonymous(bad).await.status, StatusCode::UNAUTHORIZED); // login.failed
    let tester = airlock_model::PrincipalId::parse("tester").unwrap();
    app.app
        .state
        .callers
        .identity()
        .apply(
            &airlock_core::audit::Actor::system(),
            &tester,
            airlock_core::ports::PrincipalChange::GrantRole { role: "ci".to_owned() },
        )
        .await
        .unwrap(); // principal.change

    app.app.state.log.checkpoint().await.unwrap();
    let key = String::from_utf8(app.get("/api/v1/log/key").await.body.to_vec()).unwrap();
    let verifier = Verifier::parse(key.trim()).unwrap();
    let note = app.get("/api/v1/log/checkpoint").await;
    assert_eq!(note.header("content-type"), "text/plain; charset=utf-8");
    let checkpoint = Checkpoint::open(&note.body, &verifier).unwrap();
    assert_eq!(checkpoint.origin, "127.0.0.1:0/log");

    let entries = app.get(&format!("/api/v1/log/entries?start=0&end={}", checkpoint.size)).await.json();
    let entries = entries["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len() as u64, checkpoint.size);
    let kinds: Vec<&str> = entries.iter().map(|e| e["event"]["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "server.start",
            "policy.bundle.load",
            "access.principal.create",
            "access.principal.create",
            "registry.manifest.push",
            "registry.tag.create",
            "registry.manifest.push",
            "registry.tag.move",
            "registry.tag.delete",
            "registry.manifest.delete",
            "registry.blob.delete",
            "access.denied",
            "access.denied",
            "access.login.failed",
            "access.principal.change",
        ]
    );
    assert_eq!(entries[1]["event"]["details"]["trust"], "embedded", "the default library's load");
    assert_eq!(entries[2]["event"]["details"]["principal"], "admin", "the first start creates `admin`");
    assert_eq!(entries[3]["event"]["details"]["principal"], "tester");
    let denial = &entries[11]["event"];
    assert_eq!(denial["outcome"]["decision"], "denied");
    assert_eq!(denial["details"]["action"], "push");
    assert_eq!(denial["subject"]["repository"], "prod/app");
    assert_eq!(denial["request_id"], denied_id.as_str(), "the event carries the request id the client saw");
    assert!(denial["outcome"]["reasons"][0].as_str().unwrap().contains("do not allow `push` on `prod/app`"));
    assert!(entries[0]["event"]["details"]["config_digest"].as_str().unwrap().starts_with("sha256:"));

    for entry in &entries {
        let index = entry["index"].as_u64().unwrap();
        let leaf = STANDARD.decode(entry["leaf"].as_str().unwrap()).unwrap();
        let proof =
            app.get(&format!("/api/v1/log/proof/inclusion?index={index}&size={}", checkpoint.size)).await.json();
        let hashes: Vec<Hash> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
            .collect();
        verify_inclusion(&leaf_hash(&leaf), index, checkpoint.size, &hashes, &checkpoint.root)
            .unwrap_or_else(|e| panic!("entry {index}: {e}"));
    }
}

#[tokio::test]
async fn log_api_refuses_bad_parameters_clearly() {
    let app = TestApp::new("").await;
    for (uri, needle) in [
        ("/api/v1/log/proof/inclusion?index=5&size=2", "no inclusion proof for entry 5"),
        ("/api/v1/log/proof/inclusion", "`index` is required"),
        ("/api/v1/log/proof/inclusion?index=-1", "`index` must be a whole number"),
        ("/api/v1/log/proof/consistency?from=0&to=1", "no consistency proof from 0 to 1"),
        ("/api/v1/log/entries?start=99", "`start` 99 is past the end of the log"),
    ] {
        let reply = app.get(uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        let body = reply.json();
        assert_eq!(body["error"]["code"], "INVALID_PARAMETER", "{uri}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{uri}: {body}");
        assert!(body["error"]["remediation"].is_string(), "{uri}");
    }
}

#[tokio::test]
async fn entries_are_paged() {
    let app = TestApp::new("[log]\nentries_page_max = 2\n").await;
    let image = Image::new(&[("a", b"x")]);
    app.push_image("dev/app", &image, "v1").await;
    let page = app.get("/api/v1/log/entries?start=0").await.json();
    assert_eq!(page["size"], 6, "start, bundle load, admin, tester, push, tag");
    assert_eq!(page["entries"].as_array().unwrap().len(), 2, "capped at `log.entries_page_max`");
    let rest = app.get("/api/v1/log/entries?start=2").await.json();
    assert_eq!(rest["entries"][0]["index"], 2);
}

#[cfg(unix)]
#[tokio::test]
async fn the_log_key_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::new("").await;
    let key = app.app.config.data_dir.join("log/key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", key.display());
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("PRIVATE+KEY+127.0.0.1:0/log+"), "the key is named after the log origin");
}

/// The origin is stored at the first start; a config that would change it, or a log key named
/// otherwise, stops the next start with a message saying how to fix it.
#[tokio::test]
async fn a_changed_log_origin_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = airlock_test_support::test_config(dir.path(), "");
    let app = TestApp::with_config(config.clone()).await;
    let origin_file = config.data_dir.join("log/origin");
    assert_eq!(std::fs::read_to_string(&origin_file).unwrap().trim(), "127.0.0.1:0/log");
    app.app.close().await;
    drop(app);

    // Another bound address later: the stored origin stays.
    let mut moved = config.clone();
    moved.log.origin = "127.0.0.1:7/log".to_owned();
    let app = TestApp::with_config(moved).await;
    assert_eq!(app.app.config.log.origin, "127.0.0.1:0/log");
    app.app.close().await;
    drop(app);

    // A public URL that gives another origin.
    let renamed = airlock_test_support::test_config(dir.path(), "public_url = \"https://registry.example.com\"");
    let refused = airlock_server::App::open(renamed).await.unwrap_err().to_string();
    assert!(
        refused.starts_with("the log's origin is `127.0.0.1:0/log` (stored in `")
            && refused.contains("but `public_url` makes it `registry.example.com/log`")
            && refused.contains("docs/runbook.md"),
        "{refused}"
    );
    // Setting `log.origin` to the stored one keeps the log and lets the public URL change.
    let kept = airlock_test_support::test_config(
        dir.path(),
        "public_url = \"https://registry.example.com\"\n[log]\norigin = \"127.0.0.1:0/log\"",
    );
    let app = TestApp::with_config(kept).await;
    app.app.close().await;
    drop(app);

    // A log key from somewhere else.
    let key = config.data_dir.join("log/key");
    std::fs::remove_file(&key).unwrap();
    let stranger = airlock_tlog::Signer::from_seed("elsewhere.example/log", [9; 32]).unwrap();
    std::fs::write(&key, stranger.private_key()).unwrap();
    let refused = airlock_server::App::open(config).await.unwrap_err().to_string();
    assert!(
        refused.contains("is named `elsewhere.example/log` but the log's origin is `127.0.0.1:0/log`")
            && refused.contains("restore the log key of this data directory"),
        "{refused}"
    );
}
