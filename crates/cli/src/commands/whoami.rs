//! `airlock whoami`: the principal the stored session acts as, as the server sees it now.

use std::process::ExitCode;

use airlock_api::v1::Whoami;
use serde_json::Value;

use super::runtime;
use super::session::{self, Api};
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server; defaults to the stored session's, and must match it when given.
    #[arg(long, env = "AIRLOCK_SERVER")]
    server: Option<String>,
    /// Print the result as text or as one JSON document.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let api = Api::connect(args.server.as_deref()).await?;
    let reply = api.get::<Whoami>("/api/v1/auth/whoami", "cannot ask the server who the session is").await?;
    match args.output {
        Output::Json => {
            let mut me = reply.raw;
            if let Value::Object(fields) = &mut me {
                fields.insert("server".to_owned(), Value::from(api.session().server.as_str()));
                fields.insert("token_expires_at".to_owned(), Value::from(api.session().expires_at.as_str()));
            }
            println!("{}", serde_json::to_string_pretty(&me)?);
        }
        Output::Text => {
            let me = reply.body.principal;
            let kind = if me.kind == "service_account" { "service account" } else { "user" };
            println!("{} ({kind}) on {}", me.name, api.session().server);
            println!("roles: {}", session::join_or_dash(&me.roles));
            if me.disabled {
                println!("status: DISABLED");
            }
            println!("second factor: {}", if me.mfa_enrolled { "enrolled" } else { "not enrolled" });
            if let Some(at) = &me.api_key_expires_at {
                println!("api key expires at {at}");
            }
            println!("created at {}", me.created_at);
            println!("session token expires at {}", api.session().expires_at);
        }
    }
    Ok(ExitCode::SUCCESS)
}
