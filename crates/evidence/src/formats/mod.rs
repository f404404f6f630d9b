//! The formats Airlock reads, how each is recognized, and the dispatch to its parser.

mod cosign;
mod cyclonedx;
mod grype;
mod openvex;
mod sarif;
mod slsa;
mod spdx;
mod trivy;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::read::Reader;

pub(crate) use slsa::SlsaVersion;

/// An evidence format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// SLSA provenance v1 (`https://slsa.dev/provenance/v1`) or v0.2.
    #[serde(rename = "slsa")]
    SlsaProvenance,
    /// CycloneDX JSON 1.2 to 1.7, with embedded vulnerabilities and VEX analysis.
    #[serde(rename = "cyclonedx")]
    CycloneDx,
    /// SPDX 2.x JSON (2.2, 2.3).
    #[serde(rename = "spdx")]
    Spdx,
    /// Trivy's JSON report (`trivy image -f json`, schema version 2).
    #[serde(rename = "trivy")]
    Trivy,
    /// Grype's JSON report (`grype -o json`).
    #[serde(rename = "grype")]
    Grype,
    /// SARIF 2.1.0 (code scanners, and Trivy or Grype with `-f sarif`).
    #[serde(rename = "sarif")]
    Sarif,
    /// cosign's vulnerability scan record (`https://cosign.sigstore.dev/attestation/vuln/v1`).
    #[serde(rename = "cosign-vuln")]
    CosignVuln,
    /// OpenVEX (`https://openvex.dev/ns/v0.2.0`, and the earlier `https://openvex.dev/ns`).
    #[serde(rename = "openvex")]
    OpenVex,
}

/// The predicate types of SLSA provenance.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The predicate type of SLSA provenance v0.2.
pub const SLSA_PROVENANCE_V0_2: &str = "https://slsa.dev/provenance/v0.2";
/// The predicate type of a CycloneDX BOM (also with a version suffix: `.../bom/v1.5`).
pub const CYCLONEDX_BOM: &str = "https://cyclonedx.org/bom";
/// The predicate type of a CycloneDX document attested as VEX (also with a version suffix): read
/// as CycloneDX. Unlike [`CYCLONEDX_BOM`] it names what the signer vouches for, so a trust root can
/// allow a signer VEX without allowing it SBOMs, and the reverse.
pub const CYCLONEDX_VEX: &str = "https://cyclonedx.org/vex";
/// The predicate type of an SPDX document (also with a version suffix: `.../Document/v2.3`).
pub const SPDX_DOCUMENT: &str = "https://spdx.dev/Document";
/// The predicate type of a cosign vulnerability scan record.
pub const COSIGN_VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
/// The prefix of OpenVEX contexts and predicate types.
pub const OPENVEX_NS: &str = "https://openvex.dev/ns";

impl Format {
    /// Every format, in the order of [`Format::NAMES`].
    pub const ALL: [Format; 8] = [
        Format::SlsaProvenance,
        Format::CycloneDx,
        Format::Spdx,
        Format::Trivy,
        Format::Grype,
        Format::Sarif,
        Format::CosignVuln,
        Format::OpenVex,
    ];

    /// The names [`Format::from_str`] accepts, for messages.
    pub const NAMES: &'static str = "slsa, cyclonedx, spdx, trivy, grype, sarif, cosign-vuln, openvex";

    /// The format's short name: `slsa`, `cyclonedx`, `spdx`, `trivy`, `grype`, `sarif`,
    /// `cosign-vuln`, `openvex`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::SlsaProvenance => "slsa",
            Format::CycloneDx => "cyclonedx",
            Format::Spdx => "spdx",
            Format::Trivy => "trivy",
            Format::Grype => "grype",
            Format::Sarif => "sarif",
            Format::CosignVuln => "cosign-vuln",
            Format::OpenVex => "openvex",
        }
    }

    /// What a document of this format is, for messages ("a cyclonedx bom").
    pub fn describe(self) -> &'static str {
        match self {
            Format::SlsaProvenance => "slsa provenance",
            Format::CycloneDx => "a cyclonedx bom",
            Format::Spdx => "an spdx 2.x document",
            Format::Trivy => "a trivy json report",
            Format::Grype => "a grype json report",
            Format::Sarif => "a sarif 2.1.0 log",
            Format::CosignVuln => "a cosign vulnerability scan",
            Format::OpenVex => "an openvex document",
        }
    }

    /// The format an in-toto predicate type names, if Airlock knows it: the SLSA provenance
    /// types (v1 and v0.2), `https://cyclonedx.org/bom[/v…]`, `https://cyclonedx.org/vex[/v…]`, `https://spdx.dev/Document[/v…]`,
    /// the cosign vulnerability type (with or without `https://`, as cosign's own spec writes
    /// it) and `https://openvex.dev/ns[…]`.
    pub fn for_predicate_type(predicate_type: &str) -> Option<Format> {
        predicate_kind(predicate_type).map(|(format, _)| format)
    }
}

