//! The app on a real socket (`spawn_app`): client addresses and graceful shutdown.

use airlock_test_support::process::request;
use airlock_test_support::spawn_app;

#[tokio::test]
async fn upload_limits_count_per_client_address_and_shutdown_is_clean() {
    let app = spawn_app("[limits]\nuploads_per_client = 1\n").await;
    let addr = app.addr;
    let basic = airlock_test_support::basic("tester", &app.tester_key);
    let (first, second) = tokio::task::spawn_blocking(move || {
        let reply = request(addr, "GET", "/token?scope=repository:dev/a:push", &[("authorization", &basic)], b"");
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        let token: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
        let first = request(addr, "POST", "/v2/dev/a/blobs/uploads/", &[("authorization", &bearer)], b"");
        let second = request(addr, "POST", "/v2/dev/a/blobs/uploads/", &[("authorization", &bearer)], b"");
        (first, second)
    })
    .await
    .unwrap();
    assert_eq!(first.status, 202);
    assert_eq!(second.status, 429, "the second session from 127.0.0.1 exceeds the limit of 1");
    app.stop().await;
    assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed after shutdown");
}
