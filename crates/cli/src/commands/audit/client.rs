//! A client for the log's public read API (`/api/v1/log/*`). Nothing it returns is trusted:
//! every hash and signature is checked by the caller.

use airlock_api::v1::{ConsistencyProof, InclusionProof, LogEntries};
use airlock_tlog::Hash;
use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One fetched entry: its index and exact leaf bytes.
#[derive(Debug, Clone)]
pub struct Entry {
    pub index: u64,
    pub data: Vec<u8>,
    pub event: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct LogClient {
    base: String,
    http: reqwest::Client,
}

impl LogClient {
    pub fn new(server: &str) -> anyhow::Result<LogClient> {
        let base = server.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("server `{base}` is not a URL; pass it as `http://host:port`");
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(LogClient { base, http })
    }

    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("cannot reach `{url}`; is the server running?"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("`GET {url}` answered {status}: {}", body.chars().take(300).collect::<String>());
        }
        Ok(response)
    }

    /// The latest signed checkpoint, as the note's bytes.
    pub async fn checkpoint(&self) -> anyhow::Result<String> {
        Ok(self.get("/api/v1/log/checkpoint").await?.text().await?)
    }

    /// How many entries the log holds now (not yet covered by a checkpoint, perhaps).
    pub async fn size(&self) -> anyhow::Result<u64> {
        let page: LogEntries = self.get("/api/v1/log/entries?start=0&end=0").await?.json().await?;
        Ok(page.size)
    }

    /// Entries `[start, end)`, fetched page by page; stops early if the server has fewer.
    pub async fn entries(&self, start: u64, end: u64, mut progress: impl FnMut(u64)) -> anyhow::Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut next = start;
        while next < end {
            let page: LogEntries =
                self.get(&format!("/api/v1/log/entries?start={next}&end={end}")).await?.json().await?;
            if page.entries.is_empty() {
                break;
            }
            for e in page.entries {
                let data = STANDARD.decode(&e.leaf).with_context(|| format!("entry {} is not base64", e.index))?;
                out.push(Entry { index: e.index, data, event: e.event });
            }
            next = start.saturating_add(out.len() as u64);
            progress(next);
        }
        Ok(out)
    }

    pub async fn inclusion(&self, index: u64, size: u64) -> anyhow::Result<Vec<Hash>> {
        let proof: InclusionProof =
            self.get(&format!("/api/v1/log/proof/inclusion?index={index}&size={size}")).await?.json().await?;
        decode_hashes(&proof.hashes)
    }

    pub async fn consistency(&self, from: u64, to: u64) -> anyhow::Result<Vec<Hash>> {
        let proof: ConsistencyProof =
            self.get(&format!("/api/v1/log/proof/consistency?from={from}&to={to}")).await?.json().await?;
        decode_hashes(&proof.hashes)
    }
}

fn decode_hashes(hashes: &[String]) -> anyhow::Result<Vec<Hash>> {
    hashes
        .iter()
        .map(|h| Hash::from_base64(h).map_err(|e| anyhow::anyhow!("proof hash `{h}` is invalid: {e}")))
        .collect()
}