/// The format and, for SLSA, the version a predicate type names.
pub(crate) fn predicate_kind(predicate_type: &str) -> Option<(Format, Option<SlsaVersion>)> {
    let versioned = |base: &str| {
        predicate_type == base || predicate_type.strip_prefix(base).is_some_and(|rest| rest.starts_with("/v"))
    };
    match predicate_type {
        SLSA_PROVENANCE_V1 => Some((Format::SlsaProvenance, Some(SlsaVersion::V1))),
        SLSA_PROVENANCE_V0_2 => Some((Format::SlsaProvenance, Some(SlsaVersion::V0_2))),
        COSIGN_VULN | "cosign.sigstore.dev/attestation/vuln/v1" => Some((Format::CosignVuln, None)),
        _ if versioned(CYCLONEDX_BOM) || versioned(CYCLONEDX_VEX) => Some((Format::CycloneDx, None)),
        _ if versioned(SPDX_DOCUMENT) => Some((Format::Spdx, None)),
        _ if predicate_type.starts_with(OPENVEX_NS) => Some((Format::OpenVex, None)),
        _ => None,
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = EvidenceError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
            .ok_or_else(|| EvidenceError::UnknownFormat { name: airlock_model::echo::echo_short(name) })
    }
}

/// The members that tell the formats apart.
const SNIFF: [&str; 20] = [
    "bomFormat",
    "spdxVersion",
    "@context",
    "runs",
    "version",
    "$schema",
    "SchemaVersion",
    "Results",
    "ArtifactName",
    "matches",
    "descriptor",
    "scanner",
    "scanners",
    "metadata",
    "invocation",
    "buildDefinition",
    "runDetails",
    "builder",
    "buildType",
    "materials",
];

/// The format a document's own members name, checked in this order: CycloneDX (`bomFormat` is
/// `CycloneDX`), SPDX (`spdxVersion` starts `SPDX-`), OpenVEX (`@context` is OpenVEX's), SARIF
/// (`runs`, and `version` 2.1.0 or a SARIF `$schema`), Trivy (`SchemaVersion` with `Results` or
/// `ArtifactName`), Grype (`matches` and `descriptor`), a cosign vulnerability scan (`scanner` or
/// `scanners`, with `metadata` or `invocation`), SLSA v1 (`buildDefinition` or `runDetails`) and
/// SLSA v0.2 (`builder` and `buildType`).
pub(crate) fn sniff(raw: &RawValue) -> Option<Format> {
    let [
        bom_format,
        spdx_version,
        context,
        runs,
        version,
        schema,
        schema_version,
        results,
        artifact_name,
        matches,
        descriptor,
        scanner,
        scanners,
        metadata,
        invocation,
        build_definition,
        run_details,
        builder,
        build_type,
        _materials,
    ] = json::members(raw, &SNIFF)?;
    let string = |raw: Option<&RawValue>| raw.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    if string(bom_format).as_deref() == Some("CycloneDX") {
        Some(Format::CycloneDx)
    } else if string(spdx_version).is_some_and(|v| v.starts_with("SPDX-")) {
        Some(Format::Spdx)
    } else if string(context).is_some_and(|c| c.starts_with(OPENVEX_NS)) {
        Some(Format::OpenVex)
    } else if runs.is_some()
        && (string(version).as_deref() == Some("2.1.0") || string(schema).is_some_and(|s| s.contains("sarif")))
    {
        Some(Format::Sarif)
    } else if schema_version.is_some() && (results.is_some() || artifact_name.is_some()) {
        Some(Format::Trivy)
    } else if matches.is_some() && descriptor.is_some() {
        Some(Format::Grype)
    } else if (scanner.is_some() || scanners.is_some()) && (metadata.is_some() || invocation.is_some()) {
        Some(Format::CosignVuln)
    } else if build_definition.is_some() || run_details.is_some() || (builder.is_some() && build_type.is_some()) {
        Some(Format::SlsaProvenance)
    } else {
        None
    }
}

