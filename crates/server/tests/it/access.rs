//! Identity and access over HTTP: the token flow, refused tokens, scope escalation, epochs,
//! the filtered catalog and principal management with separation of duties.

use airlock_test_support::oci::Image;
use airlock_test_support::{ADMIN_PASSWORD, Reply, TestApp, basic};
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, Request, StatusCode};

async fn get_with(app: &TestApp, uri: &str, authorization: &str) -> Reply {
    let request = Request::get(uri).header("authorization", authorization).body(Body::empty()).unwrap();
    app.send_anonymous(request).await
}

/// A registry token of `name` for `scopes`, or the refusal.
async fn token_as(app: &TestApp, name: &str, secret: &str, scopes: &[&str]) -> Result<String, Reply> {
    let query: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
    let reply = get_with(app, &format!("/token?service=airlock&{}", query.join("&")), &basic(name, secret)).await;
    if reply.status == StatusCode::OK { Ok(reply.json()["token"].as_str().unwrap().to_owned()) } else { Err(reply) }
}

async fn admin_api_token(app: &TestApp) -> String {
    let request = Request::post("/api/v1/auth/token")
        .header("authorization", basic("admin", ADMIN_PASSWORD))
        .body(Body::empty())
        .unwrap();
    let reply = app.send_anonymous(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.json()["token"].as_str().unwrap().to_owned()
}

async fn api(app: &TestApp, method: Method, uri: &str, token: &str, body: serde_json::Value) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    app.send_anonymous(request).await
}

/// The access actions a registry token grants, decoded from its payload.
fn granted(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["access"].clone()
}

#[tokio::test]
async fn anonymous_requests_get_a_challenge_whose_realm_is_configured() {
    let app = TestApp::new("public_url = \"https://registry.example\"").await;
    let request = Request::get("/v2/dev/app/tags/list")
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .body(Body::empty())
        .unwrap();
    let reply = app.send_anonymous(request).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "UNAUTHORIZED");
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer realm="https://registry.example/token",service="airlock",scope="repository:dev/app:pull""#
    );
    let base = app.send_anonymous(Request::get("/v2/").body(Body::empty()).unwrap()).await;
    assert_eq!(base.status, StatusCode::UNAUTHORIZED);
    assert_eq!(base.header("www-authenticate"), r#"Bearer realm="https://registry.example/token",service="airlock""#);
}

