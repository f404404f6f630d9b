//! Attestations and the trust root: verifying DSSE envelopes pushed as OCI referrers at ingest,
//! listing an artifact's evidence re-verified against the current root, and changing the root
//! only under the rules of `airlock-trust`.

use std::sync::{Arc, RwLock};

use airlock_dsse::{DSSE_MEDIA_TYPE, Envelope, EnvelopeLimits, IN_TOTO_PAYLOAD_TYPE, StatementLimits};
use airlock_model::manifest::Manifest;
use airlock_model::{Digest, RepoName, Timestamp};
use airlock_trust::{RootDocument, RootLimits, TrustedRoot};
use bytes::Bytes;
use futures::StreamExt;

use crate::audit::{Actor, Event, EventKind, Outcome, Subject};
use crate::ports::{NewAttestation, StoredRoot, Verdict};
use crate::registry::{Registry, RegistryError};

/// The trust root in force, shared by every request; replaced only through [`Registry::update_root`].
#[derive(Debug, Default)]
pub struct TrustState(RwLock<Option<InForce>>);

/// A root in force and the digest of its document as stored: what signature checks kept for
/// later decisions are keyed by ([`crate::verified`]), so no two root contents share one.
#[derive(Debug, Clone)]
pub struct InForce {
    pub root: Arc<TrustedRoot>,
    pub digest: Digest,
}

impl TrustState {
    pub fn current(&self) -> Option<Arc<TrustedRoot>> {
        self.in_force().map(|f| f.root)
    }

    /// The root in force with its content digest.
    pub fn in_force(&self) -> Option<InForce> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, root: TrustedRoot) {
        let digest = Digest::of(root.document().raw());
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(InForce { root: Arc::new(root), digest });
    }
}

/// One attestation about an artifact, as the evidence API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceItem {
    pub referrer: Digest,
    pub predicate_type: String,
    /// The verdict against the root in force now (revocations since ingest show here).
    pub current: Verdict,
    /// The verdict recorded at ingest.
    pub at_ingest: Verdict,
    pub created_at: Timestamp,
}

/// Whether a manifest carries a DSSE attestation: the in-toto artifact type and one DSSE layer.
fn dsse_layer(manifest: &Manifest) -> Option<&airlock_model::manifest::Descriptor> {
    let in_toto = manifest.artifact_type.as_ref().is_some_and(|t| t.essence() == IN_TOTO_PAYLOAD_TYPE);
    let dsse_layers: Vec<_> = manifest.entries.iter().filter(|d| d.media_type.essence() == DSSE_MEDIA_TYPE).collect();
    match (in_toto, dsse_layers.as_slice()) {
        (true, [layer]) => Some(layer),
        _ => None,
    }
}

fn verdict_of(
    root: Option<&TrustedRoot>,
    envelope: &Envelope,
    predicate_type: &str,
    repo: &RepoName,
    now: Timestamp,
) -> Verdict {
    match root {
        None => Verdict {
            trusted: false,
            signers: Vec::new(),
            reasons: vec!["no trust root is configured; create one with `airlock trust init`".to_owned()],
            root_version: 0,
        },
        Some(root) => {
            let evaluation = root.evaluate(envelope, predicate_type, repo, now);
            Verdict {
                trusted: evaluation.trusted,
                signers: evaluation.signers,
                reasons: evaluation.reasons.iter().map(ToString::to_string).collect(),
                root_version: root.version(),
            }
        }
    }
}

