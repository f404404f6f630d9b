//! The actions a principal asks to perform, with their Cedar names and the resource each acts on.

use std::fmt;
use std::str::FromStr;

use airlock_model::echo::echo;

/// What a principal asks to do. Each action acts on exactly one kind of resource
/// ([`Action::resource_kind`]); the Cedar schema declares the same pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Action {
    /// `pull`: read manifests and blobs of a repository.
    Pull,
    /// `push`: write manifests and blobs to a repository (never to a gated stage).
    Push,
    /// `delete`: delete a manifest or tag of a repository (never in a gated stage).
    Delete,
    /// `promote.request`: ask for an artifact to be promoted to a stage.
    PromoteRequest,
    /// `promote.approve`: approve someone else's promotion request.
    PromoteApprove,
    /// `promote.reject`: reject a promotion request.
    PromoteReject,
    /// `rollback`: point a repository of a stage back at a previously promoted artifact.
    Rollback,
    /// `freeze`: freeze or unfreeze a stage, so that nothing is promoted into it.
    Freeze,
    /// `waiver.request`: ask for a policy waiver for a repository.
    WaiverRequest,
    /// `waiver.approve`: approve someone else's waiver request.
    WaiverApprove,
    /// `trust.propose`: propose a new version of the trust root.
    TrustPropose,
    /// `trust.sign`: sign a proposed trust root version.
    TrustSign,
    /// `access.grant`: grant a role directly.
    AccessGrant,
    /// `access.request`: ask for a just-in-time role grant.
    AccessRequest,
    /// `access.approve`: approve someone else's just-in-time access request.
    AccessApprove,
    /// `audit.read`: read the audit log.
    AuditRead,
}

/// The kind of resource an action acts on, one per Cedar resource entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `Airlock::Stage`.
    Stage,
    /// `Airlock::Repository`.
    Repository,
    /// `Airlock::Promotion`.
    Promotion,
    /// `Airlock::Waiver`.
    Waiver,
    /// `Airlock::TrustRoot`.
    TrustRoot,
    /// `Airlock::AccessGrant`.
    AccessGrant,
    /// `Airlock::Log`.
    Log,
}

impl ResourceKind {
    /// The Cedar entity type's name without its namespace, `Repository`.
    pub fn type_name(self) -> &'static str {
        match self {
            ResourceKind::Stage => "Stage",
            ResourceKind::Repository => "Repository",
            ResourceKind::Promotion => "Promotion",
            ResourceKind::Waiver => "Waiver",
            ResourceKind::TrustRoot => "TrustRoot",
            ResourceKind::AccessGrant => "AccessGrant",
            ResourceKind::Log => "Log",
        }
    }

    /// How error messages name this kind of resource, `a repository`.
    pub fn describe(self) -> &'static str {
        match self {
            ResourceKind::Stage => "a stage",
            ResourceKind::Repository => "a repository",
            ResourceKind::Promotion => "a promotion",
            ResourceKind::Waiver => "a waiver",
            ResourceKind::TrustRoot => "the trust root",
            ResourceKind::AccessGrant => "an access grant",
            ResourceKind::Log => "the audit log",
        }
    }

    /// Whether resources of this kind belong to a stage, so a permission over them lists
    /// `stages`.
    pub fn has_stage(self) -> bool {
        matches!(self, ResourceKind::Stage | ResourceKind::Repository | ResourceKind::Promotion)
    }

    /// Whether resources of this kind name a repository path, so a permission over them lists
    /// `repositories`.
    pub fn has_repository(self) -> bool {
        matches!(self, ResourceKind::Repository | ResourceKind::Promotion | ResourceKind::Waiver)
    }
}

impl Action {
    /// Every action, in the order of the schema.
    pub const ALL: [Action; 16] = [
        Action::Pull,
        Action::Push,
        Action::Delete,
        Action::PromoteRequest,
        Action::PromoteApprove,
        Action::PromoteReject,
        Action::Rollback,
        Action::Freeze,
        Action::WaiverRequest,
        Action::WaiverApprove,
        Action::TrustPropose,
        Action::TrustSign,
        Action::AccessGrant,
        Action::AccessRequest,
        Action::AccessApprove,
        Action::AuditRead,
    ];

    /// The action's name, as configuration and the Cedar schema write it: `promote.approve`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::PromoteRequest => "promote.request",
            Action::PromoteApprove => "promote.approve",
            Action::PromoteReject => "promote.reject",
            Action::Rollback => "rollback",
            Action::Freeze => "freeze",
            Action::WaiverRequest => "waiver.request",
            Action::WaiverApprove => "waiver.approve",
            Action::TrustPropose => "trust.propose",
            Action::TrustSign => "trust.sign",
            Action::AccessGrant => "access.grant",
            Action::AccessRequest => "access.request",
            Action::AccessApprove => "access.approve",
            Action::AuditRead => "audit.read",
        }
    }

    /// The kind of resource this action acts on.
    pub fn resource_kind(self) -> ResourceKind {
        match self {
            Action::Pull | Action::Push | Action::Delete | Action::Rollback => ResourceKind::Repository,
            Action::PromoteRequest | Action::PromoteApprove | Action::PromoteReject => ResourceKind::Promotion,
            Action::Freeze => ResourceKind::Stage,
            Action::WaiverRequest | Action::WaiverApprove => ResourceKind::Waiver,
            Action::TrustPropose | Action::TrustSign => ResourceKind::TrustRoot,
            Action::AccessGrant | Action::AccessRequest | Action::AccessApprove => ResourceKind::AccessGrant,
            Action::AuditRead => ResourceKind::Log,
        }
    }

    /// The action's position in [`Action::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action name that is not one of [`Action::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{name}`; the actions are {}", valid_names())]
pub struct UnknownAction {
    /// The name as given, quoted back with [`echo`].
    pub name: String,
}

/// The valid action names, in backticks, for error messages.
fn valid_names() -> String {
    Action::ALL.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
}

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Action, UnknownAction> {
        Action::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| UnknownAction { name: echo(s) })
    }
}

impl TryFrom<String> for Action {
    type Error = UnknownAction;

    fn try_from(s: String) -> Result<Action, UnknownAction> {
        s.parse()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_schema_order() {
        for (i, action) in Action::ALL.into_iter().enumerate() {
            assert_eq!(action.index(), i);
            assert_eq!(action.as_str().parse::<Action>().unwrap(), action);
        }
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "promote".parse::<Action>().unwrap_err().to_string();
        expect_test::expect![[r#"unknown action `promote`; the actions are `pull`, `push`, `delete`, `promote.request`, `promote.approve`, `promote.reject`, `rollback`, `freeze`, `waiver.request`, `waiver.approve`, `trust.propose`, `trust.sign`, `access.grant`, `access.request`, `access.approve`, `audit.read`"#]]
            .assert_eq(&err);
    }
}
