//! `airlock policy authz check`: decide one access request offline, with the roles, separation
//! of duties and Cedar policies of a server configuration, and show which policies decided it.
//! Exit 0 when allowed, 3 when denied, 2 when the request is malformed.

use std::path::PathBuf;
use std::process::ExitCode;

use airlock_access::authz::{
    Action, Authorizer, AuthzConfig, AuthzContext, AuthzDecision, Principal, PrincipalKind, Resource, ResourceKind,
    SodError,
};
use airlock_model::{PrincipalId, RepoName, StageName};
use airlock_server::Config;
use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::ConfigArgs;
use crate::Output;

/// Exit code when the request is denied.
const DENIED: u8 = 3;
/// Exit code when the request cannot be built from the flags.
const USAGE: u8 = 2;

/// The resource forms `--resource` takes, for error messages.
const RESOURCE_FORMS: &str = "`repository:<stage>/<path>`, `stage:<name>`, `promotion:<stage>/<path>`, \
`waiver:<stage>/<path>`, `trust-root`, `access-grant:<role>`, `log`";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decide one request offline; exit 0 when allowed, 3 when denied.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Who asks: `user:NAME` or `sa:NAME` (a service account).
    #[arg(long, value_name = "user:NAME|sa:NAME")]
    principal: String,
    /// A role the principal holds (repeatable); roles the configuration does not define grant
    /// nothing.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// The action, such as `pull`, `push` or `promote.approve`.
    #[arg(long)]
    action: String,
    /// What the action is on: `repository:<stage>/<path>`, `stage:<name>`,
    /// `promotion:<stage>/<path>` (the target stage), `waiver:<stage>/<path>`, `trust-root`,
    /// `access-grant:<role>` or `log`.
    #[arg(long, value_name = "RESOURCE")]
    resource: String,
    /// Who requested the promotion, waiver or access grant (a principal name).
    #[arg(long, value_name = "ID")]
    requester: Option<String>,
    /// Who pushed the artifact of a promotion (repeatable).
    #[arg(long = "pusher", value_name = "ID")]
    pushers: Vec<String>,
    /// The principal verified a second factor within the configured window.
    #[arg(long)]
    mfa_fresh: bool,
    /// The stage the request concerns is frozen.
    #[arg(long)]
    frozen: bool,
    /// The builder id the artifact's trusted provenance names (`context.origin_builder`).
    #[arg(long)]
    origin_builder: Option<String>,
    /// The source repository the artifact's trusted provenance names (`context.origin_source`).
    #[arg(long)]
    origin_source: Option<String>,
    /// An incident is declared.
    #[arg(long)]
    incident: bool,
    /// The client address the request would come from, for policies that read it.
    #[arg(long, default_value = "127.0.0.1")]
    source_ip: String,
    /// The server's configuration file, whose `[access]` roles, conflicts, compatible pairs and
    /// policies and whose stages decide; `airlock.toml` in the working directory is read when
    /// present, else the defaults.
    #[arg(long, short = 'c', env = "AIRLOCK_CONFIG")]
    config: Option<PathBuf>,
    /// Print the decision as text or as one JSON document.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let Command::Check(args) = args.command;
    check(args)
}

