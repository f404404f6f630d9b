//! `airlock migrate`: moves a single node (SQLite and the data directory) to PostgreSQL and an
//! S3 bucket, with the server stopped, and checks that both sides hold the same log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use airlock_server::config::{STORE_URL_ENV, redact_password};
use airlock_server::migrate::{BlobMove, BlobReport, MigrateOptions, MigrateReport, Step};
use anyhow::bail;
use serde::Serialize;

use super::runtime;
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The single node's metadata database, `sqlite:DATA/metadata.db`. Stop the server first; a
    /// database from an older airlock is migrated forward in place.
    #[arg(long, value_name = "sqlite:PATH")]
    from: String,
    /// The empty PostgreSQL database, `postgres://USER:PASSWORD@HOST:PORT/DATABASE`; from
    /// `AIRLOCK_STORE_URL` when not given, which keeps the password off the command line.
    #[arg(long, value_name = "postgres://…", env = STORE_URL_ENV, hide_env_values = true)]
    to: String,
    /// The data directory whose blobs move too, into `--blobs-to`.
    #[arg(long, value_name = "DIR", requires = "blobs_to")]
    blobs_from: Option<PathBuf>,
    /// The bucket the blobs move into, `s3://BUCKET/PREFIX` (as `blobs.url`); credentials come
    /// from the environment (`AWS_ACCESS_KEY_ID`, …) or the AWS chain.
    #[arg(long, value_name = "s3://BUCKET/PREFIX", requires = "blobs_from")]
    blobs_to: Option<String>,
    /// The S3 endpoint, for storage other than AWS (as `blobs.endpoint`).
    #[arg(long, value_name = "URL", requires = "blobs_to")]
    blobs_endpoint: Option<String>,
    /// The bucket's region (as `blobs.region`).
    #[arg(long, value_name = "REGION", requires = "blobs_to")]
    blobs_region: Option<String>,
    /// Allows a plain `http://` endpoint (as `blobs.allow_http`).
    #[arg(long, requires = "blobs_to")]
    blobs_allow_http: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// What `--output json` prints.
#[derive(Debug, Serialize)]
struct Report {
    from: String,
    /// The target without its password.
    to: String,
    schema: Schema,
    /// Every table with its rows, in the order copied.
    tables: Vec<Table>,
    log: Log,
    blobs: Option<Blobs>,
}

#[derive(Debug, Serialize)]
struct Schema {
    sqlite_before: i64,
    sqlite: i64,
    postgres: i64,
    /// Whether the SQLite database was migrated forward first.
    sqlite_migrated: bool,
}

#[derive(Debug, Serialize)]
struct Table {
    table: String,
    rows: u64,
}

#[derive(Debug, Serialize)]
struct Log {
    size: u64,
    /// The RFC 6962 root, base64 as in checkpoints.
    root: String,
    /// The size of the latest signed checkpoint, the same on both sides.
    checkpoint_size: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Blobs {
    copied: u64,
    skipped: u64,
    bytes: u64,
    inline: u64,
    quarantined: u64,
}

impl From<&BlobReport> for Blobs {
    fn from(r: &BlobReport) -> Blobs {
        Blobs { copied: r.copied, skipped: r.skipped, bytes: r.bytes, inline: r.inline, quarantined: r.quarantined }
    }
}

/// The path in `sqlite:PATH` (or `sqlite://PATH`).
fn sqlite_path(from: &str) -> anyhow::Result<PathBuf> {
    let path = from.strip_prefix("sqlite://").or_else(|| from.strip_prefix("sqlite:"));
    match path {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => bail!(
            "`--from` `{}` is not `sqlite:PATH`; name the data directory's database, as in `--from sqlite:/var/lib/airlock/metadata.db`",
            airlock_model::echo::echo(from)
        ),
    }
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let sqlite = sqlite_path(&args.from)?;
    let shown_to = redact_password(&args.to);
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        bail!(
            "`--to` `{}` is not a `postgres://` URL; write it as `postgres://USER:PASSWORD@HOST:PORT/DATABASE`",
            airlock_model::echo::echo(&shown_to)
        );
    }
    let blobs = match (args.blobs_from, args.blobs_to) {
        (Some(from), Some(to)) => Some(BlobMove {
            from,
            to,
            endpoint: args.blobs_endpoint,
            region: args.blobs_region,
            allow_http: args.blobs_allow_http,
        }),
        _ => None,
    };
    let text = args.output == Output::Text;
    if text {
        eprintln!(
            "migrating `{}` to `{shown_to}` (the server must be stopped; nothing is copied into a database that holds anything)",
            sqlite.display()
        );
    }
    let options = MigrateOptions { sqlite: sqlite.clone(), postgres_url: args.to, blobs };
    let mut last = Instant::now();
    let report = runtime()?
        .block_on(airlock_server::migrate::migrate(options, |step| {
            if text {
                show_progress(step, &mut last);
            }
        }))
        // Each message carries its causes and the next step already; shown once, on one line.
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = report_of(&report, &sqlite, shown_to);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&out)?),
        Output::Text => print_text(&out),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line on stderr per step, and at most one a second while blobs or rows go by.
