//! `airlock freeze`, `unfreeze`, `waiver`, `rollback` and `review`: moving a stage outside the
//! normal promotion path, each under its own rule (two people to unfreeze, another person to
//! approve a waiver, only back to a digest promoted before, a review after break-glass).

use std::process::ExitCode;

use airlock_api::v1::{
    Freeze, FreezeRequest, Review, ReviewClose, Rollback, RollbackRequest, Unfreeze, Waiver, WaiverRequest,
};
use clap::Subcommand;
use serde::Serialize;
use serde_json::Value;

use super::runtime;
use super::session::{Api, Reply};
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

/// Prints one record the server answered.
fn print_one<T: Serialize>(reply: &Reply<T>, output: Output) -> anyhow::Result<ExitCode> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(&reply.raw)?),
        Output::Text => println!("{}", line(&reply.body)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the records of a list the server answered, one a line.
fn print_list<T: Serialize>(reply: &Reply<Vec<T>>, output: Output) -> anyhow::Result<ExitCode> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(&reply.raw)?),
        Output::Text if reply.body.is_empty() => println!("none"),
        Output::Text => reply.body.iter().for_each(|r| println!("{}", line(r))),
    }
    Ok(ExitCode::SUCCESS)
}

/// One record as `key: value` pairs on a line, in the order of its fields, leaving out those
/// not set.
fn line<T: Serialize>(record: &T) -> String {
    match serde_json::to_value(record) {
        Ok(Value::Object(fields)) => fields
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect::<Vec<_>>()
            .join("  "),
        _ => String::new(),
    }
}

pub fn freeze(args: FreezeArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let api = Api::connect(args.common.server.as_deref()).await?;
        let path = format!("/api/v1/stages/{}/freeze", encode(&args.stage));
        let body = FreezeRequest { reason: args.reason };
        let reply = api.post::<_, Freeze>(&path, &body, "cannot freeze the stage").await?;
        print_one(&reply, args.common.output)
    })
}

pub fn unfreeze(args: UnfreezeArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let api = Api::connect(args.common.server.as_deref()).await?;
        let path = format!("/api/v1/stages/{}/unfreeze", encode(&args.stage));
        let reply = api.post_empty::<Unfreeze>(&path, "cannot lift the freeze").await?;
        if args.common.output == Output::Text && reply.body.frozen {
            println!(
                "asked to lift the freeze on `{}`; a second, different person must run `airlock unfreeze {}`",
                args.stage, args.stage
            );
            return Ok(ExitCode::SUCCESS);
        }
        print_one(&reply, args.common.output)
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
        let body = RollbackRequest { repository, tag: args.tag, to: args.to, reason: args.reason };
        let reply = api.post::<_, Rollback>("/api/v1/rollbacks", &body, "cannot roll back").await?;
        print_one(&reply, args.common.output)
    })
}

pub fn waiver(args: WaiverArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match args.command {
            WaiverCommand::Request(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let body = WaiverRequest {
                    rule: a.rule,
                    vulnerability: a.vuln,
                    component: a.component,
                    repository: a.repo,
                    expires: a.expires,
                    justification: a.justification,
                };
                let reply = api.post::<_, Waiver>("/api/v1/waivers", &body, "cannot request the waiver").await?;
                print_one(&reply, a.common.output)
            }
            WaiverCommand::Approve(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/waivers/{}/approve", encode(&a.id));
                print_one(&api.post_empty::<Waiver>(&path, "cannot approve the waiver").await?, a.common.output)
            }
            WaiverCommand::Revoke(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/waivers/{}/revoke", encode(&a.id));
                print_one(&api.post_empty::<Waiver>(&path, "cannot revoke the waiver").await?, a.common.output)
            }
            WaiverCommand::List(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                print_list(&api.get::<Vec<Waiver>>("/api/v1/waivers", "cannot list waivers").await?, a.common.output)
            }
        }
    })
}

pub fn review(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match args.command {
            ReviewCommand::List(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                print_list(&api.get::<Vec<Review>>("/api/v1/reviews", "cannot list reviews").await?, a.common.output)
            }
            ReviewCommand::Close(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/reviews/{}/close", encode(&a.id));
                let body = ReviewClose { note: a.note };
                print_one(&api.post::<_, Review>(&path, &body, "cannot close the review").await?, a.common.output)
            }
        }
    })
}
