//! The HTTP server: the OCI `/v2` registry, `/api/v1`, `/metrics`, health, config and wiring.
//!
//! **Architecture Invariant:** this is the only crate that knows HTTP status codes and JSON wire
//! shapes. Every error a client sees goes through the table in `error.rs`.

// No panics in the library; its unit tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod api_access;
mod api_control;
mod api_log;
mod api_login;
mod api_principals;
mod api_promotion;
mod api_release;
mod api_trust;
mod app;
mod body;
pub mod caller;
pub mod client_addr;
mod clock;
pub mod config;
mod convert;
mod cpu;
pub mod doctor;
mod drain;
mod error;
mod extract;
mod fresh;
pub mod log;
mod metrics;
pub mod migrate;
mod openapi;
mod policy;
pub mod promotion;
mod route;
mod scrub;
mod serve;
pub mod telemetry;
mod v2;
mod visibility;

pub use airlock_core::audit::Actor;
pub use api_trust::TRUST_ROOT_APPLIES_PER_MINUTE;
pub use app::{API_V1_ROUTES, App, AppState, DATABASE_FILE, Server, StartError, shutdown_signal};
pub use clock::SystemClock;
pub use config::{Config, ConfigError, LogFormat};
pub use error::INTERNAL_MESSAGE;
pub use scrub::{ScrubError, ScrubReport};
