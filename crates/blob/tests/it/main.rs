//! The blob store's integration tests: the conformance suite against each backend.

mod fs;
mod s3;
