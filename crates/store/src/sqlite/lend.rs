//! What [`super::readers::Readers`] and [`super::writer::Writer`] share: running one statement on
//! a lent connection as an [`sqlx::Executor`], and noticing the errors that may have broken it.

use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::sqlite::{SqliteQueryResult, SqliteRow, SqliteStatement, SqliteTypeInfo};
use sqlx::{Either, Execute, Executor, Sqlite, SqliteConnection};

/// How long a caller waits for a connection before failing, as sqlx's pool did.
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Lends connections, one statement (or transaction) at a time.
pub(super) trait Lend: Clone + Send + Sync + 'static {
    /// A lent connection, returned when dropped.
    type Lent: Send;

    /// A connection, waiting for one to be free.
    fn lend(&self) -> impl Future<Output = Result<Self::Lent, sqlx::Error>> + Send;

    /// The connection `lent` holds.
    fn connection(lent: &mut Self::Lent) -> Result<&mut SqliteConnection, sqlx::Error>;

    /// `lent` failed in a way that may have broken it: it must not be used again as it is.
    fn broke(&self, lent: &mut Self::Lent);
}

/// Whether an error may have left the connection unusable: its thread is gone, or it failed
/// below SQL. An error of SQL itself (a constraint, a busy database) leaves it as it was.
pub(super) fn broken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::WorkerCrashed | sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
}

fn check<L: Lend, T>(lender: &L, lent: &mut L::Lent, result: &Result<T, sqlx::Error>) {
    if result.as_ref().is_err_and(broken) {
        lender.broke(lent);
    }
}

/// [`Executor::fetch_many`] on a lent connection. The results are collected before they are
/// yielded, so the connection goes back as soon as the statement ends: no caller streams a
/// large result.
pub(super) fn fetch_many<'e, 'q: 'e, L: Lend, E: 'q + Execute<'q, Sqlite>>(
    lender: L,
    query: E,
) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>> {
    stream::once(async move {
        let mut lent = lender.lend().await?;
        let items: Vec<_> = L::connection(&mut lent)?.fetch_many(query).collect().await;
        if let Some(failed) = items.iter().find(|item| item.is_err()) {
            check(&lender, &mut lent, failed);
        }
        Ok::<_, sqlx::Error>(stream::iter(items))
    })
    .try_flatten()
    .boxed()
}

/// [`Executor::fetch_optional`] on a lent connection.
pub(super) fn fetch_optional<'e, 'q: 'e, L: Lend, E: 'q + Execute<'q, Sqlite>>(
    lender: L,
    query: E,
) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>> {
    Box::pin(async move {
        let mut lent = lender.lend().await?;
        let row = L::connection(&mut lent)?.fetch_optional(query).await;
        check(&lender, &mut lent, &row);
        row
    })
}

/// [`Executor::prepare_with`] on a lent connection.
pub(super) fn prepare_with<'e, 'q: 'e, L: Lend>(
    lender: L,
    sql: &'q str,
    parameters: &'e [SqliteTypeInfo],
) -> BoxFuture<'e, Result<SqliteStatement<'q>, sqlx::Error>> {
    Box::pin(async move {
        let mut lent = lender.lend().await?;
        let statement = L::connection(&mut lent)?.prepare_with(sql, parameters).await;
        check(&lender, &mut lent, &statement);
        statement
    })
}

/// [`Executor::describe`] on a lent connection.
pub(super) fn describe<'e, 'q: 'e, L: Lend>(
    lender: L,
    sql: &'q str,
) -> BoxFuture<'e, Result<sqlx::Describe<Sqlite>, sqlx::Error>> {
    Box::pin(async move {
        let mut lent = lender.lend().await?;
        let described = L::connection(&mut lent)?.describe(sql).await;
        check(&lender, &mut lent, &described);
        described
    })
}

/// Implements [`Executor`] for `&$lender` (a [`Lend`]): each statement on a connection lent for
/// it alone.
macro_rules! executor {
    ($lender:ty) => {
        impl<'p> sqlx::Executor<'p> for &'_ $lender {
            type Database = sqlx::Sqlite;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> futures::stream::BoxStream<
                'e,
                Result<sqlx::Either<sqlx::sqlite::SqliteQueryResult, sqlx::sqlite::SqliteRow>, sqlx::Error>,
            >
            where
                E: 'q + sqlx::Execute<'q, sqlx::Sqlite>,
            {
                $crate::sqlite::lend::fetch_many(self.clone(), query)
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> futures::future::BoxFuture<'e, Result<Option<sqlx::sqlite::SqliteRow>, sqlx::Error>>
            where
                E: 'q + sqlx::Execute<'q, sqlx::Sqlite>,
            {
                $crate::sqlite::lend::fetch_optional(self.clone(), query)
            }

            fn prepare_with<'e, 'q: 'e>(
                self,
                sql: &'q str,
                parameters: &'e [sqlx::sqlite::SqliteTypeInfo],
            ) -> futures::future::BoxFuture<'e, Result<sqlx::sqlite::SqliteStatement<'q>, sqlx::Error>> {
                $crate::sqlite::lend::prepare_with(self.clone(), sql, parameters)
            }

            fn describe<'e, 'q: 'e>(
                self,
                sql: &'q str,
            ) -> futures::future::BoxFuture<'e, Result<sqlx::Describe<sqlx::Sqlite>, sqlx::Error>> {
                $crate::sqlite::lend::describe(self.clone(), sql)
            }
        }
    };
}
pub(super) use executor;
