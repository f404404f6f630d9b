//! The person behind an account: what makes two accounts one person, so that separation of
//! duties compares people, not account names.
//!
//! Today a person is known by the verified e-mail address an access admin set on their account.
//! [`PersonRule`] normalizes it in these steps:
//!
//! 1. trim surrounding whitespace;
//! 2. refuse anything but one plain address: at most [`EMAIL_MAX_LEN`] bytes (RFC 5321
//!    §4.5.3.1.3: a path is at most 256 octets, angle brackets included), no whitespace, control
//!    or invisible format character, exactly one `@`, and a non-empty local part and domain;
//! 3. lowercase the whole address, Unicode-aware (`Same.Person@Example.COM` is
//!    `same.person@example.com`);
//! 4. unless `fold_subaddress` is off, drop the sub-address tag (RFC 5233): `local+tag@domain`
//!    is `local@domain`.
//!
//! The rule is wider than some mail systems (which may treat a local part's case as
//! significant) on purpose: a false "one person" only asks for another approver, while a false
//! "two people" lets one person approve their own change.
//!
//! A person is written `email:<address>`, the form approvals store (and whose digest their log
//! entry records). An OIDC subject (issuer and `sub`) is meant to become a second kind of
//! person beside [`Person::Email`].

use std::fmt;

use airlock_model::echo::echo;

/// Longest e-mail address, in bytes, before and after normalization.
pub const EMAIL_MAX_LEN: usize = 254;

/// How a stored person identity of the e-mail kind starts.
const EMAIL_PREFIX: &str = "email:";

/// Why an address or a stored identity names no person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    #[error("the e-mail is empty; give an address like `dana@example.com`")]
    Empty,
    #[error("e-mail `{address}` is longer than {EMAIL_MAX_LEN} bytes; give a shorter address")]
    TooLong { address: String },
    #[error(
        "e-mail `{address}` contains whitespace, a control or an invisible character; give a plain address like `dana@example.com`"
    )]
    Character { address: String },
    #[error("e-mail `{address}` has {count} `@` signs, not one; give an address like `dana@example.com`")]
    At { address: String, count: usize },
    #[error("e-mail `{address}` has nothing before its `@`; give an address like `dana@example.com`")]
    EmptyLocal { address: String },
    #[error("e-mail `{address}` has nothing after its `@`; give an address like `dana@example.com`")]
    EmptyDomain { address: String },
    #[error(
        "e-mail `{address}` has nothing before its `+` tag, so it names no mailbox; give the mailbox's own address"
    )]
    EmptyMailbox { address: String },
    #[error("identity `{identity}` names no person (only `email:` identities do); set the account's e-mail")]
    NotAPerson { identity: String },
}

/// How addresses are normalized. `fold_subaddress` is the config key
/// `access.fold_subaddress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonRule {
    /// Whether `local+tag@domain` is the person `local@domain` (on by default).
    pub fold_subaddress: bool,
}

impl Default for PersonRule {
    fn default() -> PersonRule {
        PersonRule { fold_subaddress: true }
    }
}

