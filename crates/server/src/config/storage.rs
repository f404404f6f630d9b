//! `[store]` and `[blobs]`: where the metadata and the blobs live, SQLite and the data directory
//! by default, PostgreSQL and S3 when several servers share them.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, START_CHECK_SECS};

/// Connections in a PostgreSQL store's pool, by default (`store.pool_max`).
pub(super) const STORE_POOL_MAX: u32 = 16;
/// Longest a PostgreSQL statement may run, by default (`store.statement_timeout_ms`).
pub(super) const STORE_STATEMENT_TIMEOUT_MS: u64 = 30_000;
/// Longest a connection to PostgreSQL may take to open, by default (`store.connect_timeout_secs`).
pub(super) const STORE_CONNECT_TIMEOUT_SECS: u64 = 10;
/// The environment variable that, when set, replaces `store.url` (so a password need not sit in
/// the file).
pub const STORE_URL_ENV: &str = "AIRLOCK_STORE_URL";

#[derive(Debug, Deserialize)]
#[serde(default)]
pub(super) struct RawStore {
    pub(super) start_check_secs: u64,
    url: Option<String>,
    pool_max: u32,
    statement_timeout_ms: u64,
    connect_timeout_secs: u64,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            start_check_secs: START_CHECK_SECS,
            url: None,
            pool_max: STORE_POOL_MAX,
            statement_timeout_ms: STORE_STATEMENT_TIMEOUT_MS,
            connect_timeout_secs: STORE_CONNECT_TIMEOUT_SECS,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct RawBlobs {
    url: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    allow_http: bool,
}

/// Where the metadata lives (`[store]`).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `store.url` (or `AIRLOCK_STORE_URL`): a `postgres://` URL; `None` for SQLite in the data
    /// directory.
    pub url: Option<String>,
    /// `store.pool_max`: connections to PostgreSQL per server.
    pub pool_max: u32,
    /// `store.statement_timeout_ms`: longest a PostgreSQL statement may run.
    pub statement_timeout: Duration,
    /// `store.connect_timeout_secs`: longest a connection may take to open.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(redact_password))
            .field("pool_max", &self.pool_max)
            .field("statement_timeout", &self.statement_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// `url` with any password replaced by `***`, for logs and errors.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Where blobs live (`[blobs]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlobsConfig {
    /// `blobs.url`: `s3://BUCKET/PREFIX`; `None` for the data directory.
    pub url: Option<String>,
    /// `blobs.endpoint`: the S3 endpoint, for storage other than AWS (SeaweedFS, MinIO, Ceph).
    pub endpoint: Option<String>,
    /// `blobs.region`: the bucket's region.
    pub region: Option<String>,
    /// `blobs.allow_http`: whether the endpoint may be plain HTTP.
    pub allow_http: bool,
}

pub(super) fn check_store_url(url: &str, path: &str) -> Result<(), ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    Err(ConfigError::Store {
        path: path.to_owned(),
        message: format!(
            "`store.url` `{}` is not a `postgres://` URL; leave it out to keep SQLite in the data directory",
            airlock_model::echo::echo(&redact_password(url))
        ),
    })
}

pub(super) fn store_config(raw: RawStore, path: &str) -> Result<StoreConfig, ConfigError> {
    if let Some(url) = &raw.url {
        check_store_url(url, path)?;
    }
    Ok(StoreConfig {
        url: raw.url,
        pool_max: raw.pool_max.clamp(1, 1000),
        statement_timeout: Duration::from_millis(raw.statement_timeout_ms.max(100)),
        connect_timeout: Duration::from_secs(raw.connect_timeout_secs.max(1)),
    })
}

pub(super) fn blobs_config(raw: RawBlobs, path: &str) -> Result<BlobsConfig, ConfigError> {
    if let Some(url) = &raw.url
        && let Err(e) = airlock_blob::S3Url::parse(url)
    {
        return Err(ConfigError::Store {
            path: path.to_owned(),
            message: format!("`blobs.url`: {e}; leave it out to keep blobs in the data directory"),
        });
    }
    Ok(BlobsConfig { url: raw.url, endpoint: raw.endpoint, region: raw.region, allow_http: raw.allow_http })
}
