//! Evidence formats in, one evidence model out: the parsers that read what scanners, SBOM tools
//! and build systems produce (SLSA provenance, CycloneDX, SPDX, Trivy, Grype, SARIF, cosign
//! vulnerability scans, OpenVEX) and normalize it into the [`Evidence`] a Rego policy reads.
//!
//! A leaf: it knows nothing of OCI, HTTP, signatures or storage. It reads bytes (a document, or
//! an in-toto predicate that `airlock-dsse` has already verified) and returns data.
//!
//! ```
//! use airlock_evidence::{Format, Limits, Severity, parse_auto};
//!
//! let report = br#"{"SchemaVersion": 2, "CreatedAt": "2024-05-01T10:00:00+02:00", "Results": [{
//!     "Target": "app (alpine 3.19.1)",
//!     "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-2511", "PkgName": "libssl3",
//!         "PkgIdentifier": {"PURL": "pkg:apk/alpine/libssl3@3.1.4-r5"},
//!         "InstalledVersion": "3.1.4-r5", "FixedVersion": "3.1.4-r6", "Severity": "MEDIUM"}]}]}"#;
//! let (format, evidence) = parse_auto(report, &Limits::default())?;
//! assert_eq!(format, Format::Trivy);
//! let vulnerability = &evidence.vulnerabilities[0];
//! assert_eq!(vulnerability.severity, Severity::Medium);
//! assert!(vulnerability.fix_available);
//! assert_eq!(vulnerability.scanned_at.as_deref(), Some("2024-05-01T08:00:00Z"));
//! assert!(evidence.unread.is_empty());
//! # Ok::<(), airlock_evidence::EvidenceError>(())
//! ```
//!
//! # Strict about structure, tolerant of content
//!
//! A document is refused as a whole ([`EvidenceError`]) only when it is over [`Limits`], not
//! UTF-8 JSON, repeats a member in an object (two answers to one question), is not the format it
//! claims, or lists more entries than the limits allow. Everything else that is odd (a
//! vulnerability without an id, a severity no scanner defines, a score that is `NaN`, a purl that
//! is not one, a string with terminal escapes in it) costs only that field or entry, and is
//! reported in [`Evidence::unread`] with its JSON pointer, so a policy can refuse partial
//! evidence.
//!
//! Documents are read in place: the parsers slice the members they need out of the input, skip
//! the rest without allocating, and walk arrays one element at a time. Nesting depth and repeated
//! members are checked in one pass before any reading; counts while the model is built.
//!
//! # What each format contributes
//!
//! | format | provenance | components | vulnerabilities | vex |
//! | --- | --- | --- | --- | --- |
//! | SLSA v1, v0.2 | builder, build type, source, ref, commit, trigger | | | |
//! | CycloneDX 1.2–1.7 | | `components` (nested too) | `vulnerabilities`, once per affected component | each vulnerability's `analysis` |
//! | SPDX 2.2, 2.3 | | `packages` | | |
//! | Trivy | | `Results[].Packages` | `Results[].Vulnerabilities` | |
//! | Grype | | | `matches` | |
//! | SARIF 2.1.0 | | | `runs[].results` of kind `fail` | |
//! | cosign vuln | | | its embedded Trivy, Grype, SARIF or CycloneDX result | |
//! | OpenVEX | | | | `statements` |
//!
//! The model's rustdoc ([`Provenance`], [`Component`], [`Vulnerability`], [`Severity`],
//! [`VexStatement`]) says how each field is filled.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod document;
mod error;
mod formats;
mod json;
mod limits;
mod model;
mod normalize;
mod read;

pub use document::{detect, from_predicate, parse, parse_auto};
pub use error::EvidenceError;
pub use formats::{
    COSIGN_VULN, CYCLONEDX_BOM, CYCLONEDX_VEX, Format, OPENVEX_NS, SLSA_PROVENANCE_V0_2, SLSA_PROVENANCE_V1,
    SPDX_DOCUMENT,
};
pub use limits::{
    Limits, MAX_BYTES, MAX_COMPONENTS, MAX_DEPTH, MAX_LIST_LEN, MAX_STRING_LEN, MAX_UNREAD, MAX_VEX_STATEMENTS,
    MAX_VULNERABILITIES,
};
pub use model::{
    Component, Evidence, Provenance, Severity, TestResult, Unread, VexStatement, VexStatus, Vulnerability,
};
