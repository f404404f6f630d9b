//! What the crash tests share: a server started with a failpoint armed, a request sent into
//! its crash, the wait for the abort, and the checks that the log read back after a restart is
//! whole and verifies.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use airlock_core::ports::FAILPOINT_ENV;
use airlock_test_support::oci::{Image, digest};
use airlock_test_support::process::{Endpoint, RawReply, ServerProcess, request};
use serde_json::Value;

use crate::airlock;

/// What `abort()` ends a process with.
const SIGABRT: i32 = 6;

/// `airlock serve` over `data` with `args`, and with failpoint `point` armed when given.
pub fn start(data: &Path, args: &[&str], point: Option<&str>) -> ServerProcess {
    let env: Vec<(&str, &str)> = point.map(|p| (FAILPOINT_ENV, p)).into_iter().collect();
    ServerProcess::start_env(airlock(), data, args, &env)
}

pub fn body_text(reply: &RawReply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

pub fn json_of(reply: &RawReply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", body_text(reply)))
}

/// Pushes `image`'s blobs into `repo` over the raw HTTP API.
pub fn push_blobs(server: &Endpoint, repo: &str, image: &Image) {
    for blob in image.blobs() {
        let d = digest(blob);
        let reply = server.request("POST", &format!("/v2/{repo}/blobs/uploads/?digest={d}"), &[], blob);
        assert_eq!(reply.status, 201, "{}", body_text(&reply));
    }
}

/// The request putting `image`'s manifest at `repo:reference`, as (path, headers).
pub fn manifest_put<'a>(repo: &str, reference: &str, image: &'a Image) -> (String, [(&'static str, &'a str); 1]) {
    (format!("/v2/{repo}/manifests/{reference}"), [("Content-Type", image.media_type())])
}

/// Pushes a one-layer image as `repo:tag` over the raw HTTP API; returns it.
pub fn push(server: &Endpoint, repo: &str, tag: &str, contents: &[u8]) -> Image {
    let image = Image::new(&[("app.bin", contents)]);
    push_blobs(server, repo, &image);
    let (path, headers) = manifest_put(repo, tag, &image);
    let reply = server.request("PUT", &path, &headers, &image.manifest);
    assert_eq!(reply.status, 201, "{}", body_text(&reply));
    image
}

/// An API token for `name`, with a second factor when `otp` is given.
pub fn api_token(server: &Endpoint, name: &str, secret: &str, otp: Option<&str>) -> String {
    let basic = airlock_test_support::basic(name, secret);
    let mut headers = vec![("authorization", basic.as_str())];
    headers.extend(otp.map(|code| ("x-airlock-otp", code)));
    let reply = request(server.addr, "POST", "/api/v1/auth/token", &headers, b"");
    assert_eq!(reply.status, 200, "token for {name}: {}", body_text(&reply));
    json_of(&reply)["token"].as_str().expect("token").to_owned()
}

pub fn tester_token(server: &Endpoint) -> String {
    api_token(server, airlock_test_support::TESTER, &server.tester_key, None)
}

/// A request to `/api/v1` with an API token and, when given, a JSON body.
pub fn api(server: &Endpoint, method: &str, path: &str, token: &str, body: Option<&Value>) -> RawReply {
    let bearer = format!("Bearer {token}");
    let body = body.map(Value::to_string).unwrap_or_default();
    request(
        server.addr,
        method,
        path,
        &[("authorization", bearer.as_str()), ("content-type", "application/json")],
        body.as_bytes(),
    )
}

/// Sends a request to a server about to abort (as `tester` for `/v2` paths); returns whatever
/// came back (nothing, when the process died first), never failing on a dropped connection.
pub fn request_into_crash(
    server: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut stream = server.start_request(method, path, headers, body.len() as u64);
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw
}

/// [`request_into_crash`] to `/api/v1` with an API token and a JSON body.
pub fn api_into_crash(server: &Endpoint, method: &str, path: &str, token: &str, body: &Value) -> Vec<u8> {
    let bearer = format!("Bearer {token}");
    let headers = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    request_into_crash(server, method, path, &headers, body.to_string().as_bytes())
}

