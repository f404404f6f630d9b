//! Three `airlock serve` replicas over one PostgreSQL database and one S3 bucket (SeaweedFS),
//! behind HAProxy running `deploy/haproxy.cfg`: real clients push and pull through it, one
//! upload's chunks land on different replicas, promotions and approvals go through it, and the
//! log they all append to verifies. The chaos cases kill a replica in the middle of the work.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlock_test_support::oci::Image;
use airlock_test_support::postgres::TestDatabase;
use airlock_test_support::process::{Endpoint, ServerProcess, request};
use airlock_test_support::services::service;

use crate::{airlock, run};

/// The key files a replica must share with the others: the log's key and origin, the token key
/// and the release key. The first replica creates them; the operator copies them to the rest.
const SHARED_KEYS: [&str; 4] = ["log/key", "log/origin", "auth/token.key", "keys/release.key"];

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The S3 settings of the test bucket, or `None` to skip.
pub(crate) struct Bucket {
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
}

pub(crate) fn bucket(test: &str) -> Option<Bucket> {
    Some(Bucket {
        endpoint: service("AIRLOCK_TEST_S3_ENDPOINT", test)?,
        bucket: service("AIRLOCK_TEST_S3_BUCKET", test)?,
        access_key: service("AIRLOCK_TEST_S3_ACCESS_KEY", test)?,
        secret_key: service("AIRLOCK_TEST_S3_SECRET_KEY", test)?,
    })
}

/// Three replicas behind HAProxy, and what they run over.
pub struct Cluster {
    pub replicas: Vec<ServerProcess>,
    pub balancer: Child,
    /// Where clients go: the load balancer, with the `tester` key in force.
    pub endpoint: Endpoint,
    pub config: PathBuf,
    envs: Vec<(String, String)>,
    _database: TestDatabase,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.balancer.kill();
        let _ = self.balancer.wait();
    }
}

