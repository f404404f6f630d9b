//! CycloneDX JSON, spec versions 1.2 to 1.7 (the fields read here are the same in all of them):
//!
//! ```text
//! {"bomFormat": "CycloneDX", "specVersion": "1.6",
//!  "metadata": {"timestamp", "tools": [...] | {"components": [...]}, "component": {...}},
//!  "components": [{"bom-ref", "name", "version", "purl",
//!                  "licenses": [{"license": {"id" | "name"}} | {"expression"}],
//!                  "components": [...]}],
//!  "vulnerabilities": [{"id", "references": [{"id"}], "ratings": [{"score", "severity", "method"}],
//!                       "recommendation", "updated",
//!                       "analysis": {"state", "justification", "detail", "lastUpdated"},
//!                       "affects": [{"ref"}]}]}
//! ```
//!
//! Components are read with their nested components; `metadata.component` (the thing the BOM
//! describes) is not one of them, but `affects` may name it. A vulnerability becomes one
//! [`Vulnerability`] per affected component (or one without a package if it affects none), and,
//! when it carries an `analysis`, also a [`VexStatement`] about those components: a VEX-only BOM
//! states vulnerabilities too, so a policy matches them against the statements as it does for any
//! scanner's. CycloneDX gives no fixed version, so `fix_available` is false.

use std::collections::{HashMap, HashSet};

use serde_json::value::RawValue;

use super::{Format, wrong};
use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::model::{Component, Severity, VexStatement, VexStatus, Vulnerability};
use crate::normalize;
use crate::read::{Reader, dedup};
use airlock_model::echo::echo_short as echo;

/// The spec versions whose JSON this reader knows.
const SPEC_VERSIONS: [&str; 6] = ["1.2", "1.3", "1.4", "1.5", "1.6", "1.7"];

/// What a `bom-ref` names, for `affects`.
#[derive(Clone)]
struct Target {
    name: Option<String>,
    version: Option<String>,
    purl: Option<String>,
}

pub(super) fn read(r: &mut Reader<'_>, raw: &RawValue, at: Ptr<'_>) -> Result<(), EvidenceError> {
    let Some([bom_format, spec_version, metadata, components, vulnerabilities]) =
        json::members(raw, &["bomFormat", "specVersion", "metadata", "components", "vulnerabilities"])
    else {
        return Err(wrong(Format::CycloneDx, "it is not an object"));
    };
    // 1. `bomFormat` marks the format; the spec requires it.
    match bom_format.map(|b| serde_json::from_str::<String>(b.get())) {
        Some(Ok(format)) if format == "CycloneDX" => {}
        Some(Ok(format)) => {
            return Err(wrong(Format::CycloneDx, format!("`bomFormat` is `{}`; expected `CycloneDX`", echo(&format))));
        }
        Some(Err(_)) | None => return Err(wrong(Format::CycloneDx, "it has no `bomFormat` `CycloneDX`")),
    }
    match r.text(spec_version, at.key("specVersion")) {
        Some(version) if SPEC_VERSIONS.contains(&version.as_str()) => {}
        Some(version) => r.note(
            at.key("specVersion"),
            format!("spec version `{}` is not one Airlock knows; read as 1.7", echo(&version)),
        ),
        None => r.note(at.key("specVersion"), "is missing; read as 1.7"),
    }
    // 2. The metadata: when, which tool, and the described component (for `affects`).
    let mut targets = HashMap::new();
    let metadata_at = at.key("metadata");
    let (timestamp, tool) = match r.object(metadata, metadata_at, &["timestamp", "tools", "component"]) {
        Some([timestamp, tools, component]) => {
            let timestamp = r.timestamp(timestamp, metadata_at.key("timestamp"));
            let tool = first_tool(r, tools, metadata_at.key("tools"))?;
            if let Some(component) = component {
                described(r, component, metadata_at.key("component"), &mut targets);
            }
            (timestamp, tool)
        }
        None => (None, (None, None)),
    };
    // 3. The components, nested ones included.
    r.each(components, at.key("components"), |r, at, raw| component(r, at, raw, &mut targets))?;
    // 4. The vulnerabilities, and their analyses as VEX.
    let bom = Bom { targets, timestamp, scanner: tool.0, scanner_version: tool.1 };
    r.each(vulnerabilities, at.key("vulnerabilities"), |r, at, raw| vulnerability(r, at, raw, &bom))
}

/// What every vulnerability of one BOM shares.
struct Bom {
    targets: HashMap<String, Target>,
    timestamp: Option<String>,
    scanner: Option<String>,
    scanner_version: Option<String>,
}

