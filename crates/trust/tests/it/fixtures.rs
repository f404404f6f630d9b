//! Negative fixtures under `tests/data/`, each named after the attack it stands for: every one
//! must be refused with the error or the reasons shown, never trusted and never a panic.

use std::path::PathBuf;

use airlock_dsse::{Envelope, EnvelopeLimits, StatementLimits};
use airlock_model::RepoName;
use airlock_trust::{RootDocument, RootLimits, TrustError, TrustedRoot};
use expect_test::expect_file;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::support::*;

/// The `.json` fixtures of one directory, by name.
fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

pub fn trusted(path: &str) -> TrustedRoot {
    let bytes = std::fs::read(data_dir().join(path)).unwrap();
    TrustedRoot::bootstrap(RootDocument::parse(&bytes, &RootLimits::default()).unwrap(), now()).unwrap()
}

/// How a root fixture is judged: version 1 as a first root, any other as the next of root-v1.
fn judge(base: &TrustedRoot, bytes: &[u8]) -> Result<TrustedRoot, TrustError> {
    let doc = RootDocument::parse(bytes, &RootLimits::default())?;
    if doc.version() == 1 { TrustedRoot::bootstrap(doc, now()) } else { base.update(doc, now()) }
}

#[test]
fn every_negative_root_fixture_is_refused() {
    let base = trusted("valid/root-v1.json");
    let cases = fixtures("root");
    assert!(cases.len() >= 11, "fixtures went missing: {}", cases.len());
    let mut report = String::new();
    for (name, bytes) in cases {
        let outcome = match judge(&base, &bytes) {
            Ok(root) => panic!("{name}: trusted a hostile root, version {}", root.version()),
            Err(e) => e.to_string(),
        };
        report.push_str(&format!("{name}: {}\n", names(&outcome)));
    }
    expect_file!["../data/root/expected.txt"].assert_eq(&report);
}

#[derive(Deserialize)]
struct Case<'a> {
    repository: String,
    #[serde(borrow)]
    envelope: &'a RawValue,
}

#[test]
fn every_negative_evaluation_fixture_is_untrusted() {
    let root = trusted("valid/evaluate-root.json");
    let cases = fixtures("evaluate");
    assert!(cases.len() >= 7, "fixtures went missing: {}", cases.len());
    let mut report = String::new();
    for (name, bytes) in cases {
        let case: Case<'_> = serde_json::from_slice(&bytes).unwrap();
        let envelope = Envelope::parse(case.envelope.get().as_bytes(), &EnvelopeLimits::default()).unwrap();
        let statement = envelope.in_toto_statement(&StatementLimits::default()).unwrap();
        let repo = RepoName::parse(&case.repository).unwrap();
        let evaluation = root.evaluate(&envelope, &statement.predicate_type, &repo, now());
        assert!(!evaluation.trusted, "{name}: trusted a hostile attestation: {evaluation:?}");
        assert!(!evaluation.reasons.is_empty(), "{name}: untrusted without a reason");
        report.push_str(&format!("{name}: signers [{}]\n", evaluation.signers.join(", ")));
        for reason in &evaluation.reasons {
            report.push_str(&format!("  {}: {}\n", reason.code(), names(&reason.to_string())));
        }
    }
    expect_file!["../data/evaluate/expected.txt"].assert_eq(&report);
}
