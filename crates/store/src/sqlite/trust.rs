//! Trust roots (every version) and recorded attestations on SQLite.

use airlock_core::audit::Event;
use airlock_core::ports::{AttestationRecord, StoreError, StoredRoot, TrustStore, Verdict};
use airlock_model::{Digest, RepoName, Timestamp};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::json;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::writer::Tx;
use super::{CommitPoints, SqliteStore, digest_col, err, records, to_i64};

/// The verdict as stored: a small JSON object.
pub(super) fn verdict_json(verdict: &Verdict) -> String {
    json!({
        "trusted": verdict.trusted,
        "signers": verdict.signers,
        "reasons": verdict.reasons,
        "root_version": verdict.root_version,
    })
    .to_string()
}

fn verdict_from(text: &str, operation: &'static str) -> Result<Verdict, StoreError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| StoreError { operation, source: Box::new(e) })?;
    let strings = |key: &str| -> Vec<String> {
        value
            .get(key)
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    Ok(Verdict {
        trusted: value.get("trusted").and_then(serde_json::Value::as_bool).unwrap_or(false),
        signers: strings("signers"),
        reasons: strings("reasons"),
        root_version: value.get("root_version").and_then(serde_json::Value::as_u64).unwrap_or(0),
    })
}

fn root_row(row: &SqliteRow, operation: &'static str) -> Result<StoredRoot, StoreError> {
    let version: i64 = row.try_get("version").map_err(err(operation))?;
    let document: Vec<u8> = row.try_get("document").map_err(err(operation))?;
    Ok(StoredRoot {
        version: u64::try_from(version).map_err(|e| StoreError { operation, source: Box::new(e) })?,
        document: Bytes::from(document),
    })
}

impl SqliteStore {
    /// Trust root `version`, or the latest when `None`.
    async fn root_where(&self, version: Option<u64>) -> Result<Option<StoredRoot>, StoreError> {
        const OP: &str = "trust root lookup";
        let row = sqlx::query(
            "SELECT version, document FROM trust_roots WHERE ? IS NULL OR version = ? ORDER BY version DESC LIMIT 1",
        )
        .bind(version.map(to_i64))
        .bind(version.map(to_i64))
        .fetch_optional(&self.readers)
        .await
        .map_err(err(OP))?;
        row.map(|r| root_row(&r, OP)).transpose()
    }
}

fn attestation_row(row: &SqliteRow, operation: &'static str) -> Result<AttestationRecord, StoreError> {
    let envelope: Vec<u8> = row.try_get("envelope").map_err(err(operation))?;
    let verdict: String = row.try_get("verdict").map_err(err(operation))?;
    Ok(AttestationRecord {
        manifest: digest_col(row, "manifest", operation)?,
        subject: digest_col(row, "subject", operation)?,
        predicate_type: row.try_get("predicate_type").map_err(err(operation))?,
        envelope: Bytes::from(envelope),
        verdict: verdict_from(&verdict, operation)?,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(err(operation))?),
    })
}

/// Records an attestation inside the transaction that stores its manifest.
pub(super) async fn insert_attestation(
    tx: &mut Tx,
    repo_id: i64,
    manifest: &Digest,
    attestation: &airlock_core::ports::NewAttestation,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO attestations (repo_id, manifest, subject, predicate_type, envelope, verdict, root_version, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(repo_id)
    .bind(manifest.as_str())
    .bind(attestation.subject.as_str())
    .bind(&attestation.predicate_type)
    .bind(attestation.envelope.as_ref())
    .bind(verdict_json(&attestation.verdict))
    .bind(to_i64(attestation.verdict.root_version))
    .bind(now.as_millis())
    .execute(&mut **tx)
    .await
    .map_err(err("attestation insert"))?;
    Ok(())
}

#[async_trait]
impl TrustStore for SqliteStore {
    async fn latest_root(&self) -> Result<Option<StoredRoot>, StoreError> {
        self.root_where(None).await
    }

    async fn root_version(&self, version: u64) -> Result<Option<StoredRoot>, StoreError> {
        self.root_where(Some(version)).await
    }

    async fn put_root(&self, root: &StoredRoot, event: &Event, now: Timestamp) -> Result<bool, StoreError> {
        let insert = |_| {
            sqlx::query(
                "INSERT INTO trust_roots (version, document, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(to_i64(root.version))
            .bind(root.document.as_ref())
            .bind(now.as_millis())
        };
        let points = CommitPoints { logged: "trust-root-apply-logged", done: "trust-root-apply-done" };
        Ok(self.logged_if("trust root store", insert, event, Some(points)).await?.is_some())
    }

    async fn attestations(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<AttestationRecord>, StoreError> {
        let query = sqlx::query(
            "SELECT a.manifest, a.subject, a.predicate_type, a.envelope, a.verdict, a.created_at FROM attestations a \
             JOIN repositories r ON r.id = a.repo_id WHERE r.name = ? AND a.subject = ? ORDER BY a.created_at, a.manifest",
        )
        .bind(repo.as_str())
        .bind(subject.as_str());
        records(&self.readers, query, attestation_row, "attestation lookup").await
    }
}
