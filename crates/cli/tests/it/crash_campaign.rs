//! The crash campaign: the server aborts at each failpoint of a durable write (blob
//! commit, manifest push, tag set, trust root apply, grant approval, checkpoint signing) and is
//! restarted over the same data directory, one failpoint after another. After every restart:
//! every write acknowledged so far, in this run, is there with its log entry; the write that
//! crashed is either all there with its log entry or not there at all, as its failpoint says; no
//! blob is served unless its bytes match its digest; `airlock audit verify` passes; and the same
//! kind of write succeeds again. The promotion commit's failpoints are in `promotion_crash.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use airlock_test_support::oci::{Image, digest, pseudo_random};
use airlock_test_support::process::ServerProcess;
use serde_json::{Value, json};

use crate::crash_support::{
    api, api_token, audit_verifies, body_text, checkpoint_file_size, json_of, log_entries, manifest_put, push_blobs,
    request_into_crash, settled_log, sql, start, wait_for_abort, writes_accepted,
};
use crate::{airlock, run, trust_init};

const REPO: &str = "dev/crash/app";
/// Above the inline limit (`INLINE_BLOB_MAX`, 128 KiB): such a blob is a file in the blob store.
const BIG: usize = 192 * 1024;

/// What a crashing write does.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A blob above the inline limit, uploaded in a session: a file moved into place, then its row.
    BigBlob,
    /// A blob below the limit, pushed in one request: only its row.
    SmallBlob,
    /// A manifest put by digest.
    Manifest,
    /// A new tag put on a stored manifest.
    Tag,
    /// The next version of the trust root.
    TrustRoot,
    /// An access admin's approval of a pending just-in-time grant.
    Grant,
    /// The background checkpointer signing after a (tag) write.
    Checkpoint,
}

/// Each failpoint, the write that reaches it, and whether that write is durable when it fires.
/// For the checkpointer, durable means the checkpoint is in the database.
const FAILPOINTS: [(&str, Kind, bool); 14] = [
    ("blob-commit-moved", Kind::BigBlob, false),
    ("blob-commit-linked", Kind::SmallBlob, false),
    ("blob-commit-done", Kind::BigBlob, true),
    ("manifest-push-logged", Kind::Manifest, false),
    ("manifest-push-done", Kind::Manifest, true),
    ("tag-set-logged", Kind::Tag, false),
    ("tag-set-done", Kind::Tag, true),
    ("trust-root-apply-logged", Kind::TrustRoot, false),
    ("trust-root-apply-done", Kind::TrustRoot, true),
    ("grant-approve-logged", Kind::Grant, false),
    ("grant-approve-done", Kind::Grant, true),
    ("checkpoint-sign-signed", Kind::Checkpoint, false),
    ("checkpoint-sign-stored", Kind::Checkpoint, true),
    ("checkpoint-sign-done", Kind::Checkpoint, true),
];

/// A write, as the state it leaves once durable.
#[derive(Clone)]
enum Write {
    Blob { bytes: Vec<u8> },
    Manifest { digest: String, body: Vec<u8> },
    Tag { tag: String, digest: String },
    TrustRoot { version: u64, document: Vec<u8> },
    GrantRequested { id: String },
    GrantApproved { id: String },
}

/// Names a write in assertion messages, without its bytes.
impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Write::Blob { bytes } => write!(f, "blob {} ({} bytes)", digest(bytes), bytes.len()),
            Write::Manifest { digest, .. } => write!(f, "manifest {digest}"),
            Write::Tag { tag, digest } => write!(f, "tag {tag} on {digest}"),
            Write::TrustRoot { version, .. } => write!(f, "trust root version {version}"),
            Write::GrantRequested { id } => write!(f, "access request {id}"),
            Write::GrantApproved { id } => write!(f, "approval of access request {id}"),
        }
    }
}

/// Whether the log holds an entry of type `kind` (a prefix: `registry.tag.` is every tag event)
/// whose event matches `what`.
fn logged(entries: &[Value], kind: &str, what: impl Fn(&Value) -> bool) -> bool {
    entries.iter().any(|e| e["event"]["type"].as_str().is_some_and(|t| t.starts_with(kind)) && what(&e["event"]))
}

