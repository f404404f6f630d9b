//! Fuzzes the Docker token-auth scope parser. It must never panic; whatever parses must print
//! back to a scope that parses to the same value, name a valid repository, and ask for at least
//! one action.
#![no_main]

use airlock_access::scope::Scope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(scopes) = Scope::parse_all([text]) else { return };
    for scope in scopes {
        let printed = scope.to_string();
        assert_eq!(Scope::parse(&printed).ok(), Some(scope.clone()), "{printed}");
        if let Scope::Repository { name, actions } = &scope {
            assert!(!actions.is_empty());
            assert!(!name.as_str().split('/').any(|s| s == ".." || s == "." || s.is_empty()));
        }
    }
});
