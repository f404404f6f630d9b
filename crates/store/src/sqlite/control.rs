//! Stage freezes, waivers and break-glass reviews on SQLite.

use airlock_core::audit::Event;
use airlock_core::ports::{ControlStore, FreezeRecord, ReviewRecord, StoreError, WaiverRecord, WaiverState};
use airlock_model::{StageName, Timestamp};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::promotion::index_col;
use super::{SqliteStore, err, to_i64};

const WAIVER_COLUMNS: &str = "id, rule, vulnerability, component, repository, justification, requester, status, \
                              approver, created_at, decided_at, expires_at, log_index";
const FREEZE_COLUMNS: &str = "stage, reason, frozen_by, frozen_at, unfreeze_by, unfreeze_index, lifted_by, lift_index";

fn invalid(operation: &'static str, what: String) -> StoreError {
    StoreError { operation, source: what.into() }
}

fn freeze_row(row: &SqliteRow, operation: &'static str) -> Result<FreezeRecord, StoreError> {
    let stage: String = row.try_get("stage").map_err(err(operation))?;
    Ok(FreezeRecord {
        stage: StageName::parse(&stage).map_err(|e| invalid(operation, e.to_string()))?,
        reason: row.try_get("reason").map_err(err(operation))?,
        frozen_by: row.try_get("frozen_by").map_err(err(operation))?,
        frozen_at: Timestamp::from_millis(row.try_get("frozen_at").map_err(err(operation))?),
        unfreeze_by: row.try_get("unfreeze_by").map_err(err(operation))?,
        unfreeze_index: index_col(row, "unfreeze_index", operation)?,
        lifted_by: row.try_get("lifted_by").map_err(err(operation))?,
        lift_index: index_col(row, "lift_index", operation)?,
    })
}

fn waiver_row(row: &SqliteRow, operation: &'static str) -> Result<WaiverRecord, StoreError> {
    let state: String = row.try_get("status").map_err(err(operation))?;
    let decided: Option<i64> = row.try_get("decided_at").map_err(err(operation))?;
    Ok(WaiverRecord {
        id: row.try_get("id").map_err(err(operation))?,
        rule: row.try_get("rule").map_err(err(operation))?,
        vulnerability: row.try_get("vulnerability").map_err(err(operation))?,
        component: row.try_get("component").map_err(err(operation))?,
        repository: row.try_get("repository").map_err(err(operation))?,
        justification: row.try_get("justification").map_err(err(operation))?,
        requester: row.try_get("requester").map_err(err(operation))?,
        state: WaiverState::parse(&state)
            .ok_or_else(|| invalid(operation, format!("unknown waiver status `{state}`")))?,
        approver: row.try_get("approver").map_err(err(operation))?,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(err(operation))?),
        decided_at: decided.map(Timestamp::from_millis),
        expires_at: Timestamp::from_millis(row.try_get("expires_at").map_err(err(operation))?),
        log_index: index_col(row, "log_index", operation)?,
    })
}

fn review_row(row: &SqliteRow, operation: &'static str) -> Result<ReviewRecord, StoreError> {
    let closed: Option<i64> = row.try_get("closed_at").map_err(err(operation))?;
    Ok(ReviewRecord {
        id: row.try_get("id").map_err(err(operation))?,
        promotion: row.try_get("promotion").map_err(err(operation))?,
        opened_at: Timestamp::from_millis(row.try_get("opened_at").map_err(err(operation))?),
        closed_by: row.try_get("closed_by").map_err(err(operation))?,
        closed_at: closed.map(Timestamp::from_millis),
        note: row.try_get("note").map_err(err(operation))?,
    })
}

