//! The registry's ports on PostgreSQL: blobs and their links, manifests, tags, referrers and
//! upload sessions.

use airlock_core::audit::{Actor, Event, EventKind, Subject};
use airlock_core::ports::{
    BlobIndex, BlobRecord, BlobTotals, ManifestIndex, ManifestRecord, NewManifest, PutManifestOutcome, ReferrerRecord,
    StoreError, TagMode, UploadIndex, UploadRecord, failpoint,
};
use airlock_model::{Digest, RepoName, Tag, Timestamp, UploadId};
use async_trait::async_trait;
use bytes::Bytes;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::log::CommitPoints;
use super::{
    Held, PostgresStore, TagSet, digest_col, ensure_repo, err, first_missing, holds, insert_manifest_row,
    link_blob_row, records, repo_id, set_tag, size_col, tag_event, time_col, to_i64, trust,
};

fn blob_record(row: &PgRow, operation: &'static str) -> Result<BlobRecord, StoreError> {
    let inline: Option<Vec<u8>> = row.try_get("inline_data").map_err(err(operation))?;
    let quarantined: Option<i64> = row.try_get("quarantined_at").map_err(err(operation))?;
    Ok(BlobRecord {
        digest: digest_col(row, "digest", operation)?,
        size: size_col(row, "size", operation)?,
        inline: inline.map(Bytes::from),
        quarantined: quarantined.is_some(),
    })
}

#[async_trait]
impl BlobIndex for PostgresStore {
    async fn blob_in_repo(&self, repo: &RepoName, digest: &Digest) -> Result<Option<BlobRecord>, StoreError> {
        let sql = "SELECT b.digest, b.size, b.inline_data, b.quarantined_at FROM blobs b \
                   JOIN repo_blobs rb ON rb.digest = b.digest JOIN repositories r ON r.id = rb.repo_id \
                   WHERE r.name = $1 AND b.digest = $2";
        self.record_in_repo(sql, repo, digest.as_str(), blob_record, "blob lookup").await
    }

    async fn blob_sizes_in_repo(
        &self,
        repo: &RepoName,
        digests: &[Digest],
    ) -> Result<std::collections::HashMap<Digest, u64>, StoreError> {
        const OP: &str = "blob size lookup";
        let wanted: Vec<&str> = digests.iter().map(Digest::as_str).collect();
        let rows = sqlx::query(
            "SELECT b.digest, b.size FROM blobs b JOIN repo_blobs rb ON rb.digest = b.digest \
             JOIN repositories r ON r.id = rb.repo_id WHERE r.name = $1 AND b.digest = ANY($2)",
        )
        .bind(repo.as_str())
        .bind(&wanted)
        .fetch_all(&self.pool)
        .await
        .map_err(err(OP))?;
        let mut sizes = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            sizes.insert(digest_col(row, "digest", OP)?, size_col(row, "size", OP)?);
        }
        Ok(sizes)
    }

    async fn insert_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        inline: Option<Bytes>,
        closing: Option<&UploadId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        const OP: &str = "blob insert";
        let mut tx = self.begin(OP).await?;
        let repo_id = ensure_repo(&mut tx, repo, now).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, inline_data, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (digest) DO UPDATE SET quarantined_at = NULL, inline_data = EXCLUDED.inline_data, \
             size = EXCLUDED.size",
        )
        .bind(digest.as_str())
        .bind(to_i64(size))
        .bind(inline.as_deref())
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        link_blob_row(&mut tx, repo_id, digest, now, OP).await?;
        if let Some(id) = closing {
            sqlx::query("DELETE FROM uploads WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(err(OP))?;
        }
        failpoint("blob-commit-linked");
        tx.commit().await.map_err(err(OP))?;
        failpoint("blob-commit-done");
        Ok(())
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const OP: &str = "blob mount";
        let mut tx = self.begin(OP).await?;
        let Some(from_id) = repo_id(&mut *tx, from, OP).await? else { return Ok(false) };
        if !holds(&mut tx, from_id, Held::Blob, digest, OP).await? {
            return Ok(false);
        }
        let repo_id = ensure_repo(&mut tx, repo, now).await?;
        link_blob_row(&mut tx, repo_id, digest, now, OP).await?;
        tx.commit().await.map_err(err(OP))?;
        Ok(true)
    }

    async fn unlink_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let delete = |_| {
            sqlx::query(
                "DELETE FROM repo_blobs WHERE digest = $1 AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
            )
            .bind(digest.as_str())
            .bind(repo.as_str())
        };
        let subject = Subject { repository: Some(repo.clone()), digest: Some(digest.clone()), tag: None };
        let event = Event::allowed(EventKind::BlobDelete, actor, now, subject);
        Ok(self.logged_if("blob unlink", delete, &event, None).await?.is_some())
    }

    async fn blobs_after(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<BlobRecord>, StoreError> {
        let query = sqlx::query(
            "SELECT digest, size, inline_data, quarantined_at FROM blobs \
             WHERE digest > $1 AND quarantined_at IS NULL ORDER BY digest LIMIT $2",
        )
        .bind(after.map_or("", |d| d.as_str()))
        .bind(i64::from(limit));
        records(&self.pool, query, blob_record, "blob scan").await
    }

    async fn quarantine_blob(&self, digest: &Digest, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE blobs SET quarantined_at = $1 WHERE digest = $2")
            .bind(now.as_millis())
            .bind(digest.as_str())
            .execute(&self.pool)
            .await
            .map_err(err("blob quarantine"))?;
        Ok(())
    }

    async fn blob_totals(&self) -> Result<BlobTotals, StoreError> {
        const OP: &str = "blob totals";
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0)::bigint AS bytes FROM blobs WHERE quarantined_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(err(OP))?;
        Ok(BlobTotals { count: size_col(&row, "n", OP)?, bytes: size_col(&row, "bytes", OP)? })
    }
}

