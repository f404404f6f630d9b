//! The real `airlock` binary as a child process, and a minimal HTTP/1.1 client over `std::net`
//! for tests that must control the socket (crash mid-upload) or run beside real clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `airlock serve`, started with the bootstrap administrator's password set to
/// [`crate::ADMIN_PASSWORD`] and with a `tester` service account ([`crate::TESTER_ROLES`]). It
/// is an [`Endpoint`] too (through `Deref`): the client calls below go to it.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: Child,
    pub data: PathBuf,
    pub endpoint: Endpoint,
}

/// Where clients reach Airlock (one server, or a load balancer in front of several), and the
/// `tester` service account's key there; the client calls tests make.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// The `tester` service account's API key.
    pub tester_key: String,
}

impl std::ops::Deref for ServerProcess {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }
}

impl ServerProcess {
    /// Starts `binary serve` on an OS-chosen port over `data`, waiting until it listens.
    pub fn start(binary: &Path, data: &Path) -> ServerProcess {
        ServerProcess::start_with(binary, data, &[], "warn", Stdio::inherit())
    }

    /// Like [`ServerProcess::start`], with extra `serve` flags, a `RUST_LOG` filter and a
    /// destination for the server's log lines.
    pub fn start_with(binary: &Path, data: &Path, args: &[&str], log: &str, stderr: Stdio) -> ServerProcess {
        ServerProcess::spawn(binary, data, args, log, stderr, &[])
    }

    /// Like [`ServerProcess::start`], with extra `serve` flags and extra environment variables
    /// for the server (a failpoint, say).
    pub fn start_env(binary: &Path, data: &Path, args: &[&str], envs: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::spawn(binary, data, args, "warn", Stdio::inherit(), envs)
    }

