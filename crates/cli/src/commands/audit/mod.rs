//! `airlock audit`: verify, export and follow the transparency log through its public API, or
//! verify an export offline. Exit code 3 when verification fails.

pub mod client;
pub mod verify;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use airlock_tlog::{Checkpoint, Verifier, leaf_hash};
use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use serde::Serialize;

use self::client::{Entry, LogClient};
use self::verify::Outcome;
use super::runtime;
use crate::Output;

/// Exit code of a failed verification.
const VERIFY_FAILED: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Recompute the log's root from every entry and check it against a signed checkpoint.
    Verify(VerifyArgs),
    /// Write every entry to a JSON Lines file, for offline verification.
    Export(ExportArgs),
    /// Print and check the inclusion proof of one entry.
    Proof(ProofArgs),
    /// Save the current signed checkpoint to a file, after checking its signature.
    Checkpoint(CheckpointArgs),
    /// Follow the log, printing entries as they are appended.
    Tail(TailArgs),
}

#[derive(Debug, clap::Args)]
struct ServerArg {
    /// Airlock's base URL.
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
}

#[derive(Debug, clap::Args)]
struct KeyArg {
    /// The log's verifier key (`name+hash+base64`), or a file holding it. Get it once, out of
    /// band, from `GET /api/v1/log/key`; a key fetched at verification time proves nothing.
    #[arg(long)]
    key: String,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    #[command(flatten)]
    server: ServerArg,
    #[command(flatten)]
    key: KeyArg,
    /// Verify an export file offline instead of asking the server.
    #[arg(long, requires = "checkpoint")]
    file: Option<PathBuf>,
    /// A checkpoint saved earlier: online, the log must be consistent with it; with `--file`,
    /// the checkpoint the export is verified against.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    server: ServerArg,
    /// The JSON Lines file to write: one `{"index","leaf","event"}` object per line.
    #[arg(long)]
    out: PathBuf,
    /// Also save the checkpoint the export ends at to this file.
    #[arg(long)]
    checkpoint_out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct ProofArgs {
    #[command(flatten)]
    server: ServerArg,
    #[command(flatten)]
    key: KeyArg,
    /// The entry to prove.
    #[arg(long)]
    index: u64,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct CheckpointArgs {
    #[command(flatten)]
    server: ServerArg,
    #[command(flatten)]
    key: KeyArg,
    /// Where to save the checkpoint note.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct TailArgs {
    #[command(flatten)]
    server: ServerArg,
    /// The first entry to print; by default the current end of the log.
    #[arg(long)]
    from: Option<u64>,
    /// Seconds between polls.
    #[arg(long, default_value_t = 1)]
    interval: u64,
    /// Stop after printing this many entries.
    #[arg(long)]
    limit: Option<u64>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match args.command {
            Command::Verify(a) => verify_cmd(a).await,
            Command::Export(a) => export(a).await,
            Command::Proof(a) => proof(a).await,
            Command::Checkpoint(a) => save_checkpoint(a).await,
            Command::Tail(a) => tail(a).await,
        }
    })
}

/// Reads `--key`: the vkey itself, or a file holding it.
fn load_key(key: &KeyArg) -> anyhow::Result<Verifier> {
    let text = if Path::new(&key.key).is_file() {
        std::fs::read_to_string(&key.key).with_context(|| format!("cannot read key file `{}`", key.key))?
    } else {
        key.key.clone()
    };
    Verifier::parse(text.trim()).map_err(|e| {
        anyhow::anyhow!(
            "`--key` is not a verifier key: {e}; pass the text of `GET /api/v1/log/key` or a file holding it"
        )
    })
}

fn read_checkpoint(path: &Path, key: &Verifier) -> anyhow::Result<Result<Checkpoint, verify::Failed>> {
    let note = std::fs::read_to_string(path).with_context(|| format!("cannot read checkpoint `{}`", path.display()))?;
    Ok(verify::open_checkpoint(&note, key, &format!("checkpoint `{}`", path.display())))
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn report(outcome: &Outcome, output: Output) -> anyhow::Result<ExitCode> {
    match (outcome, output) {
        (Ok(v), Output::Json) => print_json(&serde_json::json!({"verified": true, "result": v}))?,
        (Err(f), Output::Json) => print_json(&serde_json::json!({"verified": false, "failure": f}))?,
        (Ok(v), Output::Text) => {
            println!("verified: {} entries of log `{}` reproduce root {}", v.entries_checked, v.origin, v.root);
            if let Some(size) = v.consistent_with {
                println!("consistent with the saved checkpoint of size {size}");
            }
        }
        (Err(f), Output::Text) => {
            eprintln!("verification FAILED: {}", f.reason);
            if let Some(i) = f.first_bad_index {
                eprintln!("first bad index: {i}");
            }
        }
    }
    Ok(if outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(VERIFY_FAILED) })
}