/// Reads the document `raw` (at `at`) as `format` into `r`.
pub(crate) fn read(
    r: &mut Reader<'_>,
    format: Format,
    raw: &RawValue,
    at: Ptr<'_>,
    slsa: Option<SlsaVersion>,
) -> Result<(), EvidenceError> {
    if !json::is_object(raw) {
        let reason = format!("it is {}, not an object", json::kind(raw));
        return Err(EvidenceError::WrongFormat { expected: format, reason });
    }
    match format {
        Format::SlsaProvenance => slsa::read(r, raw, at, slsa),
        Format::CycloneDx => cyclonedx::read(r, raw, at),
        Format::Spdx => spdx::read(r, raw, at),
        Format::Trivy => trivy::read(r, raw, at),
        Format::Grype => grype::read(r, raw, at),
        Format::Sarif => sarif::read(r, raw, at),
        Format::CosignVuln => cosign::read(r, raw, at),
        Format::OpenVex => openvex::read(r, raw, at),
    }
}

/// A document that is not `expected`, because of `reason`.
pub(crate) fn wrong(expected: Format, reason: impl Into<String>) -> EvidenceError {
    EvidenceError::WrongFormat { expected, reason: reason.into() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>().unwrap(), format);
            assert_eq!(serde_json::to_string(&format).unwrap(), format!("\"{format}\""));
        }
        assert_eq!(
            "CycloneDX".parse::<Format>().unwrap_err().to_string(),
            "unknown evidence format `CycloneDX`; expected one of slsa, cyclonedx, spdx, trivy, grype, sarif, cosign-vuln, openvex"
        );
    }

    #[test]
    fn predicate_types() {
        let cases = [
            ("https://slsa.dev/provenance/v1", Some(Format::SlsaProvenance)),
            ("https://slsa.dev/provenance/v0.2", Some(Format::SlsaProvenance)),
            ("https://slsa.dev/provenance/v0.1", None),
            ("https://cyclonedx.org/bom", Some(Format::CycloneDx)),
            ("https://cyclonedx.org/bom/v1.5", Some(Format::CycloneDx)),
            ("https://cyclonedx.org/bomb", None),
            ("https://cyclonedx.org/vex", Some(Format::CycloneDx)),
            ("https://cyclonedx.org/vex/v1.6", Some(Format::CycloneDx)),
            ("https://cyclonedx.org/vexx", None),
            ("https://spdx.dev/Document/v2.3", Some(Format::Spdx)),
            ("https://cosign.sigstore.dev/attestation/vuln/v1", Some(Format::CosignVuln)),
            ("cosign.sigstore.dev/attestation/vuln/v1", Some(Format::CosignVuln)),
            ("https://openvex.dev/ns/v0.2.0", Some(Format::OpenVex)),
            ("https://in-toto.io/attestation/test-result/v0.1", None),
        ];
        for (predicate_type, format) in cases {
            assert_eq!(Format::for_predicate_type(predicate_type), format, "{predicate_type}");
        }
    }

    #[test]
    fn sniffing() {
        let cases = [
            (r#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#, Some(Format::CycloneDx)),
            (r#"{"bomFormat":"cyclonedx"}"#, None),
            (r#"{"spdxVersion":"SPDX-2.3"}"#, Some(Format::Spdx)),
            (r#"{"@context":"https://openvex.dev/ns/v0.2.0"}"#, Some(Format::OpenVex)),
            (r#"{"version":"2.1.0","runs":[]}"#, Some(Format::Sarif)),
            (r#"{"SchemaVersion":2,"Results":[]}"#, Some(Format::Trivy)),
            (r#"{"matches":[],"descriptor":{}}"#, Some(Format::Grype)),
            (r#"{"scanner":{},"metadata":{}}"#, Some(Format::CosignVuln)),
            (r#"{"buildDefinition":{},"runDetails":{}}"#, Some(Format::SlsaProvenance)),
            (r#"{"builder":{},"buildType":""}"#, Some(Format::SlsaProvenance)),
            (r#"{"matches":[]}"#, None),
            ("[]", None),
        ];
        for (text, format) in cases {
            assert_eq!(sniff(json::root(text).unwrap()), format, "{text}");
        }
    }
}
