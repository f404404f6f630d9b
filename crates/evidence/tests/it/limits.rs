//! The default limits, each checked at its edge on a document built in memory: what the limit
//! allows reads, one more is refused (counts, sizes, depth) or reported (strings).

use airlock_evidence::{
    EvidenceError, Format, Limits, MAX_BYTES, MAX_COMPONENTS, MAX_DEPTH, MAX_LIST_LEN, MAX_STRING_LEN, MAX_UNREAD,
    MAX_VEX_STATEMENTS, MAX_VULNERABILITIES, parse, parse_auto,
};

fn refused(bytes: &[u8]) -> String {
    match parse_auto(bytes, &Limits::default()) {
        Ok((format, evidence)) => panic!("read as {format}: {evidence:?}"),
        Err(e) => e.to_string(),
    }
}

fn bom_with_components(count: usize) -> Vec<u8> {
    let components = vec![r#"{"type":"library","name":"a"}"#; count].join(",");
    format!(r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{components}]}}"#).into_bytes()
}

#[test]
fn the_defaults_are_the_named_constants() {
    let limits = Limits::default();
    assert_eq!(
        (limits.max_bytes, limits.max_depth, limits.max_string_len, limits.max_list_len, limits.max_unread),
        (MAX_BYTES, MAX_DEPTH, MAX_STRING_LEN, MAX_LIST_LEN, MAX_UNREAD)
    );
    assert_eq!(
        (limits.max_components, limits.max_vulnerabilities, limits.max_vex_statements),
        (MAX_COMPONENTS, MAX_VULNERABILITIES, MAX_VEX_STATEMENTS)
    );
    assert_eq!((MAX_BYTES, MAX_DEPTH), (32 * 1024 * 1024, 64));
}

#[test]
fn a_document_over_32_mib_is_refused_before_it_is_read() {
    let mut bytes = br#"{"matches":[],"descriptor":{}}"#.to_vec();
    bytes.resize(MAX_BYTES, b' ');
    assert!(parse_auto(&bytes, &Limits::default()).is_ok());
    bytes.push(b' ');
    assert_eq!(refused(&bytes), "document is 33554433 bytes; the limit is 33554432");
}

#[test]
fn nesting_is_bounded_at_64_levels() {
    // The predicate is level 1, so 63 nested arrays inside a member reach level 64.
    let nested = |levels: usize| {
        format!(r#"{{"matches":[],"descriptor":{{"x":{}{}}}}}"#, "[".repeat(levels), "]".repeat(levels)).into_bytes()
    };
    assert!(parse_auto(&nested(MAX_DEPTH - 2), &Limits::default()).is_ok());
    let e = refused(&nested(MAX_DEPTH - 1));
    assert!(e.starts_with("document nests deeper than 64 levels at `/descriptor/x/0/0/0/"), "{e}");
}

#[test]
fn components_past_the_limit_refuse_the_document() {
    let (_, evidence) = parse_auto(&bom_with_components(MAX_COMPONENTS), &Limits::default()).unwrap();
    assert_eq!(evidence.components.len(), MAX_COMPONENTS);
    assert_eq!(
        refused(&bom_with_components(MAX_COMPONENTS + 1)),
        "document exceeds the limit of 100000 components; raise the limit if the document is genuine"
    );
}

#[test]
fn vulnerabilities_past_the_limit_refuse_the_document() {
    let matches = vec![r#"{"vulnerability":{"id":"CVE-1"}}"#; MAX_VULNERABILITIES + 1].join(",");
    let report = format!(r#"{{"matches":[{matches}],"descriptor":{{"name":"grype"}}}}"#);
    assert_eq!(
        refused(report.as_bytes()),
        "document exceeds the limit of 100000 vulnerabilities; raise the limit if the document is genuine"
    );
}

#[test]
fn vex_statements_past_the_limit_refuse_the_document() {
    let statement = r#"{"vulnerability":{"name":"CVE-1"},"status":"fixed"}"#;
    let statements = vec![statement; MAX_VEX_STATEMENTS + 1].join(",");
    let vex = format!(r#"{{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{statements}]}}"#);
    assert_eq!(
        refused(vex.as_bytes()),
        "document exceeds the limit of 100000 vex statements; raise the limit if the document is genuine"
    );
}

#[test]
fn a_string_over_64_kib_costs_its_field() {
    let report = |len: usize| {
        let version = "9".repeat(len);
        format!(
            r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{{"name":"a","version":"{version}"}}]}}"#
        )
    };
    let (_, evidence) = parse_auto(report(MAX_STRING_LEN).as_bytes(), &Limits::default()).unwrap();
    assert_eq!(evidence.components[0].version.as_ref().map(String::len), Some(MAX_STRING_LEN));
    let (_, evidence) = parse_auto(report(MAX_STRING_LEN + 1).as_bytes(), &Limits::default()).unwrap();
    assert_eq!(evidence.components[0].version, None);
    assert_eq!(evidence.unread[0].reason, "is a string of 65537 bytes; the limit is 65536");
}

#[test]
fn lists_past_the_limit_refuse_the_document() {
    let aliases: Vec<String> = (0..=MAX_LIST_LEN).map(|i| format!(r#""GHSA-{i}""#)).collect();
    let report = format!(
        r#"{{"SchemaVersion":2,"Results":[{{"Vulnerabilities":[{{"VulnerabilityID":"CVE-1","VendorIDs":[{}]}}]}}]}}"#,
        aliases.join(",")
    );
    let e = parse(Format::Trivy, report.as_bytes(), &Limits::default()).unwrap_err();
    assert!(matches!(e, EvidenceError::TooMany { max: MAX_LIST_LEN, .. }), "{e}");
}

#[test]
fn unread_keeps_1000_entries_and_counts_the_rest() {
    let components = vec![r#"{"name":"a","purl":"nope"}"#; MAX_UNREAD + 7].join(",");
    let bom = format!(r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{components}]}}"#);
    let (_, evidence) = parse_auto(bom.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(evidence.components.len(), MAX_UNREAD + 7, "an odd purl costs only the purl");
    assert_eq!(evidence.unread.len(), MAX_UNREAD + 1);
    assert_eq!(evidence.unread[MAX_UNREAD].reason, "7 more problems were found and not listed");
}
