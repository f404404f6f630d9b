//! The blob store: uploads staged as local files and hashed as they arrive, then synced and
//! renamed into a content-addressed store behind `object_store`.
//!
//! **Architecture Invariant:** a blob is in `blobs/` only if its bytes hashed to its name when
//! they were committed. A digest mismatch, a cancelled upload or a crash leaves nothing there.

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

mod fs;

pub use fs::FsBlobStore;
