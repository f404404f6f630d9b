//! The in-process app over the server crate: [`TestApp`] with `oneshot` requests, and
//! [`spawn_app`] on port 0, each over a fresh data directory.

use std::net::SocketAddr;
use std::path::Path;

use crate::{ManualClock, oci};

use airlock_server::{App, Config, Server};
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A config for tests: defaults, a data directory under `dir`, port 0, no background scrub.
pub fn test_config(dir: &Path, extra_toml: &str) -> Config {
    let text = format!("listen = \"127.0.0.1:0\"\n{extra_toml}\n[scrub]\nenabled = false\n");
    let (mut config, unknown) = Config::from_toml(&text, "test").unwrap_or_else(|e| panic!("test config: {e}"));
    assert!(unknown.is_empty(), "unknown test config keys: {unknown:?}");
    config.data_dir = dir.join("data");
    config
}

/// The service account every [`TestApp`] creates, and the roles it holds: push and pull in
/// `dev`, pull everywhere.
pub const TESTER: &str = "tester";
pub const TESTER_ROLES: [&str; 2] = ["developer", "auditor"];
/// The service account that applies trust roots in tests, and its role: `trust.sign` is a key
/// admin's duty, and nobody applies a root anonymously.
pub const KEY_ADMIN: &str = "key-keeper";
pub const KEY_ADMIN_ROLE: &str = "key-admin";
/// The bootstrap administrator's password in tests.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// An in-process app over a fresh data directory. Requests to `/v2` carry a registry token of
/// the `tester` service account for the repository they name (fetched from `/token` and
/// cached), unless they set their own `Authorization`; [`TestApp::send_anonymous`] sends none.
#[derive(Debug)]
pub struct TestApp {
    pub app: App,
    pub router: Router,
    pub dir: tempfile::TempDir,
    /// The `tester` service account's API key.
    pub tester_key: String,
    tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// The bootstrap administrator acting, as the tests' own setup does what an operator would do
/// through the API.
pub fn admin_acting(app: &App) -> airlock_core::identity::Acting {
    app.state.callers.admin_acting().expect("admin acting")
}

/// The bootstrap administrator's TOTP secret in tests ([`enroll_admin`]): a lone admin grants
/// nothing privileged without a second factor.
pub const ADMIN_TOTP: [u8; 20] = *b"airlock-test-admin-2";

/// Enrolls [`ADMIN_TOTP`] as the bootstrap administrator's second factor, unless it has one
/// (enrolling raises its epoch, which would end its tokens).
pub async fn enroll_admin(app: &App) {
    let admin = airlock_model::PrincipalId::parse(airlock_server::caller::ADMIN).expect("admin name");
    let record = app.state.callers.identity().principal(&admin).await.expect("admin lookup").expect("admin exists");
    if record.totp_secret.is_some() {
        return;
    }
    let change = airlock_core::ports::PrincipalChange::SetTotp { secret: Some(hex::encode(ADMIN_TOTP)) };
    app.state
        .callers
        .identity()
        .apply(&airlock_core::audit::Actor::system(), &admin, change)
        .await
        .expect("admin enrolls a second factor")
        .expect("admin exists");
}

/// Stores user `name` holding `roles` with no e-mail, straight through the store, as an account
/// made before approvers needed one would be, and enrolls it with `password`; returns its TOTP
/// secret. For testing what the engine does with such rows.
pub async fn legacy_user(app: &App, name: &str, roles: &[String], password: &str) -> Vec<u8> {
    let id = airlock_model::PrincipalId::parse(name).expect("user name");
    let token = format!("{}{}.{name}", airlock_core::identity::ENROLLMENT_PREFIX, "A".repeat(43));
    let now = app.clock.now();
    let record = airlock_core::ports::PrincipalRecord {
        enrollment_hash: Some(airlock_core::identity::enrollment_token_hash(&token)),
        enrollment_expires_at: Some(now.plus_millis(3_600_000)),
        ..airlock_core::ports::PrincipalRecord::new(&id, airlock_model::PrincipalKind::User, roles, now)
    };
    let event = airlock_core::audit::Event::allowed(
        airlock_core::audit::EventKind::PrincipalCreate,
        &airlock_core::audit::Actor::system(),
        now,
        airlock_core::audit::Subject::default(),
    )
    .with_detail("principal", serde_json::json!(name));
    assert!(app.state.registry.store().create_principal(&record, &event).await.expect("legacy user stored"));
    let (_, secret, _) = app.state.callers.enroll(&token, password.to_owned()).await.expect("legacy user enrolls");
    crate::promotion::base32_decode(&secret)
}

/// Creates the `tester` service account, returning its API key.
pub async fn create_tester(app: &App) -> String {
    let id = airlock_model::PrincipalId::parse(TESTER).expect("tester name");
    let roles: Vec<String> = TESTER_ROLES.iter().map(|r| (*r).to_owned()).collect();
    app.state
        .callers
        .identity()
        .create_service_account(&admin_acting(app), &id, &roles, None)
        .await
        .expect("tester service account")
        .secret
}

/// `Authorization: Basic ...` for `name` and `secret`.
pub fn basic(name: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{name}:{secret}")))
}

/// The scopes a `/v2` request needs, as the token request would name them: every action on the
/// repository in its path (and pull on a mount's source); the catalog for `/v2/_catalog`.
pub fn scopes_for(uri: &http::Uri) -> Vec<String> {
    let path = uri.path();
    // What an artifact holds is read with pull on its repository.
    if let Some(rest) = path.strip_prefix("/api/v1/artifacts/")
        && let Some(end) = rest.find("/sha256:")
    {
        return vec![format!("repository:{}:pull", &rest[..end])];
    }
    let Some(rest) = path.strip_prefix("/v2/") else { return Vec::new() };
    if rest.starts_with("_catalog") {
        return vec!["registry:catalog:*".to_owned()];
    }
    let end = ["/blobs/", "/manifests/", "/tags/", "/referrers/"].iter().filter_map(|m| rest.find(m)).min();
    let Some(end) = end else { return Vec::new() };
    let mut scopes = vec![format!("repository:{}:pull,push,delete", &rest[..end])];
    if let Some(query) = uri.query()
        && let Some(from) = query.split('&').find_map(|kv| kv.strip_prefix("from="))
    {
        scopes.push(format!("repository:{from}:pull"));
    }
    scopes
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The first OCI error code in the body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or("").to_owned()
    }

