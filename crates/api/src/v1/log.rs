//! `/api/v1/log/*`: the transparency log's entries and proofs. The checkpoint and the verifier
//! key are `text/plain` and have no type here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /api/v1/log/entries`: a page of log entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogEntries {
    /// Entries in the log when the page was read.
    pub size: u64,
    pub entries: Vec<LogEntry>,
}

/// One log entry: the exact leaf bytes (base64) and, for reading, the event they hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    pub index: u64,
    /// Standard base64 of the leaf bytes; the leaf hash is SHA-256(0x00 || bytes).
    pub leaf: String,
    /// The audit event the leaf holds, `null` when the bytes are not JSON.
    pub event: serde_json::Value,
}

/// `GET /api/v1/log/proof/inclusion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    /// Base64 node hashes, bottom-up, as RFC 9162 orders them.
    pub hashes: Vec<String>,
}

/// `GET /api/v1/log/proof/consistency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub hashes: Vec<String>,
}