#[tokio::test]
async fn the_token_endpoint_grants_the_intersection_and_refuses_bad_credentials() {
    let app = TestApp::new("").await;
    // Asked pull and push on dev and prod: the tester (developer, auditor) gets dev in full and
    // only pull in prod, whatever it asks.
    let token = token_as(
        &app,
        "tester",
        &app.tester_key,
        &["repository:dev/app:pull,push", "repository:prod/app:pull,push,delete"],
    )
    .await
    .unwrap();
    assert_eq!(
        granted(&token),
        serde_json::json!([
            {"type": "repository", "name": "dev/app", "actions": ["pull", "push"]},
            {"type": "repository", "name": "prod/app", "actions": ["pull"]}
        ])
    );
    // Unknown stage, unknown repository: nothing, and no way to tell which.
    let token = token_as(&app, "tester", &app.tester_key, &["repository:qa/app:pull"]).await.unwrap();
    assert_eq!(granted(&token), serde_json::json!([]));
    for (name, secret) in [("tester", "alk_wrong"), ("nobody", "x"), ("Tester", app.tester_key.as_str()), ("admin", "")]
    {
        let refused = token_as(&app, name, secret, &["repository:dev/app:pull"]).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(refused.json()["errors"][0]["message"].as_str().unwrap().starts_with("invalid credentials"), "{name}");
    }
    let missing =
        app.send_anonymous(Request::get("/token?scope=repository:dev/app:pull").body(Body::empty()).unwrap()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing.header("www-authenticate").starts_with("Basic"));
    // Malformed scopes and foreign services are refused outright.
    for scope in ["repository:dev/app/../x:pull", "repository:dev/app:admin", "repository:DEV/app:pull"] {
        let reply = token_as(&app, "tester", &app.tester_key, &[scope]).await.unwrap_err();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{scope}");
    }
    let foreign =
        get_with(&app, "/token?service=other&scope=repository:dev/app:pull", &basic("tester", &app.tester_key)).await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tokens_grant_exactly_their_scope() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"app")]);
    app.push_image("dev/app", &image, "v1").await;
    app.push_image("dev/app2", &image, "v1").await;
    let pull =
        format!("Bearer {}", token_as(&app, "tester", &app.tester_key, &["repository:dev/app:pull"]).await.unwrap());
    assert_eq!(get_with(&app, "/v2/dev/app/tags/list", &pull).await.status, StatusCode::OK);
    for (method, uri) in [
        (Method::POST, "/v2/dev/app/blobs/uploads/"),
        (Method::DELETE, "/v2/dev/app/manifests/v1"),
        (Method::GET, "/v2/dev/app2/tags/list"),
        (Method::GET, "/v2/prod/app/tags/list"),
    ] {
        let request = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header("authorization", &pull)
            .body(Body::empty())
            .unwrap();
        let reply = app.send_anonymous(request).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert!(reply.header("www-authenticate").contains("error=\"insufficient_scope\""), "{method} {uri}");
    }
    // A pull token for `prod/app` does not read `prod/other`.
    let prod =
        format!("Bearer {}", token_as(&app, "tester", &app.tester_key, &["repository:prod/app:pull"]).await.unwrap());
    assert_eq!(get_with(&app, "/v2/prod/other/tags/list", &prod).await.status, StatusCode::FORBIDDEN);
    // A registry token is not an API token, nor the reverse.
    let whoami = get_with(&app, "/api/v1/auth/whoami", &pull).await;
    assert_eq!(whoami.status, StatusCode::UNAUTHORIZED);
    assert!(whoami.json()["error"]["message"].as_str().unwrap().contains("kind"), "{:?}", whoami.body);
    let api = format!("Bearer {}", admin_api_token(&app).await);
    assert_eq!(get_with(&app, "/v2/dev/app/tags/list", &api).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let app = TestApp::new("").await;
    let token = token_as(&app, "tester", &app.tester_key, &["repository:dev/app:pull"]).await.unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let hs_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["access"] = serde_json::json!([{"type": "repository", "name": "dev/app", "actions": ["pull", "push"]}]);
    let escalated = URL_SAFE_NO_PAD.encode(claims.to_string());
    for (what, forged) in [
        ("alg none", format!("{none_header}.{}.", parts[1])),
        ("hs256", format!("{hs_header}.{}.{}", parts[1], parts[2])),
        ("escalated payload", format!("{}.{escalated}.{}", parts[0], parts[2])),
        ("truncated", token[..token.len() - 4].to_owned()),
        ("garbage", "not.a.token".to_owned()),
    ] {
        let reply = get_with(&app, "/v2/dev/app/tags/list", &format!("Bearer {forged}")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(reply.header("www-authenticate").contains("error=\"invalid_token\""), "{what}");
    }
}

#[tokio::test]
async fn changing_a_principal_kills_its_tokens() {
    let app = TestApp::new("").await;
    let admin = admin_api_token(&app).await;
    let created = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "ci-web", "kind": "service_account", "roles": ["ci"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let key = created.json()["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("alk_") && key.len() > 40);
    let bearer = format!("Bearer {}", token_as(&app, "ci-web", &key, &["repository:dev/web:pull"]).await.unwrap());
    assert_eq!(
        get_with(&app, "/v2/dev/web/tags/list", &bearer).await.status,
        StatusCode::NOT_FOUND,
        "valid token, no repository"
    );
    // A role change raises the epoch: the token from before it is refused.
    let granted =
        api(&app, Method::POST, "/api/v1/principals/ci-web/roles", &admin, serde_json::json!({"role": "auditor"}))
            .await;
    assert_eq!(granted.status, StatusCode::OK, "{:?}", granted.body);
    let stale = get_with(&app, "/v2/dev/web/tags/list", &bearer).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert!(stale.json()["errors"][0]["message"].as_str().unwrap().contains("epoch"), "{:?}", stale.body);
    // Disabled: no new token, and none of the old ones.
    let bearer = format!("Bearer {}", token_as(&app, "ci-web", &key, &["repository:dev/web:pull"]).await.unwrap());
    let disabled = api(&app, Method::POST, "/api/v1/principals/ci-web/disable", &admin, serde_json::json!({})).await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(get_with(&app, "/v2/dev/web/tags/list", &bearer).await.status, StatusCode::UNAUTHORIZED);
    assert!(token_as(&app, "ci-web", &key, &["repository:dev/web:pull"]).await.is_err());
    // A rotated key replaces the old one.
    api(&app, Method::POST, "/api/v1/principals/ci-web/enable", &admin, serde_json::json!({})).await;
    let rotated =
        api(&app, Method::POST, "/api/v1/principals/ci-web/api-key", &admin, serde_json::json!({"days": 7})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let new_key = rotated.json()["api_key"].as_str().unwrap().to_owned();
    assert!(token_as(&app, "ci-web", &key, &["repository:dev/web:pull"]).await.is_err(), "the old key is dead");
    assert!(token_as(&app, "ci-web", &new_key, &["repository:dev/web:pull"]).await.is_ok());
    let too_long =
        api(&app, Method::POST, "/api/v1/principals/ci-web/api-key", &admin, serde_json::json!({"days": 400})).await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_catalog_lists_what_the_caller_may_pull() {
    let app = TestApp::new("").await;
    let admin = admin_api_token(&app).await;
    let image = Image::new(&[("a", b"app")]);
    app.push_image("dev/app", &image, "v1").await;
    // Nothing is in `staging` yet (only promotion writes there), so the difference shows in
    // `dev`: a deployer pulls only in `staging` and `prod`.
    let created = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "cd", "kind": "service_account", "roles": ["deployer"]}),
    )
    .await;
    let key = created.json()["api_key"].as_str().unwrap().to_owned();
    let mine = format!("Bearer {}", token_as(&app, "cd", &key, &["registry:catalog:*"]).await.unwrap());
    let listed = get_with(&app, "/v2/_catalog", &mine).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json()["repositories"], serde_json::json!([]));
    let tester = app.get("/v2/_catalog").await;
    assert_eq!(tester.json()["repositories"], serde_json::json!(["dev/app"]));
}

#[tokio::test]
async fn principal_management_follows_separation_of_duties() {
    let app = TestApp::new("").await;
    let admin = admin_api_token(&app).await;
    let whoami = get_with(&app, "/api/v1/auth/whoami", &format!("Bearer {admin}")).await;
    assert_eq!(whoami.json()["name"], "admin");
    assert_eq!(whoami.json()["roles"], serde_json::json!(["access-admin"]));
    // A user gets a one-time enrollment token, shown once; the person chooses the password.
    airlock_test_support::enroll_admin(&app.app).await;
    let admin = admin_api_token(&app).await;
    let created = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "carol", "kind": "user", "roles": ["release-approver"], "email": "carol@example.com"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert!(created.json().get("password").is_none(), "{:?}", created.body);
    let enrollment = created.json()["enrollment_token"].as_str().unwrap().to_owned();
    let listed = api(&app, Method::GET, "/api/v1/principals", &admin, serde_json::json!(null)).await;
    let text = String::from_utf8_lossy(&listed.body).to_string();
    assert!(
        !text.contains(&enrollment) && !text.contains("argon2") && !text.contains("hash"),
        "no secret is listed: {text}"
    );
    let password = "carol-chose-this-password".to_owned();
    app.enroll(&enrollment, &password).await;
    // Conflicting duties cannot be joined.
    let conflict =
        api(&app, Method::POST, "/api/v1/principals/carol/roles", &admin, serde_json::json!({"role": "key-admin"}))
            .await;
    assert_eq!(conflict.status, StatusCode::BAD_REQUEST, "{:?}", conflict.body);
    assert!(String::from_utf8_lossy(&conflict.body).contains("release-approver"), "{:?}", conflict.body);
    let born_conflicted = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "dave", "kind": "service_account", "roles": ["access-admin", "deployer"]}),
    )
    .await;
    assert_eq!(born_conflicted.status, StatusCode::BAD_REQUEST);
    // Nobody manages themselves, and only access admins manage others; refusals are logged.
    let own =
        api(&app, Method::POST, "/api/v1/principals/admin/roles", &admin, serde_json::json!({"role": "auditor"})).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    let carol = {
        let request = Request::post("/api/v1/auth/token")
            .header("authorization", basic("carol", &password))
            .body(Body::empty())
            .unwrap();
        app.send_anonymous(request).await.json()["token"].as_str().unwrap().to_owned()
    };
    let refused = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &carol,
        serde_json::json!({"name": "eve", "kind": "service_account", "roles": ["ci"]}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    let denials: Vec<&serde_json::Value> =
        entries["entries"].as_array().unwrap().iter().filter(|e| e["event"]["type"] == "access.denied").collect();
    assert_eq!(denials.len(), 2, "{entries}");
    assert_eq!(denials[1]["event"]["actor"], "carol");
}

