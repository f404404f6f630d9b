//! `airlock promote`, `approve`, `reject` and `promotion list|show`: moving one digest to the
//! next stage through its gates. A promotion denied by a gate exits 3 and lists every finding
//! with its remediation; one waiting for approvals prints what is missing.

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};

use super::runtime;
use super::session::Api;
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
        let body = json!({
            "repository": repository,
            "reference": reference,
            "to": args.to,
            "tag": args.tag,
            "reason": args.reason,
            "break_glass": args.break_glass,
        });
        let value = api.post("/api/v1/promotions", Some(&body), "cannot request the promotion").await?;
        finish(&value, args.common.output)
    })
}

pub fn approve(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let api = Api::connect(args.common.server.as_deref()).await?;
        let path = format!("/api/v1/promotions/{}/approve", encode(&args.id));
        let value = api.post(&path, Some(&json!({"comment": args.comment})), "cannot approve the promotion").await?;
        finish(&value, args.common.output)
    })
}

pub fn reject(args: RejectArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let api = Api::connect(args.common.server.as_deref()).await?;
        let path = format!("/api/v1/promotions/{}/reject", encode(&args.id));
        let value = api.post(&path, Some(&json!({"reason": args.reason})), "cannot reject the promotion").await?;
        finish(&value, args.common.output)
    })
}

pub fn promotion(args: PromotionArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match args.command {
            PromotionCommand::Show(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let value =
                    api.get(&format!("/api/v1/promotions/{}", encode(&a.id)), "cannot show the promotion").await?;
                finish(&value, a.common.output)
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
                let value = api.get(&path, "cannot list promotions").await?;
                match a.common.output {
                    Output::Json => println!("{}", serde_json::to_string(&value)?),
                    Output::Text => match value.as_array() {
                        Some(list) if list.is_empty() => println!("no promotions"),
                        Some(list) => list.iter().for_each(|p| {
                            println!(
                                "{}  {:<9} {} -> {}  {}  by {}",
                                text(p, "id"),
                                text(p, "status"),
                                text(p, "source"),
                                text(p, "target"),
                                text(p, "digest"),
                                text(p, "requester")
                            );
                        }),
                        None => println!("no promotions"),
                    },
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}

/// Prints a promotion and picks the exit code: 3 when denied or rejected.
fn finish(value: &Value, output: Output) -> anyhow::Result<ExitCode> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(value)?),
        Output::Text => print_promotion(value),
    }
    Ok(match value["status"].as_str() {
        Some("denied" | "rejected" | "expired" | "cancelled") => ExitCode::from(EXIT_DENIED),
        _ => ExitCode::SUCCESS,
    })
}

fn print_promotion(p: &Value) {
    let status = text(p, "status");
    println!("promotion {}: {status}", text(p, "id"));
    println!("  {} -> {}  {}", text(p, "source"), text(p, "target"), text(p, "digest"));
    if let Some(tag) = p["tag"].as_str() {
        println!("  tag {tag}");
    }
    let report = &p["report"];
    if let Some(findings) = report["findings"].as_array().filter(|f| !f.is_empty()) {
        println!("  denied by {} finding(s):", findings.len());
        for f in findings {
            println!("  ✗ [{}] {}: {}", text(f, "gate"), text(f, "rule"), text(f, "message"));
            println!("      fix: {}", text(f, "remediation"));
            if let Some(doc) = f["doc"].as_str() {
                println!("      doc: {doc}");
            }
        }
    }
    if let Some(warnings) = report["warnings"].as_array().filter(|w| !w.is_empty()) {
        for w in warnings {
            println!("  ! {}: {}", text(w, "rule"), text(w, "message"));
        }
    }
    let approvals = &report["approvals"];
    if status == "pending" && approvals.is_object() {
        println!(
            "  waiting for {} more approval(s) from `{}`{}; counted: {}",
            approvals["missing"].as_u64().unwrap_or(0),
            text(approvals, "role"),
            if approvals["mfa"].as_bool() == Some(true) { " with a fresh second factor" } else { "" },
            approvals["counted"]
                .as_array()
                .map(|c| c.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "none".to_owned())
        );
        println!("  approvers run: airlock approve {}", text(p, "id"));
    }
    if let Some(reason) = p["closed_reason"].as_str() {
        println!("  closed: {reason}");
    }
    if status == "promoted" {
        println!("  release record {} at log index {}", text(p, "release_record"), p["log_index"]);
        println!("  verify: airlock verify {}@{} ", text(p, "target"), text(p, "digest"));
    }
}
