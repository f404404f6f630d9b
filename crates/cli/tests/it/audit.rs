//! The transparency log end to end: `airlock audit` against a real server, the independent
//! Python verifier, and tampering with the database behind the server's back (with `sqlite3`,
//! as an operator with database access would).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use airlock_test_support::oci::{Image, digest};
use airlock_test_support::process::ServerProcess;

use crate::{airlock, python, run};

/// Pushes a one-layer image as `repo:tag` over the raw HTTP API.
fn push(server: &ServerProcess, repo: &str, tag: &str, contents: &[u8]) {
    let image = Image::new(&[("file", contents)]);
    for blob in image.blobs() {
        let d = digest(blob);
        let reply = server.request("POST", &format!("/v2/{repo}/blobs/uploads/?digest={d}"), &[], blob);
        assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    }
    let reply = server.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", image.media_type())],
        &image.manifest,
    );
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
}

fn log_size(server: &ServerProcess) -> u64 {
    let reply = server.request("GET", "/api/v1/log/entries?start=0&end=0", &[], b"");
    let page: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    page["size"].as_u64().unwrap()
}

/// Waits until the latest signed checkpoint covers the whole log.
fn wait_for_checkpoint(server: &ServerProcess) -> u64 {
    let size = log_size(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = server.request("GET", "/api/v1/log/checkpoint", &[], b"");
        let note = String::from_utf8_lossy(&reply.body).to_string();
        if note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) == Some(size) {
            return size;
        }
        assert!(Instant::now() < deadline, "no checkpoint of size {size} within 10 s; latest:\n{note}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn save_key(server: &ServerProcess, dir: &Path) -> PathBuf {
    let reply = server.request("GET", "/api/v1/log/key", &[], b"");
    assert_eq!(reply.status, 200);
    let path = dir.join("log.vkey");
    std::fs::write(&path, &reply.body).unwrap();
    path
}

fn audit(args: &[&str]) -> Output {
    Command::new(airlock()).arg("audit").args(args).output().expect("airlock runs")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Runs SQL against the data directory's database with the sqlite3 shell, dropping the log's
/// append-only triggers first, as an attacker with database access would.
fn tamper(data: &Path, sql: &str) {
    let script = format!(
        "DROP TRIGGER log_leaves_append_only_update; DROP TRIGGER log_leaves_append_only_delete; \
         DROP TRIGGER log_nodes_append_only_delete; DROP TRIGGER log_checkpoints_append_only_delete; {sql}"
    );
    run(Command::new("sqlite3").arg(data.join("metadata.db")).arg(script));
}

fn url(server: &ServerProcess) -> String {
    format!("http://{}", server.addr)
}

#[test]
fn verify_export_and_independent_check_then_an_edited_leaf_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(airlock(), &data);
    push(&server, "dev/app", "v1", b"one");
    push(&server, "dev/app", "v2", b"two");
    push(&server, "dev/app", "v1", b"three");
    let size = wait_for_checkpoint(&server);
    assert!(size >= 7, "start, three pushes, two tag creations and a move: {size}");
    let key = save_key(&server, dir.path());
    let key = key.to_str().unwrap();
    let server_url = url(&server);

    let ok = audit(&["verify", "--server", &server_url, "--key", key, "--output", "json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(json(&ok)["result"]["size"], size);

    // Export, then check offline with airlock and with the independent Python verifier.
    let export = dir.path().join("log.jsonl");
    let checkpoint = dir.path().join("checkpoint");
    let out = audit(&[
        "export",
        "--server",
        &server_url,
        "--out",
        export.to_str().unwrap(),
        "--checkpoint-out",
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let offline = audit(&[
        "verify",
        "--key",
        key,
        "--file",
        export.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(offline.status.code(), Some(0), "{}", String::from_utf8_lossy(&offline.stderr));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/verify_log.py");
    let independent = run(Command::new(python()).arg(script).arg(&export).arg(&checkpoint).arg(key));
    assert!(String::from_utf8_lossy(&independent.stdout).starts_with(&format!("ok {size} ")));

    // An inclusion proof for every entry verifies.
    for index in 0..size {
        let proof =
            audit(&["proof", "--server", &server_url, "--key", key, "--index", &index.to_string(), "--output", "json"]);
        assert_eq!(proof.status.code(), Some(0), "entry {index}: {}", String::from_utf8_lossy(&proof.stderr));
        assert_eq!(json(&proof)["verified"], true);
    }

    // Edit one old leaf behind the server's back.
    tamper(
        &data,
        "UPDATE log_leaves SET data = CAST(replace(CAST(data AS TEXT), 'dev/app', 'dev/evil') AS BLOB) WHERE idx = 4;",
    );
    let bad = audit(&["verify", "--server", &server_url, "--key", key, "--output", "json"]);
    assert_eq!(bad.status.code(), Some(3), "{}", String::from_utf8_lossy(&bad.stdout));
    let report = json(&bad);
    assert_eq!(report["verified"], false);
    assert_eq!(report["failure"]["first_bad_index"], 4, "{report}");
    let text = audit(&["verify", "--server", &server_url, "--key", key]);
    assert!(
        String::from_utf8_lossy(&text.stderr).contains("first bad index: 4"),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );

    // The independent verifier agrees once the edited leaf is exported.
    let out = audit(&["export", "--server", &server_url, "--out", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/verify_log.py");
    let independent = Command::new(python()).arg(script).arg(&export).arg(&checkpoint).arg(key).output().unwrap();
    assert_eq!(independent.status.code(), Some(1), "{}", String::from_utf8_lossy(&independent.stdout));
}

#[test]
fn removing_the_last_entries_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(airlock(), &data);
    push(&server, "dev/app", "v1", b"one");
    let early = wait_for_checkpoint(&server);
    push(&server, "dev/app", "v2", b"two");
    let size = wait_for_checkpoint(&server);
    let key = save_key(&server, dir.path());
    let saved = dir.path().join("saved");
    let out = audit(&[
        "checkpoint",
        "--server",
        &url(&server),
        "--key",
        key.to_str().unwrap(),
        "--out",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(server.terminate().success());

    // Delete the newest entries and every checkpoint that covered them.
    tamper(
        &data,
        &format!(
            "DELETE FROM log_leaves WHERE idx >= {early}; DELETE FROM log_nodes WHERE (idx + 1) << level > {early}; \
             DELETE FROM log_checkpoints WHERE size > {early};"
        ),
    );
    let server = ServerProcess::start(airlock(), &data);
    let bad = audit(&[
        "verify",
        "--server",
        &url(&server),
        "--key",
        key.to_str().unwrap(),
        "--checkpoint",
        saved.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(bad.status.code(), Some(3), "{}", String::from_utf8_lossy(&bad.stdout));
    let reason = json(&bad)["failure"]["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.contains(&format!("covers {size} entries")) && reason.contains(&format!("only {early}")),
        "{reason}"
    );
    // The server noticed too, from the checkpoint it keeps outside the database.
    let write = server.request("POST", "/v2/dev/app/blobs/uploads/", &[], b"");
    assert_eq!(write.status, 503, "{}", String::from_utf8_lossy(&write.body));
}

#[test]
fn an_older_copy_of_the_database_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let backup = dir.path().join("backup.db");
    let mut server = ServerProcess::start(airlock(), &data);
    push(&server, "dev/app", "v1", b"one");
    wait_for_checkpoint(&server);
    run(Command::new("sqlite3").arg(data.join("metadata.db")).arg(format!(".backup '{}'", backup.display())));
    push(&server, "dev/app", "v2", b"two");
    push(&server, "dev/app", "v3", b"three");
    let size = wait_for_checkpoint(&server);
    let key = save_key(&server, dir.path());
    let saved = dir.path().join("saved");
    let out = audit(&[
        "checkpoint",
        "--server",
        &url(&server),
        "--key",
        key.to_str().unwrap(),
        "--out",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(server.terminate().success());

    // Restore the older copy over the live database.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("metadata.db{suffix}")));
    }
    std::fs::copy(&backup, data.join("metadata.db")).unwrap();
    let server = ServerProcess::start(airlock(), &data);
    let bad = audit(&[
        "verify",
        "--server",
        &url(&server),
        "--key",
        key.to_str().unwrap(),
        "--checkpoint",
        saved.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(bad.status.code(), Some(3), "{}", String::from_utf8_lossy(&bad.stdout));
    let reason = json(&bad)["failure"]["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("shrank") && reason.contains(&format!("covers {size} entries")), "{reason}");
    let write = server.request("POST", "/v2/dev/app/blobs/uploads/", &[], b"");
    assert_eq!(write.status, 503);
    let body = String::from_utf8_lossy(&write.body);
    assert!(body.contains("older copy"), "{body}");
}

#[test]
fn a_restart_after_editing_a_leaf_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(airlock(), &data);
    push(&server, "dev/app", "v1", b"one");
    wait_for_checkpoint(&server);
    assert!(server.terminate().success());
    tamper(
        &data,
        // Entry 2 creates `admin` (0 is the start, 1 the policy bundle's load).
        "UPDATE log_leaves SET data = CAST(replace(CAST(data AS TEXT), 'admin', 'admib') AS BLOB) WHERE idx = 2;",
    );

    let server = ServerProcess::start(airlock(), &data);
    let write = server.request("POST", "/v2/dev/app/blobs/uploads/", &[], b"");
    assert_eq!(write.status, 503);
    let body: serde_json::Value = serde_json::from_slice(&write.body).unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED", "only the OCI spec's codes on /v2");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("log entry 2 was altered"), "{message}");
    // Reads still work, so the evidence can be examined.
    let read = server.request("GET", "/v2/dev/app/tags/list", &[], b"");
    assert_eq!(read.status, 200);
}

#[test]
fn tail_follows_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    push(&server, "dev/app", "v1", b"one");
    let out = audit(&["tail", "--server", &url(&server), "--from", "0", "--limit", "6", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"]["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "server.start",
            "policy.bundle.load",      // the default library
            "access.principal.create", // admin
            "access.principal.create", // tester
            "registry.manifest.push",
            "registry.tag.create"
        ]
    );
    let text = audit(&["tail", "--server", &url(&server), "--from", "4", "--limit", "1"]);
    let line = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(line.contains("registry.manifest.push") && line.contains("dev/app:v1"), "{line}");
}

#[test]
fn verification_needs_the_right_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    wait_for_checkpoint(&server);
    let other = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    let out = audit(&["verify", "--server", &url(&server), "--key", other, "--output", "json"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(json(&out)["failure"]["reason"].as_str().unwrap().contains("does not verify with the given key"));
    let out = audit(&["verify", "--server", &url(&server), "--key", "not-a-key"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`--key` is not a verifier key"));
}

/// The origin is the address the first start bound (`--listen` applied, port 0 resolved), it is
/// kept across restarts on other ports, and a `public_url` that would change it stops the start.
#[test]
fn the_log_origin_is_the_bound_address_and_never_changes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(airlock(), &data);
    let origin = format!("{}/log", server.addr);
    wait_for_checkpoint(&server);
    let note = server.request("GET", "/api/v1/log/checkpoint", &[], b"").body;
    assert_eq!(String::from_utf8_lossy(&note).lines().next(), Some(origin.as_str()));
    let key = String::from_utf8(server.request("GET", "/api/v1/log/key", &[], b"").body).unwrap();
    assert!(key.starts_with(&format!("{origin}+")), "the key is named after the origin: {key}");
    let out = audit(&["verify", "--server", &url(&server), "--key", key.trim(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(server.terminate().success());

    // Another port later: the stored origin stays.
    let mut server = ServerProcess::start(airlock(), &data);
    assert_ne!(format!("{}/log", server.addr), origin, "a new port was bound");
    push(&server, "dev/app", "v1", b"one");
    wait_for_checkpoint(&server);
    let note = server.request("GET", "/api/v1/log/checkpoint", &[], b"").body;
    assert_eq!(String::from_utf8_lossy(&note).lines().next(), Some(origin.as_str()));
    assert!(server.terminate().success());

    // A public URL that gives another origin: the server refuses to start and says how to fix it.
    let config = dir.path().join("airlock.toml");
    std::fs::write(&config, "public_url = \"https://registry.example.com\"\n").unwrap();
    let refused = Command::new(airlock())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("the log's origin is `{origin}`"))
            && stderr.contains("`public_url` makes it `registry.example.com/log`")
            && stderr.contains("docs/runbook.md"),
        "{stderr}"
    );
}

/// The independent verifier reads checkpoints by the letter of C2SP signed-note too: each hostile
/// signed checkpoint of the log's own test vectors (a bad signature line from the verifier's key
/// before or after a good one, a key named otherwise than the origin) is refused on its own,
/// before any entry is read.
#[test]
fn the_independent_verifier_refuses_the_hostile_checkpoint_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("empty.jsonl");
    std::fs::write(&export, b"").unwrap();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tlog/tests/data/checkpoint-note");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/verify_log.py");
    let mut seen = 0;
    for entry in std::fs::read_dir(&vectors).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "expected.txt") {
            continue;
        }
        // Signed with the seed [42; 32] under the name of the first signature line.
        let note = std::fs::read_to_string(&path).unwrap();
        let first = note.lines().find_map(|l| l.strip_prefix("\u{2014} ")).unwrap();
        let key_name = first.rsplit_once(' ').unwrap().0;
        let vkey = airlock_tlog::Signer::from_seed(key_name, [42; 32]).unwrap().verifier().to_vkey();
        let vkey_file = dir.path().join("log.vkey");
        std::fs::write(&vkey_file, vkey).unwrap();
        let out = Command::new(python()).arg(&script).arg(&export).arg(&path).arg(&vkey_file).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}: {stdout}", path.display());
        assert!(
            stdout.contains("does not verify") || stdout.contains("is not the key's name"),
            "{}: refused for another reason: {stdout}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 3, "vectors went missing: {seen}");
}