async fn verify_cmd(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key = load_key(&args.key)?;
    let saved = match &args.checkpoint {
        Some(path) => match read_checkpoint(path, &key)? {
            Ok(c) => Some(c),
            Err(f) => return report(&Err(f), args.output),
        },
        None => None,
    };
    if let Some(file) = &args.file {
        // Offline: the export is checked against the given checkpoint alone.
        let Some(checkpoint) = saved else { bail!("`--file` needs `--checkpoint`") };
        let entries = read_export(file)?;
        let outcome = verify::verify(&entries, &checkpoint, None, None).await?;
        return report(&outcome, args.output);
    }
    let outcome = verify_online(&args.server.server, &key, saved.as_ref(), args.output == Output::Text).await?;
    report(&outcome, args.output)
}

/// Fetches every entry up to the server's latest checkpoint and verifies it, and consistency
/// with `saved` if given.
pub async fn verify_online(
    server: &str,
    key: &Verifier,
    saved: Option<&Checkpoint>,
    show_progress: bool,
) -> anyhow::Result<Outcome> {
    let server = LogClient::new(server)?;
    let note = server.checkpoint().await?;
    let checkpoint = match verify::open_checkpoint(&note, key, "the server's checkpoint") {
        Ok(c) => c,
        Err(f) => return Ok(Err(f)),
    };
    let show = show_progress && checkpoint.size > 10_000;
    let entries = server
        .entries(0, checkpoint.size, |n| {
            if show && n % 100_000 < 1000 {
                eprintln!("fetched {n} of {} entries", checkpoint.size);
            }
        })
        .await?;
    verify::verify(&entries, &checkpoint, saved, Some(&server)).await
}

#[derive(Debug, Serialize, serde::Deserialize)]
struct ExportLine {
    index: u64,
    leaf: String,
    event: serde_json::Value,
}

