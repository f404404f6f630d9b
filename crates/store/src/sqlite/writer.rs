//! SQLite's one writer connection, lent for one statement or one transaction at a time.
//!
//! For the same reason as [`super::readers`]: sqlx's pool tests a connection handed back to it
//! with a round trip to the connection's thread, and the next writer waits for that test. Here
//! the connection is checked when it is taken instead, and only when its last user left
//! something to check: a transaction dropped without commit (its rollback is queued on the
//! connection's thread, and after some failures, a full disk among them, that rollback itself
//! fails and the connection would refuse every later `BEGIN`), or an error that may have broken
//! it. Either way a connection that is not clean is replaced by a fresh one.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::sqlite::{SqliteConnectOptions, SqliteTransactionManager};
use sqlx::{ConnectOptions, Connection, SqliteConnection, TransactionManager};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::lend::{self, ACQUIRE_TIMEOUT, Lend};

/// The writer connection of one database.
#[derive(Clone)]
pub(crate) struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    options: SqliteConnectOptions,
    /// `None` once closed.
    conn: Arc<Mutex<Option<SqliteConnection>>>,
    /// Set when an error may have broken the connection: the next taker replaces it.
    suspect: AtomicBool,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").field("suspect", &self.inner.suspect.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

/// The writer connection, lent; returned when dropped.
pub(crate) type Lent = OwnedMappedMutexGuard<Option<SqliteConnection>, SqliteConnection>;

impl Writer {
    /// The writer of the database `options` opens, opened now.
    pub(crate) async fn open(options: SqliteConnectOptions) -> Result<Writer, sqlx::Error> {
        let conn = options.connect().await?;
        let inner = Inner { options, conn: Arc::new(Mutex::new(Some(conn))), suspect: AtomicBool::new(false) };
        Ok(Writer { inner: Arc::new(inner) })
    }

    /// The connection, once the previous user is done with it, checked clean.
    pub(crate) async fn acquire(&self) -> Result<Lent, sqlx::Error> {
        let lock = Arc::clone(&self.inner.conn).lock_owned();
        let mut guard: OwnedMutexGuard<Option<SqliteConnection>> =
            tokio::time::timeout(ACQUIRE_TIMEOUT, lock).await.map_err(|_| sqlx::Error::PoolTimedOut)?;
        let Some(conn) = guard.as_mut() else { return Err(sqlx::Error::PoolClosed) };
        if self.inner.suspect.swap(false, Ordering::AcqRel) || !clean(conn).await {
            let fresh = self.inner.options.connect().await;
            let fresh = fresh.inspect_err(|_| self.inner.suspect.store(true, Ordering::Release))?;
            if let Some(old) = guard.replace(fresh) {
                // Its thread ends once it is dropped; a close that fails changes nothing.
                let _ = old.close_hard().await;
            }
        }
        OwnedMutexGuard::try_map(guard, Option::as_mut).map_err(|_| sqlx::Error::PoolClosed)
    }

    /// Begins a transaction with `statement` (`BEGIN IMMEDIATE`).
    pub(crate) async fn begin(&self, statement: &'static str) -> Result<Tx, sqlx::Error> {
        let mut conn = self.acquire().await?;
        let begun = SqliteTransactionManager::begin(&mut conn, Some(Cow::Borrowed(statement))).await;
        self.note(&begun);
        begun?;
        Ok(Tx { conn, open: true, writer: Arc::clone(&self.inner) })
    }

    /// Waits for the current user, then closes the connection: the database's last connection
    /// to close checkpoints its WAL.
    pub(crate) async fn close(&self) {
        let taken = self.inner.conn.lock().await.take();
        if let Some(conn) = taken {
            // A connection that fails to close cleanly is gone all the same.
            let _ = conn.close().await;
        }
    }

    /// Has the next taker replace the connection, whose state is not known to be sound.
    pub(crate) fn distrust(&self) {
        self.inner.suspect.store(true, Ordering::Release);
    }

