//! What this server caches from the store (the trust root in force, with the policy bundles'
//! trust under it, and the roles defined through the API), kept as fresh as the store.
//!
//! Several servers may share one store. Each change to what they cache raises the store's
//! [`CachedState`] version in the transaction that makes it, so:
//! - every request that can decide something (every request but `/v2` reads) first reads the
//!   version, one small query, and reloads when another server changed it: a key revoked on one
//!   replica stops counting on every replica for the next decision. A request bearing a token
//!   reads the principal it names in the same query, and its authentication uses that read;
//! - a background task reloads at once on the store's hints (PostgreSQL's `NOTIFY`) and reads
//!   the version on a timer ([`CHECK_EVERY`]), so even reads served from memory catch up.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airlock_core::audit::Actor;
use airlock_core::ports::{CachedState, PrincipalRecord, StoreError};
use airlock_model::PrincipalId;
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
    let current = app.cached.store.cached_state_version().await?;
    catch_up(app, current).await
}

/// [`ensure_fresh`], reading the principal `id` in the same round trip as the version.
async fn ensure_fresh_reading(app: &AppState, id: &PrincipalId) -> Result<ReadPrincipal, StoreError> {
    let (current, found) = app.cached.store.cached_state_with_principal(id).await?;
    catch_up(app, current).await?;
    Ok(found)
}

/// Reloads what this server caches if `current`, the store's version just read, is past the
/// one loaded.
async fn catch_up(app: &AppState, current: u64) -> Result<(), StoreError> {
    let loaded = &app.cached;
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

/// A principal as [`airlock_core::ports::IdentityStore::principal_granted`] reads it.
type ReadPrincipal = Option<(PrincipalRecord, bool)>;

tokio::task_local! {
    /// The principal the request's bearer token names, read by [`layer`] with the cached-state
    /// version, until the request's caller is resolved: that read is not made twice.
    static READ_PRINCIPAL: RefCell<Option<(PrincipalId, ReadPrincipal)>>;
}

/// The principal `id` as [`layer`] read it earlier in this request, once: `None` when it read
/// another principal or none, or when it was taken already (the caller then reads the store).
pub fn take_read_principal(id: &PrincipalId) -> Option<ReadPrincipal> {
    READ_PRINCIPAL
        .try_with(|read| {
            let mut read = read.borrow_mut();
            match read.take() {
                Some((read_id, found)) if &read_id == id => Some(found),
                other => {
                    *read = other;
                    None
                }
            }
        })
        .ok()
        .flatten()
}

/// Middleware: a request that may decide something first makes sure the cached state is the
/// store's. When it bears a token, the principal the token names is read in the same round trip
/// and kept for the request's authentication, which still verifies the token before believing
/// any of it. A store that cannot be read answers in the error shape of the API it was sent to.
pub async fn layer(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if !decides(&request) {
        return next.run(request).await;
    }
    let subject = crate::caller::bearer_subject(request.headers());
    let fresh = match &subject {
        Some(id) => ensure_fresh_reading(&app, id).await.map(|found| Some((id.clone(), found))),
        None => ensure_fresh(&app).await.map(|()| None),
    };
    match fresh {
        Ok(read) => READ_PRINCIPAL.scope(RefCell::new(read), next.run(request)).await,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the store's cached state version");
            if request.uri().path().starts_with("/api/v1/") {
                ApiError::from(e).into_response()
            } else {
                ServerError::Registry(e.into()).into_response()
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::ports::PrincipalRecord;
    use airlock_model::{PrincipalKind, Timestamp};

    fn read(name: &str) -> (PrincipalId, ReadPrincipal) {
        let id = PrincipalId::parse(name).unwrap();
        let record = PrincipalRecord::new(&id, PrincipalKind::User, &[], Timestamp::from_millis(1));
        (id, Some((record, false)))
    }

    #[tokio::test]
    async fn the_principal_read_with_the_version_is_taken_once_and_only_by_its_own_id() {
        let (alice, found) = read("alice");
        let bob = PrincipalId::parse("bob").unwrap();
        let taken = READ_PRINCIPAL
            .scope(RefCell::new(Some((alice.clone(), found.clone()))), async {
                let other = take_read_principal(&bob);
                let own = take_read_principal(&alice);
                let again = take_read_principal(&alice);
                (other, own, again)
            })
            .await;
        assert_eq!(
            taken,
            (None, Some(found), None),
            "another id gets nothing and leaves it; the second take reads the store"
        );
    }

    #[tokio::test]
    async fn outside_a_request_nothing_was_read() {
        let (alice, _) = read("alice");
        assert_eq!(take_read_principal(&alice), None);
        // A task spawned by a handler does not see its request's read.
        let (id, found) = read("alice");
        let spawned = READ_PRINCIPAL
            .scope(RefCell::new(Some((id, found))), async {
                tokio::spawn(async move { take_read_principal(&alice) }).await.unwrap()
            })
            .await;
        assert_eq!(spawned, None);
    }
}
