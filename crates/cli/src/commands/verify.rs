//! `airlock verify REF`: whether a digest was promoted into a stage, checked on the client. The
//! release record and its summary must verify with the release key, and the log entry they name
//! must be the promotion's commit event, included in a checkpoint signed by the log key. With
//! `--offline` both keys come from the command line (pinned copies) and nothing the server says
//! is believed without them; the data still comes from the server.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use airlock_core::promotion::history::commit_entry_matches;
use airlock_core::promotion::record::{VSA_PREDICATE, verify_record, verify_statement};
use airlock_dsse::PublicKey;
use airlock_model::{Digest, RepoName};
use airlock_tlog::{Verifier, leaf_hash, verify_inclusion};
use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::audit::client::LogClient;
use super::audit::verify::open_checkpoint;
use super::client::{Credentials, registry_client};
use super::promote::{EXIT_DENIED, split_reference};
use super::runtime;
use crate::Output;

/// How long to wait for a checkpoint covering a fresh commit.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The artifact in the stage to check: `prod/app@sha256:<hex>` or `prod/app:1.4.2`.
    reference: String,
    /// The server.
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    /// Use only the keys given here: `--release-key` and `--log-key` are then required.
    #[arg(long)]
    offline: bool,
    /// The release key's public half (PEM), or a file holding it, from `GET /api/v1/release-key`
    /// taken once and kept.
    #[arg(long)]
    release_key: Option<String>,
    /// The log's verifier key (`name+hash+base64`), or a file holding it, from
    /// `GET /api/v1/log/key` taken once and kept.
    #[arg(long)]
    log_key: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

fn text_or_file(value: &str) -> anyhow::Result<String> {
    if Path::new(value).is_file() {
        std::fs::read_to_string(value).with_context(|| format!("cannot read key file `{value}`"))
    } else {
        Ok(value.to_owned())
    }
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.offline && (args.release_key.is_none() || args.log_key.is_none()) {
        bail!(
            "`--offline` needs `--release-key` and `--log-key`: pinned copies of `GET /api/v1/release-key` and `GET /api/v1/log/key`"
        );
    }
    let base = args.server.trim_end_matches('/').to_owned();
    let (repo, reference) = split_reference(&args.reference)?;
    let repo = RepoName::parse(&repo).map_err(|e| anyhow::anyhow!("`{repo}`: {e}"))?;
    let credentials = Credentials::from_env()?;
    let http = registry_client(&base, &credentials, &[format!("repository:{repo}:pull")]).await?;
    let digest = match Digest::parse(&reference) {
        Ok(d) => d,
        Err(_) => {
            let url = format!("{base}/v2/{repo}/manifests/{reference}");
            let response = http
                .head(&url)
                .header("accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
                .send()
                .await
                .with_context(|| format!("cannot reach `{url}`"))?;
            if !response.status().is_success() {
                bail!("`{repo}:{reference}` does not resolve ({}); check the tag", response.status());
            }
            let header =
                response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).unwrap_or_default();
            Digest::parse(header).map_err(|e| anyhow::anyhow!("the server named no valid digest for the tag: {e}"))?
        }
    };

    let plain = reqwest::Client::new();
    let release_key = match &args.release_key {
        Some(k) => text_or_file(k)?,
        None => {
            let v: Value = plain.get(format!("{base}/api/v1/release-key")).send().await?.json().await?;
            v["pem"].as_str().context("the server sent no release key")?.to_owned()
        }
    };
    let release_key = PublicKey::from_pem(release_key.trim())
        .map_err(|e| anyhow::anyhow!("`--release-key` is not a PEM public key: {e}"))?;
    let log_key = match &args.log_key {
        Some(k) => text_or_file(k)?,
        None => plain.get(format!("{base}/api/v1/log/key")).send().await?.text().await?,
    };
    let log_key =
        Verifier::parse(log_key.trim()).map_err(|e| anyhow::anyhow!("`--log-key` is not a verifier key: {e}"))?;

    let outcome = prove(&base, &http, &repo, &digest, &release_key, &log_key).await?;
    let stage = repo.stage().as_str();
    let verified = outcome.as_ref().ok();
    let result = match &outcome {
        Ok(v) => {
            json!({"verified": true, "repository": repo.as_str(), "stage": stage, "digest": digest.as_str(), "proof": v})
        }
        Err(reason) => json!({
            "verified": false,
            "repository": repo.as_str(),
            "stage": stage,
            "digest": digest.as_str(),
            "reason": reason,
        }),
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&result)?),
        Output::Text => match &verified {
            Some(v) => {
                println!("verified: {digest} was promoted into {repo} ({stage})");
                println!(
                    "  promotion {} from {}",
                    v["promotion"].as_str().unwrap_or("?"),
                    v["source"].as_str().unwrap_or("?")
                );
                println!("  approvals: {}", v["approvers"].as_str().unwrap_or("none"));
                println!("  release record signed by {}", release_key.keyid());
                println!("  log entry {} included in the checkpoint of size {}", v["log_index"], v["checkpoint_size"]);
                if v["break_glass"] == true {
                    println!("  WARNING: promoted by break-glass, past failing gates; see `airlock review list`");
                }
                if !args.offline {
                    println!("  note: the keys came from the server; pin them and use `--offline` for a real check");
                }
            }
            None => eprintln!("NOT verified: {}", result["reason"].as_str().unwrap_or("")),
        },
    }
    Ok(if verified.is_some() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_DENIED) })
}