/// Waits for the server to die at its failpoint and checks it aborted.
pub fn wait_for_abort(server: &mut ServerProcess, point: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().expect("wait on the server") {
            assert_eq!(status.signal(), Some(SIGABRT), "{point}: the server should abort at the failpoint: {status}");
            return;
        }
        if Instant::now() > deadline {
            server.kill_hard();
            panic!("{point}: the server did not reach its failpoint within 15 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The log's entries, in order.
pub fn log_entries(server: &Endpoint) -> Vec<Value> {
    let reply = server.request("GET", "/api/v1/log/entries?start=0", &[], b"");
    assert_eq!(reply.status, 200, "{}", body_text(&reply));
    let page = json_of(&reply);
    let entries = page["entries"].as_array().expect("entries").clone();
    assert_eq!(Some(entries.len() as u64), page["size"].as_u64(), "one page holds the whole log");
    entries
}

/// Waits until the log has settled, and returns its size: every committed promotion has its
/// release bundle attached (the engine attaches it, and logs that, once a checkpoint covers the
/// commit) and the latest signed checkpoint covers the whole log.
pub fn wait_for_checkpoint(server: &Endpoint) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = log_entries(server);
        let size = entries.len() as u64;
        let of_kind = |kind: &str| {
            entries
                .iter()
                .filter(|e| e["event"]["type"] == kind)
                .map(|e| e["event"]["details"]["promotion"].clone())
                .collect::<Vec<_>>()
        };
        let attached = of_kind("promotion.bundle.attach");
        let bundled = of_kind("promotion.commit").iter().all(|id| attached.contains(id));
        let reply = server.request("GET", "/api/v1/log/checkpoint", &[], b"");
        let note = body_text(&reply);
        if bundled && note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) == Some(size) {
            return size;
        }
        assert!(Instant::now() < deadline, "no checkpoint of size {size} within 10 s; latest:\n{note}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `airlock audit verify` against the server with the log key it serves: exit 0, whole log.
pub fn audit_verifies(server: &airlock_test_support::process::Endpoint, dir: &Path, context: &str) {
    let size = wait_for_checkpoint(server);
    let key = server.request("GET", "/api/v1/log/key", &[], b"");
    assert_eq!(key.status, 200);
    let key_file = dir.join("log.vkey");
    std::fs::write(&key_file, &key.body).unwrap();
    let out = Command::new(airlock())
        .args(["audit", "verify", "--server", &format!("http://{}", server.addr), "--key"])
        .arg(&key_file)
        .args(["--output", "json"])
        .output()
        .expect("airlock runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{context}: the log verifies after the crash\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("verify prints JSON");
    assert_eq!(report["result"]["size"], size, "{context}: {report}");
}

/// The restarted server accepts writes into `repo`: its start-up checks found nothing wrong.
pub fn writes_accepted(server: &Endpoint, repo: &str, context: &str) {
    let write = server.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(write.status, 202, "{context}: the restarted server refuses writes: {}", body_text(&write));
}

/// Runs a query on the data directory's database with the sqlite3 shell, read-only.
pub fn sql(data: &Path, query: &str) -> String {
    let out = Command::new("sqlite3").arg("-readonly").arg(data.join("metadata.db")).arg(query).output().unwrap();
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until the latest checkpoint covers the whole log, and the checkpointer's wake-up for
/// the entries before it has passed too; returns the log's size.
pub fn settled_log(server: &Endpoint) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let size = log_entries(server).len() as u64;
        let note = body_text(&server.request("GET", "/api/v1/log/checkpoint", &[], b""));
        if note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) == Some(size) {
            std::thread::sleep(Duration::from_millis(100));
            return size;
        }
        assert!(Instant::now() < deadline, "no checkpoint of size {size} within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The size of the checkpoint in the file the server keeps beside its log key.
pub fn checkpoint_file_size(data: &Path) -> u64 {
    let note = std::fs::read_to_string(data.join("log").join("checkpoint")).expect("checkpoint file");
    note.lines().nth(1).and_then(|l| l.parse().ok()).expect("checkpoint size line")
}
