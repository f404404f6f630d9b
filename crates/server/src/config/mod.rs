//! `airlock.toml`: every key optional with a default; unknown keys are reported, not fatal.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_core::promotion::pipeline::{DEFAULT_POLICY, Gates};
use airlock_core::promotion::window::ChangeWindow;
use airlock_core::references::INDEX_DEPTH_MAX;
use airlock_core::refusals::{REFUSAL_KEYS_MAX, REFUSAL_WINDOW_SECS, RefusalLimits};
use airlock_core::registry::{
    ATTESTATION_BYTES_PER_ARTIFACT_MAX, ATTESTATIONS_PER_ARTIFACT_MAX, INLINE_BLOB_MAX, PAGE_MAX,
    UPLOADS_PER_CLIENT_MAX,
};
use airlock_core::{RegistryLimits, Stage, StageError, Stages};
use airlock_model::manifest::{MANIFEST_MAX_BYTES, MANIFEST_MAX_DEPTH, MANIFEST_MAX_DESCRIPTORS, ManifestLimits};
use airlock_model::{NameError, StageName};
use serde::Deserialize;

mod rate_limits;
mod storage;

pub use storage::{BlobsConfig, STORE_URL_ENV, StoreConfig, redact_password};
use storage::{RawBlobs, RawStore, blobs_config, check_store_url, store_config};

pub use rate_limits::{ANONYMOUS_BURST, ANONYMOUS_PER_MINUTE, PRINCIPAL_BURST, PRINCIPAL_PER_MINUTE, RateLimits};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./airlock-data";
/// Seconds a request body may go without sending a byte.
pub const BODY_IDLE_TIMEOUT_SECS: u64 = 30;
/// Slowest average body rate tolerated once the grace period is over, in bytes per second.
pub const BODY_MIN_BYTES_PER_SEC: u64 = 1024;
/// Seconds before the minimum body rate applies.
pub const BODY_RATE_GRACE_SECS: u64 = 30;
/// Largest `/api/v1` JSON body of an action (a promotion request, a grant, a freeze), in bytes.
pub const API_BODY_MAX_BYTES: usize = 16 * 1024;
/// Largest `/api/v1` JSON body that defines something (a principal, a role), in bytes.
pub const API_DEFINITION_MAX_BYTES: usize = 64 * 1024;
/// Largest trust root document `PUT /api/v1/trust/root` accepts, in bytes.
pub const TRUST_ROOT_MAX_BYTES: usize = 1024 * 1024;
/// Seconds a client may take to send a request's headers (and an idle keep-alive connection
/// may wait for the next request).
pub const HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Open connections one client address may hold at once.
pub const CONNECTIONS_PER_CLIENT: usize = 64;
/// Seconds an upload session may sit idle before it is dropped.
pub const UPLOAD_IDLE_TIMEOUT_SECS: u64 = 3600;
/// Dry-run evaluations one principal may run a minute.
const EVALUATIONS_PER_MINUTE: u32 = 30;
/// CPU-bound jobs that may wait for a thread before more are refused.
const CPU_QUEUE: usize = 128;
/// Seconds the start-up `PRAGMA quick_check` may take before it is given up.
const START_CHECK_SECS: u64 = 10;
/// Seconds between background scrubs.
pub const SCRUB_INTERVAL_SECS: u64 = 6 * 3600;
/// Bytes per second the background scrub may read.
pub const SCRUB_RATE_BYTES_PER_SEC: u64 = 64 * 1024 * 1024;
/// Milliseconds the checkpointer waits after a commit, so commits close together share one
/// signed checkpoint.
pub const CHECKPOINT_DELAY_MS: u64 = 5;
/// Milliseconds between two rewrites of the checkpoint file beside the log key; the newest
/// checkpoint waits at most this long to be written there.
pub const CHECKPOINT_FILE_INTERVAL_MS: u64 = 1000;
/// Most log entries returned by one `GET /api/v1/log/entries`.
pub const LOG_ENTRIES_PAGE_MAX: u64 = 1000;

