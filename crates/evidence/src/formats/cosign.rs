//! cosign's vulnerability scan record (`https://cosign.sigstore.dev/attestation/vuln/v1`, as
//! `cosign attest --type vuln` and `trivy --format cosign-vuln` write it):
//!
//! ```text
//! {"invocation": {"parameters", "uri", "event_id", "builder.id"},
//!  "scanner": {"uri": "pkg:github/aquasecurity/trivy@0.50.0", "version": "0.50.0",
//!              "db": {"uri", "version"}, "result": {<the scanner's own report>}},
//!  "metadata": {"scanStartedOn": "<RFC 3339>", "scanFinishedOn": "<RFC 3339>"}}
//! ```
//!
//! cosign's written specification says `scanners` (a list of the same objects); both are read.
//! The `result` is read as the Trivy, Grype, SARIF or CycloneDX report it is; a result in any
//! other shape is reported in `unread`. Its vulnerabilities are then dated by the record:
//! `scanned_at` is `scanStartedOn` (the scan's database was the one loaded then), else
//! `scanFinishedOn`, else the report's own time; the scanner is the report's, else the record's
//! `uri`, and its version the report's, else the record's.

use serde_json::value::RawValue;

use super::{Format, wrong};
use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::read::Reader;

/// The reports a scan record may embed.
const EMBEDDED: [Format; 4] = [Format::Trivy, Format::Grype, Format::Sarif, Format::CycloneDx];

pub(super) fn read(r: &mut Reader<'_>, raw: &RawValue, at: Ptr<'_>) -> Result<(), EvidenceError> {
    let Some([scanner, scanners, metadata]) = json::members(raw, &["scanner", "scanners", "metadata"]) else {
        return Err(wrong(Format::CosignVuln, "it is not an object"));
    };
    // 1. A scanner marks the format.
    if scanner.is_none() && scanners.is_none() {
        return Err(wrong(Format::CosignVuln, "it has no `scanner`"));
    }
    // 2. When the scan ran.
    let metadata_at = at.key("metadata");
    let scanned_at = match r.object(metadata, metadata_at, &["scanStartedOn", "scanFinishedOn"]) {
        Some([started, finished]) => {
            let started = r.timestamp(started, metadata_at.key("scanStartedOn"));
            let finished = r.timestamp(finished, metadata_at.key("scanFinishedOn"));
            started.or(finished)
        }
        None => None,
    };
    // 3. Each scanner's result.
    if let Some(scanner) = scanner {
        read_scanner(r, scanner, at.key("scanner"), scanned_at.as_deref())?;
    }
    r.each(scanners, at.key("scanners"), |r, at, raw| read_scanner(r, raw, at, scanned_at.as_deref()))
}

fn read_scanner(
    r: &mut Reader<'_>,
    raw: &RawValue,
    at: Ptr<'_>,
    scanned_at: Option<&str>,
) -> Result<(), EvidenceError> {
    let Some([uri, version, result]) = r.object(Some(raw), at, &["uri", "version", "result"]) else {
        return Ok(());
    };
    let uri = r.text(uri, at.key("uri"));
    let version = r.text(version, at.key("version"));
    let result_at = at.key("result");
    let Some(result) = result else {
        r.note(at, "has no `result`; no vulnerabilities were read from it");
        return Ok(());
    };
    let Some(format) = crate::formats::sniff(result).filter(|format| EMBEDDED.contains(format)) else {
        r.note(result_at, "is not a trivy, grype, sarif or cyclonedx report; no vulnerabilities were read from it");
        return Ok(());
    };
    let first = r.out.vulnerabilities.len();
    match crate::formats::read(r, format, result, result_at, None) {
        Ok(()) => {}
        Err(EvidenceError::WrongFormat { reason, .. }) => r.note(result_at, reason),
        Err(e) => return Err(e),
    }
    for vulnerability in r.out.vulnerabilities.iter_mut().skip(first) {
        if vulnerability.scanner.is_none() {
            vulnerability.scanner.clone_from(&uri);
        }
        if vulnerability.scanner_version.is_none() {
            vulnerability.scanner_version.clone_from(&version);
        }
        if let Some(scanned_at) = scanned_at {
            vulnerability.scanned_at = Some(scanned_at.to_owned());
        }
    }
    Ok(())
}