/// Whether `write` is there after a restart, checking it is all there or not at all: its state
/// visible exactly when its log entry exists, and a blob served only with the right bytes.
fn present(server: &ServerProcess, admin: &str, entries: &[Value], write: &Write, context: &str) -> bool {
    let (visible, entry) = match write {
        Write::Blob { bytes } => {
            let d = digest(bytes);
            let head = server.request("HEAD", &format!("/v2/{REPO}/blobs/{d}"), &[], b"");
            let get = server.request("GET", &format!("/v2/{REPO}/blobs/{d}"), &[], b"");
            match (head.status, get.status) {
                (404, 404) => return false,
                (200, 200) => {
                    assert_eq!(head.header("content-length"), bytes.len().to_string(), "{context}: size of {d}");
                    assert_eq!(head.header("docker-content-digest"), d, "{context}");
                    assert_eq!(digest(&get.body), d, "{context}: {d} is served with other bytes");
                    return true;
                }
                (h, g) => panic!("{context}: blob {d} half there: HEAD {h}, GET {g}"),
            }
        }
        Write::Manifest { digest: d, body } => {
            let got = server.request("GET", &format!("/v2/{REPO}/manifests/{d}"), &[], b"");
            assert!(got.status == 200 || got.status == 404, "{context}: {}", body_text(&got));
            if got.status == 200 {
                assert_eq!(&got.body, body, "{context}: manifest {d} is served with other bytes");
            }
            (got.status == 200, logged(entries, "registry.manifest.push", |e| e["subject"]["digest"] == *d))
        }
        Write::Tag { tag, digest: d } => {
            let got = server.request("GET", &format!("/v2/{REPO}/manifests/{tag}"), &[], b"");
            assert!(got.status == 200 || got.status == 404, "{context}: {}", body_text(&got));
            if got.status == 200 {
                assert_eq!(got.header("docker-content-digest"), d, "{context}: tag {tag}");
            }
            let entry =
                logged(entries, "registry.tag.", |e| e["subject"]["tag"] == *tag && e["subject"]["digest"] == *d);
            (got.status == 200, entry)
        }
        Write::TrustRoot { version, document } => {
            let got = server.request("GET", &format!("/api/v1/trust/root?version={version}"), &[], b"");
            assert!(got.status == 200 || got.status == 404, "{context}: {}", body_text(&got));
            if got.status == 200 {
                assert_eq!(&got.body, document, "{context}: trust root {version} is served with other bytes");
            }
            (got.status == 200, logged(entries, "trust.root.", |e| e["details"]["version"] == *version))
        }
        Write::GrantRequested { id } | Write::GrantApproved { id } => {
            let listed = api(server, "GET", "/api/v1/access/requests", admin, None);
            assert_eq!(listed.status, 200, "{context}: {}", body_text(&listed));
            let grants = json_of(&listed);
            let status = grants
                .as_array()
                .and_then(|all| all.iter().find(|g| g["id"] == *id))
                .map(|g| g["status"].as_str().unwrap_or_default().to_owned());
            let (state, kind) = match write {
                Write::GrantRequested { .. } => (status.is_some(), "access.grant.request"),
                _ => (status.as_deref() == Some("active"), "access.grant.approve"),
            };
            if matches!(write, Write::GrantApproved { .. }) {
                assert!(status.is_some(), "{context}: the approved request {id} is gone");
            }
            (state, logged(entries, kind, |e| e["details"]["grant"] == *id))
        }
    };
    assert_eq!(visible, entry, "{context}: {write:?} is visible {visible} but logged {entry}");
    visible
}

/// The campaign's state: one data directory, the writes acknowledged so far, the callers.
struct Campaign {
    dir: tempfile::TempDir,
    data: PathBuf,
    /// The config: a fixed `public_url`, so that tokens (whose issuer it is) outlive restarts on
    /// new ports.
    config: String,
    acked: Vec<Write>,
    /// The administrator's token, with a fresh second factor: approves grants.
    admin: String,
    /// A key admin's token: applies trust roots.
    keys: String,
    /// Trust root documents, version 1 first; `applied` of them are in force.
    roots: Vec<Vec<u8>>,
    applied: usize,
    /// Stored manifests to tag, and a counter for fresh names.
    images: Vec<Image>,
    serial: u32,
    /// A blob whose push crashed unacknowledged: the next blob push sends it again, as a
    /// client's retry would (over the file a crash at `blob-commit-moved` left in place).
    retry: Option<Vec<u8>>,
}

