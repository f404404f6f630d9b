//! Negative note and checkpoint fixtures under `tests/data/`, each named after the attack it
//! stands for: every one must be refused with the error shown, never accepted and never a panic.

use std::path::{Path, PathBuf};

use airlock_tlog::{Checkpoint, Note, Signer, Verifier, sign};
use expect_test::expect_file;

/// The fixtures of one directory, by name; `expected.txt` is the snapshot, not a fixture.
fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
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

/// The Go note package's example key; the note fixtures are attacks on notes it could sign.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

#[test]
fn every_negative_note_fixture_is_refused() {
    let peter = Verifier::parse(PETER_VKEY).unwrap();
    let cases = fixtures("note");
    assert!(cases.len() >= 12, "fixtures went missing: {}", cases.len());
    let mut report = String::new();
    for (name, bytes) in cases {
        let outcome = match Note::parse(&bytes).and_then(|note| note.verify(&[&peter])) {
            Ok(names) => panic!("{name}: accepted a hostile note signed by {names:?}"),
            Err(e) => e.to_string(),
        };
        report.push_str(&format!("{name}: {outcome}\n"));
    }
    expect_file!["../data/note/expected.txt"].assert_eq(&report);
}

/// Each checkpoint fixture is a note text. It is refused by `Checkpoint::parse`, and, where it is
/// a text a log could sign at all, refused the same way when it arrives validly signed: a
/// compromised log's signature does not make a malformed checkpoint acceptable.
#[test]
fn every_negative_checkpoint_fixture_is_refused() {
    let log = Signer::from_seed("example.com/log", [42; 32]).unwrap();
    let cases = fixtures("checkpoint");
    assert!(cases.len() >= 12, "fixtures went missing: {}", cases.len());
    let mut report = String::new();
    for (name, bytes) in cases {
        let text = String::from_utf8(bytes).unwrap();
        let outcome = match Checkpoint::parse(&text) {
            Ok(c) => panic!("{name}: accepted a hostile checkpoint: {c:?}"),
            Err(e) => e.to_string(),
        };
        if let Ok(note) = sign(&text, &[&log]) {
            let opened = Checkpoint::open(note.as_bytes(), &log.verifier()).unwrap_err();
            assert_eq!(opened.to_string(), outcome, "{name}");
        }
        report.push_str(&format!("{name}: {outcome}\n"));
    }
    expect_file!["../data/checkpoint/expected.txt"].assert_eq(&report);
}

/// Signed checkpoints a verifier must refuse although their text is well formed: each is signed
/// with the Ed25519 seed `[42; 32]` under the key name of its first signature line, and opened
/// with that very key.
#[test]
fn every_negative_signed_checkpoint_is_refused() {
    let cases = fixtures("checkpoint-note");
    assert!(cases.len() >= 3, "fixtures went missing: {}", cases.len());
    let mut report = String::new();
    for (name, bytes) in cases {
        let note = Note::parse(&bytes).unwrap();
        let key_name = &note.signatures.first().unwrap().name;
        let verifier = Signer::from_seed(key_name, [42; 32]).unwrap().verifier();
        let outcome = match Checkpoint::open(&bytes, &verifier) {
            Ok(c) => panic!("{name}: accepted a hostile checkpoint: {c:?}"),
            Err(e) => e.to_string(),
        };
        report.push_str(&format!("{name}: {outcome}\n"));
    }
    expect_file!["../data/checkpoint-note/expected.txt"].assert_eq(&report);
}

/// Notes a verifier must accept: what signed-note says to ignore is ignored.
#[test]
fn every_positive_note_fixture_verifies() {
    let peter = Verifier::parse(PETER_VKEY).unwrap();
    let cases = fixtures("note-accepted");
    assert!(!cases.is_empty(), "fixtures went missing");
    let mut report = String::new();
    for (name, bytes) in cases {
        let outcome = match Note::parse(&bytes).and_then(|note| note.verify(&[&peter])) {
            Ok(names) => format!("verified by {}", names.join(", ")),
            Err(e) => panic!("{name}: refused a valid note: {e}"),
        };
        report.push_str(&format!("{name}: {outcome}\n"));
    }
    expect_file!["../data/note-accepted/expected.txt"].assert_eq(&report);
}
