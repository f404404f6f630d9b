//! Repository names, stage names, tags and manifest references, per the OCI distribution grammar.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};
use crate::echo::echo;

/// Longest repository name Airlock accepts, in bytes (the distribution spec's practical limit).
pub const REPO_NAME_MAX_LEN: usize = 255;
/// Longest stage name.
pub const STAGE_NAME_MAX_LEN: usize = 32;
/// Longest tag (OCI distribution spec: 128 characters).
pub const TAG_MAX_LEN: usize = 128;

/// Why a name, stage or tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name is empty; name it `<stage>/<path>`, for example `dev/payments/api`")]
    EmptyRepo,
    #[error("repository name is {len} bytes long; the limit is {max}")]
    RepoTooLong { len: usize, max: usize },
    #[error(
        "repository name `{name}` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
    )]
    RepoGrammar { name: String },
    #[error(
        "repository name `{name}` has no path after its stage; name it `<stage>/<path>`, for example `dev/payments/api`"
    )]
    RepoWithoutPath { name: String },
    #[error(
        "stage name `{name}` is invalid: use 1 to 32 lowercase letters, digits and single `-`, for example `staging`"
    )]
    StageGrammar { name: String },
    #[error(
        "tag `{tag}` is invalid: a tag is 1 to 128 characters of letters, digits, `_`, `.` and `-`, and does not start with `.` or `-`"
    )]
    TagGrammar { tag: String },
    #[error("reference `{reference}` is neither a tag nor a digest")]
    Reference {
        reference: String,
        #[source]
        source: DigestError,
    },
}

/// One `/`-separated path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Walk separator runs between alphanumeric runs and check each run's shape.
    let mut run: Vec<u8> = Vec::new();
    for &b in bytes {
        if alnum(b) {
            if !run.is_empty() && !is_separator(&run) {
                return false;
            }
            run.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            run.push(b);
        } else {
            return false;
        }
    }
    true
}

fn is_separator(run: &[u8]) -> bool {
    matches!(run, b"." | b"_" | b"__") || run.iter().all(|&b| b == b'-')
}

/// A stage: the first segment of every repository name (`dev`, `staging`, `prod`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StageName(String);

impl StageName {
    /// Parses `[a-z0-9]+(-[a-z0-9]+)*`, at most 32 bytes.
    pub fn parse(input: &str) -> Result<StageName, NameError> {
        let grammar = !input.is_empty()
            && input.len() <= STAGE_NAME_MAX_LEN
            && input
                .split('-')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if grammar { Ok(StageName(input.to_owned())) } else { Err(NameError::StageGrammar { name: echo(input) }) }
    }

    /// The stage name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for StageName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StageName::parse(s)
    }
}

/// A repository name `<stage>/<path>`, valid under the OCI grammar.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName {
    name: String,
    stage: StageName,
}

impl RepoName {
    /// Parses a repository name. The first component must be a well-formed stage name and at
    /// least one component must follow it. Whether the stage exists is the caller's question.
    pub fn parse(input: &str) -> Result<RepoName, NameError> {
        if input.is_empty() {
            return Err(NameError::EmptyRepo);
        }
        if input.len() > REPO_NAME_MAX_LEN {
            return Err(NameError::RepoTooLong { len: input.len(), max: REPO_NAME_MAX_LEN });
        }
        if !input.split('/').all(is_path_component) {
            return Err(NameError::RepoGrammar { name: echo(input) });
        }
        let Some((stage, _path)) = input.split_once('/') else {
            return Err(NameError::RepoWithoutPath { name: echo(input) });
        };
        let stage = StageName::parse(stage)?;
        Ok(RepoName { name: input.to_owned(), stage })
    }

    /// The whole name, `dev/payments/api`.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The stage segment, `dev`.
    pub fn stage(&self) -> &StageName {
        &self.stage
    }

    /// The name without its stage, `payments/api`.
    pub fn path(&self) -> &str {
        self.name.get(self.stage.as_str().len().saturating_add(1)..).unwrap_or_default()
    }