impl Campaign {
    /// A fresh data directory; a first (plain) server acknowledges one write of every kind.
    fn new() -> Campaign {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let roots = trust_roots(dir.path());
        let config = dir.path().join("airlock.toml");
        // Every checkpoint is written to the file beside the key at once, so each crash point
        // finds the file in a known state (`checkpoint_file.rs` covers the default interval).
        std::fs::write(
            &config,
            "public_url = \"http://crash-campaign.test\"\n[log]\ncheckpoint_file_interval_ms = 0\n",
        )
        .unwrap();
        let config = config.to_str().unwrap().to_owned();
        let server = start(&data, &["--config", &config], None);
        let basic = airlock_test_support::basic("admin", airlock_test_support::ADMIN_PASSWORD);
        let enrolled = server.request("POST", "/api/v1/auth/mfa", &[("authorization", &basic)], b"");
        assert_eq!(enrolled.status, 200, "admin mfa: {}", body_text(&enrolled));
        let secret = airlock_test_support::promotion::base32_decode(json_of(&enrolled)["secret"].as_str().unwrap());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let code = airlock_access::totp::code_at(&secret, now);
        let admin = api_token(&server, "admin", airlock_test_support::ADMIN_PASSWORD, Some(&code));
        let key = server.service_account("keys", &["key-admin"]);
        let keys = api_token(&server, "keys", &key, None);
        let mut campaign = Campaign {
            dir,
            data,
            config,
            acked: Vec::new(),
            admin,
            keys,
            roots,
            applied: 0,
            images: Vec::new(),
            serial: 0,
            retry: None,
        };
        for kind in [Kind::BigBlob, Kind::SmallBlob, Kind::Manifest, Kind::Tag, Kind::TrustRoot, Kind::Grant] {
            campaign.write(&server, kind, "before any crash");
        }
        campaign.check(&server, "before any crash");
        campaign.stop(server);
        campaign
    }

    fn next(&mut self) -> u32 {
        self.serial += 1;
        self.serial
    }

    fn big_blob(&mut self) -> Vec<u8> {
        let serial = self.next();
        self.retry.take().unwrap_or_else(|| pseudo_random(BIG, u64::from(serial)))
    }

    fn small_blob(&mut self) -> Vec<u8> {
        let serial = self.next();
        self.retry.take().unwrap_or_else(|| format!("crash campaign blob {serial}").into_bytes())
    }

    /// A new image whose blobs are pushed (and acknowledged) into [`REPO`].
    fn image_with_blobs(&mut self, server: &ServerProcess) -> Image {
        let image = Image::new(&[("app.bin", format!("crash campaign image {}", self.next()).as_bytes())]);
        push_blobs(server, REPO, &image);
        self.acked.extend(image.blobs().map(|b| Write::Blob { bytes: b.to_vec() }));
        image
    }

    /// A pending grant of `deployer` for a new service account, acknowledged.
    fn grant_request(&mut self, server: &ServerProcess) -> String {
        let name = format!("bot-{}", self.next());
        let key = server.service_account(&name, &["developer"]);
        let bot = api_token(server, &name, &key, None);
        let body = json!({"role": "deployer", "duration": "30m", "reason": "crash campaign"});
        let asked = api(server, "POST", "/api/v1/access/requests", &bot, Some(&body));
        assert_eq!(asked.status, 201, "{}", body_text(&asked));
        let id = json_of(&asked)["id"].as_str().expect("grant id").to_owned();
        self.acked.push(Write::GrantRequested { id: id.clone() });
        id
    }

