//! One realistic fixture per format under `tests/data/<format>/`, written after the formats'
//! published examples (see `tests/data/README.md`), with what Airlock reads from it pinned beside
//! it as `<fixture>.expected.json`: the exact policy input, field by field.

use airlock_evidence::{Evidence, Format, Limits, Severity, VexStatus, detect, parse, parse_auto};
use expect_test::expect_file;

/// Reads a fixture of `format` every way there is and returns what it read.
fn read(format: Format, path: &std::path::Path) -> Evidence {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(detect(&bytes), Some(format), "{}", path.display());
    let (found, evidence) = parse_auto(&bytes, &Limits::default()).unwrap();
    assert_eq!(found, format);
    assert_eq!(parse(format, &bytes, &Limits::default()).unwrap(), evidence);
    evidence
}

#[test]
fn every_format_fixture_reads_as_pinned() {
    for format in Format::ALL {
        let paths = crate::fixtures(format.as_str());
        assert!(!paths.is_empty(), "no fixture for {format}");
        for path in paths {
            let evidence = read(format, &path);
            let json = serde_json::to_string_pretty(&evidence).unwrap() + "\n";
            let expected =
                path.with_file_name(format!("{}.expected.json", path.file_name().unwrap().to_string_lossy()));
            expect_file![expected].assert_eq(&json);
            // The wire format reads back as written.
            assert_eq!(serde_json::from_str::<Evidence>(&json).unwrap(), evidence);
        }
    }
}

/// The same libssl3 vulnerability, as each scanner reports it, reads as one normalized record.
#[test]
fn scanners_agree_on_the_same_vulnerability() {
    let libssl = |format: Format, file: &str| {
        let evidence = read(format, &crate::data(file));
        let found = evidence.vulnerabilities.into_iter().find(|v| v.id == "CVE-2024-2511").unwrap();
        (found.severity, found.cvss_score, found.package_purl.map(|p| p.split('?').next().unwrap().to_owned()))
    };
    let expected = (Severity::Medium, Some(5.9), Some("pkg:apk/alpine/libssl3@3.1.4-r5".to_owned()));
    assert_eq!(libssl(Format::Trivy, "trivy/payments-api.trivy.json"), expected);
    assert_eq!(libssl(Format::Grype, "grype/payments-api.grype.json"), expected);
    assert_eq!(libssl(Format::CycloneDx, "cyclonedx/payments-api.cdx.json"), expected);
    assert_eq!(libssl(Format::CosignVuln, "cosign-vuln/payments-api.vuln.intoto.json"), expected);
    let sarif = read(Format::Sarif, &crate::data("sarif/payments-api.sarif.json"));
    let found = sarif.vulnerabilities.iter().find(|v| v.id == "CVE-2024-2511").unwrap();
    assert_eq!((found.severity, found.cvss_score), (Severity::Medium, Some(5.9)));
}

/// What a policy needs from each fixture, spelled out (the snapshots pin the rest).
#[test]
fn the_fields_policies_read() {
    let provenance = read(Format::SlsaProvenance, &crate::data("slsa/github-actions-v1.intoto.json")).provenance;
    assert_eq!(provenance[0].source_repository.as_deref(), Some("github.com/octo-org/payments-api"));
    assert_eq!(provenance[0].source_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(provenance[0].source_commit.as_deref(), Some("c27d339ee6075c1f744c5d4b200f7901aad2c369"));
    let provenance = read(Format::SlsaProvenance, &crate::data("slsa/generator-generic-v0.2.intoto.json")).provenance;
    assert_eq!(provenance[0].trigger.as_deref(), Some("mona"));
    assert_eq!(provenance[0].source_ref.as_deref(), Some("refs/tags/v1.4.2"));

    let bom = read(Format::CycloneDx, &crate::data("cyclonedx/payments-api.cdx.json"));
    let cryptography = bom.components.iter().find(|c| c.name == "cryptography").unwrap();
    assert_eq!(cryptography.license_expression.as_deref(), Some("Apache-2.0 OR BSD-3-Clause"));
    assert!(bom.components.iter().any(|c| c.purl.as_deref() == Some("pkg:cargo/openssl@0.10.64")), "nested");
    let vex = bom.vex.iter().find(|s| s.vulnerability_id == "CVE-2024-35195").unwrap();
    assert_eq!(
        (vex.status, vex.products.as_slice()),
        (VexStatus::NotAffected, &["pkg:pypi/requests@2.31.0".to_owned()][..])
    );

    let grype = read(Format::Grype, &crate::data("grype/payments-api.grype.json"));
    let ghsa = grype.vulnerabilities.iter().find(|v| v.id == "GHSA-9wx4-h78v-vm56").unwrap();
    assert_eq!(ghsa.aliases, ["CVE-2024-35195"]);
    let busybox = grype.vulnerabilities.iter().find(|v| v.id == "CVE-2023-42363").unwrap();
    assert_eq!((busybox.severity, busybox.fix_available), (Severity::Low, false));

    let openvex = read(Format::OpenVex, &crate::data("openvex/payments-api.openvex.json"));
    assert!(
        openvex.vex[0]
            .products
            .contains(&format!("sha256:{}", "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"))
    );
    assert_eq!(openvex.vex[0].subcomponents, ["pkg:pypi/requests@2.31.0"]);
    assert_eq!(openvex.vex[2].timestamp.as_deref(), Some("2024-06-04T17:00:00Z"), "the document's time cascades");
}

/// Merging the evidence of several documents keeps each document's order.
#[test]
fn evidence_of_several_documents_merges() {
    let mut all = Evidence::default();
    for (format, file) in
        [(Format::Trivy, "trivy/payments-api.trivy.json"), (Format::OpenVex, "openvex/payments-api.openvex.json")]
    {
        all.merge(read(format, &crate::data(file)));
    }
    assert_eq!((all.components.len(), all.vulnerabilities.len(), all.vex.len()), (2, 4, 4));
    assert_eq!(all.vulnerabilities[0].id, "CVE-2024-2511");
}
