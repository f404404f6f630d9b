//! The policy crate's one integration binary: the case files of `tests/cases`, the default
//! library's own Rego tests, the engine's limits and cache, and the replay of a stored decision.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

mod cases;
mod engine;
mod library;
mod replay;
mod signature;
mod support;