    /// The message of an `/api/v1` error body.
    pub fn error_message(&self) -> String {
        self.json()["error"]["message"].as_str().unwrap_or("").to_owned()
    }
}

impl TestApp {
    /// A fresh app with default config plus `extra_toml`.
    pub async fn new(extra_toml: &str) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path(), extra_toml);
        config.bootstrap_password = Some(ADMIN_PASSWORD.to_owned());
        TestApp::with_config_in(config, dir).await
    }

    /// An app over an existing configuration (to reopen a data directory, say). The temp dir
    /// it holds is unrelated to `config.data_dir`.
    pub async fn with_config(config: Config) -> TestApp {
        TestApp::with_config_in(config, tempfile::tempdir().expect("temp dir")).await
    }

    /// An app over an existing configuration (to reopen a data directory) whose clock the test
    /// moves.
    pub async fn with_config_and_clock(config: Config, clock: ManualClock) -> TestApp {
        TestApp::open_in(config, tempfile::tempdir().expect("temp dir"), std::sync::Arc::new(clock)).await
    }

    /// A fresh app whose clock the test moves.
    pub async fn with_clock(extra_toml: &str, clock: ManualClock) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = test_config(dir.path(), extra_toml);
        TestApp::open_in(config, dir, std::sync::Arc::new(clock)).await
    }

    async fn with_config_in(config: Config, dir: tempfile::TempDir) -> TestApp {
        TestApp::open_in(config, dir, std::sync::Arc::new(airlock_server::SystemClock)).await
    }

    async fn open_in(
        mut config: Config,
        dir: tempfile::TempDir,
        clock: std::sync::Arc<dyn airlock_core::ports::Clock>,
    ) -> TestApp {
        if config.bootstrap_password.is_none() {
            config.bootstrap_password = Some(ADMIN_PASSWORD.to_owned());
        }
        let app = App::open_with_clock(config, clock).await.expect("app opens");
        app.announce_start().await.expect("start is logged");
        // A reopened data directory already holds the tester; its key is then unknown here,
        // so it gets a new one.
        let tester = airlock_model::PrincipalId::parse(TESTER).expect("tester name");
        let tester_key = match app.state.callers.identity().principal(&tester).await.expect("principal lookup") {
            None => create_tester(&app).await,
            Some(_) => {
                app.state
                    .callers
                    .identity()
                    .rotate_key(&admin_acting(&app), &tester, None)
                    .await
                    .expect("tester key rotates")
                    .1
                    .expect("an unprivileged account's key rotates at once")
                    .0
            }
        };
        let router = app.router();
        TestApp { app, router, dir, tester_key, tokens: Default::default() }
    }

    /// A registry token for `tester` granting `access` (`(repository, actions)`), signed with
    /// the server's own key and bypassing `/token`: what a stolen signing key could forge. For
    /// testing the registry's own refusals behind the token check.
    pub async fn forge_token(&self, access: &[(&str, &[&str])]) -> String {
        use airlock_access::token::{Access, Claims, PrincipalKind, TokenKey, TokenKind, mint};
        use base64::Engine as _;
        let text = std::fs::read_to_string(self.app.config.data_dir.join("auth/token.key")).expect("token key");
        let der = base64::engine::general_purpose::STANDARD.decode(text.trim()).expect("token key is base64");
        let key = TokenKey::from_pkcs8_der(&der).expect("token key parses");
        let tester = airlock_model::PrincipalId::parse(TESTER).expect("tester name");
        let record =
            self.app.state.callers.identity().principal(&tester).await.expect("lookup").expect("tester exists");
        let now = u64::try_from(self.app.clock.now().as_millis() / 1000).expect("clock after 1970");
        let mut claims = Claims::new(
            self.app.config.public_url.trim_end_matches('/'),
            "airlock",
            TESTER,
            PrincipalKind::ServiceAccount,
            record.epoch,
            TokenKind::Registry,
            now,
        );
        claims.access = access
            .iter()
            .map(|(name, actions)| Access {
                kind: "repository".to_owned(),
                name: (*name).to_owned(),
                actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            })
            .collect();
        mint(&key, &claims).expect("token mints")
    }

    /// An API token of [`KEY_ADMIN`], a service account holding `key-admin` (created at the
    /// first call), issued at the app's current time.
    pub async fn key_admin_token(&self) -> String {
        let auth = &self.app.state.callers;
        let id = airlock_model::PrincipalId::parse(KEY_ADMIN).expect("key admin name");
        let record = match auth.identity().principal(&id).await.expect("principal lookup") {
            Some(record) => record,
            None => {
                enroll_admin(&self.app).await;
                auth.identity()
                    .create_service_account(&admin_acting(&self.app), &id, &[KEY_ADMIN_ROLE.to_owned()], None)
                    .await
                    .expect("key admin service account")
                    .record
            }
        };
        auth.issue_api_token(&record, None).expect("key admin token").token
    }

    /// Completes the enrollment of the user a one-time `token` names, with `password`; returns
    /// the TOTP secret it was given.
    pub async fn enroll(&self, token: &str, password: &str) -> Vec<u8> {
        let body = serde_json::json!({"token": token, "password": password}).to_string();
        let request = Request::post("/api/v1/auth/enroll")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("enroll request");
        let reply = self.send_anonymous(request).await;
        assert_eq!(reply.status, StatusCode::OK, "enroll: {:?}", reply.body);
        crate::promotion::base32_decode(reply.json()["secret"].as_str().expect("totp secret"))
    }

    /// Creates user `name` through the API as the access admin holding the API token `admin`,
    /// with `roles` and `email`, and enrolls it with the password `<name>-password-123`; returns
    /// its TOTP secret. Privileged roles must take effect at once (a single admin).
    pub async fn create_user(&self, admin: &str, name: &str, roles: &[&str], email: Option<&str>) -> Vec<u8> {
        enroll_admin(&self.app).await;
        let body = serde_json::json!({"name": name, "kind": "user", "roles": roles, "email": email}).to_string();
        let request = Request::post("/api/v1/principals")
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("create request");
        let created = self.send_anonymous(request).await;
        assert_eq!(created.status, StatusCode::CREATED, "create `{name}`: {:?}", created.body);
        let token = created.json()["enrollment_token"].as_str().expect("enrollment token").to_owned();
        self.enroll(&token, &format!("{name}-password-123")).await
    }

    /// `PUT /api/v1/trust/root` with `document`, as [`KEY_ADMIN`].
    pub async fn put_root(&self, document: impl Into<Bytes>) -> Reply {
        let bearer = format!("Bearer {}", self.key_admin_token().await);
        self.send(Method::PUT, "/api/v1/trust/root", &[("authorization", &bearer)], document).await
    }

    /// A registry token of `tester` for `scopes`, from `/token`; empty when `/token` refuses.
    pub async fn token(&self, scopes: &[String]) -> String {
        let key = scopes.join(" ");
        if let Some(token) = self.tokens.lock().expect("token cache").get(&key) {
            return token.clone();
        }
        let query: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
        let request = Request::get(format!("/token?service=airlock&{}", query.join("&")))
            .header("authorization", basic(TESTER, &self.tester_key))
            .body(Body::empty())
            .expect("token request builds");
        let reply = self.send_anonymous(request).await;
        // A scope `/token` refuses (an invalid name) gets no token: the request then goes
        // without one, and the registry says what is wrong with it.
        if reply.status != StatusCode::OK {
            return String::new();
        }
        let token = reply.json()["token"].as_str().expect("token in reply").to_owned();
        self.tokens.lock().expect("token cache").insert(key, token.clone());
        token
    }

    /// Sends one request through the router.
    pub async fn send(&self, method: Method, uri: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Body::from(body.into())).expect("request builds");
        self.send_request(request).await
    }

    /// Sends a prepared request, with `tester`'s token for what it names (see [`TestApp`]).
    pub async fn send_request(&self, mut request: Request<Body>) -> Reply {
        if !request.headers().contains_key(http::header::AUTHORIZATION) {
            let scopes = scopes_for(request.uri());
            if !scopes.is_empty() || request.uri().path().trim_end_matches('/') == "/v2" {
                let token = self.token(&scopes).await;
                if !token.is_empty() {
                    let value = http::HeaderValue::from_str(&format!("Bearer {token}")).expect("token is ASCII");
                    request.headers_mut().insert(http::header::AUTHORIZATION, value);
                }
            }
        }
        self.send_anonymous(request).await
    }

    /// Sends a prepared request as it is, adding no credentials.
    pub async fn send_anonymous(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("router is infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body reads").to_bytes();
        Reply { status: parts.status, headers: parts.headers, body }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, &[], Bytes::new()).await
    }

    /// Pushes a blob monolithically and asserts 201.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = oci::digest(bytes);
        let reply = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
                &[("content-length", &bytes.len().to_string())],
                Bytes::copy_from_slice(bytes),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "blob push: {:?}", reply.body);
        digest
    }

    /// Pushes an image's blobs and its manifest under `reference`, asserting success.
    pub async fn push_image(&self, repo: &str, image: &oci::Image, reference: &str) -> Reply {
        for blob in image.blobs() {
            self.push_blob(repo, blob).await;
        }
        let reply = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("content-type", image.media_type())],
                image.manifest.clone(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "manifest push: {:?}", reply.body);
        reply
    }
}