#[tokio::test]
async fn repeated_failed_logins_back_off() {
    let app = TestApp::new("").await;
    for _ in 0..airlock_server::caller::LOGIN_FAILURES_BEFORE_BACKOFF {
        let refused = token_as(&app, "admin", "password-guess", &["repository:dev/app:pull"]).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits: the principal is backing off at this address.
    let throttled = token_as(&app, "admin", ADMIN_PASSWORD, &["repository:dev/app:pull"]).await.unwrap_err();
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.error_code(), "TOOMANYREQUESTS");
    assert_eq!(throttled.header("retry-after"), "1");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(token_as(&app, "admin", ADMIN_PASSWORD, &["repository:dev/app:pull"]).await.is_ok());
    // Each failure is on record: identical ones are logged once in full and counted into an
    // aggregate when their window closes; throttled attempts are refused before any check.
    airlock_server::log::close_refusals(&app.app.state.registry, true).await;
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    let events: Vec<serde_json::Value> =
        entries["entries"].as_array().unwrap().iter().map(|e| e["event"].clone()).collect();
    assert_eq!(events.iter().filter(|e| e["type"] == "access.login.failed").count(), 1);
    assert_eq!(airlock_test_support::refusals_on_record(&events, "access.login.failed"), 5);
}

/// A CI provider in a test: an Ed25519 key and its JWKS written to `dir`.
fn ci_provider(dir: &std::path::Path) -> (airlock_access::token::TokenKey, std::path::PathBuf) {
    let key = airlock_access::token::TokenKey::generate();
    let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "ci-1",
        "x": URL_SAFE_NO_PAD.encode(key.public().as_bytes())}]});
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks.to_string()).unwrap();
    (key, path)
}

