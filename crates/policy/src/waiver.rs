//! Waivers: time-limited, scoped, approved exceptions to one policy rule, applied in Rust after
//! Rego has decided, so no policy can widen them.
//!
//! A bundle's `waivers.json` is a JSON array of waivers:
//!
//! ```json
//! [{"id": "w-17", "repository": "*/payments/api", "rule": "no-critical-vulnerabilities",
//!   "vulnerability": "CVE-2026-1234", "component": "pkg:npm/lodash@4.17.20",
//!   "created_at": "2026-11-01T00:00:00Z", "expires_at": "2026-12-01T00:00:00Z",
//!   "justification": "not reachable: the template engine is unused", "approver": "carol"}]
//! ```
//!
//! Every field but `vulnerability` and `component` is mandatory; unknown fields are refused. At
//! load, a waiver that could widen is refused with the reason ([`WaiverError`]):
//!
//! - `repository` is a repository pattern (README.md, "Repository patterns"): `*` matches
//!   within one `/` segment. A waiver may not widen further: at most one segment may hold a `*`,
//!   and `**`, `*/*` and a bare `*` are refused ([`parse_waiver_repository`]).
//! - `expires_at` must follow `created_at` by at most [`WaiverLimits::max_validity_days`]
//!   (default [`WAIVER_MAX_VALIDITY_DAYS`]). Times are RFC 3339 in UTC (`2026-12-01T00:00:00Z`).
//!
//! A violation is waived by a waiver in effect at the decision time (`created_at <= at <
//! expires_at`) whose `rule` is the violation's rule, whose `repository` matches the artifact's
//! repository (`input.artifact.repository`), and, when the waiver names them, whose
//! `vulnerability` and `component` are exactly the violation's. A waiver naming a vulnerability
//! therefore waives only that vulnerability. Waivers are tried in `id` order; the first in effect
//! wins. A waiver that would match but is expired or not yet in effect waives nothing and is
//! listed in the decision's `waivers_inactive`.

use std::collections::BTreeSet;

use airlock_model::Timestamp;
use airlock_model::echo::echo;
use airlock_model::pattern::{PatternError, RepoPattern};
use serde::Deserialize;

use crate::decision::{AppliedWaiver, InactiveWaiver, Violation, WaiverStatus};

/// Longest a waiver may last by default, from `created_at` to `expires_at`.
pub const WAIVER_MAX_VALIDITY_DAYS: u32 = 90;
/// Most waivers one list may hold.
pub const WAIVERS_MAX: usize = 1000;
/// Longest text field of a waiver (`justification`, `component`, ...), in bytes.
pub const WAIVER_FIELD_MAX_LEN: usize = 1024;

const MILLIS_PER_DAY: u64 = 86_400_000;

/// Bounds on waivers, checked when they are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiverLimits {
    /// Longest validity, `expires_at - created_at`, in days.
    pub max_validity_days: u32,
    /// Most waivers in one list.
    pub max_waivers: usize,
}

impl Default for WaiverLimits {
    fn default() -> WaiverLimits {
        WaiverLimits { max_validity_days: WAIVER_MAX_VALIDITY_DAYS, max_waivers: WAIVERS_MAX }
    }
}