    /// Like [`ServerProcess::start_env`], listening on `listen` (a replica restarted where its
    /// load balancer expects it).
    pub fn start_at(
        binary: &Path,
        data: &Path,
        listen: SocketAddr,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> ServerProcess {
        let mut all = vec!["--listen".to_owned(), listen.to_string()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let borrowed: Vec<&str> = all.iter().map(String::as_str).collect();
        ServerProcess::spawn(binary, data, &borrowed, "warn", Stdio::inherit(), envs)
    }

    fn spawn(
        binary: &Path,
        data: &Path,
        args: &[&str],
        log: &str,
        stderr: Stdio,
        envs: &[(&str, &str)],
    ) -> ServerProcess {
        let listen = if args.contains(&"--listen") { Vec::new() } else { vec!["--listen", "127.0.0.1:0"] };
        let mut child = Command::new(binary)
            .arg("serve")
            .args(listen)
            .arg("--data")
            .arg(data)
            .args(args)
            .env("RUST_LOG", log)
            .env("AIRLOCK_BOOTSTRAP_PASSWORD", crate::ADMIN_PASSWORD)
            .envs(envs.iter().copied())
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
        let mut server =
            ServerProcess { child, data: data.to_owned(), endpoint: Endpoint { addr, tester_key: String::new() } };
        // The key is kept beside the data directory, so a server restarted over the same data
        // (even one refusing writes) serves the same tester.
        let key_file = data.with_extension("tester-key");
        server.tester_key = match std::fs::read_to_string(&key_file) {
            Ok(key) => key,
            Err(_) => {
                let key = server.service_account(crate::TESTER, &crate::TESTER_ROLES);
                std::fs::write(&key_file, &key).expect("tester key saved");
                key
            }
        };
        server
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

impl Endpoint {
    /// Enrolls a second factor for the bootstrap administrator (a lone admin grants nothing
    /// privileged without one); a second call (or one after a restart over the same data) is
    /// refused as replacing it, which is fine.
    pub fn enroll_admin(&self) {
        let basic = crate::basic("admin", crate::ADMIN_PASSWORD);
        let enrolled = request(self.addr, "POST", "/api/v1/auth/mfa", &[("authorization", &basic)], b"");
        assert!(
            enrolled.status == 200 || enrolled.status == 400,
            "admin mfa: {}",
            String::from_utf8_lossy(&enrolled.body)
        );
    }

    /// An API token of the bootstrap administrator.
    pub fn admin_token(&self) -> String {
        let basic = crate::basic("admin", crate::ADMIN_PASSWORD);
        let reply = request(self.addr, "POST", "/api/v1/auth/token", &[("authorization", &basic)], b"");
        assert_eq!(reply.status, 200, "admin login: {}", String::from_utf8_lossy(&reply.body));
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("token JSON");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Creates service account `name` holding `roles` (or gives an existing one a new key, for a
    /// server restarted over the same data) through the API, as the administrator; returns its
    /// API key.
    pub fn service_account(&self, name: &str, roles: &[&str]) -> String {
        if roles.iter().any(|r| ["release-approver", "key-admin", "break-glass", "access-admin"].contains(r)) {
            self.enroll_admin();
        }
        let bearer = format!("Bearer {}", self.admin_token());
        let body = serde_json::json!({"name": name, "kind": "service_account", "roles": roles}).to_string();
        let headers = [("authorization", bearer.as_str()), ("content-type", "application/json")];
        let mut reply = request(self.addr, "POST", "/api/v1/principals", &headers, body.as_bytes());
        if reply.status == 400 {
            reply = request(self.addr, "POST", &format!("/api/v1/principals/{name}/api-key"), &headers, b"");
        }
        assert!(
            reply.status == 200 || reply.status == 201,
            "service account: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("principal JSON");
        body["api_key"].as_str().expect("api key").to_owned()
    }

    /// Creates user `name` holding `roles` through the API as the administrator and enrolls it
    /// with `password`; returns its TOTP secret.
    pub fn user(&self, name: &str, password: &str, roles: &[&str], email: Option<&str>) -> Vec<u8> {
        self.enroll_admin();
        let bearer = format!("Bearer {}", self.admin_token());
        let body = serde_json::json!({"name": name, "kind": "user", "roles": roles, "email": email}).to_string();
        let headers = [("authorization", bearer.as_str()), ("content-type", "application/json")];
        let created = request(self.addr, "POST", "/api/v1/principals", &headers, body.as_bytes());
        assert_eq!(created.status, 201, "create `{name}`: {}", String::from_utf8_lossy(&created.body));
        let created: serde_json::Value = serde_json::from_slice(&created.body).expect("principal JSON");
        let token = created["enrollment_token"].as_str().expect("enrollment token");
        let body = serde_json::json!({"token": token, "password": password}).to_string();
        let enrolled =
            request(self.addr, "POST", "/api/v1/auth/enroll", &[("content-type", "application/json")], body.as_bytes());
        assert_eq!(enrolled.status, 200, "enroll `{name}`: {}", String::from_utf8_lossy(&enrolled.body));
        let enrolled: serde_json::Value = serde_json::from_slice(&enrolled.body).expect("enrollment JSON");
        crate::promotion::base32_decode(enrolled["secret"].as_str().expect("TOTP secret"))
    }

    /// A registry token of `tester` for `scopes`.
    pub fn registry_token(&self, scopes: &[String]) -> String {
        let basic = crate::basic(crate::TESTER, &self.tester_key);
        let query: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
        let reply = request(
            self.addr,
            "GET",
            &format!("/token?service=airlock&{}", query.join("&")),
            &[("authorization", &basic)],
            b"",
        );
        assert_eq!(reply.status, 200, "token: {}", String::from_utf8_lossy(&reply.body));
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("token JSON");
        body["token"].as_str().expect("token").to_owned()
    }

    /// The headers plus `tester`'s bearer token for what `path` names, when it is under `/v2`.
    fn with_token<'a>(&self, path: &str, headers: &[(&'a str, &'a str)]) -> (Vec<(&'a str, String)>, bool) {
        let mut out: Vec<(&'a str, String)> = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let uri: http::Uri = path.parse().expect("path parses");
        let scopes = crate::scopes_for(&uri);
        let base = uri.path().trim_end_matches('/') == "/v2";
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) && (!scopes.is_empty() || base) {
            out.push(("authorization", format!("Bearer {}", self.registry_token(&scopes))));
        }
        (out, base)
    }

    /// [`request`] to this server, as `tester` for `/v2` paths.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawReply {
        let (headers, _) = self.with_token(path, headers);
        let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(self.addr, method, path, &borrowed, body)
    }

    /// [`start_request`] to this server, as `tester` for `/v2` paths.
    pub fn start_request(&self, method: &str, path: &str, headers: &[(&str, &str)], content_length: u64) -> TcpStream {
        let (headers, _) = self.with_token(path, headers);
        let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        start_request(self.addr, method, path, &borrowed, content_length)
    }

    /// `host:port`, as registry clients want it.
    pub fn host(&self) -> String {
        self.addr.to_string()
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
