//! `airlock scrub`: one pass of the blob scrubber over the data directory.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use airlock_server::App;
use serde::Serialize;

use super::{ConfigArgs, runtime};
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Most bytes per second to read; 0 reads as fast as the disk allows.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Serialize)]
struct Report {
    checked: u64,
    bytes: u64,
    quarantined: Vec<String>,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    runtime()?.block_on(async move {
        let app = App::open(config).await?;
        let mut last = Instant::now();
        let show_progress = args.output == Output::Text;
        let report = app
            .scrub((args.rate > 0).then_some(args.rate), |r| {
                if show_progress && last.elapsed() >= Duration::from_secs(1) {
                    last = Instant::now();
                    eprintln!("scrubbed {} blobs, {} MiB", r.checked, r.bytes / (1024 * 1024));
                }
            })
            .await;
        app.close().await;
        let report = report?;
        let out = Report {
            checked: report.checked,
            bytes: report.bytes,
            quarantined: report.quarantined.iter().map(ToString::to_string).collect(),
        };
        match args.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&out)?),
            Output::Text => {
                println!("checked {} blobs ({} bytes)", out.checked, out.bytes);
                if out.quarantined.is_empty() {
                    println!("all blobs match their digests");
                } else {
                    println!("quarantined {} corrupt blobs (no longer served):", out.quarantined.len());
                    for d in &out.quarantined {
                        println!("  {d}");
                    }
                }
            }
        }
        Ok(if report.quarantined.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}
