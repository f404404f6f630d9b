//! The version of what servers cache, on SQLite: raised by triggers on `trust_roots` and `roles`
//! in the transaction of each change. SQLite cannot notify other processes, so servers read it.

use airlock_core::ports::{CachedState, ChangeHints, PrincipalRecord, StoreError};
use airlock_model::PrincipalId;
use async_trait::async_trait;

use super::{SqliteStore, err};

#[async_trait]
impl CachedState for SqliteStore {
    async fn cached_state_version(&self) -> Result<u64, StoreError> {
        const OP: &str = "cached state version";
        let version: i64 = sqlx::query_scalar("SELECT version FROM cached_state WHERE id = 1")
            .fetch_one(&self.readers)
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
            // Back before the version is read alone: a caller holding one reader while it waits
            // for another could, many at once, leave none free.
            let mut reader = self.readers.acquire().await.map_err(err(OP))?;
            super::identity::principal_with_version_on(reader.connection().map_err(err(OP))?, id.as_str(), OP).await?
        };
        match found {
            Some((record, granted, version)) => Ok((version, Some((record, granted)))),
            // No principal row to carry it: the version on its own.
            None => Ok((self.cached_state_version().await?, None)),
        }
    }

    async fn watch_cached_state(&self) -> Result<Option<ChangeHints>, StoreError> {
        Ok(None)
    }
}
