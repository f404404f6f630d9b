//! `cargo bench -p airlock-store --bench scale`: one PostgreSQL store grown to 10 thousand, 100
//! thousand, 1 million and 10 million log entries (a tenth as many manifests, a thousand
//! repositories at the top), and at each size the reads and the commit that must not slow down
//! as it grows: an inclusion proof from the stored nodes, a promotion commit, a tags-list page,
//! a catalog page and an evidence read. Prints one table, each figure's growth against a
//! logarithmic bound, and the targets.
//!
//! Configured by the environment (`bench/scale.sh` sets it up):
//! - `AIRLOCK_SCALE_POSTGRES_URL` (or `AIRLOCK_TEST_POSTGRES_URL`): a PostgreSQL cluster; the
//!   bench makes a fresh database `airlock_scale` on it and drops it at the end;
//! - `AIRLOCK_SCALE_SIZES`: log sizes, comma-separated (default `10000,100000,1000000,10000000`);
//! - `AIRLOCK_SCALE_SAMPLES`: timed reads per figure and size (default 2000);
//! - `AIRLOCK_SCALE_COMMITS`: timed promotion commits per size (default 200);
//! - `AIRLOCK_SCALE_KEEP=1`: keep the database.

mod fixture;
mod load;
mod probe;
mod records;

use std::time::{Duration, Instant};

use airlock_core::ports::LogStore;
use airlock_store::{PostgresOptions, PostgresStore};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

use crate::probe::Figure;
use crate::records::Rng;

const DATABASE: &str = "airlock_scale";
/// Targets at the largest size.
const PROOF_TARGET: Duration = Duration::from_millis(1);
const COMMIT_TARGET: Duration = Duration::from_millis(20);

/// Stops the bench with `message`: a probe that errs fails the run, it never becomes a figure.
pub fn fail(message: &str) -> ! {
    eprintln!("scale: {message}");
    std::process::exit(1)
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

fn number(name: &str, default: &str) -> u64 {
    let text = env_or(name, default);
    text.trim().replace('_', "").parse().unwrap_or_else(|_| fail(&format!("`{name}` = `{text}` is not a number")))
}

#[derive(Debug)]
struct Config {
    url: String,
    sizes: Vec<u64>,
    samples: usize,
    commits: u64,
    keep: bool,
}

impl Config {
    fn from_env() -> Config {
        let url = std::env::var("AIRLOCK_SCALE_POSTGRES_URL")
            .or_else(|_| std::env::var("AIRLOCK_TEST_POSTGRES_URL"))
            .unwrap_or_else(|_| {
                fail("set AIRLOCK_SCALE_POSTGRES_URL to a PostgreSQL cluster (bench/scale.sh starts one)")
            });
        let sizes: Vec<u64> = env_or("AIRLOCK_SCALE_SIZES", "10000,100000,1000000,10000000")
            .split(',')
            .map(|s| s.trim().replace('_', "").parse().unwrap_or_else(|_| fail(&format!("size `{s}` is not a number"))))
            .collect();
        if sizes.is_empty() || sizes.windows(2).any(|w| w[0] >= w[1]) || sizes[0] < 1000 {
            fail("AIRLOCK_SCALE_SIZES must rise, from at least 1000 entries");
        }
        Config {
            url,
            sizes,
            samples: number("AIRLOCK_SCALE_SAMPLES", "2000") as usize,
            commits: number("AIRLOCK_SCALE_COMMITS", "200").max(1),
            keep: env_or("AIRLOCK_SCALE_KEEP", "0") == "1",
        }
    }
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..].find('/').map_or(base.len(), |i| authority + i);
    match query {
        Some(query) => format!("{}/{database}?{query}", &base[..path]),
        None => format!("{}/{database}", &base[..path]),
    }
}

/// Repositories at a log size: one per 10,000 entries (a thousand at 10 million), at least 10.
fn repos_for(entries: u64) -> u64 {
    (entries / 10_000).max(10)
}

/// Which figure of a row.
type Pick = fn(&Row) -> &Figure;

/// One row of the table.
#[derive(Debug)]
struct Row {
    entries: u64,
    manifests: i64,
    repos: u64,
    proof: Figure,
    commit: Figure,
    tags: Figure,
    catalog: Figure,
    evidence: Figure,
    load: Duration,
    database: i64,
}

async fn database_size(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(pool).await.expect("database size")
}

