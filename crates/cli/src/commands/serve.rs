//! `airlock serve`: run the registry until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use airlock_server::{LogFormat, Server, shutdown_signal, telemetry};

use super::{ConfigArgs, runtime};

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
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
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
    runtime()?.block_on(async move {
        let stages = config.stages.describe();
        let server = Server::bind(config).await?;
        let addr = server.local_addr()?;
        println!("airlock listening on http://{addr}");
        println!("  data:   {}", server.data_dir().display());
        println!("  stages: {stages}");
        tracing::info!(%addr, "serving");
        server.run(shutdown_signal()).await?;
        println!("airlock stopped");
        Ok(ExitCode::SUCCESS)
    })
}
