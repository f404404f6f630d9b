//! A damaged metadata database: the start-up quick check finds it, every write is refused with
//! 503 and the reason, reads that still work go on, and `airlock doctor` says what to do.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use airlock_test_support::process::ServerProcess;

use crate::{airlock, show};

/// Bytes flipped at the start of one page of the `blobs` table.
const FLIPPED: usize = 64;

fn doctor(data: &Path) -> std::process::Output {
    Command::new(airlock()).args(["doctor", "--output", "json", "--data"]).arg(data).output().expect("airlock runs")
}

fn sqlite(db: &Path, query: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(query).output().expect("sqlite3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Inverts `FLIPPED` bytes at the start (header and cell pointers) of the middle leaf page of
/// `table`: that table damaged, the rest of the database readable. Returns the table's leaves.
fn damage_table(db: &Path, table: &str) -> usize {
    let query = format!("SELECT pageno FROM dbstat WHERE name = '{table}' AND pagetype = 'leaf' ORDER BY pageno");
    let pages: Vec<u64> = sqlite(db, &query).lines().map(|l| l.parse().unwrap()).collect();
    assert!(!pages.is_empty(), "the {table} table has a page");
    let page_size: u64 = sqlite(db, "PRAGMA page_size").parse().unwrap();
    let offset = (pages[pages.len() / 2] - 1) * page_size;
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(db).unwrap();
    let mut bytes = [0_u8; FLIPPED];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut bytes).unwrap();
    for b in &mut bytes {
        *b = !*b;
    }
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&bytes).unwrap();
    f.sync_all().unwrap();
    pages.len()
}

/// Before, the server started over such a database, `/readyz` said 503, and a blob push still
/// answered 201.
#[test]
fn damaged_database_refuses_writes_and_doctor_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(airlock(), &data);
    // Small blobs live inline in the database: enough of them to fill several pages.
    let filler = "x".repeat(1000);
    for i in 0..40 {
        let body = format!("blob number {i} {filler}");
        let digest = airlock_test_support::oci::digest(body.as_bytes());
        let reply =
            server.request("POST", &format!("/v2/dev/app/blobs/uploads/?digest={digest}"), &[], body.as_bytes());
        assert_eq!(reply.status, 201);
    }
    assert!(server.terminate().success());
    let healthy = doctor(&data);
    assert_eq!(healthy.status.code(), Some(0), "a healthy directory passes: {}", show(&healthy));

    let db = data.join(airlock_server::DATABASE_FILE);
    assert!(damage_table(&db, "blobs") >= 3, "the blobs table spans several pages");
    assert_ne!(sqlite(&db, "PRAGMA integrity_check"), "ok", "the flipped bytes damage a page in use");

    let server = ServerProcess::start(airlock(), &data);
    let digest = airlock_test_support::oci::digest(b"after the damage");
    let push = server.request("POST", &format!("/v2/dev/app/blobs/uploads/?digest={digest}"), &[], b"after the damage");
    assert_eq!(push.status, 503, "a write into a damaged store is refused: {}", String::from_utf8_lossy(&push.body));
    assert!(push.header("retry-after").parse::<u64>().is_ok_and(|s| s >= 1), "{:?}", push.headers);
    let body = String::from_utf8_lossy(&push.body);
    assert!(body.contains("damaged") && body.contains("airlock doctor"), "the refusal says why and what next: {body}");
    let start = server.request("POST", "/v2/dev/app/blobs/uploads/", &[], b"");
    assert_eq!(start.status, 503, "an upload session is a write too");

    let ready = server.request("GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503);
    assert!(String::from_utf8_lossy(&ready.body).contains("damaged"), "{}", String::from_utf8_lossy(&ready.body));
    assert_eq!(server.request("GET", "/healthz", &[], b"").status, 200, "the process is alive");
    assert_eq!(server.request("GET", "/api/v1/log/checkpoint", &[], b"").status, 200, "reads that work go on");
    drop(server);

    let damaged = doctor(&data);
    assert_eq!(damaged.status.code(), Some(1), "{}", show(&damaged));
    let report: serde_json::Value = serde_json::from_slice(&damaged.stdout).expect("doctor prints JSON");
    assert_eq!(report["healthy"], false);
    let database = &report["checks"][0];
    assert_eq!(database["ok"], false, "{report}");
    assert!(database["next"].as_str().unwrap_or_default().contains("restore"), "{report}");
}

/// Damage where the start must read (the log's checkpoints) stops the start, saying the database is damaged
/// and what to do, not only which read failed.
#[test]
fn damage_the_start_must_read_stops_it_with_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(airlock(), &data);
    assert!(server.terminate().success());
    let db = data.join(airlock_server::DATABASE_FILE);
    damage_table(&db, "log_checkpoints");
    // `timeout`: a server that starts anyway must not hang the test.
    let out = Command::new("timeout")
        .arg("20")
        .arg(airlock())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("AIRLOCK_BOOTSTRAP_PASSWORD", airlock_test_support::ADMIN_PASSWORD)
        .output()
        .expect("airlock runs");
    assert!(!out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is damaged") && stderr.contains("airlock doctor"), "{stderr}");
}
