//! The normalizations every format shares: severity names and scores, package URLs, source
//! repository URIs and git commits.

use crate::model::Severity;

/// The severity a scanner's word names, case-insensitively; `None` for a word no scanner uses.
///
/// `critical`; `high` and `important` (Red Hat); `medium` and `moderate` (GitHub, Red Hat); `low`
/// and `negligible` (Grype); `unknown`, `none`, `info`, `informational` and `unspecified` are
/// unknown.
pub(crate) fn severity(word: &str) -> Option<Severity> {
    const WORDS: [(&str, Severity); 12] = [
        ("critical", Severity::Critical),
        ("high", Severity::High),
        ("important", Severity::High),
        ("medium", Severity::Medium),
        ("moderate", Severity::Medium),
        ("low", Severity::Low),
        ("negligible", Severity::Low),
        ("unknown", Severity::Unknown),
        ("none", Severity::Unknown),
        ("info", Severity::Unknown),
        ("informational", Severity::Unknown),
        ("unspecified", Severity::Unknown),
    ];
    let word = word.trim();
    WORDS.iter().find(|(name, _)| name.eq_ignore_ascii_case(word)).map(|(_, severity)| *severity)
}

/// The severity of a CVSS score (0 to 10) on the CVSS v3 qualitative scale: 9.0 and up critical,
/// 7.0 high, 4.0 medium, above 0 low, 0 ("none") unknown.
pub(crate) fn severity_of_score(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Unknown
    }
}

/// A named severity, unless it is unknown and a score says more.
pub(crate) fn severity_or_score(named: Option<Severity>, score: Option<f64>) -> Severity {
    match (named, score) {
        (Some(named), _) if named != Severity::Unknown => named,
        (_, Some(score)) => severity_of_score(score),
        _ => Severity::Unknown,
    }
}

/// Whether `text` has the shape of a package URL: `pkg:`, a type of letters, digits, `.`, `+`
/// and `-` starting with a letter, `/`, a name, and no whitespace (a purl percent-encodes it).
/// Qualifiers, version and subpath are not checked.
pub(crate) fn looks_like_purl(text: &str) -> bool {
    let Some(rest) = text.get(..4).filter(|scheme| scheme.eq_ignore_ascii_case("pkg:")).and(text.get(4..)) else {
        return false;
    };
    // The purl spec tolerates `pkg://type/...`.
    let rest = rest.trim_start_matches('/');
    let Some((kind, name)) = rest.split_once('/') else { return false };
    kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && kind.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
        && !name.trim_start_matches('/').is_empty()
        && !text.chars().any(char::is_whitespace)
}

/// A git commit id: 40 (SHA-1) or 64 (SHA-256) hex digits, in lowercase.
pub(crate) fn commit(text: &str) -> Option<String> {
    let ok = matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| text.to_ascii_lowercase())
}

/// What a source URI says: the repository, normalized, and the ref after `@`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceUri {
    /// `host[:port]/path` without scheme, credentials, ref, query, fragment, trailing `/` or
    /// `.git`; the host in lowercase. `None` when the URI is not one Airlock can read.
    pub(crate) repository: Option<String>,
    /// The part after the first `@` in the path (`refs/heads/main`), as given.
    pub(crate) git_ref: Option<String>,
}

/// Schemes a source repository may be fetched with.
const SCHEMES: [&str; 4] = ["https", "http", "ssh", "git"];