    fn note<T>(&self, result: &Result<T, sqlx::Error>) {
        self.inner.note(result);
    }
}

impl Inner {
    /// Marks the connection suspect when `result` says it may be broken.
    fn note<T>(&self, result: &Result<T, sqlx::Error>) {
        if result.as_ref().is_err_and(super::lend::broken) {
            self.suspect.store(true, Ordering::Release);
        }
    }
}

/// Whether `conn` holds no transaction. One left by a dropped [`Tx`] has its rollback queued;
/// the ping waits for it to run.
async fn clean(conn: &mut SqliteConnection) -> bool {
    if !conn.is_in_transaction() {
        return true;
    }
    conn.ping().await.is_ok() && !conn.is_in_transaction()
}

/// A write transaction: rolled back when dropped without [`Tx::commit`].
pub(crate) struct Tx {
    conn: Lent,
    open: bool,
    writer: Arc<Inner>,
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx").field("open", &self.open).finish_non_exhaustive()
    }
}

impl Tx {
    /// Commits the transaction.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let committed = SqliteTransactionManager::commit(&mut self.conn).await;
        self.writer.note(&committed);
        committed?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            // Queued on the connection's thread, ahead of whatever its next user sends.
            SqliteTransactionManager::start_rollback(&mut self.conn);
        }
    }
}

impl Lend for Writer {
    type Lent = Lent;

    fn lend(&self) -> impl Future<Output = Result<Lent, sqlx::Error>> + Send {
        self.acquire()
    }

    fn connection(lent: &mut Lent) -> Result<&mut SqliteConnection, sqlx::Error> {
        Ok(&mut *lent)
    }

    fn broke(&self, _: &mut Lent) {
        self.distrust();
    }
}

lend::executor!(Writer);

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqliteJournalMode;
    use std::time::Duration;

    async fn writer(dir: &tempfile::TempDir) -> Writer {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let writer = Writer::open(options).await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER NOT NULL)").execute(&writer).await.unwrap();
        writer
    }

    async fn count(writer: &Writer) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(writer).await.unwrap()
    }

    #[tokio::test]
    async fn a_transaction_dropped_without_commit_is_rolled_back_and_the_writer_lent_again() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir).await;
        let mut tx = writer.begin("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (1)").execute(&mut *tx).await.unwrap();
        drop(tx);
        let mut tx = writer.begin("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (2)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let kept: Vec<i64> = sqlx::query_scalar("SELECT n FROM t").fetch_all(&writer).await.unwrap();
        assert_eq!(kept, vec![2]);
    }

    #[tokio::test]
    async fn a_transaction_whose_caller_went_away_mid_statement_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir).await;
        let slow = async {
            let mut tx = writer.begin("BEGIN IMMEDIATE").await.unwrap();
            // Long enough to be cut short: a million rows through a recursive query.
            sqlx::query(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) \
                 INSERT INTO t (n) SELECT x FROM c",
            )
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        };
        assert!(tokio::time::timeout(Duration::from_millis(5), slow).await.is_err(), "the insert ended too soon");
        assert_eq!(count(&writer).await, 0);
        let mut tx = writer.begin("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (7)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count(&writer).await, 1);
    }

    #[tokio::test]
    async fn a_distrusted_writer_is_replaced_and_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir).await;
        // A state the next user must not inherit: an open transaction on the connection.
        {
            let mut conn = writer.acquire().await.unwrap();
            sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
            sqlx::query("INSERT INTO t (n) VALUES (1)").execute(&mut *conn).await.unwrap();
        }
        writer.distrust();
        let mut tx = writer.begin("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (2)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count(&writer).await, 1);
    }

    #[tokio::test]
    async fn a_closed_writer_refuses_and_its_callers_are_told() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir).await;
        writer.close().await;
        assert!(matches!(writer.begin("BEGIN IMMEDIATE").await, Err(sqlx::Error::PoolClosed)));
        assert!(matches!(sqlx::query("SELECT 1").execute(&writer).await, Err(sqlx::Error::PoolClosed)));
    }
}
