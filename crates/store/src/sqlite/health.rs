//! The database's health: a full disk told apart from other failures, a writer connection
//! left clean after a failed transaction, and the integrity checks run at start and by
//! `airlock doctor`.

use std::time::{Duration, Instant};

use airlock_core::ports::StoreError;
use sqlx::Row;

use super::{SqliteStore, err};

/// SQLite's result code for a full disk (`SQLITE_FULL`), as sqlx reports it.
const SQLITE_FULL: &str = "13";

/// A statement stopped by the progress handler (`SQLITE_INTERRUPT`).
const SQLITE_INTERRUPT: &str = "9";
/// A damaged database (`SQLITE_CORRUPT`) and a file that is not one (`SQLITE_NOTADB`).
const SQLITE_CORRUPT: &str = "11";
const SQLITE_NOTADB: &str = "26";

/// Virtual machine steps between two looks at a check's deadline.
const PROGRESS_STEPS: i32 = 10_000;

/// Lines of a damaged database's report kept (SQLite lists up to 100).
const REPORT_LINES: usize = 20;

/// SQLite's "database or disk is full" as an [`std::io::Error`] of kind `StorageFull`, which
/// [`airlock_core::ports::storage_full`] recognizes; every other error as it is.
pub(super) fn classify(error: sqlx::Error) -> Box<dyn std::error::Error + Send + Sync> {
    let full = match &error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code == SQLITE_FULL),
        _ => false,
    };
    if full { Box::new(std::io::Error::new(std::io::ErrorKind::StorageFull, error)) } else { Box::new(error) }
}

/// Which of SQLite's checks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `PRAGMA quick_check`: every page and row, without comparing indexes to their tables.
    Quick,
    /// `PRAGMA integrity_check`: also every index against its table.
    Full,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckVerdict {
    Healthy,
    /// SQLite's report of the damage, a line per problem.
    Damaged(Vec<String>),
    /// The check ran out of time before it finished; nothing is known.
    Unfinished,
}

impl SqliteStore {
    /// Runs `check`, stopping it after `budget` when one is given.
    pub async fn check(&self, check: Check, budget: Option<Duration>) -> Result<CheckVerdict, StoreError> {
        const OP: &str = "integrity check";
        let pragma = match check {
            Check::Quick => "PRAGMA quick_check",
            Check::Full => "PRAGMA integrity_check",
        };
        let mut reader = self.readers.acquire().await.map_err(err(OP))?;
        if budget.is_some() {
            // Were this call dropped between setting the handler and removing it, the
            // connection would interrupt every later query.
            reader.retire();
        }
        let conn = reader.connection().map_err(err(OP))?;
        if let Some(budget) = budget {
            // A budget past the end of time never interrupts.
            let deadline = Instant::now().checked_add(budget);
            // Returning false interrupts the statement.
            conn.lock_handle()
                .await
                .map_err(err(OP))?
                .set_progress_handler(PROGRESS_STEPS, move || deadline.is_none_or(|d| Instant::now() < d));
        }
        let rows = sqlx::query(pragma).fetch_all(&mut *conn).await;
        if budget.is_some() {
            conn.lock_handle().await.map_err(err(OP))?.remove_progress_handler();
        }
        let rows = match rows {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(db)) if db.code().is_some_and(|c| c == SQLITE_INTERRUPT) => {
                return Ok(CheckVerdict::Unfinished);
            }
            // A page too damaged to read fails the statement itself.
            Err(sqlx::Error::Database(db)) if db.code().is_some_and(|c| c == SQLITE_CORRUPT || c == SQLITE_NOTADB) => {
                return Ok(CheckVerdict::Damaged(vec![db.message().to_owned()]));
            }
            Err(e) => return Err(err(OP)(e)),
        };
        let mut lines = Vec::new();
        for row in rows {
            let line: String = row.try_get(0).map_err(err(OP))?;
            lines.push(line);
        }
        if lines.len() == 1 && lines.first().is_some_and(|l| l == "ok") {
            return Ok(CheckVerdict::Healthy);
        }
        lines.truncate(REPORT_LINES);
        Ok(CheckVerdict::Damaged(lines))
    }

    /// Runs `PRAGMA integrity_check` and returns its verdict: `ok` when healthy, otherwise the
    /// problems found, joined.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(match self.check(Check::Full, None).await? {
            CheckVerdict::Healthy => "ok".to_owned(),
            CheckVerdict::Damaged(lines) => lines.join("; "),
            CheckVerdict::Unfinished => "unfinished".to_owned(),
        })
    }
}
