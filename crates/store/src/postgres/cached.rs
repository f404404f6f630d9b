//! The version of what servers cache, on PostgreSQL: raised by triggers on `trust_roots` and
//! `roles` in the transaction of each change, which also `NOTIFY` every listening server when it
//! commits.

use std::time::Duration;

use airlock_core::ports::{CachedState, ChangeHints, PrincipalRecord, StoreError};
use airlock_model::PrincipalId;
use async_trait::async_trait;
use sqlx::postgres::PgListener;

use super::{PostgresStore, err};

/// The channel the triggers notify (`migrations/postgres/0008_cached_state.sql`).
const CHANNEL: &str = "airlock_cached_state";

/// How long the hints wait before listening again after PostgreSQL could not be reached.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// What waiting for the next notification came to.
enum Heard {
    /// A hint to pass on: a notification, or the session was lost and made anew (a notification
    /// sent meanwhile is lost, so this one stands for it).
    Hint,
    /// PostgreSQL could not be reached; try again after [`RELISTEN_AFTER`].
    Unreachable,
    /// The store was closed: no more hints.
    Closed,
}

async fn next(listener: &mut PgListener) -> Heard {
    match listener.try_recv().await {
        Ok(_) => Heard::Hint,
        Err(sqlx::Error::PoolClosed) => Heard::Closed,
        Err(_) => Heard::Unreachable,
    }
}

#[async_trait]
impl CachedState for PostgresStore {
    async fn cached_state_version(&self) -> Result<u64, StoreError> {
        const OP: &str = "cached state version";
        let version: i64 = sqlx::query_scalar("SELECT version FROM cached_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(err(OP))?;
        u64::try_from(version).map_err(|e| StoreError { operation: OP, source: Box::new(e) })
    }

    async fn cached_state_with_principal(
        &self,
        id: &PrincipalId,
    ) -> Result<(u64, Option<(PrincipalRecord, bool)>), StoreError> {
        const OP: &str = "principal lookup";
        let found = {
            // Back before the version is read alone: a caller holding one connection while it
            // waits for another could, many at once, leave none free.
            let mut conn = self.pool.acquire().await.map_err(err(OP))?;
            super::identity::principal_with_version_on(&mut conn, id.as_str(), OP).await?
        };
        match found {
            Some((record, granted, version)) => Ok((version, Some((record, granted)))),
            // No principal row to carry it: the version on its own.
            None => Ok((self.cached_state_version().await?, None)),
        }
    }

    /// Listens on a session of its own (from the store's listening pool, so it never takes a
    /// connection a request needs), made anew whenever it is lost; each loss is a hint, since a
    /// notification may have been missed. Closing the store ends the hints.
    async fn watch_cached_state(&self) -> Result<Option<ChangeHints>, StoreError> {
        const OP: &str = "cached state watch";
        let mut listener = PgListener::connect_with(&self.listeners).await.map_err(err(OP))?;
        listener.listen(CHANNEL).await.map_err(err(OP))?;
        let hints = futures::stream::unfold(listener, |mut listener| async move {
            loop {
                match next(&mut listener).await {
                    Heard::Hint => return Some(((), listener)),
                    Heard::Closed => return None,
                    Heard::Unreachable => tokio::time::sleep(RELISTEN_AFTER).await,
                }
            }
        });
        Ok(Some(Box::pin(hints)))
    }
}
