//! `airlock login URL`: trade a password or API key for a short-lived API token and store it as
//! the session the identity commands (`whoami`, `user`, `sa`, `role`) act in.

use std::process::ExitCode;

use airlock_api::v1::ApiToken;
use anyhow::{Context, bail};
use serde_json::json;

use super::client::{PASSWORD_ENV, USERNAME_ENV};
use super::runtime;
use super::session::{self, Session};
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's base URL, for example `https://airlock.example.com`.
    url: String,
    /// The user or service account to log in as.
    #[arg(long, short = 'u', env = USERNAME_ENV)]
    username: Option<String>,
    /// Read the password (or API key) from the first line of stdin instead of `AIRLOCK_PASSWORD`.
    /// Secrets are never taken from the command line, where other users of the machine can read
    /// them.
    #[arg(long)]
    password_stdin: bool,
    /// The current code of the user's authenticator (TOTP), for a session that may approve.
    /// A code is spent at once, so it may be given here.
    #[arg(long, env = "AIRLOCK_OTP")]
    otp: Option<String>,
    /// Print the result as text or as one JSON document.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(run(args))
}

/// Whether `server` is plain HTTP to a host other than this machine.
fn cleartext_remote(server: &str) -> bool {
    let Some(rest) = server.strip_prefix("http://") else { return false };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    !(host == "localhost" || host == "::1" || host.starts_with("127."))
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let server = session::normalize_server(&args.url)?;
    let Some(username) = args.username.filter(|u| !u.is_empty()) else {
        bail!("no username: pass `--username NAME` or set `{USERNAME_ENV}`");
    };
    let secret = if args.password_stdin {
        session::read_secret_line()?
    } else {
        match std::env::var(PASSWORD_ENV) {
            Ok(secret) if !secret.is_empty() => secret,
            _ => bail!("no password: set `{PASSWORD_ENV}` or pipe the password into `--password-stdin`"),
        }
    };
    if cleartext_remote(&server) {
        eprintln!("warning: `{server}` is not https; the password and the token cross the network in clear text");
    }

    let url = format!("{server}/api/v1/auth/token");
    let mut request = session::http_client(None)?.post(&url).basic_auth(&username, Some(&secret));
    if let Some(code) = args.otp.as_deref().filter(|c| !c.trim().is_empty()) {
        request = request.header("X-Airlock-OTP", code.trim());
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach `{url}`; check the URL and that the server is running"))?;
    let context = format!("cannot log in to `{server}` as `{username}`");
    let reply: ApiToken = session::parse(&session::check(response, &context).await?, &context)?.body;
    let session = Session::from_reply(&server, &reply);
    let path = session.save()?;

    match args.output {
        Output::Json => println!(
            "{}",
            json!({
                "server": server,
                "principal": reply.principal,
                "kind": reply.kind,
                "roles": reply.roles,
                "expires_at": session.expires_at,
                "session": path,
            })
        ),
        Output::Text => {
            let kind = if reply.kind == "service_account" { "service account" } else { "user" };
            println!("logged in to {server} as {} ({kind})", reply.principal);
            println!("roles: {}", session::join_or_dash(&reply.roles));
            println!(
                "token expires at {}; commands refresh it while it is valid (session in {})",
                session.expires_at,
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::cleartext_remote;

    #[test]
    fn plain_http_is_flagged_only_off_this_machine() {
        for (server, expect) in [
            ("http://127.0.0.1:5000", false),
            ("http://localhost:5000", false),
            ("http://[::1]:5000", false),
            ("https://airlock.example.com", false),
            ("http://airlock.example.com", true),
            ("http://10.0.0.7:5000/", true),
        ] {
            assert_eq!(cleartext_remote(server), expect, "{server}");
        }
    }
}
