//! Wiring: opens the stores under the data directory, builds the router, runs the server and
//! its background tasks until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_api::v1::{self as api, SystemInfo};
use airlock_blob::{FsBlobStore, S3BlobStore, S3Options, S3Url};
use airlock_core::Registry;
use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::{BlobError, BlobStore, Clock, MetadataStore};
use airlock_store::{
    Check, CheckVerdict, PostgresOptions, PostgresStore, PostgresStoreError, SqliteStore, SqliteStoreError,
};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, any, get, on};
use axum::{Json, Router, middleware};
use http::{StatusCode, header};
use tokio::net::TcpListener;

use crate::clock::SystemClock;
use crate::config::{BodyLimits, Config};
use crate::log::{LogKeyError, LogService};
use crate::metrics::{self, Metrics};
use crate::scrub::{self, ScrubError, ScrubReport};
use crate::{api_log, api_trust, client_addr, telemetry, v2};

/// What `/readyz` and the start-up log say while no trust root is in force.
pub const NO_TRUST_ROOT: &str = "no trust root is in force: every attestation is untrusted until a key admin applies one with `airlock trust apply` (or `trust.root` in the config)";

/// What `/readyz` and `airlock whoami` say while one access admin can grant privileged roles
/// alone.
pub const SINGLE_ADMIN: &str = "this instance has a single access admin, whose privileged grants (approvers, key admins, break-glass, access admins) take effect alone, logged `bootstrap: true`; make a second access admin so that they take two people";

