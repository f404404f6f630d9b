//! Upload sessions on SQLite: opened without waiting for the disk (the session's first bytes
//! make it durable), counted against the client's limit in the statement that opens one.

use airlock_core::ports::{StoreError, UploadIndex, UploadRecord};
use airlock_model::{RepoName, Timestamp, UploadId};
use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, err};

#[async_trait]
impl UploadIndex for SqliteStore {
    async fn create_upload(&self, upload: &UploadRecord, max_open: u64) -> Result<bool, StoreError> {
        const OP: &str = "upload create";
        // Committed without waiting for the disk (`synchronous=NORMAL`): the durable commit the
        // session's first bytes make first (`touch_upload`) carries it; a crash before that
        // loses a session holding nothing, and its client starts again on the 404. The three
        // statements go to the writer's thread as one command.
        let mut conn = self.writer.acquire().await.map_err(err(OP))?;
        let inserted = sqlx::query(
            "PRAGMA synchronous = NORMAL; \
             INSERT INTO uploads (id, repo, client, created_at, updated_at) SELECT ?, ?, ?, ?, ? \
             WHERE (SELECT COUNT(*) FROM uploads WHERE client = ?) < ? RETURNING id; \
             PRAGMA synchronous = FULL",
        )
        .bind(upload.id.as_str())
        .bind(upload.repo.as_str())
        .bind(&upload.client)
        .bind(upload.created_at.as_millis())
        .bind(upload.updated_at.as_millis())
        .bind(&upload.client)
        .bind(i64::try_from(max_open).unwrap_or(i64::MAX))
        // All of it runs (`fetch_all`; a limit would stop before the last statement), and the
        // row the insert returns says whether the session was opened: SQLite's change counts
        // are not reset by the pragmas around it.
        .fetch_all(&mut *conn)
        .await;
        match inserted {
            Ok(rows) => Ok(rows.len() == 1),
            Err(e) => {
                // Stopped part-way, maybe still not waiting for the disk: restore it, or never
                // hand this writer out again.
                if sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await.is_err() {
                    self.writer.distrust();
                }
                Err(err(OP)(e))
            }
        }
    }

    async fn upload(&self, id: &UploadId) -> Result<Option<UploadRecord>, StoreError> {
        const OP: &str = "upload lookup";
        let row = sqlx::query("SELECT id, repo, client, created_at, updated_at FROM uploads WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.readers)
            .await
            .map_err(err(OP))?;
        let Some(row) = row else { return Ok(None) };
        let repo: String = row.try_get("repo").map_err(err(OP))?;
        Ok(Some(UploadRecord {
            id: id.clone(),
            repo: RepoName::parse(&repo).map_err(|e| StoreError { operation: OP, source: Box::new(e) })?,
            client: row.try_get("client").map_err(err(OP))?,
            created_at: Timestamp::from_millis(row.try_get("created_at").map_err(err(OP))?),
            updated_at: Timestamp::from_millis(row.try_get("updated_at").map_err(err(OP))?),
        }))
    }

    async fn touch_upload(&self, id: &UploadId, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET updated_at = ? WHERE id = ?")
            .bind(now.as_millis())
            .bind(id.as_str())
            .execute(&self.writer)
            .await
            .map_err(err("upload touch"))?;
        Ok(())
    }

    async fn delete_upload(&self, id: &UploadId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.writer)
            .await
            .map_err(err("upload delete"))?;
        Ok(())
    }

    async fn uploads_by_client(&self, client: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE client = ?")
            .bind(client)
            .fetch_one(&self.writer)
            .await
            .map_err(err("upload count"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn idle_uploads(&self, before: Timestamp, limit: u32) -> Result<Vec<UploadId>, StoreError> {
        const OP: &str = "upload expiry scan";
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?")
                .bind(before.as_millis())
                .bind(i64::from(limit))
                .fetch_all(&self.writer)
                .await
                .map_err(err(OP))?;
        ids.iter()
            .map(|id| UploadId::parse(id).map_err(|e| StoreError { operation: OP, source: Box::new(e) }))
            .collect()
    }
}
