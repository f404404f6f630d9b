//! Fuzzes what identity reads from strangers: e-mail addresses (the person rule) and one-time
//! enrollment tokens. Neither may panic; a normalized person must normalize to itself again, and
//! a token must name a valid principal and hold the whole 256-bit secret.
#![no_main]

use airlock_core::identity::enrollment_subject;
use airlock_core::identity::person::{Person, PersonRule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for fold_subaddress in [true, false] {
        let rule = PersonRule { fold_subaddress };
        if let Ok(person) = Person::from_email(text, &rule) {
            let again = Person::from_email(person.describe(), &rule).expect("a normalized address parses");
            assert_eq!(again, person, "normalizing is idempotent");
            assert_eq!(Person::from_stored(&person.to_string(), &rule).ok(), Some(person.clone()));
        }
    }
    if let Some(id) = enrollment_subject(text) {
        assert!(text.ends_with(&format!(".{id}")));
        assert!(text.len() >= "ale_".len() + 43 + 1 + id.as_str().len());
    }
});
