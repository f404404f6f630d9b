//! The trust crate's one integration binary: negative fixtures named after attacks, table tests of
//! every parse rule and evaluation rule, and the key rotation story end to end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

mod evaluate;
mod fixtures;
mod generate;
mod parse;
mod rotation;
mod support;
mod verify;
