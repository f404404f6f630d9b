//! Users, service accounts and role bindings on SQLite.

use airlock_core::audit::Event;
use airlock_core::ports::{
    GrantKind, GrantRecord, GrantStatus, IdentityStore, PrincipalChange, PrincipalRecord, StoreError,
};
use airlock_model::{PrincipalId, PrincipalKind, Timestamp};
use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};

use super::writer::Tx;
use super::{CommitPoints, SqliteStore, err, records, to_i64};

const COLUMNS: &str = "id, kind, epoch, disabled, password_hash, totp_secret, api_key_hash, api_key_expires_at, \
     created_at, email, enrollment_hash, enrollment_expires_at";

fn invalid(operation: &'static str, what: String) -> StoreError {
    StoreError { operation, source: what.into() }
}

fn principal_row(row: &SqliteRow, roles: Vec<String>, operation: &'static str) -> Result<PrincipalRecord, StoreError> {
    let id: String = row.try_get("id").map_err(err(operation))?;
    let kind: String = row.try_get("kind").map_err(err(operation))?;
    let epoch: i64 = row.try_get("epoch").map_err(err(operation))?;
    let disabled: i64 = row.try_get("disabled").map_err(err(operation))?;
    let expires: Option<i64> = row.try_get("api_key_expires_at").map_err(err(operation))?;
    let enrollment_expires: Option<i64> = row.try_get("enrollment_expires_at").map_err(err(operation))?;
    Ok(PrincipalRecord {
        id: PrincipalId::parse(&id).map_err(|e| invalid(operation, e.to_string()))?,
        kind: PrincipalKind::parse(&kind)
            .ok_or_else(|| invalid(operation, format!("unknown principal kind `{kind}`")))?,
        epoch: u64::try_from(epoch).map_err(|e| StoreError { operation, source: Box::new(e) })?,
        disabled: disabled != 0,
        password_hash: row.try_get("password_hash").map_err(err(operation))?,
        totp_secret: row.try_get("totp_secret").map_err(err(operation))?,
        api_key_hash: row.try_get("api_key_hash").map_err(err(operation))?,
        api_key_expires_at: expires.map(Timestamp::from_millis),
        roles,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(err(operation))?),
        email: row.try_get("email").map_err(err(operation))?,
        enrollment_hash: row.try_get("enrollment_hash").map_err(err(operation))?,
        enrollment_expires_at: enrollment_expires.map(Timestamp::from_millis),
    })
}

/// The principal `id` with its roles, and whether it holds an active just-in-time grant, read
/// on `conn` in one statement: one instant, and one round trip on the path of every
/// authenticated request.
async fn principal_on(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    operation: &'static str,
) -> Result<Option<(PrincipalRecord, bool)>, StoreError> {
    Ok(principal_with_version_on(conn, id, operation).await?.map(|(record, granted, _)| (record, granted)))
}

/// [`principal_on`], with the cached-state version read in the same statement.
pub(super) async fn principal_with_version_on(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    operation: &'static str,
) -> Result<Option<(PrincipalRecord, bool, u64)>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, \
         (SELECT json_group_array(role ORDER BY role) FROM role_bindings b WHERE b.principal = p.id) AS roles, \
         EXISTS (SELECT 1 FROM access_grants g WHERE g.principal = p.id AND g.status = 'active' AND g.kind = 'jit') \
         AS granted, \
         (SELECT version FROM cached_state WHERE id = 1) AS cached_version \
         FROM principals p WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(err(operation))?;
    let Some(row) = row else { return Ok(None) };
    let roles: String = row.try_get("roles").map_err(err(operation))?;
    let roles: Vec<String> = serde_json::from_str(&roles)
        .map_err(|e| invalid(operation, format!("roles of `{id}` are not a list of names: {e}")))?;
    let granted: bool = row.try_get("granted").map_err(err(operation))?;
    let version: i64 = row.try_get("cached_version").map_err(err(operation))?;
    let version = u64::try_from(version).map_err(|e| StoreError { operation, source: Box::new(e) })?;
    Ok(Some((principal_row(&row, roles, operation)?, granted, version)))
}

