//! `/api/v1/trust/root` and what an artifact holds: its attestations re-verified, its policy
//! input and a dry-run decision.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /api/v1/trust/root`: the version now in force. The request body is the signed trust
/// root document itself, read as bytes (its signatures are checked over them), and
/// `GET /api/v1/trust/root` answers with those bytes exactly as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrustRootApplied {
    pub version: u64,
}

/// A trust root document: `{"signed": {...}, "signatures": [...]}`, `signed` in RFC 8785
/// canonical form. Opaque here: only its exact bytes count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct TrustRootDocument(pub serde_json::Value);

/// `GET /api/v1/artifacts/{repo}/{digest}/evidence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    pub repository: String,
    pub digest: String,
    /// The root the `current` verdicts were computed against; absent when none is configured.
    pub trust_root_version: Option<u64>,
    pub attestations: Vec<EvidenceItem>,
}

/// One attestation about an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceItem {
    /// The referrer manifest carrying the DSSE envelope.
    pub referrer: String,
    pub predicate_type: String,
    /// `trusted` or `untrusted`, against the root in force now.
    pub status: String,
    pub current: VerdictDto,
    pub at_ingest: VerdictDto,
    pub created_at: String,
}

/// A verification verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerdictDto {
    pub trusted: bool,
    pub signers: Vec<String>,
    pub reasons: Vec<String>,
    pub root_version: u64,
}

/// `GET /api/v1/artifacts/{repo}/{digest}/policy-input?to=STAGE`: the document policy is
/// evaluated over (`docs/policy-input.md`), with the evidence normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct PolicyInput(pub serde_json::Value);

/// `POST /api/v1/artifacts/{repo}/{digest}/evaluate?to=STAGE`: a dry-run decision, RFC 8785
/// canonical JSON (`allow`, `violations`, `warnings`, `errors`, the bundle and input digests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct PolicyDecision(pub serde_json::Value);
