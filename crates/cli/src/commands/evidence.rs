//! `airlock evidence show FILE`: what Airlock understands from a scanner report, an SBOM or a
//! provenance document, offline, and what it could not read and why.

use std::path::PathBuf;
use std::process::ExitCode;

use airlock_evidence::{Format, Limits, parse, parse_auto};
use anyhow::Context;
use clap::{Subcommand, ValueEnum};

use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the normalized evidence a file holds.
    Show(ShowArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Trivy,
    Grype,
    Sarif,
    Cyclonedx,
    Spdx,
    Slsa,
    Openvex,
    CosignVuln,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    file: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let Command::Show(args) = args.command;
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read `{}`", args.file.display()))?;
    let limits = Limits::default();
    let format = match args.format {
        FormatArg::Auto => None,
        FormatArg::Trivy => Some(Format::Trivy),
        FormatArg::Grype => Some(Format::Grype),
        FormatArg::Sarif => Some(Format::Sarif),
        FormatArg::Cyclonedx => Some(Format::CycloneDx),
        FormatArg::Spdx => Some(Format::Spdx),
        FormatArg::Slsa => Some(Format::SlsaProvenance),
        FormatArg::Openvex => Some(Format::OpenVex),
        FormatArg::CosignVuln => Some(Format::CosignVuln),
    };
    let (format, evidence) = match format {
        Some(f) => (f, parse(f, &bytes, &limits)),
        None => match parse_auto(&bytes, &limits) {
            Ok((f, e)) => (f, Ok(e)),
            Err(e) => anyhow::bail!("`{}`: {e}; name the format with `--format`", args.file.display()),
        },
    };
    let evidence = evidence.map_err(|e| anyhow::anyhow!("`{}` as {}: {e}", args.file.display(), format.as_str()))?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"format": format.as_str(), "evidence": evidence}))?
        ),
        Output::Text => {
            println!("{} ({})", args.file.display(), format.as_str());
            for p in &evidence.provenance {
                println!(
                    "provenance: builder {} from {}",
                    p.builder_id.as_deref().unwrap_or("?"),
                    p.source_repository.as_deref().unwrap_or("?")
                );
            }
            if !evidence.components.is_empty() {
                println!("{} components", evidence.components.len());
                for c in evidence.components.iter().take(20) {
                    println!(
                        "  {} {} {}",
                        c.purl.as_deref().unwrap_or(&c.name),
                        c.version.as_deref().unwrap_or(""),
                        c.licenses.join(" ")
                    );
                }
            }
            if !evidence.vulnerabilities.is_empty() {
                println!("{} vulnerabilities", evidence.vulnerabilities.len());
                for v in &evidence.vulnerabilities {
                    println!(
                        "  {:<20} {:<8} {} {}{}",
                        v.id,
                        format!("{:?}", v.severity).to_lowercase(),
                        v.package_purl.as_deref().or(v.package_name.as_deref()).unwrap_or("?"),
                        v.installed_version.as_deref().unwrap_or(""),
                        v.fixed_version.as_deref().map(|f| format!(" (fixed in {f})")).unwrap_or_default()
                    );
                }
            }
            for s in &evidence.vex {
                println!("VEX {} {:?} {}", s.vulnerability_id, s.status, s.justification.as_deref().unwrap_or(""));
            }
            if evidence.unread.is_empty() {
                println!("everything was read");
            } else {
                println!("could not read {} items:", evidence.unread.len());
                for u in &evidence.unread {
                    println!("  {}: {}", u.path, u.reason);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
