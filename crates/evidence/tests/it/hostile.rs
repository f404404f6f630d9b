//! The hostile fixtures under `tests/data/hostile/`, each named after the attack it stands for
//! (written by `tests/data/generate.py`): each is refused with the error shown, or read with what
//! it could not read reported in `unread`, and never panics. The outcomes are pinned in
//! `hostile/expected.txt`.

use std::fmt::Write as _;

use airlock_evidence::{Evidence, Format, Limits, MAX_DEPTH, parse, parse_auto};
use expect_test::expect_file;

/// The fixtures run with reduced counts (`MAX_*` in `generate.py`) so that floods stay small
/// files; the default limits have their own tests in `limits.rs`.
pub(crate) const FIXTURE_LIMITS: Limits = Limits {
    max_bytes: 1024 * 1024,
    max_depth: MAX_DEPTH,
    max_string_len: 4096,
    max_components: 100,
    max_vulnerabilities: 100,
    max_vex_statements: 100,
    max_list_len: 64,
    max_unread: 10,
};

/// One line per outcome: refused with the error, or read with counts and every unread entry.
pub(crate) fn outcome(result: Result<(Format, Evidence), airlock_evidence::EvidenceError>) -> String {
    let (format, evidence) = match result {
        Err(e) => return format!("refused: {e}"),
        Ok(read) => read,
    };
    let mut out = format!(
        "read as {format}: {} provenance, {} components, {} vulnerabilities, {} vex",
        evidence.provenance.len(),
        evidence.components.len(),
        evidence.vulnerabilities.len(),
        evidence.vex.len()
    );
    for v in &evidence.vulnerabilities {
        let score = v.cvss_score.map_or_else(|| "none".to_owned(), |s| s.to_string());
        write!(out, "\n  vulnerability `{}`: {}, cvss {score}", v.id, v.severity.as_str()).unwrap();
    }
    for unread in &evidence.unread {
        write!(out, "\n  unread `{}`: {}", unread.path, unread.reason).unwrap();
    }
    out
}

#[test]
fn every_hostile_fixture_is_refused_or_reported() {
    let paths = crate::fixtures("hostile");
    assert!(paths.len() >= 30, "fixtures went missing: {}", paths.len());
    let mut report = String::new();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let result = match name.split_once('.') {
            Some((_, format)) => {
                let format: Format = format.parse().unwrap();
                parse(format, &bytes, &FIXTURE_LIMITS).map(|evidence| (format, evidence))
            }
            None => parse_auto(&bytes, &FIXTURE_LIMITS),
        };
        writeln!(report, "{name}: {}", outcome(result)).unwrap();
    }
    expect_file!["../data/hostile/expected.txt"].assert_eq(&report);
}

/// Whatever a hostile fixture does, what was read keeps the model's promises: no control
/// characters in names, scores within 0 to 10, purls that look like purls.
#[test]
fn nothing_read_from_a_hostile_fixture_breaks_the_model() {
    for path in crate::fixtures("hostile") {
        let Ok((_, evidence)) = parse_auto(&std::fs::read(&path).unwrap(), &FIXTURE_LIMITS) else { continue };
        for v in &evidence.vulnerabilities {
            assert!(v.cvss_score.is_none_or(|s| (0.0..=10.0).contains(&s)), "{}", path.display());
            assert!(!v.id.chars().any(char::is_control), "{}", path.display());
            assert!(v.package_purl.as_deref().is_none_or(|p| p.starts_with("pkg:")), "{}", path.display());
        }
        for c in &evidence.components {
            assert!(!c.name.chars().any(char::is_control) && c.name.len() <= FIXTURE_LIMITS.max_string_len);
            assert!(c.purl.as_deref().is_none_or(|p| p.starts_with("pkg:")), "{}", path.display());
        }
        assert!(evidence.unread.len() <= FIXTURE_LIMITS.max_unread + 1);
    }
}
