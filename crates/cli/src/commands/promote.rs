//! `airlock promote`, `approve`, `reject` and `promotion list|show`: moving one digest to the
//! next stage through its gates. A promotion denied by a gate exits 3 and lists every finding
//! with its remediation; one waiting for approvals prints what is missing.

use std::process::ExitCode;

use airlock_api::v1::{GateReport, Promotion, PromotionDecision, PromotionRequest};
use anyhow::bail;
use clap::Subcommand;
use serde::Deserialize as _;

use super::runtime;
use super::session::{Api, Reply};
use super::user::Common;
use crate::Output;

/// The exit code of a promotion denied by a gate.
pub const EXIT_DENIED: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The artifact: `dev/app@sha256:<hex>` or `dev/app:1.4.2` (the tag is resolved once, here).
    reference: String,
    /// The stage to promote into, the next after the artifact's.
    #[arg(long)]
    to: String,
    /// The tag to set in the target repository (write-once there).
    #[arg(long)]
    tag: Option<String>,
    /// Why: approvers and the audit log see it.
    #[arg(long, default_value = "")]
    reason: String,
    /// Emergency: pass failing gates (never a taken tag). Needs the `break-glass` role and a
    /// `--reason`; one approval by a second person commits it; the release record is marked, an
    /// alert is logged and a review stays open until someone closes it.
    #[arg(long)]
    break_glass: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The promotion's id (`prm-...`), from `airlock promote` or `airlock promotion list`.
    id: String,
    /// A note for the record.
    #[arg(long, default_value = "")]
    comment: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct RejectArgs {
    /// The promotion's id (`prm-...`).
    id: String,
    /// Why it must not go ahead; the requester and the audit log see it.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
pub struct PromotionArgs {
    #[command(subcommand)]
    command: PromotionCommand,
}

#[derive(Debug, Subcommand)]
enum PromotionCommand {
    /// Promotions, newest first.
    List(ListArgs),
    /// One promotion: its gates, findings and approvals.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only promotions in this state: pending, promoted, denied, rejected, expired, cancelled.
    #[arg(long)]
    status: Option<String>,
    /// Only promotions into this repository, `prod/app`.
    #[arg(long)]
    target: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The promotion's id (`prm-...`).
    id: String,
    #[command(flatten)]
    common: Common,
}

/// Splits `dev/app@sha256:...` or `dev/app:tag` into repository and reference.
pub fn split_reference(text: &str) -> anyhow::Result<(String, String)> {
    if let Some((repo, digest)) = text.split_once('@') {
        return Ok((repo.to_owned(), digest.to_owned()));
    }
    let slash = text.rfind('/').unwrap_or(0);
    match text.get(slash..).and_then(|tail| tail.rfind(':')).map(|i| i.saturating_add(slash)) {
        Some(colon) => Ok((
            text.get(..colon).unwrap_or_default().to_owned(),
            text.get(colon.saturating_add(1)..).unwrap_or_default().to_owned(),
        )),
        None => bail!("`{text}` names no tag or digest; write `dev/app@sha256:<hex>` or `dev/app:1.4.2`"),
    }
}

/// Ids are `prm-` and hex; anything else is sent escaped and refused by the server.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

pub fn promote(args: PromoteArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let (repository, reference) = split_reference(&args.reference)?;
        let api = Api::connect(args.common.server.as_deref()).await?;
        let body = PromotionRequest {
            repository,
            reference,
            to: args.to,
            tag: args.tag,
            reason: args.reason,
            break_glass: args.break_glass,
        };
        let reply = api.post("/api/v1/promotions", &body, "cannot request the promotion").await?;
        finish(&reply, args.common.output)
    })
}

pub fn approve(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let api = Api::connect(args.common.server.as_deref()).await?;
        let path = format!("/api/v1/promotions/{}/approve", encode(&args.id));
        let body = PromotionDecision { comment: args.comment, ..PromotionDecision::default() };
        let reply = api.post(&path, &body, "cannot approve the promotion").await?;
        finish(&reply, args.common.output)
    })
}

