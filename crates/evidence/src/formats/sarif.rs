//! SARIF 2.1.0 (OASIS; what code scanners write, and Trivy or Grype with `-f sarif`):
//!
//! ```text
//! {"version": "2.1.0", "$schema": "...",
//!  "runs": [{"tool": {"driver": {"name", "version", "semanticVersion",
//!                                "rules": [{"id", "properties": {"security-severity": "9.8"}}]}},
//!            "invocations": [{"startTimeUtc", "endTimeUtc"}],
//!            "results": [{"ruleId", "ruleIndex", "rule": {"id", "index"}, "kind", "level",
//!                         "properties": {"security-severity": "9.8"}}]}]}
//! ```
//!
//! Each result of kind `fail` (the default) is one finding whose id is its rule id; results of
//! other kinds (`pass`, `notApplicable`, ...) are not findings and are skipped.
//!
//! Severity follows GitHub code scanning's reading of SARIF: the `security-severity` property
//! (of the result, else of its rule) is a CVSS-like score and maps by the CVSS scale (9.0 and up
//! critical, 7.0 high, 4.0 medium, above 0 low) and is kept as `cvss_score`. Without it the
//! severity is unknown: a SARIF `level` says how sure a tool is that something is wrong (`error`
//! is also what linters use for style), not how bad a vulnerability is. SARIF has no package
//! coordinates, so package fields stay empty; suppressions are not read.

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::{Format, wrong};
use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::model::{Severity, Vulnerability};
use crate::normalize;
use crate::read::Reader;

/// The one SARIF version this reader knows.
const VERSION: &str = "2.1.0";
/// The property GitHub code scanning defined for a security score.
const SECURITY_SEVERITY: &str = "security-severity";

pub(super) fn read(r: &mut Reader<'_>, raw: &RawValue, at: Ptr<'_>) -> Result<(), EvidenceError> {
    let Some([version, runs]) = json::members(raw, &["version", "runs"]) else {
        return Err(wrong(Format::Sarif, "it is not an object"));
    };
    // 1. The version marks the format.
    match version.map(|v| serde_json::from_str::<String>(v.get())) {
        Some(Ok(version)) if version == VERSION => {}
        Some(Ok(version)) => {
            return Err(wrong(
                Format::Sarif,
                format!("`version` is `{}`; expected `{VERSION}`", airlock_model::echo::echo_short(&version)),
            ));
        }
        Some(Err(_)) | None => return Err(wrong(Format::Sarif, format!("it has no `version` `{VERSION}`"))),
    }
    // 2. Each run.
    r.each(runs, at.key("runs"), run)
}

/// The rules of one run: their ids by index, their scores by id.
#[derive(Default)]
struct Rules {
    ids: Vec<Option<String>>,
    scores: HashMap<String, f64>,
}

fn run(r: &mut Reader<'_>, at: Ptr<'_>, raw: &RawValue) -> Result<(), EvidenceError> {
    let Some([tool, invocations, results]) = r.object(Some(raw), at, &["tool", "invocations", "results"]) else {
        return Ok(());
    };
    // The tool: its name, version and rules.
    let tool_at = at.key("tool");
    let driver_at = tool_at.key("driver");
    let driver = r.object(tool, tool_at, &["driver"]).and_then(|[driver]| driver);
    let (scanner, scanner_version, rules) =
        match r.object(driver, driver_at, &["name", "version", "semanticVersion", "rules"]) {
            Some([name, version, semantic_version, rules]) => {
                let version = r
                    .text(version, driver_at.key("version"))
                    .or_else(|| r.text(semantic_version, driver_at.key("semanticVersion")));
                (r.text(name, driver_at.key("name")), version, read_rules(r, rules, driver_at.key("rules"))?)
            }
            None => (None, None, Rules::default()),
        };
    // When: the first invocation's start, else its end.
    let mut scanned_at = None;
    r.each(invocations, at.key("invocations"), |r, at, raw| {
        if scanned_at.is_none()
            && let Some([start, end]) = r.object(Some(raw), at, &["startTimeUtc", "endTimeUtc"])
        {
            scanned_at = r.timestamp(start, at.key("startTimeUtc")).or_else(|| r.timestamp(end, at.key("endTimeUtc")));
        }
        Ok(())
    })?;
    let run = Run { scanner, scanner_version, scanned_at, rules };
    r.each(results, at.key("results"), |r, at, raw| result(r, at, raw, &run))
}