fn ci_token(key: &airlock_access::token::TokenKey, claims: serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("ci-1".into());
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes());
    jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
}

#[tokio::test]
async fn ci_tokens_map_to_a_service_account_and_its_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let (key, jwks) = ci_provider(dir.path());
    let config = format!(
        r#"
[[access.oidc]]
issuer = "https://ci.example"
audience = "airlock"
jwks = "{}"
[[access.claim_rules]]
issuer = "https://ci.example"
claims = {{ repository = "acme/payments-api", ref = "refs/heads/main" }}
service_account = "ci-payments"
scopes = ["repository:dev/payments/*:pull,push"]
"#,
        jwks.display()
    );
    let app = TestApp::new(&config).await;
    let admin = admin_api_token(&app).await;
    let created = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "ci-payments", "kind": "service_account", "roles": ["ci"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = |repository: &str, git_ref: &str, aud: &str, exp: u64| {
        serde_json::json!({"iss": "https://ci.example", "aud": aud, "sub": format!("repo:{repository}:ref:{git_ref}"),
            "repository": repository, "ref": git_ref, "iat": now, "nbf": now, "exp": exp})
    };
    // The rule's scopes narrow what the service account's role (`ci`: all of `dev`) allows.
    let jwt = ci_token(&key, claims("acme/payments-api", "refs/heads/main", "airlock", now + 300));
    let token = token_as(&app, "oidc", &jwt, &["repository:dev/payments/api:pull,push", "repository:dev/other:pull"])
        .await
        .unwrap();
    assert_eq!(
        granted(&token),
        serde_json::json!([{"type": "repository", "name": "dev/payments/api", "actions": ["pull", "push"]}])
    );
    // Near misses, another audience, an expired token, another key: refused, and logged.
    let stranger = airlock_access::token::TokenKey::generate();
    for (what, jwt) in [
        (
            "repository near miss",
            ci_token(&key, claims("acme/payments-api-evil", "refs/heads/main", "airlock", now + 300)),
        ),
        ("ref near miss", ci_token(&key, claims("acme/payments-api", "refs/heads/main2", "airlock", now + 300))),
        ("audience", ci_token(&key, claims("acme/payments-api", "refs/heads/main", "other", now + 300))),
        ("expired", ci_token(&key, claims("acme/payments-api", "refs/heads/main", "airlock", now - 120))),
        ("another key", ci_token(&stranger, claims("acme/payments-api", "refs/heads/main", "airlock", now + 300))),
    ] {
        let refused = token_as(&app, "oidc", &jwt, &["repository:dev/payments/api:pull"]).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{what}");
    }
    // `oidc` is no principal's name.
    let reserved = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "oidc", "kind": "service_account", "roles": ["ci"]}),
    )
    .await;
    assert_eq!(reserved.status, StatusCode::BAD_REQUEST);
}

