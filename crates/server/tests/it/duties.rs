//! No person acts as two: users are enrolled by the person, never by whoever creates them;
//! privileged grants take a second access admin; duties are separated over bound and granted
//! roles. Each test performs an attack and checks that it fails.

use airlock_test_support::{ADMIN_PASSWORD, ADMIN_TOTP, Reply, TestApp, oci::Image};
use http::{Method, StatusCode};
use serde_json::json;

use crate::promotion::Fixture;

const REPO: &str = "dev/payments/api";

impl Fixture {
    /// An API token of `name` with a second factor proved now (the clock moves past the last
    /// step, so a code is never reused).
    async fn fresh(&self, name: &str, password: &str, secret: &[u8]) -> String {
        self.clock.advance(31_000);
        self.token(name, password, Some(secret)).await
    }

    async fn admin(&self) -> String {
        airlock_test_support::enroll_admin(&self.app.app).await;
        self.fresh("admin", ADMIN_PASSWORD, &ADMIN_TOTP).await
    }

    /// A second access admin, `ada`, made while `admin` is the only one (so at once); returns
    /// her TOTP secret.
    async fn second_admin(&self) -> Vec<u8> {
        let admin = self.admin().await;
        self.app.create_user(&admin, "ada", &["access-admin"], Some("ada@example.com")).await
    }

    async fn create(&self, token: &str, body: serde_json::Value) -> Reply {
        self.api(Method::POST, "/api/v1/principals", token, body).await
    }

    async fn approve_access(&self, token: &str, id: &str) -> Reply {
        self.api(Method::POST, &format!("/api/v1/access/requests/{id}/approve"), token, json!(null)).await
    }

