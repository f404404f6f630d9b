//! `airlock freeze`, `unfreeze`, `waiver`, `rollback` and `review`: moving a stage outside the
//! normal promotion path, each under its own rule (two people to unfreeze, another person to
//! approve a waiver, only back to a digest promoted before, a review after break-glass).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};

use super::runtime;
use super::session::Api;
use super::user::Common;
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct FreezeArgs {
    /// The stage, `prod`.
    stage: String,
    /// Why: everyone whose promotion is denied sees it.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct UnfreezeArgs {
    /// The stage, `prod`. Two different people must run this.
    stage: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The repository path, `payments/api` (or the full `prod/payments/api`).
    repository: String,
    /// The gated stage whose tag moves.
    #[arg(long)]
    stage: String,
    /// The tag to move.
    #[arg(long)]
    tag: String,
    /// `previous` (the digest promoted before the current one), or a digest promoted there before.
    #[arg(long, default_value = "previous")]
    to: String,
    /// Why: the audit log keeps it.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct WaiverArgs {
    #[command(subcommand)]
    command: WaiverCommand,
}

#[derive(Debug, Subcommand)]
enum WaiverCommand {
    /// Ask for a waiver of one rule; it waives nothing until another person approves it.
    Request(WaiverRequestArgs),
    /// Approve someone else's waiver (needs `waiver.approve` and a fresh second factor).
    Approve(IdArgs),
    /// End a waiver now.
    Revoke(IdArgs),
    /// Every waiver, newest first.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct WaiverRequestArgs {
    /// The policy rule, `no-critical-vulnerabilities`.
    #[arg(long)]
    rule: String,
    /// Only this vulnerability, `CVE-2026-1234`.
    #[arg(long)]
    vuln: Option<String>,
    /// Only this component, a package URL.
    #[arg(long)]
    component: Option<String>,
    /// The repositories: a pattern with `*` in at most one segment, `*/payments/api`.
    #[arg(long)]
    repo: String,
    /// When it ends, RFC 3339 (`2026-12-31T00:00:00Z`); at most 90 days ahead.
    #[arg(long)]
    expires: String,
    /// Why it is safe for that long.
    #[arg(long)]
    justification: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct IdArgs {
    /// The id, from the list.
    id: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    command: ReviewCommand,
}

#[derive(Debug, Subcommand)]
enum ReviewCommand {
    /// Follow-up reviews of break-glass promotions (open ones first to act on).
    List(ListArgs),
    /// Close a review with what was found (not by the one who broke the glass).
    Close(CloseArgs),
}

#[derive(Debug, clap::Args)]
struct CloseArgs {
    id: String,
    #[arg(long)]
    note: String,
    #[command(flatten)]
    common: Common,
}

/// Ids are letters, digits and `-`; anything else is sent escaped and refused by the server.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn print(value: &Value, output: Output) -> anyhow::Result<ExitCode> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(value)?),
        Output::Text => match value.as_array() {
            Some(list) if list.is_empty() => println!("none"),
            Some(list) => list.iter().for_each(|v| println!("{}", line(v))),
            None => println!("{}", line(value)),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// One object as `key: value` pairs on a line.
fn line(v: &Value) -> String {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect::<Vec<_>>()
                .join("  ")
        })
        .unwrap_or_default()
}

pub fn freeze(args: FreezeArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let api = Api::connect(args.common.server.as_deref()).await?;
        let path = format!("/api/v1/stages/{}/freeze", encode(&args.stage));
        let value = api.post(&path, Some(&json!({"reason": args.reason})), "cannot freeze the stage").await?;
        print(&value, args.common.output)
    })
}

pub fn unfreeze(args: UnfreezeArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let api = Api::connect(args.common.server.as_deref()).await?;
        let path = format!("/api/v1/stages/{}/unfreeze", encode(&args.stage));
        let value = api.post(&path, None, "cannot lift the freeze").await?;
        if args.common.output == Output::Text && value["frozen"] == true {
            println!(
                "asked to lift the freeze on `{}`; a second, different person must run `airlock unfreeze {}`",
                args.stage, args.stage
            );
            return Ok(ExitCode::SUCCESS);
        }
        print(&value, args.common.output)
    })
}

pub fn rollback(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let prefix = format!("{}/", args.stage);
        let repository = if args.repository.starts_with(&prefix) {
            args.repository.clone()
        } else {
            format!("{prefix}{}", args.repository)
        };
        let api = Api::connect(args.common.server.as_deref()).await?;
        let body = json!({"repository": repository, "tag": args.tag, "to": args.to, "reason": args.reason});
        let value = api.post("/api/v1/rollbacks", Some(&body), "cannot roll back").await?;
        print(&value, args.common.output)
    })
}

pub fn waiver(args: WaiverArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match args.command {
            WaiverCommand::Request(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let body = json!({
                    "rule": a.rule, "vulnerability": a.vuln, "component": a.component,
                    "repository": a.repo, "expires": a.expires, "justification": a.justification,
                });
                let value = api.post("/api/v1/waivers", Some(&body), "cannot request the waiver").await?;
                print(&value, a.common.output)
            }
            WaiverCommand::Approve(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/waivers/{}/approve", encode(&a.id));
                print(&api.post(&path, None, "cannot approve the waiver").await?, a.common.output)
            }
            WaiverCommand::Revoke(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/waivers/{}/revoke", encode(&a.id));
                print(&api.post(&path, None, "cannot revoke the waiver").await?, a.common.output)
            }
            WaiverCommand::List(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                print(&api.get("/api/v1/waivers", "cannot list waivers").await?, a.common.output)
            }
        }
    })
}

pub fn review(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match args.command {
            ReviewCommand::List(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                print(&api.get("/api/v1/reviews", "cannot list reviews").await?, a.common.output)
            }
            ReviewCommand::Close(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/reviews/{}/close", encode(&a.id));
                print(
                    &api.post(&path, Some(&json!({"note": a.note})), "cannot close the review").await?,
                    a.common.output,
                )
            }
        }
    })
}