/// An API token for `name`, with a TOTP code when `secret` (base32-less raw bytes) is given.
async fn login(app: &TestApp, name: &str, password: &str, otp: Option<String>) -> Reply {
    let mut request = Request::post("/api/v1/auth/token").header("authorization", basic(name, password));
    if let Some(code) = otp {
        request = request.header("x-airlock-otp", code);
    }
    app.send_anonymous(request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn just_in_time_elevation_is_approved_by_another_and_ends_on_time() {
    const START: i64 = 1_795_669_200_000; // 2026-11-26T05:00:00Z
    let clock = airlock_test_support::ManualClock::at(START);
    let app = TestApp::with_clock("", clock.clone()).await;
    let now = |clock: &airlock_test_support::ManualClock| {
        use airlock_core::ports::Clock as _;
        (clock.now().as_millis() / 1000) as u64
    };

    // The administrator enrolls a second factor; approvals need it fresh.
    let enrolled = app
        .send_anonymous(
            Request::post("/api/v1/auth/mfa")
                .header("authorization", basic("admin", ADMIN_PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(enrolled.status, StatusCode::OK, "{:?}", enrolled.body);
    let secret = airlock_test_support::promotion::base32_decode(enrolled.json()["secret"].as_str().unwrap());
    assert!(enrolled.json()["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/airlock:admin?"));
    let admin_plain = login(&app, "admin", ADMIN_PASSWORD, None).await.json()["token"].as_str().unwrap().to_owned();
    let code = airlock_access::totp::code_at(&secret, now(&clock));
    let admin = login(&app, "admin", ADMIN_PASSWORD, Some(code.clone())).await;
    assert_eq!(admin.status, StatusCode::OK, "{:?}", admin.body);
    let admin = admin.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        login(&app, "admin", ADMIN_PASSWORD, Some(code)).await.status,
        StatusCode::UNAUTHORIZED,
        "a code is spent once"
    );

    // A developer's service account asks to deploy for 30 minutes.
    let created = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "dev-bot", "kind": "service_account", "roles": ["developer"]}),
    )
    .await;
    let key = created.json()["api_key"].as_str().unwrap().to_owned();
    let bot = login(&app, "dev-bot", &key, None).await.json()["token"].as_str().unwrap().to_owned();
    let asked = api(
        &app,
        Method::POST,
        "/api/v1/access/requests",
        &bot,
        serde_json::json!({"role": "deployer", "duration": "30m", "reason": "hotfix rollout"}),
    )
    .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{:?}", asked.body);
    let id = asked.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(asked.json()["status"], "pending");
    assert_eq!(granted(&prod_pull(&app, &key).await), serde_json::json!([]), "nothing before approval");

    // Nobody approves alone: not the requester, not a service account, not without a fresh factor.
    let own =
        api(&app, Method::POST, &format!("/api/v1/access/requests/{id}/approve"), &bot, serde_json::json!(null)).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    let stale = api(
        &app,
        Method::POST,
        &format!("/api/v1/access/requests/{id}/approve"),
        &admin_plain,
        serde_json::json!(null),
    )
    .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN, "{:?}", stale.body);
    assert!(String::from_utf8_lossy(&stale.body).contains("mfa"), "{:?}", stale.body);
    let approved =
        api(&app, Method::POST, &format!("/api/v1/access/requests/{id}/approve"), &admin, serde_json::json!(null))
            .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(approved.json()["status"], "active");
    assert_eq!(approved.json()["decided_by"], "admin");

    // In force until the second it ends, and not one second after.
    let bearer = format!("Bearer {}", prod_pull(&app, &key).await);
    assert_eq!(
        get_with(&app, "/v2/prod/app/tags/list", &bearer).await.status,
        StatusCode::NOT_FOUND,
        "allowed: nothing there yet"
    );
    clock.advance(30 * 60 * 1000 - 1000);
    // (A registry token lives 5 minutes; a fresh one, which the grant's end cuts short.)
    let bearer = format!("Bearer {}", prod_pull(&app, &key).await);
    assert_eq!(
        get_with(&app, "/v2/prod/app/tags/list", &bearer).await.status,
        StatusCode::NOT_FOUND,
        "one second before the end"
    );
    clock.advance(2000);
    let after = get_with(&app, "/v2/prod/app/tags/list", &bearer).await;
    assert_eq!(after.status, StatusCode::FORBIDDEN, "one second after, though the token is within its leeway");
    assert_eq!(granted(&prod_pull(&app, &key).await), serde_json::json!([]), "no new token grants it either");

    // A revoked grant ends at once.
    let bot = login(&app, "dev-bot", &key, None).await.json()["token"].as_str().unwrap().to_owned();
    let asked = api(
        &app,
        Method::POST,
        "/api/v1/access/requests",
        &bot,
        serde_json::json!({"role": "deployer", "duration": 3600, "reason": "second rollout"}),
    )
    .await;
    let id = asked.json()["id"].as_str().unwrap().to_owned();
    let code = airlock_access::totp::code_at(&secret, now(&clock));
    let admin = login(&app, "admin", ADMIN_PASSWORD, Some(code)).await.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        api(&app, Method::POST, &format!("/api/v1/access/requests/{id}/approve"), &admin, serde_json::json!(null))
            .await
            .status,
        StatusCode::OK
    );
    let bearer = format!("Bearer {}", prod_pull(&app, &key).await);
    assert_eq!(get_with(&app, "/v2/prod/app/tags/list", &bearer).await.status, StatusCode::NOT_FOUND);
    let revoked =
        api(&app, Method::POST, &format!("/api/v1/access/requests/{id}/revoke"), &admin, serde_json::json!(null)).await;
    assert_eq!(revoked.status, StatusCode::OK, "{:?}", revoked.body);
    assert_eq!(
        get_with(&app, "/v2/prod/app/tags/list", &bearer).await.status,
        StatusCode::UNAUTHORIZED,
        "the epoch moved"
    );

    // Elevation cannot join conflicting duties, nor outlast the configured maximum.
    let bot = login(&app, "dev-bot", &key, None).await.json()["token"].as_str().unwrap().to_owned();
    let long = api(
        &app,
        Method::POST,
        "/api/v1/access/requests",
        &bot,
        serde_json::json!({"role": "auditor", "duration": "9h", "reason": "audit"}),
    )
    .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    let listed = api(&app, Method::GET, "/api/v1/access/requests", &admin, serde_json::json!(null)).await;
    assert_eq!(listed.json().as_array().unwrap().len(), 2);
    let kinds: Vec<String> = app.get("/api/v1/log/entries?start=0").await.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap().to_owned())
        .filter(|k| k.starts_with("access.grant"))
        .collect();
    assert_eq!(
        kinds,
        [
            "access.grant.request",
            "access.grant.approve",
            "access.grant.request",
            "access.grant.approve",
            "access.grant.revoke"
        ]
    );
}

