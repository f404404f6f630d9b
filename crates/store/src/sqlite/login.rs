//! Login state on SQLite: failures per key and spent one-time-code steps, each a single
//! conditional statement so racing servers cannot both win.

use airlock_core::ports::{LoginFailures, LoginStore, StoreError};
use airlock_model::{PrincipalId, Timestamp};
use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, err, to_i64};

#[async_trait]
impl LoginStore for SqliteStore {
    async fn count_login_failures(
        &self,
        keys: &[String],
        now: Timestamp,
        forget_before: Timestamp,
    ) -> Result<Vec<u32>, StoreError> {
        const OP: &str = "login failure count";
        let mut tx = self.begin(OP).await?;
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            let failures: i64 = sqlx::query_scalar(
                "INSERT INTO login_failures (key, failures, last_at) VALUES (?, 1, ?) \
                 ON CONFLICT (key) DO UPDATE SET \
                 failures = CASE WHEN login_failures.last_at <= ? THEN 1 ELSE login_failures.failures + 1 END, \
                 last_at = excluded.last_at \
                 RETURNING failures",
            )
            .bind(key)
            .bind(now.as_millis())
            .bind(forget_before.as_millis())
            .fetch_one(&mut *tx)
            .await
            .map_err(err(OP))?;
            counts.push(u32::try_from(failures).unwrap_or(u32::MAX));
        }
        tx.commit().await.map_err(err(OP))?;
        Ok(counts)
    }

    async fn login_failures(&self, keys: &[String]) -> Result<Vec<Option<LoginFailures>>, StoreError> {
        const OP: &str = "login failure read";
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let row = sqlx::query("SELECT failures, last_at FROM login_failures WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.readers)
                .await
                .map_err(err(OP))?;
            found.push(match row {
                None => None,
                Some(row) => {
                    let failures: i64 = row.try_get("failures").map_err(err(OP))?;
                    let last: i64 = row.try_get("last_at").map_err(err(OP))?;
                    Some(LoginFailures {
                        failures: u32::try_from(failures).unwrap_or(u32::MAX),
                        last: Timestamp::from_millis(last),
                    })
                }
            });
        }
        Ok(found)
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE key = ?")
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(err("login failure clear"))?;
        Ok(())
    }

    async fn forget_login_failures(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_failures WHERE last_at < ?")
            .bind(before.as_millis())
            .execute(&self.writer)
            .await
            .map_err(err("login failure sweep"))?;
        Ok(done.rows_affected())
    }

    async fn spend_totp_step(&self, principal: &PrincipalId, factor: &str, step: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO totp_steps (principal, factor, step) VALUES (?, ?, ?) \
             ON CONFLICT (principal) DO UPDATE SET factor = excluded.factor, step = excluded.step \
             WHERE totp_steps.factor <> excluded.factor OR totp_steps.step < excluded.step",
        )
        .bind(principal.as_str())
        .bind(factor)
        .bind(to_i64(step))
        .execute(&self.writer)
        .await
        .map_err(err("one-time code spend"))?;
        Ok(done.rows_affected() == 1)
    }
}
