//! Grype's JSON report (`grype -o json`; Go type `grype/presenter/models.Document`):
//!
//! ```text
//! {"matches": [{"vulnerability": {"id", "severity", "cvss": [{"type", "version", "metrics": {"baseScore"}}],
//!                                 "fix": {"versions": [...], "state": "fixed|not-fixed|wont-fix|unknown"}},
//!               "relatedVulnerabilities": [{"id", "cvss": [...]}],
//!               "artifact": {"name", "version", "purl", ...}}],
//!  "source": {...}, "distro": {...},
//!  "descriptor": {"name": "grype", "version": "0.74.0", "timestamp": "<RFC 3339>"}}
//! ```
//!
//! Each match is one vulnerability. The artifacts are only the vulnerable packages, not an SBOM,
//! so they are not read as components.

use serde_json::value::RawValue;

use super::{Format, wrong};
use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::model::Vulnerability;
use crate::normalize;
use crate::read::{Reader, dedup};

pub(super) fn read(r: &mut Reader<'_>, raw: &RawValue, at: Ptr<'_>) -> Result<(), EvidenceError> {
    let Some([matches, descriptor]) = json::members(raw, &["matches", "descriptor"]) else {
        return Err(wrong(Format::Grype, "it is not an object"));
    };
    // 1. Grype always writes `matches`, `[]` when it found nothing.
    match matches {
        Some(matches) if matches.get().trim_start().starts_with('[') => {}
        Some(matches) => {
            return Err(wrong(Format::Grype, format!("`matches` is {}; expected an array", json::kind(matches))));
        }
        None => return Err(wrong(Format::Grype, "it has no `matches` member")),
    }
    // 2. Which Grype, and when.
    let descriptor_at = at.key("descriptor");
    let (scanner, scanner_version, scanned_at) =
        match r.object(descriptor, descriptor_at, &["name", "version", "timestamp"]) {
            Some([name, version, timestamp]) => (
                r.text(name, descriptor_at.key("name")),
                r.text(version, descriptor_at.key("version")),
                r.timestamp(timestamp, descriptor_at.key("timestamp")),
            ),
            None => (None, None, None),
        };
    let scan = Scan { scanner: scanner.or_else(|| Some("grype".to_owned())), scanner_version, scanned_at };
    // 3. Each match.
    r.each(matches, at.key("matches"), |r, at, raw| one_match(r, at, raw, &scan))
}

/// Which Grype made the report, and when.
struct Scan {
    scanner: Option<String>,
    scanner_version: Option<String>,
    scanned_at: Option<String>,
}

fn one_match(r: &mut Reader<'_>, at: Ptr<'_>, raw: &RawValue, scan: &Scan) -> Result<(), EvidenceError> {
    let Some([vulnerability, related, artifact]) =
        r.object(Some(raw), at, &["vulnerability", "relatedVulnerabilities", "artifact"])
    else {
        return Ok(());
    };
    let vulnerability_at = at.key("vulnerability");
    let Some([id, severity, cvss, fix]) = r.object(vulnerability, vulnerability_at, &["id", "severity", "cvss", "fix"])
    else {
        r.note(at, "has no `vulnerability`; the match was not read");
        return Ok(());
    };
    let Some(id) = r.text(id, vulnerability_at.key("id")) else {
        r.note(vulnerability_at, "has no `id`; the match was not read");
        return Ok(());
    };
    // Related vulnerabilities: aliases, and a score where the match's own record has none.
    let mut aliases = Vec::new();
    let mut related_score = None;
    r.each(related, at.key("relatedVulnerabilities"), |r, at, raw| {
        let Some([related_id, cvss]) = r.object(Some(raw), at, &["id", "cvss"]) else { return Ok(()) };
        if let Some(related_id) = r.text(related_id, at.key("id")).filter(|related_id| *related_id != id) {
            r.add(&mut aliases, related_id, "aliases in one vulnerability")?;
        }
        if related_score.is_none() {
            related_score = base_score(r, cvss, at.key("cvss"))?;
        }
        Ok(())
    })?;
    dedup(&mut aliases);
    let cvss_score = base_score(r, cvss, vulnerability_at.key("cvss"))?.or(related_score);
    let severity = normalize::severity_or_score(r.severity(severity, vulnerability_at.key("severity")), cvss_score);
    let fixed_version = fixed_version(r, fix, vulnerability_at.key("fix"))?;
    let artifact_at = at.key("artifact");
    let (package_name, installed_version, package_purl) =
        match r.object(artifact, artifact_at, &["name", "version", "purl"]) {
            Some([name, version, purl]) => (
                r.text(name, artifact_at.key("name")),
                r.text(version, artifact_at.key("version")),
                r.purl(purl, artifact_at.key("purl")),
            ),
            None => (None, None, None),
        };
    r.push_vulnerability(Vulnerability {
        id,
        aliases,
        severity,
        cvss_score,
        package_name,
        package_purl,
        installed_version,
        fix_available: fixed_version.is_some(),
        fixed_version,
        scanner: scan.scanner.clone(),
        scanner_version: scan.scanner_version.clone(),
        scanned_at: scan.scanned_at.clone(),
    })
}

/// The `baseScore` of the first `Primary` CVSS entry, else of the first entry with one.
fn base_score(r: &mut Reader<'_>, cvss: Option<&RawValue>, at: Ptr<'_>) -> Result<Option<f64>, EvidenceError> {
    let mut primary = None;
    let mut first = None;
    let mut count = 0usize;
    r.each(cvss, at, |r, at, raw| {
        count = count.saturating_add(1);
        if count > r.limits.max_list_len {
            return Err(EvidenceError::TooMany {
                what: "cvss entries in one vulnerability",
                max: r.limits.max_list_len,
            });
        }
        let Some([kind, metrics]) = r.object(Some(raw), at, &["type", "metrics"]) else { return Ok(()) };
        let metrics_at = at.key("metrics");
        let Some([score]) = r.object(metrics, metrics_at, &["baseScore"]) else { return Ok(()) };
        let Some(score) = r.score(score, metrics_at.key("baseScore")) else { return Ok(()) };
        if primary.is_none() && r.text(kind, at.key("type")).as_deref() == Some("Primary") {
            primary = Some(score);
        }
        first = first.or(Some(score));
        Ok(())
    })?;
    Ok(primary.or(first))
}

/// The fixed versions, joined with `, ` as Trivy writes them, when the state is `fixed`.
fn fixed_version(r: &mut Reader<'_>, fix: Option<&RawValue>, at: Ptr<'_>) -> Result<Option<String>, EvidenceError> {
    let Some([versions, state]) = r.object(fix, at, &["versions", "state"]) else { return Ok(None) };
    let state = r.text(state, at.key("state"));
    let versions = r.texts(versions, at.key("versions"), "fixed versions in one vulnerability")?;
    Ok((state.as_deref() == Some("fixed") && !versions.is_empty()).then(|| versions.join(", ")))
}