async fn prod_pull(app: &TestApp, key: &str) -> String {
    token_as(app, "dev-bot", key, &["repository:prod/app:pull"]).await.unwrap()
}

#[tokio::test]
async fn a_role_bound_during_an_elevation_cannot_join_conflicting_duties() {
    const START: i64 = 1_795_669_200_000; // 2026-11-26T05:00:00Z
    let clock = airlock_test_support::ManualClock::at(START);
    let app = TestApp::with_clock("", clock.clone()).await;
    let code = |secret: &[u8]| {
        use airlock_core::ports::Clock as _;
        airlock_access::totp::code_at(secret, (clock.now().as_millis() / 1000) as u64)
    };
    let enrolled = app
        .send_anonymous(
            Request::post("/api/v1/auth/mfa")
                .header("authorization", basic("admin", ADMIN_PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let secret = airlock_test_support::promotion::base32_decode(enrolled.json()["secret"].as_str().unwrap());
    let admin =
        login(&app, "admin", ADMIN_PASSWORD, Some(code(&secret))).await.json()["token"].as_str().unwrap().to_owned();

    // A developer's service account is elevated to deployer for an hour.
    let created = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "dev-bot", "kind": "service_account", "roles": ["developer"]}),
    )
    .await;
    let key = created.json()["api_key"].as_str().unwrap().to_owned();
    let bot = login(&app, "dev-bot", &key, None).await.json()["token"].as_str().unwrap().to_owned();
    let asked = api(
        &app,
        Method::POST,
        "/api/v1/access/requests",
        &bot,
        serde_json::json!({"role": "deployer", "duration": "1h", "reason": "rollout"}),
    )
    .await;
    let id = asked.json()["id"].as_str().unwrap().to_owned();
    let approved =
        api(&app, Method::POST, &format!("/api/v1/access/requests/{id}/approve"), &admin, serde_json::json!(null))
            .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(granted(&prod_pull(&app, &key).await)[0]["actions"], serde_json::json!(["pull"]));

    // Meanwhile it is bound `key-admin`, which conflicts with the deployer it holds just in
    // time. Either the grant counts the elevation and is refused, or nothing it holds is
    // usable while both are in force.
    let joined =
        api(&app, Method::POST, "/api/v1/principals/dev-bot/roles", &admin, serde_json::json!({"role": "key-admin"}))
            .await;
    if joined.status == StatusCode::BAD_REQUEST {
        assert!(String::from_utf8_lossy(&joined.body).contains("separation of duties"), "{:?}", joined.body);
        assert_eq!(granted(&prod_pull(&app, &key).await)[0]["actions"], serde_json::json!(["pull"]));
        return;
    }
    assert!(joined.status.is_success(), "{:?}", joined.body);
    assert_eq!(granted(&prod_pull(&app, &key).await), serde_json::json!([]), "the elevation is not usable");
    let dev = token_as(&app, "dev-bot", &key, &["repository:dev/app:pull,push"]).await.unwrap();
    assert_eq!(granted(&dev), serde_json::json!([]), "nor are the bound roles");
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    assert!(
        entries["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"]["type"] == "access.denied" && e["event"]["details"]["principal"] == "dev-bot"),
        "{entries}"
    );
    // Revoking one of the two restores the other's use.
    let revoked =
        api(&app, Method::DELETE, "/api/v1/principals/dev-bot/roles/key-admin", &admin, serde_json::json!(null)).await;
    assert!(revoked.status.is_success(), "{:?}", revoked.body);
    assert_eq!(granted(&prod_pull(&app, &key).await)[0]["actions"], serde_json::json!(["pull"]));
}

