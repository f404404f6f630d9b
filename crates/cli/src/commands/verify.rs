//! `airlock verify`: whether a digest was promoted into a stage, checked on the client from a
//! release bundle (`docs/release-bundle.md`): the release record and its summary must verify with
//! the release key, and the log entry they name must be the promotion's commit event, included
//! in a checkpoint signed by the log key.
//!
//! - `--bundle FILE` with `--release-key` and `--log-key`: no network and no credentials at all.
//! - `REF --offline`: the keys are pinned on the command line; the one thing fetched is the
//!   bundle (the referrer the engine attached, else the server's `release-bundle` endpoint),
//!   which proves itself with those keys.
//! - `REF`: as above, with the keys taken from the server (a convenience, not a check).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_api::v1::ReleaseKey;
use airlock_core::promotion::bundle::{BUNDLE_MAX_BYTES, VerifiedBundle, verify_bundle};
use airlock_dsse::PublicKey;
use airlock_model::{Digest, RepoName};
use airlock_tlog::Verifier;
use anyhow::{Context, bail};
use serde::Deserialize as _;
use serde_json::{Value, json};

use super::client::{Credentials, registry_client};
use super::promote::{EXIT_DENIED, split_reference};
use super::release::export::resolve;
use super::release::{from_endpoint, from_referrer};
use super::runtime;
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The artifact in the stage to check: `prod/app@sha256:<hex>` or `prod/app:1.4.2`. With
    /// `--bundle` it is optional and must name the digest.
    #[arg(required_unless_present = "bundle")]
    reference: Option<String>,
    /// The server.
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    /// Use only the keys given here: `--release-key` and `--log-key` are then required.
    #[arg(long)]
    offline: bool,
    /// Check this release bundle (`airlock release export`) with no network at all;
    /// `--release-key` and `--log-key` are then required.
    #[arg(long)]
    bundle: Option<PathBuf>,
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

fn release_key(text: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_pem(text.trim()).map_err(|e| anyhow::anyhow!("`--release-key` is not a PEM public key: {e}"))
}

fn log_key(text: &str) -> anyhow::Result<Verifier> {
    Verifier::parse(text.trim()).map_err(|e| anyhow::anyhow!("`--log-key` is not a verifier key: {e}"))
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.bundle {
        return offline(&args, path);
    }
    runtime()?.block_on(run(args))
}