    /// The request performing the next write of `kind`, prepared (its prerequisites
    /// acknowledged) but not sent: (method, path, headers, body) and the write it makes.
    fn prepare(&mut self, server: &ServerProcess, kind: Kind) -> (Request, Write) {
        match kind {
            Kind::BigBlob => {
                let bytes = self.big_blob();
                let started = server.request("POST", &format!("/v2/{REPO}/blobs/uploads/"), &[], b"");
                assert_eq!(started.status, 202, "{}", body_text(&started));
                let path = format!("{}?digest={}", started.header("location"), digest(&bytes));
                (Request { method: "PUT", path, headers: vec![], body: bytes.clone() }, Write::Blob { bytes })
            }
            Kind::SmallBlob => {
                let bytes = self.small_blob();
                let path = format!("/v2/{REPO}/blobs/uploads/?digest={}", digest(&bytes));
                (Request { method: "POST", path, headers: vec![], body: bytes.clone() }, Write::Blob { bytes })
            }
            Kind::Manifest => {
                let image = self.image_with_blobs(server);
                let (path, headers) = manifest_put(REPO, &image.digest(), &image);
                let write = Write::Manifest { digest: image.digest(), body: image.manifest.to_vec() };
                let request = Request::new("PUT", path, &headers, &image.manifest, None);
                self.images.push(image);
                (request, write)
            }
            Kind::Tag | Kind::Checkpoint => {
                let image = self.images.last().expect("a stored manifest to tag").clone();
                let tag = format!("t{}", self.next());
                let (path, headers) = manifest_put(REPO, &tag, &image);
                (Request::new("PUT", path, &headers, &image.manifest, None), Write::Tag { tag, digest: image.digest() })
            }
            Kind::TrustRoot => {
                let document = self.roots.get(self.applied).expect("a next trust root version").clone();
                let version = self.applied as u64 + 1;
                let request = Request::new("PUT", "/api/v1/trust/root".to_owned(), &[], &document, Some(&self.keys));
                (request, Write::TrustRoot { version, document })
            }
            Kind::Grant => {
                let id = self.grant_request(server);
                let path = format!("/api/v1/access/requests/{id}/approve");
                (Request::new("POST", path, &[], b"", Some(&self.admin)), Write::GrantApproved { id })
            }
        }
    }

    /// Performs the next write of `kind` and checks it is acknowledged.
    fn write(&mut self, server: &ServerProcess, kind: Kind, context: &str) {
        let (request, write) = self.prepare(server, kind);
        let headers = request.header_refs();
        let reply = server.request(request.method, &request.path, &headers, &request.body);
        assert!(reply.status == 200 || reply.status == 201, "{context}: {write:?}: {}", body_text(&reply));
        self.acknowledged(write);
    }

    fn acknowledged(&mut self, write: Write) {
        if let Write::TrustRoot { version, .. } = &write {
            self.applied = usize::try_from(*version).unwrap();
        }
        self.acked.push(write);
    }

    /// Every acknowledged write is there, with its log entry.
    fn check(&self, server: &ServerProcess, context: &str) {
        let entries = log_entries(server);
        for write in &self.acked {
            assert!(present(server, &self.admin, &entries, write, context), "{context}: acknowledged {write:?} lost");
        }
    }

    fn stop(&self, mut server: ServerProcess) {
        let status = server.terminate();
        assert!(status.success(), "graceful exit on SIGTERM: {status}");
    }

