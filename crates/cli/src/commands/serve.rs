//! `airlock serve`: run the registry until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use airlock_server::{LogFormat, Server, shutdown_signal, telemetry};
use serde::Serialize;

use super::{ConfigArgs, runtime};
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on; overrides `listen` in the config (default `127.0.0.1:5000`).
    #[arg(long, env = "AIRLOCK_LISTEN")]
    listen: Option<SocketAddr>,
    /// Log line format; overrides `log_format` in the config.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// Format of the start-up report on stdout (logs go to stderr).
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// The start-up report, for `--output json`.
#[derive(Debug, Serialize)]
struct Started {
    listen: String,
    data: String,
    /// The configuration file read, if any.
    config: Option<String>,
    stages: Vec<StageReport>,
    /// Set only at the first start, when `admin` was created with a generated password.
    #[serde(skip_serializing_if = "Option::is_none")]
    bootstrap_password: Option<String>,
}

#[derive(Debug, Serialize)]
struct StageReport {
    name: String,
    pushable: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let config_file = args.config.path().map(|p| p.display().to_string());
    let mut config = args.config.load()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(format) = args.log_format {
        config.log_format = match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    telemetry::init(config.log_format);
    let output = args.output;
    runtime()?.block_on(async move {
        let described = config.stages.describe();
        let stages =
            config.stages.iter().map(|s| StageReport { name: s.name().to_string(), pushable: s.pushable() }).collect();
        let server = Server::bind(config).await?;
        let addr = server.local_addr()?;
        match output {
            Output::Text => {
                println!("airlock listening on http://{addr}");
                println!("  data:   {}", server.data_dir().display());
                println!("  config: {}", config_file.as_deref().unwrap_or("none (the defaults)"));
                println!("  stages: {described}");
                if let Some(password) = server.bootstrap_password() {
                    println!("  created user `admin` (role access-admin) with one-time password: {password}");
                    println!("  it is shown only now; log in with `airlock login` and change it");
                }
                for warning in server.warnings() {
                    println!("  warning: {warning}");
                }
            }
            Output::Json => {
                let started = Started {
                    listen: format!("http://{addr}"),
                    data: server.data_dir().display().to_string(),
                    config: config_file,
                    stages,
                    bootstrap_password: server.bootstrap_password().map(str::to_owned),
                };
                println!("{}", serde_json::to_string(&started)?);
            }
        }
        tracing::info!(%addr, "serving");
        server.run(shutdown_signal()).await?;
        if output == Output::Text {
            println!("airlock stopped");
        }
        Ok(ExitCode::SUCCESS)
    })
}
