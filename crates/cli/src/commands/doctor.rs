//! `airlock doctor`: checks a data directory (the whole database, then the log against its last
//! signed checkpoint) and says what to do about each failure.

use std::process::ExitCode;

use super::{ConfigArgs, runtime};
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let text = args.output == Output::Text;
    if text {
        eprintln!("checking `{}` (stop the server first; a large database takes a while)", config.data_dir.display());
    }
    let findings = runtime()?.block_on(airlock_server::doctor::doctor(config, |f| {
        if text {
            println!("{} {}: {}", if f.ok { "ok    " } else { "FAILED" }, f.check, f.detail);
            if let Some(next) = &f.next {
                println!("       next: {next}");
            }
        }
    }));
    let healthy = findings.iter().all(|f| f.ok);
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"healthy": healthy, "checks": findings}))?);
    }
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