/// A request that cannot be built from the flags: printed, exit 2.
fn usage(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(USAGE))
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = ConfigArgs { config: args.config.clone(), data: None }.load()?;
    let principal = match parse_principal(&args.principal, &args.roles) {
        Ok(p) => p,
        Err(message) => return usage(&message),
    };
    let action: Action = match args.action.parse() {
        Ok(a) => a,
        Err(e) => return usage(&e.to_string()),
    };
    let resource = match parse_resource(&args, &config) {
        Ok(r) => r,
        Err(message) => return usage(&message),
    };
    if action.resource_kind() != resource.kind() {
        return usage(&format!(
            "action `{action}` acts on {}; name it as {}",
            action.resource_kind().describe(),
            form(action.resource_kind())
        ));
    }

    let custom_policies = match &config.access.policies {
        None => None,
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the custom policies `{}` (`access.policies`)", path.display()))?,
        ),
    };
    let authorizer = Authorizer::new(&AuthzConfig {
        roles: config.access.roles.clone(),
        custom_policies,
        conflicts: config.access.conflicts.clone(),
        compatible: config.access.compatible.clone(),
    })
    .map_err(|e| anyhow::anyhow!("the access configuration is invalid: {e}"))?;

    let mut warnings = Vec::new();
    match authorizer.check_held(&principal.roles) {
        // Conflicting roles deny the decision itself, which names them.
        Ok(()) | Err(SodError::HeldTogether { .. }) => {}
        Err(e) => warnings.push(e.to_string()),
    }
    let context = AuthzContext {
        now: super::trust::now().as_millis() / 1000,
        source_ip: args.source_ip.clone(),
        mfa_fresh: args.mfa_fresh,
        stage_frozen: args.frozen,
        incident_mode: args.incident,
        origin: (args.origin_builder.is_some() || args.origin_source.is_some()).then(|| {
            airlock_access::authz::Origin { builder: args.origin_builder.clone(), source: args.origin_source.clone() }
        }),
    };
    let decision = authorizer.authorize(&principal, action, &resource, &context);
    match args.output {
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(&to_json(&args, &principal, &decision, &warnings))?)
        }
        Output::Text => print_text(&args, &principal, &decision, &warnings),
    }
    Ok(if decision.allowed { ExitCode::SUCCESS } else { ExitCode::from(DENIED) })
}

/// `user:alice` or `sa:ci-payments`, holding `roles`.
fn parse_principal(text: &str, roles: &[String]) -> Result<Principal, String> {
    let (kind, name) = match text.split_once(':') {
        Some(("user", name)) => (PrincipalKind::User, name),
        Some(("sa", name)) => (PrincipalKind::ServiceAccount, name),
        _ => {
            return Err(format!(
                "principal `{}` is not `user:NAME` or `sa:NAME`; for example `--principal user:alice`",
                airlock_model::echo::echo(text)
            ));
        }
    };
    let id = PrincipalId::parse(name).map_err(|e| e.to_string())?;
    Ok(Principal { kind, id: id.to_string(), roles: roles.to_vec() })
}

/// The `--resource` form for resources of `kind`.
fn form(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Stage => "`stage:<name>`",
        ResourceKind::Repository => "`repository:<stage>/<path>`",
        ResourceKind::Promotion => "`promotion:<stage>/<path>`",
        ResourceKind::Waiver => "`waiver:<stage>/<path>`",
        ResourceKind::TrustRoot => "`trust-root`",
        ResourceKind::AccessGrant => "`access-grant:<role>`",
        ResourceKind::Log => "`log`",
    }
}

/// A principal id given with `--requester` or `--pusher`.
fn party(flag: &str, id: &str) -> Result<String, String> {
    PrincipalId::parse(id).map(|id| id.to_string()).map_err(|e| format!("`{flag}`: {e}"))
}

/// `<stage>/<path>` in a configured stage: the repository and whether its stage is gated.
fn repository(text: &str, config: &Config) -> Result<(RepoName, bool), String> {
    let repo = RepoName::parse(text).map_err(|e| e.to_string())?;
    let gated = !config.stages.get(repo.stage()).ok_or_else(|| not_configured(repo.stage(), config))?.pushable();
    Ok((repo, gated))
}

fn not_configured(stage: &StageName, config: &Config) -> String {
    format!("stage `{stage}` is not configured; the stages are {}", config.stages.describe())
}

