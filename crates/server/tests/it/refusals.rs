//! What an anonymous or failing client costs: every request passes a token bucket per
//! client address (or per principal, with a valid token) before it can cost a log entry, a
//! password hash or a policy evaluation; identical refusals are logged once a window and then
//! counted into one `refusal.aggregate` entry; and `/v2` writes refused for want of a token or
//! its scope are on record.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use airlock_test_support::process::{RawReply, request};
use airlock_test_support::{TestApp, basic, spawn_app};
use airlock_tlog::{Checkpoint, Hash, Verifier, leaf_hash, verify_inclusion};
use axum::body::Body;
use axum::extract::ConnectInfo;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{Method, Request, StatusCode};
use serde_json::Value;

/// The log's entries from `start`, through the public read API of a spawned server.
fn entries_from(addr: SocketAddr, start: u64) -> (u64, Vec<Value>) {
    let reply = request(addr, "GET", &format!("/api/v1/log/entries?start={start}"), &[], b"");
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let page: Value = serde_json::from_slice(&reply.body).unwrap();
    let entries = page["entries"].as_array().unwrap().iter().map(|e| e["event"].clone()).collect();
    (page["size"].as_u64().unwrap(), entries)
}

fn log_size(addr: SocketAddr) -> u64 {
    entries_from(addr, 0).0
}

/// One of three anonymous attacks, by `i`: an anonymous trust root, a password guess for a
/// sprayed name, a blob upload without a token.
fn attack(addr: SocketAddr, i: usize) -> RawReply {
    match i % 3 {
        0 => request(addr, "PUT", "/api/v1/trust/root", &[("content-type", "application/json")], b"{}"),
        1 => {
            let credentials = basic(&format!("user{i}"), "guess-password-1");
            request(addr, "GET", "/token?scope=repository:dev/app:push", &[("authorization", &credentials)], b"")
        }
        _ => request(addr, "POST", "/v2/dev/app/blobs/uploads/", &[], b""),
    }
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    let index = (samples.len() * 99).div_ceil(100).saturating_sub(1);
    samples[index.min(samples.len() - 1)]
}

/// 1,000 anonymous refused requests from one address (trust root PUTs, password guesses over
/// sprayed names, token-less blob uploads). Before the limit and the aggregation, each guess
/// was a log entry until login backoff caught the address, and the uploads were not on record
/// at all; now the flood costs a handful of entries while `/healthz` stays fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_flood_costs_a_bounded_number_of_log_entries() {
    let app =
        spawn_app("[rate_limits]\nanonymous_per_minute = 6\nanonymous_burst = 20\n[log]\nrefusal_window_secs = 1\n")
            .await;
    let addr = app.addr;
    let (added, statuses, health, quiet) = tokio::task::spawn_blocking(move || {
        let quiet: Vec<Duration> = (0..100)
            .map(|_| {
                let started = Instant::now();
                assert_eq!(request(addr, "GET", "/healthz", &[], b"").status, 200);
                std::thread::sleep(Duration::from_millis(2));
                started.elapsed().saturating_sub(Duration::from_millis(2))
            })
            .collect();
        let before = log_size(addr);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let probe = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let reply = request(addr, "GET", "/healthz", &[], b"");
                    samples.push(started.elapsed());
                    assert_eq!(reply.status, 200, "health is never limited");
                    std::thread::sleep(Duration::from_millis(1));
                }
                samples
            })
        };
        let workers: Vec<_> = (0..8)
            .map(|w| {
                std::thread::spawn(move || (0..125).map(|n| attack(addr, w * 125 + n).status).collect::<Vec<u16>>())
            })
            .collect();
        let statuses: Vec<u16> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let health = probe.join().unwrap();
        // Every window of identical refusals has closed (1 s, looked at every 250 ms).
        std::thread::sleep(Duration::from_millis(2500));
        (log_size(addr) - before, statuses, health, quiet)
    })
    .await
    .unwrap();
    assert_eq!(statuses.len(), 1000);
    let limited = statuses.iter().filter(|s| **s == 429).count();
    let p99 = p99(health.clone());
    eprintln!(
        "flood: {added} log entries added, {limited} of 1000 answered 429, /healthz p99 {p99:?} (max {:?}) over {} probes; {:?} before the flood",
        health.iter().max().unwrap(),
        health.len(),
        self::p99(quiet),
    );
    assert!(limited >= 900, "the address bucket holds 20 and refills one every 10 s: {limited} limited");
    assert!(added <= 10, "1,000 refused anonymous requests added {added} log entries");
    assert!(p99 < Duration::from_millis(50), "/healthz p99 {p99:?} during the flood");
    app.stop().await;
}