/// Applies `change` to `id` and bumps its epoch, inside `tx`; `false` when there is no such
/// principal, or an `Enroll` whose token is not the outstanding one (the caller then drops `tx`).
async fn apply(
    tx: &mut Tx,
    id: &PrincipalId,
    change: &PrincipalChange,
    operation: &'static str,
) -> Result<bool, StoreError> {
    let bumped = sqlx::query("UPDATE principals SET epoch = epoch + 1 WHERE id = ?")
        .bind(id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(err(operation))?;
    if bumped.rows_affected() == 0 {
        return Ok(false);
    }
    let query = match change {
        PrincipalChange::Disable => sqlx::query("UPDATE principals SET disabled = 1 WHERE id = ?"),
        PrincipalChange::Enable => sqlx::query("UPDATE principals SET disabled = 0 WHERE id = ?"),
        PrincipalChange::SetPassword { hash } => {
            sqlx::query("UPDATE principals SET password_hash = ? WHERE id = ?").bind(hash.as_str())
        }
        PrincipalChange::SetTotp { secret } => {
            sqlx::query("UPDATE principals SET totp_secret = ? WHERE id = ?").bind(secret.as_deref())
        }
        PrincipalChange::SetApiKey { hash, expires_at } => {
            sqlx::query("UPDATE principals SET api_key_hash = ?, api_key_expires_at = ? WHERE id = ?")
                .bind(hash.as_str())
                .bind(expires_at.as_millis())
        }
        PrincipalChange::GrantRole { role } => {
            sqlx::query("INSERT INTO role_bindings (role, principal) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(role.as_str())
        }
        PrincipalChange::RevokeRole { role } => {
            sqlx::query("DELETE FROM role_bindings WHERE role = ? AND principal = ?").bind(role.as_str())
        }
        PrincipalChange::SetEnrollment { hash, expires_at } => sqlx::query(
            "UPDATE principals SET enrollment_hash = ?, enrollment_expires_at = ?, password_hash = NULL, \
             totp_secret = NULL WHERE id = ?",
        )
        .bind(hash.as_str())
        .bind(expires_at.as_millis()),
        PrincipalChange::Enroll { token_hash, password_hash, totp_secret } => {
            let done = sqlx::query(
                "UPDATE principals SET password_hash = ?, totp_secret = ?, enrollment_hash = NULL, \
                 enrollment_expires_at = NULL WHERE id = ? AND enrollment_hash = ?",
            )
            .bind(password_hash.as_str())
            .bind(totp_secret.as_str())
            .bind(id.as_str())
            .bind(token_hash.as_str())
            .execute(&mut **tx)
            .await
            .map_err(err(operation))?;
            return Ok(done.rows_affected() == 1);
        }
    };
    query.bind(id.as_str()).execute(&mut **tx).await.map_err(err(operation))?;
    Ok(true)
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError> {
        const OP: &str = "principal lookup";
        let mut reader = self.readers.acquire().await.map_err(err(OP))?;
        Ok(principal_on(reader.connection().map_err(err(OP))?, id.as_str(), OP).await?.map(|(record, _)| record))
    }

    async fn principal_granted(&self, id: &PrincipalId) -> Result<Option<(PrincipalRecord, bool)>, StoreError> {
        const OP: &str = "principal lookup";
        let mut reader = self.readers.acquire().await.map_err(err(OP))?;
        principal_on(reader.connection().map_err(err(OP))?, id.as_str(), OP).await
    }

    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        const OP: &str = "principal list";
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM principals ORDER BY id"))
            .fetch_all(&self.readers)
            .await
            .map_err(err(OP))?;
        let bindings = sqlx::query("SELECT principal, role FROM role_bindings ORDER BY principal, role")
            .fetch_all(&self.readers)
            .await
            .map_err(err(OP))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id").map_err(err(OP))?;
            let mut roles = Vec::new();
            for binding in &bindings {
                let principal: String = binding.try_get("principal").map_err(err(OP))?;
                if principal == id {
                    roles.push(binding.try_get("role").map_err(err(OP))?);
                }
            }
            out.push(principal_row(row, roles, OP)?);
        }
        Ok(out)
    }

    async fn create_principal(&self, record: &PrincipalRecord, event: &Event) -> Result<bool, StoreError> {
        const OP: &str = "principal create";
        let insert = format!(
            "INSERT INTO principals ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        );
        let insert = |_| {
            sqlx::query(&insert)
                .bind(record.id.as_str())
                .bind(record.kind.as_str())
                .bind(to_i64(record.epoch.max(1)))
                .bind(i64::from(record.disabled))
                .bind(&record.password_hash)
                .bind(&record.totp_secret)
                .bind(&record.api_key_hash)
                .bind(record.api_key_expires_at.map(Timestamp::as_millis))
                .bind(record.created_at.as_millis())
                .bind(&record.email)
                .bind(&record.enrollment_hash)
                .bind(record.enrollment_expires_at.map(Timestamp::as_millis))
        };
        let Some((mut tx, tail)) = self.begin_if(OP, insert).await? else { return Ok(false) };
        for role in &record.roles {
            sqlx::query("INSERT INTO role_bindings (principal, role) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(record.id.as_str())
                .bind(role)
                .execute(&mut *tx)
                .await
                .map_err(err(OP))?;
        }
        self.commit_at(tx, tail, std::slice::from_ref(event), None).await?;
        Ok(true)
    }

    async fn change_principal(
        &self,
        id: &PrincipalId,
        change: &PrincipalChange,
        event: &Event,
    ) -> Result<Option<PrincipalRecord>, StoreError> {
        const OP: &str = "principal change";
        let mut tx = self.begin(OP).await?;
        if !apply(&mut tx, id, change, OP).await? {
            return Ok(None);
        }
        let record = principal_on(&mut tx, id.as_str(), OP).await?.map(|(record, _)| record);
        self.commit_with_log(tx, std::slice::from_ref(event)).await?;
        Ok(record)
    }

    async fn create_grant(&self, grant: &GrantRecord, event: &Event) -> Result<(), StoreError> {
        let insert =
            format!("INSERT INTO access_grants ({GRANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        let insert = |_| {
            sqlx::query(&insert)
                .bind(&grant.id)
                .bind(grant.principal.as_str())
                .bind(&grant.role)
                .bind(&grant.reason)
                .bind(to_i64(grant.duration_secs))
                .bind(grant.status.as_str())
                .bind(grant.requested_at.as_millis())
                .bind(&grant.decided_by)
                .bind(grant.decided_at.map(Timestamp::as_millis))
                .bind(grant.expires_at.map(Timestamp::as_millis))
                .bind(grant.kind.as_str())
                .bind(grant.requested_by.as_str())
                .bind(&grant.approved_by)
        };
        self.logged_if("grant create", insert, event, None).await?;
        Ok(())
    }

    async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        Ok(select_grants(&self.readers, "id = ?", Some(id), "grant lookup").await?.pop())
    }

    async fn grants(&self, principal: Option<&PrincipalId>) -> Result<Vec<GrantRecord>, StoreError> {
        let principal = principal.map(PrincipalId::as_str);
        select_grants(&self.readers, "? IS NULL OR principal = ?", principal, "grant list").await
    }

    async fn decide_grant(
        &self,
        grant: &GrantRecord,
        from: GrantStatus,
        change: Option<&PrincipalChange>,
        event: &Event,
    ) -> Result<Option<GrantRecord>, StoreError> {
        const OP: &str = "grant decision";
        // A first approval lands only on a grant that has none yet; a decision after it only on
        // the same first approval.
        let update = |_| {
            sqlx::query(
                "UPDATE access_grants SET status = ?, decided_by = ?, decided_at = ?, expires_at = ?, approved_by = ? \
                 WHERE id = ? AND status = ? AND (approved_by IS ? OR approved_by = ?)",
            )
            .bind(grant.status.as_str())
            .bind(&grant.decided_by)
            .bind(grant.decided_at.map(Timestamp::as_millis))
            .bind(grant.expires_at.map(Timestamp::as_millis))
            .bind(&grant.approved_by)
            .bind(&grant.id)
            .bind(from.as_str())
            .bind(Option::<String>::None)
            .bind(&grant.approved_by)
        };
        let Some((mut tx, tail)) = self.begin_if(OP, update).await? else { return Ok(None) };
        if let Some(change) = change
            && !apply(&mut tx, &grant.principal, change, OP).await?
        {
            return Ok(None);
        }
        if grant.status == GrantStatus::Revoked {
            sqlx::query("UPDATE principals SET epoch = epoch + 1 WHERE id = ?")
                .bind(grant.principal.as_str())
                .execute(&mut *tx)
                .await
                .map_err(err(OP))?;
        }
        let stored = select_grants(&mut *tx, "id = ?", Some(&grant.id), OP).await?.pop();
        // An approval leaves the grant active, or pending with its first of two approvals.
        let points = matches!(grant.status, GrantStatus::Active | GrantStatus::Pending)
            .then_some(CommitPoints { logged: "grant-approve-logged", done: "grant-approve-done" });
        self.commit_at(tx, tail, std::slice::from_ref(event), points).await?;
        Ok(stored)
    }

    async fn defined_roles(&self) -> Result<Vec<(String, String)>, StoreError> {
        const OP: &str = "role list";
        let rows = sqlx::query("SELECT name, definition FROM roles ORDER BY name")
            .fetch_all(&self.readers)
            .await
            .map_err(err(OP))?;
        rows.iter()
            .map(|r| Ok((r.try_get("name").map_err(err(OP))?, r.try_get("definition").map_err(err(OP))?)))
            .collect()
    }

    async fn define_role(&self, name: &str, definition: &str, event: &Event) -> Result<bool, StoreError> {
        let insert = |_| {
            sqlx::query("INSERT INTO roles (name, definition, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
                .bind(name)
                .bind(definition)
                .bind(event.time.as_millis())
        };
        Ok(self.logged_if("role define", insert, event, None).await?.is_some())
    }
}

const GRANT_COLUMNS: &str = "id, principal, role, reason, duration_secs, status, requested_at, decided_by, decided_at, \
     expires_at, kind, requested_by, approved_by";

fn grant_row(row: &SqliteRow, operation: &'static str) -> Result<GrantRecord, StoreError> {
    let principal: String = row.try_get("principal").map_err(err(operation))?;
    let status: String = row.try_get("status").map_err(err(operation))?;
    let duration: i64 = row.try_get("duration_secs").map_err(err(operation))?;
    let decided_at: Option<i64> = row.try_get("decided_at").map_err(err(operation))?;
    let expires_at: Option<i64> = row.try_get("expires_at").map_err(err(operation))?;
    let kind: String = row.try_get("kind").map_err(err(operation))?;
    let requested_by: Option<String> = row.try_get("requested_by").map_err(err(operation))?;
    let requested_by = requested_by.unwrap_or_else(|| principal.clone());
    Ok(GrantRecord {
        id: row.try_get("id").map_err(err(operation))?,
        kind: GrantKind::parse(&kind).ok_or_else(|| invalid(operation, format!("unknown grant kind `{kind}`")))?,
        principal: PrincipalId::parse(&principal).map_err(|e| invalid(operation, e.to_string()))?,
        requested_by: PrincipalId::parse(&requested_by).map_err(|e| invalid(operation, e.to_string()))?,
        approved_by: row.try_get("approved_by").map_err(err(operation))?,
        role: row.try_get("role").map_err(err(operation))?,
        reason: row.try_get("reason").map_err(err(operation))?,
        duration_secs: u64::try_from(duration).map_err(|e| StoreError { operation, source: Box::new(e) })?,
        status: GrantStatus::parse(&status)
            .ok_or_else(|| invalid(operation, format!("unknown grant status `{status}`")))?,
        requested_at: Timestamp::from_millis(row.try_get("requested_at").map_err(err(operation))?),
        decided_by: row.try_get("decided_by").map_err(err(operation))?,
        decided_at: decided_at.map(Timestamp::from_millis),
        expires_at: expires_at.map(Timestamp::from_millis),
    })
}

/// The grants matching `clause`, newest first; each `?` in it takes `value`.
async fn select_grants(
    executor: impl sqlx::Executor<'_, Database = Sqlite>,
    clause: &str,
    value: Option<&str>,
    operation: &'static str,
) -> Result<Vec<GrantRecord>, StoreError> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM access_grants WHERE {clause} ORDER BY requested_at DESC, id");
    let query = (0..clause.matches('?').count()).fold(sqlx::query(&sql), |q, _| q.bind(value));
    records(executor, query, grant_row, operation).await
}