/// The name and version of the first tool: `tools` is an array of `{name, version}` up to 1.4,
/// and `{"components": [...], "services": [...]}` from 1.5.
fn first_tool(
    r: &mut Reader<'_>,
    tools: Option<&RawValue>,
    at: Ptr<'_>,
) -> Result<(Option<String>, Option<String>), EvidenceError> {
    let Some(tools) = tools else { return Ok((None, None)) };
    let (list, list_at) = if json::is_object(tools) {
        let components = json::members(tools, &["components"]).and_then(|[components]| components);
        (components, at.key("components"))
    } else {
        (Some(tools), at)
    };
    let mut first = None;
    r.each(list, list_at, |r, at, raw| {
        if first.is_none()
            && let Some([name, version]) = r.object(Some(raw), at, &["name", "version"])
        {
            first = Some((r.text(name, at.key("name")), r.text(version, at.key("version"))));
        }
        Ok(())
    })?;
    Ok(first.unwrap_or((None, None)))
}

/// Remembers the BOM's own component for `affects`, without listing it as a component.
fn described(r: &mut Reader<'_>, raw: &RawValue, at: Ptr<'_>, targets: &mut HashMap<String, Target>) {
    if let Some([bom_ref, name, version, purl]) = r.object(Some(raw), at, &["bom-ref", "name", "version", "purl"])
        && let Some(bom_ref) = r.text(bom_ref, at.key("bom-ref"))
    {
        let target = Target {
            name: r.text(name, at.key("name")),
            version: r.text(version, at.key("version")),
            purl: r.purl(purl, at.key("purl")),
        };
        targets.insert(bom_ref, target);
    }
}

fn component(
    r: &mut Reader<'_>,
    at: Ptr<'_>,
    raw: &RawValue,
    targets: &mut HashMap<String, Target>,
) -> Result<(), EvidenceError> {
    let Some([bom_ref, name, version, purl, licenses, nested]) =
        r.object(Some(raw), at, &["bom-ref", "name", "version", "purl", "licenses", "components"])
    else {
        return Ok(());
    };
    match r.text(name, at.key("name")) {
        None => r.note(at, "has no `name`; the component was not read"),
        Some(name) => {
            let version = r.text(version, at.key("version"));
            let purl = r.purl(purl, at.key("purl"));
            let (licenses, license_expression) = read_licenses(r, licenses, at.key("licenses"))?;
            if let Some(bom_ref) = r.text(bom_ref, at.key("bom-ref")) {
                let target = Target { name: Some(name.clone()), version: version.clone(), purl: purl.clone() };
                targets.insert(bom_ref, target);
            }
            r.push_component(Component { name, version, purl, licenses, license_expression })?;
        }
    }
    // Nesting is bounded by the document's depth limit.
    r.each(nested, at.key("components"), |r, at, raw| component(r, at, raw, targets))
}

/// Every license id, name and expression, and the expression if there is one.
fn read_licenses(
    r: &mut Reader<'_>,
    raw: Option<&RawValue>,
    at: Ptr<'_>,
) -> Result<(Vec<String>, Option<String>), EvidenceError> {
    let mut licenses = Vec::new();
    let mut expression = None;
    r.each(raw, at, |r, at, raw| {
        let Some([license, choice_expression]) = r.object(Some(raw), at, &["license", "expression"]) else {
            return Ok(());
        };
        if let Some(text) = r.text(choice_expression, at.key("expression")) {
            expression = expression.take().or(Some(text.clone()));
            return r.add(&mut licenses, text, "licenses in one component");
        }
        let license_at = at.key("license");
        let Some([id, name]) = r.object(license, license_at, &["id", "name"]) else {
            r.note(at, "has neither `license` nor `expression`");
            return Ok(());
        };
        match r.text(id, license_at.key("id")).or_else(|| r.text(name, license_at.key("name"))) {
            Some(text) => r.add(&mut licenses, text, "licenses in one component"),
            None => {
                r.note(license_at, "has neither `id` nor `name`");
                Ok(())
            }
        }
    })?;
    dedup(&mut licenses);
    Ok((licenses, expression))
}

