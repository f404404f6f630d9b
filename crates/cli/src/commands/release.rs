//! `airlock release`: release bundles (`docs/release-bundle.md`), the one document that proves a
//! promotion to anyone holding the release key and the log key. `export` writes one to a file;
//! `airlock verify --bundle` checks it with no network. The fetches here are shared with
//! `airlock verify REF`.

pub mod export;

use std::process::ExitCode;
use std::time::Duration;

use airlock_api::oci::ImageIndex;
use airlock_api::v1::ErrorBody;
use airlock_core::promotion::bundle::{BUNDLE_MAX_BYTES, RELEASE_BUNDLE_MEDIA_TYPE, REPOSITORY_ANNOTATION};
use airlock_model::{Digest, RepoName};
use anyhow::{Context, bail};
use clap::Subcommand;

/// How long to wait for a signed checkpoint covering a fresh commit.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the release bundle of a promoted artifact to a file, for `airlock verify --bundle`.
    Export(export::Args),
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Export(a) => export::exec(a),
    }
}

/// Reads a response body of at most [`BUNDLE_MAX_BYTES`].
async fn bounded(mut response: reqwest::Response, url: &str) -> anyhow::Result<Vec<u8>> {
    if response.content_length().is_some_and(|n| n > BUNDLE_MAX_BYTES as u64) {
        bail!("`{url}` sent more than the {BUNDLE_MAX_BYTES} bytes a release bundle may have");
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.with_context(|| format!("reading `{url}` failed"))? {
        if body.len().saturating_add(chunk.len()) > BUNDLE_MAX_BYTES {
            bail!("`{url}` sent more than the {BUNDLE_MAX_BYTES} bytes a release bundle may have");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The bundle the server builds against its latest checkpoint, in one request; `Err` with the
/// server's message when the digest was never promoted into `repo`. Waits for a checkpoint
/// covering a fresh commit.
pub async fn from_endpoint(
    base: &str,
    http: &reqwest::Client,
    repo: &RepoName,
    digest: &Digest,
) -> anyhow::Result<Result<Vec<u8>, String>> {
    let url = format!("{base}/api/v1/artifacts/{repo}/{digest}/release-bundle");
    let started = std::time::Instant::now();
    loop {
        let response = http.get(&url).send().await.with_context(|| format!("cannot reach `{url}`"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Ok(bounded(response, &url).await?));
        }
        let body = response.bytes().await.unwrap_or_default();
        let message =
            serde_json::from_slice::<ErrorBody>(&body).map_or_else(|_| "no detail".to_owned(), |b| b.error.message);
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Err(message));
        }
        if status == reqwest::StatusCode::CONFLICT && started.elapsed() < CHECKPOINT_WAIT {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        bail!("`{url}` answered {status}: {message}");
    }
}

/// The newest release bundle attached as a referrer of `digest` in `repo` for a promotion into
/// `repo` (bundles of earlier stages travel with the artifact too); `None` when there is none.
pub async fn from_referrer(
    base: &str,
    http: &reqwest::Client,
    repo: &RepoName,
    digest: &Digest,
) -> anyhow::Result<Option<Vec<u8>>> {
    let url = format!("{base}/v2/{repo}/referrers/{digest}");
    let response = http
        .get(&url)
        .query(&[("artifactType", RELEASE_BUNDLE_MEDIA_TYPE)])
        .send()
        .await
        .with_context(|| format!("cannot reach `{url}`"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        bail!("`{url}` answered {}", response.status());
    }
    let index: ImageIndex =
        serde_json::from_slice(&bounded(response, &url).await?).context("the referrers are not an image index")?;
    let newest = index
        .manifests
        .iter()
        .filter(|m| m.annotations.get(REPOSITORY_ANNOTATION).map(String::as_str) == Some(repo.as_str()))
        .map(|m| m.digest.as_str())
        .next_back();
    let Some(manifest) = newest else { return Ok(None) };
    let url = format!("{base}/v2/{repo}/manifests/{manifest}");
    let response = http
        .get(&url)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .with_context(|| format!("cannot reach `{url}`"))?;
    if !response.status().is_success() {
        bail!("`{url}` answered {}", response.status());
    }
    let body: Layers = serde_json::from_slice(&bounded(response, &url).await?).context("the manifest is not JSON")?;
    let layer = body.layers.first().map(|l| l.digest.as_str()).context("the bundle referrer has no layer")?;
    let layer = Digest::parse(layer).map_err(|e| anyhow::anyhow!("the bundle referrer's layer: {e}"))?;
    let url = format!("{base}/v2/{repo}/blobs/{layer}");
    let response = http.get(&url).send().await.with_context(|| format!("cannot reach `{url}`"))?;
    if !response.status().is_success() {
        bail!("`{url}` answered {}", response.status());
    }
    let bytes = bounded(response, &url).await?;
    if Digest::of(&bytes) != layer {
        bail!("`{url}` sent bytes that do not hash to `{layer}`");
    }
    Ok(Some(bytes))
}

/// The layers of an image manifest, the part of it a bundle referrer is read for.
#[derive(serde::Deserialize)]
struct Layers {
    #[serde(default)]
    layers: Vec<Layer>,
}

/// A layer's descriptor: its digest.
#[derive(serde::Deserialize)]
struct Layer {
    digest: String,
}
