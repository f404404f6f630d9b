//! The dsse crate's one integration binary: the DSSE spec's published vectors, key encodings and
//! strict verification, negative envelope and statement fixtures, property tests, and interop
//! with Python's securesystemslib and in-toto.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

mod fixtures;
mod interop;
mod keys;
mod properties;
mod vectors;

use std::path::{Path, PathBuf};

/// A file under `tests/data/`.
pub(crate) fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(path)
}

/// The text of a file under `tests/data/`.
pub(crate) fn data_text(path: &str) -> String {
    std::fs::read_to_string(data(path)).unwrap()
}

/// The RFC 8032 §7.1 TEST 1 secret key: key "A" of the DSSE test vectors, and the signer of the
/// fixtures under `tests/data/` (`ed25519.pem` there is the same key).
pub(crate) const SEED_A: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

pub(crate) fn key_a() -> airlock_dsse::PrivateKey {
    airlock_dsse::PrivateKey::from_ed25519_seed(&hex::decode(SEED_A).unwrap().try_into().unwrap())
}