/// Identical refusals inside one window: the first is logged in full, the others only counted,
/// and when the window closes one `refusal.aggregate` entry holds the count, the first and the
/// last time. The log still verifies entry by entry against a signed checkpoint.
#[tokio::test]
async fn identical_refusals_close_into_one_aggregate_with_their_count() {
    let app = spawn_app("[rate_limits]\nanonymous_burst = 1000\n[log]\nrefusal_window_secs = 1\n").await;
    let addr = app.addr;
    let (before, events) = tokio::task::spawn_blocking(move || {
        let before = log_size(addr);
        for _ in 0..25 {
            let reply = request(addr, "POST", "/v2/dev/app/blobs/uploads/", &[], b"");
            assert_eq!(reply.status, 401);
        }
        std::thread::sleep(Duration::from_millis(1600));
        (before, entries_from(addr, before).1)
    })
    .await
    .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["registry.write.denied", "refusal.aggregate"], "from entry {before}");
    let first = &events[0];
    assert_eq!(first["actor"], "anonymous");
    assert_eq!(first["subject"]["repository"], "dev/app");
    assert_eq!(first["details"]["action"], "blob.upload");
    assert_eq!(first["details"]["source"], "127.0.0.1");
    assert_eq!(first["outcome"]["reasons"][0], "no registry token");
    let aggregate = &events[1];
    assert_eq!(aggregate["details"]["refused"], "registry.write.denied");
    assert_eq!(aggregate["details"]["count"], 25, "the refusal logged in full is counted too");
    assert_eq!(aggregate["details"]["first"], first["time"]);
    assert!(aggregate["details"]["last"].as_str().unwrap() >= first["time"].as_str().unwrap());
    assert_eq!(aggregate["details"]["window_secs"], 1);
    assert_eq!(aggregate["details"]["details"]["source"], "127.0.0.1");
    assert_eq!(aggregate["subject"], first["subject"]);
    assert_eq!(aggregate["outcome"], first["outcome"]);
    assert_eq!(aggregate["request_id"], Value::Null);

    // As `airlock audit verify` does: every entry is in the tree a signed checkpoint commits to.
    let (note, key) = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(100));
        (
            request(addr, "GET", "/api/v1/log/checkpoint", &[], b"").body,
            request(addr, "GET", "/api/v1/log/key", &[], b"").body,
        )
    })
    .await
    .unwrap();
    let verifier = Verifier::parse(String::from_utf8(key).unwrap().trim()).unwrap();
    let checkpoint = Checkpoint::open(&note, &verifier).unwrap();
    let size = checkpoint.size;
    let proven = tokio::task::spawn_blocking(move || {
        let reply = request(addr, "GET", &format!("/api/v1/log/entries?start=0&end={size}"), &[], b"");
        let page: Value = serde_json::from_slice(&reply.body).unwrap();
        let mut proven = Vec::new();
        for entry in page["entries"].as_array().unwrap() {
            let index = entry["index"].as_u64().unwrap();
            let path = format!("/api/v1/log/proof/inclusion?index={index}&size={size}");
            let proof: Value = serde_json::from_slice(&request(addr, "GET", &path, &[], b"").body).unwrap();
            proven.push((index, entry["leaf"].as_str().unwrap().to_owned(), proof));
        }
        proven
    })
    .await
    .unwrap();
    assert_eq!(proven.len() as u64, size);
    for (index, leaf, proof) in proven {
        let leaf = STANDARD.decode(leaf).unwrap();
        let hashes: Vec<Hash> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
            .collect();
        verify_inclusion(&leaf_hash(&leaf), index, size, &hashes, &checkpoint.root)
            .unwrap_or_else(|e| panic!("entry {index}: {e}"));
    }
    app.stop().await;
}

