//! The blob store conformance suite against the filesystem backend, each check in a fresh
//! temporary directory.
//!
//! Not `replicated`: `FsBlobStore` keeps each upload's size and running hash in the process that
//! received it and rebuilds them from the staged file only when it has none, so two live
//! instances over one directory would each trust their own view. A directory serves one process;
//! a restart (`a_reopened_store_resumes_an_upload`) is the case that applies.

use std::sync::Arc;

use airlock_blob::FsBlobStore;
use airlock_core::ports::BlobStore;
use airlock_test_support::blob_conformance::Open;

fn fresh(_test: &str) -> Option<(tempfile::TempDir, Open)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_owned();
    let open: Open =
        Box::new(move || -> Arc<dyn BlobStore> { Arc::new(FsBlobStore::open(&root).expect("store opens")) });
    Some((dir, open))
}

airlock_test_support::blob_conformance!(fresh);
