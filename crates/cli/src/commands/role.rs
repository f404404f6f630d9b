//! `airlock role list|grant|revoke`: the roles in force, and granting or revoking them through
//! the identity API. The server refuses a grant that breaks separation of duties (two
//! conflicting roles held together) and any change to one's own roles.

use std::process::ExitCode;

use airlock_api::v1::{
    PermissionDefinition, PrincipalChange, Role, RoleDefined, RoleDefinition, RoleGrant, RolePermission,
};
use clap::Subcommand;

use super::runtime;
use super::session::{self, Api};
use super::user::Common;
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the roles in force and what each permits.
    List(ListArgs),
    /// Grant a role to a user or service account; its current tokens stop working.
    Grant(ChangeArgs),
    /// Revoke a role from a user or service account; its current tokens stop working.
    Revoke(ChangeArgs),
    /// Define a new role (needs `access-admin`); the server compiles it to Cedar and refuses it
    /// if it does not validate.
    Define(DefineArgs),
}

#[derive(Debug, clap::Args)]
struct DefineArgs {
    /// The role's name: lowercase letters, digits and `-`, like `payments-reader`.
    name: String,
    /// What the role is for.
    #[arg(long, default_value = "")]
    description: String,
    /// One permission as `ACTIONS:STAGES:REPOSITORIES`, each a comma-separated list, for example
    /// `pull:*:payments/*` or `audit.read::`; repeat for more. `*` in stages is every stage; in
    /// repositories it matches any characters, `/` included.
    #[arg(long = "permission", required = true)]
    permissions: Vec<String>,
    #[command(flatten)]
    common: Common,
}

fn parse_permission(text: &str) -> anyhow::Result<PermissionDefinition> {
    let parts: Vec<&str> = text.split(':').collect();
    let [actions, stages, repositories] = parts.as_slice() else {
        anyhow::bail!("permission `{text}` is not `ACTIONS:STAGES:REPOSITORIES`, like `pull:*:payments/*`");
    };
    let list =
        |s: &str| -> Vec<String> { s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect() };
    Ok(PermissionDefinition {
        actions: list(actions),
        stages: Some(list(stages)),
        repositories: Some(list(repositories)),
    })
}

async fn define(args: DefineArgs) -> anyhow::Result<ExitCode> {
    let role = session::role_name(&args.name)?;
    let permissions = args.permissions.iter().map(|p| parse_permission(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let api = Api::connect(args.common.server.as_deref()).await?;
    let body =
        RoleDefinition { name: role.to_owned(), description: Some(args.description), permissions: Some(permissions) };
    let defined = api.post::<_, RoleDefined>("/api/v1/roles", &body, &format!("cannot define role `{role}`")).await?;
    match args.common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&defined.raw)?),
        Output::Text => println!("defined role `{role}`; grant it with `airlock role grant PRINCIPAL {role}`"),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct ChangeArgs {
    /// The user or service account.
    principal: String,
    /// The role; `airlock role list` shows the roles.
    role: String,
    #[command(flatten)]
    common: Common,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        match args.command {
            Command::List(a) => list(a).await,
            Command::Grant(a) => change(a, true).await,
            Command::Revoke(a) => change(a, false).await,
            Command::Define(a) => define(a).await,
        }
    })
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let api = Api::connect(args.common.server.as_deref()).await?;
    let roles = api.get::<Vec<Role>>("/api/v1/roles", "cannot list roles").await?;
    match args.common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&roles.raw)?),
        Output::Text => {
            for role in &roles.body {
                println!("{}: {}", role.name, role.description);
                for p in &role.permissions {
                    println!("  {}", permission(p));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pull, push in dev on *`: a permission's actions, and the stages and repositories they cover.
fn permission(p: &RolePermission) -> String {
    let mut line = session::join_or_dash(&p.actions);
    if !p.stages.is_empty() {
        line.push_str(&format!(" in stages {}", p.stages.join(", ")));
    }
    if !p.repositories.is_empty() {
        line.push_str(&format!(" on repositories {}", p.repositories.join(", ")));
    }
    line
}

/// The roles a change left in force; none shown while it waits for a second access admin.
fn roles_now(change: &PrincipalChange) -> String {
    match change {
        PrincipalChange::Done(principal) => session::join_or_dash(&principal.roles),
        PrincipalChange::Pending(_) => session::join_or_dash(Vec::<String>::new()),
    }
}

async fn change(args: ChangeArgs, grant: bool) -> anyhow::Result<ExitCode> {
    let name = session::principal_name(&args.principal)?;
    let role = session::role_name(&args.role)?;
    let api = Api::connect(args.common.server.as_deref()).await?;
    let record = if grant {
        let body = RoleGrant { role: role.to_owned() };
        api.post::<_, PrincipalChange>(
            &format!("/api/v1/principals/{name}/roles"),
            &body,
            &format!("cannot grant role `{role}` to `{name}`"),
        )
        .await?
    } else {
        api.delete::<PrincipalChange>(
            &format!("/api/v1/principals/{name}/roles/{role}"),
            &format!("cannot revoke role `{role}` from `{name}`"),
        )
        .await?
    };
    match args.common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&record.raw)?),
        Output::Text => {
            let done =
                if grant { format!("granted `{role}` to `{name}`") } else { format!("revoked `{role}` from `{name}`") };
            println!("{done}; roles now: {}", roles_now(&record.body));
            println!("tokens issued to `{name}` before the change no longer work");
        }
    }
    Ok(ExitCode::SUCCESS)
}
