//! Fresh PostgreSQL databases for tests: one per test, created through an admin connection to
//! the cluster `AIRLOCK_TEST_POSTGRES_URL` names (see [`crate::services`]) and dropped when the
//! test's [`TestDatabase`] goes.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airlock_store::{PostgresOptions, PostgresStore};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// The variable naming the test cluster: `postgres://postgres@127.0.0.1:PORT/postgres`.
pub const POSTGRES_URL_VAR: &str = "AIRLOCK_TEST_POSTGRES_URL";

/// A database created for one test, dropped (with any connection still open to it) when this
/// value is.
#[derive(Debug)]
pub struct TestDatabase {
    admin: PgConnectOptions,
    name: String,
    url: String,
}

impl TestDatabase {
    /// A new, empty database on the test cluster, or `None` when the cluster is not configured
    /// and `test` should be skipped ([`crate::services::service`]).
    ///
    /// # Panics
    /// When the cluster is configured but the database cannot be created.
    pub async fn create(test: &str) -> Option<TestDatabase> {
        let admin_url = crate::services::service(POSTGRES_URL_VAR, test)?;
        Some(TestDatabase::create_on(&admin_url, test).await)
    }

    /// A new, empty database on the cluster `admin_url` names.
    ///
    /// # Panics
    /// When the database cannot be created.
    pub async fn create_on(admin_url: &str, test: &str) -> TestDatabase {
        let admin_url = admin_url.to_owned();
        let admin = PgConnectOptions::from_str(&admin_url)
            .unwrap_or_else(|e| panic!("`{POSTGRES_URL_VAR}` is not a PostgreSQL URL: {e}"));
        let name = unique_name(test);
        let mut conn = admin.connect().await.unwrap_or_else(|e| panic!("cannot reach the test cluster: {e}"));
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create database `{name}`: {e}"));
        sqlx::Connection::close(conn).await.ok();
        let url = with_database(&admin_url, &name);
        TestDatabase { admin, name, url }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Store options for the database, with timeouts short enough for tests.
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions {
            pool_max: 8,
            statement_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            ..PostgresOptions::new(self.url.clone())
        }
    }

    /// A store over the database (migrating it on first use).
    ///
    /// # Panics
    /// When it cannot connect.
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.options()).await.unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Dropping is async and this is not: a thread of its own runs it to the end, best effort
        // (the cluster is thrown away after the run anyway).
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let mut conn = admin.connect().await.ok()?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut conn).await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// A PostgreSQL cluster of one test's own, for a test that stops and starts the database under
/// load (the shared one serves other tests meanwhile). Needs Debian's `postgresql`, as
/// `scripts/services` installs it; run as root, it runs the server as the `postgres` user
/// (`initdb` refuses root). Stopped (immediately) when dropped.
#[derive(Debug)]
pub struct PrivateCluster {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
}

impl PrivateCluster {
    /// Creates and starts a cluster under `dir`, or `None` when PostgreSQL is not configured
    /// for the tests (see [`crate::services::service`]).
    ///
    /// # Panics
    /// When PostgreSQL is configured but its binaries cannot make a cluster.
    pub fn start(dir: &std::path::Path, test: &str) -> Option<PrivateCluster> {
        crate::services::service(POSTGRES_URL_VAR, test)?;
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's postgresql is installed (scripts/services installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("a PostgreSQL version with initdb");
        std::fs::create_dir_all(dir).expect("cluster directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let cluster = PrivateCluster { bin, dir: dir.to_owned(), port };
        if is_root() {
            let status = std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir).status();
            assert!(status.is_ok_and(|s| s.success()), "chown the cluster directory to postgres");
        }
        let data = dir.join("data");
        let init = cluster
            .as_postgres("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("initdb runs");
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        cluster.ctl("start");
        Some(cluster)
    }

    fn as_postgres(&self, program: &str) -> std::process::Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            std::process::Command::new(path)
        }
    }

    fn ctl(&self, action: &str) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let mut command = self.as_postgres("pg_ctl");
        command.arg("-D").arg(self.dir.join("data")).arg("-l").arg(self.dir.join("log")).args(["-w", "-o", &options]);
        match action {
            "stop" => command.args(["-m", "fast", "stop"]),
            "kill" => command.args(["-m", "immediate", "stop"]),
            other => command.arg(other),
        };
        let out = command.output().expect("pg_ctl runs");
        assert!(out.status.success() || action == "kill", "pg_ctl {action}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The cluster's admin URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: sessions are cut, in-flight transactions roll back).
    pub fn stop(&self) {
        self.ctl("stop");
    }

    /// Starts the server again, on the same port.
    pub fn start_again(&self) {
        self.ctl("start");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.ctl("kill");
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// A database name unique in this cluster: the test's name (trimmed to fit PostgreSQL's 63
/// bytes), the process and a counter.
fn unique_name(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let stem: String =
        test.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    let suffix = format!("_{}_{n}", std::process::id());
    let keep = 63 - "t_".len() - suffix.len();
    format!("t_{}{suffix}", &stem[..stem.len().min(keep)])
}

/// `url` with its database (the path) replaced by `database`, the query kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_test_database() {
        let cases = [
            ("postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/t1"),
            ("postgres://u:p@h/postgres?sslmode=require", "postgres://u:p@h/t1?sslmode=require"),
            ("postgres://u@h:1", "postgres://u@h:1/t1"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "t1"), expected);
        }
        let long = unique_name(&"a".repeat(100));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(unique_name("same"), unique_name("same"));
    }
}
