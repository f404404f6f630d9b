//! SQLite's reader connections, lent for one query at a time.
//!
//! sqlx's pool tests every connection handed back to it: a task spawned per query, and a ping
//! that is a round trip to the connection's own thread. Every reader query then costs two such
//! round trips instead of one, and on a small machine those thread switches were the largest
//! part of a request's CPU. A read-only SQLite connection outside a transaction needs no test:
//! its thread runs commands in order, so a query whose caller went away finishes (or stops at
//! its next row) before the next one starts. A connection that failed in a way that may leave
//! it unusable is dropped instead of lent again, and a new one is opened when needed.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::lend::{self, ACQUIRE_TIMEOUT, Lend};

/// Read-only connections to one database, at most `size` open, opened as needed.
#[derive(Clone)]
pub(crate) struct Readers {
    inner: Arc<Inner>,
}

struct Inner {
    options: SqliteConnectOptions,
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for Readers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idle = self.inner.idle.lock().map(|idle| idle.len()).unwrap_or_default();
        f.debug_struct("Readers").field("idle", &idle).finish_non_exhaustive()
    }
}

impl Readers {
    /// Readers of the database `options` opens (read-only), up to `size` at once. One is opened
    /// now, so a database that cannot be read fails here rather than at the first query.
    pub(crate) async fn open(options: SqliteConnectOptions, size: usize) -> Result<Readers, sqlx::Error> {
        let options = options.read_only(true);
        let first = options.connect().await?;
        let inner = Inner { options, idle: Mutex::new(vec![first]), permits: Arc::new(Semaphore::new(size.max(1))) };
        Ok(Readers { inner: Arc::new(inner) })
    }

    /// A connection to read through, waiting while `size` are lent (at most [`ACQUIRE_TIMEOUT`]).
    pub(crate) async fn acquire(&self) -> Result<Reader, sqlx::Error> {
        let permit = Arc::clone(&self.inner.permits).acquire_owned();
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, permit)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.inner.options.connect().await?,
        };
        Ok(Reader { conn: Some(conn), retired: false, readers: Arc::clone(&self.inner), _permit: permit })
    }

    /// Closes every idle connection and lends no more.
    pub(crate) async fn close(&self) {
        self.inner.permits.close();
        let idle = std::mem::take(&mut *self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for conn in idle {
            // A connection that fails to close cleanly is gone all the same.
            let _ = conn.close().await;
        }
    }
}

/// A connection lent by [`Readers`], returned when dropped.
pub(crate) struct Reader {
    conn: Option<SqliteConnection>,
    retired: bool,
    readers: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Reader {
    /// The connection. It is gone only once found broken, and a broken reader is only dropped.
    pub(crate) fn connection(&mut self) -> Result<&mut SqliteConnection, sqlx::Error> {
        self.conn.as_mut().ok_or(sqlx::Error::WorkerCrashed)
    }

    /// Closes the connection when the reader is dropped, instead of lending it again: for a
    /// connection about to be changed (a progress handler) by a caller that may go away.
    pub(crate) fn retire(&mut self) {
        self.retired = true;
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !self.retired
            && !self.readers.permits.is_closed()
        {
            self.readers.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
    }
}

impl Lend for Readers {
    type Lent = Reader;

    fn lend(&self) -> impl Future<Output = Result<Reader, sqlx::Error>> + Send {
        self.acquire()
    }

    fn connection(lent: &mut Reader) -> Result<&mut SqliteConnection, sqlx::Error> {
        lent.connection()
    }

    fn broke(&self, lent: &mut Reader) {
        lent.conn = None;
    }
}

lend::executor!(Readers);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use sqlx::sqlite::SqliteJournalMode;

    /// A database of three rows, and up to `size` readers of it.
    async fn readers(dir: &tempfile::TempDir, size: usize) -> Readers {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("r.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let mut conn = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER NOT NULL)").execute(&mut conn).await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (1), (2), (3)").execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        Readers::open(options, size).await.unwrap()
    }

    #[tokio::test]
    async fn a_query_whose_caller_went_away_does_not_answer_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        // One connection, so the next query runs where the abandoned one did.
        let readers = readers(&dir, 1).await;
        let long = sqlx::query_scalar::<_, i64>(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) SELECT x FROM c",
        )
        .fetch_all(&readers);
        assert!(tokio::time::timeout(Duration::from_millis(5), long).await.is_err(), "the query ended too soon");
        let found: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n").fetch_all(&readers).await.unwrap();
        assert_eq!(found, vec![1, 2, 3]);
        let one: Option<i64> =
            sqlx::query_scalar("SELECT n FROM t WHERE n = 2").fetch_optional(&readers).await.unwrap();
        assert_eq!(one, Some(2));
    }

    #[tokio::test]
    async fn no_more_than_size_connections_are_lent_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let readers = readers(&dir, 2).await;
        let first = readers.acquire().await.unwrap();
        let _second = readers.acquire().await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(50), readers.acquire()).await.is_err());
        drop(first);
        let mut third = tokio::time::timeout(Duration::from_secs(5), readers.acquire()).await.unwrap().unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(third.connection().unwrap()).await.unwrap();
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let readers = readers(&dir, 1).await;
        assert!(sqlx::query("INSERT INTO t (n) VALUES (4)").execute(&readers).await.is_err());
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&readers).await.unwrap();
        assert_eq!(n, 3);
    }

    #[tokio::test]
    async fn a_retired_reader_is_not_lent_again() {
        let dir = tempfile::tempdir().unwrap();
        let readers = readers(&dir, 1).await;
        let mut reader = readers.acquire().await.unwrap();
        // A handler that interrupts every statement, as a spent check budget would.
        reader.connection().unwrap().lock_handle().await.unwrap().set_progress_handler(1, || false);
        reader.retire();
        drop(reader);
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&readers).await.unwrap();
        assert_eq!(n, 3);
    }
}