    /// The same path in another stage: `dev/payments/api` becomes `prod/payments/api`.
    pub fn in_stage(&self, stage: &StageName) -> RepoName {
        RepoName { name: format!("{}/{}", stage.as_str(), self.path()), stage: stage.clone() }
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for RepoName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RepoName::parse(s)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// Parses a tag per the OCI distribution spec.
    pub fn parse(input: &str) -> Result<Tag, NameError> {
        let mut bytes = input.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if first_ok && rest_ok && input.len() <= TAG_MAX_LEN {
            Ok(Tag(input.to_owned()))
        } else {
            Err(NameError::TagGrammar { tag: echo(input) })
        }
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Tag {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tag::parse(s)
    }
}

/// The `<reference>` of a manifest URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    /// A reference with a `:` is a digest, anything else a tag (`:` is not allowed in tags).
    pub fn parse(input: &str) -> Result<Reference, NameError> {
        if input.contains(':') {
            Digest::parse(input)
                .map(Reference::Digest)
                .map_err(|source| NameError::Reference { reference: echo(input), source })
        } else {
            Tag::parse(input).map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check_repo(input: &str, expect: Expect) {
        let actual = match RepoName::parse(input) {
            Ok(r) => format!("ok {r} stage={} path={}", r.stage(), r.path()),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn repo_names() {
        check_repo("dev/payments/api", expect!["ok dev/payments/api stage=dev path=payments/api"]);
        check_repo("dev/a.b_c__d---e/f0", expect!["ok dev/a.b_c__d---e/f0 stage=dev path=a.b_c__d---e/f0"]);
        check_repo(
            "dev",
            expect![
                "err repository name `dev` has no path after its stage; name it `<stage>/<path>`, for example `dev/payments/api`"
            ],
        );
        check_repo(
            "",
            expect!["err repository name is empty; name it `<stage>/<path>`, for example `dev/payments/api`"],
        );
        check_repo(
            "dev/../prod/x",
            expect![
                "err repository name `dev/../prod/x` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check_repo(
            "dev/%2e%2e/x",
            expect![
                "err repository name `dev/%2e%2e/x` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check_repo(
            "dev//x",
            expect![
                "err repository name `dev//x` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check_repo(
            "dev/Payments",
            expect![
                "err repository name `dev/Payments` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check_repo(
            "dev/a___b",
            expect![
                "err repository name `dev/a___b` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check_repo(
            "dev/a..b",
            expect![
                "err repository name `dev/a..b` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check_repo(
            "dev/a/",
            expect![
                "err repository name `dev/a/` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check_repo(
            "/dev/a",
            expect![
                "err repository name `/dev/a` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check_repo(
            "dev.x/a",
            expect![
                "err stage name `dev.x` is invalid: use 1 to 32 lowercase letters, digits and single `-`, for example `staging`"
            ],
        );
        let long = format!("dev/{}", "a".repeat(300));
        check_repo(&long, expect!["err repository name is 304 bytes long; the limit is 255"]);
    }

    #[test]
    fn repo_in_another_stage() {
        let repo = RepoName::parse("dev/payments/api").unwrap();
        let prod = StageName::parse("prod").unwrap();
        assert_eq!(repo.in_stage(&prod).as_str(), "prod/payments/api");
        assert_eq!(repo.in_stage(&prod).stage(), &prod);
    }

    #[test]
    fn tags() {
        for ok in ["latest", "1.4.2", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(Tag::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", "ü", &"a".repeat(129)] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!(Reference::parse("v1").unwrap(), Reference::Tag(_)));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(matches!(Reference::parse(d).unwrap(), Reference::Digest(_)));
        expect!["reference `sha256:zz` is neither a tag nor a digest"]
            .assert_eq(&Reference::parse("sha256:zz").unwrap_err().to_string());
    }

    proptest::proptest! {
        #[test]
        fn repo_round_trip(parts in proptest::collection::vec("[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}", 1..5)) {
            let name = format!("dev/{}", parts.join("/"));
            let repo = RepoName::parse(&name).unwrap();
            proptest::prop_assert_eq!(repo.as_str(), name.as_str());
        }

        #[test]
        fn parsers_never_panic(s in ".{0,300}") {
            let _ = RepoName::parse(&s);
            let _ = Tag::parse(&s);
            let _ = Reference::parse(&s);
            let _ = StageName::parse(&s);
        }
    }
}
