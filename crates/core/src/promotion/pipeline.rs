//! The gates of each stage: what an artifact must carry, which policy it must pass, who must
//! approve it and when it may land. Validated once at start; the engine only reads them.

use airlock_model::StageName;

use crate::promotion::window::ChangeWindow;

/// Seven days, the default longest age of a vulnerability scan.
pub const SCAN_MAX_AGE_SECS: u64 = 7 * 24 * 3600;
/// One day, the default life of an approval.
pub const APPROVAL_TTL_SECS: u64 = 24 * 3600;
/// Most approvals a stage may require.
pub const APPROVALS_MAX: u32 = 16;

/// An attestation a promotion into the stage requires.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredAttestation {
    /// How reports name it: `provenance`.
    pub name: String,
    /// Predicate types that count; a trailing `*` matches any suffix
    /// (`https://cyclonedx.org/bom*`).
    pub predicate_types: Vec<String>,
    /// Signer names (from the trust root) that count; empty means any trusted signer.
    #[serde(default)]
    pub signers: Vec<String>,
    /// Distinct signers needed.
    #[serde(default = "one")]
    pub threshold: u32,
    /// The longest time since the attestation was recorded.
    #[serde(default)]
    pub max_age_secs: Option<u64>,
}

fn one() -> u32 {
    1
}

impl RequiredAttestation {
    /// Whether `predicate_type` is one this requirement counts.
    pub fn matches(&self, predicate_type: &str) -> bool {
        self.predicate_types.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => predicate_type.starts_with(prefix),
            None => predicate_type == p,
        })
    }
}

/// The approvals a promotion into the stage needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Distinct people needed.
    pub count: u32,
    /// The role each approver must hold when the promotion commits.
    pub role: String,
    /// How long an approval counts.
    #[serde(default = "approval_ttl")]
    pub ttl_secs: u64,
    /// Whether each approver must have verified a second factor recently.
    #[serde(default = "yes")]
    pub mfa: bool,
}

fn approval_ttl() -> u64 {
    APPROVAL_TTL_SECS
}

fn yes() -> bool {
    true
}

/// The gates of one stage reached by promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gates {
    /// The stage promotions into this one come from.
    pub from: StageName,
    pub attestations: Vec<RequiredAttestation>,
    /// The policy bundle's label (`default`, or the directory configured).
    pub policy: String,
    pub approvals: Option<ApprovalRule>,
    /// When promotions may commit; empty means any time.
    pub windows: Vec<ChangeWindow>,
    /// Frozen by configuration: nothing is promoted in until the config changes.
    pub freeze: bool,
}

/// Why a stage's gates were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatesError {
    #[error("stage `{stage}`: attestation requirement `{name}` lists no `predicate_types`; name at least one")]
    NoPredicateTypes { stage: String, name: String },
    #[error("stage `{stage}`: attestation requirement `{name}` has `threshold = 0`; use 1 or more")]
    ZeroThreshold { stage: String, name: String },
    #[error(
        "stage `{stage}`: attestation requirement `{name}` needs {threshold} signers but lists only {listed}; list more signers or lower `threshold`"
    )]
    ThresholdTooHigh { stage: String, name: String, threshold: u32, listed: usize },
    #[error("stage `{stage}`: attestation requirement `{name}` appears twice; names must be unique")]
    DuplicateAttestation { stage: String, name: String },
    #[error("stage `{stage}`: `approvals.count` is {count}; use 1 to {APPROVALS_MAX}, or remove `approvals`")]
    ApprovalCount { stage: String, count: u32 },
    #[error("stage `{stage}`: `approvals.ttl_secs` is 0; approvals must live at least a second")]
    ApprovalTtl { stage: String },
    #[error("stage `{stage}`: `approvals.role` is empty; name the role approvers must hold")]
    ApprovalRole { stage: String },
    #[error("stage `{stage}` is promoted from `{from}`, which is not an earlier stage; use one listed before it")]
    FromUnknown { stage: String, from: String },
}