/// A normalized e-mail address, built only by [`PersonRule`]'s steps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// `input` normalized by `rule`, or why it is not one plain address.
    pub fn parse(input: &str, rule: &PersonRule) -> Result<EmailAddress, PersonError> {
        // 1. Trim.
        let trimmed = input.trim();
        let shown = || echo(trimmed);
        if trimmed.is_empty() {
            return Err(PersonError::Empty);
        }
        // 2. One plain address, bounded.
        if trimmed.len() > EMAIL_MAX_LEN {
            return Err(PersonError::TooLong { address: shown() });
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control() || invisible(c)) {
            return Err(PersonError::Character { address: shown() });
        }
        let count = trimmed.matches('@').count();
        let Some((local, domain)) = trimmed.split_once('@').filter(|_| count == 1) else {
            return Err(PersonError::At { address: shown(), count });
        };
        if local.is_empty() {
            return Err(PersonError::EmptyLocal { address: shown() });
        }
        if domain.is_empty() {
            return Err(PersonError::EmptyDomain { address: shown() });
        }
        // 3. Lowercase the whole address.
        let (local, domain) = (local.to_lowercase(), domain.to_lowercase());
        // 4. Fold the sub-address tag.
        let local = match local.split_once('+') {
            Some((mailbox, _)) if rule.fold_subaddress => {
                if mailbox.is_empty() {
                    return Err(PersonError::EmptyMailbox { address: shown() });
                }
                mailbox.to_owned()
            }
            _ => local,
        };
        let address = format!("{local}@{domain}");
        // Lowercasing can lengthen a character's encoding.
        if address.len() > EMAIL_MAX_LEN {
            return Err(PersonError::TooLong { address: shown() });
        }
        Ok(EmailAddress(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters that show as nothing: a soft hyphen, zero-width spaces and joiners, direction
/// marks and overrides, word joiners and the byte-order mark. Two addresses that differ only by
/// one would look the same to the admin who set them.
fn invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// One person, whichever of their accounts acts. Two accounts are one person when their
/// persons are equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Person {
    /// Known by a verified e-mail address, normalized.
    Email(EmailAddress),
}

impl Person {
    /// The person with the e-mail `address`, normalized by `rule`.
    pub fn from_email(address: &str, rule: &PersonRule) -> Result<Person, PersonError> {
        EmailAddress::parse(address, rule).map(Person::Email)
    }

    /// The person a stored identity names (`email:…`), normalized by today's `rule`: an
    /// identity stored before the rule (`email:Same.Person+ops@example.com`) reads as the person
    /// it names now.
    pub fn from_stored(identity: &str, rule: &PersonRule) -> Result<Person, PersonError> {
        match identity.strip_prefix(EMAIL_PREFIX) {
            Some(address) => Person::from_email(address, rule),
            None => Err(PersonError::NotAPerson { identity: echo(identity) }),
        }
    }

    /// How a person is shown: the e-mail address alone.
    pub fn describe(&self) -> &str {
        match self {
            Person::Email(address) => address.as_str(),
        }
    }
}

/// The stored form, `email:<address>`.
impl fmt::Display for Person {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Person::Email(address) => write!(f, "{EMAIL_PREFIX}{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    const FOLD: PersonRule = PersonRule { fold_subaddress: true };
    const KEEP: PersonRule = PersonRule { fold_subaddress: false };

    fn check(input: &str, rule: PersonRule, expect: Expect) {
        let got = match Person::from_email(input, &rule) {
            Ok(person) => person.to_string(),
            Err(e) => format!("error: {e}"),
        };
        expect.assert_eq(&got);
    }

    #[test]
    fn one_person_however_the_address_is_written() {
        check("same.person@example.com", FOLD, expect!["email:same.person@example.com"]);
        check("Same.Person@example.com", FOLD, expect!["email:same.person@example.com"]);
        check("SAME.PERSON@EXAMPLE.COM", FOLD, expect!["email:same.person@example.com"]);
        check("  same.person@example.com\t", FOLD, expect!["email:same.person@example.com"]);
        check("same.person+ops@example.com", FOLD, expect!["email:same.person@example.com"]);
        check("Same.Person+Ops+2@Example.com", FOLD, expect!["email:same.person@example.com"]);
        check("ÉLODIE@exemple.fr", FOLD, expect!["email:élodie@exemple.fr"]);
        check("ΣΟΦΙΑ@example.gr", FOLD, expect!["email:σοφια@example.gr"]);
    }

    #[test]
    fn folding_the_tag_can_be_turned_off() {
        check("same.person+ops@example.com", KEEP, expect!["email:same.person+ops@example.com"]);
        check("Same.Person+Ops@example.com", KEEP, expect!["email:same.person+ops@example.com"]);
        check("+ops@example.com", KEEP, expect!["email:+ops@example.com"]);
    }

    #[test]
    fn what_is_not_one_plain_address_is_refused() {
        check("", FOLD, expect!["error: the e-mail is empty; give an address like `dana@example.com`"]);
        check("   ", FOLD, expect!["error: the e-mail is empty; give an address like `dana@example.com`"]);
        check(
            "same.person",
            FOLD,
            expect!["error: e-mail `same.person` has 0 `@` signs, not one; give an address like `dana@example.com`"],
        );
        check(
            "a@b@example.com",
            FOLD,
            expect![
                "error: e-mail `a@b@example.com` has 2 `@` signs, not one; give an address like `dana@example.com`"
            ],
        );
        check(
            "@example.com",
            FOLD,
            expect!["error: e-mail `@example.com` has nothing before its `@`; give an address like `dana@example.com`"],
        );
        check(
            "same.person@",
            FOLD,
            expect!["error: e-mail `same.person@` has nothing after its `@`; give an address like `dana@example.com`"],
        );
        check(
            "same person@example.com",
            FOLD,
            expect![
                "error: e-mail `same person@example.com` contains whitespace, a control or an invisible character; give a plain address like `dana@example.com`"
            ],
        );
        check(
            "same.person\n@example.com",
            FOLD,
            expect![
                "error: e-mail `same.person\\n@example.com` contains whitespace, a control or an invisible character; give a plain address like `dana@example.com`"
            ],
        );
        check(
            "same.\u{200b}person@example.com",
            FOLD,
            expect![
                "error: e-mail `same.\u{200b}person@example.com` contains whitespace, a control or an invisible character; give a plain address like `dana@example.com`"
            ],
        );
        check(
            "+ops@example.com",
            FOLD,
            expect![
                "error: e-mail `+ops@example.com` has nothing before its `+` tag, so it names no mailbox; give the mailbox's own address"
            ],
        );
    }

    #[test]
    fn length_is_bounded_before_and_after_lowercasing() {
        let domain = "@example.com";
        let longest = format!("{}{domain}", "a".repeat(EMAIL_MAX_LEN - domain.len()));
        assert_eq!(Person::from_email(&longest, &FOLD).unwrap().describe(), longest);
        let over = format!("a{longest}");
        assert!(matches!(Person::from_email(&over, &FOLD), Err(PersonError::TooLong { .. })));
        // `İ` is two bytes; lowercase it is three (`i` and a combining dot).
        let grows = format!("{}{domain}", "İ".repeat((EMAIL_MAX_LEN - domain.len()) / 2));
        assert!(grows.len() <= EMAIL_MAX_LEN);
        assert!(matches!(Person::from_email(&grows, &FOLD), Err(PersonError::TooLong { .. })));
    }

    #[test]
    fn stored_identities_read_under_todays_rule() {
        let person = Person::from_email("same.person@example.com", &FOLD).unwrap();
        for stored in
            ["email:same.person@example.com", "email:Same.Person@example.com", "email:same.person+ops@example.com"]
        {
            assert_eq!(Person::from_stored(stored, &FOLD).as_ref(), Ok(&person), "{stored}");
        }
        assert_ne!(Person::from_stored("email:same.person+ops@example.com", &KEEP).as_ref(), Ok(&person));
        expect![
            "error: identity `principal:bob` names no person (only `email:` identities do); set the account's e-mail"
        ]
        .assert_eq(&format!("error: {}", Person::from_stored("principal:bob", &FOLD).unwrap_err()));
        // The stored form reads back as itself.
        assert_eq!(Person::from_stored(&person.to_string(), &FOLD).unwrap(), person);
    }
}
