//! Logging in under attack, over real sockets from distinct loopback addresses where the address
//! matters (in process where it does not): failed logins back off per principal and client
//! address, API keys are never locked out, `X-Forwarded-For` counts only from a trusted proxy,
//! unknown names cost as much as known ones, names that would pass for the server are refused,
//! and every log entry says what kind of actor made it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use airlock_test_support::{ADMIN_PASSWORD, ManualClock, SpawnedApp, TestApp, basic, spawn_app};
use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

/// The victim's password in these tests.
const VICTIM_PASSWORD: &str = "victim-password-long-enough";

/// A client whose connections come from `127.0.0.<last>`.
fn peer(last: u8) -> reqwest::Client {
    peer_at([127, 0, 0, last])
}

fn peer_at(octets: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(Ipv4Addr::from(octets))).build().expect("http client builds")
}

/// `GET /token` for a pull scope as `name`, optionally with an `X-Forwarded-For`.
async fn token(app: &SpawnedApp, client: &reqwest::Client, name: &str, secret: &str, xff: Option<&str>) -> StatusCode {
    let mut request = client
        .get(format!("{}/token?service=airlock&scope=repository:dev/app:pull", app.url()))
        .basic_auth(name, Some(secret));
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.expect("token request").status()
}

/// `GET /token` as above, with the response's `Retry-After`.
async fn token_retry_after(
    app: &SpawnedApp,
    client: &reqwest::Client,
    name: &str,
    secret: &str,
) -> (StatusCode, String) {
    let reply = client
        .get(format!("{}/token?service=airlock&scope=repository:dev/app:pull", app.url()))
        .basic_auth(name, Some(secret))
        .send()
        .await
        .expect("token request");
    let retry = reply.headers().get("retry-after").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (reply.status(), retry)
}

/// `POST /api/v1/auth/token` as `name`: the status and the API token, if one was issued.
async fn api_token(app: &SpawnedApp, client: &reqwest::Client, name: &str, secret: &str) -> (StatusCode, String) {
    let reply = client
        .post(format!("{}/api/v1/auth/token", app.url()))
        .basic_auth(name, Some(secret))
        .send()
        .await
        .expect("login request");
    let status = reply.status();
    let body: Value = reply.json().await.unwrap_or(Value::Null);
    (status, body["token"].as_str().unwrap_or_default().to_owned())
}