/// The resource named by `--resource`, with `--requester` and `--pusher` where they belong.
fn parse_resource(args: &CheckArgs, config: &Config) -> Result<Resource, String> {
    let text = args.resource.as_str();
    let (prefix, rest) = match text.split_once(':') {
        Some((prefix, rest)) => (prefix, Some(rest)),
        None => (text, None),
    };
    let requester = || match &args.requester {
        Some(id) => party("--requester", id),
        None => Err(format!("`{prefix}:` resources need `--requester ID`, who asked for it")),
    };
    let takes_requester = matches!(prefix, "promotion" | "waiver" | "access-grant");
    if args.requester.is_some() && !takes_requester {
        return Err("`--requester` applies to `promotion:`, `waiver:` and `access-grant:` resources only".to_owned());
    }
    if !args.pushers.is_empty() && prefix != "promotion" {
        return Err("`--pusher` applies to `promotion:` resources only".to_owned());
    }
    let resource = match (prefix, rest) {
        ("repository", Some(rest)) => {
            let (repo, gated) = repository(rest, config)?;
            Resource::Repository { stage: repo.stage().to_string(), path: repo.path().to_owned(), gated }
        }
        ("stage", Some(name)) => {
            let name = StageName::parse(name).map_err(|e| e.to_string())?;
            let stage = config.stages.get(&name).ok_or_else(|| not_configured(&name, config))?;
            Resource::Stage { name: name.to_string(), gated: !stage.pushable() }
        }
        ("promotion", Some(rest)) => {
            let (repo, _) = repository(rest, config)?;
            let pushers = args.pushers.iter().map(|p| party("--pusher", p)).collect::<Result<Vec<_>, _>>()?;
            Resource::Promotion {
                id: rest.to_owned(),
                repository: repo.path().to_owned(),
                stage: repo.stage().to_string(),
                requester_id: requester()?,
                pushers,
            }
        }
        ("waiver", Some(rest)) => {
            let (repo, _) = repository(rest, config)?;
            Resource::Waiver { id: rest.to_owned(), repository: repo.path().to_owned(), requester_id: requester()? }
        }
        ("access-grant", Some(role)) => {
            if !airlock_access::authz::is_role_name(role) {
                return Err(format!("`{}` is not a role name", airlock_model::echo::echo(role)));
            }
            let requester_id = requester()?;
            Resource::AccessGrant { id: format!("{requester_id}/{role}"), requester_id, role: role.to_owned() }
        }
        ("trust-root", None) => Resource::TrustRoot,
        ("log", None) => Resource::Log,
        _ => {
            return Err(format!(
                "resource `{}` is not one of the forms {RESOURCE_FORMS}",
                airlock_model::echo::echo(text)
            ));
        }
    };
    Ok(resource)
}

fn kind_word(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "user",
        PrincipalKind::ServiceAccount => "service_account",
    }
}

fn to_json(
    args: &CheckArgs,
    principal: &Principal,
    decision: &AuthzDecision,
    warnings: &[String],
) -> serde_json::Value {
    json!({
        "decision": if decision.allowed { "allow" } else { "deny" },
        "allowed": decision.allowed,
        "principal": {"kind": kind_word(principal.kind), "id": principal.id, "roles": principal.roles},
        "action": args.action,
        "resource": args.resource,
        "context": {
            "mfa_fresh": args.mfa_fresh,
            "stage_frozen": args.frozen,
            "incident_mode": args.incident,
            "source_ip": args.source_ip,
        },
        "reasons": decision.reasons,
        "errors": decision.errors,
        "warnings": warnings,
    })
}

fn print_text(args: &CheckArgs, principal: &Principal, decision: &AuthzDecision, warnings: &[String]) {
    let who = format!("{} `{}`", principal.kind, principal.id);
    let roles = if principal.roles.is_empty() {
        "no roles".to_owned()
    } else {
        format!("roles {}", principal.roles.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", "))
    };
    if decision.allowed {
        println!("ALLOW: {who} ({roles}) may `{}` on `{}`", args.action, args.resource);
        for id in &decision.reasons {
            println!("  permitted by {id}");
        }
    } else {
        println!("DENY: {who} ({roles}) may not `{}` on `{}`", args.action, args.resource);
        for id in &decision.reasons {
            println!("  forbidden by {id}");
        }
        if decision.reasons.is_empty() && decision.errors.is_empty() {
            println!("  no policy permits it: none of the principal's roles grants `{}` here", args.action);
        }
    }
    for e in &decision.errors {
        println!("  error: {e}");
    }
    for w in warnings {
        println!("  warning: {w}");
    }
}
