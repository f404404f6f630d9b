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
        Some(TestDatabase { admin, name, url })
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