/// Creates a principal as `admin`, returning the response body; a user given a `password` is
/// then enrolled with it, as the person would.
async fn create(app: &SpawnedApp, mut principal: Value) -> Value {
    let password = principal.as_object_mut().and_then(|p| p.remove("password"));
    let (status, admin) = api_token(app, &peer(1), "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let reply = peer(1)
        .post(format!("{}/api/v1/principals", app.url()))
        .bearer_auth(admin)
        .json(&principal)
        .send()
        .await
        .expect("create request");
    assert_eq!(reply.status(), StatusCode::CREATED, "{principal}");
    let created: Value = reply.json().await.expect("created principal");
    if let Some(password) = password {
        let token = created["enrollment_token"].as_str().expect("enrollment token");
        let enrolled = peer(1)
            .post(format!("{}/api/v1/auth/enroll", app.url()))
            .json(&json!({"token": token, "password": password}))
            .send()
            .await
            .expect("enroll request");
        assert_eq!(enrolled.status(), StatusCode::OK, "{principal}");
    }
    created
}

/// The `victim` user and the `victim-ci` service account, returning the account's API key.
async fn victims(app: &SpawnedApp) -> String {
    create(
        app,
        json!({"name": "victim", "kind": "user", "roles": ["developer"], "email": "victim@example.com", "password": VICTIM_PASSWORD}),
    )
    .await;
    let ci = create(app, json!({"name": "victim-ci", "kind": "service_account", "roles": ["ci"]})).await;
    ci["api_key"].as_str().expect("api key").to_owned()
}

/// Every log entry's event.
async fn events(app: &SpawnedApp) -> Vec<Value> {
    let reply = peer(1).get(format!("{}/api/v1/log/entries?start=0", app.url())).send().await.expect("log read");
    let body: Value = reply.json().await.expect("log entries");
    body["entries"].as_array().expect("entries").iter().map(|e| e["event"].clone()).collect()
}

#[tokio::test]
async fn failed_logins_by_name_do_not_lock_out_the_owner() {
    let app = spawn_app("").await;
    let key = victims(&app).await;
    let owner = peer(3);
    // Someone who knows only the names fails eight times for each, from an address of theirs;
    // each owner tries from their own address the moment the attacker is backing off.
    for (name, attacker, secret) in [("victim", peer(2), VICTIM_PASSWORD), ("victim-ci", peer(4), key.as_str())] {
        for n in 0..8 {
            let refused = token(&app, &attacker, name, &format!("guess-{n}"), None).await;
            assert!(matches!(refused, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS), "{refused}");
        }
        assert_eq!(
            token(&app, &attacker, name, "one-more-guess", None).await,
            StatusCode::TOO_MANY_REQUESTS,
            "the guesser's own principal and address back off"
        );
        assert_eq!(token(&app, &owner, name, secret, None).await, StatusCode::OK, "`{name}` is locked out");
    }
    assert_eq!(api_token(&app, &owner, "victim", VICTIM_PASSWORD).await.0, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn api_keys_are_never_locked_out() {
    let app = spawn_app("[log]\nrefusal_window_secs = 1\n").await;
    let key = victims(&app).await;
    // Wrong keys and passwords for the service account, from the address it uses itself (a
    // shared CI egress, say).
    let shared = peer(2);
    for n in 0..12 {
        let wrong_key = format!("alk_{}", "A".repeat(42) + &(n % 10).to_string());
        assert_eq!(
            token(&app, &shared, "victim-ci", &wrong_key, None).await,
            StatusCode::UNAUTHORIZED,
            "a wrong key is refused, never throttled"
        );
        let refused = token(&app, &shared, "victim-ci", &format!("password-guess-{n}"), None).await;
        assert!(matches!(refused, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS), "{refused}");
    }
    assert_eq!(token(&app, &shared, "victim-ci", &key, None).await, StatusCode::OK);
    assert_eq!(token(&app, &peer(3), "victim-ci", &key, None).await, StatusCode::OK);
    assert_eq!(api_token(&app, &shared, "victim-ci", &key).await.0, StatusCode::OK);
    // Every wrong key is counted for monitoring, and on record: the identical refusals are
    // logged once in full and counted into an aggregate when their window closes.
    let metrics = peer(1).get(format!("{}/metrics", app.url())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "airlock_api_key_failures_total 12"), "{metrics}");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let wrong_keys: Vec<Value> =
        events(&app).await.into_iter().filter(|e| e["outcome"]["reasons"][0] == "wrong api key").collect();
    assert_eq!(airlock_test_support::refusals_on_record(&wrong_keys, "access.login.failed"), 12);
    app.stop().await;
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_untrusted_peers() {
    let app = spawn_app("[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    // A client at 127.0.0.2, not the proxy, claims a new address with every guess.
    let direct = peer(2);
    for n in 0..airlock_server::caller::LOGIN_FAILURES_BEFORE_BACKOFF {
        let spoofed = format!("198.51.100.{n}");
        assert_eq!(token(&app, &direct, "admin", "guess", Some(&spoofed)).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        token(&app, &direct, "admin", "guess", Some("198.51.100.200")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a spoofed address is no fresh start"
    );
    // Through the proxy, the client is the first address that is not the proxy's, from the right.
    assert_eq!(token(&app, &peer(1), "admin", "guess", Some("203.0.113.5")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        token(&app, &peer(1), "admin", "guess", Some("192.0.2.66, 203.0.113.6, 127.0.0.1")).await,
        StatusCode::UNAUTHORIZED
    );
    let sources: Vec<String> = events(&app)
        .await
        .into_iter()
        .filter(|e| e["type"] == "access.login.failed")
        .map(|e| e["details"]["source"].as_str().unwrap_or_default().to_owned())
        .collect();
    // The five identical guesses from 127.0.0.2 are logged once in full, then counted.
    assert_eq!(sources, ["127.0.0.2", "203.0.113.5", "203.0.113.6"]);
    app.stop().await;
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_do_not_lock_each_other_out() {
    let app = spawn_app("[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    let proxy = peer(1);
    for n in 0..8 {
        let refused = token(&app, &proxy, "admin", &format!("guess-{n}"), Some("203.0.113.9")).await;
        assert!(matches!(refused, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS), "{refused}");
    }
    assert_eq!(token(&app, &proxy, "admin", ADMIN_PASSWORD, Some("203.0.113.9")).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(token(&app, &proxy, "admin", ADMIN_PASSWORD, Some("198.51.100.7")).await, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_guesser_still_backs_off_on_one_principal_and_address() {
    let app = spawn_app("[log]\nrefusal_window_secs = 1\n").await;
    victims(&app).await;
    let guesser = peer(2);
    for n in 0..airlock_server::caller::LOGIN_FAILURES_BEFORE_BACKOFF {
        assert_eq!(token(&app, &guesser, "victim", &format!("guess-{n}"), None).await, StatusCode::UNAUTHORIZED);
    }
    // Then each further failure doubles the wait, whatever the password.
    assert_eq!(
        token_retry_after(&app, &guesser, "victim", VICTIM_PASSWORD).await,
        (StatusCode::TOO_MANY_REQUESTS, "1".to_owned())
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(token(&app, &guesser, "victim", "guess-again", None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        token_retry_after(&app, &guesser, "victim", VICTIM_PASSWORD).await,
        (StatusCode::TOO_MANY_REQUESTS, "2".to_owned())
    );
    // Other names from the same address are not held back by this one's failures.
    assert_eq!(token(&app, &guesser, "admin", ADMIN_PASSWORD, None).await, StatusCode::OK);
    // Each failure is on record (the first five in one window: one in full, then counted into
    // the aggregate the sixth closes); throttled attempts are refused before any check.
    let failures = airlock_test_support::refusals_on_record(&events(&app).await, "access.login.failed");
    assert_eq!(failures, 6);
    app.stop().await;
}

/// One `/token` attempt's wall time, in microseconds; it must be refused.
async fn timed(app: &SpawnedApp, client: &reqwest::Client, name: &str, secret: &str) -> u128 {
    let started = Instant::now();
    let status = token(app, client, name, secret, None).await;
    let took = started.elapsed().as_micros();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "`{name}`");
    took
}

fn median(mut times: Vec<u128>) -> u128 {
    times.sort_unstable();
    times[times.len() / 2]
}

#[tokio::test]
async fn unknown_names_take_as_long_as_known_ones() {
    let app = spawn_app("").await;
    victims(&app).await;
    create(&app, json!({"name": "gone", "kind": "user", "password": VICTIM_PASSWORD})).await;
    let (_, admin) = api_token(&app, &peer(1), "admin", ADMIN_PASSWORD).await;
    let disabled =
        peer(1).post(format!("{}/api/v1/principals/gone/disable", app.url())).bearer_auth(admin).send().await.unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    // Every kind of refusal is tried from a fresh address each round, so no backoff interferes,
    // and interleaved in a rotating order, so load on the machine falls on all of them alike.
    let kinds: [(&str, &str); 4] = [
        ("victim", "wrong-password"),
        ("nobody", "wrong-password"),
        ("victim-ci", "wrong-password"),
        ("gone", "wrong-password"),
    ];
    let warm = peer_at([127, 0, 2, 1]);
    for (name, secret) in kinds {
        timed(&app, &warm, name, secret).await;
    }
    // A window of 20 rounds passes when each refusal's median is within 25% of a known user's
    // wrong password. A burst of load elsewhere on a small machine can part two medians of the
    // same cost, so up to three windows are measured; an unknown name that skips the hash
    // (1-2 ms against 35-76 ms) fails every one.
    let mut windows = Vec::new();
    for window in 0..3u8 {
        let mut times: [Vec<u128>; 4] = Default::default();
        for round in 0..20u8 {
            let client = peer_at([127, 0, 10 + window, round + 1]);
            for k in 0..kinds.len() {
                let k = (k + usize::from(round)) % kinds.len();
                let (name, secret) = kinds[k];
                times[k].push(timed(&app, &client, name, secret).await);
            }
        }
        let medians: Vec<u128> = times.iter().map(|t| median(t.clone())).collect();
        let known = medians[0];
        let alike = medians.iter().all(|&other| (known.max(other) - known.min(other)) * 4 <= known.max(other));
        windows.push(medians);
        if alike {
            break;
        }
    }
    let last = windows.last().unwrap();
    let medians_of = |k: usize| windows.iter().map(|w| w[k]).collect::<Vec<_>>();
    for (k, (name, _)) in kinds.iter().enumerate().skip(1) {
        let (known, other) = (last[0], last[k]);
        assert!(
            (known.max(other) - known.min(other)) * 4 <= known.max(other),
            "medians of `{name}`: {:?} us; of a known user with a wrong password: {:?} us",
            medians_of(k),
            medians_of(0)
        );
    }
    app.stop().await;
}

async fn admin_token(app: &TestApp) -> String {
    let request = Request::post("/api/v1/auth/token")
        .header("authorization", basic("admin", ADMIN_PASSWORD))
        .body(Body::empty())
        .unwrap();
    let reply = app.send_anonymous(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()["token"].as_str().unwrap().to_owned()
}

async fn create_in(app: &TestApp, admin: &str, principal: Value) -> airlock_test_support::Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/principals")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(Body::from(principal.to_string()))
        .unwrap();
    app.send_anonymous(request).await
}

#[tokio::test]
async fn reserved_names_are_refused() {
    let app = TestApp::new("").await;
    let admin = admin_token(&app).await;
    for name in ["airlock", "anonymous", "system", "oidc", "airlock-scrubber", "airlock-"] {
        for kind in ["user", "service_account"] {
            let reply = create_in(&app, &admin, json!({"name": name, "kind": kind, "roles": ["developer"]})).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name} ({kind}): {:?}", reply.body);
            let message = reply.error_message();
            assert!(message.contains(&format!("`{name}` is reserved")), "{message}");
            assert!(message.ends_with("choose another name"), "{message}");
        }
    }
    // Names that only begin alike are not the server's.
    let lookalike = create_in(&app, &admin, json!({"name": "airlocked", "kind": "user", "roles": []})).await;
    assert_eq!(lookalike.status, StatusCode::CREATED, "{:?}", lookalike.body);
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    let created: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] == "access.principal.create")
        .map(|e| e["event"]["details"]["principal"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["admin", "tester", "airlocked"]);
}

#[tokio::test]
async fn log_entries_say_what_kind_of_actor_acted() {
    let app = TestApp::new("").await;
    let admin = admin_token(&app).await;
    // A user creates a principal; a service account pushes; a stranger fails to log in.
    let created = create_in(&app, &admin, json!({"name": "dana", "kind": "user", "roles": []})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    app.push_image("dev/app", &airlock_test_support::oci::Image::new(&[("a.txt", b"a")]), "1.0").await;
    let request =
        Request::get("/token?service=airlock").header("authorization", basic("dana", "wrong")).body(Body::empty());
    assert_eq!(app.send_anonymous(request.unwrap()).await.status, StatusCode::UNAUTHORIZED);
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    let actors: Vec<(String, String, String)> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event"])
        .filter(|e| {
            ["server.start", "registry.manifest.push", "access.login.failed"].contains(&e["type"].as_str().unwrap())
                || (e["type"] == "access.principal.create" && e["details"]["principal"] == "dana")
        })
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or("<none>").to_owned();
            (text(&e["type"]), text(&e["actor"]), text(&e["actor_kind"]))
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("server.start", "airlock", "server"),
        ("access.principal.create", "admin", "user"),
        ("registry.manifest.push", "tester", "service_account"),
        ("access.login.failed", "anonymous", "anonymous"),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(actors, expected);
}

#[tokio::test]
async fn one_time_code_guesses_back_off_even_after_the_right_password() {
    let clock = ManualClock::at(1_795_669_200_000);
    let app = TestApp::with_clock("", clock).await;
    let enroll = Request::post("/api/v1/auth/mfa").header("authorization", basic("admin", ADMIN_PASSWORD));
    let enrolled = app.send_anonymous(enroll.body(Body::empty()).unwrap()).await;
    assert_eq!(enrolled.status, StatusCode::OK, "{:?}", enrolled.body);
    let secret = airlock_test_support::promotion::base32_decode(enrolled.json()["secret"].as_str().unwrap());
    let now = 1_795_669_200u64;
    let valid: Vec<String> =
        [now - 30, now, now + 30].iter().map(|t| airlock_access::totp::code_at(&secret, *t)).collect();
    let guess =
        (1..).map(|h| airlock_access::totp::code_at(&secret, now + 3600 * h)).find(|c| !valid.contains(c)).unwrap();
    let login = |code: String| {
        Request::post("/api/v1/auth/token")
            .header("authorization", basic("admin", ADMIN_PASSWORD))
            .header("x-airlock-otp", code)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..airlock_server::caller::LOGIN_FAILURES_BEFORE_BACKOFF {
        assert_eq!(app.send_anonymous(login(guess.clone())).await.status, StatusCode::UNAUTHORIZED);
    }
    // The right password each time does not wipe the code's failures.
    assert_eq!(app.send_anonymous(login(guess)).await.status, StatusCode::TOO_MANY_REQUESTS);
}