fn manifest_record(row: &PgRow, operation: &'static str) -> Result<ManifestRecord, StoreError> {
    let body: Vec<u8> = row.try_get("body").map_err(err(operation))?;
    Ok(ManifestRecord {
        digest: digest_col(row, "digest", operation)?,
        media_type: row.try_get("media_type").map_err(err(operation))?,
        body: Bytes::from(body),
    })
}

fn referrer_record(row: &PgRow, operation: &'static str) -> Result<ReferrerRecord, StoreError> {
    Ok(ReferrerRecord {
        digest: digest_col(row, "digest", operation)?,
        media_type: row.try_get("media_type").map_err(err(operation))?,
        size: size_col(row, "size", operation)?,
        artifact_type: row.try_get("artifact_type").map_err(err(operation))?,
        annotations_json: row.try_get("annotations").map_err(err(operation))?,
    })
}

/// The log event recording an attestation's verification at ingest.
fn attestation_event(
    repo: &RepoName,
    manifest: &Digest,
    attestation: &airlock_core::ports::NewAttestation,
    actor: &Actor,
    now: Timestamp,
) -> Event {
    let subject = Subject { repository: Some(repo.clone()), digest: Some(attestation.subject.clone()), tag: None };
    let verdict = &attestation.verdict;
    let mut event = Event::allowed(EventKind::AttestationIngest, actor, now, subject)
        .with_detail("referrer", serde_json::Value::from(manifest.as_str()))
        .with_detail("predicate_type", serde_json::Value::from(attestation.predicate_type.as_str()))
        .with_detail("signers", serde_json::json!(verdict.signers))
        .with_detail("root_version", serde_json::Value::from(verdict.root_version));
    if !verdict.trusted {
        event.outcome = airlock_core::audit::Outcome::Denied { reasons: verdict.reasons.clone() };
    }
    event
}

