//! Fuzzes in-toto Statement parsing. It must never panic, what it parses must respect the limits,
//! and rendering a parsed statement must give a statement that parses to the same thing.
#![no_main]

use airlock_dsse::{MAX_DIGESTS_PER_SUBJECT, Statement, StatementLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = StatementLimits { max_bytes: 64 * 1024, max_subjects: 8, max_depth: 16 };
    let Ok(statement) = Statement::parse(data, &limits) else { return };
    assert!(!statement.subjects.is_empty() && statement.subjects.len() <= limits.max_subjects);
    for subject in &statement.subjects {
        assert!(!subject.digest.is_empty() && subject.digest.len() <= MAX_DIGESTS_PER_SUBJECT);
    }
    assert!(!statement.predicate_type.is_empty());
    assert!(statement.predicate.get().starts_with('{'));
    let again = Statement::parse(&statement.to_json(), &StatementLimits::default())
        .expect("a parsed statement renders parseably");
    assert_eq!(again.subjects, statement.subjects);
    assert_eq!(again.predicate_type, statement.predicate_type);
    assert_eq!(again.predicate.get(), statement.predicate.get());
});
