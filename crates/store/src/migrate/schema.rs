//! Both sides' schemas, read from the databases themselves (`sqlite_master` and `PRAGMA
//! table_info` on SQLite, `information_schema` and `pg_constraint` on PostgreSQL), and the plan
//! that pairs them: every table and column on one side must be on the other, each column's
//! values convert by the PostgreSQL type, and tables are inserted parents first.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqliteConnection;

use super::MigrateError;

/// The table both migrations seed with one row (`id = 1`, the version of what servers cache).
/// It is not inserted: its version is carried over once the other tables are in.
pub(crate) const SEEDED: &str = "cached_state";

/// The migrator's own bookkeeping, which each side keeps for itself.
const BOOKKEEPING: &str = "_sqlx_migrations";

/// How a SQLite value becomes a PostgreSQL one; NULL stays NULL in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conversion {
    /// `INTEGER` to `bigint`.
    Bigint,
    /// `INTEGER` to `integer`, refusing a value out of its range.
    Integer,
    /// `INTEGER` to `smallint`, refusing a value out of its range.
    Smallint,
    /// `INTEGER` 0 or 1 to `boolean`, refusing any other value.
    Boolean,
    /// `TEXT` to `text`.
    Text,
    /// `TEXT` to `jsonb`, which PostgreSQL parses (and refuses if it is not JSON).
    Jsonb,
    /// `BLOB` to `bytea`.
    Bytea,
}

impl Conversion {
    /// The conversion from SQLite's declared type `sqlite` to PostgreSQL's `postgres`
    /// (`information_schema.columns.data_type`), if migrate knows one.
    pub(crate) fn between(sqlite: &str, postgres: &str) -> Option<Conversion> {
        let sqlite = sqlite.to_ascii_uppercase();
        match (sqlite.as_str(), postgres) {
            ("INTEGER" | "INT", "bigint") => Some(Conversion::Bigint),
            ("INTEGER" | "INT", "integer") => Some(Conversion::Integer),
            ("INTEGER" | "INT", "smallint") => Some(Conversion::Smallint),
            ("INTEGER" | "INT", "boolean") => Some(Conversion::Boolean),
            ("TEXT", "text") => Some(Conversion::Text),
            ("TEXT", "jsonb") => Some(Conversion::Jsonb),
            ("BLOB", "bytea") => Some(Conversion::Bytea),
            _ => None,
        }
    }
}

/// One column as both sides declare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnPlan {
    pub(crate) name: String,
    pub(crate) conversion: Conversion,
    /// A PostgreSQL identity column: inserted with `OVERRIDING SYSTEM VALUE`, its sequence
    /// moved past the largest value afterwards.
    pub(crate) identity: bool,
}

/// One table to copy, its columns in SQLite's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TablePlan {
    pub(crate) name: String,
    pub(crate) columns: Vec<ColumnPlan>,
}

impl TablePlan {
    pub(crate) fn has_identity(&self) -> bool {
        self.columns.iter().any(|c| c.identity)
    }
}

/// One side's tables: each table's columns with their declared types, and which tables each
/// table's foreign keys reference.
#[derive(Debug, Default, Clone)]
pub(crate) struct Side {
    pub(crate) tables: BTreeMap<String, Vec<Column>>,
    pub(crate) references: BTreeMap<String, BTreeSet<String>>,
}

/// A column as one side declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) declared: String,
    pub(crate) identity: bool,
}

/// `name` quoted as an SQL identifier (both dialects double any `"` inside).
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQLite database's tables, read in `conn` (inside the copy's read transaction or not).
pub(crate) async fn sqlite_side(conn: &mut SqliteConnection, path: &str) -> Result<Side, MigrateError> {
    let read = |what: &str| {
        let (path, what) = (path.to_owned(), what.to_owned());
        move |source| MigrateError::SourceRead { path, what, source }
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND name <> ? ORDER BY name",
    )
    .bind(BOOKKEEPING)
    .fetch_all(&mut *conn)
    .await
    .map_err(read("the list of tables"))?;
    let mut side = Side::default();
    for table in names {
        let what = format!("the columns of table `{table}`");
        let rows = sqlx::query("SELECT name, type FROM pragma_table_info(?) ORDER BY cid")
            .bind(&table)
            .fetch_all(&mut *conn)
            .await
            .map_err(read(&what))?;
        let mut columns = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get("name").map_err(read(&what))?;
            let declared: String = row.try_get("type").map_err(read(&what))?;
            columns.push(Column { name, declared, identity: false });
        }
        let what = format!("the foreign keys of table `{table}`");
        let parents: Vec<String> = sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?)")
            .bind(&table)
            .fetch_all(&mut *conn)
            .await
            .map_err(read(&what))?;
        side.references.insert(table.clone(), parents.into_iter().collect());
        side.tables.insert(table, columns);
    }
    Ok(side)
}