fn vulnerability(r: &mut Reader<'_>, at: Ptr<'_>, raw: &RawValue, bom: &Bom) -> Result<(), EvidenceError> {
    let Some([id, references, ratings, recommendation, updated, analysis, affects]) =
        r.object(Some(raw), at, &["id", "references", "ratings", "recommendation", "updated", "analysis", "affects"])
    else {
        return Ok(());
    };
    let Some(id) = r.text(id, at.key("id")) else {
        r.note(at, "has no `id`; the vulnerability was not read");
        return Ok(());
    };
    // Aliases: the ids of the references (the same vulnerability in other databases).
    let mut aliases = Vec::new();
    r.each(references, at.key("references"), |r, at, raw| {
        let Some([alias]) = r.object(Some(raw), at, &["id"]) else { return Ok(()) };
        match r.text(alias, at.key("id")) {
            Some(alias) if alias != id => r.add(&mut aliases, alias, "aliases in one vulnerability"),
            _ => Ok(()),
        }
    })?;
    dedup(&mut aliases);
    let (severity, cvss_score) = read_ratings(r, ratings, at.key("ratings"))?;
    // The affected components, each once.
    let mut affected: Vec<Target> = Vec::new();
    let mut products = Vec::new();
    let mut seen = HashSet::new();
    r.each(affects, at.key("affects"), |r, at, raw| {
        let Some([reference]) = r.object(Some(raw), at, &["ref"]) else { return Ok(()) };
        let Some(reference) = r.text(reference, at.key("ref")) else { return Ok(()) };
        let target = match bom.targets.get(&reference) {
            Some(target) => target.clone(),
            None if normalize::looks_like_purl(&reference) => {
                Target { name: None, version: None, purl: Some(reference.clone()) }
            }
            None => {
                r.note(at.key("ref"), format!("`{}` names no component of this bom", echo(&reference)));
                Target { name: None, version: None, purl: None }
            }
        };
        // A VEX product is the component's purl, else the reference as given.
        let product = target.purl.clone().unwrap_or(reference);
        if seen.insert(product.clone()) {
            r.add(&mut products, product, "affected components in one vulnerability")?;
            affected.push(target);
        }
        Ok(())
    })?;
    if affected.is_empty() {
        affected.push(Target { name: None, version: None, purl: None });
    }
    for target in affected {
        r.push_vulnerability(Vulnerability {
            id: id.clone(),
            aliases: aliases.clone(),
            severity,
            cvss_score,
            package_name: target.name,
            package_purl: target.purl,
            installed_version: target.version,
            fixed_version: None,
            fix_available: false,
            scanner: bom.scanner.clone(),
            scanner_version: bom.scanner_version.clone(),
            scanned_at: bom.timestamp.clone(),
        })?;
    }
    // The analysis, as VEX about the same components.
    let analysis_at = at.key("analysis");
    let Some([state, justification, detail, last_updated]) =
        r.object(analysis, analysis_at, &["state", "justification", "detail", "lastUpdated"])
    else {
        return Ok(());
    };
    let Some(state) = r.text(state, analysis_at.key("state")) else { return Ok(()) };
    let Some(status) = status(&state) else {
        r.note(analysis_at.key("state"), format!("`{}` is not a cyclonedx analysis state", echo(&state)));
        return Ok(());
    };
    let updated = r.timestamp(updated, at.key("updated"));
    let timestamp =
        r.timestamp(last_updated, analysis_at.key("lastUpdated")).or(updated).or_else(|| bom.timestamp.clone());
    let statement = VexStatement {
        vulnerability_id: id,
        aliases,
        products,
        subcomponents: Vec::new(),
        status,
        justification: r.text(justification, analysis_at.key("justification")),
        impact_statement: r.prose(detail, analysis_at.key("detail")),
        action_statement: r.prose(recommendation, at.key("recommendation")),
        timestamp,
    };
    r.push_vex(statement)
}

/// The highest severity among the ratings (or, where none names one, of the highest score), and
/// the highest CVSS score (ratings whose method is CVSS, or unnamed).
fn read_ratings(
    r: &mut Reader<'_>,
    raw: Option<&RawValue>,
    at: Ptr<'_>,
) -> Result<(Severity, Option<f64>), EvidenceError> {
    let mut named: Option<Severity> = None;
    let mut cvss: Option<f64> = None;
    let mut any_score: Option<f64> = None;
    let mut count = 0usize;
    r.each(raw, at, |r, at, raw| {
        count = count.saturating_add(1);
        if count > r.limits.max_list_len {
            return Err(EvidenceError::TooMany { what: "ratings in one vulnerability", max: r.limits.max_list_len });
        }
        let Some([score, severity, method]) = r.object(Some(raw), at, &["score", "severity", "method"]) else {
            return Ok(());
        };
        // A rating that says `unknown` (or `none`, `info`) leaves room for another's score.
        if let Some(severity) = r.severity(severity, at.key("severity")).filter(|s| *s != Severity::Unknown) {
            named = named.max(Some(severity));
        }
        if let Some(score) = r.score(score, at.key("score")) {
            any_score = Some(any_score.map_or(score, |best| best.max(score)));
            let method = r.text(method, at.key("method"));
            if method.is_none_or(|m| m.starts_with("CVSS")) {
                cvss = Some(cvss.map_or(score, |best| best.max(score)));
            }
        }
        Ok(())
    })?;
    let severity = named.or_else(|| any_score.map(normalize::severity_of_score)).unwrap_or(Severity::Unknown);
    Ok((severity, cvss))
}

/// The VEX status of a CycloneDX impact analysis state.
fn status(state: &str) -> Option<VexStatus> {
    match state {
        "not_affected" | "false_positive" => Some(VexStatus::NotAffected),
        "exploitable" => Some(VexStatus::Affected),
        "resolved" | "resolved_with_pedigree" => Some(VexStatus::Fixed),
        "in_triage" => Some(VexStatus::UnderInvestigation),
        _ => None,
    }
}
