//! Durability: sessions across restarts, idle expiry, the scrubber and quarantine.

use std::time::Duration;

use airlock_server::App;
use airlock_test_support::oci::{digest, pseudo_random};
use airlock_test_support::{TestApp, test_config};
use bytes::Bytes;
use http::{Method, StatusCode};

#[tokio::test]
async fn an_upload_session_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(200 * 1024, 3);
    let (first, rest) = data.split_at(50_000);
    let location = {
        let app = TestApp::with_config(test_config(dir.path(), "")).await;
        let start = app.send(Method::POST, "/v2/dev/a/blobs/uploads/", &[], Bytes::new()).await;
        let location = start.header("location").to_owned();
        app.send(Method::PATCH, &location, &[], first.to_vec()).await;
        app.app.close().await;
        location
    };
    let app = TestApp::with_config(test_config(dir.path(), "")).await;
    let status = app.get(&location).await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-49999");
    let range = format!("50000-{}", data.len() - 1);
    let patch = app.send(Method::PATCH, &location, &[("content-range", &range)], rest.to_vec()).await;
    assert_eq!(patch.status, StatusCode::ACCEPTED);
    let d = digest(&data);
    let put = app.send(Method::PUT, &format!("{location}?digest={d}"), &[], Bytes::new()).await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(app.get(&format!("/v2/dev/a/blobs/{d}")).await.body.as_ref(), data.as_slice());
}

#[tokio::test]
async fn idle_sessions_expire() {
    let app = TestApp::new("").await;
    let start = app.send(Method::POST, "/v2/dev/a/blobs/uploads/", &[], Bytes::new()).await;
    let location = start.header("location").to_owned();
    app.send(Method::PATCH, &location, &[], b"abc".to_vec()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = app.app.state.registry.expire_uploads(10).await.unwrap();
    assert_eq!(expired, 1);
    assert_eq!(app.get(&location).await.status, StatusCode::NOT_FOUND);
    let leftovers = std::fs::read_dir(app.app.config.data_dir.join("uploads")).unwrap().count();
    assert_eq!(leftovers, 0, "expired sessions leave no staged bytes");
}

#[tokio::test]
async fn scrub_quarantines_corrupt_blobs_and_they_are_never_served() {
    let app = TestApp::new("").await;
    let data = pseudo_random(300 * 1024, 11);
    let good = app.push_blob("dev/a", &data).await;
    let small = app.push_blob("dev/a", b"small and inline").await;
    let clean = app.app.scrub(None, |_| {}).await.unwrap();
    assert_eq!(clean.checked, 2);
    assert!(clean.quarantined.is_empty());

    // Flip one byte of the stored file behind the registry's back.
    let hex = good.trim_start_matches("sha256:");
    let path = app.app.config.data_dir.join("blobs/sha256").join(&hex[..2]).join(hex);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let report = app.app.scrub(None, |_| {}).await.unwrap();
    assert_eq!(report.quarantined.iter().map(ToString::to_string).collect::<Vec<_>>(), vec![good.clone()]);
    let reply = app.get(&format!("/v2/dev/a/blobs/{good}")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "BLOB_UNKNOWN");
    assert_eq!(app.get(&format!("/v2/dev/a/blobs/{small}")).await.status, StatusCode::OK);
    assert!(!path.exists(), "the corrupt file moved to quarantine");
    let metrics = String::from_utf8(app.get("/metrics").await.body.to_vec()).unwrap();
    assert!(metrics.contains("airlock_blobs_quarantined_total 1"), "{metrics}");

    // A fresh, correct upload heals the blob.
    app.push_blob("dev/a", &data).await;
    assert_eq!(app.get(&format!("/v2/dev/a/blobs/{good}")).await.body.len(), data.len());
}

#[tokio::test]
async fn the_database_is_wal_with_full_sync() {
    let app = TestApp::new("").await;
    let ok = app.app.backend.sqlite().unwrap().integrity_check().await.unwrap();
    assert_eq!(ok, "ok");
    let _ = App::open(test_config(app.dir.path(), "")).await.unwrap();
    let wal = app.app.config.data_dir.join(format!("{}-wal", airlock_server::DATABASE_FILE));
    assert!(wal.exists(), "WAL journal present at {}", wal.display());
}