    async fn roles_of(&self, name: &str) -> Vec<String> {
        let admin = self.admin().await;
        let all = self.api(Method::GET, "/api/v1/principals", &admin, json!(null)).await.json();
        let me = all.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
        me["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect()
    }

    /// An image with provenance in staging, and a pending request to promote it to prod.
    async fn pending_prod(&self, tag: &str) -> String {
        let image = Image::new(&[("app", tag.as_bytes())]);
        self.app.push_image(REPO, &image, tag).await;
        self.provenance(&image, "ci-bot").await;
        let ci = self.tester_token().await;
        let staged = self.promote(&ci, REPO, tag, "staging", Some(tag)).await;
        assert_eq!(staged.json()["status"], "promoted", "{:?}", staged.body);
        let pending = self.promote(&ci, "staging/payments/api", tag, "prod", Some(tag)).await;
        assert_eq!(pending.json()["status"], "pending", "{:?}", pending.body);
        pending.json()["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn access_admin_cannot_approve_through_users_it_created() {
    let f = Fixture::new("").await;
    f.second_admin().await;
    let admin = f.admin().await;

    // The old way in: a password of the admin's choosing. Refused.
    let chosen = f
        .create(
            &admin,
            json!({"name": "u0", "kind": "user", "roles": ["developer"], "password": "admin-knows-this-one"}),
        )
        .await;
    assert_eq!(chosen.status, StatusCode::BAD_REQUEST, "{:?}", chosen.body);
    assert!(chosen.error_message().contains("set by its owner"), "{:?}", chosen.body);

    // Two approvers of the admin's making: the role waits for a second access admin.
    let mut minted = Vec::new();
    for name in ["u1", "u2"] {
        let created = f
            .create(
                &admin,
                json!({"name": name, "kind": "user", "roles": ["release-approver"], "email": format!("{name}@example.com")}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.json()["principal"]["roles"], json!([]), "{:?}", created.body);
        let pending = created.json()["pending"][0].clone();
        assert_eq!((pending["kind"].as_str(), pending["status"].as_str()), (Some("bind"), Some("pending")));
        // The admin holds the enrollment token it was handed, and uses it.
        let secret =
            f.app.enroll(created.json()["enrollment_token"].as_str().unwrap(), &format!("{name}-password-123")).await;
        minted.push((name, secret, pending["id"].as_str().unwrap().to_owned()));
    }
    // It cannot approve its own request for the role.
    for (_, _, grant) in &minted {
        let own = f.approve_access(&admin, grant).await;
        assert_eq!(own.status, StatusCode::FORBIDDEN, "{:?}", own.body);
        assert!(own.error_message().contains("access.approve"), "{:?}", own.body);
    }
    // Its users cannot approve a promotion.
    let id = f.pending_prod("1.0.0").await;
    for (name, secret, _) in &minted {
        let token = f.fresh(name, &format!("{name}-password-123"), secret).await;
        let refused = f.approve(&token, &id).await;
        // Without the role it may not even see the promotion.
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{name}: {:?}", refused.body);
    }
    let view = f.api(Method::GET, &format!("/api/v1/promotions/{id}"), &f.tester_token().await, json!(null)).await;
    assert_eq!(view.json()["status"], "pending", "{:?}", view.body);

    // Nor can it make one account hold every duty at once.
    let everything = f
        .create(
            &admin,
            json!({"name": "all", "kind": "user", "email": "all@example.com",
                   "roles": ["access-admin", "release-approver", "developer", "operator", "break-glass"]}),
        )
        .await;
    assert_eq!(everything.status, StatusCode::BAD_REQUEST, "{:?}", everything.body);
    assert!(everything.error_message().contains("separation of duties"), "{:?}", everything.body);
}

#[tokio::test]
async fn privileged_grants_take_a_second_access_admin() {
    let f = Fixture::new("").await;
    let ada = f.second_admin().await;
    let admin = f.admin().await;
    let ada_token = f.fresh("ada", "ada-password-123", &ada).await;

    // A binding asked for by one admin is approved by the other.
    let carol = f.app.create_user(&admin, "carol", &["developer"], Some("carol@example.com")).await;
    let asked =
        f.api(Method::POST, "/api/v1/principals/carol/roles", &admin, json!({"role": "release-approver"})).await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{:?}", asked.body);
    let grant = asked.json()["pending"]["id"].as_str().unwrap().to_owned();
    assert!(!f.roles_of("carol").await.contains(&"release-approver".to_owned()));
    let ada_token = {
        let approved = f.approve_access(&ada_token, &grant).await;
        assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
        assert_eq!(approved.json()["status"], "active");
        ada_token
    };
    assert!(f.roles_of("carol").await.contains(&"release-approver".to_owned()));
    let _ = carol;

    // A privileged just-in-time grant takes two approvals by access admins.
    let dev = f.app.create_user(&admin, "dev", &["developer"], Some("dev@example.com")).await;
    let dev_token = f.fresh("dev", "dev-password-123", &dev).await;
    let asked = f
        .api(
            Method::POST,
            "/api/v1/access/requests",
            &dev_token,
            json!({"role": "key-admin", "duration": "30m", "reason": "rotate the ci key"}),
        )
        .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{:?}", asked.body);
    let jit = asked.json()["id"].as_str().unwrap().to_owned();
    let admin = f.admin().await;
    let first = f.approve_access(&admin, &jit).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(
        (first.json()["status"].as_str(), first.json()["approved_by"].as_str()),
        (Some("pending"), Some("admin"))
    );
    let again = f.approve_access(&admin, &jit).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "the same admin twice: {:?}", again.body);
    let second = f.approve_access(&ada_token, &jit).await;
    assert_eq!(second.json()["status"], "active", "{:?}", second.body);

    // One admin cannot drop the instance back to a single admin: disabling the other waits.
    let disable = f.api(Method::POST, "/api/v1/principals/ada/disable", &admin, json!({})).await;
    assert_eq!(disable.status, StatusCode::ACCEPTED, "{:?}", disable.body);
    let whoami = f.api(Method::GET, "/api/v1/auth/whoami", &ada_token, json!(null)).await;
    assert_eq!(whoami.status, StatusCode::OK, "ada still works: {:?}", whoami.body);
    assert!(whoami.json().get("warnings").is_none(), "two admins: {:?}", whoami.body);

    // A lost second factor: a reset by one admin, approved by the other, who gets the token.
    let reset = f.api(Method::POST, "/api/v1/principals/dev/reset", &admin, json!({})).await;
    assert_eq!(reset.status, StatusCode::ACCEPTED, "{:?}", reset.body);
    let reset_id = reset.json()["pending"]["id"].as_str().unwrap().to_owned();
    let done = f.approve_access(&ada_token, &reset_id).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    let token = done.json()["enrollment_token"].as_str().unwrap().to_owned();
    f.clock.advance(31_000);
    let old = f
        .app
        .send_anonymous(
            http::Request::post("/api/v1/auth/token")
                .header("authorization", airlock_test_support::basic("dev", "dev-password-123"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "the old password is gone");
    f.app.enroll(&token, "dev-new-password-1").await;
}

#[tokio::test]
async fn a_lone_admin_grants_privileged_roles_only_with_a_second_factor_and_says_so() {
    let app = TestApp::new("").await;
    let login = |otp: Option<String>| {
        let app = &app;
        async move {
            let mut request = http::Request::post("/api/v1/auth/token")
                .header("authorization", airlock_test_support::basic("admin", ADMIN_PASSWORD));
            if let Some(code) = otp {
                request = request.header("x-airlock-otp", code);
            }
            app.send_anonymous(request.body(axum::body::Body::empty()).unwrap()).await.json()["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let call = |token: String, method: Method, uri: &'static str, body: serde_json::Value| {
        let app = &app;
        async move {
            app.send_anonymous(
                http::Request::builder()
                    .method(method)
                    .uri(uri)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
        }
    };
    let admin = login(None).await;
    let whoami = call(admin.clone(), Method::GET, "/api/v1/auth/whoami", json!(null)).await;
    assert!(whoami.json()["warnings"][0].as_str().unwrap().contains("single access admin"), "{:?}", whoami.body);
    let ready = app.get("/readyz").await;
    assert!(String::from_utf8_lossy(&ready.body).contains("single access admin"), "{:?}", ready.body);

    let body = json!({"name": "alex", "kind": "user", "roles": ["release-approver"], "email": "alex@example.com"});
    let refused = call(admin.clone(), Method::POST, "/api/v1/principals", body.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert!(refused.error_message().contains("second factor"), "{:?}", refused.body);

    airlock_test_support::enroll_admin(&app.app).await;
    let admin = login(None).await;
    let created = call(admin, Method::POST, "/api/v1/principals", body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.json()["principal"]["roles"], json!(["release-approver"]));
    let entries = app.get("/api/v1/log/entries?start=0").await.json();
    let logged = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["event"]["type"] == "access.principal.create" && e["event"]["details"]["principal"] == "alex")
        .cloned()
        .unwrap();
    assert_eq!(logged["event"]["details"]["bootstrap"], true, "{logged}");
}

#[tokio::test]
async fn enrollment_tokens_work_once_for_their_user_and_expire() {
    let f = Fixture::new("").await;
    let admin = f.admin().await;
    let created = f
        .create(&admin, json!({"name": "erin", "kind": "user", "roles": ["developer"], "email": "erin@example.com"}))
        .await;
    let token = created.json()["enrollment_token"].as_str().unwrap().to_owned();
    let enroll = |token: String, password: &'static str| {
        let app = &f.app;
        async move {
            let body = json!({"token": token, "password": password}).to_string();
            app.send_anonymous(
                http::Request::post("/api/v1/auth/enroll")
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body))
                    .unwrap(),
            )
            .await
        }
    };
    // Forged, altered and other users' tokens are refused alike.
    let (secret, name) = token.trim_start_matches("ale_").split_once('.').unwrap();
    for forged in [
        format!("ale_{}.{name}", "A".repeat(43)),
        format!("ale_{secret}.admin"),
        format!("ale_{secret}x.{name}"),
        "not a token".to_owned(),
    ] {
        let reply = enroll(forged.clone(), "a long enough password").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{forged}: {:?}", reply.body);
        assert!(reply.error_message().contains("invalid, spent or expired"), "{:?}", reply.body);
    }
    assert_eq!(enroll(token.clone(), "short").await.status, StatusCode::BAD_REQUEST, "too short a password");
    assert_eq!(enroll(token.clone(), "erin-own-password").await.status, StatusCode::OK);
    assert_eq!(enroll(token, "someone-elses-password").await.status, StatusCode::BAD_REQUEST, "spent");

    let late = f
        .create(&admin, json!({"name": "finn", "kind": "user", "roles": ["developer"], "email": "finn@example.com"}))
        .await;
    let late = late.json()["enrollment_token"].as_str().unwrap().to_owned();
    f.clock.advance(3 * 24 * 3600 * 1000 + 1000);
    assert_eq!(enroll(late, "finn-own-password").await.status, StatusCode::BAD_REQUEST, "expired");
}

#[tokio::test]
async fn jit_grant_cannot_join_conflicting_duties() {
    let f = Fixture::new("").await;
    let admin = f.admin().await;
    let bob = f.app.create_user(&admin, "bob", &["developer"], Some("bob@example.com")).await;
    let bob_token = f.fresh("bob", "bob-password-123", &bob).await;
    let asked = f
        .api(
            Method::POST,
            "/api/v1/access/requests",
            &bob_token,
            json!({"role": "key-admin", "duration": "1h", "reason": "rotate the ci key"}),
        )
        .await;
    let id = asked.json()["id"].as_str().unwrap().to_owned();
    let approved = f.approve_access(&admin, &id).await;
    assert_eq!(approved.json()["status"], "active", "{:?}", approved.body);

    // Bound roles alone would allow it; the grant in force forbids it.
    let admin = f.admin().await;
    let joined = f.api(Method::POST, "/api/v1/principals/bob/roles", &admin, json!({"role": "release-approver"})).await;
    assert_eq!(joined.status, StatusCode::BAD_REQUEST, "{:?}", joined.body);
    assert!(joined.error_message().contains("key-admin"), "{:?}", joined.body);
    assert!(!f.roles_of("bob").await.contains(&"release-approver".to_owned()));
}

#[tokio::test]
async fn a_privileged_service_accounts_key_takes_a_second_access_admin() {
    let f = Fixture::new("").await;
    let ada = f.second_admin().await;
    let admin = f.admin().await;
    let ada_token = f.fresh("ada", "ada-password-123", &ada).await;
    // A key admin service account: the role waits for ada, who approves it.
    let created = f.create(&admin, json!({"name": "signer", "kind": "service_account", "roles": ["key-admin"]})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let old_key = created.json()["api_key"].as_str().unwrap().to_owned();
    let grant = created.json()["pending"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(f.approve_access(&ada_token, &grant).await.status, StatusCode::OK);
    // Rotating its key would hand the admin a key admin's credential: it waits for ada too, who
    // receives the new key.
    let rotated = f.api(Method::POST, "/api/v1/principals/signer/api-key", &admin, json!({})).await;
    assert_eq!(rotated.status, StatusCode::ACCEPTED, "{:?}", rotated.body);
    assert!(rotated.json().get("api_key").is_none(), "{:?}", rotated.body);
    let id = rotated.json()["pending"]["id"].as_str().unwrap().to_owned();
    let own = f.approve_access(&admin, &id).await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{:?}", own.body);
    let approved = f.approve_access(&ada_token, &id).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let new_key = approved.json()["api_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    assert_eq!(f.token_status("signer", &old_key).await, StatusCode::UNAUTHORIZED, "the old key is dead");
    assert_eq!(f.token_status("signer", &new_key).await, StatusCode::OK);
    // An unprivileged account's key still rotates at once.
    f.create(&admin, json!({"name": "builder", "kind": "service_account", "roles": ["ci"]})).await;
    let rotated = f.api(Method::POST, "/api/v1/principals/builder/api-key", &admin, json!({})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    assert!(rotated.json()["api_key"].as_str().unwrap().starts_with("alk_"));
}

impl Fixture {
    async fn token_status(&self, name: &str, secret: &str) -> StatusCode {
        let request = http::Request::post("/api/v1/auth/token")
            .header("authorization", airlock_test_support::basic(name, secret))
            .body(axum::body::Body::empty())
            .unwrap();
        self.app.send_anonymous(request).await.status
    }
}

#[tokio::test]
async fn a_principal_holding_conflicting_duties_from_before_is_named_and_denied() {
    let app = TestApp::new("").await;
    // Stored before the conflict was configured (straight through the store).
    let roles = ["key-admin".to_owned(), "deployer".to_owned()];
    airlock_test_support::legacy_user(&app.app, "olga", &roles, "olga-password-123").await;
    let ready = String::from_utf8_lossy(&app.get("/readyz").await.body).to_string();
    assert!(ready.contains("`olga`") && ready.contains("denied"), "{ready}");
    let token = app
        .send_anonymous(
            http::Request::get("/token?service=airlock&scope=repository:prod/app:pull")
                .header("authorization", airlock_test_support::basic("olga", "olga-password-123"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.body);
    let jwt = token.json()["token"].as_str().unwrap().to_owned();
    let payload = jwt.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    // A deployer pulls from prod; holding key-admin too, nothing is granted.
    assert_eq!(claims["access"], json!([]), "nothing granted: {claims}");
}
