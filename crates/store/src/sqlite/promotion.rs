//! Promotions, approvals and the promotion commit on SQLite.

use airlock_core::audit::Event;
use airlock_core::ports::{
    ApprovalRecord, PromotionCommit, PromotionCommitOutcome, PromotionFilter, PromotionRecord, PromotionStatus,
    PromotionStore, Seal, StoreError, TagWrite, failpoint,
};
use airlock_model::{Digest, RepoName, Tag, Timestamp};
use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};

use super::writer::Tx;
use super::{Held, ReadRow, SqliteStore, digest_col, ensure_repo, err, log, records, to_i64};

const COLUMNS: &str = "id, source, target, digest, tag, requester, reason, status, policy_digest, evidence_digest, \
                       report, created_at, updated_at, closed_reason, release_digest, summary_digest, log_index, break_glass";

fn invalid(operation: &'static str, what: String) -> StoreError {
    StoreError { operation, source: what.into() }
}

fn repo_col(row: &SqliteRow, col: &str, operation: &'static str) -> Result<RepoName, StoreError> {
    let text: String = row.try_get(col).map_err(err(operation))?;
    RepoName::parse(&text).map_err(|e| invalid(operation, e.to_string()))
}

fn promotion_row(row: &SqliteRow, operation: &'static str) -> Result<PromotionRecord, StoreError> {
    let tag: Option<String> = row.try_get("tag").map_err(err(operation))?;
    let status: String = row.try_get("status").map_err(err(operation))?;
    let release: Option<String> = row.try_get("release_digest").map_err(err(operation))?;
    let summary: Option<String> = row.try_get("summary_digest").map_err(err(operation))?;
    let log_index: Option<i64> = row.try_get("log_index").map_err(err(operation))?;
    let break_glass: i64 = row.try_get("break_glass").map_err(err(operation))?;
    Ok(PromotionRecord {
        id: row.try_get("id").map_err(err(operation))?,
        source: repo_col(row, "source", operation)?,
        target: repo_col(row, "target", operation)?,
        digest: digest_col(row, "digest", operation)?,
        tag: tag.map(|t| Tag::parse(&t)).transpose().map_err(|e| invalid(operation, e.to_string()))?,
        requester: row.try_get("requester").map_err(err(operation))?,
        reason: row.try_get("reason").map_err(err(operation))?,
        status: PromotionStatus::parse(&status)
            .ok_or_else(|| invalid(operation, format!("unknown promotion status `{status}`")))?,
        policy_digest: row.try_get("policy_digest").map_err(err(operation))?,
        evidence_digest: row.try_get("evidence_digest").map_err(err(operation))?,
        report: row.try_get("report").map_err(err(operation))?,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(err(operation))?),
        updated_at: Timestamp::from_millis(row.try_get("updated_at").map_err(err(operation))?),
        closed_reason: row.try_get("closed_reason").map_err(err(operation))?,
        summary_digest: summary
            .map(|d| Digest::parse(&d))
            .transpose()
            .map_err(|e| invalid(operation, e.to_string()))?,
        release_digest: release
            .map(|d| Digest::parse(&d))
            .transpose()
            .map_err(|e| invalid(operation, e.to_string()))?,
        log_index: log_index.map(|i| u64::try_from(i).unwrap_or(0)),
        break_glass: break_glass != 0,
    })
}

fn approval_row(row: &SqliteRow, operation: &'static str) -> Result<ApprovalRecord, StoreError> {
    Ok(ApprovalRecord {
        promotion: row.try_get("promotion").map_err(err(operation))?,
        approver: row.try_get("approver").map_err(err(operation))?,
        identity: row.try_get("identity").map_err(err(operation))?,
        digest: digest_col(row, "digest", operation)?,
        source: repo_col(row, "source", operation)?,
        target: repo_col(row, "target", operation)?,
        policy_digest: row.try_get("policy_digest").map_err(err(operation))?,
        evidence_digest: row.try_get("evidence_digest").map_err(err(operation))?,
        comment: row.try_get("comment").map_err(err(operation))?,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(err(operation))?),
        expires_at: Timestamp::from_millis(row.try_get("expires_at").map_err(err(operation))?),
        log_index: index_col(row, "log_index", operation)?,
    })
}

/// A stored log index; a negative one (only a hand-edited row holds one) reads as none.
pub(super) fn index_col(row: &SqliteRow, col: &str, operation: &'static str) -> Result<Option<u64>, StoreError> {
    let index: Option<i64> = row.try_get(col).map_err(err(operation))?;
    Ok(index.and_then(|i| u64::try_from(i).ok()))
}

