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
    // A user with a generated password, shown once.
    let created = api(
        &app,
        Method::POST,
        "/api/v1/principals",
        &admin,
        serde_json::json!({"name": "carol", "kind": "user", "roles": ["release-approver"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let password = created.json()["password"].as_str().unwrap().to_owned();
    let listed = api(&app, Method::GET, "/api/v1/principals", &admin, serde_json::json!(null)).await;
    let text = String::from_utf8_lossy(&listed.body).to_string();
    assert!(
        !text.contains(&password) && !text.contains("argon2") && !text.contains("hash"),
        "no secret is listed: {text}"
    );
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
