//! Fuzzes evidence parsing with format detection (`airlock_evidence::parse_auto`). It must never
//! panic, what it reads must stay within the limits and keep the model's promises (finite scores
//! from 0 to 10, purls that are purls, names without control characters), and a document it reads
//! must be detected as the format it was read as.
#![no_main]

use airlock_evidence::{Evidence, Limits, detect, parse_auto};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_bytes: 256 * 1024,
    max_depth: 32,
    max_string_len: 1024,
    max_components: 64,
    max_vulnerabilities: 64,
    max_vex_statements: 64,
    max_list_len: 16,
    max_unread: 16,
};

fn check(evidence: &Evidence) {
    assert!(evidence.components.len() <= LIMITS.max_components);
    assert!(evidence.vulnerabilities.len() <= LIMITS.max_vulnerabilities);
    assert!(evidence.vex.len() <= LIMITS.max_vex_statements);
    assert!(evidence.unread.len() <= LIMITS.max_unread + 1);
    let name_ok = |s: &str| !s.is_empty() && s.len() <= LIMITS.max_string_len && !s.chars().any(char::is_control);
    let purl_ok =
        |p: &Option<String>| p.as_deref().is_none_or(|p| p.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("pkg:")));
    for c in &evidence.components {
        assert!(name_ok(&c.name) && purl_ok(&c.purl) && c.licenses.len() <= LIMITS.max_list_len);
    }
    for v in &evidence.vulnerabilities {
        assert!(name_ok(&v.id) && purl_ok(&v.package_purl) && v.aliases.len() <= LIMITS.max_list_len);
        assert!(v.cvss_score.is_none_or(|s| s.is_finite() && (0.0..=10.0).contains(&s)));
        assert_eq!(v.fix_available, v.fixed_version.is_some());
    }
    for s in &evidence.vex {
        assert!(name_ok(&s.vulnerability_id) && s.products.len() <= LIMITS.max_list_len);
    }
    for p in &evidence.provenance {
        assert!(p.source_repository.as_deref().is_none_or(|r| !r.contains("://") && !r.contains('@')));
        assert!(p.source_commit.as_deref().is_none_or(|c| c.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))));
    }
}

fuzz_target!(|data: &[u8]| {
    let detected = detect(data);
    let Ok((format, evidence)) = parse_auto(data, &LIMITS) else { return };
    // Within smaller limits than detect's defaults, so detect saw the same document.
    assert_eq!(detected, Some(format));
    check(&evidence);
});