/// Refusals counted in a window still open when the server stops are put on record at shutdown.
#[tokio::test]
async fn shutdown_puts_open_windows_on_record() {
    let mut app = spawn_app("[log]\nrefusal_window_secs = 3600\n").await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        for _ in 0..3 {
            assert_eq!(request(addr, "DELETE", "/v2/dev/app/manifests/v1", &[], b"").status, 401);
        }
    })
    .await
    .unwrap();
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().unwrap());
    app.stop().await;
    let mut config = airlock_test_support::test_config(dir.path(), "");
    config.bootstrap_password = Some(airlock_test_support::ADMIN_PASSWORD.to_owned());
    let reopened = airlock_server::App::open(config).await.unwrap();
    let size = reopened.state.log.store_size().await.unwrap();
    let leaves = reopened.state.log.store_leaves(0, size).await.unwrap();
    let events: Vec<Value> = leaves.iter().map(|l| serde_json::from_slice(&l.data).unwrap()).collect();
    let denied: Vec<&Value> = events.iter().filter(|e| e["type"] == "registry.write.denied").collect();
    assert_eq!(denied.len(), 1, "one in full");
    assert_eq!(denied[0]["details"]["action"], "tag.delete");
    let aggregate = events.last().unwrap();
    assert_eq!(aggregate["type"], "refusal.aggregate");
    assert_eq!(aggregate["details"]["count"], 3);
    reopened.close().await;
}

/// A pull-only token trying to write: the blob upload and the manifest PUT are refused with 403
/// and, unlike before, each refusal is in the log with the repository and the action.
#[tokio::test]
async fn pull_only_token_writes_are_on_record() {
    let app = TestApp::new("").await;
    let token = app.token(&["repository:dev/app:pull".to_owned()]).await;
    assert!(!token.is_empty());
    let bearer = format!("Bearer {token}");
    let size = |app: &TestApp| {
        let log = app.app.state.log.clone();
        async move { log.store_size().await.unwrap() }
    };
    let before = size(&app).await;
    let upload = app.send(Method::POST, "/v2/dev/app/blobs/uploads/", &[("authorization", &bearer)], "").await;
    assert_eq!(upload.status, StatusCode::FORBIDDEN);
    let manifest = app
        .send(
            Method::PUT,
            "/v2/dev/app/manifests/v1",
            &[("authorization", &bearer), ("content-type", "application/vnd.oci.image.manifest.v1+json")],
            "{}",
        )
        .await;
    assert_eq!(manifest.status, StatusCode::FORBIDDEN);
    let after = size(&app).await;
    let leaves = app.app.state.log.store_leaves(before, after).await.unwrap();
    let events: Vec<Value> = leaves.iter().map(|l| serde_json::from_slice(&l.data).unwrap()).collect();
    let summary: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e["type"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["subject"]["repository"].as_str().unwrap_or("-"),
                e["details"]["action"].as_str().unwrap_or("-"),
                e["outcome"]["reasons"][0].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "registry.write.denied tester dev/app blob.upload the registry token does not grant `repository:dev/app:push`",
            "registry.write.denied tester dev/app manifest.put the registry token does not grant `repository:dev/app:push`",
        ]
    );
}