/// The promotions matching `clause`, whose `?`s take `binds`, read through `executor`.
async fn select_promotions(
    executor: impl sqlx::Executor<'_, Database = Sqlite>,
    clause: &str,
    binds: &[&str],
    operation: &'static str,
) -> Result<Vec<PromotionRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM promotions WHERE {clause}");
    let query = binds.iter().fold(sqlx::query(&sql), |q, b| q.bind(*b));
    records(executor, query, promotion_row, operation).await
}

/// The promotion `id`, read through `executor`.
async fn promotion_by_id(
    executor: impl sqlx::Executor<'_, Database = Sqlite>,
    id: &str,
    operation: &'static str,
) -> Result<Option<PromotionRecord>, StoreError> {
    Ok(select_promotions(executor, "id = ?", &[id], operation).await?.pop())
}

/// The open or promoted promotion with the same idempotency key, if any.
async fn same_key(
    tx: &mut Tx,
    p: &PromotionRecord,
    operation: &'static str,
) -> Result<Option<PromotionRecord>, StoreError> {
    let key = [p.source.as_str(), p.digest.as_str(), p.target.as_str(), p.tag.as_ref().map_or("", Tag::as_str)];
    let clause =
        "source = ? AND digest = ? AND target = ? AND COALESCE(tag, '') = ? AND status IN ('pending', 'promoted')";
    Ok(select_promotions(&mut **tx, clause, &key, operation).await?.pop())
}

/// Links `what` `digest` from `source` into `target`, a manifest with its attestation if it
/// carries one; false when `source` does not hold it.
async fn link(
    tx: &mut Tx,
    what: Held,
    source: i64,
    target: i64,
    digest: &Digest,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let operation = match what {
        Held::Blob => "promotion link blob",
        Held::Manifest => "promotion link manifest",
    };
    if !super::holds(tx, source, what, digest, operation).await? {
        return Ok(false);
    }
    if what == Held::Blob {
        super::link_blob_row(tx, target, digest, now, operation).await?;
        return Ok(true);
    }
    // The manifest row and its attestation's, copied as they are but for the repository (and
    // the manifest's link time).
    let copies = [
        "INSERT INTO manifests (repo_id, digest, media_type, body, artifact_type, subject, annotations, created_at, pushed_by) \
         SELECT ?2, digest, media_type, body, artifact_type, subject, annotations, ?3, pushed_by \
         FROM manifests WHERE repo_id = ?1 AND digest = ?4 ON CONFLICT DO NOTHING",
        "INSERT INTO attestations (repo_id, manifest, subject, predicate_type, envelope, verdict, root_version, created_at) \
         SELECT ?2, manifest, subject, predicate_type, envelope, verdict, root_version, created_at \
         FROM attestations WHERE repo_id = ?1 AND manifest = ?4 ON CONFLICT DO NOTHING",
    ];
    for sql in copies {
        sqlx::query(sql)
            .bind(source)
            .bind(target)
            .bind(now.as_millis())
            .bind(digest.as_str())
            .execute(&mut **tx)
            .await
            .map_err(err(operation))?;
    }
    Ok(true)
}

