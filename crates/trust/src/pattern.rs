//! Patterns over predicate types and repository names, as signer rules and thresholds write them.
//!
//! The grammar is deliberately small:
//!
//! - `*` matches any run of characters, possibly empty, that contains no `/`;
//! - `**` matches any run of characters, possibly empty, `/` included;
//! - every other character matches itself; there is no escaping, no `?` and no character class.
//!
//! So `dev/payments/*` matches `dev/payments/api` but not `dev/payments/api/v2`;
//! `dev/payments/**` matches both but not `dev/payments` itself; `https://slsa.dev/provenance/*`
//! matches `https://slsa.dev/provenance/v1`. Three or more stars in a row are refused as ambiguous.
//! Matching is by bytes and runs in time proportional to pattern length times input length, with
//! no backtracking, whatever the pattern.

use std::fmt;

use airlock_model::echo::echo;

/// Longest pattern accepted, in bytes.
pub const PATTERN_MAX_LEN: usize = 512;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern is empty; write `**` to match everything")]
    Empty,
    #[error("pattern is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error(
        "pattern `{pattern}` has three or more `*` in a row; use `*` (within one `/` segment) or `**` (across segments)"
    )]
    TooManyStars { pattern: String },
    #[error("pattern `{pattern}` contains a control character")]
    ControlCharacter { pattern: String },
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `*`: any bytes but `/`.
    Star,
    /// `**`: any bytes.
    DoubleStar,
}

/// A parsed pattern; see the module documentation for the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    tokens: Vec<Token>,
}

