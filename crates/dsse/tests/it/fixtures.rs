//! Negative envelope and statement fixtures under `tests/data/`, each named after the attack it
//! stands for (written by `tests/data/generate.py`): every one must be refused with the error
//! shown, never accepted and never a panic.

use std::path::PathBuf;

use airlock_dsse::{Envelope, EnvelopeLimits, MAX_SIGNATURES, Statement, StatementLimits};
use expect_test::expect_file;

/// The fixtures of one directory, by name; `expected.txt` is the snapshot, not a fixture.
fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(crate::data(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none() && p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

/// The fixtures run with a 128 KiB envelope limit (`FIXTURE_MAX_BYTES` in `generate.py`), so the
/// oversized fixture need not be 4 MiB; the default limit has its own test below.
const LIMITS: EnvelopeLimits = EnvelopeLimits { max_bytes: 128 * 1024, max_signatures: MAX_SIGNATURES };

#[test]
fn every_negative_envelope_fixture_is_refused() {
    let a = crate::key_a();
    let trusted = [a.public_key()];
    let cases = fixtures("envelope");
    assert!(cases.len() >= 25, "fixtures went missing: {}", cases.len());
    let mut report = String::new();
    for (name, bytes) in cases {
        let outcome = Envelope::parse(&bytes, &LIMITS)
            .and_then(|envelope| envelope.verify_in_toto(&trusted, 1, &StatementLimits::default()));
        let outcome = match outcome {
            Ok((statement, keys)) => panic!("{name}: accepted a hostile envelope signed by {keys:?}: {statement:?}"),
            Err(e) => e.to_string(),
        };
        report.push_str(&format!("{name}: {outcome}\n"));
    }
    expect_file!["../data/envelope/expected.txt"].assert_eq(&report);
}

/// A tampered payload parses, but no key verifies it: `verified_keys` is empty.
#[test]
fn tampered_payload_verifies_under_no_key() {
    let a = crate::key_a();
    let bytes = std::fs::read(crate::data("envelope/tampered-payload")).unwrap();
    let envelope = Envelope::parse(&bytes, &LIMITS).unwrap();
    assert!(envelope.verified_keys(&[a.public_key()]).is_empty());
    // The untampered original verifies.
    let good = Envelope::parse(&std::fs::read(crate::data("provenance.dsse.json")).unwrap(), &LIMITS).unwrap();
    assert_eq!(good.verified_keys(&[a.public_key()]), [a.public_key()]);
}

/// A signed envelope whose payload type is not in-toto is refused by `in_toto_statement`, after
/// its signature verifies.
#[test]
fn wrong_payload_type_is_refused_after_a_valid_signature() {
    let a = crate::key_a();
    let bytes = std::fs::read(crate::data("envelope/wrong-payload-type")).unwrap();
    let envelope = Envelope::parse(&bytes, &LIMITS).unwrap();
    assert_eq!(envelope.verified_keys(&[a.public_key()]).len(), 1);
    let e = envelope.in_toto_statement(&StatementLimits::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "envelope payload type is `application/json`; an in-toto attestation has `application/vnd.in-toto+json`"
    );
}

/// The default limit, 4 MiB, checked on an envelope built in memory.
#[test]
fn default_limit_refuses_an_envelope_over_4_mib() {
    let mut bytes = std::fs::read(crate::data("provenance.dsse.json")).unwrap();
    assert!(Envelope::parse(&bytes, &EnvelopeLimits::default()).is_ok());
    bytes.resize(airlock_dsse::ENVELOPE_MAX_BYTES + 1, b' ');
    let e = Envelope::parse(&bytes, &EnvelopeLimits::default()).unwrap_err();
    assert_eq!(e.to_string(), "envelope is 4194305 bytes; the limit is 4194304");
}

#[test]
fn every_negative_statement_fixture_is_refused() {
    let cases = fixtures("statement");
    assert!(cases.len() >= 15, "fixtures went missing: {}", cases.len());
    let mut report = String::new();
    for (name, bytes) in cases {
        let outcome = match Statement::parse(&bytes, &StatementLimits::default()) {
            Ok(statement) => panic!("{name}: accepted a hostile statement: {statement:?}"),
            Err(e) => e.to_string(),
        };
        report.push_str(&format!("{name}: {outcome}\n"));
    }
    expect_file!["../data/statement/expected.txt"].assert_eq(&report);
}

/// The sample statement the fixtures are variations of parses.
#[test]
fn the_sample_statement_parses() {
    let bytes = std::fs::read(crate::data("provenance.json")).unwrap();
    let statement = Statement::parse(&bytes, &StatementLimits::default()).unwrap();
    assert_eq!(statement.predicate_type, "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement.sha256_subjects().collect::<Vec<_>>(),
        ["5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"]
    );
    assert!(statement.predicate.get().starts_with(r#"{"buildDefinition":"#));
}
