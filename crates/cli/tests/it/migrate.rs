//! `airlock migrate`: a single node (SQLite and the data directory) that ran the whole promotion
//! job is stopped, moved into a fresh PostgreSQL database and S3 prefix, and started again over
//! them on the same data directory (it holds the keys); the log it serves extends the one signed
//! before, the bytes pulled are the same, people log in and writes go on. Then the refusals: a
//! database that holds anything, a URL whose credentials fail, which is never printed. Skipped
//! when PostgreSQL or S3 is not configured (`scripts/services start`).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use airlock_core::ports::{CachedState, LogStore};
use airlock_test_support::postgres::TestDatabase;
use airlock_test_support::process::{Endpoint, ServerProcess};
use serde_json::Value;

use crate::crash_support::{body_text, push, sql};
use crate::replicas::bucket;
use crate::{airlock, show};

/// A layer larger than `limits.inline_blob_max_bytes` (128 KiB by default), so it lives in the
/// blob store.
const BIG: usize = 1024 * 1024 + 7;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// `airlock migrate` with `args`, credentials for the bucket in its environment.
fn migrate(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(airlock())
        .arg("migrate")
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("AIRLOCK_STORE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("airlock runs")
}

/// The newest checkpoint note stored in the SQLite database of `data`, exactly as stored.
fn stored_checkpoint(data: &Path) -> String {
    let hex = sql(data, "SELECT hex(note) FROM log_checkpoints ORDER BY size DESC LIMIT 1");
    String::from_utf8(hex::decode(hex).unwrap()).unwrap()
}

/// `tester`'s GET of `path` on `server`: status 200 and the body.
fn get(server: &Endpoint, path: &str) -> Vec<u8> {
    let reply = server.request("GET", path, &[], b"");
    assert_eq!(reply.status, 200, "GET {path}: {}", body_text(&reply));
    reply.body
}

#[test]
fn a_single_node_moves_to_postgres_and_s3() {
    let dir = tempfile::tempdir().unwrap();
    let Some(database) = runtime().block_on(TestDatabase::create("migrate_single_node")) else { return };
    let Some(bucket) = bucket("migrate_single_node") else { return };
    let data = dir.path().join("data");

    // The single node runs the whole job, and holds a layer too large to stay inline.
    let config = crate::promotion::write_config(dir.path(), "");
    let mut node =
        ServerProcess::start_with(airlock(), &data, &["--config", config.to_str().unwrap()], "warn", Stdio::inherit());
    crate::promotion::promote_end_to_end(dir.path(), &node);
    let big = push(&node, "dev/big", "1", &airlock_test_support::oci::pseudo_random(BIG, 11));
    let big_layer = big.layers[0].clone();
    let big_digest = airlock_test_support::oci::digest(&big_layer);
    let carol_totp = node.user("carol", "carol-password-123", &["auditor"], Some("carol@example.com"));
    let prod_manifest = get(&node, "/v2/prod/payments/api/manifests/1.0");
    // Pinned before the move: a key fetched from the server being checked would prove nothing.
    let log_key = get(&node, "/api/v1/log/key");
    std::fs::write(dir.path().join("pinned.vkey"), &log_key).unwrap();
    crate::crash_support::wait_for_checkpoint(&node);
    assert!(node.terminate().success());

    let before_size: u64 = sql(&data, "SELECT COUNT(*) FROM log_leaves").parse().unwrap();
    let before = stored_checkpoint(&data);
    std::fs::write(dir.path().join("before.note"), &before).unwrap();
    let before_checkpoint_size: u64 = before.lines().nth(1).unwrap().parse().unwrap();
    let before_root = before.lines().nth(2).unwrap().to_owned();

    let prefix = format!("migrate-{}", std::process::id());
    let blobs_to = format!("s3://{}/{prefix}", bucket.bucket);
    let from = format!("sqlite:{}", data.join("metadata.db").display());
    let envs =
        [("AWS_ACCESS_KEY_ID", bucket.access_key.as_str()), ("AWS_SECRET_ACCESS_KEY", bucket.secret_key.as_str())];
    let data_arg = data.to_str().unwrap();
    let args = [
        "--from",
        &from,
        "--to",
        database.url(),
        "--blobs-from",
        data_arg,
        "--blobs-to",
        &blobs_to,
        "--blobs-endpoint",
        &bucket.endpoint,
        "--blobs-region",
        "us-east-1",
        "--blobs-allow-http",
        "--output",
        "json",
    ];
    let started = std::time::Instant::now();
    let out = migrate(&args, &envs);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    eprintln!("airlock migrate took {:.1} s", started.elapsed().as_secs_f64());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    assert_eq!(report["log"]["size"], before_size, "{report}");
    assert_eq!(report["log"]["checkpoint_size"], before_checkpoint_size, "{report}");
    if before_checkpoint_size == before_size {
        assert_eq!(report["log"]["root"], before_root.as_str(), "{report}");
    }
    assert_eq!(report["schema"]["sqlite_migrated"], false, "{report}");
    let rows = |table: &str| {
        report["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).map(|t| t["rows"].as_u64().unwrap())
    };
    let sqlite_rows = |table: &str| sql(&data, &format!("SELECT COUNT(*) FROM {table}")).parse::<u64>().ok();
    for table in ["log_leaves", "log_nodes", "log_checkpoints", "principals", "promotions", "approvals", "manifests"] {
        assert_eq!(rows(table), sqlite_rows(table), "{table}: {report}");
    }
    let tables: Vec<&str> = report["tables"].as_array().unwrap().iter().filter_map(|t| t["table"].as_str()).collect();
    let all = sql(
        &data,
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    );
    assert_eq!(tables.len().to_string(), all, "every table is copied: {tables:?}");
    let blobs = &report["blobs"];
    assert!(blobs["copied"].as_u64().unwrap() >= 1, "{report}");
    assert!(blobs["bytes"].as_u64().unwrap() >= big_layer.len() as u64, "{report}");
    assert!(blobs["inline"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(blobs["skipped"], 0, "{report}");

    // Run again into another empty database, the blobs are in the bucket already: a move that
    // failed after its blobs went over can simply be run again.
    let Some(second) = runtime().block_on(TestDatabase::create("migrate_single_node_again")) else { return };
    let mut again = args;
    again[3] = second.url();
    let out = migrate(&again, &envs);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let rerun: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rerun["blobs"]["copied"], 0, "{rerun}");
    assert_eq!(rerun["blobs"]["skipped"], blobs["copied"], "{rerun}");
    assert_eq!(rerun["log"], report["log"], "{rerun}");
    drop(second);

    // The copy holds the checkpoint signed before, exactly.
    let runtime = runtime();
    let target = runtime.block_on(database.store());
    let copied = runtime.block_on(target.latest_checkpoint()).unwrap().expect("a checkpoint");
    assert_eq!(copied.note, before);
    assert_eq!(runtime.block_on(target.log_size()).unwrap(), before_size);
    assert!(runtime.block_on(target.cached_state_version()).unwrap() >= 2, "the trust root was applied");
    runtime.block_on(target.close());

    // Nothing is read from the SQLite file or the blobs directory any more: both move aside.
    for (local, aside) in [("metadata.db", "old-metadata.db"), ("blobs", "old-blobs")] {
        std::fs::rename(data.join(local), dir.path().join(aside)).unwrap();
    }
    let extra = format!(
        "[store]\nurl = \"{}\"\npool_max = 8\n\n[blobs]\nurl = \"{blobs_to}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\nallow_http = true\n",
        database.url(),
        bucket.endpoint
    );
    let config = crate::promotion::write_config(dir.path(), &extra);
    let server = ServerProcess::start_env(airlock(), &data, &["--config", config.to_str().unwrap()], &envs);
    assert!(!data.join("metadata.db").exists(), "the server runs over PostgreSQL");

    // The log served now extends the checkpoint signed before the move, and verifies whole.
    let url = format!("http://{}", server.addr);
    let consistent = Command::new(airlock())
        .args(["audit", "verify", "--server", &url, "--key"])
        .arg(dir.path().join("pinned.vkey"))
        .arg("--checkpoint")
        .arg(dir.path().join("before.note"))
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert_eq!(consistent.status.code(), Some(0), "{}", show(&consistent));
    crate::crash_support::audit_verifies(&server, dir.path(), "after the move");
    let checkpoint = body_text(&server.request("GET", "/api/v1/log/checkpoint", &[], b""));
    assert!(checkpoint.lines().nth(1).unwrap().parse::<u64>().unwrap() >= before_size, "{checkpoint}");

    // The same bytes come back: the release in prod, and the big layer from the bucket.
    assert_eq!(get(&server, "/v2/prod/payments/api/manifests/1.0"), prod_manifest);
    assert_eq!(get(&server, &format!("/v2/dev/big/blobs/{big_digest}")), big_layer.to_vec());

    // People log in with what they had: a password, and a password with a second factor.
    crate::crash_support::api_token(&server, "alice", "alice-password-123", None);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let code = airlock_access::totp::code_at(&carol_totp, now);
    crate::crash_support::api_token(&server, "carol", "carol-password-123", Some(&code));
    server.admin_token();

    // Writes go on: a new repository takes an id after the copied ones, and the log grows.
    push(&server, "dev/after-the-move", "1", b"written over PostgreSQL and S3");
    crate::crash_support::writes_accepted(&server, "dev/after-the-move", "after the move");
    crate::crash_support::audit_verifies(&server, dir.path(), "after a write");
}

#[test]
fn a_database_that_holds_anything_or_refuses_the_login_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let Some(database) = runtime().block_on(TestDatabase::create("migrate_refusals")) else { return };
    let data = dir.path().join("data");
    let mut node = ServerProcess::start(airlock(), &data);
    push(&node, "dev/app", "1", b"a small node");
    assert!(node.terminate().success());
    let from = format!("sqlite:{}", data.join("metadata.db").display());

    let first = migrate(&["--from", &from, "--to", database.url(), "--output", "json"], &[]);
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let runtime = runtime();
    let target = runtime.block_on(database.store());
    let state = || {
        runtime.block_on(async {
            (
                target.log_size().await.unwrap(),
                target.latest_checkpoint().await.unwrap(),
                target.cached_state_version().await.unwrap(),
            )
        })
    };
    let copied = state();

    // Into a database that holds anything: refused, with the way out, and nothing changes.
    let again = migrate(&["--from", &from, "--to", database.url()], &[]);
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("is not empty")
            && stderr.contains("drop and recreate the database, or point `--to` at an empty one"),
        "{}",
        show(&again)
    );
    assert!(again.stdout.is_empty(), "{}", show(&again));
    assert_eq!(state(), copied);

    // Credentials PostgreSQL refuses: a clear error that never shows the password.
    let secret = "pa55-w0rd-never-shown";
    let authority = database.url().split_once('@').unwrap().1;
    let wrong = format!("postgres://nobody:{secret}@{authority}");
    let refused = migrate(&["--from", &from, "--to", &wrong, "--output", "json"], &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let shown = show(&refused);
    assert!(!shown.contains(secret), "the password leaked: {shown}");
    assert!(shown.contains("cannot connect to PostgreSQL at `nobody@"), "{shown}");
    assert!(shown.contains("check the URL's user, password, database"), "{shown}");
    assert_eq!(state(), copied);

    // Misuse of the command line.
    let not_url = migrate(&["--from", &from, "--to", &format!("mysql://nobody:{secret}@host/db")], &[]);
    assert_eq!(not_url.status.code(), Some(1), "{}", show(&not_url));
    assert!(!show(&not_url).contains(secret), "{}", show(&not_url));
    let half = migrate(&["--from", &from, "--to", database.url(), "--blobs-from", data.to_str().unwrap()], &[]);
    assert_eq!(half.status.code(), Some(2), "--blobs-from needs --blobs-to: {}", show(&half));
    runtime.block_on(target.close());
}
