//! Slow and greedy clients: headers sent one line at a time, idle
//! connections, too many connections from one address, `/api/v1` bodies that stall or are too
//! large, `Retry-After` on every 429 and 503, and refusals on a keep-alive connection that must
//! reach the client instead of a reset.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use airlock_test_support::process::request;
use airlock_test_support::{TestApp, spawn_app};
use axum::body::Body;
use http::{Method, Request, StatusCode};

/// Whether the server closed `stream`: a read sees the end (or a reset) instead of timing out.
fn closed(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => closed(stream),
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// Seconds until the server closes a connection that sends one header line a second (or,
/// with `drip` false, nothing at all); `None` when it is still open after 12 s.
fn seconds_until_closed(addr: SocketAddr, drip: bool) -> Option<u64> {
    let mut stream = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    if drip {
        stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).unwrap();
    }
    while started.elapsed() < Duration::from_secs(12) {
        if drip && stream.write_all(b"X-Slow: 1\r\n").is_err() {
            return Some(started.elapsed().as_secs());
        }
        if closed(&mut stream) {
            return Some(started.elapsed().as_secs());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}

/// Issue 13: headers sent one line every few seconds kept a connection open for minutes with no
/// credentials; so did a connection that sent nothing. Both failed before the accept loop had a
/// header read timeout.
#[tokio::test]
async fn headers_sent_one_line_at_a_time_and_silent_connections_are_cut_off() {
    let app = spawn_app("[server]\nheader_read_timeout_secs = 2\n").await;
    let addr = app.addr;
    let (dripping, silent) =
        tokio::task::spawn_blocking(move || (seconds_until_closed(addr, true), seconds_until_closed(addr, false)))
            .await
            .unwrap();
    assert!(dripping.is_some_and(|s| s <= 5), "a dripping request head was cut off after {dripping:?} s");
    assert!(silent.is_some_and(|s| s <= 5), "a silent connection was closed after {silent:?} s");
    // A client that sends its request in time is served as before.
    let reply = tokio::task::spawn_blocking(move || request(addr, "GET", "/healthz", &[], b"")).await.unwrap();
    assert_eq!(reply.status, 200);
    app.stop().await;
}

/// Issue 13: one address could open any number of connections. Over the cap the server answers
/// 503 with `Retry-After` and closes; a connection given back makes room again.
#[tokio::test]
async fn connections_per_client_address_are_capped() {
    let app = spawn_app("[server]\nconnections_per_client = 2\nheader_read_timeout_secs = 30\n").await;
    let addr = app.addr;
    let (over, after) = tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(300));
        let over = request(addr, "GET", "/v2/", &[], b"");
        drop(held);
        std::thread::sleep(Duration::from_millis(500));
        (over, request(addr, "GET", "/healthz", &[], b""))
    })
    .await
    .unwrap();
    assert_eq!(over.status, 503, "{}", String::from_utf8_lossy(&over.body));
    assert_eq!(over.header("retry-after"), "30");
    assert_eq!(over.header("connection"), "close");
    let body: serde_json::Value = serde_json::from_slice(&over.body).unwrap();
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("`server.connections_per_client`"), "{message}");
    assert_eq!(after.status, 200, "closed connections are given back");
    app.stop().await;
}