/// Why a waiver list was refused.
#[derive(Debug, thiserror::Error)]
pub enum WaiverError {
    #[error(
        "waivers are malformed: {source}; write a JSON array of objects with `id`, `repository`, `rule`, `created_at`, `expires_at`, `justification`, `approver` and optionally `vulnerability` and `component`"
    )]
    Malformed {
        #[source]
        source: serde_json::Error,
    },
    #[error("{count} waivers are listed; the limit is {max}")]
    TooMany { count: usize, max: usize },
    #[error("waiver number {index} has no `{field}`; every waiver needs one")]
    Missing { index: usize, field: &'static str },
    #[error("waiver id `{id}` is invalid: use 1 to 64 letters, digits, `.`, `_` and `-`")]
    Id { id: String },
    #[error("waiver `{id}` is listed twice; give each waiver its own id")]
    Duplicate { id: String },
    #[error("waiver `{id}` has an empty `{field}`")]
    Empty { id: String, field: &'static str },
    #[error("waiver `{id}` field `{field}` is longer than {max} bytes or holds a control character")]
    Field { id: String, field: &'static str, max: usize },
    #[error("waiver `{id}` component `{component}` is not a package URL; write it like `pkg:npm/lodash@4.17.20`")]
    Component { id: String, component: String },
    #[error("waiver `{id}` has an invalid `repository`: {source}")]
    Pattern {
        id: String,
        #[source]
        source: WaiverPatternError,
    },
    #[error("waiver `{id}` field `{field}` is `{value}`; write times in RFC 3339 UTC, like `2026-12-01T00:00:00Z`")]
    Time { id: String, field: &'static str, value: String },
    #[error("waiver `{id}` expires at or before it was created; set `expires_at` after `created_at`")]
    ExpiresBeforeCreated { id: String },
    #[error(
        "waiver `{id}` lasts from {created_at} to {expires_at}, more than {max_days} days; shorten it and renew it when it expires"
    )]
    TooLong { id: String, created_at: String, expires_at: String, max_days: u32 },
}

/// Why a waiver's `repository` was refused: outside the repository pattern grammar, or wider
/// than a waiver may be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaiverPatternError {
    #[error(transparent)]
    Grammar(#[from] PatternError),
    #[error("pattern `{pattern}` holds `**`, which would match across segments; use `*` within one segment")]
    DoubleStar { pattern: String },
    #[error("pattern `{pattern}` is a bare `*`, which would match every repository; name the repository")]
    BareStar { pattern: String },
    #[error(
        "pattern `{pattern}` has `*` in more than one segment; at most one segment may be a glob, like `*/payments/api`"
    )]
    TwoGlobSegments { pattern: String },
}

/// Parses a waiver's `repository`: a [`RepoPattern`] without `**`, not a bare `*`, and with `*`
/// in at most one segment, so that no waiver can cover more than one segment's worth of names.
pub fn parse_waiver_repository(text: &str) -> Result<RepoPattern, WaiverPatternError> {
    let pattern = RepoPattern::parse(text)?;
    if pattern.pattern().ends_below() {
        return Err(WaiverPatternError::DoubleStar { pattern: echo(text) });
    }
    if text == "*" {
        return Err(WaiverPatternError::BareStar { pattern: echo(text) });
    }
    if pattern.pattern().glob_segments() > 1 {
        return Err(WaiverPatternError::TwoGlobSegments { pattern: echo(text) });
    }
    Ok(pattern)
}

/// One waiver, checked; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    id: String,
    repository: RepoPattern,
    rule: String,
    vulnerability: Option<String>,
    component: Option<String>,
    created_at: Timestamp,
    expires_at: Timestamp,
    expires_at_text: String,
    justification: String,
    approver: String,
}

impl Waiver {
    /// The waiver's id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The repository pattern it covers.
    pub fn repository(&self) -> &RepoPattern {
        &self.repository
    }
    /// The rule it waives.
    pub fn rule(&self) -> &str {
        &self.rule
    }
    /// The one vulnerability it waives, if it names one.
    pub fn vulnerability(&self) -> Option<&str> {
        self.vulnerability.as_deref()
    }
    /// The one component (package URL) it waives, if it names one.
    pub fn component(&self) -> Option<&str> {
        self.component.as_deref()
    }
    /// When it was created.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    /// When it stops waiving anything.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
    /// Why it was granted.
    pub fn justification(&self) -> &str {
        &self.justification
    }
    /// Who approved it.
    pub fn approver(&self) -> &str {
        &self.approver
    }

    fn status(&self, at: Timestamp) -> WaiverStatus {
        if at < self.created_at {
            WaiverStatus::NotYetValid
        } else if at >= self.expires_at {
            WaiverStatus::Expired
        } else {
            WaiverStatus::Active
        }
    }

    fn covers(&self, violation: &Violation, repository: &str) -> bool {
        violation.rule.as_deref() == Some(self.rule.as_str())
            && self.repository.matches(repository)
            && self.vulnerability.as_ref().is_none_or(|v| violation.vulnerability.as_ref() == Some(v))
            && self.component.as_ref().is_none_or(|c| violation.component.as_ref() == Some(c))
    }
}

/// A waiver as written, before any check.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    id: Option<String>,
    repository: Option<String>,
    rule: Option<String>,
    vulnerability: Option<String>,
    component: Option<String>,
    created_at: Option<String>,
    expires_at: Option<String>,
    justification: Option<String>,
    approver: Option<String>,
}

