//! Health, readiness, metrics and request ids.

use airlock_test_support::TestApp;
use http::StatusCode;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::new("").await;
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    let system = app.get("/api/v1/system").await;
    assert_eq!(system.json()["stages"][0], serde_json::json!({"name": "dev", "pushable": true}));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::new("").await;
    let a = app.get("/v2/").await;
    let b = app.get("/v2/dev/x/tags/list").await;
    assert_eq!(a.header("docker-distribution-api-version"), "registry/2.0");
    assert_eq!(a.header("x-request-id").len(), 32);
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
}

#[tokio::test]
async fn metrics_count_requests_bytes_and_blobs() {
    let app = TestApp::new("").await;
    app.push_blob("dev/a", b"0123456789").await;
    app.get("/v2/dev/a/tags/list").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    for needle in [
        "airlock_http_requests_total{route=\"upload_start\",method=\"POST\",status=\"201\"} 1",
        "airlock_http_requests_total{route=\"tags\",method=\"GET\",status=\"200\"} 1",
        "airlock_http_request_duration_seconds_bucket{le=",
        "airlock_http_received_bytes_total 10",
        "airlock_blobs_stored 1",
        "airlock_blob_stored_bytes 10",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}