/// Issue 13: `/api/v1` JSON bodies had no idle timeout, so a client announcing 100 bytes and
/// sending 10 held a handler forever (this waited past the test's 8 s before the fix). Now the
/// registry's body idle timeout applies: 408 and the connection closes.
#[tokio::test]
async fn an_api_body_that_stalls_is_answered_408_and_closed() {
    let app = spawn_app("[limits]\nbody_idle_timeout_secs = 1\n").await;
    let addr = app.addr;
    let (elapsed, head) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let started = Instant::now();
        let head = format!(
            "POST /api/v1/auth/enroll HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"token\": "
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        (started.elapsed(), String::from_utf8_lossy(&raw).to_string())
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 408"), "after {elapsed:?}: {head}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(head.to_lowercase().contains("connection: close"), "{head}");
    assert!(head.contains("\"code\":\"TIMEOUT\""), "{head}");
    app.stop().await;
}

/// Issue 13: handlers read an oversized body as empty (`unwrap_or_default`), answering "not
/// valid JSON: EOF" (400) about a body they never looked at. Now every `/api/v1` body is read
/// by one extractor: 413 naming the limit and its config key, declared or streamed.
#[tokio::test]
async fn oversized_api_bodies_are_413_naming_the_limit_and_its_key() {
    let app = TestApp::new("[limits]\ntrust_root_max_bytes = 2048\n").await;
    let big = format!("{{\"role\": \"{}\"}}", "x".repeat(20 * 1024));
    // Declared with `Content-Length`: refused before a byte is read.
    let declared = app.send(Method::POST, "/api/v1/principals/tester/roles", &[], big.clone()).await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", declared.body);
    assert_eq!(declared.json()["error"]["code"], "TOO_LARGE");
    expect_test::expect!["the body is larger than 16384 bytes (config key `limits.api_body_max_bytes`)"]
        .assert_eq(&declared.error_message());
    // Streamed without a length: refused once the limit is passed.
    let chunks = futures::stream::iter(
        big.into_bytes().chunks(1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    let streamed = Request::post("/api/v1/principals/tester/roles").body(Body::from_stream(chunks)).unwrap();
    let streamed = app.send_anonymous(streamed).await;
    assert_eq!(streamed.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", streamed.body);
    // A definition has its own, larger limit; the trust root its own key.
    let bearer = format!("Bearer {}", app.key_admin_token().await);
    let role = format!("{{\"name\": \"{}\"}}", "r".repeat(70 * 1024));
    let defined = app.send(Method::POST, "/api/v1/roles", &[("authorization", &bearer)], role).await;
    assert_eq!(defined.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", defined.body);
    assert!(defined.error_message().contains("`limits.api_definition_max_bytes`"), "{}", defined.error_message());
    let root = app.put_root(vec![b' '; 4096]).await;
    assert_eq!(root.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", root.body);
    assert!(root.error_message().contains("`limits.trust_root_max_bytes`"), "{}", root.error_message());
    // Invalid JSON is still a 400 that says what to send.
    let invalid = app.send(Method::POST, "/api/v1/principals/tester/roles", &[], "{\"role\":").await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert!(invalid.error_message().contains("not valid JSON"), "{}", invalid.error_message());
}

/// Issue 13: the upload-session 429 and the 503s carried no `Retry-After`. Every 429 and 503
/// this server can be made to send, triggered one by one.
#[tokio::test]
async fn every_429_and_503_says_when_to_retry() {
    // 429: too many upload sessions from one client address.
    let app = spawn_app("[limits]\nuploads_per_client = 1\n").await;
    let addr = app.addr;
    let basic = airlock_test_support::basic("tester", &app.tester_key);
    let busy = tokio::task::spawn_blocking(move || {
        let reply = request(addr, "GET", "/token?scope=repository:dev/a:push", &[("authorization", &basic)], b"");
        let token: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
        let _first = request(addr, "POST", "/v2/dev/a/blobs/uploads/", &[("authorization", &bearer)], b"");
        request(addr, "POST", "/v2/dev/a/blobs/uploads/", &[("authorization", &bearer)], b"")
    })
    .await
    .unwrap();
    assert_eq!(busy.status, 429);
    assert_eq!(busy.header("retry-after"), "10", "TooManyUploads");
    app.stop().await;

    // 503: writes refused (what a transparency log failing its start-up check leads to), on
    // `/v2` and on `/api/v1`.
    let mut app = TestApp::new("").await;
    let root_token = app.key_admin_token().await;
    app.app.state.services_mut().registry =
        app.app.state.registry.clone().refusing_writes("the log failed its check (test)");
    app.router = app.app.router();
    let refused = app.send(Method::POST, "/v2/dev/a/blobs/uploads/", &[], "").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.body);
    assert_eq!(refused.header("retry-after"), "30", "WritesRefused on /v2");
    let bearer = format!("Bearer {root_token}");
    let refused = app.send(Method::PUT, "/api/v1/trust/root", &[("authorization", &bearer)], "{}").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.body);
    assert_eq!(refused.header("retry-after"), "30", "WritesRefused on /api/v1");

    // 503: `/readyz` while the metadata store does not answer.
    app.app.close().await;
    let unready = app.get("/readyz").await;
    assert_eq!(unready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unready.header("retry-after"), "30", "/readyz");
    // The 503 over `server.connections_per_client` is checked in
    // `connections_per_client_address_are_capped`; the login and trust-root throttles' 429s
    // carry their own wait, checked in `login.rs` and `trust.rs`.
}

/// The Python with `requests`, from `AIRLOCK_TEST_PYTHON` (set by `scripts/test`).
fn python() -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python");
    std::env::var_os("AIRLOCK_TEST_PYTHON").map(std::path::PathBuf::from).unwrap_or(venv)
}

/// Issue 13: an OCI client suite on one keep-alive connection aborted with `RemoteDisconnected`
/// at a chunked `PATCH` and a manifest `PUT` refused in a gated stage: the server answered
/// before reading the body, then closed the socket with unread data, which sends a reset. This
/// failed at the first refusal before the drain layer and the lingering close. Now 20 rounds
/// of push, pull and refusals run on one connection without a connection error.
#[tokio::test]
async fn refusals_on_a_keep_alive_connection_reach_the_client() {
    let app = spawn_app("").await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/keepalive.py");
    let (url, key) = (app.url(), app.tester_key.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(script)
            .arg(url)
            .arg("20")
            .env("AIRLOCK_USERNAME", "tester")
            .env("AIRLOCK_PASSWORD", key)
            .output()
            .expect("python runs; set AIRLOCK_TEST_PYTHON to a Python with `requests`")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["rounds"], 20);
    assert_eq!(report["requests"], 1 + 20 * 15);
    app.stop().await;
}
