//! The blob store behind `object_store`: uploads staged as they arrive, hashed, and moved into a
//! content-addressed store. Two backends: a local directory ([`FsBlobStore`], one process) and
//! an S3 bucket ([`S3BlobStore`], stateless, shared by several replicas).
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
mod s3;

pub use fs::FsBlobStore;
pub use s3::{S3BlobStore, S3Credentials, S3Options, S3Url, S3UrlError};
