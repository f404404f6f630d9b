//! The scrubber: re-hashes stored blobs and quarantines any whose bytes no longer match their
//! digest, so a corrupt blob is answered with 404, never with wrong bytes.

use std::time::{Duration, Instant};

use airlock_core::ports::{BlobError, BlobStore, Clock, MetadataStore, StoreError};
use airlock_model::{Digest, Sha256Hasher};

use crate::metrics::Metrics;

/// Blobs fetched from the store per page.
const PAGE: u32 = 256;

/// What a scrub pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    pub checked: u64,
    pub bytes: u64,
    pub quarantined: Vec<Digest>,
}

/// Why a scrub pass stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// One pass over every stored blob. `rate` caps the bytes read per second (`None`: as fast as
/// the disk allows). `progress` is called after each blob with the running report.
pub async fn scrub(
    store: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    clock: &dyn Clock,
    metrics: &Metrics,
    rate: Option<u64>,
    mut progress: impl FnMut(&ScrubReport),
) -> Result<ScrubReport, ScrubError> {
    let started = Instant::now();
    let mut report = ScrubReport::default();
    let mut after: Option<Digest> = None;
    loop {
        let page = store.blobs_after(after.as_ref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.digest.clone());
        for record in page {
            let actual = match &record.inline {
                Some(bytes) => {
                    let mut hasher = Sha256Hasher::new();
                    hasher.update(bytes);
                    Some(hasher.finish())
                }
                None => match blobs.rehash(&record.digest).await {
                    Ok(d) => Some(d),
                    Err(BlobError::NotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                },
            };
            if actual.as_ref() != Some(&record.digest) {
                tracing::error!(
                    digest = %record.digest,
                    actual = actual.as_ref().map_or_else(|| "missing".to_owned(), ToString::to_string),
                    "blob failed its scrub; quarantined and no longer served"
                );
                blobs.quarantine(&record.digest).await?;
                store.quarantine_blob(&record.digest, clock.now()).await?;
                metrics.quarantined();
                report.quarantined.push(record.digest.clone());
            }
            report.checked = report.checked.saturating_add(1);
            report.bytes = report.bytes.saturating_add(record.size);
            progress(&report);
            if let Some(rate) = rate.filter(|r| *r > 0) {
                // Sleep until the average rate is back under the cap.
                let due = Duration::from_secs_f64(report.bytes as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    Ok(report)
}
