//! The decision: what a policy evaluation concluded, as data persisted verbatim in the log.
//!
//! A decision is a file format (it is logged and replayed), so it derives `Serialize` and
//! `Deserialize` with stable snake_case names, and [`Decision::to_canonical_json`] gives its one
//! byte form (RFC 8785). The same bundle, input and time give byte-identical decisions.

use serde::{Deserialize, Serialize};

use crate::canonical::canonicalize;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Deny,
}

/// One finding of a `deny` (a violation) or `warn` (a warning) rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Violation {
    /// The rule's id (`no-critical-vulnerabilities`); `null` when the rule returned a bare string.
    pub rule: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
    /// How to fix it.
    pub remediation: Option<String>,
    /// Where the rule is documented (`docs/policies/<rule>.md`).
    pub doc: Option<String>,
    /// How bad it is (`critical`, `high`, `medium`, `low`), as the rule says.
    pub severity: Option<String>,
    /// The vulnerability id the finding is about, used to match waivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<String>,
    /// The component (package URL) the finding is about, used to match waivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

/// A violation a waiver removed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppliedWaiver {
    /// The waiver's id.
    pub waiver: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    pub justification: String,
    pub approver: String,
    pub expires_at: String,
}

/// Whether a waiver is in effect at the decision time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaiverStatus {
    Active,
    Expired,
    NotYetValid,
}

/// A waiver that matched a violation but was not in effect, so it waived nothing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InactiveWaiver {
    pub waiver: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// `expired` or `not_yet_valid`.
    pub status: WaiverStatus,
    pub expires_at: String,
}

/// Why an evaluation failed closed. Every variant denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// A `.rego` file does not parse, or the modules do not compile (unsafe variables, conflicts).
    Compile,
    /// Compiling the bundle ran past its budget.
    CompileTimeout,
    /// The bundle declares no `deny` rule in package `airlock`.
    NoDenyRule,
    /// `data.airlock.deny` is declared but evaluated to undefined.
    DenyUndefined,
    /// Evaluation raised an error (a builtin failed, a conflict, recursion, ...).
    Evaluation,
    /// Evaluation ran past the time budget.
    Timeout,
    /// Evaluation ran past a memory limit.
    MemoryLimit,
    /// The input is larger than the limit.
    InputTooLarge,
    /// The input nests deeper than the limit.
    InputTooDeep,
    /// The input lacks a field the engine needs, or has one of the wrong type.
    InputInvalid,
    /// `input.time` is not the decision time.
    TimeMismatch,
    /// A `deny` or `warn` result is not a set of strings or objects with a string `msg`.
    MalformedResult,
    /// The rules returned more violations and warnings than the limit.
    TooManyResults,
    /// A waiver in `input.waivers` is invalid.
    InvalidWaiver,
    /// The policy engine failed internally (a bug in it, contained).
    Internal,
}

impl ErrorCode {
    /// The code as written in a decision.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Compile => "compile",
            ErrorCode::CompileTimeout => "compile-timeout",
            ErrorCode::NoDenyRule => "no-deny-rule",
            ErrorCode::DenyUndefined => "deny-undefined",
            ErrorCode::Evaluation => "evaluation",
            ErrorCode::Timeout => "timeout",
            ErrorCode::MemoryLimit => "memory-limit",
            ErrorCode::InputTooLarge => "input-too-large",
            ErrorCode::InputTooDeep => "input-too-deep",
            ErrorCode::InputInvalid => "input-invalid",
            ErrorCode::TimeMismatch => "time-mismatch",
            ErrorCode::MalformedResult => "malformed-result",
            ErrorCode::TooManyResults => "too-many-results",
            ErrorCode::InvalidWaiver => "invalid-waiver",
            ErrorCode::Internal => "internal",
        }
    }
}

/// One reason an evaluation failed closed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EvalError {
    pub code: ErrorCode,
    /// One line, for a person.
    pub message: String,
}

impl EvalError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> EvalError {
        EvalError { code, message: message.into() }
    }
}

/// The result of evaluating a bundle over an input. See the crate documentation for each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `allow` only when there are no errors and no violations left after waivers.
    pub outcome: Outcome,
    /// What the `deny` rules found, less what waivers removed; sorted.
    pub violations: Vec<Violation>,
    /// What the `warn` rules found; they never deny; sorted.
    pub warnings: Vec<Violation>,
    /// One entry per violation a waiver removed.
    pub waivers_applied: Vec<AppliedWaiver>,
    /// Waivers that matched a violation but were expired or not yet in effect.
    pub waivers_inactive: Vec<InactiveWaiver>,
    /// `input.vex_applied`, copied: the vulnerabilities removed by VEX before evaluation.
    pub vex_applied: Vec<serde_json::Value>,
    /// Why the evaluation failed closed; any entry denies.
    pub errors: Vec<EvalError>,
    /// The bundle's digest (`sha256:<hex>`).
    pub bundle_digest: String,
    /// The SHA-256 of the input's RFC 8785 form; `null` when the input has none.
    pub input_digest: Option<String>,
    /// The decision time, RFC 3339 UTC with milliseconds.
    pub evaluated_at: String,
    /// What the policy printed (`print`), in order.
    pub trace: Vec<String>,
}

impl Decision {
    /// Whether the decision allows.
    pub fn allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// The decision's RFC 8785 canonical JSON bytes, the form that is logged and hashed.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // A decision holds strings, and JSON copied from an input that was itself canonicalized
        // (`vex_applied`), so the canonical form exists; the fallback only keeps this total.
        serde_json::to_value(self)
            .ok()
            .and_then(|value| canonicalize(&value, usize::MAX).ok())
            .unwrap_or_else(|| b"{\"outcome\":\"deny\"}".to_vec())
    }
}
