//! Test-only helpers: OCI fixture builders, the store and blob store conformance suites, fresh
//! PostgreSQL databases, the core's engine over real ports without the server, and (with the
//! `server` feature) an in-process app and `spawn_app` on port 0.

#[cfg(feature = "server")]
mod app;
pub mod blob_conformance;
pub mod conformance;
pub mod engine;
pub mod oci;
pub mod postgres;
#[cfg(feature = "server")]
pub mod process;
pub mod promotion;
pub mod services;

use std::path::Path;

#[cfg(feature = "server")]
pub use app::*;

/// A clock tests move by hand.
#[derive(Debug, Clone)]
pub struct ManualClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl ManualClock {
    /// A clock standing at `millis` since the Unix epoch.
    pub fn at(millis: i64) -> ManualClock {
        ManualClock(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(millis)))
    }

    /// Moves the clock forward by `millis`.
    pub fn advance(&self, millis: i64) {
        self.0.fetch_add(millis, std::sync::atomic::Ordering::SeqCst);
    }
}

impl airlock_core::ports::Clock for ManualClock {
    fn now(&self) -> airlock_model::Timestamp {
        airlock_model::Timestamp::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// A SQLite metadata store in `dir`, for tests that run a core domain over real ports without
/// the server.
pub async fn sqlite_store(dir: &Path) -> std::sync::Arc<dyn airlock_core::ports::MetadataStore> {
    std::sync::Arc::new(airlock_store::SqliteStore::open(&dir.join("metadata.db")).await.expect("store opens"))
}
