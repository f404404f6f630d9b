//! Patterns over `/`-separated names: one grammar for repository patterns (trust signer rules,
//! waivers, role permissions) and for the predicate types and CI token claims matched the same
//! way. README.md, "Repository patterns", is the user's account of it.
//!
//! A pattern is split on `/` into segments and matches a name split the same way:
//!
//! - a segment without `*` matches exactly that segment;
//! - in a segment, `*` matches any run of characters, possibly empty, without `/`
//!   (`api-*` matches `api-v2`; `*` matches one whole segment);
//! - `**` may only be the whole last segment: `dev/payments/**` matches every name below
//!   `dev/payments/` (`dev/payments/api`, `dev/payments/api/v2`, but not `dev/payments` itself),
//!   and the pattern `**` matches every name;
//! - there is no escaping, no `?` and no character class; `**` anywhere else (`dev/**/api`,
//!   `a**`, `***`) is refused.
//!
//! A [`RepoPattern`] is a [`Pattern`] in the repository alphabet: lowercase letters, digits, `.`,
//! `_`, `-`, `/` and `*`, at most [`REPO_PATTERN_MAX_LEN`] bytes, and no empty, `.` or `..`
//! segment. Matching runs in time proportional to the pattern's length times the name's, with no
//! exponential backtracking, whatever the pattern.

use std::fmt;

use crate::echo::echo;
use crate::name::RepoName;

/// Longest [`Pattern`], in bytes.
pub const PATTERN_MAX_LEN: usize = 512;

/// Longest [`RepoPattern`], in bytes: the longest repository name Airlock accepts.
pub const REPO_PATTERN_MAX_LEN: usize = 255;

/// Why a pattern was refused. `pattern` is the pattern as given, quoted back bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// An empty pattern.
    #[error("pattern is empty; write the exact name, or `**` to match everything")]
    Empty,
    /// A pattern longer than its limit.
    #[error("pattern is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    /// A control character.
    #[error("pattern `{pattern}` contains a control character")]
    ControlCharacter { pattern: String },
    /// `**` other than as the whole last segment.
    #[error(
        "pattern `{pattern}` has `**` other than as its whole last segment; use `*` within one `/` segment, or end the pattern with `/**` for every name below"
    )]
    DoubleStar { pattern: String },
    /// A repository pattern outside the repository alphabet.
    #[error("pattern `{pattern}` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`")]
    Alphabet { pattern: String },
    /// A repository pattern with an empty, `.` or `..` segment.
    #[error("pattern `{pattern}` has an empty, `.` or `..` segment")]
    Segment { pattern: String },
}

/// A parsed pattern; see the module documentation for the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    /// The segments before a final `**` (all of them if there is none).
    segments: Vec<String>,
    /// Whether the pattern ends in `**`: anything may follow the segments and a `/`.
    below: bool,
}

