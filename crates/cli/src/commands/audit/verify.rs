//! Verifying a log: recompute the root from the leaves, check it against a signed checkpoint,
//! and check consistency with a checkpoint saved earlier. Every failure names the index or the
//! sizes involved.

use airlock_tlog::{Checkpoint, CompactRange, Hash, Verifier, leaf_hash};
use serde::Serialize;

use super::client::{Entry, LogClient};

/// What a successful verification established.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub origin: String,
    pub size: u64,
    pub root: String,
    pub entries_checked: u64,
    /// The size of the saved checkpoint the log was shown consistent with.
    pub consistent_with: Option<u64>,
}

/// Why verification failed; the message names what to look at.
#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    pub reason: String,
    /// The first entry known to be wrong, when it can be named.
    pub first_bad_index: Option<u64>,
}

pub type Outcome = Result<Verified, Failed>;

fn fail(reason: impl Into<String>, first_bad_index: Option<u64>) -> Failed {
    Failed { reason: reason.into(), first_bad_index }
}

/// Opens a checkpoint note with the trusted key.
pub fn open_checkpoint(note: &str, key: &Verifier, what: &str) -> Result<Checkpoint, Failed> {
    Checkpoint::open(note.as_bytes(), key)
        .map_err(|e| fail(format!("{what} does not verify with the given key: {e}"), None))
}

/// Leaf hashes of `entries`, which must be exactly indices `0..size`.
fn leaf_hashes(entries: &[Entry], size: u64) -> Result<Vec<Hash>, Failed> {
    let mut hashes = Vec::with_capacity(entries.len());
    for (expected, entry) in (0u64..).zip(entries) {
        if entry.index != expected {
            return Err(fail(
                format!("entry {expected} is missing (the next entry is {})", entry.index),
                Some(expected),
            ));
        }
        hashes.push(leaf_hash(&entry.data));
    }
    let have = hashes.len() as u64;
    if have < size {
        return Err(fail(format!("the log has {have} entries but the checkpoint covers {size}"), Some(have)));
    }
    hashes.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    Ok(hashes)
}

fn root_of(hashes: &[Hash]) -> Hash {
    let mut range = CompactRange::new();
    for h in hashes {
        range.push(*h);
    }
    range.root()
}

/// Verifies fetched or exported entries against `checkpoint` and, if given, a saved one.
/// `consistency` fetches a consistency proof from the server (online mode only); offline, the
/// saved checkpoint is checked by recomputing its root from the same entries.
pub async fn verify(
    entries: &[Entry],
    checkpoint: &Checkpoint,
    saved: Option<&Checkpoint>,
    server: Option<&LogClient>,
) -> anyhow::Result<Outcome> {
    let hashes = match leaf_hashes(entries, checkpoint.size) {
        Ok(h) => h,
        Err(f) => return Ok(Err(f)),
    };
    if root_of(&hashes) != checkpoint.root {
        let first_bad = match server {
            Some(server) => first_bad_index(server, &hashes, checkpoint).await?,
            None => None,
        };
        let reason = match first_bad {
            Some(i) => {
                format!("entry {i} does not match the checkpoint of size {}: the log was altered", checkpoint.size)
            }
            None => format!("the entries do not reproduce the root of the checkpoint of size {}", checkpoint.size),
        };
        return Ok(Err(fail(reason, first_bad)));
    }
    let mut consistent_with = None;
    if let Some(saved) = saved {
        if saved.origin != checkpoint.origin {
            return Ok(Err(fail(
                format!("the saved checkpoint is for log `{}`, not `{}`", saved.origin, checkpoint.origin),
                None,
            )));
        }
        if saved.size > checkpoint.size {
            return Ok(Err(fail(
                format!(
                    "the log shrank: the saved checkpoint covers {} entries, the current one only {}; entries were removed or an older database was restored",
                    saved.size, checkpoint.size
                ),
                Some(checkpoint.size),
            )));
        }
        let prefix = hashes.get(..usize::try_from(saved.size).unwrap_or(usize::MAX)).unwrap_or(&hashes);
        if root_of(prefix) != saved.root {
            return Ok(Err(fail(
                format!(
                    "the log's first {} entries no longer reproduce the saved checkpoint: history was rewritten",
                    saved.size
                ),
                None,
            )));
        }
        if let Some(server) = server
            && saved.size > 0
            && saved.size < checkpoint.size
        {
            let proof = server.consistency(saved.size, checkpoint.size).await?;
            if let Err(e) =
                airlock_tlog::verify_consistency(saved.size, checkpoint.size, &saved.root, &checkpoint.root, &proof)
            {
                return Ok(Err(fail(
                    format!(
                        "the server's consistency proof from {} to {} does not verify: {e}",
                        saved.size, checkpoint.size
                    ),
                    None,
                )));
            }
        }
        consistent_with = Some(saved.size);
    }
    Ok(Ok(Verified {
        origin: checkpoint.origin.clone(),
        size: checkpoint.size,
        root: checkpoint.root.to_base64(),
        entries_checked: checkpoint.size,
        consistent_with,
    }))
}

/// Finds the first altered entry by bisection: for a prefix of `m` genuine entries, the root of
/// that prefix is consistent with the signed checkpoint; a prefix holding an altered entry is
/// not. O(log n) consistency proofs.
async fn first_bad_index(server: &LogClient, hashes: &[Hash], checkpoint: &Checkpoint) -> anyhow::Result<Option<u64>> {
    let consistent = |m: u64| {
        let prefix_root = root_of(hashes.get(..usize::try_from(m).unwrap_or(usize::MAX)).unwrap_or(hashes));
        async move {
            if m == checkpoint.size {
                return Ok::<bool, anyhow::Error>(prefix_root == checkpoint.root);
            }
            let proof = server.consistency(m, checkpoint.size).await?;
            Ok(airlock_tlog::verify_consistency(m, checkpoint.size, &prefix_root, &checkpoint.root, &proof).is_ok())
        }
    };
    // Invariant: prefixes of `good` entries are consistent, of `bad` are not.
    let (mut good, mut bad) = (0u64, checkpoint.size);
    if consistent(bad).await? {
        return Ok(None);
    }
    while bad.saturating_sub(good) > 1 {
        let mid = good + (bad - good) / 2;
        if consistent(mid).await? {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Ok(Some(bad.saturating_sub(1)))
}
