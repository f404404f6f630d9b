//! In-process integration tests of the HTTP surface: the OCI `/v2` API, limits, errors, health,
//! metrics and the scrubber, each against a fresh data directory.

#![allow(
    clippy::disallowed_methods,
    reason = "tests read the wall clock for TOTP codes and validity windows against a running server"
)]

mod access;
mod audit;
mod blobs;
mod connections;
mod duties;
mod log_backed;
mod login;
mod manifests;
mod negative;
mod observability;
mod openapi;
mod persons;
mod policy_signing;
mod promotion;
mod promotion_race;
mod refusals;
mod release;
mod replicas;
mod socket;
mod storage;
mod strict_manifests;
mod trust;
mod visibility;
