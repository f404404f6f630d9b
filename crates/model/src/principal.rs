//! Who acts: the names of users and service accounts.

use std::fmt;
use std::str::FromStr;

use crate::echo::echo;

/// Longest principal name, in bytes.
pub const PRINCIPAL_NAME_MAX_LEN: usize = 64;
/// Names no principal may take: the log's actor for the server itself (`airlock`, and `system`
/// for anyone who expects that word) and for unauthenticated clients (`anonymous`), and the
/// user name `/token` takes CI tokens under (`oidc`).
pub const RESERVED_PRINCIPAL_NAMES: [&str; 4] = ["airlock", "anonymous", "system", "oidc"];
/// Prefix no principal name may start with: it is kept for the server's own actors.
pub const RESERVED_PRINCIPAL_PREFIX: &str = "airlock-";

/// The name of a user or service account: `alice`, `ci-payments`. One namespace holds both, so
/// a name never means two principals.
///
/// The grammar is `[a-z][a-z0-9._-]*`, at most 64 bytes: lowercase only, so `Alice` and `alice`
/// can never be two principals or one principal seen two ways, and no `:` or `/`, so a name
/// cannot be confused with a scope, a repository or a Cedar entity reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrincipalId(String);

impl PrincipalId {
    /// Parses a principal name.
    pub fn parse(input: &str) -> Result<PrincipalId, PrincipalIdError> {
        let mut bytes = input.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        if first_ok && rest_ok && input.len() <= PRINCIPAL_NAME_MAX_LEN {
            Ok(PrincipalId(input.to_owned()))
        } else {
            Err(PrincipalIdError { name: echo(input) })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is reserved, so no user or service account may be created with it: one
    /// of [`RESERVED_PRINCIPAL_NAMES`] or starting with [`RESERVED_PRINCIPAL_PREFIX`], compared
    /// without regard to case. A principal so named would pass, in the log, for the server
    /// itself, for an unauthenticated client, or for CI tokens at `/token`.
    pub fn is_reserved(&self) -> bool {
        let name = self.0.to_ascii_lowercase();
        RESERVED_PRINCIPAL_NAMES.contains(&name.as_str()) || name.starts_with(RESERVED_PRINCIPAL_PREFIX)
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PrincipalId {
    type Err = PrincipalIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PrincipalId::parse(s)
    }
}

/// A name that is not a valid principal name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "principal name `{name}` is invalid: use 1 to 64 lowercase letters, digits, `.`, `_` and `-`, starting with a letter, for example `alice` or `ci-payments`"
)]
pub struct PrincipalIdError {
    name: String,
}

/// What kind of principal a name belongs to: the one kind the whole of Airlock uses (tokens
/// carry it as `user` or `service_account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person: password, second factor.
    User,
    /// A machine identity: API keys, or CI workload identity mapped onto it.
    ServiceAccount,
}

impl PrincipalKind {
    /// `user` or `service_account`.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::ServiceAccount => "service_account",
        }
    }

    /// The kind named by [`PrincipalKind::as_str`].
    pub fn parse(s: &str) -> Option<PrincipalKind> {
        match s {
            "user" => Some(PrincipalKind::User),
            "service_account" => Some(PrincipalKind::ServiceAccount),
            _ => None,
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        for ok in ["alice", "ci-payments", "a", "bob.smith_2", &"a".repeat(64)] {
            assert_eq!(PrincipalId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "Alice", "1alice", "-a", "alice:admin", "dev/app", "al ice", "é", &"a".repeat(65)] {
            let error = PrincipalId::parse(bad).unwrap_err().to_string();
            assert!(error.starts_with("principal name `"), "{bad}: {error}");
        }
    }

    #[test]
    fn names_the_log_gives_the_server_or_strangers_are_reserved() {
        for reserved in ["airlock", "anonymous", "system", "oidc", "airlock-", "airlock-scrubber", "airlock-ci.1"] {
            assert!(PrincipalId::parse(reserved).unwrap().is_reserved(), "{reserved}");
        }
        for free in ["admin", "airlocked", "airlock_ci", "my-airlock", "systems", "anonymous2", "oidc-bot", "alice"] {
            assert!(!PrincipalId::parse(free).unwrap().is_reserved(), "{free}");
        }
        // The grammar admits no capitals; were one ever built, it would still be reserved.
        assert!(PrincipalId("Airlock-Bot".to_owned()).is_reserved());
        assert!(PrincipalId("ANONYMOUS".to_owned()).is_reserved());
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [PrincipalKind::User, PrincipalKind::ServiceAccount] {
            assert_eq!(PrincipalKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(PrincipalKind::parse("admin"), None);
    }
}