/// A request from `address` (as the socket peer), carrying `authorization` if given.
fn from(address: &str, method: Method, uri: &str, authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    let peer: SocketAddr = format!("{address}:40000").parse().unwrap();
    builder.extension(ConnectInfo(peer)).body(Body::empty()).unwrap()
}

/// An anonymous flood from one address empties that address's bucket only: its requests get
/// 429 with `Retry-After`, while a principal with a valid token (from another address, or even
/// from the flooding one) and an API key logging in from another address go on as usual.
#[tokio::test]
async fn an_anonymous_flood_does_not_hold_back_authenticated_principals() {
    let app = TestApp::new("[rate_limits]\nanonymous_per_minute = 1\nanonymous_burst = 5\n").await;
    let attacker = "203.0.113.9";
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..200 {
        let reply = app.send_anonymous(from(attacker, Method::POST, "/v2/dev/app/blobs/uploads/", None)).await;
        statuses.push(reply.status);
        last = Some(reply);
    }
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(limited, 195, "five pass the bucket, the rest are turned away");
    let last = last.unwrap();
    assert!(last.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(last.error_code(), "TOOMANYREQUESTS");
    let message = last.json()["errors"][0]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with(
            "too many requests from client address `203.0.113.9`: at most 5 at once and 1 a minute; retry in "
        ),
        "{message}"
    );
    let api = app.send_anonymous(from(attacker, Method::PUT, "/api/v1/trust/root", None)).await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.json()["error"]["code"], "TOOMANYREQUESTS", "the API's own error shape");
    assert!(!api.header("retry-after").is_empty());

    // The tester's API key logs in from another address, and its token works from anywhere.
    let login = app
        .send_anonymous(from(
            "198.51.100.7",
            Method::GET,
            "/token?scope=repository:dev/app:pull,push",
            Some(&basic("tester", &app.tester_key)),
        ))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
    let bearer = format!("Bearer {}", login.json()["token"].as_str().unwrap());
    for address in ["198.51.100.7", attacker] {
        for _ in 0..20 {
            let reply =
                app.send_anonymous(from(address, Method::POST, "/v2/dev/app/blobs/uploads/", Some(&bearer))).await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "from {address}: {:?}", reply.body);
        }
    }
    // Another anonymous client has a bucket of its own; health is never limited.
    let other = app.send_anonymous(from("192.0.2.44", Method::GET, "/v2/", None)).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    let health = app.send_anonymous(from(attacker, Method::GET, "/healthz", None)).await;
    assert_eq!(health.status, StatusCode::OK);
    // A forged token naming the tester does not move the tester's bucket: it is charged to the
    // address that sent it.
    let forged = "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ0ZXN0ZXIifQ.AAAA";
    let reply = app.send_anonymous(from(attacker, Method::GET, "/v2/", Some(forged))).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}

/// CI jobs behind one address log in with API keys far more often than an anonymous bucket
/// allows: an unguessable key costs no Argon2 and is not charged before it is checked, so a
/// fleet never locks itself out. Passwords from the same address still are.
#[tokio::test]
async fn api_key_logins_from_one_address_are_not_held_to_the_anonymous_bucket() {
    let app = TestApp::new("[rate_limits]\nanonymous_per_minute = 1\nanonymous_burst = 5\n").await;
    let fleet = "192.0.2.44";
    for i in 0..50 {
        let login = app
            .send_anonymous(from(
                fleet,
                Method::GET,
                "/token?scope=repository:dev/app:pull",
                Some(&basic("tester", &app.tester_key)),
            ))
            .await;
        assert_eq!(login.status, StatusCode::OK, "login {i}: {:?}", login.body);
    }
    let mut limited = 0;
    for _ in 0..10 {
        let guess =
            app.send_anonymous(from(fleet, Method::GET, "/token", Some(&basic("admin", "a guessed password")))).await;
        limited += usize::from(guess.status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(limited >= 5, "password guesses from the address still pass its bucket: {limited} of 10 limited");
}
