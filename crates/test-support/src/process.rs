//! The real `airlock` binary as a child process, and a minimal HTTP/1.1 client over `std::net`
//! for tests that must control the socket (crash mid-upload) or run beside real clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `airlock serve`.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub data: PathBuf,
}

impl ServerProcess {
    /// Starts `binary serve` on an OS-chosen port over `data`, waiting until it listens.
    pub fn start(binary: &Path, data: &Path) -> ServerProcess {
        ServerProcess::start_with(binary, data, &[], "warn", Stdio::inherit())
    }

    /// Like [`ServerProcess::start`], with extra `serve` flags, a `RUST_LOG` filter and a
    /// destination for the server's log lines.
    pub fn start_with(binary: &Path, data: &Path, args: &[&str], log: &str, stderr: Stdio) -> ServerProcess {
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(args)
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("airlock binary starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let addr = first
            .strip_prefix("airlock listening on http://")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from airlock serve: {first:?}"));
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServerProcess { child, addr, data: data.to_owned() }
    }

    /// `host:port`, as registry clients want it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// SIGKILL: the crash case.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a graceful exit and returns its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        self.child.wait().expect("server exits")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
    }
}

/// Opens a connection and writes a request head announcing `content_length` body bytes.
pub fn start_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_length: u64,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {content_length}\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream
}

/// Reads the whole response from a connection opened with `Connection: close`.
pub fn finish_request(mut stream: TcpStream) -> RawReply {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status line");
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    RawReply { status, headers, body }
}

/// One whole request.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawReply {
    let mut stream = start_request(addr, method, path, headers, body.len() as u64);
    stream.write_all(body).expect("write body");
    finish_request(stream)
}

/// Runs `PRAGMA integrity_check` on a data directory's metadata database.
pub async fn integrity_check(data: &Path) -> String {
    let store =
        airlock_store::SqliteStore::open(&data.join(airlock_server::DATABASE_FILE)).await.expect("database opens");
    let verdict = store.integrity_check().await.expect("integrity check runs");
    store.close().await;
    verdict
}
