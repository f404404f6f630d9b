//! `airlock attest REF`: build an in-toto Statement about an artifact, sign it into a DSSE
//! envelope, and push it as an OCI referrer, which the registry verifies at ingest.

use std::path::PathBuf;
use std::process::ExitCode;

use airlock_api::v1::{ErrorBody, Evidence, EvidenceItem};
use airlock_dsse::{DSSE_MEDIA_TYPE, Envelope, IN_TOTO_PAYLOAD_TYPE, PrivateKey, Statement, StatementSubject};
use airlock_model::{Digest, RepoName};
use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::runtime;
use crate::Output;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The artifact, as `<repository>@sha256:<hex>` (for example `dev/payments/api@sha256:…`).
    reference: String,
    /// The predicate type, for example `https://slsa.dev/provenance/v1`.
    #[arg(long)]
    predicate_type: String,
    /// A JSON file holding the predicate.
    #[arg(long)]
    predicate: PathBuf,
    /// The signer's private key (PKCS#8 PEM, from `airlock key generate`).
    #[arg(long)]
    key: PathBuf,
    /// The server. Credentials come from `AIRLOCK_USERNAME` and `AIRLOCK_PASSWORD` (a service
    /// account and its API key, or a user and password) and need `push` on the repository.
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// Splits `repo@sha256:…`.
pub fn parse_reference(reference: &str) -> anyhow::Result<(RepoName, Digest)> {
    let Some((repo, digest)) = reference.split_once('@') else {
        bail!("`{reference}` is not `<repository>@sha256:<hex>`; attest an artifact by digest, never by tag");
    };
    let repo = RepoName::parse(repo).map_err(|e| anyhow::anyhow!("{e}"))?;
    let digest = Digest::parse(digest).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((repo, digest))
}

struct Registry {
    base: String,
    http: reqwest::Client,
}

impl Registry {
    async fn push_blob(&self, repo: &RepoName, bytes: &[u8]) -> anyhow::Result<Digest> {
        let digest = Digest::of(bytes);
        let url = format!("{}/v2/{repo}/blobs/uploads/?digest={digest}", self.base);
        let response =
            self.http.post(&url).body(bytes.to_vec()).send().await.with_context(|| format!("cannot reach `{url}`"))?;
        check(response, &url).await?;
        Ok(digest)
    }
}

async fn check(response: reqwest::Response, url: &str) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    let message = super::client::oci_error(&body)
        .or_else(|| serde_json::from_slice::<ErrorBody>(&body).ok().map(|b| b.error.message))
        .unwrap_or_else(|| "no detail".to_owned());
    bail!("`{url}` answered {status}: {message}")
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (repo, subject) = parse_reference(&args.reference)?;
    let pem =
        std::fs::read_to_string(&args.key).with_context(|| format!("cannot read key `{}`", args.key.display()))?;
    let key = PrivateKey::from_pkcs8_pem(&pem)
        .map_err(|e| anyhow::anyhow!("`{}` is not a private key: {e}", args.key.display()))?;
    let predicate: Value = serde_json::from_slice(
        &std::fs::read(&args.predicate)
            .with_context(|| format!("cannot read predicate `{}`", args.predicate.display()))?,
    )
    .with_context(|| format!("predicate `{}` is not JSON", args.predicate.display()))?;
    let show = args.output == Output::Text;
    let progress = |step: &str| {
        if show {
            eprintln!("{step}");
        }
    };
    let credentials = super::client::Credentials::from_env()?;
    let (referrer, item) =
        attest(&args.server, &credentials, &repo, &subject, &args.predicate_type, &predicate, &key, progress).await?;
    match args.output {
        Output::Json => {
            println!("{}", json!({"referrer": referrer.as_str(), "subject": subject.as_str(), "evidence": item}))
        }
        Output::Text => {
            println!("attested {repo}@{subject}: referrer {referrer}");
            match &item {
                Some(item) if item.status == "trusted" => {
                    println!("trusted: signed by {}", serde_json::to_string(&item.current.signers)?)
                }
                Some(item) => println!("NOT trusted: {}", serde_json::to_string(&item.current.reasons)?),
                None => println!("the registry reported no verdict"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Signs a statement about `repo@subject` and pushes it as a referrer. Returns the referrer's
/// digest and the registry's evidence entry for it (its verdict), if the registry reported one.
#[allow(clippy::too_many_arguments)]
pub async fn attest(
    server: &str,
    credentials: &super::client::Credentials,
    repo: &RepoName,
    subject: &Digest,
    predicate_type: &str,
    predicate: &Value,
    key: &PrivateKey,
    progress: impl Fn(&str),
) -> anyhow::Result<(Digest, Option<EvidenceItem>)> {
    let scope = format!("repository:{repo}:pull,push");
    let http = super::client::registry_client(server, credentials, &[scope]).await?;
    let registry = Registry { base: server.trim_end_matches('/').to_owned(), http };

    progress(&format!("[1/4] resolving {repo}@{subject}"));
    let url = format!("{}/v2/{repo}/manifests/{subject}", registry.base);
    let head = registry
        .http
        .head(&url)
        .header("Accept", MANIFEST_ACCEPT)
        .send()
        .await
        .with_context(|| format!("cannot reach `{url}`"))?;
    if !head.status().is_success() {
        bail!("artifact `{repo}@{subject}` is not in the registry ({}); push it first", head.status());
    }
    let media_type =
        head.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or(OCI_MANIFEST).to_owned();
    let size: u64 =
        head.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);

    progress(&format!("[2/4] signing a {predicate_type} statement with key {}", key.public_key().keyid()));
    let mut digests = std::collections::BTreeMap::new();
    digests.insert("sha256".to_owned(), subject.hex().to_owned());
    let statement =
        Statement::new(vec![StatementSubject { name: repo.to_string(), digest: digests }], predicate_type, predicate);
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_json(), &[key])
        .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
    let envelope_bytes = envelope.to_json();

    progress("[3/4] pushing the envelope");
    let config = registry.push_blob(repo, b"{}").await?;
    let layer = registry.push_blob(repo, &envelope_bytes).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": IN_TOTO_PAYLOAD_TYPE,
        "config": {"mediaType": OCI_EMPTY, "digest": config.as_str(), "size": 2},
        "layers": [{"mediaType": DSSE_MEDIA_TYPE, "digest": layer.as_str(), "size": envelope_bytes.len()}],
        "subject": {"mediaType": media_type, "digest": subject.as_str(), "size": size},
        "annotations": {"dev.airlock.predicate-type": predicate_type},
    });
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let referrer = Digest::of(&manifest_bytes);

    progress("[4/4] pushing the referrer manifest");
    let url = format!("{}/v2/{repo}/manifests/{referrer}", registry.base);
    let response = registry
        .http
        .put(&url)
        .header("Content-Type", OCI_MANIFEST)
        .body(manifest_bytes)
        .send()
        .await
        .with_context(|| format!("cannot reach `{url}`"))?;
    check(response, &url).await?;

    // The registry's verdict at ingest, from the evidence API.
    let url = format!("{}/api/v1/artifacts/{repo}/{subject}/evidence", registry.base);
    let evidence: Option<Evidence> = registry.http.get(&url).send().await?.json().await.ok();
    let item = evidence.and_then(|e| e.attestations.into_iter().find(|i| i.referrer == referrer.as_str()));
    Ok((referrer, item))
}