fn show_progress(step: Step<'_>, last: &mut Instant) {
    let every = Duration::from_secs(1);
    match step {
        Step::Opened(v) if v.sqlite_before < v.sqlite_after => eprintln!(
            "migrated the SQLite database forward from schema version {} to {} first",
            v.sqlite_before, v.sqlite_after
        ),
        Step::Opened(_) => {}
        Step::Blobs(r) if last.elapsed() >= every => {
            *last = Instant::now();
            eprintln!(
                "blobs: {} copied ({} MiB), {} in the bucket already",
                r.copied,
                r.bytes / (1024 * 1024),
                r.skipped
            );
        }
        Step::Blobs(_) => {}
        Step::Table(p) if p.done => {
            *last = Instant::now();
            eprintln!("copied {}: {} rows", p.table, p.rows);
        }
        Step::Table(p) if p.copied > 0 && last.elapsed() >= every => {
            *last = Instant::now();
            eprintln!("copying {}: {} of {} rows", p.table, p.copied, p.rows);
        }
        Step::Table(_) => {}
        Step::Verifying => eprintln!("committed; comparing both sides"),
    }
}

fn report_of(report: &MigrateReport, sqlite: &std::path::Path, to: String) -> Report {
    let v = report.versions;
    Report {
        from: sqlite.display().to_string(),
        to,
        schema: Schema {
            sqlite_before: v.sqlite_before,
            sqlite: v.sqlite_after,
            postgres: v.postgres,
            sqlite_migrated: v.sqlite_before < v.sqlite_after,
        },
        tables: report.verified.tables.iter().map(|t| Table { table: t.table.clone(), rows: t.rows }).collect(),
        log: Log {
            size: report.verified.log_size,
            root: report.verified.root.to_base64(),
            checkpoint_size: report.verified.checkpoint.as_ref().map(|c| c.size),
        },
        blobs: report.blobs.as_ref().map(Blobs::from),
    }
}

fn print_text(out: &Report) {
    let rows: u64 = out.tables.iter().map(|t| t.rows).sum();
    println!("copied {} tables ({rows} rows) from `{}` to `{}`", out.tables.len(), out.from, out.to);
    for t in &out.tables {
        println!("  {:<24} {:>10}", t.table, t.rows);
    }
    if let Some(b) = &out.blobs {
        println!(
            "blobs: {} copied ({} bytes), {} in the bucket already, {} inline (moved with the tables), {} quarantined (not copied)",
            b.copied, b.bytes, b.skipped, b.inline, b.quarantined
        );
    }
    let checkpoint = out.log.checkpoint_size.map_or_else(|| "none".to_owned(), |s| format!("size {s}"));
    println!(
        "verified: both sides hold a log of {} entries with root {}, latest checkpoint {checkpoint}",
        out.log.size, out.log.root
    );
    println!(
        "next: set `store.url` (and `blobs.url`) in the config, keep the data directory's keys (`log/`, `auth/`, `keys/`), start the server, and run `airlock audit verify`"
    );
}
