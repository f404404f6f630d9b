//! Airlock's access control: who may do what, proven how.
//!
//! - [`scope`]: the Docker token-auth scope grammar (`repository:dev/app:pull,push`), parsed
//!   strictly at the boundary.
//! - [`token`]: Airlock-signed tokens (EdDSA JWTs) and their strict verification.
//! - [`authz`]: Cedar authorization: the schema, roles compiled to `permit` policies, the shipped
//!   separation-of-duties `forbid` policies, and decisions with their reasons.
//! - [`totp`]: time-based one-time passwords (RFC 6238), the second factor of users.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

pub mod authz;
pub mod scope;
pub mod token;
pub mod totp;
