//! The tlog crate's one integration binary: published test vectors, exhaustive proof properties
//! against a naive RFC 6962 reference, and negative note and checkpoint fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

mod fixtures;
mod properties;
mod reference;
mod vectors;