/// `--bundle`: reads one file and two keys; touches no network and no credentials.
fn offline(args: &Args, path: &Path) -> anyhow::Result<ExitCode> {
    let (Some(release), Some(log)) = (&args.release_key, &args.log_key) else {
        bail!(
            "`--bundle` needs `--release-key` and `--log-key`: pinned copies of `GET /api/v1/release-key` and `GET /api/v1/log/key`"
        );
    };
    let release = release_key(&text_or_file(release)?)?;
    let log = log_key(&text_or_file(log)?)?;
    let size = std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?.len();
    if size > BUNDLE_MAX_BYTES as u64 {
        bail!("`{}` is larger than the {BUNDLE_MAX_BYTES} bytes a release bundle may have", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let expected = match &args.reference {
        None => None,
        Some(reference) => {
            let (repo, digest) = split_reference(reference)?;
            let repo = RepoName::parse(&repo).map_err(|e| anyhow::anyhow!("`{repo}`: {e}"))?;
            let digest = Digest::parse(&digest).map_err(|_| {
                anyhow::anyhow!(
                    "with `--bundle` name the artifact by digest, `{repo}@sha256:<hex>`: a tag needs the server"
                )
            })?;
            Some((repo, digest))
        }
    };
    let mut outcome = check(&bytes, &release, &log);
    if let (Ok(v), Some((repo, digest))) = (&outcome, &expected)
        && (&v.repository != repo || &v.digest != digest)
    {
        outcome = Err(format!("the bundle proves `{}@{}`, not `{repo}@{digest}`", v.repository, v.digest));
    }
    report(&args.output, outcome, &release, true, expected.as_ref().map(|(r, d)| (r, d)))
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.offline && (args.release_key.is_none() || args.log_key.is_none()) {
        bail!(
            "`--offline` needs `--release-key` and `--log-key`: pinned copies of `GET /api/v1/release-key` and `GET /api/v1/log/key`"
        );
    }
    let base = args.server.trim_end_matches('/').to_owned();
    let reference = args.reference.as_deref().context("name the artifact to check, `prod/app:1.4.2`")?;
    let (repo, reference) = split_reference(reference)?;
    let repo = RepoName::parse(&repo).map_err(|e| anyhow::anyhow!("`{repo}`: {e}"))?;
    let credentials = Credentials::from_env()?;
    let http = registry_client(&base, &credentials, &[format!("repository:{repo}:pull")]).await?;
    let digest = resolve(&base, &http, &repo, &reference).await?;

    let plain = reqwest::Client::new();
    let release = match &args.release_key {
        Some(k) => text_or_file(k)?,
        None => {
            let key: Option<ReleaseKey> =
                plain.get(format!("{base}/api/v1/release-key")).send().await?.json().await.ok();
            key.context("the server sent no release key")?.pem
        }
    };
    let release = release_key(&release)?;
    let log = match &args.log_key {
        Some(k) => text_or_file(k)?,
        None => plain.get(format!("{base}/api/v1/log/key")).send().await?.text().await?,
    };
    let log = log_key(&log)?;
    let outcome = prove_bundle(&base, &http, &repo, &digest, &release, &log).await?;
    let outcome = outcome.and_then(|v| {
        if v.repository == repo && v.digest == digest {
            Ok(v)
        } else {
            Err(format!("the bundle proves `{}@{}`, not `{repo}@{digest}`", v.repository, v.digest))
        }
    });
    report(&args.output, outcome, &release, args.offline, Some((&repo, &digest)))
}

/// Verifies bundle bytes; `Err` names the promotion (when readable) and the failing step.
fn check(bytes: &[u8], release: &PublicKey, log: &Verifier) -> Result<VerifiedBundle, String> {
    verify_bundle(bytes, release, log).map_err(|e| {
        let promotion =
            serde_json::from_slice::<NamedPromotion>(bytes).ok().map(|b| airlock_model::echo::echo(&b.promotion));
        match promotion {
            Some(p) => format!("release bundle of promotion `{p}`: {e}"),
            None => format!("release bundle: {e}"),
        }
    })
}

/// Fetches the bundle once (the attached referrer, else the server's endpoint) and verifies it.
async fn prove_bundle(
    base: &str,
    http: &reqwest::Client,
    repo: &RepoName,
    digest: &Digest,
    release: &PublicKey,
    log: &Verifier,
) -> anyhow::Result<Result<VerifiedBundle, String>> {
    let bytes = match from_referrer(base, http, repo, digest).await? {
        Some(bytes) => bytes,
        None => match from_endpoint(base, http, repo, digest).await? {
            Ok(bytes) => bytes,
            Err(message) => return Ok(Err(message)),
        },
    };
    Ok(check(&bytes, release, log))
}

/// The promotion a bundle names, read even from one that does not verify.
#[derive(serde::Deserialize)]
struct NamedPromotion {
    promotion: String,
}

/// What a person is shown of a release record's predicate (`docs/release-bundle.md`); members
/// the record lacks are left empty.
#[derive(Default, serde::Deserialize)]
pub struct RecordFacts {
    #[serde(default)]
    approvals: Vec<RecordApproval>,
    #[serde(default)]
    source: Option<RecordRepository>,
    #[serde(default)]
    policy: Option<RecordPolicy>,
}

#[derive(serde::Deserialize)]
struct RecordApproval {
    approver: Option<String>,
}

#[derive(serde::Deserialize)]
struct RecordRepository {
    repository: Option<String>,
}

#[derive(serde::Deserialize)]
struct RecordPolicy {
    digest: Option<String>,
}

impl RecordFacts {
    /// Reads the facts of `predicate`.
    pub fn of(predicate: &Value) -> RecordFacts {
        RecordFacts::deserialize(predicate).unwrap_or_default()
    }

    /// Who approved, in the record's order.
    pub fn approvers(&self) -> Vec<&str> {
        self.approvals.iter().filter_map(|a| a.approver.as_deref()).collect()
    }

    /// The repository promoted from.
    fn source(&self) -> Option<&str> {
        self.source.as_ref().and_then(|s| s.repository.as_deref())
    }
}

/// Who approved a verified bundle's promotion, `none` when nobody did.
fn approvers_text(facts: &RecordFacts) -> String {
    let approvers = facts.approvers();
    if approvers.is_empty() { "none".to_owned() } else { approvers.join(", ") }
}

/// What a verified bundle proves, as `--output json` shows it under `proof`.
fn proof_json(v: &VerifiedBundle) -> Value {
    let facts = RecordFacts::of(&v.record.predicate);
    json!({
        "promotion": v.record.promotion,
        "source": facts.source(),
        "log_index": v.record.log_index,
        "log_origin": v.log_origin,
        "checkpoint_size": v.checkpoint_size,
        "release_record": v.release_record.as_str(),
        "approvers": approvers_text(&facts),
        "policy_digest": facts.policy.as_ref().and_then(|p| p.digest.as_deref()),
        "break_glass": v.record.break_glass,
    })
}

fn report(
    output: &Output,
    outcome: Result<VerifiedBundle, String>,
    release: &PublicKey,
    pinned: bool,
    named: Option<(&RepoName, &Digest)>,
) -> anyhow::Result<ExitCode> {
    let (repo, digest) = match (&outcome, named) {
        (Ok(v), _) => (Some(v.repository.as_str()), Some(v.digest.as_str())),
        (Err(_), Some((r, d))) => (Some(r.as_str()), Some(d.as_str())),
        (Err(_), None) => (None, None),
    };
    let stage = repo.and_then(|r| RepoName::parse(r).ok()).map(|r| r.stage().as_str().to_owned());
    let result = match &outcome {
        Ok(v) => {
            json!({"verified": true, "repository": repo, "stage": stage, "digest": digest, "proof": proof_json(v)})
        }
        Err(reason) => {
            json!({"verified": false, "repository": repo, "stage": stage, "digest": digest, "reason": reason})
        }
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string(&result)?),
        Output::Text => match &outcome {
            Ok(v) => {
                let facts = RecordFacts::of(&v.record.predicate);
                println!("verified: {} was promoted into {} ({})", v.digest, v.repository, v.repository.stage());
                println!("  promotion {} from {}", v.record.promotion, facts.source().unwrap_or("?"));
                println!("  approvals: {}", approvers_text(&facts));
                println!("  release record signed by {}", release.keyid());
                println!("  log entry {} included in the checkpoint of size {}", v.record.log_index, v.checkpoint_size);
                if v.record.break_glass {
                    println!("  WARNING: promoted by break-glass, past failing gates; see `airlock review list`");
                }
                if !pinned {
                    println!("  note: the keys came from the server; pin them and use `--offline` for a real check");
                }
            }
            Err(reason) => eprintln!("NOT verified: {reason}"),
        },
    }
    Ok(if outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_DENIED) })
}