#[async_trait]
impl ManifestIndex for PostgresStore {
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &NewManifest,
        tag: Option<(&Tag, TagMode)>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<PutManifestOutcome, StoreError> {
        const OP: &str = "manifest put";
        let mut tx = self.begin(OP).await?;
        let repo_id = ensure_repo(&mut tx, repo, now).await?;
        // The references are checked inside the transaction that stores the manifest.
        if let Some(digest) = first_missing(&mut tx, repo_id, Held::Blob, &manifest.required_blobs, OP).await? {
            return Ok(PutManifestOutcome::MissingBlob(digest));
        }
        if let Some(digest) = first_missing(&mut tx, repo_id, Held::Manifest, &manifest.required_manifests, OP).await? {
            return Ok(PutManifestOutcome::MissingManifest(digest));
        }
        insert_manifest_row(&mut tx, repo_id, manifest, actor.principal(), now, OP).await?;
        let subject = |tag: Option<&Tag>| Subject {
            repository: Some(repo.clone()),
            digest: Some(manifest.digest.clone()),
            tag: tag.cloned(),
        };
        let mut events = vec![Event::allowed(EventKind::ManifestPush, actor, now, subject(tag.map(|t| t.0)))];
        if let Some(attestation) = &manifest.attestation {
            trust::insert_attestation(&mut tx, repo_id, &manifest.digest, attestation, now).await?;
            events.push(attestation_event(repo, &manifest.digest, attestation, actor, now));
        }
        if let Some((tag, mode)) = tag {
            match set_tag(&mut tx, repo_id, tag, &manifest.digest, mode, now, OP).await? {
                TagSet::Unchanged => {}
                TagSet::Immutable { current } => return Ok(PutManifestOutcome::TagImmutable { current }),
                TagSet::Set { previous } => events.push(tag_event(previous.as_ref(), actor, now, subject(Some(tag)))),
            }
        }
        // A push naming a tag sets it: its crash points are the tag's.
        let points = match tag {
            Some(_) => CommitPoints { logged: "tag-set-logged", done: "tag-set-done" },
            None => CommitPoints { logged: "manifest-push-logged", done: "manifest-push-done" },
        };
        let indices = self.commit_with_log_at(tx, &events, points).await?;
        let log_index =
            indices.first().copied().ok_or_else(|| StoreError { operation: OP, source: "no log index".into() })?;
        Ok(PutManifestOutcome::Stored { log_index })
    }

    async fn manifest_by_digest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>, StoreError> {
        let sql = "SELECT m.digest, m.media_type, m.body FROM manifests m JOIN repositories r ON r.id = m.repo_id \
                   WHERE r.name = $1 AND m.digest = $2";
        self.record_in_repo(sql, repo, digest.as_str(), manifest_record, "manifest lookup").await
    }

