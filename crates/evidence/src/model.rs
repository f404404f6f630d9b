//! The evidence model: what every parser produces and what a Rego policy reads as its input.
//!
//! It is a wire format (policies are written against its field names), so it derives `Serialize`
//! and `Deserialize`, its names are snake_case, an absent optional value is `null`, and lists keep
//! the order of the documents they came from.

use serde::{Deserialize, Serialize};

/// Everything Airlock read from one or more evidence documents, normalized.
///
/// ```json
/// {"provenance": [...], "components": [...], "vulnerabilities": [...], "vex": [...],
///  "tests": [...], "unread": [{"path": "/Results/0/Vulnerabilities/3/Severity", "reason": "..."}]}
/// ```
///
/// A policy that must not pass on partial evidence denies when `unread` is not empty: an entry
/// there is a part of a document that was not read (a vulnerability without an id, a severity no
/// scanner defines, a score that is not a number), so what the other lists say may be incomplete.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    /// Build provenance (SLSA v1 and v0.2).
    pub provenance: Vec<Provenance>,
    /// Software components (CycloneDX components, SPDX packages, Trivy packages).
    pub components: Vec<Component>,
    /// Vulnerabilities and findings (Trivy, Grype, SARIF, CycloneDX, cosign vulnerability scans).
    pub vulnerabilities: Vec<Vulnerability>,
    /// Exploitability statements (OpenVEX, CycloneDX `analysis`).
    pub vex: Vec<VexStatement>,
    /// Test results. No format read today provides them; the list is empty.
    pub tests: Vec<TestResult>,
    /// What could not be read, and why.
    pub unread: Vec<Unread>,
}

impl Evidence {
    /// Appends everything `other` holds, in order. Nothing is deduplicated, and `unread` paths stay
    /// relative to the document each came from.
    pub fn merge(&mut self, other: Evidence) {
        let Evidence { provenance, components, vulnerabilities, vex, tests, unread } = other;
        self.provenance.extend(provenance);
        self.components.extend(components);
        self.vulnerabilities.extend(vulnerabilities);
        self.vex.extend(vex);
        self.tests.extend(tests);
        self.unread.extend(unread);
    }

    /// Whether nothing at all was read, not even a problem.
    pub fn is_empty(&self) -> bool {
        self == &Evidence::default()
    }
}

/// Where and how an artifact was built, from SLSA provenance.
///
/// For GitHub Actions (`https://actions.github.io/buildtypes/workflow/v1`, its older
/// `https://github.com/actions/buildtypes/workflow/v1`, and slsa-github-generator's types) the
/// source, ref, workflow and trigger come from the fields those build types define; for other
/// builders from the first `git+` dependency (v1 `resolvedDependencies`, v0.2 `configSource` or
/// `materials`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    /// `v1` or `v0.2`.
    pub slsa_version: String,
    /// `runDetails.builder.id` (v1) or `builder.id` (v0.2).
    pub builder_id: Option<String>,
    /// `buildDefinition.buildType` (v1) or `buildType` (v0.2).
    pub build_type: Option<String>,
    /// The source repository without scheme, credentials, ref or `.git` suffix, with the host in
    /// lowercase: `git+https://github.com/org/repo@refs/heads/main` reads `github.com/org/repo`.
    /// `null` when the source names no repository Airlock can read.
    pub source_repository: Option<String>,
    /// The source repository URI exactly as the provenance gives it.
    pub source_repository_raw: Option<String>,
    /// The git ref built (`refs/heads/main`), as given: a branch that happens to end in `.git`
    /// is not the branch without it.
    pub source_ref: Option<String>,
    /// The commit built, lowercase hex.
    pub source_commit: Option<String>,
    /// The workflow or configuration file that ran (`.github/workflows/release.yml`).
    pub entry_point: Option<String>,
    /// Who triggered the build (GitHub's `actor` login), where the provenance names them.
    pub trigger: Option<String>,
    /// The trigger's stable numeric id (GitHub's `actor_id`), where given.
    pub trigger_id: Option<String>,
    /// The event that triggered the build (`push`, `workflow_dispatch`, ...).
    pub trigger_event: Option<String>,
    /// The builder's id of this run (v1 `invocationId`, v0.2 `buildInvocationId`).
    pub invocation_id: Option<String>,
}

/// A software component of an artifact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Component {
    pub name: String,
    pub version: Option<String>,
    /// A package URL (`pkg:pypi/requests@2.32.3`); only values that look like one are kept.
    pub purl: Option<String>,
    /// Every license the document names for the component, as given: SPDX ids (`MIT`), names
    /// (`License :: OSI Approved :: Apache Software License`) and SPDX expressions
    /// (`Apache-2.0 OR MIT`), in document order, without duplicates. SPDX's `NOASSERTION` is
    /// dropped (it says nothing); `NONE` is kept (it says there is no license).
    pub licenses: Vec<String>,
    /// The component's license as one SPDX expression, where the document gives one: a CycloneDX
    /// `expression`, or SPDX's `licenseConcluded` (else `licenseDeclared`).
    pub license_expression: Option<String>,
}