/// What every result of a run shares.
struct Run {
    scanner: Option<String>,
    scanner_version: Option<String>,
    scanned_at: Option<String>,
    rules: Rules,
}

fn read_rules(r: &mut Reader<'_>, raw: Option<&RawValue>, at: Ptr<'_>) -> Result<Rules, EvidenceError> {
    let mut rules = Rules::default();
    r.each(raw, at, |r, at, raw| {
        // One rule per finding kind: bounded as findings are.
        if rules.ids.len() >= r.limits.max_vulnerabilities {
            return Err(EvidenceError::TooMany { what: "sarif rules", max: r.limits.max_vulnerabilities });
        }
        let (id, score) = match r.object(Some(raw), at, &["id", "properties"]) {
            Some([id, properties]) => {
                (r.text(id, at.key("id")), security_severity(r, properties, at.key("properties")))
            }
            None => (None, None),
        };
        if let (Some(id), Some(score)) = (&id, score) {
            rules.scores.insert(id.clone(), score);
        }
        rules.ids.push(id);
        Ok(())
    })?;
    Ok(rules)
}

/// The `security-severity` property of a property bag: a score from 0 to 10, as a string or a
/// number.
fn security_severity(r: &mut Reader<'_>, properties: Option<&RawValue>, at: Ptr<'_>) -> Option<f64> {
    let [score] = r.object(properties, at, &[SECURITY_SEVERITY])?;
    r.score(score, at.key(SECURITY_SEVERITY))
}

fn result(r: &mut Reader<'_>, at: Ptr<'_>, raw: &RawValue, run: &Run) -> Result<(), EvidenceError> {
    let Some([rule_id, rule_index, rule, kind, properties]) =
        r.object(Some(raw), at, &["ruleId", "ruleIndex", "rule", "kind", "properties"])
    else {
        return Ok(());
    };
    // Only failures are findings.
    if r.text(kind, at.key("kind")).is_some_and(|kind| kind != "fail") {
        return Ok(());
    }
    // The rule: `ruleId`, else `rule.id`, else the id of the rule at `ruleIndex` or `rule.index`.
    let rule_at = at.key("rule");
    let (reference_id, reference_index) = match r.object(rule, rule_at, &["id", "index"]) {
        Some([id, index]) => (r.text(id, rule_at.key("id")), index),
        None => (None, None),
    };
    let index = rule_index.or(reference_index).and_then(|index| serde_json::from_str::<usize>(index.get()).ok());
    let indexed_id = index.and_then(|index| run.rules.ids.get(index)).cloned().flatten();
    let Some(id) = r.text(rule_id, at.key("ruleId")).or(reference_id).or(indexed_id) else {
        r.note(at, "has no `ruleId`; the result was not read");
        return Ok(());
    };
    let cvss_score =
        security_severity(r, properties, at.key("properties")).or_else(|| run.rules.scores.get(&id).copied());
    let severity = cvss_score.map_or(Severity::Unknown, normalize::severity_of_score);
    r.push_vulnerability(Vulnerability {
        id,
        aliases: Vec::new(),
        severity,
        cvss_score,
        package_name: None,
        package_purl: None,
        installed_version: None,
        fixed_version: None,
        fix_available: false,
        scanner: run.scanner.clone(),
        scanner_version: run.scanner_version.clone(),
        scanned_at: run.scanned_at.clone(),
    })
}