    async fn manifest_by_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Option<ManifestRecord>, StoreError> {
        let sql = "SELECT m.digest, m.media_type, m.body FROM tags t JOIN repositories r ON r.id = t.repo_id \
                   JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest WHERE r.name = $1 AND t.name = $2";
        self.record_in_repo(sql, repo, tag.as_str(), manifest_record, "manifest lookup").await
    }

    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const OP: &str = "manifest delete";
        let mut tx = self.begin(OP).await?;
        let Some(repo_id) = repo_id(&mut *tx, repo, OP).await? else { return Ok(false) };
        let tags: Vec<String> =
            sqlx::query_scalar("DELETE FROM tags WHERE repo_id = $1 AND digest = $2 RETURNING name")
                .bind(repo_id)
                .bind(digest.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(err(OP))?;
        let done = sqlx::query("DELETE FROM manifests WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await
            .map_err(err(OP))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let mut tags = tags;
        tags.sort_unstable();
        let subject = Subject { repository: Some(repo.clone()), digest: Some(digest.clone()), tag: None };
        let event =
            Event::allowed(EventKind::ManifestDelete, actor, now, subject).with_detail("tags", serde_json::json!(tags));
        self.commit_with_log(tx, &[event]).await?;
        Ok(true)
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag, actor: &Actor, now: Timestamp) -> Result<bool, StoreError> {
        const OP: &str = "tag delete";
        let mut tx = self.begin(OP).await?;
        let current: Option<String> = sqlx::query_scalar(
            "DELETE FROM tags WHERE name = $1 AND repo_id = (SELECT id FROM repositories WHERE name = $2) \
             RETURNING digest",
        )
        .bind(tag.as_str())
        .bind(repo.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(err(OP))?;
        let Some(current) = current else { return Ok(false) };
        let digest = Digest::parse(&current).map_err(|e| StoreError { operation: OP, source: Box::new(e) })?;
        let subject = Subject { repository: Some(repo.clone()), digest: Some(digest), tag: Some(tag.clone()) };
        self.commit_with_log(tx, &[Event::allowed(EventKind::TagDelete, actor, now, subject)]).await?;
        Ok(true)
    }

    async fn tags(&self, repo: &RepoName, last: Option<&str>, n: u32) -> Result<Option<Vec<String>>, StoreError> {
        let Some(repo_id) = repo_id(&self.pool, repo, "repository lookup").await? else { return Ok(None) };
        let tags = sqlx::query_scalar("SELECT name FROM tags WHERE repo_id = $1 AND name > $2 ORDER BY name LIMIT $3")
            .bind(repo_id)
            .bind(last.unwrap_or(""))
            .bind(i64::from(n))
            .fetch_all(&self.pool)
            .await
            .map_err(err("tag list"))?;
        Ok(Some(tags))
    }

    async fn catalog(&self, last: Option<&str>, n: u32) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT name FROM repositories r WHERE name > $1 AND (\
               EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id) OR \
               EXISTS (SELECT 1 FROM repo_blobs b WHERE b.repo_id = r.id)) \
             ORDER BY name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await
        .map_err(err("catalog"))
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ReferrerRecord>, StoreError> {
        let query = sqlx::query(
            "SELECT m.digest, m.media_type, octet_length(m.body)::bigint AS size, m.artifact_type, m.annotations \
             FROM manifests m JOIN repositories r ON r.id = m.repo_id \
             WHERE r.name = $1 AND m.subject = $2 AND ($3::text IS NULL OR m.artifact_type = $3) \
             ORDER BY m.created_at, m.digest LIMIT $4",
        )
        .bind(repo.as_str())
        .bind(subject.as_str())
        .bind(artifact_type)
        .bind(i64::from(airlock_core::registry::REFERRERS_MAX));
        records(&self.pool, query, referrer_record, "referrers").await
    }
}

#[async_trait]
impl UploadIndex for PostgresStore {
    async fn create_upload(&self, upload: &UploadRecord, max_open: u64) -> Result<bool, StoreError> {
        const OP: &str = "upload create";
        // A new session's row is committed without waiting for the WAL flush: it becomes
        // durable with the next synchronous commit, which the session's first bytes make before
        // they are written (`touch_upload`). A crash before that loses a session that holds
        // nothing; its client starts again on the 404.
        let mut tx = self.pool.begin().await.map_err(err(OP))?;
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await.map_err(err(OP))?;
        let inserted = sqlx::query(
            "INSERT INTO uploads (id, repo, client, created_at, updated_at) SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT COUNT(*) FROM uploads WHERE client = $3) < $6",
        )
        .bind(upload.id.as_str())
        .bind(upload.repo.as_str())
        .bind(&upload.client)
        .bind(upload.created_at.as_millis())
        .bind(upload.updated_at.as_millis())
        .bind(i64::try_from(max_open).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(err(OP))?;
        tx.commit().await.map_err(err(OP))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn upload(&self, id: &UploadId) -> Result<Option<UploadRecord>, StoreError> {
        const OP: &str = "upload lookup";
        let row = sqlx::query("SELECT id, repo, client, created_at, updated_at FROM uploads WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(err(OP))?;
        let Some(row) = row else { return Ok(None) };
        let repo: String = row.try_get("repo").map_err(err(OP))?;
        Ok(Some(UploadRecord {
            id: id.clone(),
            repo: RepoName::parse(&repo).map_err(|e| StoreError { operation: OP, source: Box::new(e) })?,
            client: row.try_get("client").map_err(err(OP))?,
            created_at: time_col(&row, "created_at", OP)?,
            updated_at: time_col(&row, "updated_at", OP)?,
        }))
    }

    async fn touch_upload(&self, id: &UploadId, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET updated_at = $1 WHERE id = $2")
            .bind(now.as_millis())
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(err("upload touch"))?;
        Ok(())
    }

    async fn delete_upload(&self, id: &UploadId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(err("upload delete"))?;
        Ok(())
    }

    async fn uploads_by_client(&self, client: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE client = $1")
            .bind(client)
            .fetch_one(&self.pool)
            .await
            .map_err(err("upload count"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn idle_uploads(&self, before: Timestamp, limit: u32) -> Result<Vec<UploadId>, StoreError> {
        const OP: &str = "upload expiry scan";
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < $1 ORDER BY updated_at, id LIMIT $2")
                .bind(before.as_millis())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(err(OP))?;
        ids.iter()
            .map(|id| UploadId::parse(id).map_err(|e| StoreError { operation: OP, source: Box::new(e) }))
            .collect()
    }
}