#[tokio::test]
async fn what_an_artifact_holds_is_read_only_by_who_may_pull_it() {
    let app = TestApp::new("").await;
    let image = Image::new(&[("a", b"app")]);
    app.push_image("dev/app", &image, "v1").await;
    let uri = format!("/api/v1/artifacts/dev/app/{}/evidence", image.digest());
    let anonymous = app.send_anonymous(Request::get(&uri).body(Body::empty()).unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let elsewhere =
        format!("Bearer {}", token_as(&app, "tester", &app.tester_key, &["repository:dev/other:pull"]).await.unwrap());
    assert_eq!(get_with(&app, &uri, &elsewhere).await.status, StatusCode::FORBIDDEN);
    let here =
        format!("Bearer {}", token_as(&app, "tester", &app.tester_key, &["repository:dev/app:pull"]).await.unwrap());
    assert_eq!(get_with(&app, &uri, &here).await.status, StatusCode::OK);
    // An API token works for a principal whose roles allow the pull; the administrator's
    // (access-admin) do not.
    let admin = format!("Bearer {}", admin_api_token(&app).await);
    assert_eq!(get_with(&app, &uri, &admin).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn roles_defined_through_the_api_compile_to_cedar_and_survive_a_restart() {
    let app = TestApp::new("").await;
    let admin = admin_api_token(&app).await;
    let role = serde_json::json!({"name": "payments-reader", "description": "reads payments everywhere",
        "permissions": [{"actions": ["pull"], "stages": ["*"], "repositories": ["payments/**"]}]});
    let defined = api(&app, Method::POST, "/api/v1/roles", &admin, role.clone()).await;
    assert_eq!(defined.status, StatusCode::CREATED, "{:?}", defined.body);
    assert_eq!(
        api(&app, Method::POST, "/api/v1/roles", &admin, role).await.status,
        StatusCode::BAD_REQUEST,
        "defined once"
    );
    for bad in [
        serde_json::json!({"name": "deployer", "permissions": []}),
        serde_json::json!({"name": "Bad Name", "permissions": []}),
        serde_json::json!({"name": "sneaky", "permissions": [{"actions": ["pull"], "stages": ["*"], "repositories": ["a\" || true || \""]}]}),
        serde_json::json!({"name": "wrong", "permissions": [{"actions": ["fly"], "stages": ["*"], "repositories": ["**"]}]}),
    ] {
        let refused = api(&app, Method::POST, "/api/v1/roles", &admin, bad.clone()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", refused.body);
    }
    // Granted, it works like any role.
    let created = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "reader", "kind": "service_account", "roles": ["payments-reader"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let key = created.json()["api_key"].as_str().unwrap().to_owned();
    let token =
        token_as(&app, "reader", &key, &["repository:prod/payments/api:pull", "repository:prod/other/api:pull"])
            .await
            .unwrap();
    assert_eq!(
        granted(&token),
        serde_json::json!([{"type": "repository", "name": "prod/payments/api", "actions": ["pull"]}])
    );
    // Not everyone may define roles.
    let tester_api = {
        let request = Request::post("/api/v1/auth/token")
            .header("authorization", basic("tester", &app.tester_key))
            .body(Body::empty())
            .unwrap();
        app.send_anonymous(request).await.json()["token"].as_str().unwrap().to_owned()
    };
    let role = serde_json::json!({"name": "mine", "permissions": [{"actions": ["push"], "stages": ["dev"], "repositories": ["**"]}]});
    assert_eq!(api(&app, Method::POST, "/api/v1/roles", &tester_api, role).await.status, StatusCode::FORBIDDEN);
    // The definition is in the store: a restart over the same data still has it.
    let config = app.app.config.clone();
    let reopened = TestApp::with_config(config).await;
    let token = token_as(&reopened, "reader", &key, &["repository:prod/payments/api:pull"]).await.unwrap();
    assert_eq!(granted(&token).as_array().unwrap().len(), 1);
}

/// Roles stored before repository patterns had one grammar were Cedar `like` patterns, where `*`
/// also matched `/`. A whole last segment `*` is read as it was meant (`**`); a stored role the
/// grammar refuses grants nothing, and the server still starts.
#[tokio::test]
async fn roles_stored_under_the_old_pattern_reading_keep_their_meaning_or_grant_nothing() {
    let app = TestApp::new("").await;
    let admin = admin_api_token(&app).await;
    for (name, pattern) in [("payments-reader", "payments/**"), ("odd-reader", "payments/**")] {
        let role = serde_json::json!({"name": name,
            "permissions": [{"actions": ["pull"], "stages": ["*"], "repositories": [pattern]}]});
        let defined = api(&app, Method::POST, "/api/v1/roles", &admin, role).await;
        assert_eq!(defined.status, StatusCode::CREATED, "{:?}", defined.body);
    }
    let mut keys = Vec::new();
    for (reader, role) in [("reader", "payments-reader"), ("odd", "odd-reader")] {
        let created = api(
            &app,
            Method::POST,
            "/api/v1/principals",
            &admin,
            serde_json::json!({"name": reader, "kind": "service_account", "roles": [role]}),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        keys.push(created.json()["api_key"].as_str().unwrap().to_owned());
    }
    // The rows as an older server wrote them.
    let db = app.app.config.data_dir.join("metadata.db");
    for (name, old) in [("payments-reader", "payments/*"), ("odd-reader", "pay*ments")] {
        let sql =
            format!("UPDATE roles SET definition = replace(definition, 'payments/**', '{old}') WHERE name = '{name}'");
        let out = std::process::Command::new("sqlite3").arg(&db).arg(&sql).output().expect("sqlite3 runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let config = app.app.config.clone();
    let reopened = TestApp::with_config(config).await;
    let scopes = ["repository:prod/payments/api:pull"];
    let token = token_as(&reopened, "reader", &keys[0], &scopes).await.unwrap();
    assert_eq!(granted(&token).as_array().unwrap().len(), 1, "`payments/*` still reads every repository below");
    let token = token_as(&reopened, "odd", &keys[1], &scopes).await.unwrap();
    assert_eq!(granted(&token), serde_json::json!([]), "a role the grammar refuses grants nothing");
}

#[tokio::test]
async fn ci_provider_keys_are_fetched_from_their_url() {
    let dir = tempfile::tempdir().unwrap();
    let (key, jwks_path) = ci_provider(dir.path());
    let jwks = std::fs::read_to_string(&jwks_path).unwrap();
    // The provider's `jwks_uri`, served on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/jwks", axum::routing::get(move || async move { jwks }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let rules = r#"
[[access.claim_rules]]
issuer = "https://ci.example"
claims = { repository = "acme/payments-api" }
service_account = "ci-payments"
"#;
    let config = format!(
        "[[access.oidc]]\nissuer = \"https://ci.example\"\naudience = \"airlock\"\njwks_url = \"http://{addr}/jwks\"\n{rules}"
    );
    let app = TestApp::new(&config).await;
    let admin = admin_api_token(&app).await;
    api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "ci-payments", "kind": "service_account", "roles": ["ci"]}),
    )
    .await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({"iss": "https://ci.example", "aud": "airlock", "sub": "ci", "repository": "acme/payments-api",
        "iat": now, "nbf": now, "exp": now + 300});
    let jwt = ci_token(&key, claims.clone());
    let token = token_as(&app, "oidc", &jwt, &["repository:dev/payments/api:pull"]).await.unwrap();
    assert_eq!(granted(&token).as_array().unwrap().len(), 1);

    // A provider that cannot be reached leaves its tokens refused; the server still starts.
    let config = format!(
        "[[access.oidc]]\nissuer = \"https://ci.example\"\naudience = \"airlock\"\njwks_url = \"http://127.0.0.1:9/jwks\"\n{rules}"
    );
    let cut_off = TestApp::new(&config).await;
    let admin = admin_api_token(&cut_off).await;
    api(
        &cut_off,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "ci-payments", "kind": "service_account", "roles": ["ci"]}),
    )
    .await;
    assert_eq!(
        token_as(&cut_off, "oidc", &jwt, &["repository:dev/payments/api:pull"]).await.unwrap_err().status,
        StatusCode::UNAUTHORIZED
    );
    // Exactly one source of keys per provider.
    let both = format!(
        "[[access.oidc]]\nissuer = \"x\"\naudience = \"a\"\njwks = \"{}\"\njwks_url = \"http://{addr}/jwks\"\n",
        jwks_path.display()
    );
    assert!(airlock_server::Config::from_toml(&both, "test").is_err());
}

#[tokio::test]
async fn a_role_defined_on_one_replica_is_in_force_on_another_at_once() {
    let a = TestApp::new("").await;
    let b = TestApp::with_config(a.app.config.clone()).await;
    let role = serde_json::json!({"name": "payments-reader", "description": "reads payments everywhere",
        "permissions": [{"actions": ["pull"], "stages": ["*"], "repositories": ["payments/**"]}]});
    let defined = api(&a, Method::POST, "/api/v1/roles", &admin_api_token(&a).await, role.clone()).await;
    assert_eq!(defined.status, StatusCode::CREATED, "{:?}", defined.body);
    // The other replica binds it at once, and refuses to define it again.
    let admin_b = admin_api_token(&b).await;
    let created = api(
        &b,
        Method::POST,
        "/api/v1/principals",
        &admin_b,
        serde_json::json!({"name": "reader", "kind": "service_account", "roles": ["payments-reader"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(api(&b, Method::POST, "/api/v1/roles", &admin_b, role).await.status, StatusCode::BAD_REQUEST);
    let key = created.json()["api_key"].as_str().unwrap().to_owned();
    let token = token_as(&b, "reader", &key, &["repository:prod/payments/api:pull"]).await.unwrap();
    assert_eq!(
        granted(&token),
        serde_json::json!([{"type": "repository", "name": "prod/payments/api", "actions": ["pull"]}])
    );
}