/// The `service` named in token challenges and tokens' audience, by default.
pub const DEFAULT_SERVICE: &str = "airlock";
/// Seconds a registry token lives, by default and at most (Airlock tokens never live longer).
pub use airlock_access::token::{API_TOKEN_TTL_SECS, REGISTRY_TOKEN_TTL_SECS};
/// Days a service account's API key lives, by default and at most.
pub const API_KEY_MAX_DAYS: u64 = 90;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file `{path}` is invalid: {message}")]
    Parse { path: String, message: String },
    #[error("config file `{path}`: {source}")]
    StageName {
        path: String,
        #[source]
        source: NameError,
    },
    #[error("config file `{path}`: {source}")]
    Stages {
        path: String,
        #[source]
        source: StageError,
    },
    #[error("config file `{path}`: `listen` value `{value}` is not an address like `127.0.0.1:5000`")]
    Listen { path: String, value: String },
    #[error("config file `{path}`: `stages`: {message}")]
    Gates { path: String, message: String },
    #[error("config file `{path}`: `access`: {message}")]
    Access { path: String, message: String },
    #[error("config file `{path}`: `server.trusted_proxies`: {source}")]
    TrustedProxy {
        path: String,
        #[source]
        source: crate::client_addr::CidrError,
    },
    #[error("config file `{path}`: {message}")]
    Store { path: String, message: String },
}

/// The file as written. Every field has a default.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawConfig {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    stages: Option<Vec<RawStage>>,
    limits: RawLimits,
    uploads: RawUploads,
    scrub: RawScrub,
    store: RawStore,
    blobs: RawBlobs,
    log: RawLog,
    trust: RawTrust,
    policy: RawPolicy,
    access: RawAccess,
    server: RawServer,
    rate_limits: rate_limits::RawRateLimits,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawServer {
    trusted_proxies: Vec<String>,
    header_read_timeout_secs: u64,
    connections_per_client: usize,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            trusted_proxies: Vec::new(),
            header_read_timeout_secs: HEADER_READ_TIMEOUT_SECS,
            connections_per_client: CONNECTIONS_PER_CLIENT,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawAccess {
    service: String,
    registry_token_ttl_secs: u64,
    api_token_ttl_secs: u64,
    api_key_max_days: u64,
    policies: Option<PathBuf>,
    conflicts: Option<Vec<[String; 2]>>,
    compatible: Option<Vec<[String; 2]>>,
    roles: std::collections::BTreeMap<String, airlock_access::authz::RoleDefinition>,
    oidc: Vec<OidcIssuerConfig>,
    claim_rules: Vec<airlock_access::token::oidc::ClaimRule>,
    mfa_window_minutes: u64,
    jit_max_duration_secs: u64,
    jwks_refresh_secs: u64,
    privileged_roles: Option<Vec<String>>,
    enrollment_ttl_secs: u64,
    fold_subaddress: bool,
}

/// The roles whose grant takes a second access admin by default (beside any role whose
/// permissions approve, sign the trust root or administer access).
pub const PRIVILEGED_ROLES: [&str; 4] = ["release-approver", "key-admin", "break-glass", "access-admin"];
/// How long an enrollment token works, by default, in seconds (three days).
pub const ENROLLMENT_TTL_SECS: u64 = 3 * 24 * 3600;

/// Seconds between fetches of CI providers' JWKS from their URLs, by default.
pub const JWKS_REFRESH_SECS: u64 = 3600;

/// Minutes a second factor counts as fresh for approvals, by default.
pub const MFA_WINDOW_MINUTES: u64 = 15;
/// Longest just-in-time elevation, by default, in seconds.
pub const JIT_MAX_DURATION_SECS: u64 = 8 * 3600;

/// `[[access.oidc]]`: a CI identity provider whose tokens `/token` accepts (user name `oidc`,
/// the provider's JWT as the password).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// The `iss` of its tokens, `https://token.actions.githubusercontent.com`.
    pub issuer: String,
    /// The `aud` its tokens must carry for this registry.
    pub audience: String,
    /// A file holding the provider's JWKS (its `jwks_uri` document); or use `jwks_url`.
    pub jwks: Option<PathBuf>,
    /// The provider's `jwks_uri`, fetched at start and every `access.jwks_refresh_secs`.
    pub jwks_url: Option<String>,
}

