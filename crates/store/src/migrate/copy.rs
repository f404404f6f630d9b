//! The copy: every table read from one SQLite snapshot and inserted, parents first and in
//! batches, inside one PostgreSQL transaction that holds the log's sequencer lock, so that it
//! either commits whole or leaves the target as it was. Values convert by the PostgreSQL
//! column's type; identity columns keep their values and their sequences move past them.

use futures::TryStreamExt;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Postgres, QueryBuilder, Row};

use super::schema::{Conversion, SEEDED, TablePlan, quoted};
use super::{MigrateError, TableCopied, TableProgress};
use crate::PostgresStore;
use crate::postgres::SEQUENCER_LOCK;

/// Most rows per INSERT; fewer when the table's columns would pass PostgreSQL's 65,535 bound
/// on a statement's parameters.
const BATCH_ROWS: usize = 1000;
/// PostgreSQL's bound on one statement's parameters.
const PARAMETERS_MAX: usize = 65_535;
/// Bytes of values past which a batch is sent whatever its rows: manifests and inline blobs
/// can be large.
const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// One value on its way to PostgreSQL, typed as its column there; `None` is NULL.
#[derive(Debug)]
enum Value {
    Bigint(Option<i64>),
    Integer(Option<i32>),
    Smallint(Option<i16>),
    Boolean(Option<bool>),
    Text(Option<String>),
    Jsonb(Option<String>),
    Bytea(Option<Vec<u8>>),
}

impl Value {
    /// Roughly the bytes the value takes in a statement.
    fn weight(&self) -> usize {
        match self {
            Value::Text(Some(s)) | Value::Jsonb(Some(s)) => s.len(),
            Value::Bytea(Some(b)) => b.len(),
            _ => 8,
        }
    }
}

/// Fails unless every table but [`SEEDED`] is empty, read through `conn`.
pub(super) async fn ensure_empty(conn: &mut PgConnection, plan: &[TablePlan]) -> Result<(), MigrateError> {
    for table in plan.iter().filter(|t| t.name != SEEDED) {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(&table.name));
        let held: bool = sqlx::query_scalar(&sql)
            .fetch_one(&mut *conn)
            .await
            .map_err(|source| MigrateError::TargetRead { what: "whether its tables are empty", source })?;
        if held {
            return Err(MigrateError::TargetNotEmpty { table: table.name.clone() });
        }
    }
    Ok(())
}