fn read_export(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read export `{}`", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let parsed: ExportLine = serde_json::from_str(line)
                .with_context(|| format!("`{}` line {} is not an export entry", path.display(), n + 1))?;
            let data =
                STANDARD.decode(&parsed.leaf).with_context(|| format!("entry {} leaf is not base64", parsed.index))?;
            Ok(Entry { index: parsed.index, data, event: parsed.event })
        })
        .collect()
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let server = LogClient::new(&args.server.server)?;
    let note = server.checkpoint().await?;
    // The export ends where the latest checkpoint does; its signature is checked at verification.
    let parsed = airlock_tlog::Note::parse(note.as_bytes())
        .map_err(|e| anyhow::anyhow!("the server's checkpoint is not a signed note: {e}"))?;
    let size =
        Checkpoint::parse(&parsed.text).map_err(|e| anyhow::anyhow!("the server's checkpoint is malformed: {e}"))?.size;
    let entries = server.entries(0, size, |_| {}).await?;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&args.out).with_context(|| format!("cannot create `{}`", args.out.display()))?,
    );
    for e in &entries {
        let line = ExportLine { index: e.index, leaf: STANDARD.encode(&e.data), event: e.event.clone() };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if let Some(path) = &args.checkpoint_out {
        std::fs::write(path, &note).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    match args.output {
        Output::Json => {
            print_json(&serde_json::json!({"entries": entries.len(), "out": args.out, "checkpoint_size": size}))?
        }
        Output::Text => println!("exported {} entries to {}", entries.len(), args.out.display()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn proof(args: ProofArgs) -> anyhow::Result<ExitCode> {
    let key = load_key(&args.key)?;
    let server = LogClient::new(&args.server.server)?;
    let checkpoint = match verify::open_checkpoint(&server.checkpoint().await?, &key, "the server's checkpoint") {
        Ok(c) => c,
        Err(f) => return report(&Err(f), args.output),
    };
    if args.index >= checkpoint.size {
        bail!(
            "entry {} is not covered by the latest checkpoint (size {}); wait for the next one",
            args.index,
            checkpoint.size
        );
    }
    let entry = server.entries(args.index, args.index.saturating_add(1), |_| {}).await?;
    let Some(entry) = entry.into_iter().next() else { bail!("the server has no entry {}", args.index) };
    let hashes = server.inclusion(args.index, checkpoint.size).await?;
    let leaf = leaf_hash(&entry.data);
    let verified = airlock_tlog::verify_inclusion(&leaf, args.index, checkpoint.size, &hashes, &checkpoint.root);
    let result = serde_json::json!({
        "index": args.index,
        "size": checkpoint.size,
        "root": checkpoint.root.to_base64(),
        "leaf_hash": leaf.to_base64(),
        "proof": hashes.iter().map(|h| h.to_base64()).collect::<Vec<_>>(),
        "verified": verified.is_ok(),
        "event": entry.event,
    });
    match args.output {
        Output::Json => print_json(&result)?,
        Output::Text => {
            println!("entry {} of {} (root {})", args.index, checkpoint.size, checkpoint.root.to_base64());
            println!("leaf hash {}", leaf.to_base64());
            for (i, h) in hashes.iter().enumerate() {
                println!("  proof[{i}] {}", h.to_base64());
            }
            match &verified {
                Ok(()) => println!("inclusion proof verifies"),
                Err(e) => eprintln!("inclusion proof FAILED: {e}"),
            }
        }
    }
    Ok(if verified.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(VERIFY_FAILED) })
}

async fn save_checkpoint(args: CheckpointArgs) -> anyhow::Result<ExitCode> {
    let key = load_key(&args.key)?;
    let server = LogClient::new(&args.server.server)?;
    let note = server.checkpoint().await?;
    let checkpoint = match verify::open_checkpoint(&note, &key, "the server's checkpoint") {
        Ok(c) => c,
        Err(f) => return report(&Err(f), args.output),
    };
    std::fs::write(&args.out, &note).with_context(|| format!("cannot write `{}`", args.out.display()))?;
    match args.output {
        Output::Json => print_json(
            &serde_json::json!({"size": checkpoint.size, "root": checkpoint.root.to_base64(), "out": args.out}),
        )?,
        Output::Text => println!(
            "saved checkpoint of size {} (root {}) to {}",
            checkpoint.size,
            checkpoint.root.to_base64(),
            args.out.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    let server = LogClient::new(&args.server.server)?;
    let mut next = match args.from {
        Some(n) => n,
        None => server.size().await?,
    };
    let mut printed = 0u64;
    loop {
        let size = server.size().await?;
        if size > next {
            for e in server.entries(next, size, |_| {}).await? {
                match args.output {
                    Output::Json => println!("{}", serde_json::json!({"index": e.index, "event": e.event})),
                    Output::Text => {
                        let event = EventLine::of(&e.event);
                        println!(
                            "{:>8}  {}  {:<26} {}",
                            e.index,
                            event.time.as_deref().unwrap_or("?"),
                            event.kind.as_deref().unwrap_or("?"),
                            event.subject.as_ref().map(EventSubject::text).unwrap_or_default()
                        );
                    }
                }
                next = e.index.saturating_add(1);
                printed = printed.saturating_add(1);
                if args.limit.is_some_and(|l| printed >= l) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(args.interval.max(1))).await;
    }
}

/// What `tail` shows of a logged event (`docs/audit-events.md`); members it lacks are left empty.
#[derive(Default, serde::Deserialize)]
struct EventLine {
    #[serde(default)]
    time: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    subject: Option<EventSubject>,
}

/// The artifact an event is about.
#[derive(serde::Deserialize)]
struct EventSubject {
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

impl EventLine {
    fn of(event: &serde_json::Value) -> EventLine {
        <EventLine as serde::Deserialize>::deserialize(event).unwrap_or_default()
    }
}

impl EventSubject {
    /// `repo:tag`, else `repo@digest`, else the repository, else nothing.
    fn text(&self) -> String {
        match (&self.repository, &self.tag, &self.digest) {
            (Some(r), Some(t), _) => format!("{r}:{t}"),
            (Some(r), None, Some(d)) => format!("{r}@{d}"),
            (Some(r), None, None) => r.clone(),
            _ => String::new(),
        }
    }
}
