//! `airlock release export REF --out FILE`: fetches the release bundle of a promoted artifact
//! in one request and writes it as received, for `airlock verify --bundle` with no server.

use std::path::PathBuf;
use std::process::ExitCode;

use airlock_core::promotion::bundle::ReleaseBundle;
use airlock_model::{Digest, RepoName};
use anyhow::Context;
use serde_json::json;

use super::super::client::{Credentials, registry_client};
use super::super::promote::{EXIT_DENIED, split_reference};
use super::super::runtime;
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The promoted artifact: `prod/app@sha256:<hex>` or `prod/app:1.4.2`.
    reference: String,
    /// Where to write the bundle.
    #[arg(long)]
    out: PathBuf,
    /// The server.
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let base = args.server.trim_end_matches('/').to_owned();
    let (repo, reference) = split_reference(&args.reference)?;
    let repo = RepoName::parse(&repo).map_err(|e| anyhow::anyhow!("`{repo}`: {e}"))?;
    let credentials = Credentials::from_env()?;
    let http = registry_client(&base, &credentials, &[format!("repository:{repo}:pull")]).await?;
    let digest = resolve(&base, &http, &repo, &reference).await?;
    let bundle = match super::from_endpoint(&base, &http, &repo, &digest).await? {
        Ok(bytes) => bytes,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(EXIT_DENIED));
        }
    };
    std::fs::write(&args.out, &bundle).with_context(|| format!("cannot write `{}`", args.out.display()))?;
    let parsed: Option<ReleaseBundle> = serde_json::from_slice(&bundle).ok();
    let promotion = parsed.as_ref().map(|b| b.promotion.as_str());
    let log_index = parsed.as_ref().map(|b| b.log_entry.index);
    let checkpoint_size = parsed.as_ref().map(|b| b.inclusion_proof.tree_size);
    let result = json!({
        "repository": repo.as_str(),
        "digest": digest.as_str(),
        "promotion": promotion,
        "log_index": log_index,
        "checkpoint_size": checkpoint_size,
        "bytes": bundle.len(),
        "out": args.out.display().to_string(),
    });
    match args.output {
        Output::Json => println!("{result}"),
        Output::Text => {
            println!("wrote the release bundle of {repo}@{digest} to {}", args.out.display());
            println!(
                "  promotion {}, log entry {} in the checkpoint of size {}",
                promotion.unwrap_or("?"),
                json!(log_index),
                json!(checkpoint_size)
            );
            println!("  check it anywhere: airlock verify --bundle FILE --release-key KEY --log-key KEY");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The digest `reference` (a digest, or a tag read once) names in `repo`.
pub async fn resolve(base: &str, http: &reqwest::Client, repo: &RepoName, reference: &str) -> anyhow::Result<Digest> {
    if let Ok(d) = Digest::parse(reference) {
        return Ok(d);
    }
    let url = format!("{base}/v2/{repo}/manifests/{reference}");
    let response = http
        .head(&url)
        .header("accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
        .send()
        .await
        .with_context(|| format!("cannot reach `{url}`"))?;
    if !response.status().is_success() {
        anyhow::bail!("`{repo}:{reference}` does not resolve ({}); check the tag", response.status());
    }
    let header = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).unwrap_or_default();
    Digest::parse(header).map_err(|e| anyhow::anyhow!("the server named no valid digest for the tag: {e}"))
}
