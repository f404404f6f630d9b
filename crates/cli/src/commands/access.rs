//! `airlock access request|approve|revoke|list`: just-in-time elevation. A principal asks for a
//! role for a while; another principal holding `access.approve`, with a fresh second factor
//! (`airlock login --otp`), approves; the role ends on time or when revoked.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};

use super::runtime;
use super::session::Api;
use super::user::Common;
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ask for a role for a while; prints the request's id for the approver.
    Request(RequestArgs),
    /// Approve another principal's request (needs `access.approve` and a fresh second factor).
    Approve(IdArgs),
    /// End a request or a grant now; the holder's tokens stop working.
    Revoke(IdArgs),
    /// Your requests, or everyone's for an access admin.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct RequestArgs {
    /// The role, as `airlock role list` shows it.
    #[arg(long)]
    role: String,
    /// How long: seconds, or like `30m`, `2h` (at most `access.jit_max_duration_secs`).
    #[arg(long)]
    duration: String,
    /// Why: the approver and the audit log see it.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct IdArgs {
    /// The request's id (`g-...`), from `airlock access request` or `airlock access list`.
    id: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    common: Common,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let (common, value) = match args.command {
            Command::Request(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let body = json!({"role": a.role, "duration": a.duration, "reason": a.reason});
                let value = api.post("/api/v1/access/requests", Some(&body), "cannot request access").await?;
                (a.common, value)
            }
            Command::Approve(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/access/requests/{}/approve", encode(&a.id));
                let value = api.post(&path, None, "cannot approve the request").await?;
                (a.common, value)
            }
            Command::Revoke(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/access/requests/{}/revoke", encode(&a.id));
                let value = api.post(&path, None, "cannot revoke the request").await?;
                (a.common, value)
            }
            Command::List(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let value = api.get("/api/v1/access/requests", "cannot list access requests").await?;
                (a.common, value)
            }
        };
        match common.output {
            Output::Json => println!("{}", serde_json::to_string(&value)?),
            Output::Text => match value.as_array() {
                Some(grants) if grants.is_empty() => println!("no access requests"),
                Some(grants) => grants.iter().for_each(print_grant),
                None => print_grant(&value),
            },
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Ids are `g-` and hex; anything else is sent escaped and refused by the server.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn print_grant(grant: &Value) {
    let text = |k: &str| grant[k].as_str().unwrap_or("-").to_owned();
    println!(
        "{}  {} {}  role {}  {}  for {} s  requested {}  decided by {}  ends {}  ({})",
        text("id"),
        text("kind"),
        text("principal"),
        text("role"),
        text("status"),
        grant["duration_secs"].as_u64().unwrap_or(0),
        text("requested_at"),
        text("decided_by"),
        text("expires_at"),
        text("reason")
    );
    if grant["status"] == "pending" && grant["approved_by"].is_string() {
        println!("  approved by `{}`; waits for a second access admin", text("approved_by"));
    }
    if let Some(key) = grant["api_key"].as_str() {
        eprintln!("warning: the api key is shown only this once; hand it to `{}`'s owner securely", text("principal"));
        println!("  api key: {key}");
    }
    if let Some(token) = grant["enrollment_token"].as_str() {
        eprintln!("warning: the enrollment token is shown only this once; hand it to `{}` securely", text("principal"));
        println!("  enrollment token: {token}");
    }
}
