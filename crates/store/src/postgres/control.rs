//! Stage freezes, waivers and break-glass reviews on PostgreSQL.

use airlock_core::audit::Event;
use airlock_core::ports::{ControlStore, FreezeRecord, ReviewRecord, StoreError, WaiverRecord, WaiverState};
use airlock_model::{StageName, Timestamp};
use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};

use super::{PostgresStore, err, index_col, invalid, records, records_or_one, time_col, time_opt};

const WAIVER_COLUMNS: &str = "id, rule, vulnerability, component, repository, justification, requester, status, \
                              approver, created_at, decided_at, expires_at, log_index";
const REVIEW_COLUMNS: &str = "id, promotion, opened_at, closed_by, closed_at, note";
const FREEZE_COLUMNS: &str = "stage, reason, frozen_by, frozen_at, unfreeze_by, unfreeze_index, lifted_by, lift_index";

fn freeze_row(row: &PgRow, operation: &'static str) -> Result<FreezeRecord, StoreError> {
    let stage: String = row.try_get("stage").map_err(err(operation))?;
    Ok(FreezeRecord {
        stage: StageName::parse(&stage).map_err(|e| invalid(operation, e.to_string()))?,
        reason: row.try_get("reason").map_err(err(operation))?,
        frozen_by: row.try_get("frozen_by").map_err(err(operation))?,
        frozen_at: time_col(row, "frozen_at", operation)?,
        unfreeze_by: row.try_get("unfreeze_by").map_err(err(operation))?,
        unfreeze_index: index_col(row, "unfreeze_index", operation)?,
        lifted_by: row.try_get("lifted_by").map_err(err(operation))?,
        lift_index: index_col(row, "lift_index", operation)?,
    })
}

fn waiver_row(row: &PgRow, operation: &'static str) -> Result<WaiverRecord, StoreError> {
    let state: String = row.try_get("status").map_err(err(operation))?;
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
        created_at: time_col(row, "created_at", operation)?,
        decided_at: time_opt(row, "decided_at", operation)?,
        expires_at: time_col(row, "expires_at", operation)?,
        log_index: index_col(row, "log_index", operation)?,
    })
}

fn review_row(row: &PgRow, operation: &'static str) -> Result<ReviewRecord, StoreError> {
    Ok(ReviewRecord {
        id: row.try_get("id").map_err(err(operation))?,
        promotion: row.try_get("promotion").map_err(err(operation))?,
        opened_at: time_col(row, "opened_at", operation)?,
        closed_by: row.try_get("closed_by").map_err(err(operation))?,
        closed_at: time_opt(row, "closed_at", operation)?,
        note: row.try_get("note").map_err(err(operation))?,
    })
}

/// Waivers, newest first, or the one `id` names.
async fn select_waivers(
    executor: impl sqlx::Executor<'_, Database = Postgres>,
    id: Option<&str>,
    operation: &'static str,
) -> Result<Vec<WaiverRecord>, StoreError> {
    let select = format!("SELECT {WAIVER_COLUMNS} FROM waivers");
    records_or_one(executor, &select, "created_at DESC, id", id, waiver_row, operation).await
}

/// Reviews, newest first, or the one `id` names.
async fn select_reviews(
    executor: impl sqlx::Executor<'_, Database = Postgres>,
    id: Option<&str>,
    operation: &'static str,
) -> Result<Vec<ReviewRecord>, StoreError> {
    let select = format!("SELECT {REVIEW_COLUMNS} FROM reviews");
    records_or_one(executor, &select, "opened_at DESC, id", id, review_row, operation).await
}

#[async_trait]
impl ControlStore for PostgresStore {
    async fn freeze(&self, record: &FreezeRecord, event: &Event) -> Result<bool, StoreError> {
        // A lifted freeze stays stored; freezing the stage again replaces it.
        let insert = |_| {
            sqlx::query(
                "INSERT INTO stage_freezes (stage, reason, frozen_by, frozen_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (stage) DO UPDATE SET reason = EXCLUDED.reason, frozen_by = EXCLUDED.frozen_by, \
                 frozen_at = EXCLUDED.frozen_at, unfreeze_by = NULL, unfreeze_at = NULL, unfreeze_index = NULL, \
                 lifted_by = NULL, lift_index = NULL WHERE stage_freezes.lifted_by IS NOT NULL",
            )
            .bind(record.stage.as_str())
            .bind(&record.reason)
            .bind(&record.frozen_by)
            .bind(record.frozen_at.as_millis())
        };
        Ok(self.logged_if("stage freeze", insert, event, None).await?.is_some())
    }