/// A server on a real socket, as `airlock serve` runs it.
#[derive(Debug)]
pub struct SpawnedApp {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// The `tester` service account's API key.
    pub tester_key: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SpawnedApp {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Starts a server on port 0 over a fresh data directory.
pub async fn spawn_app(extra_toml: &str) -> SpawnedApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path(), extra_toml);
    config.bootstrap_password = Some(ADMIN_PASSWORD.to_owned());
    let server = Server::bind(config).await.expect("server binds");
    let tester_key = create_tester(server.app()).await;
    let addr = server.local_addr().expect("bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server
            .run(async move {
                let _ = stopped.await;
            })
            .await;
    });
    SpawnedApp { addr, dir, tester_key, stop: Some(stop), task: Some(task) }
}

/// How many refusals of type `kind` the logged `events` (event documents) put on record: those
/// logged in full, plus those only counted in a `refusal.aggregate` entry (whose `count`
/// includes the one of its window logged in full, unless it is an overflow tally).
pub fn refusals_on_record(events: &[serde_json::Value], kind: &str) -> u64 {
    events
        .iter()
        .map(|e| match e["type"].as_str() {
            Some(t) if t == kind => 1,
            Some("refusal.aggregate") if e["details"]["refused"] == kind => {
                let count = e["details"]["count"].as_u64().unwrap_or(0);
                if e["details"]["overflow"] == true { count } else { count.saturating_sub(1) }
            }
            _ => 0,
        })
        .sum()
}
