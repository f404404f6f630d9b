//! The evidence crate's one integration binary: one fixture per format with its normalized
//! result pinned, hostile fixtures named after their attacks, the default limits, predicates, and
//! a real producer (the Python `cyclonedx-bom` package) whose SBOM must read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

mod formats;
mod hostile;
mod limits;
mod predicates;
mod real_producer;

use std::path::{Path, PathBuf};

/// A file or directory under `tests/data/`.
pub(crate) fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(path)
}

/// The files of a directory under `tests/data/`, sorted, without the snapshots.
pub(crate) fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            path.is_file() && !name.ends_with(".expected.json") && name != "expected.txt"
        })
        .collect();
    paths.sort();
    paths
}
