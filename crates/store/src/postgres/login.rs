//! Login state on PostgreSQL: failures per key and spent one-time-code steps, each change a
//! single conditional statement (`INSERT … ON CONFLICT DO UPDATE` reads the latest committed
//! row under its lock), so racing servers cannot both win.

use airlock_core::ports::{LoginFailures, LoginStore, StoreError};
use airlock_model::{PrincipalId, Timestamp};
use async_trait::async_trait;
use sqlx::Row;

use super::{PostgresStore, err, time_col, to_i64};

/// A stored count as the port gives it: a count past `u32::MAX` reads as `u32::MAX`.
fn count(failures: i64) -> u32 {
    u32::try_from(failures).unwrap_or(u32::MAX)
}

#[async_trait]
impl LoginStore for PostgresStore {
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
                "INSERT INTO login_failures (key, failures, last_at) VALUES ($1, 1, $2) \
                 ON CONFLICT (key) DO UPDATE SET \
                 failures = CASE WHEN login_failures.last_at <= $3 THEN 1 ELSE login_failures.failures + 1 END, \
                 last_at = EXCLUDED.last_at \
                 RETURNING failures",
            )
            .bind(key)
            .bind(now.as_millis())
            .bind(forget_before.as_millis())
            .fetch_one(&mut *tx)
            .await
            .map_err(err(OP))?;
            counts.push(count(failures));
        }
        tx.commit().await.map_err(err(OP))?;
        Ok(counts)
    }

    async fn login_failures(&self, keys: &[String]) -> Result<Vec<Option<LoginFailures>>, StoreError> {
        const OP: &str = "login failure read";
        let rows = sqlx::query("SELECT key, failures, last_at FROM login_failures WHERE key = ANY($1)")
            .bind(keys)
            .fetch_all(&self.pool)
            .await
            .map_err(err(OP))?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("key").map_err(err(OP))?;
            let failures: i64 = row.try_get("failures").map_err(err(OP))?;
            found.insert(key, LoginFailures { failures: count(failures), last: time_col(&row, "last_at", OP)? });
        }
        Ok(keys.iter().map(|key| found.get(key).copied()).collect())
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(err("login failure clear"))?;
        Ok(())
    }

    async fn forget_login_failures(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_failures WHERE last_at < $1")
            .bind(before.as_millis())
            .execute(&self.pool)
            .await
            .map_err(err("login failure sweep"))?;
        Ok(done.rows_affected())
    }

    async fn spend_totp_step(&self, principal: &PrincipalId, factor: &str, step: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO totp_steps (principal, factor, step) VALUES ($1, $2, $3) \
             ON CONFLICT (principal) DO UPDATE SET factor = EXCLUDED.factor, step = EXCLUDED.step \
             WHERE totp_steps.factor <> EXCLUDED.factor OR totp_steps.step < EXCLUDED.step",
        )
        .bind(principal.as_str())
        .bind(factor)
        .bind(to_i64(step))
        .execute(&self.pool)
        .await
        .map_err(err("one-time code spend"))?;
        Ok(done.rows_affected() == 1)
    }
}
