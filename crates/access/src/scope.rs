//! The scopes of Docker token authentication: what a client asks `GET /token` for, and what a
//! `WWW-Authenticate` challenge names.
//!
//! ```text
//! scope    = type ":" name ":" action *( "," action )
//! type     = "repository" / "registry"
//! name     = a repository name `<stage>/<path>` (for `repository`), `catalog` (for `registry`)
//! action   = "pull" / "push" / "delete" / "*"
//! ```
//!
//! Several scopes arrive as repeated `scope` parameters or separated by spaces in one. The name
//! is parsed with [`RepoName`], so `dev/app/../x`, upper case, empty segments and names longer
//! than the OCI limit are refused here, before any authorization question is asked. Unknown
//! actions are refused too: a client that asks for something Airlock does not know is told so
//! rather than silently given less. `*` stands for every action.

use std::collections::BTreeSet;
use std::fmt;

use airlock_model::RepoName;
use airlock_model::echo::echo;

/// Most scopes one token request may ask for.
pub const MAX_SCOPES: usize = 32;
/// Longest single scope, in bytes.
pub const MAX_SCOPE_LEN: usize = 512;

/// What may be done to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RepoAction {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs, put manifests and tags.
    Push,
    /// Delete manifests and tags.
    Delete,
}

impl RepoAction {
    /// Every action, in the order `*` expands to.
    pub const ALL: [RepoAction; 3] = [RepoAction::Pull, RepoAction::Push, RepoAction::Delete];

    /// The action's name in a scope: `pull`, `push` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoAction::Pull => "pull",
            RepoAction::Push => "push",
            RepoAction::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Option<RepoAction> {
        RepoAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for RepoAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scope: actions on one repository, or the catalog.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `repository:<name>:<actions>`.
    Repository {
        /// The repository.
        name: RepoName,
        /// The actions, never empty.
        actions: BTreeSet<RepoAction>,
    },
    /// `registry:catalog:*`: listing repositories (filtered to those the caller may pull).
    Catalog,
}

impl Scope {
    /// A repository scope.
    pub fn repository(name: RepoName, actions: impl IntoIterator<Item = RepoAction>) -> Scope {
        Scope::Repository { name, actions: actions.into_iter().collect() }
    }

    /// Parses one scope.
    pub fn parse(input: &str) -> Result<Scope, ScopeError> {
        if input.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong { len: input.len(), max: MAX_SCOPE_LEN });
        }
        let malformed = || ScopeError::Malformed { scope: echo(input) };
        let (kind, rest) = input.split_once(':').ok_or_else(malformed)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(malformed)?;
        match kind {
            "repository" => {
                let repo =
                    RepoName::parse(name).map_err(|e| ScopeError::Name { scope: echo(input), why: e.to_string() })?;
                let mut parsed = BTreeSet::new();
                for action in actions.split(',') {
                    if action == "*" {
                        parsed.extend(RepoAction::ALL);
                    } else {
                        let action = RepoAction::parse(action)
                            .ok_or_else(|| ScopeError::UnknownAction { scope: echo(input), action: echo(action) })?;
                        parsed.insert(action);
                    }
                }
                Ok(Scope::Repository { name: repo, actions: parsed })
            }
            "registry" if name == "catalog" && actions == "*" => Ok(Scope::Catalog),
            "registry" => Err(ScopeError::UnknownResource { scope: echo(input) }),
            _ => Err(ScopeError::UnknownType { scope: echo(input), kind: echo(kind) }),
        }
    }

    /// Parses the `scope` parameters of a token request: each may hold several scopes separated
    /// by spaces. Scopes on the same repository are merged.
    pub fn parse_all<'a>(params: impl IntoIterator<Item = &'a str>) -> Result<Vec<Scope>, ScopeError> {
        let mut scopes: Vec<Scope> = Vec::new();
        let mut count = 0usize;
        for param in params {
            for item in param.split(' ').filter(|s| !s.is_empty()) {
                count = count.saturating_add(1);
                if count > MAX_SCOPES {
                    return Err(ScopeError::TooMany { max: MAX_SCOPES });
                }
                let scope = Scope::parse(item)?;
                merge(&mut scopes, scope);
            }
        }
        Ok(scopes)
    }
}

fn merge(scopes: &mut Vec<Scope>, scope: Scope) {
    if let Scope::Repository { name, actions } = &scope {
        for existing in scopes.iter_mut() {
            if let Scope::Repository { name: n, actions: a } = existing
                && n == name
            {
                a.extend(actions.iter().copied());
                return;
            }
        }
    }
    if !scopes.contains(&scope) {
        scopes.push(scope);
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Repository { name, actions } => {
                write!(f, "repository:{name}:")?;
                for (i, action) in actions.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(action.as_str())?;
                }
                Ok(())
            }
            Scope::Catalog => f.write_str("registry:catalog:*"),
        }
    }
}

