//! `airlock sa create|rotate-key|list`: manage service accounts (machine identities such as CI
//! jobs) and their API keys, as the logged-in principal (which needs the `access-admin` role).
//! An API key is shown once, when it is created or rotated; the server keeps only its hash.

use std::process::ExitCode;

use airlock_api::v1::{KeyRequest, KeyRotation, NewPrincipal, PrincipalCreated};
use clap::Subcommand;

use super::runtime;
use super::session::{self, Api};
use super::user::{Common, list};
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a service account and print its API key, once.
    Create(CreateArgs),
    /// Replace a service account's API key; the old key and every token issued with it stop
    /// working at once.
    RotateKey(RotateArgs),
    /// List the service accounts.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The service account's name: lowercase letters, digits, `.`, `_` and `-`, like `ci-payments`.
    name: String,
    /// A role to give it (repeatable); `airlock role list` shows the roles.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// Days the API key lives; the server's `access.api_key_max_days` when not given, and at most
    /// that.
    #[arg(long)]
    days: Option<u64>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// The service account's name.
    name: String,
    /// Days the new API key lives; the server's `access.api_key_max_days` when not given, and at
    /// most that.
    #[arg(long)]
    days: Option<u64>,
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
            Command::Create(a) => create(a).await,
            Command::RotateKey(a) => rotate(a).await,
            Command::List(a) => list(&a.common, "service_account").await,
        }
    })
}

/// Warns on stderr, in every output format, that a new API key is shown only once.
fn warn_once(name: &str) {
    eprintln!("warning: the api key of `{name}` is shown only this once and cannot be retrieved again; store it now");
}

/// Prints a new API key and its expiry.
fn print_key(api_key: Option<&str>, expires_at: Option<&str>) {
    println!("api key: {}", api_key.unwrap_or("?"));
    println!("expires at {}", expires_at.unwrap_or("?"));
}

async fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let name = session::principal_name(&args.name)?;
    for role in &args.roles {
        session::role_name(role)?;
    }
    let api = Api::connect(args.common.server.as_deref()).await?;
    let body = NewPrincipal {
        name: name.as_str().to_owned(),
        kind: "service_account".to_owned(),
        roles: args.roles,
        password: None,
        days: args.days,
        email: None,
    };
    let created = api
        .post::<_, PrincipalCreated>("/api/v1/principals", &body, &format!("cannot create service account `{name}`"))
        .await?;
    warn_once(name.as_str());
    match args.common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&created.raw)?),
        Output::Text => {
            let created = created.body;
            println!("created service account `{name}` with roles {}", session::join_or_dash(&created.principal.roles));
            print_key(created.api_key.as_deref(), created.api_key_expires_at.as_deref());
            super::user::print_pending(&created.pending);
            println!("use it as `AIRLOCK_USERNAME={name}` and `AIRLOCK_PASSWORD=<api key>`, or with `docker login`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate(args: RotateArgs) -> anyhow::Result<ExitCode> {
    let name = session::principal_name(&args.name)?;
    let api = Api::connect(args.common.server.as_deref()).await?;
    let path = format!("/api/v1/principals/{name}/api-key");
    let context = format!("cannot rotate the api key of `{name}`");
    let rotated = match args.days {
        Some(days) => api.post::<_, KeyRotation>(&path, &KeyRequest { days: Some(days) }, &context).await?,
        None => api.post_empty::<KeyRotation>(&path, &context).await?,
    };
    if let KeyRotation::Pending(change) = &rotated.body {
        match args.common.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&rotated.raw)?),
            Output::Text => super::user::print_pending([&change.pending]),
        }
        return Ok(ExitCode::SUCCESS);
    }
    warn_once(name.as_str());
    match args.common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rotated.raw)?),
        Output::Text => {
            println!("rotated the api key of `{name}`; the old key and its tokens no longer work");
            match &rotated.body {
                KeyRotation::Rotated(key) => print_key(Some(&key.api_key), Some(&key.api_key_expires_at)),
                KeyRotation::Done(principal) => print_key(None, principal.api_key_expires_at.as_deref()),
                KeyRotation::Pending(_) => print_key(None, None),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