    async fn freezes(&self) -> Result<Vec<FreezeRecord>, StoreError> {
        let sql = format!("SELECT {FREEZE_COLUMNS} FROM stage_freezes ORDER BY stage");
        records(&self.pool, sqlx::query(&sql), freeze_row, "stage freezes").await
    }

    async fn request_unfreeze(
        &self,
        stage: &StageName,
        by: &str,
        replacing: Option<&str>,
        event: &Event,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let update = |index| {
            sqlx::query(
                "UPDATE stage_freezes SET unfreeze_by = $1, unfreeze_at = $2, unfreeze_index = $3, lifted_by = NULL, \
                 lift_index = NULL WHERE stage = $4 AND unfreeze_by IS NOT DISTINCT FROM $5",
            )
            .bind(by)
            .bind(now.as_millis())
            .bind(index)
            .bind(stage.as_str())
            .bind(replacing)
        };
        Ok(self.logged_if("stage unfreeze request", update, event, None).await?.is_some())
    }

    async fn lift_freeze(
        &self,
        stage: &StageName,
        first: &str,
        second: &str,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let update = |index| {
            sqlx::query(
                "UPDATE stage_freezes SET lifted_by = $1, lift_index = $2 \
                 WHERE stage = $3 AND unfreeze_by = $4 AND lifted_by IS NULL",
            )
            .bind(second)
            .bind(index)
            .bind(stage.as_str())
            .bind(first)
        };
        Ok(self.logged_if("stage unfreeze", update, event, None).await?.is_some())
    }

    async fn create_waiver(&self, waiver: &WaiverRecord, event: &Event) -> Result<(), StoreError> {
        let insert = format!(
            "INSERT INTO waivers ({WAIVER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL)"
        );
        let insert = |_| {
            sqlx::query(&insert)
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
        };
        self.logged_if("waiver create", insert, event, None).await?;
        Ok(())
    }

    async fn waiver(&self, id: &str) -> Result<Option<WaiverRecord>, StoreError> {
        Ok(select_waivers(&self.pool, Some(id), "waiver lookup").await?.pop())
    }

    async fn waivers(&self) -> Result<Vec<WaiverRecord>, StoreError> {
        select_waivers(&self.pool, None, "waiver list").await
    }

    async fn decide_waiver(
        &self,
        waiver: &WaiverRecord,
        from: WaiverState,
        event: &Event,
    ) -> Result<Option<WaiverRecord>, StoreError> {
        const OP: &str = "waiver decide";
        // An approval stores the index of its event; another decision keeps what was stored.
        let approved = waiver.state == WaiverState::Active;
        let update = |index: i64| {
            sqlx::query(
                "UPDATE waivers SET status = $1, approver = $2, decided_at = $3, created_at = $4, expires_at = $5, \
                 log_index = COALESCE($6, log_index) WHERE id = $7 AND status = $8",
            )
            .bind(waiver.state.as_str())
            .bind(waiver.approver.as_deref())
            .bind(waiver.decided_at.map(Timestamp::as_millis))
            .bind(waiver.created_at.as_millis())
            .bind(waiver.expires_at.as_millis())
            .bind(approved.then_some(index))
            .bind(&waiver.id)
            .bind(from.as_str())
        };
        let Some((mut tx, tail)) = self.begin_if(OP, update).await? else { return Ok(None) };
        let record = select_waivers(&mut *tx, Some(&waiver.id), OP).await?.pop();
        self.commit_at(tx, tail, std::slice::from_ref(event), None).await?;
        Ok(record)
    }

    async fn reviews(&self) -> Result<Vec<ReviewRecord>, StoreError> {
        select_reviews(&self.pool, None, "review list").await
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
        let update = |_| {
            sqlx::query(
                "UPDATE reviews SET closed_by = $1, closed_at = $2, note = $3 WHERE id = $4 AND closed_at IS NULL",
            )
            .bind(by)
            .bind(now.as_millis())
            .bind(note)
            .bind(id)
        };
        let Some((mut tx, tail)) = self.begin_if(OP, update).await? else { return Ok(None) };
        let record = select_reviews(&mut *tx, Some(id), OP).await?.pop();
        self.commit_at(tx, tail, std::slice::from_ref(event), None).await?;
        Ok(record)
    }
}
