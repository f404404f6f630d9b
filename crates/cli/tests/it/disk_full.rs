//! A full disk under the data directory: writes are refused with 507 and `Retry-After`, reads go
//! on, and once space returns writes succeed again without a restart and the log verifies.
//!
//! The data directory lives on a small tmpfs the test mounts (CI runs the tests as root).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_model::Sha256Hasher;
use airlock_test_support::process::{RawReply, ServerProcess, finish_request, integrity_check};

use crate::airlock;
use crate::crash_support::audit_verifies;

/// Room for the database, the log's keys and a few blobs, small enough to fill in a moment.
const TMPFS_SIZE: &str = "24m";
const REPO: &str = "dev/full/app";

/// A tmpfs mounted for the test's life, unmounted (lazily) even when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs at {} (the disk-full test needs root, as in CI): {}",
            at.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `path` with one file until a write fails for lack of space.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    // Then byte by byte, so not even a page is left.
    while file.write_all(&[0]).is_ok() {}
    let _ = file.sync_all();
}

fn digest_of(bytes: &[u8]) -> String {
    let mut hasher = Sha256Hasher::new();
    hasher.update(bytes);
    hasher.finish().to_string()
}

/// A monolithic blob upload (`POST ...?digest=`). A server refusing it may answer before
/// reading the whole body, so a failed body write is not the test's failure: the answer is.
fn push_blob(server: &ServerProcess, bytes: &[u8]) -> RawReply {
    let digest = digest_of(bytes);
    let path = format!("/v2/{REPO}/blobs/uploads/?digest={digest}");
    let mut stream = server.start_request("POST", &path, &[], bytes.len() as u64);
    let _ = stream.write_all(bytes);
    finish_request(stream)
}

fn text(reply: &RawReply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// A refusal for lack of space: 507, `Retry-After`, a message naming the data directory.
fn assert_disk_full(reply: &RawReply, data: &Path, context: &str) {
    assert_eq!(reply.status, 507, "{context}: {}", text(reply));
    let retry: u64 = reply.header("retry-after").parse().unwrap_or(0);
    assert!(retry >= 1, "{context}: a 507 carries Retry-After: {:?}", reply.headers);
    let body = text(reply);
    assert!(body.contains(&data.display().to_string()), "{context}: the message names the data directory: {body}");
    assert!(!body.contains("transaction depth"), "{context}: no internals: {body}");
}

#[tokio::test]
async fn full_disk_refuses_writes_then_recovers_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let _tmpfs = Tmpfs::mount(&mnt);
    let data = mnt.join("data");
    let filler = mnt.join("filler");
    let mut server = ServerProcess::start(airlock(), &data);

    // Acknowledged before the disk fills: must survive.
    let kept = airlock_test_support::oci::pseudo_random(200 * 1024, 1);
    let reply = push_blob(&server, &kept);
    assert_eq!(reply.status, 201, "{}", text(&reply));

    fill(&filler);

    // A blob too large for the metadata store goes to the blob store: no space there.
    let big = airlock_test_support::oci::pseudo_random(1024 * 1024, 2);
    assert_disk_full(&push_blob(&server, &big), &data, "a blob into the blob store");

    // Small blobs live inline in the metadata database; push distinct ones until SQLite, too,
    // finds no room (its WAL may absorb the first few).
    let mut refused = None;
    for i in 0..2_000_u32 {
        let small = format!("small blob {i}").into_bytes();
        let reply = push_blob(&server, &small);
        if reply.status != 201 {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("the metadata database ran out of room within 2,000 small blobs");
    assert_disk_full(&refused, &data, "an inline blob into the metadata database");
    // A second write after the failed transaction is refused the same clean way.
    assert_disk_full(&push_blob(&server, b"after the failure"), &data, "the next write");

    // Reads go on.
    let head = server.request("HEAD", &format!("/v2/{REPO}/blobs/{}", digest_of(&kept)), &[], b"");
    assert_eq!(head.status, 200, "a stored blob is still readable on a full disk");
    assert_eq!(server.request("GET", "/healthz", &[], b"").status, 200);

    // Space returns: writes resume, no restart.
    std::fs::remove_file(&filler).unwrap();
    let reply = push_blob(&server, &big);
    assert_eq!(reply.status, 201, "a blob after space returned: {}", text(&reply));
    let reply = push_blob(&server, b"an inline blob after space returned");
    assert_eq!(reply.status, 201, "an inline blob after space returned: {}", text(&reply));

    let get = server.request("GET", &format!("/v2/{REPO}/blobs/{}", digest_of(&kept)), &[], b"");
    assert_eq!(get.status, 200);
    assert_eq!(digest_of(&get.body), digest_of(&kept), "the blob acknowledged before the disk filled is intact");
    audit_verifies(&server, dir.path(), "after the disk filled and emptied");

    let status = server.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status}");
    assert_eq!(integrity_check(&data).await, "ok");
}