impl Default for RawAccess {
    fn default() -> Self {
        RawAccess {
            service: DEFAULT_SERVICE.to_owned(),
            registry_token_ttl_secs: REGISTRY_TOKEN_TTL_SECS,
            api_token_ttl_secs: API_TOKEN_TTL_SECS,
            api_key_max_days: API_KEY_MAX_DAYS,
            policies: None,
            conflicts: None,
            compatible: None,
            roles: std::collections::BTreeMap::new(),
            oidc: Vec::new(),
            claim_rules: Vec::new(),
            mfa_window_minutes: MFA_WINDOW_MINUTES,
            jit_max_duration_secs: JIT_MAX_DURATION_SECS,
            privileged_roles: None,
            enrollment_ttl_secs: ENROLLMENT_TTL_SECS,
            jwks_refresh_secs: JWKS_REFRESH_SECS,
            fold_subaddress: true,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawPolicy {
    bundle: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawTrust {
    root: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawLog {
    origin: Option<String>,
    key_path: Option<PathBuf>,
    checkpoint_delay_ms: Option<u64>,
    checkpoint_file_interval_ms: Option<u64>,
    entries_page_max: Option<u64>,
    refusal_window_secs: Option<u64>,
    refusal_keys_max: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct RawStage {
    name: String,
    #[serde(default)]
    pushable: bool,
    /// The stage promotions into this one come from; the previous stage by default.
    from: Option<String>,
    /// Attestations a promotion into this stage needs.
    #[serde(default)]
    attestations: Vec<airlock_core::promotion::pipeline::RequiredAttestation>,
    /// A policy bundle directory for this stage; `policy.bundle` (or the default library) when
    /// unset.
    policy: Option<PathBuf>,
    approvals: Option<airlock_core::promotion::pipeline::ApprovalRule>,
    #[serde(default)]
    windows: Vec<airlock_core::promotion::window::WindowSpec>,
    #[serde(default)]
    freeze: bool,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawLimits {
    manifest_max_bytes: usize,
    manifest_max_descriptors: usize,
    manifest_max_depth: usize,
    inline_blob_max_bytes: u64,
    uploads_per_client: u64,
    cpu_queue: usize,
    evaluations_per_minute: u32,
    page_max: u32,
    attestations_per_artifact: u32,
    attestation_bytes_per_artifact: u64,
    body_idle_timeout_secs: u64,
    body_min_bytes_per_sec: u64,
    body_rate_grace_secs: u64,
    api_body_max_bytes: usize,
    api_definition_max_bytes: usize,
    trust_root_max_bytes: usize,
    max_index_depth: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            manifest_max_bytes: MANIFEST_MAX_BYTES,
            manifest_max_descriptors: MANIFEST_MAX_DESCRIPTORS,
            manifest_max_depth: MANIFEST_MAX_DEPTH,
            inline_blob_max_bytes: INLINE_BLOB_MAX,
            uploads_per_client: UPLOADS_PER_CLIENT_MAX,
            cpu_queue: CPU_QUEUE,
            evaluations_per_minute: EVALUATIONS_PER_MINUTE,
            page_max: PAGE_MAX,
            attestations_per_artifact: ATTESTATIONS_PER_ARTIFACT_MAX,
            attestation_bytes_per_artifact: ATTESTATION_BYTES_PER_ARTIFACT_MAX,
            body_idle_timeout_secs: BODY_IDLE_TIMEOUT_SECS,
            body_min_bytes_per_sec: BODY_MIN_BYTES_PER_SEC,
            body_rate_grace_secs: BODY_RATE_GRACE_SECS,
            api_body_max_bytes: API_BODY_MAX_BYTES,
            api_definition_max_bytes: API_DEFINITION_MAX_BYTES,
            trust_root_max_bytes: TRUST_ROOT_MAX_BYTES,
            max_index_depth: INDEX_DEPTH_MAX,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawUploads {
    idle_timeout_secs: u64,
}

impl Default for RawUploads {
    fn default() -> Self {
        RawUploads { idle_timeout_secs: UPLOAD_IDLE_TIMEOUT_SECS }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawScrub {
    enabled: bool,
    interval_secs: u64,
    rate_bytes_per_sec: u64,
}

impl Default for RawScrub {
    fn default() -> Self {
        RawScrub { enabled: true, interval_secs: SCRUB_INTERVAL_SECS, rate_bytes_per_sec: SCRUB_RATE_BYTES_PER_SEC }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Limits on how a request body may arrive, and how large an `/api/v1` body may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    pub idle_timeout: Duration,
    pub min_bytes_per_sec: u64,
    pub rate_grace: Duration,
    /// `limits.api_body_max_bytes`.
    pub api_max_bytes: usize,
    /// `limits.api_definition_max_bytes`.
    pub definition_max_bytes: usize,
    /// `limits.trust_root_max_bytes`.
    pub trust_root_max_bytes: usize,
}

/// Limits on connections, before any request is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `server.header_read_timeout_secs`: the time a client has to send a request's headers,
    /// and an idle connection to start its next request.
    pub header_read_timeout: Duration,
    /// `server.connections_per_client`: open connections per TCP peer address.
    pub per_client: usize,
}

/// The background scrubber's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrubConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub rate_bytes_per_sec: u64,
}

/// The transparency log's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The checkpoint origin line; by default the public URL's host and path plus `/log`. The
    /// first start of a data directory stores it, and later starts use the stored one.
    pub origin: String,
    /// The config key the origin comes from (`log.origin` or `public_url`); `None` when it is
    /// derived from the listen address, which [`crate::Server::bind`] replaces with the bound one.
    pub origin_configured_by: Option<&'static str>,
    /// The Ed25519 log key; by default `log/key` under the data directory, created at first start.
    pub key_path: Option<PathBuf>,
    pub checkpoint_delay: Duration,
    /// Least time between two rewrites of the checkpoint file beside the key (each costs a file
    /// creation, two fsyncs and a rename); zero rewrites it after every checkpoint.
    pub checkpoint_file_interval: Duration,
    pub entries_page_max: u64,
    /// How identical refusals are aggregated (`log.refusal_window_secs`, `log.refusal_keys_max`).
    pub refusals: RefusalLimits,
}

/// The server's whole configuration, after defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// How clients reach this server; used in the log origin and, later, token realms.
    pub public_url: String,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub stages: Stages,
    pub limits: RegistryLimits,
    pub body: BodyLimits,
    pub upload_idle_timeout: Duration,
    pub scrub: ScrubConfig,
    /// Policy evaluations and evidence checks waiting for a CPU thread before more are refused
    /// with 503 (`limits.cpu_queue`).
    pub cpu_queue: usize,
    /// Dry-run evaluations (`POST …/evaluate`) one principal may run a minute
    /// (`limits.evaluations_per_minute`).
    pub evaluations_per_minute: u32,
    /// Most time `PRAGMA quick_check` may take at start (`store.start_check_secs`); `None`
    /// skips it.
    pub start_check: Option<Duration>,
    /// Where the metadata lives: SQLite in the data directory, or PostgreSQL.
    pub store: StoreConfig,
    /// Where blobs live: the data directory, or an S3 bucket.
    pub blobs: BlobsConfig,
    pub log: LogConfig,
    /// A trust root document applied at start when none is stored yet (`airlock trust init`).
    pub trust_root: Option<PathBuf>,
    /// A policy bundle directory replacing the embedded default library.
    pub policy_bundle: Option<PathBuf>,
    /// Who may do what: tokens, roles, separation of duties.
    pub access: AccessConfig,
    /// The bootstrap administrator's password, from `AIRLOCK_BOOTSTRAP_PASSWORD` (never from
    /// the file); used only when no principal exists yet.
    pub bootstrap_password: Option<String>,
    /// Whether `public_url` was configured; when not, the server uses the address it bound.
    pub public_url_configured: bool,
    /// `server.trusted_proxies`: the reverse proxies whose `X-Forwarded-For` names the client
    /// (none by default: the client is the socket peer).
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// `server.header_read_timeout_secs` and `server.connections_per_client`.
    pub connections: ConnectionLimits,
    /// `[rate_limits]`: the token buckets per client address and per principal.
    pub rate_limits: RateLimits,
}

/// `[access]`: token lifetimes, roles and the Cedar policies beside them.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// The `service` of token challenges, and the audience of Airlock's tokens.
    pub service: String,
    /// Seconds a registry token lives (at most [`REGISTRY_TOKEN_TTL_SECS`]).
    pub registry_token_ttl_secs: u64,
    /// Seconds an API token lives (at most [`API_TOKEN_TTL_SECS`]).
    pub api_token_ttl_secs: u64,
    /// Days a service account's API key lives, at most.
    pub api_key_max_days: u64,
    /// The roles: the defaults, each replaced or joined by the roles `[access.roles.<name>]`
    /// defines.
    pub roles: Vec<airlock_access::authz::RoleDefinition>,
    /// A file of custom Cedar policies, validated against the schema at start.
    pub policies: Option<PathBuf>,
    /// Role pairs no principal may hold together; `*` on one side means any other role.
    pub conflicts: Vec<(String, String)>,
    /// Role pairs a `*` conflict does not keep apart.
    pub compatible: Vec<(String, String)>,
    /// CI identity providers.
    pub oidc: Vec<OidcIssuerConfig>,
    /// Which CI tokens map to which service account, and the scopes they may get.
    pub claim_rules: Vec<airlock_access::token::oidc::ClaimRule>,
    /// Minutes a verified second factor counts as fresh for approvals and elevations.
    pub mfa_window_minutes: u64,
    /// Longest just-in-time elevation, in seconds.
    pub jit_max_duration_secs: u64,
    /// Seconds between fetches of JWKS given by URL.
    pub jwks_refresh_secs: u64,
    /// Roles whose binding or grant takes a second access admin.
    pub privileged_roles: Vec<String>,
    /// Seconds an enrollment token works.
    pub enrollment_ttl_secs: u64,
    /// Whether `local+tag@domain` is the same person as `local@domain` when approvals compare
    /// people by e-mail.
    pub fold_subaddress: bool,
}

impl Config {
    /// Loads `path` if it exists (an explicitly named file must exist). Returns the config and
    /// the dotted paths of any unknown keys.
    pub fn load(path: Option<&Path>) -> Result<(Config, Vec<String>), ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_owned(), true),
            None => (PathBuf::from("airlock.toml"), false),
        };
        let display = path.display().to_string();
        let (mut config, unknown) = match std::fs::read_to_string(&path) {
            Ok(text) => Config::from_toml(&text, &display),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Config::from_toml("", "<defaults>"),
            Err(source) => Err(ConfigError::Read { path: display, source }),
        }?;
        config.bootstrap_password = std::env::var(crate::caller::BOOTSTRAP_PASSWORD_ENV).ok().filter(|p| !p.is_empty());
        if let Some(url) = std::env::var(STORE_URL_ENV).ok().filter(|u| !u.is_empty()) {
            check_store_url(&url, STORE_URL_ENV)?;
            config.store.url = Some(url);
        }
        Ok((config, unknown))
    }

    /// Parses a TOML document.
    pub fn from_toml(text: &str, path: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let mut unknown = Vec::new();
        let deserializer = toml::Deserializer::new(text);
        let raw: RawConfig = serde_ignored::deserialize(deserializer, |p| unknown.push(p.to_string()))
            .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.message().to_owned() })?;
        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text
            .parse()
            .map_err(|_| ConfigError::Listen { path: path.to_owned(), value: listen_text.clone() })?;
        let public_url_configured = raw.public_url.is_some();
        let public_url = raw.public_url.unwrap_or_else(|| format!("http://{listen}"));
        let origin_configured_by = match (&raw.log.origin, public_url_configured) {
            (Some(_), _) => Some("log.origin"),
            (None, true) => Some("public_url"),
            (None, false) => None,
        };
        let origin = raw.log.origin.unwrap_or_else(|| default_origin(&public_url));
        let stages = match raw.stages {
            None => Stages::default(),
            Some(list) => {
                let mut stages: Vec<Stage> = Vec::with_capacity(list.len());
                for s in list {
                    let name = StageName::parse(&s.name)
                        .map_err(|source| ConfigError::StageName { path: path.to_owned(), source })?;
                    let stage = Stage::new(name.clone(), s.pushable);
                    let Some(previous) = stages.last() else {
                        stages.push(stage);
                        continue;
                    };
                    let gate_error = |message: String| ConfigError::Gates { path: path.to_owned(), message };
                    let from = match &s.from {
                        None => previous.name().clone(),
                        Some(f) => {
                            StageName::parse(f).map_err(|e| gate_error(format!("stage `{name}`: `from`: {e}")))?
                        }
                    };
                    let mut windows = Vec::with_capacity(s.windows.len());
                    for spec in &s.windows {
                        windows.push(
                            ChangeWindow::parse(spec)
                                .map_err(|e| gate_error(format!("stage `{name}`: `windows`: {e}")))?,
                        );
                    }
                    let gates = Gates {
                        from,
                        attestations: s.attestations,
                        policy: s.policy.map_or_else(|| DEFAULT_POLICY.to_owned(), |p| p.display().to_string()),
                        approvals: s.approvals,
                        windows,
                        freeze: s.freeze,
                    };
                    let earlier: Vec<&StageName> = stages.iter().map(Stage::name).collect();
                    gates.validate(&name, &earlier).map_err(|e| gate_error(e.to_string()))?;
                    stages.push(stage.with_gates(gates));
                }
                Stages::new(stages).map_err(|source| ConfigError::Stages { path: path.to_owned(), source })?
            }
        };
        let mut proxies = Vec::with_capacity(raw.server.trusted_proxies.len());
        for range in &raw.server.trusted_proxies {
            proxies.push(
                crate::client_addr::Cidr::parse(range)
                    .map_err(|source| ConfigError::TrustedProxy { path: path.to_owned(), source })?,
            );
        }
        let l = raw.limits;
        let config = Config {
            listen,
            public_url,
            data_dir: raw.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            log_format: raw.log_format.unwrap_or_default(),
            stages,
            limits: RegistryLimits {
                manifest: ManifestLimits {
                    max_bytes: l.manifest_max_bytes,
                    max_descriptors: l.manifest_max_descriptors,
                    max_depth: l.manifest_max_depth,
                },
                inline_blob_max: l.inline_blob_max_bytes,
                uploads_per_client: l.uploads_per_client,
                page_max: l.page_max.max(1),
                attestations_per_artifact: l.attestations_per_artifact,
                attestation_bytes_per_artifact: l.attestation_bytes_per_artifact,
                max_index_depth: l.max_index_depth.max(1),
            },
            body: BodyLimits {
                idle_timeout: Duration::from_secs(l.body_idle_timeout_secs.max(1)),
                min_bytes_per_sec: l.body_min_bytes_per_sec,
                rate_grace: Duration::from_secs(l.body_rate_grace_secs),
                api_max_bytes: l.api_body_max_bytes,
                definition_max_bytes: l.api_definition_max_bytes,
                trust_root_max_bytes: l.trust_root_max_bytes,
            },
            upload_idle_timeout: Duration::from_secs(raw.uploads.idle_timeout_secs.max(1)),
            cpu_queue: l.cpu_queue.max(1),
            evaluations_per_minute: l.evaluations_per_minute.max(1),
            start_check: (raw.store.start_check_secs > 0).then(|| Duration::from_secs(raw.store.start_check_secs)),
            store: store_config(raw.store, path)?,
            blobs: blobs_config(raw.blobs, path)?,
            scrub: ScrubConfig {
                enabled: raw.scrub.enabled,
                interval: Duration::from_secs(raw.scrub.interval_secs.max(1)),
                rate_bytes_per_sec: raw.scrub.rate_bytes_per_sec,
            },
            log: LogConfig {
                origin,
                origin_configured_by,
                key_path: raw.log.key_path,
                checkpoint_delay: Duration::from_millis(raw.log.checkpoint_delay_ms.unwrap_or(CHECKPOINT_DELAY_MS)),
                checkpoint_file_interval: Duration::from_millis(
                    raw.log.checkpoint_file_interval_ms.unwrap_or(CHECKPOINT_FILE_INTERVAL_MS),
                ),
                entries_page_max: raw.log.entries_page_max.unwrap_or(LOG_ENTRIES_PAGE_MAX).max(1),
                refusals: RefusalLimits {
                    window_secs: raw.log.refusal_window_secs.unwrap_or(REFUSAL_WINDOW_SECS).max(1),
                    keys_max: raw.log.refusal_keys_max.unwrap_or(REFUSAL_KEYS_MAX).max(1),
                },
            },
            trust_root: raw.trust.root,
            policy_bundle: raw.policy.bundle,
            access: access_config(raw.access, path)?,
            bootstrap_password: None,
            public_url_configured,
            trusted_proxies: crate::client_addr::TrustedProxies::new(proxies),
            connections: ConnectionLimits {
                header_read_timeout: Duration::from_secs(raw.server.header_read_timeout_secs.max(1)),
                per_client: raw.server.connections_per_client.max(1),
            },
            rate_limits: raw.rate_limits.into(),
        };
        Ok((config, unknown))
    }
}

fn access_config(raw: RawAccess, path: &str) -> Result<AccessConfig, ConfigError> {
    let invalid = |message: String| ConfigError::Access { path: path.to_owned(), message };
    let defined = airlock_access::authz::roles_from_table(raw.roles).map_err(|e| invalid(e.to_string()))?;
    let mut roles = airlock_access::authz::default_roles();
    for role in defined {
        match roles.iter_mut().find(|r| r.name == role.name) {
            Some(existing) => *existing = role,
            None => roles.push(role),
        }
    }
    if raw.service.is_empty() || raw.service.contains('"') || raw.service.contains(char::is_whitespace) {
        return Err(invalid(format!("`service` `{}` must be a non-empty word without quotes", raw.service)));
    }
    for provider in &raw.oidc {
        if provider.jwks.is_some() == provider.jwks_url.is_some() {
            return Err(invalid(format!(
                "oidc issuer `{}` needs exactly one of `jwks` (a file) and `jwks_url`",
                provider.issuer
            )));
        }
    }
    Ok(AccessConfig {
        service: raw.service,
        registry_token_ttl_secs: raw.registry_token_ttl_secs.clamp(1, REGISTRY_TOKEN_TTL_SECS),
        api_token_ttl_secs: raw.api_token_ttl_secs.clamp(1, API_TOKEN_TTL_SECS),
        api_key_max_days: raw.api_key_max_days.clamp(1, 365),
        roles,
        policies: raw.policies,
        conflicts: match raw.conflicts {
            Some(pairs) => pairs.into_iter().map(|[a, b]| (a, b)).collect(),
            None => airlock_access::authz::default_conflicts(),
        },
        compatible: match raw.compatible {
            Some(pairs) => pairs.into_iter().map(|[a, b]| (a, b)).collect(),
            None => airlock_access::authz::default_compatible(),
        },
        oidc: raw.oidc,
        claim_rules: raw.claim_rules,
        mfa_window_minutes: raw.mfa_window_minutes.clamp(1, 24 * 60),
        jit_max_duration_secs: raw.jit_max_duration_secs.clamp(60, 7 * 24 * 3600),
        jwks_refresh_secs: raw.jwks_refresh_secs.clamp(60, 7 * 24 * 3600),
        privileged_roles: raw
            .privileged_roles
            .unwrap_or_else(|| PRIVILEGED_ROLES.iter().map(|r| (*r).to_owned()).collect()),
        enrollment_ttl_secs: raw.enrollment_ttl_secs.clamp(60, 30 * 24 * 3600),
        fold_subaddress: raw.fold_subaddress,
    })
}

/// `http://registry.example:5000/` becomes `registry.example:5000/log`.
pub(crate) fn default_origin(public_url: &str) -> String {
    let rest = public_url.split_once("://").map_or(public_url, |(_, rest)| rest);
    format!("{}/log", rest.trim_end_matches('/'))
}

impl Config {
    /// The effective configuration (defaults included) as canonical JSON, hashed. This covers
    /// where the policy bundles are, not what they hold: the server logs
    /// [`Config::digest_with_bundles`] at start.
    pub fn digest(&self) -> airlock_model::Digest {
        self.digest_with_bundles(&[])
    }

