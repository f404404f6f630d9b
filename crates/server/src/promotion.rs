//! The promotion engine's wiring: the release key (created at first start, like the log key)
//! and the engine over the policy bundles the server loaded (`crate::policy`).

use std::path::Path;
use std::sync::Arc;

use airlock_core::Registry;
use airlock_core::identity::person::PersonRule;
use airlock_core::promotion::policies::PolicySet;
use airlock_core::promotion::{Promoter, PromoterConfig, PromoterPorts};
use airlock_dsse::{Algorithm, KeyFileError, PrivateKey};

/// Where the release key lives under the data directory.
pub const RELEASE_KEY_FILE: &str = "keys/release.key";

/// Why the promotion engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum PromotionStartError {
    #[error(
        "cannot read release key `{path}`: {source}; restore it from backup, or delete it to sign new records with a new key"
    )]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write new release key `{path}`: {source}; check the data directory's permissions")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("release key `{path}` is not a PKCS#8 private key: {reason}")]
    Parse { path: String, reason: String },
    #[error("cannot load policy bundle `{path}` named by stage `{stage}`: {reason}; fix the stage's `policy`")]
    Bundle { stage: String, path: String, reason: String },
}

fn read_or_create_key(path: &Path) -> Result<PrivateKey, PromotionStartError> {
    let display = path.display().to_string();
    match airlock_dsse::read_private_key(path) {
        Ok(key) => Ok(key),
        Err(e) if e.is_not_found() => {
            let key = PrivateKey::generate(Algorithm::Ed25519)
                .map_err(|e| PromotionStartError::Parse { path: display.clone(), reason: e.to_string() })?;
            let pem = key
                .to_pkcs8_pem()
                .map_err(|e| PromotionStartError::Parse { path: display.clone(), reason: e.to_string() })?;
            crate::log::write_private(path, &pem)
                .map_err(|source| PromotionStartError::Write { path: display, source })?;
            Ok(key)
        }
        Err(KeyFileError::Read { source, .. }) => Err(PromotionStartError::Read { path: display, source }),
        Err(KeyFileError::NotPrivate { source, .. }) => {
            Err(PromotionStartError::Parse { path: display, reason: source.to_string() })
        }
        Err(e) => Err(PromotionStartError::Parse { path: display, reason: e.to_string() }),
    }
}

/// The engine over `registry`, evaluating the bundles of `policies`, comparing approvers as
/// `persons` says.
pub fn open(
    registry: Registry,
    policies: Arc<PolicySet>,
    data_dir: &Path,
    log_origin: &str,
    public_url: &str,
    persons: PersonRule,
) -> Result<Promoter, PromotionStartError> {
    let release_key = read_or_create_key(&data_dir.join(RELEASE_KEY_FILE))?;
    let ports = PromoterPorts::of(registry.store(), registry.clock().clone());
    Ok(Promoter::new(
        registry,
        ports,
        PromoterConfig {
            policies,
            release_key,
            log_origin: log_origin.to_owned(),
            verifier_id: public_url.trim_end_matches('/').to_owned(),
            persons,
        },
    ))
}

/// Attaches release bundles after each signed checkpoint, for the commits it newly covers.
#[derive(Debug, Clone)]
pub struct BundleAttacher {
    promoter: Promoter,
    /// The log size up to which commits were looked at; 0 at start, so the first checkpoint
    /// after a restart also catches commits a crash left without their bundle.
    scanned: Arc<std::sync::atomic::AtomicU64>,
}

impl BundleAttacher {
    pub fn new(promoter: Promoter) -> BundleAttacher {
        BundleAttacher { promoter, scanned: Arc::default() }
    }

    /// Called with each newly signed checkpoint.
    pub async fn signed(&self, checkpoint: &airlock_core::ports::StoredCheckpoint) {
        use std::sync::atomic::Ordering;
        let from = self.scanned.load(Ordering::Acquire);
        match self.promoter.attach_release_bundles(&checkpoint.note, from).await {
            Ok(size) => {
                self.scanned.fetch_max(size, Ordering::AcqRel);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot attach release bundles; `GET .../release-bundle` still serves them");
            }
        }
    }
}