/// Whether `digest` was promoted into `repo`: the first promotion whose proof holds, or why none
/// does. `http` must be allowed to pull `repo`.
pub async fn prove(
    base: &str,
    http: &reqwest::Client,
    repo: &RepoName,
    digest: &Digest,
    release_key: &PublicKey,
    log_key: &Verifier,
) -> anyhow::Result<Result<Value, String>> {
    let url = format!("{base}/api/v1/artifacts/{repo}/{digest}/promotions");
    let response = http.get(&url).send().await.with_context(|| format!("cannot reach `{url}`"))?;
    if !response.status().is_success() {
        bail!("`{url}` answered {}", response.status());
    }
    let history: Value = response.json().await.context("the promotions answer is not JSON")?;
    let log = LogClient::new(base)?;
    let mut failures = Vec::new();
    for p in history["promotions"].as_array().into_iter().flatten() {
        match check(p, repo, digest, release_key, log_key, &log).await {
            Ok(result) => return Ok(Ok(result)),
            Err(e) => failures.push(format!("{}: {e:#}", p["id"].as_str().unwrap_or("?"))),
        }
    }
    Ok(Err(if failures.is_empty() {
        format!("`{digest}` was never promoted into `{repo}`")
    } else {
        failures.join("; ")
    }))
}

/// Checks one promotion end to end.
async fn check(
    p: &Value,
    repo: &RepoName,
    digest: &Digest,
    release_key: &PublicKey,
    log_key: &Verifier,
    log: &LogClient,
) -> anyhow::Result<Value> {
    let decode = |field: &str| -> anyhow::Result<Vec<u8>> {
        let text = p[field].as_str().with_context(|| format!("`{field}` is missing"))?;
        STANDARD.decode(text).with_context(|| format!("`{field}` is not base64"))
    };
    let record = verify_record(&decode("record_envelope")?, release_key, digest, repo.stage().as_str())?;
    if record.target_repository != repo.as_str() {
        bail!("the release record promotes into `{}`, not `{repo}`", record.target_repository);
    }
    let summary = verify_statement(&decode("summary_envelope")?, release_key, digest, VSA_PREDICATE)?;
    if summary["verificationResult"] != "PASSED" && !record.break_glass {
        bail!("the verification summary does not say PASSED");
    }
    let index = record.log_index;
    let release = p["release_record"].as_str().context("`release_record` is missing")?;
    // The checkpointer signs shortly after each commit; wait for one that covers the entry.
    let started = std::time::Instant::now();
    let checkpoint = loop {
        let checkpoint = open_checkpoint(&log.checkpoint().await?, log_key, "the server's checkpoint")
            .map_err(|f| anyhow::anyhow!(f.reason))?;
        if index < checkpoint.size {
            break checkpoint;
        }
        if started.elapsed() > CHECKPOINT_WAIT {
            bail!("no signed checkpoint covers log entry {index} yet; try again in a minute");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let entries = log.entries(index, index.saturating_add(1), |_| {}).await?;
    let entry = entries.into_iter().next().with_context(|| format!("the log has no entry {index}"))?;
    commit_entry_matches(&entry.data, &record.promotion, release, digest)
        .map_err(|e| anyhow::anyhow!("log entry {index} {e}"))?;
    let proof = log.inclusion(index, checkpoint.size).await?;
    verify_inclusion(&leaf_hash(&entry.data), index, checkpoint.size, &proof, &checkpoint.root)
        .map_err(|e| anyhow::anyhow!("log entry {index} is not included in the signed checkpoint: {e}"))?;
    let approvers: Vec<&str> =
        record.predicate["approvals"].as_array().into_iter().flatten().filter_map(|a| a["approver"].as_str()).collect();
    Ok(json!({
        "promotion": record.promotion,
        "source": record.predicate["source"]["repository"],
        "log_index": index,
        "checkpoint_size": checkpoint.size,
        "release_record": release,
        "approvers": if approvers.is_empty() { "none".to_owned() } else { approvers.join(", ") },
        "policy_digest": record.predicate["policy"]["digest"],
        "break_glass": record.break_glass,
    }))
}