/// The metadata database file inside the data directory.
pub const DATABASE_FILE: &str = "metadata.db";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory `{path}`: {source}; check its permissions or pass `--data`")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] SqliteStoreError),
    #[error(transparent)]
    Postgres(#[from] PostgresStoreError),
    #[error("{reason}; the server cannot start over it")]
    Damaged {
        reason: String,
        #[source]
        source: Box<StartError>,
    },
    #[error("cannot start the evaluation threads: {0}; check the process's thread limit (`ulimit -u`)")]
    Threads(#[source] std::io::Error),
    #[error("cannot open blob store under `{path}`: {source}")]
    Blobs {
        path: String,
        #[source]
        source: BlobError,
    },
    #[error("cannot listen on `{addr}`: {source}; is another server running there? pick another with `--listen`")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    LogKey(#[from] LogKeyError),
    #[error("cannot read trust root `{path}`: {source}; fix `trust.root` in the config")]
    TrustRootFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("trust root `{path}` was refused: {source}")]
    TrustRoot {
        path: String,
        #[source]
        source: airlock_core::RegistryError,
    },
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyLoadError),
    #[error(transparent)]
    Auth(#[from] crate::caller::CallerStartError),
    #[error(transparent)]
    Promotion(#[from] crate::promotion::PromotionStartError),
    #[error("cannot record the policy bundles' load in the transparency log: {0}")]
    PolicyLog(String),
    #[error("cannot record the server start in the transparency log: {0}")]
    LogAppend(#[source] airlock_core::RegistryError),
    #[error("cannot check the transparency log: {0}")]
    LogCheck(#[source] crate::log::LogError),
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("{0}")]
    NotBuilt(String),
    #[error("cannot read the metadata store at start: {0}; check that the database is reachable")]
    StoreRead(#[source] airlock_core::ports::StoreError),
}

/// What every handler can reach: one allocation, so that the copy each handler and middleware
/// takes is one reference count, not one per service.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }

    /// The services, to change before the router is built (copied if already shared).
    pub fn services_mut(&mut self) -> &mut Services {
        Arc::make_mut(&mut self.0)
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
#[derive(Debug, Clone)]
pub struct Services {
    pub registry: Registry,
    pub metrics: Metrics,
    pub body: BodyLimits,
    pub log: LogService,
    pub log_page_max: u64,
    pub policy: Arc<crate::policy::PolicyService>,
    pub callers: crate::caller::CallerService,
    pub promoter: airlock_core::promotion::Promoter,
    /// Trust root applies per principal ([`crate::api_trust::TRUST_ROOT_APPLIES_PER_MINUTE`]).
    pub root_applies: Arc<crate::caller::PerPrincipal>,
    /// Dry-run evaluations per principal (`limits.evaluations_per_minute`).
    pub evaluations: Arc<crate::caller::PerPrincipal>,
    pub evaluations_per_minute: u32,
    /// The version of the store's cached state loaded here (`fresh.rs`).
    pub cached: Arc<crate::fresh::Loaded>,
}

/// The opened stores and the state built on them.
#[derive(Debug, Clone)]
pub struct App {
    pub state: AppState,
    pub store: Arc<dyn MetadataStore>,
    /// The store's backend, for what only it can do (checks, closing).
    pub backend: Backend,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
}

/// The blob store `config` names: the data directory, or an S3 bucket.
fn open_blobs(config: &Config) -> Result<Arc<dyn BlobStore>, StartError> {
    let Some(url) = &config.blobs.url else {
        let dir = &config.data_dir;
        let store =
            FsBlobStore::open(dir).map_err(|source| StartError::Blobs { path: dir.display().to_string(), source })?;
        return Ok(Arc::new(store));
    };
    let parsed = S3Url::parse(url).map_err(|e| StartError::NotBuilt(format!("`blobs.url`: {e}")))?;
    let mut options = S3Options::new(parsed);
    options.endpoint.clone_from(&config.blobs.endpoint);
    options.region.clone_from(&config.blobs.region);
    options.allow_http = config.blobs.allow_http;
    let store = S3BlobStore::open(&options).map_err(|source| StartError::Blobs { path: url.clone(), source })?;
    Ok(Arc::new(store))
}

/// The metadata store's backend.
#[derive(Debug, Clone)]
pub enum Backend {
    /// SQLite in the data directory (`metadata.db`).
    Sqlite(Arc<SqliteStore>),
    /// PostgreSQL (`store.url`), shared by several servers.
    Postgres(Arc<PostgresStore>),
}

impl Backend {
    /// The store behind the ports.
    pub fn store(&self) -> Arc<dyn MetadataStore> {
        match self {
            Backend::Sqlite(store) => store.clone(),
            Backend::Postgres(store) => store.clone(),
        }
    }

    /// The SQLite store, when that is the backend.
    pub fn sqlite(&self) -> Option<&SqliteStore> {
        match self {
            Backend::Sqlite(store) => Some(store),
            Backend::Postgres(_) => None,
        }
    }

    /// Closes the store's connections cleanly.
    pub async fn close(&self) {
        match self {
            Backend::Sqlite(store) => store.close().await,
            Backend::Postgres(store) => store.close().await,
        }
    }
}

impl App {
    /// Opens (creating) the data directory's metadata database and blob store.
    pub async fn open(config: Config) -> Result<App, StartError> {
        App::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`App::open`], reading time from `clock` (tests move it by hand).
    pub async fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<App, StartError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir)
            .map_err(|source| StartError::DataDir { path: dir.display().to_string(), source })?;
        if let Some(url) = &config.store.url {
            let options = PostgresOptions {
                url: url.clone(),
                pool_max: config.store.pool_max,
                statement_timeout: config.store.statement_timeout,
                connect_timeout: config.store.connect_timeout,
            };
            let postgres = Arc::new(PostgresStore::connect(&options).await?);
            return App::open_over(config, clock, Backend::Postgres(postgres), None).await;
        }
        let sqlite = Arc::new(SqliteStore::open(&dir.join(DATABASE_FILE)).await?);
        let damage = start_check(&sqlite, &dir.join(DATABASE_FILE), config.start_check).await;
        match App::open_over(config, clock, Backend::Sqlite(sqlite), damage.clone()).await {
            // Damage where the start must read stops it: say so, not only which read failed.
            Err(source) => match damage {
                Some(reason) => Err(StartError::Damaged { reason, source: Box::new(source) }),
                None => Err(source),
            },
            Ok(app) => Ok(app),
        }
    }

    /// The rest of a start over an open database; `damage` is what its quick check found.
    async fn open_over(
        mut config: Config,
        clock: Arc<dyn Clock>,
        backend: Backend,
        damage: Option<String>,
    ) -> Result<App, StartError> {
        let dir = &config.data_dir;
        let store = backend.store();
        let mut write_refusals: Vec<String> = damage.into_iter().collect();
        let blobs = open_blobs(&config)?;
        let log = LogService::open(store.clone(), clock.clone(), dir, &config.log)?;
        // The origin in force is the stored one; the config digest and release records name it.
        config.log.origin = log.origin().to_owned();
        let dir = &config.data_dir;
        // One tally of identical refusals for the registry and identity alike.
        let refusals = Arc::new(airlock_core::refusals::Refusals::new(config.log.refusals));
        let mut registry = Registry::new(
            config.stages.clone(),
            config.limits,
            store.clone(),
            blobs.clone(),
            clock.clone(),
            log.trigger.clone(),
        )
        .with_refusals(refusals.clone());
        // The stored log must reproduce its last signed checkpoint, or nothing may be written.
        if let Some(reason) = log.verify_stored(registry.log_facts()).await.map_err(StartError::LogCheck)? {
            tracing::error!(%reason, "transparency log check failed; refusing every write");
            write_refusals.push(format!(
                "the transparency log failed its start-up check: {reason}; restore the data directory from a backup and see the runbook"
            ));
        }
        if !write_refusals.is_empty() {
            registry = registry.refusing_writes(write_refusals.join("; and "));
        }
        // Read before anything cached is loaded, so a change made meanwhile shows at the first check.
        let cached = Arc::new(crate::fresh::Loaded::before_load(store.clone()).await.map_err(StartError::StoreRead)?);
        let cpu: Arc<dyn airlock_core::ports::Cpu> =
            Arc::new(crate::cpu::CpuPool::per_core(config.cpu_queue).map_err(StartError::Threads)?);
        // A shared log commit runs to its end when the request that started it goes away.
        let registry = registry.with_cpu(cpu.clone()).with_tasks(Arc::new(crate::cpu::RuntimeTasks));
        // The trust root in force survives restarts; an invalid or expired one stays out, and
        // attestations are untrusted until a valid one is applied.
        match registry.load_trust_root().await {
            Ok(Some(version)) => tracing::info!(version, "trust root loaded"),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "the stored trust root is not usable; attestations are untrusted until a valid root is applied")
            }
        }
        let root = registry.trust().current();
        let policy = Arc::new(crate::policy::PolicyService::load(&config, root.as_deref())?);
        let callers = crate::caller::CallerService::open(
            store.clone(),
            log.trigger.clone(),
            clock.clone(),
            registry.writes_refused().map(str::to_owned),
            refusals,
            &config,
            cpu,
        )?;
        callers
            .identity()
            .load_defined_roles()
            .await
            .map_err(|e| crate::caller::CallerStartError::Authz(e.to_string()))?;
        for failure in callers.refresh_jwks().await {
            tracing::error!(%failure, "cannot fetch a CI provider's keys; its tokens are refused until a fetch succeeds");
        }
        let promoter = crate::promotion::open(
            registry.clone(),
            policy.policies.clone(),
            dir,
            &config.log.origin,
            &config.public_url,
            airlock_core::identity::person::PersonRule { fold_subaddress: config.access.fold_subaddress },
        )?;
        let state = AppState::new(Services {
            promoter,
            registry,
            metrics: Metrics::with_logins(callers.login_counters()),
            body: config.body,
            log,
            log_page_max: config.log.entries_page_max,
            policy,
            callers,
            root_applies: Arc::new(crate::caller::PerPrincipal::per_minute(crate::TRUST_ROOT_APPLIES_PER_MINUTE)),
            evaluations: Arc::new(crate::caller::PerPrincipal::per_minute(config.evaluations_per_minute)),
            evaluations_per_minute: config.evaluations_per_minute,
            cached,
        });
        Ok(App { state, store, backend, blobs, clock, config })
    }

    /// Records the server start (with the effective config's digest), creates the bootstrap
    /// administrator at the first start, and signs a checkpoint. Returns the administrator's
    /// generated password, to be shown once, when one was generated. Does nothing to a log that
    /// failed its check: writes are refused then.
    pub async fn announce_start(&self) -> Result<Option<String>, StartError> {
        if self.state.registry.writes_refused().is_some() {
            return Ok(None);
        }
        // The config digest covers what the policy bundles hold, not only where they are.
        let bundles = self.state.policy.digests();
        let event = Event::allowed(EventKind::ServerStart, &Actor::system(), self.clock.now(), Subject::default())
            .with_detail("config_digest", serde_json::Value::from(self.config.digest_with_bundles(&bundles).as_str()))
            .with_detail(
                "policy_bundles",
                serde_json::Value::Object(bundles.into_iter().map(|(l, d)| (l, serde_json::Value::from(d))).collect()),
            )
            .with_detail("version", serde_json::Value::from(env!("CARGO_PKG_VERSION")));
        self.state.registry.log_events(&[event]).await.map_err(StartError::LogAppend)?;
        if let Some(path) = &self.config.trust_root
            && self.state.registry.trust().current().is_none()
        {
            let document = std::fs::read(path)
                .map_err(|source| StartError::TrustRootFile { path: path.display().to_string(), source })?;
            let version = self
                .state
                .registry
                .update_root(&Actor::system(), document.into())
                .await
                .map_err(|e| StartError::TrustRoot { path: path.display().to_string(), source: e })?;
            tracing::info!(version, path = %path.display(), "trust root bootstrapped from config");
            self.state.policy.policies.recheck(self.state.registry.trust().current().as_deref());
        }
        if self.state.registry.trust().current().is_none() {
            tracing::warn!("{NO_TRUST_ROOT}");
        }
        // Every bundle's load, with its trust under the root now in force.
        let statuses = self.state.policy.policies.statuses();
        crate::policy::log_loads(&self.state, &Actor::system(), &statuses)
            .await
            .map_err(|e| StartError::PolicyLog(e.to_string()))?;
        let generated = self.state.callers.bootstrap(self.config.bootstrap_password.clone()).await?;
        self.state.log.checkpoint().await.map_err(StartError::LogCheck)?;
        Ok(generated)
    }

    /// The HTTP surface.
    pub fn router(&self) -> Router {
        let metrics = self.state.metrics.clone();
        api_v1_routes(Router::new())
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .route("/token", get(crate::api_login::token))
            .route("/v2", any(v2::dispatch))
            .route("/v2/", any(v2::dispatch))
            .route("/v2/{*rest}", any(v2::dispatch))
            .fallback(not_found)
            .with_state(self.state.clone())
            .layer(middleware::from_fn_with_state(self.state.clone(), crate::fresh::layer))
            .layer(middleware::from_fn_with_state(self.state.callers.clone(), crate::caller::rate_limit_layer))
            .layer(middleware::from_fn_with_state(Arc::new(self.config.trusted_proxies.clone()), client_addr::layer))
            .layer(middleware::map_response(crate::error::retry_after))
            .layer(middleware::from_fn_with_state(metrics, metrics::track))
            .layer(middleware::from_fn_with_state(
                Arc::<str>::from(self.config.data_dir.display().to_string()),
                crate::error::data_dir_scope,
            ))
            .layer(middleware::from_fn(telemetry::request_id))
            .layer(middleware::from_fn(crate::drain::layer))
    }

    /// One scrub pass over every stored blob.
    pub async fn scrub(
        &self,
        rate: Option<u64>,
        progress: impl FnMut(&ScrubReport),
    ) -> Result<ScrubReport, ScrubError> {
        scrub::scrub(self.store.as_ref(), self.blobs.as_ref(), self.clock.as_ref(), &self.state.metrics, rate, progress)
            .await
    }

    /// Closes the database cleanly.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

/// Declares the `/api/v1` routes once: [`API_V1_ROUTES`], the method and path of each, and
/// `api_v1_routes`, which adds them to a router. The OpenAPI document is checked against the
/// list (`openapi.rs`).
macro_rules! api_v1 {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every `/api/v1` route the router serves: method and path, axum's syntax.
        pub const API_V1_ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn api_v1_routes(router: Router<AppState>) -> Router<AppState> {
            router$(.route($path, on(MethodFilter::$method, $handler)))*
        }
    };
}

