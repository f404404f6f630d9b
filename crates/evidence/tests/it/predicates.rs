//! Evidence inside in-toto predicates: [`from_predicate`] by predicate type, and detection and
//! parsing of whole statements.

use airlock_evidence::{EvidenceError, Format, Limits, detect, from_predicate, parse, parse_auto};

/// The predicate type and predicate bytes of a statement fixture.
fn split(file: &str) -> (String, Vec<u8>) {
    let statement: serde_json::Value = serde_json::from_slice(&std::fs::read(crate::data(file)).unwrap()).unwrap();
    let predicate_type = statement["predicateType"].as_str().unwrap().to_owned();
    (predicate_type, serde_json::to_vec(&statement["predicate"]).unwrap())
}

#[test]
fn a_statement_and_its_predicate_read_the_same() {
    for (format, file) in [
        (Format::SlsaProvenance, "slsa/github-actions-v1.intoto.json"),
        (Format::SlsaProvenance, "slsa/generator-generic-v0.2.intoto.json"),
        (Format::CosignVuln, "cosign-vuln/payments-api.vuln.intoto.json"),
    ] {
        let (predicate_type, predicate) = split(file);
        let from_statement = parse(format, &std::fs::read(crate::data(file)).unwrap(), &Limits::default()).unwrap();
        let from_predicate = from_predicate(&predicate_type, &predicate, &Limits::default()).unwrap().unwrap();
        assert_eq!(from_predicate, from_statement, "{file}");
    }
}

#[test]
fn every_format_reads_as_a_predicate_of_its_type() {
    let cases = [
        ("https://cyclonedx.org/bom/v1.6", "cyclonedx/payments-api.cdx.json"),
        ("https://spdx.dev/Document/v2.3", "spdx/payments-api.spdx.json"),
        ("https://openvex.dev/ns/v0.2.0", "openvex/payments-api.openvex.json"),
        // Reports under a type Airlock does not know are read for what they are.
        ("https://cosign.sigstore.dev/attestation/v1", "trivy/payments-api.trivy.json"),
        ("https://example.com/grype/v1", "grype/payments-api.grype.json"),
        ("https://example.com/sarif/v1", "sarif/payments-api.sarif.json"),
    ];
    for (predicate_type, file) in cases {
        let bytes = std::fs::read(crate::data(file)).unwrap();
        let (_, expected) = parse_auto(&bytes, &Limits::default()).unwrap();
        assert_eq!(from_predicate(predicate_type, &bytes, &Limits::default()).unwrap(), Some(expected), "{file}");
    }
}

#[test]
fn predicates_of_other_types_are_not_evidence() {
    let limits = Limits::default();
    let test_result = br#"{"result":"PASSED","passedTests":["unit"]}"#;
    assert!(from_predicate("https://in-toto.io/attestation/test-result/v0.1", test_result, &limits).unwrap().is_none());
    // A CycloneDX BOM under an unknown type is not guessed at: only scanner reports are.
    let bom = std::fs::read(crate::data("cyclonedx/payments-api.cdx.json")).unwrap();
    assert!(from_predicate("https://example.com/bom", &bom, &limits).unwrap().is_none());
    // Nor does a predicate Airlock would not read anyway cost an error.
    assert!(from_predicate("https://example.com/x", b"not json", &limits).unwrap().is_none());
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(from_predicate("https://example.com/x", deep.as_bytes(), &limits).unwrap().is_none());
}

#[test]
fn a_predicate_that_is_not_what_its_type_says_is_refused() {
    let spdx = std::fs::read(crate::data("spdx/payments-api.spdx.json")).unwrap();
    let e = from_predicate("https://cyclonedx.org/bom", &spdx, &Limits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "document is not a cyclonedx bom: it has no `bomFormat` `CycloneDX`; it looks like an spdx 2.x document, so \
         read it as `spdx`"
    );
    let e = from_predicate(
        "https://slsa.dev/provenance/v1",
        br#"{"builder":{"id":"x"},"buildType":"y"}"#,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, EvidenceError::WrongFormat { expected: Format::SlsaProvenance, .. }), "{e}");
}

#[test]
fn statements_are_detected_by_predicate_type() {
    let statement = |predicate_type: &str, predicate: &str| {
        format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"{predicate_type}","predicate":{predicate}}}"#
        )
    };
    assert_eq!(detect(statement("https://slsa.dev/provenance/v0.2", "{}").as_bytes()), Some(Format::SlsaProvenance));
    assert_eq!(
        detect(statement("https://example.com/x", r#"{"matches":[],"descriptor":{}}"#).as_bytes()),
        Some(Format::Grype)
    );
    assert_eq!(detect(statement("https://example.com/x", "{}").as_bytes()), None);
    assert_eq!(detect(b"{}"), None);
    assert_eq!(detect(b"\xff"), None);
}