/// Reads a source URI in any of the forms provenance uses:
///
/// - SPDX download locations and SLSA dependencies: `git+https://github.com/org/repo@refs/heads/main`
///   (`<vcs>+<transport>://<host>/<path>[@<ref>][#<subpath>]`);
/// - plain URLs: `https://github.com/org/repo`, `https://github.com/org/repo.git`,
///   `ssh://git@github.com/org/repo.git`;
/// - scp-like git remotes: `git@github.com:org/repo.git`.
///
/// Hosts are letters, digits, `.`, `-` and a `:port`; repository paths are letters, digits and
/// `-._~/%+`. Anything else (a backslash, a space, a parenthesis) makes the URI unreadable rather
/// than guessed at.
///
/// The ref is everything after the first `@` of the path (GitHub repository paths cannot contain
/// one; refs may). A trailing `.git` is dropped from the repository path, never from the ref.
pub(crate) fn source_uri(uri: &str) -> SourceUri {
    let unread = SourceUri { repository: None, git_ref: None };
    // A backslash is a path separator to some URL parsers and part of a name to others.
    if uri.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return unread;
    }
    let without_vcs = uri.strip_prefix("git+").unwrap_or(uri);
    let (host, path) = if let Some((scheme, rest)) = without_vcs.split_once("://") {
        if !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
            return unread;
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // Credentials never belong in the normalized name.
        let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        (host, path)
    } else if let Some((user_host, path)) = without_vcs.split_once(':') {
        // scp-like: `user@host:path`, where the host has no `/`. Without the user, `a:b` is as
        // likely a drive letter or another scheme as a git remote.
        if user_host.contains('/') || !user_host.contains('@') || path.starts_with("//") {
            return unread;
        }
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, host)| host);
        (host, path)
    } else {
        return unread;
    };
    // A fragment is an SPDX subpath; a query means nothing to git.
    let path = path.split(['#', '?']).next().unwrap_or_default();
    let (repository_path, git_ref) = match path.split_once('@') {
        Some((repository_path, git_ref)) => (repository_path, (!git_ref.is_empty()).then(|| git_ref.to_owned())),
        None => (path, None),
    };
    let repository_path = repository_path.trim_end_matches('/');
    let repository_path = repository_path.strip_suffix(".git").unwrap_or(repository_path).trim_end_matches('/');
    let host_ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    let path_ok = repository_path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '/' | '%' | '+'));
    let repository = (host_ok && path_ok && !repository_path.is_empty())
        .then(|| format!("{}/{}", host.to_ascii_lowercase(), repository_path.trim_start_matches('/')));
    SourceUri { repository, git_ref }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str, expect: &str) {
        let SourceUri { repository, git_ref } = source_uri(uri);
        let shown = format!("{} @ {}", repository.as_deref().unwrap_or("-"), git_ref.as_deref().unwrap_or("-"));
        assert_eq!(shown, expect, "{uri}");
    }

    #[test]
    fn source_uris_normalize_to_host_and_path() {
        check("git+https://github.com/org/repo@refs/heads/main", "github.com/org/repo @ refs/heads/main");
        check("https://github.com/octocat/hello-world", "github.com/octocat/hello-world @ -");
        check("https://GitHub.com/Org/Repo.git/", "github.com/Org/Repo @ -");
        check("git+https://github.com/org/repo.git@refs/tags/v1.2.0", "github.com/org/repo @ refs/tags/v1.2.0");
        check("git+ssh://git@github.com/org/repo.git", "github.com/org/repo @ -");
        check("git@github.com:org/repo.git", "github.com/org/repo @ -");
        check("https://x-access-token:ghp_secret@github.com/org/repo", "github.com/org/repo @ -");
        check(
            "git+https://gitlab.example.com:8443/group/sub/repo@main#src/app",
            "gitlab.example.com:8443/group/sub/repo @ main",
        );
        check("git+https://github.com/org/repo@refs/heads/feature@2", "github.com/org/repo @ refs/heads/feature@2");
        // slsa-github-generator v0.2 wrote a `.git` after the ref; a branch may really end so.
        check("git+https://github.com/org/repo@refs/heads/main.git", "github.com/org/repo @ refs/heads/main.git");
    }

    #[test]
    fn source_uris_that_name_no_repository_are_not_read() {
        check("", "- @ -");
        check("https://github.com", "- @ -");
        check("https://github.com/", "- @ -");
        check("file:///home/me/repo", "- @ -");
        check("javascript:alert(1)", "- @ -");
        check("https://github.com/org/re po", "- @ -");
        check("https://evil.com\\@github.com/org/repo", "- @ -");
        check("org/repo", "- @ -");
    }

    #[test]
    fn severity_words_and_scores() {
        assert_eq!(severity("CRITICAL"), Some(Severity::Critical));
        assert_eq!(severity("Important"), Some(Severity::High));
        assert_eq!(severity("moderate"), Some(Severity::Medium));
        assert_eq!(severity("negligible"), Some(Severity::Low));
        assert_eq!(severity("none"), Some(Severity::Unknown));
        assert_eq!(severity("catastrophic"), None);
        let scale: Vec<Severity> = [10.0, 9.0, 8.9, 7.0, 6.9, 4.0, 3.9, 0.1, 0.0].map(severity_of_score).to_vec();
        use Severity::*;
        assert_eq!(scale, [Critical, Critical, High, High, Medium, Medium, Low, Low, Unknown]);
    }

    #[test]
    fn purls_and_commits() {
        for good in [
            "pkg:pypi/requests@2.32.3",
            "pkg:apk/alpine/busybox@1.36?arch=x86_64",
            "PKG:npm/%40scope/x",
            "pkg://deb/debian/curl",
        ] {
            assert!(looks_like_purl(good), "{good}");
        }
        for bad in [
            "requests",
            "pkg:",
            "pkg:pypi",
            "pkg:/name",
            "pkg:py pi/x",
            "pkg:1abc/x",
            "pkg:pypi/",
            "https://x/y",
            "pkg:pypi/a b",
        ] {
            assert!(!looks_like_purl(bad), "{bad}");
        }
        assert_eq!(
            commit("C27D339EE6075C1F744C5D4B200F7901AAD2C369").as_deref(),
            Some("c27d339ee6075c1f744c5d4b200f7901aad2c369")
        );
        assert_eq!(commit("c27d339"), None);
        assert_eq!(commit(&"g".repeat(40)), None);
    }

    proptest::proptest! {
        #[test]
        fn normalized_repositories_have_no_scheme_credentials_ref_or_git_suffix(uri in "\\PC{0,80}") {
            if let Some(repository) = source_uri(&uri).repository {
                proptest::prop_assert!(!repository.contains("://"));
                proptest::prop_assert!(!repository.contains('@'));
                proptest::prop_assert!(!repository.ends_with(".git") && !repository.ends_with('/'));
                proptest::prop_assert!(!repository.contains(['#', '?', ' ']));
            }
        }
    }
}
