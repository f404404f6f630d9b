//! The checkpoint file beside the log key is rewritten at most once per
//! `log.checkpoint_file_interval_ms`: commits in between do not pay a file creation, two fsyncs
//! and a rename each, the newest checkpoint reaches the file when the interval is up or the
//! server stops cleanly, and a database rolled back behind the file is still refused.

use std::path::Path;
use std::time::{Duration, Instant};

use airlock_test_support::process::ServerProcess;

use crate::crash_support::{body_text, checkpoint_file_size, log_entries, push, settled_log, start};

fn server_with_interval(dir: &Path, interval_ms: u64) -> ServerProcess {
    let config = dir.join("airlock.toml");
    std::fs::write(&config, format!("[log]\ncheckpoint_file_interval_ms = {interval_ms}\n")).unwrap();
    start(&dir.join("data"), &["--config", config.to_str().unwrap()], None)
}

#[test]
fn commits_within_the_interval_leave_the_file_alone_until_a_clean_stop_writes_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An interval far longer than the test: only the stop can write the file after the start.
    let mut server = server_with_interval(dir.path(), 600_000);
    settled_log(&server);
    let at_start = checkpoint_file_size(&data);

    push(&server, "dev/app", "v1", b"one");
    push(&server, "dev/app", "v2", b"two");
    let newest = settled_log(&server);
    assert!(newest > at_start);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(checkpoint_file_size(&data), at_start, "checkpoints within the interval wait for the file");

    assert!(server.terminate().success());
    assert_eq!(checkpoint_file_size(&data), newest, "a clean stop writes the newest checkpoint to the file");
}

#[test]
fn the_newest_checkpoint_reaches_the_file_once_the_interval_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = server_with_interval(dir.path(), 300);
    settled_log(&server);
    push(&server, "dev/app", "v1", b"one");
    let newest = settled_log(&server);
    // No commit follows: the checkpointer writes the waiting checkpoint by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while checkpoint_file_size(&data) != newest {
        assert!(
            Instant::now() < deadline,
            "the checkpoint file stayed at {} behind {newest}",
            checkpoint_file_size(&data)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(log_entries(&server).len() as u64, newest, "nothing was committed meanwhile");
}

#[test]
fn a_crash_inside_the_interval_leaves_an_older_file_and_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = server_with_interval(dir.path(), 600_000);
    settled_log(&server);
    let at_start = checkpoint_file_size(&data);
    push(&server, "dev/app", "v1", b"one");
    let newest = settled_log(&server);
    assert!(newest > at_start);
    server.kill_hard();
    drop(server);
    // The file lags the database by the checkpoints of the last interval, never leads it.
    assert_eq!(checkpoint_file_size(&data), at_start);

    let server = server_with_interval(dir.path(), 600_000);
    let reply = server.request("POST", "/v2/dev/app/blobs/uploads/", &[], b"");
    assert_eq!(reply.status, 202, "a file behind the database is no rollback: {}", body_text(&reply));
    // The start brings the file up to the database's latest checkpoint.
    assert!(
        checkpoint_file_size(&data) >= newest,
        "the file stayed at {} behind {newest}",
        checkpoint_file_size(&data)
    );
}