impl Pattern {
    /// Parses a pattern: non-empty, at most [`PATTERN_MAX_LEN`] bytes, no control characters and
    /// no run of three or more `*`.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.len() > PATTERN_MAX_LEN {
            return Err(PatternError::TooLong { len: text.len(), max: PATTERN_MAX_LEN });
        }
        if text.chars().any(char::is_control) {
            return Err(PatternError::ControlCharacter { pattern: echo(text) });
        }
        let mut tokens = Vec::with_capacity(text.len());
        let mut bytes = text.bytes().peekable();
        while let Some(b) = bytes.next() {
            if b != b'*' {
                tokens.push(Token::Byte(b));
            } else if bytes.next_if_eq(&b'*').is_none() {
                tokens.push(Token::Star);
            } else if bytes.peek() == Some(&b'*') {
                return Err(PatternError::TooManyStars { pattern: echo(text) });
            } else {
                tokens.push(Token::DoubleStar);
            }
        }
        Ok(Pattern { text: text.to_owned(), tokens })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `input` matches the whole pattern.
    pub fn matches(&self, input: &str) -> bool {
        // A simulation of the pattern's automaton: `live[i]` says the input read so far can end
        // right after the first `i` tokens.
        let mut live = vec![false; self.tokens.len().saturating_add(1)];
        if let Some(first) = live.first_mut() {
            *first = true;
        }
        self.close(&mut live);
        let mut next = vec![false; live.len()];
        for b in input.bytes() {
            next.iter_mut().for_each(|n| *n = false);
            for (i, token) in self.tokens.iter().enumerate() {
                if !live.get(i).copied().unwrap_or(false) {
                    continue;
                }
                let target = match token {
                    Token::Byte(t) if *t == b => i.checked_add(1),
                    Token::Star if b != b'/' => Some(i),
                    Token::DoubleStar => Some(i),
                    _ => None,
                };
                if let Some(slot) = target.and_then(|t| next.get_mut(t)) {
                    *slot = true;
                }
            }
            self.close(&mut next);
            std::mem::swap(&mut live, &mut next);
            if !live.contains(&true) {
                return false;
            }
        }
        live.last().copied().unwrap_or(false)
    }

    /// Adds the states reachable without reading a byte: a star may match nothing.
    fn close(&self, live: &mut [bool]) {
        for (i, token) in self.tokens.iter().enumerate() {
            let star = matches!(token, Token::Star | Token::DoubleStar);
            if star
                && live.get(i).copied().unwrap_or(false)
                && let Some(slot) = i.checked_add(1).and_then(|j| live.get_mut(j))
            {
                *slot = true;
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    /// Matches each input against `pattern` and lists the outcomes.
    fn check(pattern: &str, inputs: &[&str], expect: Expect) {
        let actual = match Pattern::parse(pattern) {
            Ok(p) => inputs
                .iter()
                .map(|i| format!("{i}={}", if p.matches(i) { "y" } else { "n" }))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn matching() {
        check(
            "dev/payments/api",
            &["dev/payments/api", "dev/payments/ap", "dev/payments/apix"],
            expect!["dev/payments/api=y dev/payments/ap=n dev/payments/apix=n"],
        );
        check(
            "dev/payments/*",
            &["dev/payments/api", "dev/payments/", "dev/payments/api/v2", "dev/payments"],
            expect!["dev/payments/api=y dev/payments/=y dev/payments/api/v2=n dev/payments=n"],
        );
        check(
            "dev/payments/**",
            &["dev/payments/api", "dev/payments/api/v2", "dev/payments", "dev/paymentsx/a"],
            expect!["dev/payments/api=y dev/payments/api/v2=y dev/payments=n dev/paymentsx/a=n"],
        );
        check("**", &["", "a/b/c"], expect!["=y a/b/c=y"]);
        check("*", &["", "abc", "a/b"], expect!["=y abc=y a/b=n"]);
        check("*/api", &["dev/api", "prod/api", "dev/x/api"], expect!["dev/api=y prod/api=y dev/x/api=n"]);
        check("**/api", &["dev/api", "dev/x/api", "api", "/api"], expect!["dev/api=y dev/x/api=y api=n /api=y"]);
        check(
            "https://slsa.dev/provenance/*",
            &[
                "https://slsa.dev/provenance/v1",
                "https://slsa.dev/provenance/v0.2",
                "https://slsa.dev/provenance/v1/x",
                "https://slsa.dev/provenance",
            ],
            expect![
                "https://slsa.dev/provenance/v1=y https://slsa.dev/provenance/v0.2=y https://slsa.dev/provenance/v1/x=n https://slsa.dev/provenance=n"
            ],
        );
        check("a*b*c", &["abc", "aXbYc", "a/b/c", "acb"], expect!["abc=y aXbYc=y a/b/c=n acb=n"]);
        check("a**b", &["ab", "a/x/b", "a/x/c"], expect!["ab=y a/x/b=y a/x/c=n"]);
        check("dev/**/api", &["dev/api", "dev//api", "dev/a/b/api"], expect!["dev/api=n dev//api=y dev/a/b/api=y"]);
        check("é*", &["éa", "e"], expect!["éa=y e=n"]);
    }

    #[test]
    fn refused() {
        check("", &[], expect!["err pattern is empty; write `**` to match everything"]);
        check(
            "dev/***",
            &[],
            expect![
                "err pattern `dev/***` has three or more `*` in a row; use `*` (within one `/` segment) or `**` (across segments)"
            ],
        );
        check("dev/\n", &[], expect!["err pattern `dev/\\n` contains a control character"]);
        check(&"a".repeat(513), &[], expect!["err pattern is 513 bytes long; the limit is 512"]);
    }

    /// A plain backtracking matcher, obviously right and exponential, to check the automaton.
    fn reference(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| reference(rest, &s[i..])),
            [b'*', rest @ ..] => {
                (0..=s.len()).take_while(|&i| !s[..i].contains(&b'/')).any(|i| reference(rest, &s[i..]))
            }
            [c, rest @ ..] => s.first() == Some(c) && reference(rest, &s[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_a_backtracking_matcher(p in "[ab/*]{0,8}", s in "[ab/]{0,10}") {
            if let Ok(pattern) = Pattern::parse(&p) {
                proptest::prop_assert_eq!(pattern.matches(&s), reference(p.as_bytes(), s.as_bytes()), "{} {}", p, s);
            }
        }

        #[test]
        fn never_panics(p in ".{0,20}", s in ".{0,40}") {
            if let Ok(pattern) = Pattern::parse(&p) {
                let _ = pattern.matches(&s);
            }
        }
    }
}