impl Pattern {
    /// Parses a pattern: non-empty, at most [`PATTERN_MAX_LEN`] bytes, no control characters, and
    /// `**` only as the whole last segment.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        Pattern::parse_within(text, PATTERN_MAX_LEN)
    }

    fn parse_within(text: &str, max: usize) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.len() > max {
            return Err(PatternError::TooLong { len: text.len(), max });
        }
        if text.chars().any(char::is_control) {
            return Err(PatternError::ControlCharacter { pattern: echo(text) });
        }
        let (body, below) = match text.strip_suffix("**") {
            Some("") => ("", true),
            Some(body) => match body.strip_suffix('/') {
                Some(body) => (body, true),
                None => return Err(PatternError::DoubleStar { pattern: echo(text) }),
            },
            None => (text, false),
        };
        if body.contains("**") {
            return Err(PatternError::DoubleStar { pattern: echo(text) });
        }
        // Only the pattern `**` has no segment before its `**`; `/**` has an empty one.
        let segments = if text == "**" { Vec::new() } else { body.split('/').map(str::to_owned).collect() };
        Ok(Pattern { text: text.to_owned(), segments, below })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern ends in `**`, matching names of any depth below its other segments.
    pub fn ends_below(&self) -> bool {
        self.below
    }

    /// Whether the pattern is `**`, matching every name.
    pub fn matches_everything(&self) -> bool {
        self.below && self.segments.is_empty()
    }

    /// How many segments hold a `*`, not counting a final `**`.
    pub fn glob_segments(&self) -> usize {
        self.segments.iter().filter(|s| s.contains('*')).count()
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = name.split('/');
        for segment in &self.segments {
            match parts.next() {
                Some(part) if segment_matches(segment.as_bytes(), part.as_bytes()) => {}
                _ => return false,
            }
        }
        // After the segments: a final `**` needs a `/` and takes anything after it (or, alone,
        // the whole name); otherwise the name must end here.
        match (self.below, self.segments.is_empty()) {
            (true, true) => true,
            (true, false) => parts.next().is_some(),
            (false, _) => parts.next().is_none(),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One segment against its pattern: the greedy algorithm that backtracks only to the last `*`,
/// linear in the value for each `*`, so no pattern takes exponential time. Bytewise is sound for
/// UTF-8: a `*` consumes whole characters, since what follows it starts a character.
fn segment_matches(pattern: &[u8], value: &[u8]) -> bool {
    let (mut p, mut v) = (pattern, value);
    // The pattern after the last `*` seen, and the value after what that `*` has consumed so far.
    let mut star: Option<(&[u8], &[u8])> = None;
    loop {
        match (p.split_first(), v.split_first()) {
            (Some((b'*', rest)), _) => {
                star = Some((rest, v));
                p = rest;
            }
            (Some((want, p_rest)), Some((got, v_rest))) if want == got => {
                p = p_rest;
                v = v_rest;
            }
            (None, None) => return true,
            _ => match star {
                Some((after, consumed)) => match consumed.split_first() {
                    Some((_, next)) => {
                        star = Some((after, next));
                        p = after;
                        v = next;
                    }
                    None => return false,
                },
                None => return false,
            },
        }
    }
}

/// A pattern over repository names (`dev/payments/*`, `*/payments/api`, `prod/**`): a [`Pattern`]
/// in the repository alphabet, without empty, `.` or `..` segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPattern(Pattern);

impl RepoPattern {
    /// Parses a repository pattern; see the module documentation for the grammar.
    pub fn parse(text: &str) -> Result<RepoPattern, PatternError> {
        let pattern = Pattern::parse_within(text, REPO_PATTERN_MAX_LEN)?;
        let alphabet = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/*".contains(&b);
        if !text.bytes().all(alphabet) {
            return Err(PatternError::Alphabet { pattern: echo(text) });
        }
        if pattern.segments.iter().any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(PatternError::Segment { pattern: echo(text) });
        }
        Ok(RepoPattern(pattern))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The pattern, for what the grammar says of every pattern.
    pub fn pattern(&self) -> &Pattern {
        &self.0
    }

    /// Whether the repository named `name` (a full name, `dev/payments/api`, or the path after
    /// the stage, as the caller's patterns are written) matches.
    pub fn matches(&self, name: &str) -> bool {
        self.0.matches(name)
    }

    /// Whether the full name of `repo` matches.
    pub fn matches_repo(&self, repo: &RepoName) -> bool {
        self.0.matches(repo.as_str())
    }
}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    /// Each name matched against a parsed pattern (`name=y` or `name=n`), or the refusal.
    fn outcomes<P>(parsed: Result<P, PatternError>, matches: fn(&P, &str) -> bool, names: &[&str]) -> String {
        match parsed {
            Ok(p) => names
                .iter()
                .map(|n| format!("{n}={}", if matches(&p, n) { "y" } else { "n" }))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("err {e}"),
        }
    }

    /// A repository pattern against names.
    fn check(pattern: &str, names: &[&str], expect: Expect) {
        expect.assert_eq(&outcomes(RepoPattern::parse(pattern), RepoPattern::matches, names));
    }

    /// The same with the general grammar (any characters but control ones).
    fn check_any(pattern: &str, names: &[&str], expect: Expect) {
        expect.assert_eq(&outcomes(Pattern::parse(pattern), Pattern::matches, names));
    }

    #[test]
    fn exact_names() {
        check(
            "dev/payments/api",
            &["dev/payments/api", "dev/payments/ap", "dev/payments/apix", "dev/payments/api/v2", "dev/payments"],
            expect!["dev/payments/api=y dev/payments/ap=n dev/payments/apix=n dev/payments/api/v2=n dev/payments=n"],
        );
    }

    #[test]
    fn a_star_stays_within_its_segment() {
        check(
            "dev/payments/*",
            &["dev/payments/api", "dev/payments/", "dev/payments/api/v2", "dev/payments"],
            expect!["dev/payments/api=y dev/payments/=y dev/payments/api/v2=n dev/payments=n"],
        );
        check(
            "*/payments/api",
            &["dev/payments/api", "staging/payments/api", "dev/x/payments/api", "/payments/api"],
            expect!["dev/payments/api=y staging/payments/api=y dev/x/payments/api=n /payments/api=y"],
        );
        check(
            "dev/payments/api-*",
            &["dev/payments/api-v2", "dev/payments/api-", "dev/payments/api", "dev/payments/api-v2/x"],
            expect!["dev/payments/api-v2=y dev/payments/api-=y dev/payments/api=n dev/payments/api-v2/x=n"],
        );
        check(
            "dev/a*b*c",
            &["dev/abc", "dev/aXbYc", "dev/acb", "dev/aXbYcZ", "dev/a/b/c"],
            expect!["dev/abc=y dev/aXbYc=y dev/acb=n dev/aXbYcZ=n dev/a/b/c=n"],
        );
        check("*", &["", "abc", "dev/api"], expect!["=y abc=y dev/api=n"]);
        check("*/*", &["dev/api", "dev/a/b"], expect!["dev/api=y dev/a/b=n"]);
    }

    #[test]
    fn a_final_double_star_takes_every_name_below() {
        check(
            "dev/payments/**",
            &["dev/payments/api", "dev/payments/api/v2", "dev/payments", "dev/paymentsx/a", "prod/payments/api"],
            expect!["dev/payments/api=y dev/payments/api/v2=y dev/payments=n dev/paymentsx/a=n prod/payments/api=n"],
        );
        check("**", &["", "dev", "dev/a/b/c"], expect!["=y dev=y dev/a/b/c=y"]);
        check(
            "*/payments/**",
            &["dev/payments/a/b", "dev/x/payments/a"],
            expect!["dev/payments/a/b=y dev/x/payments/a=n"],
        );
    }

    #[test]
    fn predicate_types_and_claims_use_the_same_grammar() {
        check_any(
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
        check_any("https://**", &["https://a/b", "http://a"], expect!["https://a/b=y http://a=n"]);
        check_any(
            "*/.github/workflows/release.yml@refs/heads/main",
            &[
                "Acme/.github/workflows/release.yml@refs/heads/main",
                "a/b/.github/workflows/release.yml@refs/heads/main",
            ],
            expect![
                "Acme/.github/workflows/release.yml@refs/heads/main=y a/b/.github/workflows/release.yml@refs/heads/main=n"
            ],
        );
        check_any("é*", &["éü", "e"], expect!["éü=y e=n"]);
        check_any("*ü", &["éü"], expect!["éü=y"]);
    }

    #[test]
    fn attacks_and_mistakes_are_refused() {
        check("", &[], expect!["err pattern is empty; write the exact name, or `**` to match everything"]);
        check("dev/../prod/api", &[], expect!["err pattern `dev/../prod/api` has an empty, `.` or `..` segment"]);
        check("dev/./api", &[], expect!["err pattern `dev/./api` has an empty, `.` or `..` segment"]);
        check("dev//api", &[], expect!["err pattern `dev//api` has an empty, `.` or `..` segment"]);
        check("/dev/api", &[], expect!["err pattern `/dev/api` has an empty, `.` or `..` segment"]);
        check("dev/api/", &[], expect!["err pattern `dev/api/` has an empty, `.` or `..` segment"]);
        check("/**", &[], expect!["err pattern `/**` has an empty, `.` or `..` segment"]);
        check(
            "dev/**/api",
            &[],
            expect![
                "err pattern `dev/**/api` has `**` other than as its whole last segment; use `*` within one `/` segment, or end the pattern with `/**` for every name below"
            ],
        );
        check(
            "**/api",
            &[],
            expect![
                "err pattern `**/api` has `**` other than as its whole last segment; use `*` within one `/` segment, or end the pattern with `/**` for every name below"
            ],
        );
        check(
            "dev/api**",
            &[],
            expect![
                "err pattern `dev/api**` has `**` other than as its whole last segment; use `*` within one `/` segment, or end the pattern with `/**` for every name below"
            ],
        );
        check(
            "dev/***",
            &[],
            expect![
                "err pattern `dev/***` has `**` other than as its whole last segment; use `*` within one `/` segment, or end the pattern with `/**` for every name below"
            ],
        );
        check(
            "Dev/api",
            &[],
            expect!["err pattern `Dev/api` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"],
        );
        check(
            "dev/api?",
            &[],
            expect!["err pattern `dev/api?` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"],
        );
        check(
            r#"a" || true || ""#,
            &[],
            expect![[
                r#"err pattern `a" || true || "` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"#
            ]],
        );
        check(
            r"a\",
            &[],
            expect![[r"err pattern `a\` may hold only lowercase letters, digits, `.`, `_`, `-`, `/` and `*`"]],
        );
        check("dev/\n", &[], expect!["err pattern `dev/\\n` contains a control character"]);
        check(&"a".repeat(256), &[], expect!["err pattern is 256 bytes long; the limit is 255"]);
        check(&"a".repeat(255), &["a"], expect!["a=n"]);
        check_any(&"a".repeat(513), &[], expect!["err pattern is 513 bytes long; the limit is 512"]);
        check_any("Dev/API", &["Dev/API", "dev/api"], expect!["Dev/API=y dev/api=n"]);
    }

    #[test]
    fn what_the_pattern_says_of_itself() {
        let p = |t: &str| RepoPattern::parse(t).unwrap();
        assert!(p("**").pattern().matches_everything() && p("**").pattern().ends_below());
        assert!(!p("dev/**").pattern().matches_everything() && p("dev/**").pattern().ends_below());
        assert_eq!(p("*/payments/api-*").pattern().glob_segments(), 2);
        assert_eq!(p("dev/payments/**").pattern().glob_segments(), 0);
        assert_eq!(p("dev/app").to_string(), "dev/app");
        let repo = RepoName::parse("dev/payments/api").unwrap();
        assert!(p("dev/payments/*").matches_repo(&repo) && !p("prod/**").matches_repo(&repo));
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = Pattern::parse(&"*a".repeat(200)).unwrap();
        assert!(!pattern.matches(&("a".repeat(199) + "b")));
    }

    /// A plain backtracking matcher of the grammar, obviously right and exponential.
    fn reference(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*'] => true,
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
        fn repository_patterns_never_panic(p in "[a-z./*-]{0,20}", s in "[a-z./-]{0,40}") {
            if let Ok(pattern) = RepoPattern::parse(&p) {
                let _ = pattern.matches(&s);
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