    /// One failpoint: the server armed with it dies in the write of `kind`; restarted, it holds
    /// every acknowledged write, the crashed one all or nothing as `durable` says, a log that
    /// verifies, and takes the same kind of write again. Returns the outcome, for the report.
    fn crash_at(&mut self, point: &str, kind: Kind, durable: bool) -> String {
        let mut server = start(&self.data, &["--config", &self.config], Some(point));
        let (request, write) = self.prepare(&server, kind);
        if let Kind::Checkpoint = kind {
            // The checkpoint of the start settles first, so the one after this write is the one
            // that crashes.
            settled_log(&server);
        }
        let headers = request.header_refs();
        let size_before = log_entries(&server).len() as u64;
        let answer = request_into_crash(&server, request.method, &request.path, &headers, &request.body);
        let acked = match kind {
            // The checkpointer signs after the write's commit, in the background: the write is
            // acknowledged (when the process outlived the response, which it nearly always does).
            Kind::Checkpoint => String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 201"),
            _ => {
                assert!(answer.is_empty(), "{point}: answered before dying: {}", String::from_utf8_lossy(&answer));
                false
            }
        };
        wait_for_abort(&mut server, point);
        drop(server);
        let mirrored = checkpoint_file_size(&self.data);

        let server = start(&self.data, &["--config", &self.config], None);
        writes_accepted(&server, REPO, point);
        self.check(&server, point);
        let entries = log_entries(&server);
        let there = present(&server, &self.admin, &entries, &write, point);
        let outcome = match kind {
            Kind::Checkpoint => {
                assert!(there || !acked, "{point}: the acknowledged write before the checkpoint is lost");
                // The checkpointer signed the log as the write left it: every entry before the
                // restart's `server.start`.
                let added =
                    entries.iter().skip(size_before as usize).take_while(|e| e["event"]["type"] != "server.start");
                let size = size_before + added.count() as u64;
                assert!(size > size_before, "{point}: the write before the checkpoint left no log entry");
                let stored =
                    sql(&self.data, &format!("SELECT COUNT(*) FROM log_checkpoints WHERE size = {size}")) == "1";
                assert_eq!(stored, durable, "{point}: checkpoint of size {size} stored {stored}, expected {durable}");
                let expect_mirrored = if point == "checkpoint-sign-done" { size } else { size_before };
                assert_eq!(mirrored, expect_mirrored, "{point}: the checkpoint file beside the key at the crash");
                if there {
                    self.acknowledged(write);
                }
                format!("write kept, checkpoint {}", if stored { "stored" } else { "re-signed at restart" })
            }
            _ => {
                assert_eq!(there, durable, "{point}: {write:?} there {there}, expected {durable}");
                match write {
                    write if there => self.acknowledged(write),
                    Write::Blob { bytes } => self.retry = Some(bytes),
                    _ => {}
                }
                (if there { "committed" } else { "rolled back" }).to_owned()
            }
        };

        // The same kind of write again, on the restarted server.
        self.write(&server, kind, &format!("{point}, after the restart"));
        self.check(&server, &format!("{point}, after the restart"));
        audit_verifies(&server, self.dir.path(), point);
        self.stop(server);
        outcome
    }
}

/// A request to send, owning its parts.
struct Request {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Request {
    /// With `headers`, and an API token's bearer header when `token` is given.
    fn new(
        method: &'static str,
        path: String,
        headers: &[(&'static str, &str)],
        body: &[u8],
        token: Option<&str>,
    ) -> Request {
        let mut owned: Vec<(&'static str, String)> = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        if let Some(token) = token {
            owned.push(("authorization", format!("Bearer {token}")));
            owned.push(("content-type", "application/json".to_owned()));
        }
        Request { method, path, headers: owned, body: body.to_vec() }
    }

    fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
}

/// Trust root documents version 1 to 6, each signed by the one root key, made with the CLI.
fn trust_roots(dir: &Path) -> Vec<Vec<u8>> {
    let d = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    run(Command::new(airlock()).args([
        "key",
        "generate",
        "--algorithm",
        "ed25519",
        "--out",
        &d("ci"),
        "--output",
        "json",
    ]));
    run(&mut trust_init(dir, 1, 1));
    let mut files = vec![d("root/root.json")];
    for version in 2..=6 {
        let next = d(&format!("v{version}.json"));
        let from = files.last().unwrap().clone();
        run(Command::new(airlock()).args(["trust", "propose", "--from", &from, "--out", &next, "--output", "json"]));
        run(Command::new(airlock()).args(["trust", "sign", &next, "--key", &d("root/root-1.key"), "--output", "json"]));
        files.push(next);
    }
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Every failpoint in turn over one data directory. It starts the server twice per failpoint,
/// so `cargo xtask ci` skips the `crash_campaign` tests and `scripts/crash-campaign` runs them on
/// their own (one test at a time) from `scripts/test`, printing a line per failpoint.
#[test]
fn crash_campaign_every_failpoint_leaves_acknowledged_writes_and_a_verifying_log() {
    let started = Instant::now();
    let mut campaign = Campaign::new();
    for (point, kind, durable) in FAILPOINTS {
        let at = Instant::now();
        let outcome = campaign.crash_at(point, kind, durable);
        println!("crash-campaign: {point}: ok ({outcome}) in {:.1?}", at.elapsed());
    }
    println!(
        "crash-campaign: {} failpoints, {} acknowledged writes kept, in {:.1?}",
        FAILPOINTS.len(),
        campaign.acked.len(),
        started.elapsed()
    );
}