/// Parses an attestation's envelope, checks its statement names `subject` and nothing else,
/// and verifies its signatures against `root`.
fn check_envelope(
    bytes: Bytes,
    limits: &EnvelopeLimits,
    subject: Digest,
    repo: &RepoName,
    now: Timestamp,
    root: Option<&TrustedRoot>,
) -> Result<NewAttestation, RegistryError> {
    let envelope =
        Envelope::parse(&bytes, limits).map_err(|e| RegistryError::AttestationInvalid { reason: e.to_string() })?;
    let statement = envelope
        .in_toto_statement(&StatementLimits::default())
        .map_err(|e| RegistryError::AttestationInvalid { reason: e.to_string() })?;
    // Every subject of the statement must be the artifact the referrer points at.
    let expected = subject.hex();
    let named: Vec<&str> = statement.sha256_subjects().collect();
    if statement.subjects.is_empty() || named.len() != statement.subjects.len() || named.iter().any(|h| *h != expected)
    {
        return Err(RegistryError::AttestationSubjectMismatch {
            subject,
            statement: named.iter().map(|h| format!("sha256:{h}")).collect::<Vec<_>>().join(", "),
        });
    }
    let verdict = verdict_of(root, &envelope, &statement.predicate_type, repo, now);
    Ok(NewAttestation { subject, predicate_type: statement.predicate_type.clone(), envelope: bytes, verdict })
}

impl Registry {
    /// The attestation a manifest carries, verified: `None` for other manifests. An envelope that
    /// does not parse, or whose statement names another subject, refuses the push.
    pub(crate) async fn verify_attestation(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
    ) -> Result<Option<NewAttestation>, RegistryError> {
        let Some(layer) = dsse_layer(manifest) else { return Ok(None) };
        let subject = manifest.subject.as_ref().ok_or_else(|| RegistryError::AttestationInvalid {
            reason: "an attestation manifest needs a `subject` naming the artifact it is about".to_owned(),
        })?;
        // The artifact's attestations are bounded in count and bytes before this one is read: an
        // unverifiable flood must not grow what every promotion of the artifact re-verifies.
        let existing = self.store().attestations(repo, &subject.digest).await?;
        let count = u64::try_from(existing.len()).unwrap_or(u64::MAX);
        let max = self.limits().attestations_per_artifact;
        if count >= u64::from(max) {
            return Err(RegistryError::TooManyAttestations {
                repo: repo.clone(),
                subject: subject.digest.clone(),
                count,
                max,
            });
        }
        let limits = EnvelopeLimits::default();
        let bytes = self.read_small_blob(repo, &layer.digest, limits.max_bytes).await?;
        let stored = existing.iter().fold(0u64, |n, a| n.saturating_add(a.envelope.len() as u64));
        let total = stored.saturating_add(bytes.len() as u64);
        let max = self.limits().attestation_bytes_per_artifact;
        if total > max {
            return Err(RegistryError::AttestationsTooLarge {
                repo: repo.clone(),
                subject: subject.digest.clone(),
                total,
                max,
            });
        }
        // Parsing and signature checks are CPU work: off the async workers.
        let (subject, repo, now, root) =
            (subject.digest.clone(), repo.clone(), self.clock().now(), self.trust().current());
        self.offload(move || check_envelope(bytes, &limits, subject, &repo, now, root.as_deref())).await?.map(Some)
    }

    /// A blob of at most `max` bytes from `repo`, read whole.
    async fn read_small_blob(&self, repo: &RepoName, digest: &Digest, max: usize) -> Result<Bytes, RegistryError> {
        let (record, _, body) = self.read_blob(repo, digest, None).await.map_err(|e| match e {
            RegistryError::BlobUnknown { repo, digest } => RegistryError::ManifestBlobUnknown { repo, digest },
            other => other,
        })?;
        if record.size > max as u64 {
            return Err(RegistryError::AttestationInvalid {
                reason: format!("the envelope blob is {} bytes; the limit is {max}", record.size),
            });
        }
        match body {
            crate::registry::BlobBody::Inline(bytes) => Ok(bytes),
            crate::registry::BlobBody::Stream(mut stream) => {
                let mut out = bytes::BytesMut::new();
                while let Some(chunk) = stream.next().await {
                    out.extend_from_slice(&chunk.map_err(|e| {
                        RegistryError::Blob(crate::ports::BlobError::Io { operation: "read envelope", source: e })
                    })?);
                }
                Ok(out.freeze())
            }
        }
    }