/// Points `write.tag` in repository `repo_id` at `write.digest` if it still points at
/// `write.expected`; otherwise nothing changes and the error is where it points (`None`: it is
/// absent).
async fn write_tag(
    tx: &mut Tx,
    repo_id: i64,
    write: &TagWrite,
    now: Timestamp,
    operation: &'static str,
) -> Result<Result<(), Option<Digest>>, StoreError> {
    let current: Option<String> = sqlx::query_scalar("SELECT digest FROM tags WHERE repo_id = ? AND name = ?")
        .bind(repo_id)
        .bind(write.tag.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(err(operation))?;
    if current.as_deref() != write.expected.as_ref().map(Digest::as_str) {
        let current = current.map(|c| Digest::parse(&c)).transpose().map_err(|e| invalid(operation, e.to_string()))?;
        return Ok(Err(current));
    }
    sqlx::query(
        "INSERT INTO tags (repo_id, name, digest, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
    )
    .bind(repo_id)
    .bind(write.tag.as_str())
    .bind(write.digest.as_str())
    .bind(now.as_millis())
    .execute(&mut **tx)
    .await
    .map_err(err(operation))?;
    Ok(Ok(()))
}

#[async_trait]
impl PromotionStore for SqliteStore {
    async fn open_promotion(
        &self,
        promotion: &PromotionRecord,
        event: &Event,
    ) -> Result<Result<(), PromotionRecord>, StoreError> {
        const OP: &str = "promotion open";
        let mut tx = self.begin(OP).await?;
        if promotion.status == PromotionStatus::Pending
            && let Some(existing) = same_key(&mut tx, promotion, OP).await?
        {
            return Ok(Err(existing));
        }
        sqlx::query(&format!(
            "INSERT INTO promotions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&promotion.id)
        .bind(promotion.source.as_str())
        .bind(promotion.target.as_str())
        .bind(promotion.digest.as_str())
        .bind(promotion.tag.as_ref().map(Tag::as_str))
        .bind(&promotion.requester)
        .bind(&promotion.reason)
        .bind(promotion.status.as_str())
        .bind(&promotion.policy_digest)
        .bind(&promotion.evidence_digest)
        .bind(&promotion.report)
        .bind(promotion.created_at.as_millis())
        .bind(promotion.updated_at.as_millis())
        .bind(promotion.closed_reason.as_deref())
        .bind(promotion.release_digest.as_ref().map(Digest::as_str))
        .bind(promotion.summary_digest.as_ref().map(Digest::as_str))
        .bind(promotion.log_index.map(to_i64))
        .bind(i64::from(promotion.break_glass))
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        self.commit_with_log(tx, std::slice::from_ref(event)).await?;
        Ok(Ok(()))
    }

    async fn promotion(&self, id: &str) -> Result<Option<PromotionRecord>, StoreError> {
        promotion_by_id(&self.readers, id, "promotion lookup").await
    }

    async fn promotions(&self, filter: &PromotionFilter) -> Result<Vec<PromotionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM promotions WHERE (? IS NULL OR status = ?) AND (? IS NULL OR target = ?) \
             AND (? IS NULL OR digest = ?) ORDER BY created_at DESC, id LIMIT ?"
        );
        let query = sqlx::query(&sql)
            .bind(filter.status.map(PromotionStatus::as_str))
            .bind(filter.status.map(PromotionStatus::as_str))
            .bind(filter.target.as_ref().map(RepoName::as_str))
            .bind(filter.target.as_ref().map(RepoName::as_str))
            .bind(filter.digest.as_ref().map(Digest::as_str))
            .bind(filter.digest.as_ref().map(Digest::as_str))
            .bind(i64::from(filter.limit.max(1)));
        records(&self.readers, query, promotion_row, "promotion list").await
    }

    async fn approvals(&self, promotion: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        let query = sqlx::query(
            "SELECT promotion, approver, identity, digest, source, target, policy_digest, evidence_digest, \
             comment, created_at, expires_at, log_index FROM approvals WHERE promotion = ? \
             ORDER BY created_at, approver",
        )
        .bind(promotion);
        records(&self.readers, query, approval_row, "approval list").await
    }

    async fn add_approval(&self, approval: &ApprovalRecord, event: &Event) -> Result<bool, StoreError> {
        // The approval stores the index its event lands at, in this transaction, while its
        // promotion is pending.
        let insert = |index| {
            sqlx::query(
                "INSERT INTO approvals (promotion, approver, identity, digest, source, target, policy_digest, \
                 evidence_digest, comment, created_at, expires_at, log_index) \
                 SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
                 WHERE EXISTS (SELECT 1 FROM promotions WHERE id = ? AND status = 'pending') ON CONFLICT DO NOTHING",
            )
            .bind(&approval.promotion)
            .bind(&approval.approver)
            .bind(&approval.identity)
            .bind(approval.digest.as_str())
            .bind(approval.source.as_str())
            .bind(approval.target.as_str())
            .bind(&approval.policy_digest)
            .bind(&approval.evidence_digest)
            .bind(&approval.comment)
            .bind(approval.created_at.as_millis())
            .bind(approval.expires_at.as_millis())
            .bind(index)
            .bind(&approval.promotion)
        };
        Ok(self.logged_if("approval add", insert, event, None).await?.is_some())
    }

    async fn update_evaluation(&self, promotion: &PromotionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE promotions SET policy_digest = ?, evidence_digest = ?, report = ?, updated_at = ? \
             WHERE id = ? AND status = 'pending'",
        )
        .bind(&promotion.policy_digest)
        .bind(&promotion.evidence_digest)
        .bind(&promotion.report)
        .bind(promotion.updated_at.as_millis())
        .bind(&promotion.id)
        .execute(&self.writer)
        .await
        .map_err(err("promotion update"))?;
        Ok(())
    }

    async fn close_promotion(
        &self,
        id: &str,
        status: PromotionStatus,
        reason: &str,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<PromotionRecord>, StoreError> {
        const OP: &str = "promotion close";
        let update = |_| {
            sqlx::query(
                "UPDATE promotions SET status = ?, closed_reason = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
            )
            .bind(status.as_str())
            .bind(reason)
            .bind(now.as_millis())
            .bind(id)
        };
        let Some((mut tx, tail)) = self.begin_if(OP, update).await? else { return Ok(None) };
        let record = promotion_by_id(&mut *tx, id, OP).await?;
        self.commit_at(tx, tail, std::slice::from_ref(event), None).await?;
        Ok(record)
    }

    async fn commit_promotion(
        &self,
        commit: &PromotionCommit,
        seal: Seal<'_>,
        now: Timestamp,
    ) -> Result<PromotionCommitOutcome, StoreError> {
        const OP: &str = "promotion commit";
        let p = &commit.promotion;
        let mut tx = self.begin(OP).await?;
        match promotion_by_id(&mut *tx, &p.id, OP).await? {
            Some(current) if current.status == PromotionStatus::Pending => {}
            Some(current) => return Ok(PromotionCommitOutcome::NotPending { status: current.status }),
            None => return Err(invalid(OP, format!("promotion `{}` is not stored", p.id))),
        }
        failpoint("promotion-commit-begin");
        let source = ensure_repo(&mut tx, &p.source, now).await?;
        let target = ensure_repo(&mut tx, &p.target, now).await?;
        // Blobs first, then manifests children before parents, so every reference resolves.
        let linked =
            commit.blobs.iter().map(|d| (Held::Blob, d)).chain(commit.manifests.iter().map(|d| (Held::Manifest, d)));
        for (what, digest) in linked {
            if !link(&mut tx, what, source, target, digest, now).await? {
                return Ok(PromotionCommitOutcome::Missing { digest: digest.clone() });
            }
        }
        if let Some(write) = &commit.tag
            && let Err(current) = write_tag(&mut tx, target, write, now, OP).await?
        {
            return Ok(PromotionCommitOutcome::TagMoved { current });
        }

        failpoint("promotion-commit-linked");
        // The release record names the index its commit event lands at.
        let mut tail = self.log_tail(&mut tx).await?;
        let sealed = seal(tail.size()).map_err(|e| invalid(OP, e))?;
        for engine_manifest in &sealed.release {
            super::insert_engine_manifest(&mut tx, target, engine_manifest, now, OP).await?;
        }
        failpoint("promotion-commit-sealed");
        let first_index = tail.size();
        sqlx::query(
            "UPDATE promotions SET status = 'promoted', release_digest = ?, summary_digest = ?, log_index = ?, updated_at = ?, \
             policy_digest = ?, evidence_digest = ?, report = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(sealed.release_digest.as_str())
        .bind(sealed.summary_digest.as_str())
        .bind(to_i64(first_index))
        .bind(now.as_millis())
        .bind(&p.policy_digest)
        .bind(&p.evidence_digest)
        .bind(&p.report)
        .bind(&p.id)
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        if p.break_glass {
            sqlx::query("INSERT INTO reviews (id, promotion, opened_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
                .bind(format!("rev-{}", p.id))
                .bind(&p.id)
                .bind(now.as_millis())
                .execute(&mut *tx)
                .await
                .map_err(err(OP))?;
        }
        for approver in &commit.approvers {
            sqlx::query("UPDATE approvals SET consumed_at = ? WHERE promotion = ? AND approver = ?")
                .bind(now.as_millis())
                .bind(&p.id)
                .bind(approver)
                .execute(&mut *tx)
                .await
                .map_err(err(OP))?;
        }
        let mut events = sealed.events.clone();
        events.extend(commit.tag.as_ref().map(|w| w.event.clone()));
        // Until the commit succeeds the cached tail stays empty, so a failure reloads it.
        log::append_in(&mut tx, &mut tail, &events).await?;
        failpoint("promotion-commit-logged");
        tx.commit().await.map_err(err(OP))?;
        self.keep_log_tail(tail);
        failpoint("promotion-commit-done");
        Ok(PromotionCommitOutcome::Committed { log_index: first_index, release_digest: sealed.release_digest })
    }

    async fn move_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        from: &Digest,
        to: &Digest,
        event: &Event,
    ) -> Result<Option<u64>, StoreError> {
        let update = |_| {
            sqlx::query(
                "UPDATE tags SET digest = ?, updated_at = ? \
                 WHERE name = ? AND digest = ? AND repo_id = (SELECT id FROM repositories WHERE name = ?) \
                 AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = tags.repo_id AND m.digest = ?)",
            )
            .bind(to.as_str())
            .bind(event.time.as_millis())
            .bind(tag.as_str())
            .bind(from.as_str())
            .bind(repo.as_str())
            .bind(to.as_str())
        };
        self.logged_if("tag move", update, event, None).await
    }

    async fn pusher(&self, repo: &RepoName, digest: &Digest) -> Result<Option<String>, StoreError> {
        let sql = "SELECT m.pushed_by FROM manifests m JOIN repositories r ON r.id = m.repo_id \
                   WHERE r.name = ? AND m.digest = ?";
        let pushed_by: ReadRow<Option<String>> = |row, operation| row.try_get("pushed_by").map_err(err(operation));
        Ok(self.record_in_repo(sql, repo, digest.as_str(), pushed_by, "pusher lookup").await?.flatten())
    }
}