async fn setting(pool: &PgPool, name: &str) -> String {
    sqlx::query_scalar("SELECT current_setting($1)").bind(name).fetch_one(pool).await.unwrap_or_default()
}

fn main() {
    let config = Config::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run(config));
}

async fn run(config: Config) {
    let mut admin = sqlx::PgConnection::connect(&config.url)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot reach PostgreSQL at AIRLOCK_SCALE_POSTGRES_URL: {e}")));
    for sql in [format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"), format!("CREATE DATABASE {DATABASE}")] {
        sqlx::raw_sql(&sql).execute(&mut admin).await.unwrap_or_else(|e| fail(&format!("`{sql}`: {e}")));
    }
    let url = with_database(&config.url, DATABASE);
    let options =
        PostgresOptions { pool_max: 4, statement_timeout: Duration::from_secs(600), ..PostgresOptions::new(&url) };
    let store = PostgresStore::connect(&options).await.unwrap_or_else(|e| fail(&e.to_string()));
    let pool = PgPoolOptions::new().max_connections(3).connect(&url).await.expect("a pool for bulk writes");
    eprintln!(
        "PostgreSQL {}; shared_buffers {}, fsync {}, synchronous_commit {}, max_wal_size {}",
        setting(&pool, "server_version").await,
        setting(&pool, "shared_buffers").await,
        setting(&pool, "fsync").await,
        setting(&pool, "synchronous_commit").await,
        setting(&pool, "max_wal_size").await,
    );

    let mut loader = load::Loader::new(pool.clone(), store.clone());
    let mut rng = Rng::new(0x5ca1e);
    let mut rows = Vec::new();
    let (mut pushes, mut push_time) = (0u64, Duration::ZERO);
    let run_started = Instant::now();
    for (step, &size) in config.sizes.iter().enumerate() {
        let repos = repos_for(size);
        // The fixtures first, so the probes run at exactly `size` entries.
        let (fixtures, rate) = fixture::prepare(&store, step as u64, config.commits, repos).await;
        pushes += rate.pushes;
        push_time += rate.took;
        let now = store.log_size().await.expect("log size");
        if now > size {
            fail(&format!("the log holds {now} entries before loading to {size}; space the sizes further apart"));
        }
        eprintln!("== {size} entries: loading {} entries ({repos} repositories)", size - now);
        let loaded = loader.grow_to(size, repos).await;
        let database = database_size(&pool).await;
        eprintln!(
            "   loaded {} entries and {} manifests in {:.1} s ({:.0} entries/s); database {} MiB",
            loaded.entries,
            loaded.manifests,
            loaded.took.as_secs_f64(),
            loaded.entries as f64 / loaded.took.as_secs_f64(),
            database / 1_048_576,
        );
        let manifests: i64 =
            sqlx::query_scalar("SELECT count(*) FROM manifests").fetch_one(&pool).await.expect("count manifests");
        let proof = probe::inclusion(&store, config.samples, &mut rng).await;
        let tags = probe::tags(&store, &pool, repos, config.samples, &mut rng).await;
        let catalog = probe::catalog(&store, &pool, config.samples).await;
        let evidence = probe::evidence(&store, &fixtures, config.samples).await;
        // Last: each commit appends to the log.
        let commit = probe::commits(&store, &fixtures).await;
        rows.push(Row {
            entries: size,
            manifests,
            repos,
            proof,
            commit,
            tags,
            catalog,
            evidence,
            load: loaded.took,
            database,
        });
        eprintln!("   probed: {}", describe(rows.last().expect("a row")));
    }
    let took = run_started.elapsed();
    print(&rows, &config);
    println!(
        "pushes through the port (put_manifest, one transaction each) while making fixtures: {:.0}/s ({pushes} pushes)",
        pushes as f64 / push_time.as_secs_f64().max(1e-9),
    );
    let load: Duration = rows.iter().map(|r| r.load).sum();
    println!("bulk loading took {:.1} s in all; the whole run {:.1} s", load.as_secs_f64(), took.as_secs_f64());
    print_relations(&pool).await;
    pool.close().await;
    store.close().await;
    if !config.keep {
        let sql = format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)");
        sqlx::raw_sql(&sql).execute(&mut admin).await.unwrap_or_else(|e| fail(&format!("`{sql}`: {e}")));
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 { format!("{ms:.3}") } else { format!("{ms:.1}") }
}