/// Why a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Over [`MAX_SCOPE_LEN`].
    #[error("scope is {len} bytes long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    /// Over [`MAX_SCOPES`].
    #[error("token request asks for more than {max} scopes; ask for fewer at a time")]
    TooMany { max: usize },
    /// Not `type:name:actions`.
    #[error("scope `{scope}` is malformed; write it as `repository:<stage>/<path>:pull,push`")]
    Malformed { scope: String },
    /// A resource type other than `repository` and `registry`.
    #[error("scope `{scope}` has resource type `{kind}`; Airlock grants `repository` and `registry:catalog:*`")]
    UnknownType { scope: String, kind: String },
    /// A `registry` scope other than `registry:catalog:*`.
    #[error("scope `{scope}` names an unknown registry resource; the only one is `registry:catalog:*`")]
    UnknownResource { scope: String },
    /// The repository name is not valid.
    #[error("scope `{scope}` names an invalid repository: {why}")]
    Name { scope: String, why: String },
    /// An action other than `pull`, `push`, `delete` and `*`.
    #[error("scope `{scope}` asks for action `{action}`; the actions are `pull`, `push`, `delete` and `*`")]
    UnknownAction { scope: String, action: String },
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn repo(name: &str, actions: &[RepoAction]) -> Scope {
        Scope::repository(RepoName::parse(name).unwrap(), actions.iter().copied())
    }

    #[test]
    fn parses_and_prints_repository_scopes() {
        let scope = Scope::parse("repository:dev/payments/api:push,pull").unwrap();
        assert_eq!(scope, repo("dev/payments/api", &[RepoAction::Pull, RepoAction::Push]));
        assert_eq!(scope.to_string(), "repository:dev/payments/api:pull,push");
        assert_eq!(
            Scope::parse("repository:dev/app:*").unwrap(),
            repo("dev/app", &[RepoAction::Pull, RepoAction::Push, RepoAction::Delete])
        );
        assert_eq!(Scope::parse("registry:catalog:*").unwrap(), Scope::Catalog);
    }

    #[test]
    fn several_scopes_merge_per_repository() {
        let scopes =
            Scope::parse_all(["repository:dev/app:pull repository:dev/lib:pull", "repository:dev/app:push"]).unwrap();
        assert_eq!(
            scopes,
            vec![repo("dev/app", &[RepoAction::Pull, RepoAction::Push]), repo("dev/lib", &[RepoAction::Pull])]
        );
        assert_eq!(Scope::parse_all([""]).unwrap(), vec![]);
    }

    #[test]
    fn escalation_attempts_are_refused() {
        for (input, expected) in [
            ("repository:dev/app/../x:pull", "invalid repository"),
            ("repository:dev/./app:pull", "invalid repository"),
            ("repository:Dev/app:pull", "invalid"),
            ("repository:dev//app:pull", "invalid repository"),
            ("repository:/dev/app:pull", "invalid repository"),
            ("repository:dev:pull", "no path after its stage"),
            ("repository:dev/app:pull,admin", "asks for action `admin`"),
            ("repository:dev/app:", "asks for action ``"),
            ("repository:dev/app:pull,", "asks for action ``"),
            ("repository:dev/app", "malformed"),
            ("repository", "malformed"),
            ("registry:catalog:pull", "unknown registry resource"),
            ("registry:users:*", "unknown registry resource"),
            ("repository(plugin):dev/app:pull", "resource type"),
            ("repository:host.example:5000/dev/app:pull", "invalid repository"),
        ] {
            let error = Scope::parse(input).unwrap_err().to_string();
            assert!(error.contains(expected), "{input}: {error}");
        }
    }

    #[test]
    fn limits_hold() {
        let long = format!("repository:dev/{}:pull", "a".repeat(MAX_SCOPE_LEN));
        assert!(matches!(Scope::parse(&long), Err(ScopeError::TooLong { .. })));
        let many = vec!["repository:dev/app:pull"; MAX_SCOPES + 1].join(" ");
        assert_eq!(Scope::parse_all([many.as_str()]), Err(ScopeError::TooMany { max: MAX_SCOPES }));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(input in "\\PC{0,80}") {
            if let Ok(scope) = Scope::parse(&input) {
                proptest::prop_assert_eq!(Scope::parse(&scope.to_string()).unwrap(), scope);
            }
        }
    }
}
