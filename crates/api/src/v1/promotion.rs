//! `/api/v1/promotions`, `/api/v1/release-key` and an artifact's promotion history.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/promotions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionRequest {
    /// The source repository, `dev/app`.
    pub repository: String,
    /// A tag or a digest in that repository.
    pub reference: String,
    /// The target stage.
    pub to: String,
    /// The tag to set in the target repository.
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub reason: String,
    /// The break-glass procedure (needs the `break-glass` role and a reason).
    #[serde(default)]
    pub break_glass: bool,
}

/// `POST /api/v1/promotions/{id}/approve` (`comment`) and `.../reject` (`reason`, required
/// there). An empty body is refused: send `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionDecision {
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub reason: String,
}

/// A promotion: `GET /api/v1/promotions/{id}` and the answer of every change to one. In a list
/// (`GET /api/v1/promotions`) `report` is `null` and `approvals` empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Promotion {
    pub id: String,
    /// `pending`, `promoted`, `denied`, `rejected`, `expired` or `cancelled`.
    pub status: String,
    /// The repository it is promoted from, `dev/app`.
    pub source: String,
    /// The repository it is promoted into, `staging/app`.
    pub target: String,
    pub digest: String,
    pub tag: Option<String>,
    pub requester: String,
    pub reason: String,
    pub policy_digest: String,
    pub evidence_digest: String,
    pub created_at: String,
    pub updated_at: String,
    pub closed_reason: Option<String>,
    /// The release record's manifest digest in the target repository, once promoted.
    pub release_record: Option<String>,
    /// The log index of the commit event, once promoted.
    pub log_index: Option<u64>,
    pub break_glass: bool,
    /// The latest gate report: each gate's verdict and the findings; [`GateReport`] is what a
    /// client reads of it.
    pub report: serde_json::Value,
    pub approvals: Vec<Approval>,
    /// False when an existing promotion with the same key was returned.
    pub created: bool,
}

/// What a client reads of a [`Promotion`]'s `report`: what denied it, what warned, and the
/// approvals it waits for. The report is stored with the promotion as the gates wrote it, so
/// the server sends it as it was kept; the members not listed here are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GateReport {
    #[serde(default)]
    pub findings: Vec<GateFinding>,
    #[serde(default)]
    pub warnings: Vec<GateFinding>,
    /// `null` when the target stage takes no approvals.
    #[serde(default)]
    pub approvals: Option<ApprovalsNeeded>,
}

/// One reason a gate refuses (or, among `warnings`, warns), with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GateFinding {
    /// `attestation`, `policy`, `freeze` or `window`.
    pub gate: String,
    /// The rule or requirement: `provenance`, `no-critical-vulnerabilities`.
    pub rule: String,
    pub message: String,
    pub remediation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// The approvals a promotion needs: how many, from which role, and who counted so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalsNeeded {
    pub required: u64,
    pub role: String,
    /// Whether each approval needs a fresh second factor.
    pub mfa: bool,
    /// The approvers counted.
    pub counted: Vec<String>,
    pub missing: u64,
}

/// One approval of a promotion, bound to the policy and evidence it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    pub approver: String,
    pub comment: String,
    pub created_at: String,
    pub expires_at: String,
    pub policy_digest: String,
    pub evidence_digest: String,
}

/// `GET /api/v1/release-key`: the public key release records are signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseKey {
    pub keyid: String,
    /// SPKI PEM.
    pub pem: String,
}

/// The release key named by its id only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseKeyId {
    pub keyid: String,
}

/// `GET /api/v1/artifacts/{repo}/{digest}/promotions`: whether `digest` was promoted into
/// `repo`, each promotion with its signed release record and summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PromotionHistory {
    pub repository: String,
    pub stage: String,
    pub digest: String,
    /// Whether a promotion's release record verifies.
    pub promoted: bool,
    /// Why not, when not promoted.
    pub reason: Option<String>,
    pub release_key: ReleaseKeyId,
    pub promotions: Vec<HistoryEntry>,
}

/// One promotion of an artifact, with the DSSE envelopes to verify it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    pub id: String,
    pub source: String,
    pub tag: Option<String>,
    pub requester: String,
    pub promoted_at: String,
    pub log_index: Option<u64>,
    /// The release record's manifest digest.
    pub release_record: Option<String>,
    /// The verification summary's manifest digest.
    pub summary: Option<String>,
    /// Standard base64 of the release record's DSSE envelope.
    pub record_envelope: Option<String>,
    /// Standard base64 of the verification summary's DSSE envelope.
    pub summary_envelope: Option<String>,
    /// Whether the server's own check of the record passed.
    pub verified: bool,
    /// Why it did not.
    pub reason: Option<String>,
}

/// `GET /api/v1/artifacts/{repo}/{digest}/release-bundle`: the release bundle
/// (`docs/release-bundle.md`), served as `application/vnd.airlock.release-bundle.v1+json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct ReleaseBundle(pub serde_json::Value);