api_v1! {
    GET "/api/v1/openapi.json" => crate::openapi::document;
    GET "/api/v1/system" => system;
    GET "/api/v1/log/checkpoint" => api_log::checkpoint;
    GET "/api/v1/log/key" => api_log::key;
    GET "/api/v1/log/entries" => api_log::entries;
    GET "/api/v1/log/proof/inclusion" => api_log::inclusion;
    GET "/api/v1/log/proof/consistency" => api_log::consistency;
    GET "/api/v1/trust/root" => api_trust::get_root;
    PUT "/api/v1/trust/root" => api_trust::put_root;
    GET "/api/v1/artifacts/{*rest}" => api_trust::artifacts;
    POST "/api/v1/artifacts/{*rest}" => api_trust::artifacts;
    GET "/api/v1/promotions" => crate::api_promotion::list;
    POST "/api/v1/promotions" => crate::api_promotion::request;
    GET "/api/v1/promotions/{id}" => crate::api_promotion::get;
    POST "/api/v1/promotions/{id}/approve" => crate::api_promotion::approve;
    POST "/api/v1/promotions/{id}/reject" => crate::api_promotion::reject;
    GET "/api/v1/release-key" => crate::api_promotion::release_key;
    GET "/api/v1/stages/freezes" => crate::api_control::freezes;
    POST "/api/v1/stages/{stage}/freeze" => crate::api_control::freeze;
    POST "/api/v1/stages/{stage}/unfreeze" => crate::api_control::unfreeze;
    GET "/api/v1/waivers" => crate::api_control::waivers;
    POST "/api/v1/waivers" => crate::api_control::request_waiver;
    POST "/api/v1/waivers/{id}/approve" => crate::api_control::approve_waiver;
    POST "/api/v1/waivers/{id}/revoke" => crate::api_control::revoke_waiver;
    POST "/api/v1/rollbacks" => crate::api_control::rollback;
    GET "/api/v1/reviews" => crate::api_control::reviews;
    POST "/api/v1/reviews/{id}/close" => crate::api_control::close_review;
    POST "/api/v1/auth/token" => crate::api_login::api_token;
    GET "/api/v1/auth/whoami" => crate::api_login::whoami;
    POST "/api/v1/auth/refresh" => crate::api_login::refresh;
    POST "/api/v1/auth/mfa" => crate::api_login::enroll_mfa;
    POST "/api/v1/auth/enroll" => crate::api_login::enroll;
    GET "/api/v1/access/requests" => crate::api_access::list_access;
    POST "/api/v1/access/requests" => crate::api_access::request_access;
    POST "/api/v1/access/requests/{id}/approve" => crate::api_access::approve_access;
    POST "/api/v1/access/requests/{id}/revoke" => crate::api_access::revoke_access;
    GET "/api/v1/roles" => crate::api_principals::roles;
    POST "/api/v1/roles" => crate::api_principals::define_role;
    GET "/api/v1/principals" => crate::api_principals::list;
    POST "/api/v1/principals" => crate::api_principals::create;
    POST "/api/v1/principals/{name}/roles" => crate::api_principals::grant;
    DELETE "/api/v1/principals/{name}/roles/{role}" => crate::api_principals::revoke;
    POST "/api/v1/principals/{name}/disable" => crate::api_principals::disable;
    POST "/api/v1/principals/{name}/enable" => crate::api_principals::enable;
    POST "/api/v1/principals/{name}/api-key" => crate::api_principals::rotate_key;
    POST "/api/v1/principals/{name}/reset" => crate::api_principals::reset;
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// What an operator must fix before the server's verdicts mean anything: no trust root in
/// force, a policy bundle loaded unsigned or refused. `/readyz` and `airlock serve` show them.
pub fn warnings(state: &AppState) -> Vec<String> {
    let mut out = Vec::new();
    if state.registry.trust().current().is_none() {
        out.push(NO_TRUST_ROOT.to_owned());
    }
    out.extend(state.policy.warnings());
    out
}

/// `/readyz`: 503 naming the reason while writes are refused (a damaged database, a log that
/// failed its check), 200 while the metadata store answers, with one `warning:` line for each thing an
/// operator must fix before the server's verdicts mean anything (no trust root, a policy bundle
/// unsigned or refused).
async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.registry.writes_refused() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("writes refused: {reason}\n")).into_response();
    }
    match state.registry.store().blob_totals().await {
        Ok(_) => {
            let mut body = "ready\n".to_owned();
            let mut lines = warnings(&state);
            if state.callers.identity().single_admin().await.unwrap_or(true) {
                lines.push(SINGLE_ADMIN.to_owned());
            }
            for who in state.callers.identity().conflicted().await.unwrap_or_default() {
                lines.push(format!("{who}; every request of theirs is denied until one of the roles is revoked"));
            }
            for line in lines {
                body.push_str(&format!("warning: {line}\n"));
            }
            (StatusCode::OK, body).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "metadata store unavailable\n").into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    if let Ok(totals) = state.registry.store().blob_totals().await {
        state.metrics.set_stored(totals.count, totals.bytes);
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}

#[utoipa::path(
    get,
    operation_id = "system",
    path = "/api/v1/system",
    tag = "system",
    responses(
        (status = 200, description = "The version and the stages", body = SystemInfo),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
async fn system(State(state): State<AppState>) -> Json<SystemInfo> {
    Json(SystemInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        stages: crate::convert::to_api::stages(state.registry.stages()),
    })
}

async fn not_found() -> Response {
    let body = airlock_api::v1::ErrorBody {
        error: airlock_api::v1::ApiError {
            code: crate::error::ApiCode::NotFound.as_str().to_owned(),
            message: "no such endpoint".to_owned(),
            remediation: Some("the registry API is under `/v2/`; health under `/healthz` and `/readyz`".to_owned()),
            doc: None,
        },
    };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// The start-up `PRAGMA quick_check` of the metadata database, bounded by `budget`: the reason
/// to refuse every write when it finds damage, `None` when healthy, unchecked or unfinished.
async fn start_check(store: &SqliteStore, path: &Path, budget: Option<Duration>) -> Option<String> {
    let budget = budget?;
    let started = std::time::Instant::now();
    let verdict = store.check(Check::Quick, Some(budget)).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let path = path.display();
    let found = match verdict {
        Ok(CheckVerdict::Healthy) => {
            tracing::info!(elapsed_ms, "metadata database passed its quick check");
            return None;
        }
        Ok(CheckVerdict::Unfinished) => {
            tracing::warn!(
                elapsed_ms,
                "the metadata database's quick check did not finish within `store.start_check_secs`; run `airlock doctor` while the server is stopped"
            );
            return None;
        }
        Ok(CheckVerdict::Damaged(lines)) => lines.into_iter().next().unwrap_or_default(),
        Err(e) => e.to_string(),
    };
    tracing::error!(elapsed_ms, %found, "the metadata database is damaged; refusing every write");
    Some(format!(
        "the metadata database `{path}` is damaged ({found}); stop the server, run `airlock doctor`, and restore the data directory from a backup (see the runbook's \"damaged store\")"
    ))
}

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Server {
    app: App,
    listener: TcpListener,
    bootstrap_password: Option<String>,
}

impl Server {
    /// Opens the stores and binds the listen address.
    pub async fn bind(mut config: Config) -> Result<Server, StartError> {
        let addr = config.listen;
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        // Token challenges name `public_url`; unconfigured, it is the address actually bound
        // (port 0 included), never anything a request says.
        if !config.public_url_configured {
            let bound = listener.local_addr().map_err(StartError::Serve)?;
            config.public_url = format!("http://{bound}");
            // So is the log origin at the first start of a data directory (`--listen` applied);
            // later starts use the origin stored then.
            if config.log.origin_configured_by.is_none() {
                config.log.origin = crate::config::default_origin(&config.public_url);
            }
        }
        let app = App::open(config).await?;
        let bootstrap_password = app.announce_start().await?;
        Ok(Server { app, listener, bootstrap_password })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, StartError> {
        self.listener.local_addr().map_err(StartError::Serve)
    }

    pub fn data_dir(&self) -> &Path {
        &self.app.config.data_dir
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// What an operator must fix now: no trust root in force, a policy bundle loaded unsigned or
    /// refused; the lines `/readyz` shows.
    pub fn warnings(&self) -> Vec<String> {
        warnings(&self.app.state)
    }

    /// The bootstrap administrator's password, when this start created `admin` and generated
    /// one: show it once.
    pub fn bootstrap_password(&self) -> Option<&str> {
        self.bootstrap_password.as_deref()
    }

    /// Serves until `shutdown` completes, then drains open requests and closes the database.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
        let background = spawn_background(&self.app);
        let router = self.app.router();
        let served = crate::serve::serve(self.listener, router, self.app.config.connections, shutdown).await;
        for task in background {
            task.abort();
        }
        // After a clean stop the file beside the log key holds the newest checkpoint.
        if let Err(e) = self.app.state.log.flush_checkpoint_file().await {
            tracing::error!(error = %e, "cannot write the checkpoint file beside the log key at shutdown");
        }
        // Refusals counted in windows still open are put on record before the database closes.
        crate::log::close_refusals(&self.app.state.registry, true).await;
        self.app.close().await;
        served.map_err(StartError::Serve)
    }
}

/// How often failed logins quiet for a day are swept from the store.
const LOGIN_SWEEP_EVERY: Duration = Duration::from_secs(3600);

fn spawn_background(app: &App) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    // Once a signed checkpoint covers a commit, the engine attaches its release bundle.
    let bundles = crate::promotion::BundleAttacher::new(app.state.promoter.clone());
    tasks.push(tokio::spawn(app.state.log.clone().run_checkpointer(app.config.log.checkpoint_delay, move |c| {
        let bundles = bundles.clone();
        async move { bundles.signed(&c).await }
    })));
    tasks.push(tokio::spawn(crate::log::run_refusal_closer(app.state.registry.clone())));
    tasks.push(tokio::spawn(crate::fresh::run(app.state.clone())));
    let expiry = app.clone();
    tasks.push(tokio::spawn(async move {
        let idle = expiry.config.upload_idle_timeout;
        let every = idle.checked_div(4).unwrap_or(idle).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            tokio::time::sleep(every).await;
            let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
            match expiry.state.registry.expire_uploads(idle_ms).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "dropped idle upload sessions"),
                Err(e) => tracing::warn!(error = %e, "upload expiry failed; retrying later"),
            }
        }
    }));
    // Failed logins nobody repeated for a day are forgotten; the table stays small.
    let callers = app.state.callers.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(LOGIN_SWEEP_EVERY).await;
            match callers.sweep_login_failures().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(forgotten = n, "forgot failed logins quiet for a day"),
                Err(e) => tracing::warn!(error = %e, "forgetting old failed logins failed; retrying later"),
            }
        }
    }));
    if let Some(every) = app.state.callers.jwks_refresh() {
        let callers = app.state.callers.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                for failure in callers.refresh_jwks().await {
                    tracing::warn!(%failure, "cannot refresh a CI provider's keys; keeping the ones in force");
                }
            }
        }));
    }
    if app.config.scrub.enabled {
        let scrubber = app.clone();
        tasks.push(tokio::spawn(async move {
            let cfg = scrubber.config.scrub;
            loop {
                tokio::time::sleep(cfg.interval).await;
                match scrubber.scrub(Some(cfg.rate_bytes_per_sec), |_| {}).await {
                    Ok(r) => tracing::info!(
                        checked = r.checked,
                        bytes = r.bytes,
                        quarantined = r.quarantined.len(),
                        "scrub finished"
                    ),
                    Err(e) => tracing::warn!(error = %e, "scrub failed; retrying next interval"),
                }
            }
        }));
    }
    tasks
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining requests");
}