/// Reads and checks a waiver list from JSON bytes (`waivers.json`).
pub fn parse_waivers(bytes: &[u8], limits: &WaiverLimits) -> Result<Vec<Waiver>, WaiverError> {
    let raw: Vec<RawWaiver> = serde_json::from_slice(bytes).map_err(|source| WaiverError::Malformed { source })?;
    check_waivers(raw, limits)
}

/// Reads and checks a waiver list from a JSON value (`input.waivers`).
pub fn waivers_from_value(value: &serde_json::Value, limits: &WaiverLimits) -> Result<Vec<Waiver>, WaiverError> {
    let raw: Vec<RawWaiver> =
        serde_json::from_value(value.clone()).map_err(|source| WaiverError::Malformed { source })?;
    check_waivers(raw, limits)
}

fn check_waivers(raw: Vec<RawWaiver>, limits: &WaiverLimits) -> Result<Vec<Waiver>, WaiverError> {
    if raw.len() > limits.max_waivers {
        return Err(WaiverError::TooMany { count: raw.len(), max: limits.max_waivers });
    }
    let mut seen = BTreeSet::new();
    let mut waivers = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let waiver = check_waiver(r, i.saturating_add(1), limits)?;
        if !seen.insert(waiver.id.clone()) {
            return Err(WaiverError::Duplicate { id: waiver.id });
        }
        waivers.push(waiver);
    }
    waivers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(waivers)
}

fn check_waiver(raw: RawWaiver, index: usize, limits: &WaiverLimits) -> Result<Waiver, WaiverError> {
    let missing = |field| WaiverError::Missing { index, field };
    let id = raw.id.ok_or(missing("id"))?;
    let id_ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !id_ok {
        return Err(WaiverError::Id { id: echo(&id) });
    }
    let text = |field: &'static str, value: Option<String>| -> Result<String, WaiverError> {
        let value = value.ok_or(WaiverError::Missing { index, field })?;
        if value.trim().is_empty() {
            return Err(WaiverError::Empty { id: id.clone(), field });
        }
        if value.len() > WAIVER_FIELD_MAX_LEN || value.chars().any(char::is_control) {
            return Err(WaiverError::Field { id: id.clone(), field, max: WAIVER_FIELD_MAX_LEN });
        }
        Ok(value)
    };
    let repository_text = text("repository", raw.repository)?;
    let repository =
        parse_waiver_repository(&repository_text).map_err(|source| WaiverError::Pattern { id: id.clone(), source })?;
    let rule = text("rule", raw.rule)?;
    let vulnerability = raw.vulnerability.map(|v| text("vulnerability", Some(v))).transpose()?;
    let component = raw.component.map(|c| text("component", Some(c))).transpose()?;
    if let Some(c) = &component
        && !c.starts_with("pkg:")
    {
        return Err(WaiverError::Component { id: id.clone(), component: echo(c) });
    }
    let created_text = text("created_at", raw.created_at)?;
    let expires_text = text("expires_at", raw.expires_at)?;
    let time = |field: &'static str, value: &str| {
        Timestamp::parse_rfc3339_strict(value).ok_or_else(|| WaiverError::Time {
            id: id.clone(),
            field,
            value: echo(value),
        })
    };
    let created_at = time("created_at", &created_text)?;
    let expires_at = time("expires_at", &expires_text)?;
    if expires_at <= created_at {
        return Err(WaiverError::ExpiresBeforeCreated { id });
    }
    let max_millis = u64::from(limits.max_validity_days).saturating_mul(MILLIS_PER_DAY);
    if expires_at.millis_since(created_at) > max_millis {
        return Err(WaiverError::TooLong {
            id,
            created_at: created_text,
            expires_at: expires_text,
            max_days: limits.max_validity_days,
        });
    }
    let justification = text("justification", raw.justification)?;
    let approver = text("approver", raw.approver)?;
    Ok(Waiver {
        id,
        repository,
        rule,
        vulnerability,
        component,
        created_at,
        expires_at,
        expires_at_text: expires_text,
        justification,
        approver,
    })
}

/// What applying waivers did to a list of violations.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) remaining: Vec<Violation>,
    pub(crate) applied: Vec<AppliedWaiver>,
    pub(crate) inactive: Vec<InactiveWaiver>,
}

