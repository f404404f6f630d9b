//! `airlock user add|enroll|reset|disable|enable|list`: manage the people who use Airlock,
//! through the identity API, as the logged-in principal (which needs the `access-admin` role);
//! `enroll` is the person's own first step, with the one-time token `add` or `reset` printed.

use std::process::ExitCode;

use airlock_api::v1::{
    EnrollRequest, Grant, NewPrincipal, Principal, PrincipalChange, PrincipalCreated, Reset, TotpEnrollment,
};
use clap::Subcommand;
use serde_json::Value;

use super::runtime;
use super::session::{self, Api};
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a user: prints a one-time enrollment token (shown once) to hand to the person, who
    /// runs `airlock user enroll TOKEN` to choose their password and get their second factor.
    /// Privileged roles wait for a second access admin (`airlock access approve ID`).
    Add(AddArgs),
    /// Complete your enrollment with the token an access admin handed you: choose your password
    /// (`AIRLOCK_PASSWORD` or `--password-stdin`); prints your TOTP secret and URI once.
    Enroll(TokenArgs),
    /// Ask for a new enrollment for a user who lost their password or second factor (both are
    /// cleared): a second access admin approves it and receives the one-time token.
    Reset(NameArgs),
    /// Disable a user: every token of theirs stops working at once.
    Disable(NameArgs),
    /// Enable a disabled user again.
    Enable(NameArgs),
    /// List the users.
    List(ListArgs),
    /// Second factors: `airlock user mfa enroll`.
    Mfa(MfaArgs),
}

#[derive(Debug, clap::Args)]
struct MfaArgs {
    #[command(subcommand)]
    command: MfaCommand,
}

#[derive(Debug, Subcommand)]
enum MfaCommand {
    /// Enroll (or replace) your TOTP authenticator: prints the secret and an `otpauth://` URI
    /// once. Authenticates with your password (`AIRLOCK_PASSWORD` or `--password-stdin`), and
    /// with the current code (`--otp`) when replacing one.
    Enroll(EnrollArgs),
}

#[derive(Debug, clap::Args)]
struct EnrollArgs {
    /// The server's base URL.
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    /// Your user name.
    #[arg(long, short = 'u', env = "AIRLOCK_USERNAME")]
    username: String,
    /// Read the password from the first line of stdin instead of `AIRLOCK_PASSWORD`.
    #[arg(long)]
    password_stdin: bool,
    /// The current code of the authenticator being replaced.
    #[arg(long, env = "AIRLOCK_OTP")]
    otp: Option<String>,
    /// Print the result as text or as one JSON document.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

async fn enroll(args: EnrollArgs) -> anyhow::Result<ExitCode> {
    let secret = if args.password_stdin {
        session::read_secret_line()?
    } else {
        std::env::var("AIRLOCK_PASSWORD")
            .map_err(|_| anyhow::anyhow!("no password: set `AIRLOCK_PASSWORD` or pass `--password-stdin`"))?
    };
    let server = session::normalize_server(&args.server)?;
    let mut request =
        session::http_client(None)?.post(format!("{server}/api/v1/auth/mfa")).basic_auth(&args.username, Some(&secret));
    if let Some(code) = args.otp.as_deref().filter(|c| !c.trim().is_empty()) {
        request = request.header("X-Airlock-OTP", code.trim());
    }
    let response = request.send().await.map_err(|e| anyhow::anyhow!("cannot reach `{server}`: {e}"))?;
    let context = "cannot enroll a second factor";
    let enrolled = session::parse::<TotpEnrollment>(&session::check(response, context).await?, context)?;
    eprintln!("warning: the secret is shown only this once; add it to your authenticator now");
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&enrolled.raw)?),
        Output::Text => {
            println!("secret: {}", enrolled.body.secret);
            println!("uri:    {}", enrolled.body.otpauth_uri);
            println!("log in with `airlock login {server} --otp CODE` to approve");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Flags every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The server; defaults to the stored session's, and must match it when given.
    #[arg(long, env = "AIRLOCK_SERVER")]
    pub server: Option<String>,
    /// Print the result as text or as one JSON document.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// The user's name: lowercase letters, digits, `.`, `_` and `-`, like `alice`.
    name: String,
    /// A role to give the user (repeatable); `airlock role list` shows the roles.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// The person's e-mail: approvals compare people by it (trimmed, lowercased, a `+tag`
    /// dropped), and an approver without one cannot approve.
    #[arg(long)]
    email: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The one-time enrollment token, `ale_...`.
    token: String,
    /// The server's base URL.
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    /// Read the new password from the first line of stdin instead of `AIRLOCK_PASSWORD`.
    #[arg(long)]
    password_stdin: bool,
    /// Print the result as text or as one JSON document.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct NameArgs {
    /// The user's name.
    name: String,
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
            Command::Add(a) => add(a).await,
            Command::Enroll(a) => enroll_with_token(a).await,
            Command::Reset(a) => reset(a).await,
            Command::Disable(a) => status(a, false).await,
            Command::Enable(a) => status(a, true).await,
            Command::List(a) => list(&a.common, "user").await,
            Command::Mfa(MfaArgs { command: MfaCommand::Enroll(a) }) => enroll(a).await,
        }
    })
}

async fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let name = session::principal_name(&args.name)?;
    for role in &args.roles {
        session::role_name(role)?;
    }
    let api = Api::connect(args.common.server.as_deref()).await?;
    let body = NewPrincipal {
        name: name.as_str().to_owned(),
        kind: "user".to_owned(),
        roles: args.roles,
        password: None,
        days: None,
        email: args.email,
    };
    let created =
        api.post::<_, PrincipalCreated>("/api/v1/principals", &body, &format!("cannot create user `{name}`")).await?;
    eprintln!(
        "warning: the enrollment token is shown only this once; hand it to `{name}` securely, who runs `airlock user enroll TOKEN`"
    );
    match args.common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&created.raw)?),
        Output::Text => {
            let created = created.body;
            println!("created user `{name}` with roles {}", session::join_or_dash(&created.principal.roles));
            print_pending(&created.pending);
            println!("enrollment token: {}", created.enrollment_token.unwrap_or_default());
            println!("expires:          {}", created.enrollment_expires_at.unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Says which changes wait for a second access admin, and how they approve them.
pub fn print_pending<'a>(pending: impl IntoIterator<Item = &'a Grant>) {
    for grant in pending {
        println!(
            "pending: {} `{}` for `{}` waits for a second access admin: `airlock access approve {}`",
            grant.kind, grant.role, grant.principal, grant.id,
        );
    }
}

async fn enroll_with_token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let password = if args.password_stdin {
        session::read_secret_line()?
    } else {
        std::env::var("AIRLOCK_PASSWORD")
            .map_err(|_| anyhow::anyhow!("no password: set `AIRLOCK_PASSWORD` or pass `--password-stdin`"))?
    };
    let server = session::normalize_server(&args.server)?;
    let response = session::http_client(None)?
        .post(format!("{server}/api/v1/auth/enroll"))
        .json(&EnrollRequest { token: args.token.trim().to_owned(), password })
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach `{server}`: {e}"))?;
    let context = "cannot enroll";
    let enrolled = session::parse::<TotpEnrollment>(&session::check(response, context).await?, context)?;
    eprintln!("warning: the secret is shown only this once; add it to your authenticator now");
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&enrolled.raw)?),
        Output::Text => {
            println!("enrolled `{}`", enrolled.body.principal);
            println!("secret: {}", enrolled.body.secret);
            println!("uri:    {}", enrolled.body.otpauth_uri);
            println!("log in with `airlock login {server} --otp CODE`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn reset(args: NameArgs) -> anyhow::Result<ExitCode> {
    let name = session::principal_name(&args.name)?;
    let api = Api::connect(args.common.server.as_deref()).await?;
    let reset =
        api.post_empty::<Reset>(&format!("/api/v1/principals/{name}/reset"), &format!("cannot reset `{name}`")).await?;
    match args.common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&reset.raw)?),
        Output::Text => match reset.body {
            Reset::Enrolled(enrolled) => {
                eprintln!("warning: the enrollment token is shown only this once; hand it to `{name}` securely");
                println!("reset `{name}`: password and second factor cleared");
                println!("enrollment token: {}", enrolled.enrollment_token);
            }
            Reset::Pending(change) => print_pending([&change.pending]),
            Reset::Done(_) => print_pending([]),
        },
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(args: NameArgs, enable: bool) -> anyhow::Result<ExitCode> {
    let name = session::principal_name(&args.name)?;
    let api = Api::connect(args.common.server.as_deref()).await?;
    let (verb, done) = if enable { ("enable", "enabled") } else { ("disable", "disabled") };
    let record = api
        .post_empty::<PrincipalChange>(&format!("/api/v1/principals/{name}/{verb}"), &format!("cannot {verb} `{name}`"))
        .await?;
    match args.common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&record.raw)?),
        Output::Text if enable => println!("{done} `{name}`; they can log in again"),
        Output::Text => println!("{done} `{name}`; every token of theirs stopped working"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists the principals of `kind` (`user` or `service_account`).
pub async fn list(common: &Common, kind: &str) -> anyhow::Result<ExitCode> {
    let api = Api::connect(common.server.as_deref()).await?;
    let all = api.get::<Vec<Principal>>("/api/v1/principals", "cannot list principals").await?;
    let raw = all.raw.as_array().map_or(&[][..], Vec::as_slice);
    let (chosen, shown): (Vec<&Principal>, Vec<&Value>) =
        all.body.iter().zip(raw).filter(|(p, _)| p.kind == kind).unzip();
    match common.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&shown)?),
        Output::Text => print_table(&chosen, kind == "service_account"),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per principal: name, status, roles and, for service accounts, key expiry.
fn print_table(principals: &[&Principal], keys: bool) {
    let width = principals.iter().map(|p| p.name.len()).max().unwrap_or(4).max(4);
    let last = if keys { "KEY EXPIRES" } else { "MFA" };
    println!("{:<width$}  {:<8}  {:<40}  {last}", "NAME", "STATUS", "ROLES");
    for p in principals {
        let status = if p.disabled { "disabled" } else { "active" };
        let last = if keys {
            p.api_key_expires_at.as_deref().unwrap_or("-").to_owned()
        } else if p.mfa_enrolled {
            "yes".to_owned()
        } else {
            "no".to_owned()
        };
        println!("{:<width$}  {status:<8}  {:<40}  {last}", p.name, session::join_or_dash(&p.roles));
    }
}