/// Copies every table of `plan` from the SQLite database `reader` reads (`path`) into `target`,
/// in one transaction.
pub(super) async fn copy(
    reader: &SqlitePool,
    path: &str,
    target: &PostgresStore,
    plan: &[TablePlan],
    mut progress: impl FnMut(TableProgress<'_>),
) -> Result<Vec<TableCopied>, MigrateError> {
    let read_err = |what: String| move |source| MigrateError::SourceRead { path: path.to_owned(), what, source };
    // One read transaction: every table comes from the same snapshot of the file.
    let mut read = reader.begin().await.map_err(read_err("the database".to_owned()))?;
    let mut tx = target.pool().begin().await.map_err(|source| MigrateError::Transaction { step: "begin", source })?;
    // The log's sequencer lock, as every write takes it: a server started over the target
    // meanwhile waits for the copy instead of appending beside it.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SEQUENCER_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(|source| MigrateError::Transaction { step: "lock", source })?;
    // Large tables take longer than the store's statement timeout allows one statement.
    sqlx::query("SET LOCAL statement_timeout = 0")
        .execute(&mut *tx)
        .await
        .map_err(|source| MigrateError::Transaction { step: "configure", source })?;
    ensure_empty(&mut tx, plan).await?;
    let mut copied = Vec::with_capacity(plan.len());
    for table in plan {
        let count = format!("SELECT COUNT(*) FROM {}", quoted(&table.name));
        let rows: i64 = sqlx::query_scalar(&count)
            .fetch_one(&mut *read)
            .await
            .map_err(read_err(format!("the rows of table `{}`", table.name)))?;
        let rows = u64::try_from(rows).unwrap_or(0);
        progress(TableProgress { table: &table.name, copied: 0, rows, done: false });
        if table.name == SEEDED {
            carry_seeded(&mut read, &mut tx, path).await?;
        } else {
            copy_table(&mut read, &mut tx, path, table, rows, &mut progress).await?;
            reset_identities(&mut tx, table).await?;
        }
        progress(TableProgress { table: &table.name, copied: rows, rows, done: true });
        copied.push(TableCopied { table: table.name.clone(), rows });
    }
    tx.commit().await.map_err(|source| MigrateError::Transaction { step: "commit", source })?;
    // Only read; ending it releases the snapshot.
    read.rollback().await.ok();
    Ok(copied)
}

/// Copies one table's rows, `rows` of them, reading in `read` and inserting in `tx`.
async fn copy_table(
    read: &mut sqlx::SqliteConnection,
    tx: &mut PgConnection,
    path: &str,
    table: &TablePlan,
    rows: u64,
    progress: &mut impl FnMut(TableProgress<'_>),
) -> Result<(), MigrateError> {
    let columns: Vec<String> = table.columns.iter().map(|c| quoted(&c.name)).collect();
    let select = format!("SELECT {} FROM {}", columns.join(", "), quoted(&table.name));
    let overriding = if table.has_identity() { " OVERRIDING SYSTEM VALUE" } else { "" };
    let insert = format!("INSERT INTO {} ({}){overriding} ", quoted(&table.name), columns.join(", "));
    let max_rows = BATCH_ROWS.min(PARAMETERS_MAX.checked_div(columns.len()).unwrap_or(BATCH_ROWS)).max(1);
    let read_err = |source| MigrateError::SourceRead {
        path: path.to_owned(),
        what: format!("the rows of table `{}`", table.name),
        source,
    };
    let mut stream = sqlx::query(&select).fetch(&mut *read);
    let mut batch: Vec<Vec<Value>> = Vec::new();
    let mut bytes = 0usize;
    let mut seen = 0u64;
    let mut copied = 0u64;
    while let Some(row) = stream.try_next().await.map_err(read_err)? {
        seen = seen.saturating_add(1);
        let values = convert(&row, table, seen, path)?;
        bytes = bytes.saturating_add(values.iter().map(Value::weight).sum());
        batch.push(values);
        if batch.len() >= max_rows || bytes >= BATCH_BYTES {
            copied = copied.saturating_add(batch.len() as u64);
            insert_batch(tx, &insert, &table.name, std::mem::take(&mut batch)).await?;
            bytes = 0;
            progress(TableProgress { table: &table.name, copied, rows, done: false });
        }
    }
    if !batch.is_empty() {
        insert_batch(tx, &insert, &table.name, batch).await?;
    }
    Ok(())
}

/// Sends one multi-row INSERT of `rows` (each in the table's column order) after `insert`.
async fn insert_batch(
    tx: &mut PgConnection,
    insert: &str,
    table: &str,
    rows: Vec<Vec<Value>>,
) -> Result<(), MigrateError> {
    let mut query = QueryBuilder::<Postgres>::new(insert);
    query.push_values(rows, |mut tuple, row| {
        for value in row {
            match value {
                Value::Bigint(v) => tuple.push_bind(v),
                Value::Integer(v) => tuple.push_bind(v),
                Value::Smallint(v) => tuple.push_bind(v),
                Value::Boolean(v) => tuple.push_bind(v),
                Value::Text(v) => tuple.push_bind(v),
                // Sent as text, parsed by PostgreSQL.
                Value::Jsonb(v) => tuple.push_bind(v).push_unseparated("::jsonb"),
                Value::Bytea(v) => tuple.push_bind(v),
            };
        }
    });
    query.build().execute(&mut *tx).await.map_err(|source| MigrateError::Copy { table: table.to_owned(), source })?;
    Ok(())
}

/// Row `n` (counting from 1) of `table`, each value converted for its PostgreSQL column.
fn convert(row: &SqliteRow, table: &TablePlan, n: u64, path: &str) -> Result<Vec<Value>, MigrateError> {
    let mut values = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        let read_err = |source| MigrateError::SourceRead {
            path: path.to_owned(),
            what: format!("row {n} of table `{}`, column `{}`", table.name, column.name),
            source,
        };
        let out_of_range = |value: String, postgres: &'static str| MigrateError::Value {
            table: table.name.clone(),
            column: column.name.clone(),
            row: n,
            value,
            postgres,
        };
        let value = match column.conversion {
            Conversion::Bigint => Value::Bigint(row.try_get(i).map_err(read_err)?),
            Conversion::Integer => {
                let v: Option<i64> = row.try_get(i).map_err(read_err)?;
                let v = v.map(|v| i32::try_from(v).map_err(|_| out_of_range(v.to_string(), "integer"))).transpose()?;
                Value::Integer(v)
            }
            Conversion::Smallint => {
                let v: Option<i64> = row.try_get(i).map_err(read_err)?;
                let v = v.map(|v| i16::try_from(v).map_err(|_| out_of_range(v.to_string(), "smallint"))).transpose()?;
                Value::Smallint(v)
            }
            Conversion::Boolean => {
                let v: Option<i64> = row.try_get(i).map_err(read_err)?;
                let v = v
                    .map(|v| match v {
                        0 => Ok(false),
                        1 => Ok(true),
                        other => Err(out_of_range(other.to_string(), "boolean")),
                    })
                    .transpose()?;
                Value::Boolean(v)
            }
            Conversion::Text => Value::Text(row.try_get(i).map_err(read_err)?),
            Conversion::Jsonb => Value::Jsonb(row.try_get(i).map_err(read_err)?),
            Conversion::Bytea => Value::Bytea(row.try_get(i).map_err(read_err)?),
        };
        values.push(value);
    }
    Ok(values)
}

/// Moves each identity column's sequence past the largest value copied, so the next row
/// PostgreSQL numbers does not collide with one copied.
async fn reset_identities(tx: &mut PgConnection, table: &TablePlan) -> Result<(), MigrateError> {
    for column in table.columns.iter().filter(|c| c.identity) {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)",
            column = quoted(&column.name),
            table = quoted(&table.name),
        );
        sqlx::query(&sql)
            .bind(quoted(&table.name))
            .bind(&column.name)
            .execute(&mut *tx)
            .await
            .map_err(|source| MigrateError::Copy { table: table.name.clone(), source })?;
    }
    Ok(())
}

/// [`SEEDED`]'s one row is there already (the migrations insert it) and the inserts above
/// raised its version; it keeps the larger of that and the source's version, so it never goes
/// below a version some server has loaded.
async fn carry_seeded(
    read: &mut sqlx::SqliteConnection,
    tx: &mut PgConnection,
    path: &str,
) -> Result<(), MigrateError> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT version FROM cached_state WHERE id = 1").fetch_optional(&mut *read).await.map_err(
            |source| MigrateError::SourceRead { path: path.to_owned(), what: format!("table `{SEEDED}`"), source },
        )?;
    sqlx::query("UPDATE cached_state SET version = GREATEST(version, $1) WHERE id = 1")
        .bind(version.unwrap_or(0))
        .execute(&mut *tx)
        .await
        .map_err(|source| MigrateError::Copy { table: SEEDED.to_owned(), source })?;
    Ok(())
}
