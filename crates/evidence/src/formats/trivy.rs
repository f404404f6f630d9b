//! Trivy's JSON report (`trivy image --format json`; Go type `pkg/types.Report`, schema version 2):
//!
//! ```text
//! {"SchemaVersion": 2, "CreatedAt": "<RFC 3339>", "Trivy": {"Version": "0.58.1"},
//!  "Results": [{"Target": "...",
//!    "Packages": [{"Name", "Version", "Identifier": {"PURL"}, "Licenses": [...]}],
//!    "Vulnerabilities": [{"VulnerabilityID", "VendorIDs": [...], "PkgName", "PkgIdentifier": {"PURL"},
//!      "InstalledVersion", "FixedVersion", "Severity", "SeveritySource",
//!      "CVSS": {"<source>": {"V3Score", "V40Score", ...}}}]}]}
//! ```
//!
//! Packages (present with `--list-all-pkgs`) become components; vulnerabilities become
//! vulnerabilities. Misconfigurations, secrets and license findings are not read.

use serde_json::value::RawValue;

use super::{Format, wrong};
use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::model::{Component, Vulnerability};
use crate::normalize;
use crate::read::Reader;

/// The one schema version this reader knows.
const SCHEMA_VERSION: u64 = 2;

pub(super) fn read(r: &mut Reader<'_>, raw: &RawValue, at: Ptr<'_>) -> Result<(), EvidenceError> {
    let Some([schema_version, created_at, trivy, results]) =
        json::members(raw, &["SchemaVersion", "CreatedAt", "Trivy", "Results"])
    else {
        return Err(wrong(Format::Trivy, "it is not an object"));
    };
    // 1. The schema version marks the format.
    let Some(schema_version) = schema_version else {
        return Err(wrong(Format::Trivy, "it has no `SchemaVersion` member"));
    };
    match serde_json::from_str::<u64>(schema_version.get()) {
        Ok(SCHEMA_VERSION) => {}
        Ok(other) => r.note(
            at.key("SchemaVersion"),
            format!("schema version {other} is not one Airlock knows; read as version {SCHEMA_VERSION}"),
        ),
        Err(_) => {
            let reason = format!("`SchemaVersion` is {}; expected {SCHEMA_VERSION}", json::kind(schema_version));
            return Err(wrong(Format::Trivy, reason));
        }
    }
    // 2. When, and which Trivy.
    let scanned_at = r.timestamp(created_at, at.key("CreatedAt"));
    let trivy_at = at.key("Trivy");
    let scanner_version = match r.object(trivy, trivy_at, &["Version"]) {
        Some([version]) => r.text(version, trivy_at.key("Version")),
        None => None,
    };
    let scan = Scan { scanned_at, scanner_version };
    // 3. Each result's packages and vulnerabilities.
    r.each(results, at.key("Results"), |r, at, result| {
        let Some([packages, vulnerabilities]) = r.object(Some(result), at, &["Packages", "Vulnerabilities"]) else {
            return Ok(());
        };
        r.each(packages, at.key("Packages"), package)?;
        r.each(vulnerabilities, at.key("Vulnerabilities"), |r, at, raw| vulnerability(r, at, raw, &scan))
    })
}

/// When and with which version the report was made, for every vulnerability in it.
struct Scan {
    scanned_at: Option<String>,
    scanner_version: Option<String>,
}

fn package(r: &mut Reader<'_>, at: Ptr<'_>, raw: &RawValue) -> Result<(), EvidenceError> {
    let Some([name, version, identifier, licenses]) =
        r.object(Some(raw), at, &["Name", "Version", "Identifier", "Licenses"])
    else {
        return Ok(());
    };
    let Some(name) = r.text(name, at.key("Name")) else {
        r.note(at, "has no `Name`; the package was not read");
        return Ok(());
    };
    let version = r.text(version, at.key("Version"));
    let purl = purl(r, identifier, at.key("Identifier"));
    let licenses = r.texts(licenses, at.key("Licenses"), "licenses in one package")?;
    r.push_component(Component { name, version, purl, licenses, license_expression: None })
}

/// `{"PURL": "pkg:..."}`, Trivy's package identifier.
fn purl(r: &mut Reader<'_>, identifier: Option<&RawValue>, at: Ptr<'_>) -> Option<String> {
    let [purl] = r.object(identifier, at, &["PURL"])?;
    r.purl(purl, at.key("PURL"))
}

fn vulnerability(r: &mut Reader<'_>, at: Ptr<'_>, raw: &RawValue, scan: &Scan) -> Result<(), EvidenceError> {
    let Some(
        [id, vendor_ids, pkg_name, pkg_identifier, installed_version, fixed_version, severity, severity_source, cvss],
    ) = r.object(
        Some(raw),
        at,
        &[
            "VulnerabilityID",
            "VendorIDs",
            "PkgName",
            "PkgIdentifier",
            "InstalledVersion",
            "FixedVersion",
            "Severity",
            "SeveritySource",
            "CVSS",
        ],
    )
    else {
        return Ok(());
    };
    let Some(id) = r.text(id, at.key("VulnerabilityID")) else {
        r.note(at, "has no `VulnerabilityID`; the vulnerability was not read");
        return Ok(());
    };
    let aliases = r.texts(vendor_ids, at.key("VendorIDs"), "aliases in one vulnerability")?;
    let severity_source = r.text(severity_source, at.key("SeveritySource"));
    let cvss_score = cvss_score(r, cvss, at.key("CVSS"), severity_source.as_deref())?;
    let severity = normalize::severity_or_score(r.severity(severity, at.key("Severity")), cvss_score);
    let fixed_version = r.text(fixed_version, at.key("FixedVersion"));
    let vulnerability = Vulnerability {
        id,
        aliases,
        severity,
        cvss_score,
        package_name: r.text(pkg_name, at.key("PkgName")),
        package_purl: purl(r, pkg_identifier, at.key("PkgIdentifier")),
        installed_version: r.text(installed_version, at.key("InstalledVersion")),
        fix_available: fixed_version.is_some(),
        fixed_version,
        scanner: Some("trivy".to_owned()),
        scanner_version: scan.scanner_version.clone(),
        scanned_at: scan.scanned_at.clone(),
    };
    r.push_vulnerability(vulnerability)
}

/// The CVSS base score of the source Trivy took the severity from, else NVD's, else the first
/// source's: its V3 score, else its V4 score.
fn cvss_score(
    r: &mut Reader<'_>,
    cvss: Option<&RawValue>,
    at: Ptr<'_>,
    severity_source: Option<&str>,
) -> Result<Option<f64>, EvidenceError> {
    let mut by_source: Vec<(String, f64)> = Vec::new();
    r.each_member(cvss, at, |r, at, source, raw| {
        let Some([v3, v40]) = r.object(Some(raw), at, &["V3Score", "V40Score"]) else { return Ok(()) };
        let score = r.score(v3, at.key("V3Score")).or_else(|| r.score(v40, at.key("V40Score")));
        if let Some(score) = score {
            if by_source.len() >= r.limits.max_list_len {
                return Err(EvidenceError::TooMany {
                    what: "cvss sources in one vulnerability",
                    max: r.limits.max_list_len,
                });
            }
            by_source.push((source.to_owned(), score));
        }
        Ok(())
    })?;
    let pick = |name: &str| by_source.iter().find(|(source, _)| source == name).map(|(_, score)| *score);
    Ok(severity_source.and_then(pick).or_else(|| pick("nvd")).or_else(|| by_source.first().map(|(_, score)| *score)))
}