/// How bad a vulnerability is, on the scale every scanner maps to.
///
/// Names map case-insensitively: `critical`; `high` and Red Hat's `important`; `medium` and
/// GitHub's `moderate`; `low` and Grype's `negligible`; everything else (`unknown`, `none`,
/// `info`, an empty string, a word no scanner uses) is `unknown`, and a word no scanner uses is
/// also reported in [`Evidence::unread`]. A score alone maps by the CVSS v3 qualitative scale:
/// 9.0 and up critical, 7.0 high, 4.0 medium, above 0 low, 0 unknown; so does a score beside a
/// severity of unknown (Grype says `Unknown` for Alpine's advisories and gives NVD's score).
///
/// SARIF has no severity names: a result's `security-severity` property (else its rule's) is a
/// score and maps by that scale. Without one the severity is unknown whatever the result's
/// `level`: `error` says how sure a tool is that something is wrong, and linters use it for
/// style, so it says nothing about how bad a vulnerability is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A vulnerability or finding reported against a package (or, for SARIF, against the artifact).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vulnerability {
    /// `CVE-2024-3094`, `GHSA-…`, or a SARIF rule id.
    pub id: String,
    /// Other ids of the same vulnerability (Grype's related vulnerabilities, Trivy's vendor ids,
    /// CycloneDX references).
    pub aliases: Vec<String>,
    pub severity: Severity,
    /// The CVSS base score (0 to 10) the scanner reports, where it reports one: Trivy's V3 score
    /// from the severity's source (else NVD, else any), Grype's primary `baseScore`, the highest
    /// CycloneDX rating score, SARIF's `security-severity`.
    pub cvss_score: Option<f64>,
    pub package_name: Option<String>,
    pub package_purl: Option<String>,
    pub installed_version: Option<String>,
    /// The version(s) that fix it, as the scanner writes them (`1.1.1d-r0`, `1.5.13, 1.3.15`).
    pub fixed_version: Option<String>,
    /// Whether the scanner names a fixed version.
    pub fix_available: bool,
    /// The tool that reported it (`trivy`, `grype`, a SARIF driver name).
    pub scanner: Option<String>,
    pub scanner_version: Option<String>,
    /// When the scan ran, RFC 3339 in UTC.
    pub scanned_at: Option<String>,
}

/// What a VEX author states about one vulnerability in some products.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VexStatement {
    pub vulnerability_id: String,
    pub aliases: Vec<String>,
    /// The products the statement is about: purls, other identifiers (`@id`) and digests
    /// (`sha256:<hex>`). Empty when the statement inherits its products from the attestation's
    /// subject (OpenVEX inside an in-toto statement).
    pub products: Vec<String>,
    /// The subcomponents of those products where the vulnerability lives (purls, ids, digests).
    pub subcomponents: Vec<String>,
    pub status: VexStatus,
    /// The justification label, as given (OpenVEX or CycloneDX vocabulary).
    pub justification: Option<String>,
    pub impact_statement: Option<String>,
    pub action_statement: Option<String>,
    /// When the statement was made, RFC 3339 in UTC (the document's timestamp if the statement
    /// has none).
    pub timestamp: Option<String>,
}

/// The four VEX statuses. CycloneDX analysis states map onto them: `not_affected` and
/// `false_positive` are `not_affected`, `exploitable` is `affected`, `resolved` and
/// `resolved_with_pedigree` are `fixed`, `in_triage` is `under_investigation`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    NotAffected,
    Affected,
    Fixed,
    #[default]
    UnderInvestigation,
}

/// The outcome of a test suite.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestResult {
    pub name: String,
    pub passed: u64,
    pub failed: u64,
}

/// A part of a document that was not read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Unread {
    /// Where, as a JSON pointer into the document (`/Results/0/Vulnerabilities/3/Severity`; the
    /// empty string is the whole document).
    pub path: String,
    /// Why, in one line.
    pub reason: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_names_are_snake_case_and_null_for_absent() {
        let vulnerability = Vulnerability { id: "CVE-1".into(), severity: Severity::High, ..Vulnerability::default() };
        let json = serde_json::to_string(&vulnerability).unwrap();
        assert_eq!(
            json,
            r#"{"id":"CVE-1","aliases":[],"severity":"high","cvss_score":null,"package_name":null,"package_purl":null,"installed_version":null,"fixed_version":null,"fix_available":false,"scanner":null,"scanner_version":null,"scanned_at":null}"#
        );
        let status = serde_json::to_string(&VexStatus::UnderInvestigation).unwrap();
        assert_eq!(status, r#""under_investigation""#);
        let back: Evidence = serde_json::from_str(r#"{"vulnerabilities":[{"id":"CVE-1","severity":"high"}]}"#).unwrap();
        assert_eq!(back.vulnerabilities, [vulnerability]);
    }

    #[test]
    fn merge_appends_in_order() {
        let one = |id: &str| Evidence {
            vulnerabilities: vec![Vulnerability { id: id.into(), ..Vulnerability::default() }],
            unread: vec![Unread { path: format!("/{id}"), reason: "r".into() }],
            ..Evidence::default()
        };
        let mut all = one("a");
        all.merge(one("b"));
        let ids: Vec<&str> = all.vulnerabilities.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(all.unread.len(), 2);
        assert!(Evidence::default().is_empty() && !all.is_empty());
    }

    #[test]
    fn severities_order_from_unknown_to_critical() {
        assert!(Severity::Unknown < Severity::Low && Severity::High < Severity::Critical);
        assert_eq!(Severity::Critical.as_str(), "critical");
    }
}