    /// [`Config::digest`] with the digest of each policy bundle loaded (`(label, digest)`), so
    /// an edit to a bundle on disk changes the digest `server.start` logs.
    pub fn digest_with_bundles(&self, bundles: &[(String, String)]) -> airlock_model::Digest {
        let stages: Vec<_> = self
            .stages
            .iter()
            .map(|s| {
                let gates = s.gates().map(|g| {
                    serde_json::json!({
                        "from": g.from.as_str(),
                        "attestations": g.attestations,
                        "policy": g.policy,
                        "approvals": g.approvals,
                        "windows": g.windows.iter().map(|w| w.describe()).collect::<Vec<_>>(),
                        "freeze": g.freeze,
                    })
                });
                serde_json::json!({"name": s.name().as_str(), "pushable": s.pushable(), "gates": gates})
            })
            .collect();
        let l = &self.limits;
        let value = serde_json::json!({
            "listen": self.listen.to_string(),
            "public_url": self.public_url,
            "data_dir": self.data_dir.display().to_string(),
            "stages": stages,
            "limits": {
                "manifest_max_bytes": l.manifest.max_bytes,
                "manifest_max_descriptors": l.manifest.max_descriptors,
                "manifest_max_depth": l.manifest.max_depth,
                "inline_blob_max_bytes": l.inline_blob_max,
                "max_index_depth": l.max_index_depth,
                "uploads_per_client": l.uploads_per_client,
                "cpu_queue": self.cpu_queue,
                "evaluations_per_minute": self.evaluations_per_minute,
                "page_max": l.page_max,
                "attestations_per_artifact": l.attestations_per_artifact,
                "attestation_bytes_per_artifact": l.attestation_bytes_per_artifact,
                "body_idle_timeout_secs": self.body.idle_timeout.as_secs(),
                "body_min_bytes_per_sec": self.body.min_bytes_per_sec,
                "body_rate_grace_secs": self.body.rate_grace.as_secs(),
                "api_body_max_bytes": self.body.api_max_bytes,
                "api_definition_max_bytes": self.body.definition_max_bytes,
                "trust_root_max_bytes": self.body.trust_root_max_bytes,
            },
            "uploads": {"idle_timeout_secs": self.upload_idle_timeout.as_secs()},
            "store": {"start_check_secs": self.start_check.map_or(0, |d| d.as_secs())},
            "scrub": {"enabled": self.scrub.enabled, "interval_secs": self.scrub.interval.as_secs(), "rate_bytes_per_sec": self.scrub.rate_bytes_per_sec},
            "log": {
                "origin": self.log.origin,
                "key_path": self.log.key_path.as_ref().map(|p| p.display().to_string()),
                "checkpoint_delay_ms": u64::try_from(self.log.checkpoint_delay.as_millis()).unwrap_or(u64::MAX),
                "checkpoint_file_interval_ms": u64::try_from(self.log.checkpoint_file_interval.as_millis()).unwrap_or(u64::MAX),
                "entries_page_max": self.log.entries_page_max,
                "refusal_window_secs": self.log.refusals.window_secs,
                "refusal_keys_max": self.log.refusals.keys_max,
            },
            "rate_limits": self.rate_limits.to_json(),
            "trust": {"root": self.trust_root.as_ref().map(|p| p.display().to_string())},
            "server": {
                "trusted_proxies": self.trusted_proxies.ranges().iter().map(ToString::to_string).collect::<Vec<_>>(),
                "header_read_timeout_secs": self.connections.header_read_timeout.as_secs(),
                "connections_per_client": self.connections.per_client,
            },
            "policy": {
                "bundle": self.policy_bundle.as_ref().map(|p| p.display().to_string()),
                "bundle_digests": bundles.iter().map(|(l, d)| (l.clone(), serde_json::Value::from(d.as_str()))).collect::<serde_json::Map<_, _>>(),
            },
        });
        // Every value above is a string, bool or integer far below 2^53: canonical by construction.
        let bytes = airlock_model::jcs::canonicalize(&value).unwrap_or_default();
        airlock_model::Digest::of(&bytes)
    }
}

#[cfg(test)]
mod tests;