/// Applies `waivers` (sorted by id) to `violations` of an artifact in `repository` at `at`.
pub(crate) fn apply(violations: Vec<Violation>, waivers: &[&Waiver], repository: &str, at: Timestamp) -> Applied {
    let mut out = Applied::default();
    for violation in violations {
        let mut waived = false;
        for waiver in waivers.iter().filter(|w| w.covers(&violation, repository)) {
            match waiver.status(at) {
                WaiverStatus::Active => {
                    out.applied.push(AppliedWaiver {
                        waiver: waiver.id.clone(),
                        rule: waiver.rule.clone(),
                        vulnerability: violation.vulnerability.clone(),
                        component: violation.component.clone(),
                        justification: waiver.justification.clone(),
                        approver: waiver.approver.clone(),
                        expires_at: waiver.expires_at_text.clone(),
                    });
                    waived = true;
                    break;
                }
                status => out.inactive.push(InactiveWaiver {
                    waiver: waiver.id.clone(),
                    rule: waiver.rule.clone(),
                    vulnerability: violation.vulnerability.clone(),
                    component: violation.component.clone(),
                    status,
                    expires_at: waiver.expires_at_text.clone(),
                }),
            }
        }
        if !waived {
            out.remaining.push(violation);
        }
    }
    out.inactive.sort();
    out.inactive.dedup();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check_pattern(pattern: &str, inputs: &[&str], expect: Expect) {
        let actual = match parse_waiver_repository(pattern) {
            Ok(p) => inputs
                .iter()
                .map(|i| format!("{i}={}", if p.matches(i) { "y" } else { "n" }))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn patterns_match_one_segment_at_most() {
        check_pattern(
            "dev/payments/api",
            &["dev/payments/api", "dev/payments/api2", "dev/payments/api/v2"],
            expect!["dev/payments/api=y dev/payments/api2=n dev/payments/api/v2=n"],
        );
        check_pattern(
            "*/payments/api",
            &["dev/payments/api", "staging/payments/api", "dev/x/payments/api", "/payments/api"],
            expect!["dev/payments/api=y staging/payments/api=y dev/x/payments/api=n /payments/api=y"],
        );
        check_pattern(
            "dev/payments/api-*",
            &["dev/payments/api-v2", "dev/payments/api-", "dev/payments/api", "dev/payments/api-v2/x"],
            expect!["dev/payments/api-v2=y dev/payments/api-=y dev/payments/api=n dev/payments/api-v2/x=n"],
        );
        check_pattern("dev/*", &["dev/api", "dev/a/b"], expect!["dev/api=y dev/a/b=n"]);
        check_pattern(
            "dev/a*b*c",
            &["dev/abc", "dev/aXbYc", "dev/acb", "dev/aXbYcZ"],
            expect!["dev/abc=y dev/aXbYc=y dev/acb=n dev/aXbYcZ=n"],
        );
    }

    #[test]
    fn widening_patterns_are_refused() {
        check_pattern(
            "*",
            &[],
            expect!["err pattern `*` is a bare `*`, which would match every repository; name the repository"],
        );
        check_pattern(
            "**",
            &[],
            expect!["err pattern `**` holds `**`, which would match across segments; use `*` within one segment"],
        );
        check_pattern(
            "dev/**",
            &[],
            expect!["err pattern `dev/**` holds `**`, which would match across segments; use `*` within one segment"],
        );
        check_pattern(
            "*/*",
            &[],
            expect![
                "err pattern `*/*` has `*` in more than one segment; at most one segment may be a glob, like `*/payments/api`"
            ],
        );
        check_pattern(
            "dev/*/api-*",
            &[],
            expect![
                "err pattern `dev/*/api-*` has `*` in more than one segment; at most one segment may be a glob, like `*/payments/api`"
            ],
        );
        check_pattern(
            "dev/../prod/api",
            &[],
            expect!["err pattern `dev/../prod/api` has an empty, `.` or `..` segment"],
        );
        check_pattern("dev//api", &[], expect!["err pattern `dev//api` has an empty, `.` or `..` segment"]);
        check_pattern("/dev/api", &[], expect!["err pattern `/dev/api` has an empty, `.` or `..` segment"]);
        check_pattern(
            "Dev/api",
            &[],
            expect!["err pattern `Dev/api` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"],
        );
        check_pattern(
            "dev/api?",
            &[],
            expect!["err pattern `dev/api?` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"],
        );
        check_pattern("", &[], expect!["err pattern is empty; write the exact name, or `**` to match everything"]);
    }

    fn check_waivers(json: &str, expect: Expect) {
        let actual = match parse_waivers(json.as_bytes(), &WaiverLimits::default()) {
            Ok(w) => w.iter().map(|w| w.id().to_owned()).collect::<Vec<_>>().join(" "),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    fn waiver(overrides: &str) -> String {
        let mut base: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"id": "w-1", "repository": "dev/payments/api", "rule": "no-critical-vulnerabilities",
                "created_at": "2026-11-01T00:00:00Z", "expires_at": "2026-12-01T00:00:00Z",
                "justification": "not reachable", "approver": "carol"}"#,
        )
        .unwrap();
        let extra: serde_json::Map<String, serde_json::Value> = serde_json::from_str(overrides).unwrap();
        for (k, v) in extra {
            if v.is_null() {
                base.remove(&k);
            } else {
                base.insert(k, v);
            }
        }
        serde_json::Value::Object(base).to_string()
    }

    fn list(overrides: &str) -> String {
        format!("[{}]", waiver(overrides))
    }

    #[test]
    fn waiver_checks() {
        check_waivers(&list("{}"), expect!["w-1"]);
        check_waivers("[]", expect![""]);
        check_waivers(
            &list(r#"{"expires_at": null}"#),
            expect!["err waiver number 1 has no `expires_at`; every waiver needs one"],
        );
        check_waivers(
            &list(r#"{"created_at": null}"#),
            expect!["err waiver number 1 has no `created_at`; every waiver needs one"],
        );
        check_waivers(
            &list(r#"{"expires_at": "2027-01-30T00:00:01Z"}"#),
            expect![
                "err waiver `w-1` lasts from 2026-11-01T00:00:00Z to 2027-01-30T00:00:01Z, more than 90 days; shorten it and renew it when it expires"
            ],
        );
        check_waivers(&list(r#"{"expires_at": "2027-01-30T00:00:00Z"}"#), expect!["w-1"]);
        check_waivers(
            &list(r#"{"expires_at": "2026-10-01T00:00:00Z"}"#),
            expect!["err waiver `w-1` expires at or before it was created; set `expires_at` after `created_at`"],
        );
        check_waivers(
            &list(r#"{"expires_at": "next month"}"#),
            expect![
                "err waiver `w-1` field `expires_at` is `next month`; write times in RFC 3339 UTC, like `2026-12-01T00:00:00Z`"
            ],
        );
        check_waivers(
            &list(r#"{"repository": "**"}"#),
            expect![
                "err waiver `w-1` has an invalid `repository`: pattern `**` holds `**`, which would match across segments; use `*` within one segment"
            ],
        );
        check_waivers(&list(r#"{"justification": " "}"#), expect!["err waiver `w-1` has an empty `justification`"]);
        check_waivers(
            &list(r#"{"component": "lodash"}"#),
            expect!["err waiver `w-1` component `lodash` is not a package URL; write it like `pkg:npm/lodash@4.17.20`"],
        );
        check_waivers(
            &list(r#"{"id": "w 1"}"#),
            expect!["err waiver id `w 1` is invalid: use 1 to 64 letters, digits, `.`, `_` and `-`"],
        );
        check_waivers(
            r#"[{"scope": "everything", "id": "w-1"}]"#,
            expect![
                "err waivers are malformed: unknown field `scope`, expected one of `id`, `repository`, `rule`, `vulnerability`, `component`, `created_at`, `expires_at`, `justification`, `approver` at line 1 column 9; write a JSON array of objects with `id`, `repository`, `rule`, `created_at`, `expires_at`, `justification`, `approver` and optionally `vulnerability` and `component`"
            ],
        );
        check_waivers(
            &format!("[{0},{0}]", waiver("{}")),
            expect!["err waiver `w-1` is listed twice; give each waiver its own id"],
        );
        let limits = WaiverLimits { max_validity_days: 7, ..WaiverLimits::default() };
        assert!(matches!(parse_waivers(list("{}").as_bytes(), &limits), Err(WaiverError::TooLong { .. })));
    }
}