#[async_trait]
impl ControlStore for SqliteStore {
    async fn freeze(&self, record: &FreezeRecord, event: &Event) -> Result<bool, StoreError> {
        const OP: &str = "stage freeze";
        let mut tx = self.begin(OP).await?;
        // A lifted freeze stays stored; freezing the stage again replaces it.
        let done = sqlx::query(
            "INSERT INTO stage_freezes (stage, reason, frozen_by, frozen_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (stage) DO UPDATE SET reason = excluded.reason, frozen_by = excluded.frozen_by, \
             frozen_at = excluded.frozen_at, unfreeze_by = NULL, unfreeze_at = NULL, unfreeze_index = NULL, \
             lifted_by = NULL, lift_index = NULL WHERE stage_freezes.lifted_by IS NOT NULL",
        )
        .bind(record.stage.as_str())
        .bind(&record.reason)
        .bind(&record.frozen_by)
        .bind(record.frozen_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.commit_with_log(tx, std::slice::from_ref(event)).await?;
        Ok(true)
    }

    async fn freezes(&self) -> Result<Vec<FreezeRecord>, StoreError> {
        const OP: &str = "stage freezes";
        let rows = sqlx::query(&format!("SELECT {FREEZE_COLUMNS} FROM stage_freezes ORDER BY stage"))
            .fetch_all(&self.readers)
            .await
            .map_err(err(OP))?;
        rows.iter().map(|r| freeze_row(r, OP)).collect()
    }

    async fn request_unfreeze(
        &self,
        stage: &StageName,
        by: &str,
        replacing: Option<&str>,
        event: &Event,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const OP: &str = "stage unfreeze request";
        let mut tx = self.begin(OP).await?;
        let tail = self.log_tail(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE stage_freezes SET unfreeze_by = ?, unfreeze_at = ?, unfreeze_index = ?, lifted_by = NULL, lift_index = NULL \
             WHERE stage = ? AND unfreeze_by IS ?",
        )
        .bind(by)
        .bind(now.as_millis())
        .bind(to_i64(tail.size()))
        .bind(stage.as_str())
        .bind(replacing)
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        if done.rows_affected() == 0 {
            self.keep_log_tail(tail);
            return Ok(false);
        }
        self.commit_with_tail(tx, tail, std::slice::from_ref(event)).await?;
        Ok(true)
    }

    async fn lift_freeze(
        &self,
        stage: &StageName,
        first: &str,
        second: &str,
        event: &Event,
    ) -> Result<bool, StoreError> {
        const OP: &str = "stage unfreeze";
        let mut tx = self.begin(OP).await?;
        let tail = self.log_tail(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE stage_freezes SET lifted_by = ?, lift_index = ? \
             WHERE stage = ? AND unfreeze_by = ? AND lifted_by IS NULL",
        )
        .bind(second)
        .bind(to_i64(tail.size()))
        .bind(stage.as_str())
        .bind(first)
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        if done.rows_affected() == 0 {
            self.keep_log_tail(tail);
            return Ok(false);
        }
        self.commit_with_tail(tx, tail, std::slice::from_ref(event)).await?;
        Ok(true)
    }

    async fn create_waiver(&self, waiver: &WaiverRecord, event: &Event) -> Result<(), StoreError> {
        const OP: &str = "waiver create";
        let mut tx = self.begin(OP).await?;
        sqlx::query(&format!(
            "INSERT INTO waivers ({WAIVER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
        ))
        .bind(&waiver.id)
        .bind(&waiver.rule)
        .bind(waiver.vulnerability.as_deref())
        .bind(waiver.component.as_deref())
        .bind(&waiver.repository)
        .bind(&waiver.justification)
        .bind(&waiver.requester)
        .bind(waiver.state.as_str())
        .bind(waiver.approver.as_deref())
        .bind(waiver.created_at.as_millis())
        .bind(waiver.decided_at.map(Timestamp::as_millis))
        .bind(waiver.expires_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        self.commit_with_log(tx, std::slice::from_ref(event)).await?;
        Ok(())
    }

    async fn waiver(&self, id: &str) -> Result<Option<WaiverRecord>, StoreError> {
        const OP: &str = "waiver lookup";
        let row = sqlx::query(&format!("SELECT {WAIVER_COLUMNS} FROM waivers WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.readers)
            .await
            .map_err(err(OP))?;
        row.map(|r| waiver_row(&r, OP)).transpose()
    }

    async fn waivers(&self) -> Result<Vec<WaiverRecord>, StoreError> {
        const OP: &str = "waiver list";
        let rows = sqlx::query(&format!("SELECT {WAIVER_COLUMNS} FROM waivers ORDER BY created_at DESC, id"))
            .fetch_all(&self.readers)
            .await
            .map_err(err(OP))?;
        rows.iter().map(|r| waiver_row(r, OP)).collect()
    }

    async fn decide_waiver(
        &self,
        waiver: &WaiverRecord,
        from: WaiverState,
        event: &Event,
    ) -> Result<Option<WaiverRecord>, StoreError> {
        const OP: &str = "waiver decide";
        let mut tx = self.begin(OP).await?;
        let tail = self.log_tail(&mut tx).await?;
        // An approval stores the index of its event; another decision keeps what was stored.
        let approved = (waiver.state == WaiverState::Active).then(|| to_i64(tail.size()));
        let done = sqlx::query(
            "UPDATE waivers SET status = ?, approver = ?, decided_at = ?, created_at = ?, expires_at = ?, \
             log_index = COALESCE(?, log_index) WHERE id = ? AND status = ?",
        )
        .bind(waiver.state.as_str())
        .bind(waiver.approver.as_deref())
        .bind(waiver.decided_at.map(Timestamp::as_millis))
        .bind(waiver.created_at.as_millis())
        .bind(waiver.expires_at.as_millis())
        .bind(approved)
        .bind(&waiver.id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        if done.rows_affected() == 0 {
            self.keep_log_tail(tail);
            return Ok(None);
        }
        let stored = sqlx::query(&format!("SELECT {WAIVER_COLUMNS} FROM waivers WHERE id = ?"))
            .bind(&waiver.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(err(OP))?;
        let record = waiver_row(&stored, OP)?;
        self.commit_with_tail(tx, tail, std::slice::from_ref(event)).await?;
        Ok(Some(record))
    }

    async fn reviews(&self) -> Result<Vec<ReviewRecord>, StoreError> {
        const OP: &str = "review list";
        let rows = sqlx::query(
            "SELECT id, promotion, opened_at, closed_by, closed_at, note FROM reviews ORDER BY opened_at DESC, id",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(err(OP))?;
        rows.iter().map(|r| review_row(r, OP)).collect()
    }

    async fn close_review(
        &self,
        id: &str,
        by: &str,
        note: &str,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        const OP: &str = "review close";
        let mut tx = self.begin(OP).await?;
        let done =
            sqlx::query("UPDATE reviews SET closed_by = ?, closed_at = ?, note = ? WHERE id = ? AND closed_at IS NULL")
                .bind(by)
                .bind(now.as_millis())
                .bind(note)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(err(OP))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT id, promotion, opened_at, closed_by, closed_at, note FROM reviews WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(err(OP))?;
        let record = review_row(&row, OP)?;
        self.commit_with_log(tx, std::slice::from_ref(event)).await?;
        Ok(Some(record))
    }
}