    /// The artifact's attestations, each re-verified against the root in force now.
    pub async fn evidence(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<EvidenceItem>, RegistryError> {
        self.stage_of(repo)?;
        let records = self.store().attestations(repo, subject).await?;
        let root = self.trust().current();
        let now = self.clock().now();
        Ok(records
            .into_iter()
            .map(|record| {
                let current = match Envelope::parse(&record.envelope, &EnvelopeLimits::default()) {
                    Ok(envelope) => verdict_of(root.as_deref(), &envelope, &record.predicate_type, repo, now),
                    Err(e) => Verdict {
                        trusted: false,
                        signers: Vec::new(),
                        reasons: vec![format!("stored envelope no longer parses: {e}")],
                        root_version: root.as_ref().map_or(0, |r| r.version()),
                    },
                };
                EvidenceItem {
                    referrer: record.manifest,
                    predicate_type: record.predicate_type,
                    current,
                    at_ingest: record.verdict,
                    created_at: record.created_at,
                }
            })
            .collect())
    }

    /// Loads the newest stored root at start; an invalid one is kept out and attestations are
    /// untrusted until a valid root is applied. An expired one stays in force: every attestation
    /// is untrusted with the reason that it expired, and the next version must follow it (were it
    /// dropped, any self-signed root could be applied as a first one).
    pub async fn load_trust_root(&self) -> Result<Option<u64>, RegistryError> {
        let Some(stored) = self.store().latest_root().await? else { return Ok(None) };
        let document = RootDocument::parse(&stored.document, &RootLimits::default())
            .map_err(|e| RegistryError::TrustRootInvalid { reason: e.to_string() })?;
        // Stored roots passed their checks when applied; only their own signatures are re-checked.
        let root =
            TrustedRoot::reload(document).map_err(|e| RegistryError::TrustRootInvalid { reason: e.to_string() })?;
        if let Err(e) = root.check_fresh(self.clock().now()) {
            tracing::error!(error = %e, "the trust root in force has expired; every attestation is untrusted");
        }
        let version = root.version();
        self.trust().set(root);
        Ok(Some(version))
    }

    /// Applies a trust root document: the first one must be self-signed by a threshold of its
    /// root keys; later ones must follow the current root under the TUF rules. Refusals are
    /// logged too.
    pub async fn update_root(&self, actor: &Actor, document: Bytes) -> Result<u64, RegistryError> {
        if let Some(reason) = self.writes_refused() {
            return Err(RegistryError::WritesRefused { reason: reason.to_owned() });
        }
        let now = self.clock().now();
        let current = self.trust().current();
        let result = RootDocument::parse(&document, &RootLimits::default()).and_then(|doc| match &current {
            None => TrustedRoot::bootstrap(doc, now),
            Some(current) => current.update(doc, now),
        });
        let root = match result {
            Ok(root) => root,
            Err(e) => {
                let reason = e.to_string();
                let mut event = Event::allowed(EventKind::TrustRootRefused, actor, now, Subject::default())
                    .with_detail(
                        "current_version",
                        serde_json::Value::from(current.as_ref().map_or(0, |r| r.version())),
                    );
                event.outcome = Outcome::Denied { reasons: vec![reason.clone()] };
                if let Err(e) = self.log_refusal(&event).await {
                    tracing::error!(error = %e, "cannot log a refused trust root");
                }
                return Err(RegistryError::TrustRootInvalid { reason });
            }
        };
        let version = root.version();
        let kind = if current.is_none() { EventKind::TrustRootBootstrap } else { EventKind::TrustRootUpdate };
        let event = Event::allowed(kind, actor, now, Subject::default())
            .with_detail("version", serde_json::Value::from(version))
            .with_detail("digest", serde_json::Value::from(Digest::of(&document).as_str()));
        let stored = self.store().put_root(&StoredRoot { version, document }, &event, now).await?;
        if !stored {
            return Err(RegistryError::TrustRootInvalid {
                reason: format!("trust root version {version} already exists"),
            });
        }
        self.notify_log();
        self.trust().set(root);
        Ok(version)
    }
}
