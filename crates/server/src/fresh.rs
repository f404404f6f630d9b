//! What this server caches from the store (the trust root in force, with the policy bundles'
//! trust under it, and the roles defined through the API), kept as fresh as the store.
//!
//! Several servers may share one store. Each change to what they cache raises the store's
//! [`CachedState`] version in the transaction that makes it, so:
//! - every request that can decide something (every request but `/v2` reads) first reads the
//!   version, one small query, and reloads when another server changed it: a key revoked on one
//!   replica stops counting on every replica for the next decision;
//! - a background task reloads at once on the store's hints (PostgreSQL's `NOTIFY`) and reads
//!   the version on a timer ([`CHECK_EVERY`]), so even reads served from memory catch up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airlock_core::audit::Actor;
use airlock_core::ports::{CachedState, StoreError};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::Method;

use crate::app::AppState;
use crate::error::{ApiError, ServerError};

/// How often the background task reads the version when no hint arrives.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The version of the store's cached state this server last loaded.
pub struct Loaded {
    store: Arc<dyn CachedState>,
    version: AtomicU64,
    /// One reload at a time; the others wait for it and find the version loaded.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded").field("version", &self.version).finish_non_exhaustive()
    }
}

impl Loaded {
    /// Reads the version before the first load, so a change made while loading is seen as a
    /// change at the first check.
    pub async fn before_load(store: Arc<dyn CachedState>) -> Result<Loaded, StoreError> {
        let version = store.cached_state_version().await?;
        Ok(Loaded { store, version: AtomicU64::new(version), reloading: tokio::sync::Mutex::new(()) })
    }
}

/// Reloads what this server caches if the store's version moved past the one loaded.
pub async fn ensure_fresh(app: &AppState) -> Result<(), StoreError> {
    let loaded = &app.cached;
    let current = loaded.store.cached_state_version().await?;
    if current == loaded.version.load(Ordering::Acquire) {
        return Ok(());
    }
    let _one = loaded.reloading.lock().await;
    // Read again under the lock: a reload that finished meanwhile may have loaded it.
    let current = loaded.store.cached_state_version().await?;
    if current == loaded.version.load(Ordering::Acquire) {
        return Ok(());
    }
    reload(app).await?;
    loaded.version.store(current, Ordering::Release);
    Ok(())
}

/// Reloads the trust root (and the bundles' trust under it) and the defined roles.
async fn reload(app: &AppState) -> Result<(), StoreError> {
    let before = app.registry.trust().current().map(|r| r.version());
    match app.registry.load_trust_root().await {
        Ok(after) if after != before => {
            tracing::info!(version = after, "trust root applied by another server is now in force");
            if let Err(e) = crate::policy::recheck_trust(app, &Actor::system()).await {
                tracing::error!(error = ?e, "cannot log the policy bundles' trust under the new root");
            }
        }
        Ok(_) => {}
        Err(airlock_core::registry::RegistryError::Store(e)) => return Err(e),
        Err(e) => {
            tracing::error!(error = %e, "the stored trust root is not usable; keeping the one in force");
        }
    }
    match app.callers.identity().load_defined_roles().await {
        Ok(()) => Ok(()),
        Err(airlock_core::identity::IdentityError::Store(e)) => Err(e),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the roles defined through the API");
            Ok(())
        }
    }
}

/// Whether a request may decide something that reads the cached state: everything but reads of
/// `/v2` content, whose access was decided when their token was issued.
fn decides(request: &Request) -> bool {
    let path = request.uri().path();
    let v2_read = path.starts_with("/v2") && matches!(*request.method(), Method::GET | Method::HEAD);
    let probe = matches!(path, "/healthz" | "/readyz" | "/metrics");
    !(v2_read || probe)
}

/// Middleware: a request that may decide something first makes sure the cached state is the
/// store's. A store that cannot be read answers in the error shape of the API it was sent to.
pub async fn layer(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if decides(&request)
        && let Err(e) = ensure_fresh(&app).await
    {
        tracing::warn!(error = %e, "cannot read the store's cached state version");
        return if request.uri().path().starts_with("/api/v1/") {
            ApiError::from(e).into_response()
        } else {
            ServerError::Registry(e.into()).into_response()
        };
    }
    next.run(request).await
}

/// The background task: reload on each hint from the store, and check on a timer.
pub async fn run(app: AppState) {
    let mut hints = match app.cached.store.watch_cached_state().await {
        Ok(hints) => hints,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for changes other servers make; checking every second");
            None
        }
    };
    loop {
        match hints.as_mut() {
            Some(stream) => {
                let next = tokio::time::timeout(CHECK_EVERY, stream.next()).await;
                if matches!(next, Ok(None)) {
                    tracing::warn!("the store stopped sending change hints; checking every second");
                    hints = None;
                }
            }
            None => tokio::time::sleep(CHECK_EVERY).await,
        }
        if let Err(e) = ensure_fresh(&app).await {
            tracing::warn!(error = %e, "cannot read the store's cached state version; retrying");
        }
    }
}