impl Cluster {
    /// Starts the cluster under `dir`, or `None` when PostgreSQL or S3 is not configured.
    pub fn start(dir: &Path, test: &str) -> Option<Cluster> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let database = runtime.block_on(TestDatabase::create(test))?;
        let bucket = bucket(test)?;
        let balancer_port = free_port();
        let prefix = format!("{test}-{}", std::process::id());
        let extra = format!(
            r#"public_url = "http://127.0.0.1:{balancer_port}"

[store]
url = "{}"
pool_max = 8

[blobs]
url = "s3://{}/{prefix}"
endpoint = "{}"
region = "us-east-1"
allow_http = true

[server]
trusted_proxies = ["127.0.0.1"]
"#,
            database.url(),
            bucket.bucket,
            bucket.endpoint,
        );
        let config = crate::promotion::write_config(dir, &extra);
        let envs = vec![
            ("AWS_ACCESS_KEY_ID".to_owned(), bucket.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), bucket.secret_key.clone()),
        ];
        let mut cluster = Cluster {
            replicas: Vec::new(),
            balancer: Command::new("true").spawn().unwrap(),
            endpoint: Endpoint { addr: SocketAddr::from(([127, 0, 0, 1], balancer_port)), tester_key: String::new() },
            config,
            envs,
            _database: database,
        };
        for n in 1..=3 {
            let data = dir.join(format!("replica{n}"));
            if n > 1 {
                for key in SHARED_KEYS {
                    let (from, to) = (dir.join("replica1").join(key), data.join(key));
                    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                    std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
                }
            }
            let replica = cluster.start_replica(&data);
            cluster.replicas.push(replica);
        }
        // The last start gave `tester` a new key; it is the one in force everywhere.
        cluster.endpoint.tester_key = cluster.replicas[2].tester_key.clone();
        cluster.balancer = cluster.start_balancer();
        Some(cluster)
    }

    /// Starts one replica over `data` with the cluster's config.
    pub fn start_replica(&self, data: &Path) -> ServerProcess {
        let envs: Vec<(&str, &str)> = self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        ServerProcess::start_env(airlock(), data, &["--config", self.config.to_str().unwrap()], &envs)
    }

    fn start_balancer(&self) -> Child {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/haproxy.cfg");
        let mut balancer = Command::new("haproxy");
        balancer.args(["-f", file.to_str().unwrap(), "-db"]).env("AIRLOCK_LB_BIND", self.endpoint.addr.to_string());
        for (n, replica) in self.replicas.iter().enumerate() {
            balancer.env(format!("AIRLOCK_REPLICA_{}", n + 1), replica.addr.to_string());
        }
        let child = balancer.stdout(Stdio::null()).spawn().expect("haproxy starts (Debian `haproxy`)");
        self.wait_ready(Duration::from_secs(20));
        child
    }

    /// Waits until the balancer answers `/readyz` with 200 several times in a row (every
    /// replica in rotation).
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut in_a_row = 0;
        while in_a_row < 6 {
            assert!(Instant::now() < deadline, "the balancer did not become ready");
            let ready = TcpStream::connect(self.endpoint.addr).is_ok()
                && request(self.endpoint.addr, "GET", "/readyz", &[], b"").status == 200;
            in_a_row = if ready { in_a_row + 1 } else { 0 };
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Requests with `method` that `replica` answered, from its own `/metrics`.
fn served(replica: &ServerProcess, method: &str) -> u64 {
    let metrics = request(replica.addr, "GET", "/metrics", &[], b"");
    let text = String::from_utf8_lossy(&metrics.body);
    let label = format!("method=\"{method}\"");
    text.lines()
        .filter(|l| l.starts_with("airlock_http_requests_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn three_replicas_behind_haproxy_run_the_whole_job() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cluster) = Cluster::start(dir.path(), "three_replicas_behind_haproxy") else { return };
    let lb = &cluster.endpoint;

    // One upload, its chunks each on a new connection: round robin spreads them over replicas.
    let bytes = airlock_test_support::oci::pseudo_random(3 * 1024 * 1024 + 17, 7);
    let digest = airlock_test_support::oci::digest(&bytes);
    let started = lb.request("POST", "/v2/dev/chunked/blobs/uploads/", &[], b"");
    assert_eq!(started.status, 202, "{}", String::from_utf8_lossy(&started.body));
    let mut location = started.header("location").to_owned();
    let mut offset = 0usize;
    for chunk in bytes.chunks(1024 * 1024 + 5) {
        let range = format!("{offset}-{}", offset + chunk.len() - 1);
        let headers = [("content-type", "application/octet-stream"), ("content-range", range.as_str())];
        let reply = lb.request("PATCH", &location, &headers, chunk);
        assert_eq!(reply.status, 202, "chunk at {offset}: {}", String::from_utf8_lossy(&reply.body));
        location = reply.header("location").to_owned();
        offset += chunk.len();
    }
    let separator = if location.contains('?') { '&' } else { '?' };
    let done = lb.request("PUT", &format!("{location}{separator}digest={digest}"), &[], b"");
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    let pulled = lb.request("GET", &format!("/v2/dev/chunked/blobs/{digest}"), &[], b"");
    assert_eq!((pulled.status, pulled.body == bytes), (200, true));
    let chunks: Vec<u64> = cluster.replicas.iter().map(|r| served(r, "PATCH")).collect();
    assert_eq!(chunks.iter().sum::<u64>(), 4, "four chunks: {chunks:?}");
    assert!(chunks.iter().filter(|n| **n > 0).count() >= 2, "the chunks reached several replicas: {chunks:?}");
    for replica in &cluster.replicas {
        for local in ["metadata.db", "blobs", "uploads"] {
            assert!(!replica.data.join(local).exists(), "{local} is in PostgreSQL or S3, not the data directory");
        }
    }

    // podman pushes and pulls through the balancer.
    let image = Image::new(&[("bin/tool", b"a tool behind a load balancer")]);
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "1");
    let creds = format!("tester:{}", lb.tester_key);
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--preserve-digests", "--dest-creds", &creds])
        .arg(format!("oci:{}:1", layout.display()))
        .arg(format!("docker://{}/dev/tools/tool:1", lb.host())));
    let storage = dir.path().join("podman");
    let podman = |args: &[&str]| {
        let mut command = Command::new("podman");
        command.arg("--root").arg(storage.join("root")).arg("--runroot").arg(storage.join("run"));
        command.args(["--storage-driver", "vfs"]).args(args);
        run(&mut command)
    };
    let reference = format!("{}/dev/tools/tool:1", lb.host());
    podman(&["pull", "--tls-verify=false", "--creds", &creds, &reference]);
    let again = format!("{}/dev/tools/tool:again", lb.host());
    podman(&["tag", &reference, &again]);
    podman(&["push", "--tls-verify=false", "--creds", &creds, &again]);
    let listed = lb.request("GET", "/v2/dev/tools/tool/tags/list", &[], b"");
    let tags: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1", "again"]), "{tags}");

    // The whole promotion job, every request through the balancer.
    crate::promotion::promote_end_to_end(dir.path(), lb);

    // The log all three appended to is one tree: the auditor's verification passes through the
    // balancer, whichever replica answers each read.
    crate::crash_support::audit_verifies(lb, dir.path(), "three replicas");
}
