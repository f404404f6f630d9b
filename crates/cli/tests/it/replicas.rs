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
    bucket: Bucket,
    /// The blobs' prefix in the bucket.
    prefix: String,
    _database: TestDatabase,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.balancer.kill();
        let _ = self.balancer.wait();
    }
}

/// The stages of the chaos cases: `dev` pushable, `staging` with no gate but the policy, which
/// denies only critical findings.
fn simple_config(dir: &Path, extra: &str) -> PathBuf {
    let bundle = dir.join("policy");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("policy.rego"), airlock_test_support::promotion::DENY_CRITICAL_POLICY).unwrap();
    let config = format!(
        "{extra}\n[policy]\nbundle = \"{}\"\n\n[[stages]]\nname = \"dev\"\npushable = true\n\n[[stages]]\nname = \"staging\"\n",
        bundle.display()
    );
    let path = dir.join("airlock.toml");
    std::fs::write(&path, config).unwrap();
    path
}

impl Cluster {
    /// Starts the cluster under `dir` with the promotion job's stages, or `None` when
    /// PostgreSQL or S3 is not configured.
    pub fn start(dir: &Path, test: &str) -> Option<Cluster> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let database = runtime.block_on(TestDatabase::create(test))?;
        Cluster::over(dir, test, database, crate::promotion::write_config)
    }

    /// Starts the cluster under `dir` over `database`, its config written by `config`.
    fn over(dir: &Path, test: &str, database: TestDatabase, config: fn(&Path, &str) -> PathBuf) -> Option<Cluster> {
        let bucket = bucket(test)?;
        let balancer_port = free_port();
        let prefix = format!("{test}-{}", std::process::id());
        let extra = format!(
            r#"public_url = "http://127.0.0.1:{balancer_port}"

[store]
url = "{}"
pool_max = 8
# An outage longer than this is answered 503 rather than waited out.
connect_timeout_secs = 2

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
        let prefix = prefix.clone();
        let config = config(dir, &extra);
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
            bucket,
            prefix,
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
        self.start_replica_with(data, None, &[])
    }

    /// Starts one replica over `data` with the cluster's config and `extra` environment, on
    /// `listen` when given.
    fn start_replica_with(&self, data: &Path, listen: Option<SocketAddr>, extra: &[(&str, &str)]) -> ServerProcess {
        let mut envs: Vec<(&str, &str)> = self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        envs.extend_from_slice(extra);
        let args = ["--config", self.config.to_str().unwrap()];
        match listen {
            Some(addr) => ServerProcess::start_at(airlock(), data, addr, &args, &envs),
            None => ServerProcess::start_env(airlock(), data, &args, &envs),
        }
    }

    /// Restarts replica `n` (0-based) where it listened, with `AIRLOCK_FAILPOINT=point` when
    /// given: it aborts when its work reaches that point, as a `kill -9` there would. (A
    /// restart keeps `tester`'s key: it is kept beside the data directory.)
    fn restart(&mut self, n: usize, point: Option<&str>) {
        let (data, addr) = (self.replicas[n].data.clone(), self.replicas[n].addr);
        self.replicas[n].kill_hard();
        let env: Vec<(&str, &str)> = point.map(|p| ("AIRLOCK_FAILPOINT", p)).into_iter().collect();
        self.replicas[n] = self.start_replica_with(&data, Some(addr), &env);
        // The balancer finds it again at its next health check.
        self.wait_ready(Duration::from_secs(20));
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

impl Cluster {
    /// Starts the cluster with the chaos cases' stages ([`simple_config`]).
    fn simple(dir: &Path, test: &str) -> Option<Cluster> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let database = runtime.block_on(TestDatabase::create(test))?;
        Cluster::over(dir, test, database, simple_config)
    }

    /// Replica `n`'s own address, as a client that was talking to it directly sees it.
    fn direct(&self, n: usize) -> Endpoint {
        Endpoint { addr: self.replicas[n].addr, tester_key: self.endpoint.tester_key.clone() }
    }
}

/// Log entries of `kind` about promotion `id`.
fn events_about(lb: &Endpoint, kind: &str, id: &str) -> usize {
    crate::crash_support::log_entries(lb)
        .iter()
        .filter(|e| e["event"]["type"] == kind && e["event"].to_string().contains(id))
        .count()
}

#[test]
fn a_replica_killed_inside_a_promotion_commit_leaves_it_to_another_exactly_once() {
    use crate::crash_support::{api, api_into_crash, api_token, json_of, push, wait_for_abort};
    let dir = tempfile::tempdir().unwrap();
    let Some(mut cluster) = Cluster::simple(dir.path(), "chaos_promotion_commit") else { return };
    let ci_key = cluster.endpoint.service_account("ci-bot", &["ci"]);
    for point in ["promotion-commit-linked", "promotion-commit-sealed", "promotion-commit-logged"] {
        let tag = point.trim_start_matches("promotion-commit-");
        let image = push(&cluster.endpoint, "dev/app", tag, format!("built for {point}").as_bytes());
        cluster.restart(0, Some(point));
        let lb = cluster.endpoint.clone();
        let body = serde_json::json!({"repository": "dev/app", "reference": tag, "to": "staging", "tag": tag});
        // The request reaches the armed replica directly; it dies inside the commit.
        let direct = cluster.direct(0);
        let token = api_token(&direct, "ci-bot", &ci_key, None);
        let answer = api_into_crash(&direct, "POST", "/api/v1/promotions", &token, &body);
        wait_for_abort(&mut cluster.replicas[0], point);
        assert!(!String::from_utf8_lossy(&answer).contains("promoted"), "{point}: no answer came back");
        let staged = lb.request("GET", &format!("/v2/staging/app/manifests/{tag}"), &[], b"");
        assert_eq!(staged.status, 404, "{point}: nothing of the interrupted commit is in staging");

        // Asked again through the balancer, another replica commits it, once.
        let again = api(&lb, "POST", "/api/v1/promotions", &token, Some(&body));
        assert!(again.status == 200 || again.status == 201, "{point}: {}", String::from_utf8_lossy(&again.body));
        let promotion = json_of(&again);
        assert_eq!(promotion["status"], "promoted", "{point}: {promotion}");
        let id = promotion["id"].as_str().unwrap().to_owned();
        assert_eq!(events_about(&lb, "promotion.commit", &id), 1, "{point}: one commit on record");
        let staged = lb.request("GET", &format!("/v2/staging/app/manifests/{tag}"), &[], b"");
        assert_eq!((staged.status, staged.body), (200, image.manifest.to_vec()), "{point}");
        // The dead replica comes back over its data directory.
        cluster.restart(0, None);
    }
    crate::crash_support::audit_verifies(&cluster.endpoint, dir.path(), "promotion commits on three replicas");
}

#[test]
fn a_replica_killed_mid_chunk_leaves_the_upload_to_another() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let Some(mut cluster) = Cluster::simple(dir.path(), "chaos_chunked_upload") else { return };
    let lb = cluster.endpoint.clone();
    let bytes = airlock_test_support::oci::pseudo_random(2 * 1024 * 1024 + 3, 11);
    let digest = airlock_test_support::oci::digest(&bytes);
    let started = lb.request("POST", "/v2/dev/resumed/blobs/uploads/", &[], b"");
    assert_eq!(started.status, 202);
    let location = started.header("location").to_owned();
    let first = 1024 * 1024;
    let range = format!("0-{}", first - 1);
    let headers = [("content-type", "application/octet-stream"), ("content-range", range.as_str())];
    let reply = lb.request("PATCH", &location, &headers, &bytes[..first]);
    assert_eq!(reply.status, 202, "{}", String::from_utf8_lossy(&reply.body));
    let location = reply.header("location").to_owned();

    // The next chunk goes to replica 0 directly, which is killed halfway through it.
    let rest = &bytes[first..];
    let range = format!("{first}-{}", bytes.len() - 1);
    let headers = [("content-type", "application/octet-stream"), ("content-range", range.as_str())];
    let mut stream = cluster.direct(0).start_request("PATCH", &location, &headers, rest.len() as u64);
    stream.write_all(&rest[..rest.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    cluster.replicas[0].kill_hard();
    drop(stream);

    // Through the balancer the upload stands where the last whole chunk left it; the client
    // resumes from there and another replica commits it.
    let status = lb.request("GET", &location, &[], b"");
    assert_eq!(status.status, 204, "{}", String::from_utf8_lossy(&status.body));
    assert_eq!(status.header("range"), format!("0-{}", first - 1), "the half chunk was dropped");
    let resumed = lb.request("PATCH", &location, &headers, rest);
    assert_eq!(resumed.status, 202, "{}", String::from_utf8_lossy(&resumed.body));
    let location = resumed.header("location").to_owned();
    let separator = if location.contains('?') { '&' } else { '?' };
    let done = lb.request("PUT", &format!("{location}{separator}digest={digest}"), &[], b"");
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    let pulled = lb.request("GET", &format!("/v2/dev/resumed/blobs/{digest}"), &[], b"");
    assert_eq!((pulled.status, pulled.body == bytes), (200, true));
}

#[test]
fn a_replica_killed_while_signing_a_checkpoint_leaves_the_checkpoint_to_another() {
    use crate::crash_support::{push, wait_for_abort};
    let dir = tempfile::tempdir().unwrap();
    let Some(mut cluster) = Cluster::simple(dir.path(), "chaos_checkpoint") else { return };
    for point in ["checkpoint-sign-signed", "checkpoint-sign-stored"] {
        // A push through it logs a write, so its checkpointer reaches the point and the replica
        // dies holding a signed, unstored (or unmirrored) checkpoint.
        cluster.restart(0, Some(point));
        push(&cluster.direct(0), "dev/app", &format!("{point}-0"), b"committed before the checkpoint");
        wait_for_abort(&mut cluster.replicas[0], point);
        // The others go on: their commits and checkpoints cover what it had not signed.
        let lb = cluster.endpoint.clone();
        push(&lb, "dev/app", point, point.as_bytes());
        crate::crash_support::audit_verifies(&lb, dir.path(), point);
        cluster.restart(0, None);
        let restarted = request(cluster.replicas[0].addr, "GET", "/readyz", &[], b"");
        assert_eq!(restarted.status, 200, "{point}: {}", String::from_utf8_lossy(&restarted.body));
    }
}

#[test]
fn postgresql_restarted_under_load_costs_503s_and_loses_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let test = "chaos_postgres_restart";
    let Some(postgres) = airlock_test_support::postgres::PrivateCluster::start(&dir.path().join("pg"), test) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let database = runtime.block_on(TestDatabase::create_on(&postgres.url(), test));
    let Some(cluster) = Cluster::over(dir.path(), test, database, simple_config) else { return };
    let lb = cluster.endpoint.clone();
    // A registry token taken before the outage: logging in needs the database too.
    let token = format!("Bearer {}", lb.registry_token(&["repository:dev/load:pull,push".to_owned()]));

    // Pushes one image after another through the balancer; each manifest PUT's status is kept.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let load = {
        let (lb, token, stop) = (lb.clone(), token.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut pushed = Vec::new();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let image = Image::new(&[("n", n.to_be_bytes().as_slice())]);
                let auth = [("authorization", token.as_str())];
                // The first refusal among the blob pushes, or the manifest's status.
                let refused = image.blobs().find_map(|blob| {
                    let d = airlock_test_support::oci::digest(blob);
                    let path = format!("/v2/dev/load/blobs/uploads/?digest={d}");
                    let status = request(lb.addr, "POST", &path, &auth, blob).status;
                    (status != 201).then_some(status)
                });
                let status = refused.unwrap_or_else(|| {
                    let headers = [("authorization", token.as_str()), ("content-type", image.media_type())];
                    request(lb.addr, "PUT", &format!("/v2/dev/load/manifests/v{n}"), &headers, &image.manifest).status
                });
                pushed.push((n, image, status));
                std::thread::sleep(Duration::from_millis(20));
            }
            pushed
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    postgres.stop();
    std::thread::sleep(Duration::from_secs(3));
    postgres.start_again();
    // The replicas recover by themselves: no restart, the balancer puts them back.
    let recovered = Instant::now();
    cluster.wait_ready(Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let pushed = load.join().unwrap();
    eprintln!("recovered {} ms after the database came back", recovered.elapsed().as_millis());

    let statuses: std::collections::BTreeMap<u16, usize> =
        pushed.iter().fold(Default::default(), |mut m, (_, _, s)| {
            *m.entry(*s).or_default() += 1;
            m
        });
    assert!(statuses.get(&201).is_some_and(|n| *n > 5), "pushes succeeded before and after: {statuses:?}");
    assert!(statuses.contains_key(&503), "the outage was answered 503: {statuses:?}");
    assert!(
        statuses.keys().all(|s| [201, 503].contains(s)),
        "nothing but 201 and 503 (no internal error, no lost answer): {statuses:?}"
    );
    let last = pushed.last().unwrap();
    assert_eq!(last.2, 201, "writes work again after the restart: {statuses:?}");
    // Every acknowledged push is there, byte for byte.
    for (n, image, status) in &pushed {
        if *status == 201 {
            let headers = [("authorization", token.as_str()), ("accept", image.media_type())];
            let got = request(lb.addr, "GET", &format!("/v2/dev/load/manifests/v{n}"), &headers, b"");
            assert_eq!((got.status, &got.body), (200, &image.manifest.to_vec()), "push {n} was acknowledged");
        }
    }
    crate::crash_support::audit_verifies(&lb, dir.path(), "after a PostgreSQL restart");
}

#[test]
fn the_scrubber_quarantines_a_corrupt_object_in_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cluster) = Cluster::simple(dir.path(), "scrub_over_s3") else { return };
    let lb = &cluster.endpoint;
    // Larger than `limits.inline_blob_max_bytes`, so it lives in the bucket.
    let bytes = airlock_test_support::oci::pseudo_random(300 * 1024, 5);
    let digest = airlock_test_support::oci::digest(&bytes);
    let pushed = lb.request("POST", &format!("/v2/dev/scrubbed/blobs/uploads/?digest={digest}"), &[], &bytes);
    assert_eq!(pushed.status, 201, "{}", String::from_utf8_lossy(&pushed.body));

    // Someone with write access to the bucket changes the object's bytes.
    let hex = digest.trim_start_matches("sha256:");
    let b = &cluster.bucket;
    let key = format!("{}/{}/blobs/sha256/{}/{hex}", b.bucket, cluster.prefix, &hex[..2]);
    let tampered = dir.path().join("tampered");
    std::fs::write(&tampered, airlock_test_support::oci::pseudo_random(300 * 1024, 6)).unwrap();
    run(Command::new("curl")
        .args(["-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--user"])
        .arg(format!("{}:{}", b.access_key, b.secret_key))
        .args(["-X", "PUT", "--data-binary"])
        .arg(format!("@{}", tampered.display()))
        .arg(format!("{}/{key}", b.endpoint)));

    // One scrub pass, from a replica's data directory and config, finds it and quarantines it.
    let envs: Vec<(&str, &str)> = cluster.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = Command::new(airlock())
        .args(["scrub", "--output", "json", "--config", cluster.config.to_str().unwrap(), "--data"])
        .arg(&cluster.replicas[1].data)
        .envs(envs)
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", crate::show(&out)));
    assert_eq!(out.status.code(), Some(1), "a quarantine exits 1: {report}");
    assert_eq!(report["quarantined"], serde_json::json!([digest]), "{report}");
    let gone = lb.request("GET", &format!("/v2/dev/scrubbed/blobs/{digest}"), &[], b"");
    assert_eq!(gone.status, 404, "a quarantined blob is never served");
    // Pushing the good bytes again heals it.
    let healed = lb.request("POST", &format!("/v2/dev/scrubbed/blobs/uploads/?digest={digest}"), &[], &bytes);
    assert_eq!(healed.status, 201, "{}", String::from_utf8_lossy(&healed.body));
    let pulled = lb.request("GET", &format!("/v2/dev/scrubbed/blobs/{digest}"), &[], b"");
    assert_eq!((pulled.status, pulled.body == bytes), (200, true));
}