/// The PostgreSQL database's tables in its current schema.
pub(crate) async fn postgres_side(pool: &PgPool) -> Result<Side, MigrateError> {
    let read = |what: &'static str| move |source| MigrateError::TargetRead { what, source };
    let rows = sqlx::query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, c.data_type::text AS data_type, \
         c.is_identity::text = 'YES' AS identity \
         FROM information_schema.columns c JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name <> $1 \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .bind(BOOKKEEPING)
    .fetch_all(pool)
    .await
    .map_err(read("the columns of its tables"))?;
    let mut side = Side::default();
    for row in rows {
        let table: String = row.try_get("table_name").map_err(read("a column"))?;
        let name: String = row.try_get("column_name").map_err(read("a column"))?;
        let declared: String = row.try_get("data_type").map_err(read("a column"))?;
        let identity: bool = row.try_get("identity").map_err(read("a column"))?;
        side.references.entry(table.clone()).or_default();
        side.tables.entry(table).or_default().push(Column { name, declared, identity });
    }
    let edges = sqlx::query(
        "SELECT child.relname::text AS child, parent.relname::text AS parent FROM pg_constraint c \
         JOIN pg_class child ON child.oid = c.conrelid JOIN pg_class parent ON parent.oid = c.confrelid \
         JOIN pg_namespace n ON n.oid = child.relnamespace \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(pool)
    .await
    .map_err(read("the foreign keys of its tables"))?;
    for row in edges {
        let child: String = row.try_get("child").map_err(read("a foreign key"))?;
        let parent: String = row.try_get("parent").map_err(read("a foreign key"))?;
        side.references.entry(child).or_default().insert(parent);
    }
    Ok(side)
}

/// Pairs the two sides: every table and every column must be on both, with a conversion
/// between their types. Returns the tables in the order to insert them (parents first, by the
/// foreign keys of both sides), [`SEEDED`] among them.
pub(crate) fn plan(sqlite: &Side, postgres: &Side) -> Result<Vec<TablePlan>, MigrateError> {
    if let Some(table) = sqlite.tables.keys().find(|t| !postgres.tables.contains_key(*t)) {
        return Err(MigrateError::TableOnlyInSource { table: table.clone() });
    }
    if let Some(table) = postgres.tables.keys().find(|t| !sqlite.tables.contains_key(*t)) {
        return Err(MigrateError::TableOnlyInTarget { table: table.clone() });
    }
    let mut plans = BTreeMap::new();
    for (table, source_columns) in &sqlite.tables {
        let target_columns = postgres.tables.get(table).map(Vec::as_slice).unwrap_or_default();
        if let Some(column) = target_columns.iter().find(|c| !source_columns.iter().any(|s| s.name == c.name)) {
            return Err(MigrateError::ColumnOnlyInTarget { table: table.clone(), column: column.name.clone() });
        }
        let mut columns = Vec::with_capacity(source_columns.len());
        for source in source_columns {
            let Some(target) = target_columns.iter().find(|c| c.name == source.name) else {
                return Err(MigrateError::ColumnOnlyInSource { table: table.clone(), column: source.name.clone() });
            };
            let conversion =
                Conversion::between(&source.declared, &target.declared).ok_or_else(|| MigrateError::ColumnTypes {
                    table: table.clone(),
                    column: source.name.clone(),
                    sqlite: source.declared.clone(),
                    postgres: target.declared.clone(),
                })?;
            columns.push(ColumnPlan { name: source.name.clone(), conversion, identity: target.identity });
        }
        plans.insert(table.clone(), TablePlan { name: table.clone(), columns });
    }
    let mut references: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for side in [sqlite, postgres] {
        for (child, parents) in &side.references {
            references.entry(child.clone()).or_default().extend(parents.iter().cloned());
        }
    }
    let order = parents_first(plans.keys().cloned().collect(), &references)?;
    Ok(order.into_iter().filter_map(|t| plans.remove(&t)).collect())
}

/// `tables` ordered so that each comes after every table it references (a table referencing
/// itself aside); among tables free to go, by name. A cycle is an error naming its tables.
pub(crate) fn parents_first(
    tables: BTreeSet<String>,
    references: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Vec<String>, MigrateError> {
    let mut left = tables;
    let mut order = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|t| references.get(*t).is_none_or(|parents| parents.iter().all(|p| p == *t || !left.contains(p))))
            .cloned()
            .collect();
        if ready.is_empty() {
            let tables = left.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
            return Err(MigrateError::ForeignKeyCycle { tables });
        }
        for table in ready {
            left.remove(&table);
            order.push(table);
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (child, parent) in edges {
            out.entry((*child).to_owned()).or_default().insert((*parent).to_owned());
        }
        out
    }

    fn check(tables: &[&str], edges: &[(&str, &str)], expect: &str) {
        let tables = tables.iter().map(|t| (*t).to_owned()).collect();
        let actual = match parents_first(tables, &refs(edges)) {
            Ok(order) => order.join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(actual, expect);
    }

    #[test]
    fn parents_come_first() {
        check(&["b", "a"], &[], "a b");
        check(
            &["tags", "manifests", "repositories"],
            &[("tags", "manifests"), ("manifests", "repositories")],
            "repositories manifests tags",
        );
        check(&["a", "b"], &[("a", "a")], "a b");
        check(&["a", "b"], &[("a", "elsewhere")], "a b");
        check(
            &["a", "b", "c"],
            &[("a", "b"), ("b", "a")],
            "error: the foreign keys of tables `a`, `b` reference each other in a cycle, so no order of inserts satisfies them; this airlock cannot copy such a schema",
        );
    }

    #[test]
    fn conversions_follow_the_postgres_type() {
        let cases = [
            ("INTEGER", "bigint", Some(Conversion::Bigint)),
            ("integer", "smallint", Some(Conversion::Smallint)),
            ("INTEGER", "boolean", Some(Conversion::Boolean)),
            ("TEXT", "jsonb", Some(Conversion::Jsonb)),
            ("BLOB", "bytea", Some(Conversion::Bytea)),
            ("TEXT", "bytea", None),
            ("REAL", "double precision", None),
        ];
        for (sqlite, postgres, expected) in cases {
            assert_eq!(Conversion::between(sqlite, postgres), expected, "{sqlite} -> {postgres}");
        }
    }

    fn side(tables: &[(&str, &[(&str, &str)])]) -> Side {
        let mut side = Side::default();
        for (table, columns) in tables {
            let columns = columns.iter().map(|(n, t)| Column {
                name: (*n).to_owned(),
                declared: (*t).to_owned(),
                identity: false,
            });
            side.tables.insert((*table).to_owned(), columns.collect());
        }
        side
    }

    #[test]
    fn a_table_or_column_on_one_side_only_is_named() {
        let sqlite = side(&[("a", &[("id", "INTEGER"), ("x", "TEXT")]), ("b", &[("id", "INTEGER")])]);
        let check = |postgres: Side, expect: &str| {
            let actual = match plan(&sqlite, &postgres) {
                Ok(plans) => plans.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(" "),
                Err(e) => e.to_string(),
            };
            assert_eq!(actual, expect);
        };
        check(side(&[("a", &[("id", "bigint"), ("x", "text")]), ("b", &[("id", "smallint")])]), "a b");
        check(
            side(&[("a", &[("id", "bigint"), ("x", "text")])]),
            "table `b` is in the SQLite database but not in PostgreSQL, so its rows would be lost; nothing was copied: this airlock cannot migrate a table its PostgreSQL schema lacks (remove it first if it was added by hand)",
        );
        check(
            side(&[("a", &[("id", "bigint"), ("x", "text")]), ("b", &[("id", "bigint")]), ("c", &[])]),
            "table `c` is in PostgreSQL but not in the SQLite database; nothing was copied: point `--to` at an empty database this airlock created, or remove a table added by hand",
        );
        check(
            side(&[("a", &[("id", "bigint")]), ("b", &[("id", "bigint")])]),
            "column `a.x` is in the SQLite database but not in PostgreSQL, so its values would be lost; nothing was copied: this airlock cannot migrate a column its PostgreSQL schema lacks (remove it first if it was added by hand)",
        );
        check(
            side(&[("a", &[("id", "bigint"), ("x", "text"), ("y", "text")]), ("b", &[("id", "bigint")])]),
            "column `a.y` is in PostgreSQL but not in the SQLite database; nothing was copied: point `--to` at an empty database this airlock created, or remove a column added by hand",
        );
        check(
            side(&[("a", &[("id", "bigint"), ("x", "bytea")]), ("b", &[("id", "bigint")])]),
            "column `a.x` is `TEXT` in SQLite but `bytea` in PostgreSQL, and migrate knows no conversion between them; nothing was copied: this airlock cannot migrate this schema",
        );
    }
}
