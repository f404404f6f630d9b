//! `/api/v1` bodies.

use serde::{Deserialize, Serialize};

/// `{"error":{...}}`, the body of every `/api/v1` error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// What went wrong, what to do about it, and where it is documented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// `GET /api/v1/system`: what this server is and how it is set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub version: String,
    pub stages: Vec<StageInfo>,
}

/// One configured stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInfo {
    pub name: String,
    pub pushable: bool,
}

/// `GET /api/v1/log/entries`: a page of log entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntries {
    /// Entries in the log when the page was read.
    pub size: u64,
    pub entries: Vec<LogEntry>,
}

/// One log entry: the exact leaf bytes (base64) and, for reading, the event they hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub index: u64,
    /// Standard base64 of the leaf bytes; the leaf hash is SHA-256(0x00 || bytes).
    pub leaf: String,
    pub event: serde_json::Value,
}

/// `GET /api/v1/log/proof/inclusion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    /// Base64 node hashes, bottom-up, as RFC 9162 orders them.
    pub hashes: Vec<String>,
}

/// `GET /api/v1/log/proof/consistency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub hashes: Vec<String>,
}

/// `GET /api/v1/artifacts/{repo}/{digest}/evidence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub repository: String,
    pub digest: String,
    /// The root the `current` verdicts were computed against; absent when none is configured.
    pub trust_root_version: Option<u64>,
    pub attestations: Vec<EvidenceItem>,
}

/// One attestation about an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictDto {
    pub trusted: bool,
    pub signers: Vec<String>,
    pub reasons: Vec<String>,
    pub root_version: u64,
}