#[test]
fn a_replica_without_the_shared_keys_refuses_writes_and_says_what_to_copy() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cluster) = Cluster::simple(dir.path(), "replica_without_keys") else { return };
    crate::crash_support::push(&cluster.endpoint, "dev/app", "1", b"signed by the cluster's log key");
    crate::crash_support::wait_for_checkpoint(&cluster.endpoint);
    // A fourth replica started over an empty data directory makes keys of its own. (The
    // tester's key is handed to it beside its data directory: it could not create one.)
    let data = dir.path().join("stray");
    std::fs::write(data.with_extension("tester-key"), &cluster.endpoint.tester_key).unwrap();
    let stray = cluster.start_replica(&data);
    let ready = request(stray.addr, "GET", "/readyz", &[], b"");
    let said = String::from_utf8_lossy(&ready.body);
    assert_eq!(ready.status, 503, "{said}");
    assert!(said.contains("does not verify with the log key") && said.contains("Adding a replica"), "{said}");
    let write = stray.request("POST", "/v2/dev/app/blobs/uploads/", &[], b"");
    assert_eq!(write.status, 503, "{}", String::from_utf8_lossy(&write.body));
    // The others go on.
    crate::crash_support::push(&cluster.endpoint, "dev/app", "2", b"still accepted by the cluster");
}
