//! The promotion system's decisions, free of IO: the stage model, the registry rules, and the
//! `ports` through which every read and write of the outside world goes.
//!
//! Nothing here knows HTTP or SQL. The server turns requests into calls on [`Registry`] and its
//! errors into status codes; the store and blob crates implement [`ports`].

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

pub mod attest;
pub mod audit;
mod group_commit;
pub mod identity;
pub mod policy_input;
pub mod ports;
pub mod promotion;
pub mod references;
pub mod refusals;
pub mod registry;
pub mod stage;
pub mod verified;
pub mod vex;

pub use registry::{BlobBody, ByteRange, PutManifest, Registry, RegistryError, RegistryLimits};
pub use stage::{Stage, StageError, Stages};
