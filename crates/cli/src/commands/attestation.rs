//! `airlock attestation verify`: decide an attestation fully offline, from the envelope file and
//! a trust root document, exactly as the registry would.

use std::path::PathBuf;
use std::process::ExitCode;

use airlock_dsse::{Envelope, EnvelopeLimits, StatementLimits};
use airlock_model::{Digest, RepoName};
use airlock_trust::{RootDocument, RootLimits, TrustedRoot};
use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;

use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a DSSE envelope against a trust root, offline. Exit 3 when it is not trusted.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The DSSE envelope (JSON).
    file: PathBuf,
    /// The trust root document to decide with (`GET /api/v1/trust/root`, or `root.json`).
    #[arg(long)]
    trust_root: PathBuf,
    /// The artifact the attestation must be about.
    #[arg(long)]
    subject: String,
    /// The repository the artifact is in (signer scopes are per repository).
    #[arg(long)]
    repository: String,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let Command::Verify(args) = args.command;
    let subject = Digest::parse(&args.subject).map_err(|e| anyhow::anyhow!("`--subject`: {e}"))?;
    let repo = RepoName::parse(&args.repository).map_err(|e| anyhow::anyhow!("`--repository`: {e}"))?;
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read `{}`", args.file.display()))?;
    let envelope = Envelope::parse(&bytes, &EnvelopeLimits::default())
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", args.file.display()))?;
    let statement = envelope
        .in_toto_statement(&StatementLimits::default())
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", args.file.display()))?;
    let named: Vec<&str> = statement.sha256_subjects().collect();
    let mut reasons = Vec::new();
    if named.is_empty() || named.iter().any(|h| *h != subject.hex()) {
        reasons.push(format!("the statement is about {} but `--subject` is {subject}", named.join(", ")));
    }
    let root_bytes =
        std::fs::read(&args.trust_root).with_context(|| format!("cannot read `{}`", args.trust_root.display()))?;
    let document = RootDocument::parse(&root_bytes, &RootLimits::default())
        .map_err(|e| anyhow::anyhow!("`{}`: {e}", args.trust_root.display()))?;
    let root = match TrustedRoot::bootstrap(document, super::trust::now()) {
        Ok(root) => root,
        Err(e) => bail!("trust root `{}` is not usable: {e}", args.trust_root.display()),
    };
    let evaluation = root.evaluate(&envelope, &statement.predicate_type, &repo, super::trust::now());
    reasons.extend(evaluation.reasons.iter().map(ToString::to_string));
    let trusted = evaluation.trusted && reasons.is_empty();
    match args.output {
        Output::Json => println!(
            "{}",
            json!({"trusted": trusted, "predicate_type": statement.predicate_type, "signers": evaluation.signers, "reasons": reasons, "root_version": root.version()})
        ),
        Output::Text => {
            if trusted {
                println!("trusted: {} signed by {}", statement.predicate_type, evaluation.signers.join(", "));
            } else {
                println!("NOT trusted: {}", statement.predicate_type);
                for r in &reasons {
                    println!("  {r}");
                }
            }
        }
    }
    Ok(if trusted { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
