//! `airlock access request|approve|revoke|list`: just-in-time elevation. A principal asks for a
//! role for a while; another principal holding `access.approve`, with a fresh second factor
//! (`airlock login --otp`), approves; the role ends on time or when revoked.

use std::process::ExitCode;

use airlock_api::v1::{AccessRequest, Grant, GrantApproved};
use clap::Subcommand;
use serde_json::Value;

use super::runtime;
use super::session::{Api, Reply};
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
        match args.command {
            Command::Request(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let body = AccessRequest { role: a.role, duration: Value::from(a.duration), reason: a.reason };
                let reply = api.post("/api/v1/access/requests", &body, "cannot request access").await?;
                print_one(&reply, a.common.output)?;
            }
            Command::Approve(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/access/requests/{}/approve", encode(&a.id));
                print_one(&api.post_empty(&path, "cannot approve the request").await?, a.common.output)?;
            }
            Command::Revoke(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let path = format!("/api/v1/access/requests/{}/revoke", encode(&a.id));
                print_one(&api.post_empty(&path, "cannot revoke the request").await?, a.common.output)?;
            }
            Command::List(a) => {
                let api = Api::connect(a.common.server.as_deref()).await?;
                let reply: Reply<Vec<Grant>> =
                    api.get("/api/v1/access/requests", "cannot list access requests").await?;
                match a.common.output {
                    Output::Json => println!("{}", serde_json::to_string(&reply.raw)?),
                    Output::Text if reply.body.is_empty() => println!("no access requests"),
                    Output::Text => reply.body.iter().for_each(|g| print_grant(g, None)),
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Prints one grant the server answered, with the secret an approval may yield.
fn print_one(reply: &Reply<GrantApproved>, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(&reply.raw)?),
        Output::Text => print_grant(&reply.body.grant, Some(&reply.body)),
    }
    Ok(())
}

/// Ids are `g-` and hex; anything else is sent escaped and refused by the server.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// One grant on a line; then the one-time secret an approval yielded, if any.
fn print_grant(grant: &Grant, approved: Option<&GrantApproved>) {
    let text = |v: Option<&String>| v.map_or("-", String::as_str).to_owned();
    println!(
        "{}  {} {}  role {}  {}  for {} s  requested {}  decided by {}  ends {}  ({})",
        grant.id,
        grant.kind,
        grant.principal,
        grant.role,
        grant.status,
        grant.duration_secs,
        grant.requested_at,
        text(grant.decided_by.as_ref()),
        text(grant.expires_at.as_ref()),
        grant.reason
    );
    if let (true, Some(first)) = (grant.status == "pending", &grant.approved_by) {
        println!("  approved by `{first}`; waits for a second access admin");
    }
    if let Some(key) = approved.and_then(|a| a.api_key.as_ref()) {
        eprintln!("warning: the api key is shown only this once; hand it to `{}`'s owner securely", grant.principal);
        println!("  api key: {key}");
    }
    if let Some(token) = approved.and_then(|a| a.enrollment_token.as_ref()) {
        eprintln!("warning: the enrollment token is shown only this once; hand it to `{}` securely", grant.principal);
        println!("  enrollment token: {token}");
    }
}