impl Gates {
    /// Checks the gates of `stage`; `earlier` are the stages listed before it.
    pub fn validate(&self, stage: &StageName, earlier: &[&StageName]) -> Result<(), GatesError> {
        let s = || stage.to_string();
        if !earlier.contains(&&self.from) {
            return Err(GatesError::FromUnknown { stage: s(), from: self.from.to_string() });
        }
        for (i, a) in self.attestations.iter().enumerate() {
            let name = || a.name.clone();
            if self.attestations.iter().take(i).any(|b| b.name == a.name) {
                return Err(GatesError::DuplicateAttestation { stage: s(), name: name() });
            }
            if a.predicate_types.is_empty() {
                return Err(GatesError::NoPredicateTypes { stage: s(), name: name() });
            }
            if a.threshold == 0 {
                return Err(GatesError::ZeroThreshold { stage: s(), name: name() });
            }
            if !a.signers.is_empty() && (a.threshold as usize) > a.signers.len() {
                return Err(GatesError::ThresholdTooHigh {
                    stage: s(),
                    name: name(),
                    threshold: a.threshold,
                    listed: a.signers.len(),
                });
            }
        }
        if let Some(rule) = &self.approvals {
            if rule.count == 0 || rule.count > APPROVALS_MAX {
                return Err(GatesError::ApprovalCount { stage: s(), count: rule.count });
            }
            if rule.ttl_secs == 0 {
                return Err(GatesError::ApprovalTtl { stage: s() });
            }
            if rule.role.trim().is_empty() {
                return Err(GatesError::ApprovalRole { stage: s() });
            }
        }
        Ok(())
    }

    /// The default gates into `staging`: trusted provenance, an SBOM and a fresh scan, and the
    /// policy; no approval.
    pub fn default_staging(from: StageName) -> Gates {
        Gates {
            from,
            attestations: default_attestations(),
            policy: DEFAULT_POLICY.to_owned(),
            approvals: None,
            windows: Vec::new(),
            freeze: false,
        }
    }

    /// The default gates into `prod`: the policy, and two approvals from `release-approver`
    /// with a second factor.
    pub fn default_prod(from: StageName) -> Gates {
        Gates {
            from,
            attestations: Vec::new(),
            policy: DEFAULT_POLICY.to_owned(),
            approvals: Some(ApprovalRule {
                count: 2,
                role: "release-approver".to_owned(),
                ttl_secs: APPROVAL_TTL_SECS,
                mfa: true,
            }),
            windows: Vec::new(),
            freeze: false,
        }
    }

    /// Gates with nothing but the policy, for stages configured without any.
    pub fn policy_only(from: StageName) -> Gates {
        Gates {
            from,
            attestations: Vec::new(),
            policy: DEFAULT_POLICY.to_owned(),
            approvals: None,
            windows: Vec::new(),
            freeze: false,
        }
    }
}

/// The label of the policy bundle in force (`policy.bundle`, or the embedded library).
pub const DEFAULT_POLICY: &str = "default";

/// Provenance, an SBOM and a vulnerability scan, as the default library's signers name them.
pub fn default_attestations() -> Vec<RequiredAttestation> {
    vec![
        RequiredAttestation {
            name: "provenance".to_owned(),
            predicate_types: vec![
                "https://slsa.dev/provenance/v1".to_owned(),
                "https://slsa.dev/provenance/v0.2".to_owned(),
            ],
            signers: Vec::new(),
            threshold: 1,
            max_age_secs: None,
        },
        RequiredAttestation {
            name: "sbom".to_owned(),
            predicate_types: vec!["https://cyclonedx.org/bom*".to_owned(), "https://spdx.dev/Document*".to_owned()],
            signers: Vec::new(),
            threshold: 1,
            max_age_secs: None,
        },
        RequiredAttestation {
            name: "vulnerability-scan".to_owned(),
            predicate_types: vec!["https://cosign.sigstore.dev/attestation/vuln/v1".to_owned()],
            signers: Vec::new(),
            threshold: 1,
            max_age_secs: Some(SCAN_MAX_AGE_SECS),
        },
    ]
}