fn pair(f: &Figure) -> String {
    match f.names {
        Some(names) => format!("{} / {} [{names:.0}]", ms(f.p50), ms(f.p99)),
        None => format!("{} / {}", ms(f.p50), ms(f.p99)),
    }
}

fn describe(row: &Row) -> String {
    format!(
        "proof {} ms, commit {} ms, tags {} ms, catalog {} ms, evidence {} ms (p50 / p99)",
        pair(&row.proof),
        pair(&row.commit),
        pair(&row.tags),
        pair(&row.catalog),
        pair(&row.evidence)
    )
}

/// A count with thousands separators.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print(rows: &[Row], config: &Config) {
    println!();
    println!(
        "p50 / p99 in ms; {} samples per read figure, {} commits per size; pages of at most {} names \
         (the mean a page held in brackets)",
        config.samples,
        config.commits,
        probe::PAGE
    );
    println!(
        "{:>12} {:>10} {:>6} {:>17} {:>17} {:>23} {:>23} {:>17} {:>8} {:>8}",
        "log entries",
        "manifests",
        "repos",
        "inclusion proof",
        "promotion commit",
        "tags page",
        "catalog page",
        "evidence read",
        "load s",
        "db MiB"
    );
    for r in rows {
        println!(
            "{:>12} {:>10} {:>6} {:>17} {:>17} {:>23} {:>23} {:>17} {:>8.1} {:>8}",
            count(r.entries),
            count(u64::try_from(r.manifests).unwrap_or(0)),
            r.repos,
            pair(&r.proof),
            pair(&r.commit),
            pair(&r.tags),
            pair(&r.catalog),
            pair(&r.evidence),
            r.load.as_secs_f64(),
            r.database / 1_048_576,
        );
    }
    let (first, last) = (&rows[0], &rows[rows.len() - 1]);
    if rows.len() > 1 {
        let bound = (last.entries as f64).ln() / (first.entries as f64).ln();
        println!();
        println!(
            "growth of the p50 from {} to {} entries; a logarithmic bound allows log({}) / log({}) = {bound:.2}x",
            count(first.entries),
            count(last.entries),
            count(last.entries),
            count(first.entries)
        );
        let figures: [(&str, Pick); 5] = [
            ("inclusion proof", |r| &r.proof),
            ("promotion commit", |r| &r.commit),
            ("tags page", |r| &r.tags),
            ("catalog page", |r| &r.catalog),
            ("evidence read", |r| &r.evidence),
        ];
        for (name, of) in figures {
            let (a, b) = (of(first).p50, of(last).p50);
            let growth = b.as_secs_f64() / a.as_secs_f64().max(1e-9);
            let verdict = if growth <= bound { "within" } else { "OVER" };
            println!("  {name:<17} {:>9} ms -> {:>9} ms  {growth:>6.2}x  {verdict}", ms(a), ms(b));
        }
    }
    println!();
    println!("targets at {} entries:", count(last.entries));
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "  inclusion proof <= {} ms: p50 {} ms, p99 {} ms: {} (p50), {} (p99)",
        PROOF_TARGET.as_millis(),
        ms(last.proof.p50),
        ms(last.proof.p99),
        met(last.proof.p50 <= PROOF_TARGET),
        met(last.proof.p99 <= PROOF_TARGET)
    );
    println!(
        "  promotion commit p50 <= {} ms: {} ms (p99 {} ms): {}",
        COMMIT_TARGET.as_millis(),
        ms(last.commit.p50),
        ms(last.commit.p99),
        met(last.commit.p50 <= COMMIT_TARGET)
    );
}

/// The largest tables and indexes, and the database, as stored.
async fn print_relations(pool: &PgPool) {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT relname::text, pg_total_relation_size(relid), n_live_tup FROM pg_stat_user_tables \
         ORDER BY 2 DESC LIMIT 8",
    )
    .fetch_all(pool)
    .await
    .expect("table sizes");
    let total = database_size(pool).await;
    let wal: i64 = sqlx::query_scalar("SELECT COALESCE(sum(size), 0)::bigint FROM pg_ls_waldir()")
        .fetch_one(pool)
        .await
        .unwrap_or(0);
    println!(
        "database {} MiB (and {} MiB of WAL files); largest tables with their indexes:",
        total / 1_048_576,
        wal / 1_048_576
    );
    for (name, bytes, tuples) in rows {
        println!("  {name:<16} {:>8} MiB  ~{} rows", bytes / 1_048_576, count(u64::try_from(tuples).unwrap_or(0)));
    }
}