pub fn reject(args: RejectArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let api = Api::connect(args.common.server.as_deref()).await?;
        let path = format!("/api/v1/promotions/{}/reject", encode(&args.id));
        let body = PromotionDecision { reason: args.reason, ..PromotionDecision::default() };
        let reply = api.post(&path, &body, "cannot reject the promotion").await?;
        finish(&reply, args.common.output)
    })
}

pub fn promotion(args: PromotionArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match args.command {
            PromotionCommand::Show(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let reply =
                    api.get(&format!("/api/v1/promotions/{}", encode(&a.id)), "cannot show the promotion").await?;
                finish(&reply, a.common.output)
            }
            PromotionCommand::List(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let mut query = Vec::new();
                if let Some(s) = &a.status {
                    query.push(format!("status={}", encode(s)));
                }
                if let Some(t) = &a.target {
                    query.push(format!("target={}", t.replace('/', "%2F")));
                }
                let path = if query.is_empty() {
                    "/api/v1/promotions".to_owned()
                } else {
                    format!("/api/v1/promotions?{}", query.join("&"))
                };
                let reply = api.get::<Vec<Promotion>>(&path, "cannot list promotions").await?;
                match a.common.output {
                    Output::Json => println!("{}", serde_json::to_string(&reply.raw)?),
                    Output::Text if reply.body.is_empty() => println!("no promotions"),
                    Output::Text => reply.body.iter().for_each(|p| {
                        println!(
                            "{}  {:<9} {} -> {}  {}  by {}",
                            p.id, p.status, p.source, p.target, p.digest, p.requester
                        );
                    }),
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// Prints a promotion and picks the exit code: 3 when denied or rejected.
fn finish(reply: &Reply<Promotion>, output: Output) -> anyhow::Result<ExitCode> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(&reply.raw)?),
        Output::Text => print_promotion(&reply.body),
    }
    Ok(match reply.body.status.as_str() {
        "denied" | "rejected" | "expired" | "cancelled" => ExitCode::from(EXIT_DENIED),
        _ => ExitCode::SUCCESS,
    })
}

/// The gate report of a promotion; empty when it has none (in a list) or it cannot be read.
pub fn gate_report(p: &Promotion) -> GateReport {
    GateReport::deserialize(&p.report).unwrap_or_default()
}

fn print_promotion(p: &Promotion) {
    let status = p.status.as_str();
    println!("promotion {}: {status}", p.id);
    println!("  {} -> {}  {}", p.source, p.target, p.digest);
    if let Some(tag) = &p.tag {
        println!("  tag {tag}");
    }
    let report = gate_report(p);
    if !report.findings.is_empty() {
        println!("  denied by {} finding(s):", report.findings.len());
        for f in &report.findings {
            println!("  ✗ [{}] {}: {}", f.gate, f.rule, f.message);
            println!("      fix: {}", f.remediation);
            if let Some(doc) = &f.doc {
                println!("      doc: {doc}");
            }
        }
    }
    for w in &report.warnings {
        println!("  ! {}: {}", w.rule, w.message);
    }
    if let (true, Some(approvals)) = (status == "pending", &report.approvals) {
        println!(
            "  waiting for {} more approval(s) from `{}`{}; counted: {}",
            approvals.missing,
            approvals.role,
            if approvals.mfa { " with a fresh second factor" } else { "" },
            if approvals.counted.is_empty() { "none".to_owned() } else { approvals.counted.join(", ") }
        );
        println!("  approvers run: airlock approve {}", p.id);
    }
    if let Some(reason) = &p.closed_reason {
        println!("  closed: {reason}");
    }
    if status == "promoted" {
        let log_index = p.log_index.map_or_else(|| "null".to_owned(), |i| i.to_string());
        println!("  release record {} at log index {log_index}", p.release_record.as_deref().unwrap_or("-"));
        println!("  verify: airlock verify {}@{} ", p.target, p.digest);
    }
}
