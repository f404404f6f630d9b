//! `kill -9` in the middle of a 256 MiB upload loses nothing and shows nothing half-written.

use std::io::Write;

use airlock_model::Sha256Hasher;
use airlock_test_support::process::{ServerProcess, finish_request, integrity_check};

use crate::airlock;

const MIB: usize = 1024 * 1024;
const SIZE: usize = 256 * MIB;

/// Block `i` of the test blob: a fixed pseudo-random MiB stamped with its index.
fn block(base: &[u8], i: usize) -> Vec<u8> {
    let mut b = base.to_vec();
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    b
}

#[tokio::test]
async fn kill_9_mid_upload_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let base = airlock_test_support::oci::pseudo_random(MIB, 99);
    let mut hasher = Sha256Hasher::new();
    for i in 0..SIZE / MIB {
        hasher.update(&block(&base, i));
    }
    let digest = hasher.finish().to_string();

    let mut server = ServerProcess::start(airlock(), &data);
    let start = server.request("POST", "/v2/dev/big/blob/blobs/uploads/", &[], b"");
    assert_eq!(start.status, 202);
    let location = start.header("location").to_owned();
    let mut stream = server.start_request("PUT", &format!("{location}?digest={digest}"), &[], SIZE as u64);
    for i in 0..100 {
        stream.write_all(&block(&base, i)).unwrap();
    }
    server.kill_hard();
    drop(stream);

    let mut server = ServerProcess::start(airlock(), &data);
    let head = server.request("HEAD", &format!("/v2/dev/big/blob/blobs/{digest}"), &[], b"");
    assert_eq!(head.status, 404, "the partial blob is not visible");
    let blobs_dir = data.join("blobs/sha256");
    let stored = walk_files(&blobs_dir);
    assert!(stored.is_empty(), "nothing reached the content-addressed store: {stored:?}");

    // A fresh upload of the same blob succeeds.
    let mut stream =
        server.start_request("POST", &format!("/v2/dev/big/blob/blobs/uploads/?digest={digest}"), &[], SIZE as u64);
    for i in 0..SIZE / MIB {
        stream.write_all(&block(&base, i)).unwrap();
    }
    let done = finish_request(stream);
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    let head = server.request("HEAD", &format!("/v2/dev/big/blob/blobs/{digest}"), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), SIZE.to_string());

    let status = server.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status}");
    assert_eq!(integrity_check(&data).await, "ok");
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk_files(&p)) } else { out.push(p) }
        }
    }
    out
}
