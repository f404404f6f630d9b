//! The Cedar schema (`airlock.cedarschema`), loaded once, and the entity type names and action
//! ids every request uses, built once so no request parses anything.

use std::str::FromStr;

use cedar_policy::{EntityId, EntityTypeName, EntityUid, Schema};

use crate::authz::action::{Action, ResourceKind};
use crate::authz::error::AuthzError;

/// The Cedar schema every policy, request and entity is validated against (namespace `Airlock`).
pub const SCHEMA_SOURCE: &str = include_str!("airlock.cedarschema");

/// Loads [`SCHEMA_SOURCE`].
pub(crate) fn load_schema() -> Result<Schema, AuthzError> {
    Schema::from_cedarschema_str(SCHEMA_SOURCE)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| AuthzError::Schema { message: one_line(&e.to_string()) })
}

/// The schema's entity type names and action ids, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) user: EntityTypeName,
    pub(crate) service_account: EntityTypeName,
    pub(crate) role: EntityTypeName,
    pub(crate) stage: EntityTypeName,
    pub(crate) repository: EntityTypeName,
    pub(crate) promotion: EntityTypeName,
    pub(crate) waiver: EntityTypeName,
    pub(crate) trust_root: EntityTypeName,
    pub(crate) access_grant: EntityTypeName,
    pub(crate) log: EntityTypeName,
    /// One per action, in the order of [`Action::ALL`].
    actions: Vec<EntityUid>,
}

impl Names {
    /// Parses every name the requests use.
    pub(crate) fn new() -> Result<Names, AuthzError> {
        let parse = |name: &str| {
            EntityTypeName::from_str(&format!("Airlock::{name}"))
                .map_err(|e| AuthzError::Schema { message: one_line(&e.to_string()) })
        };
        let action_type = parse("Action")?;
        Ok(Names {
            user: parse("User")?,
            service_account: parse("ServiceAccount")?,
            role: parse("Role")?,
            stage: parse(ResourceKind::Stage.type_name())?,
            repository: parse(ResourceKind::Repository.type_name())?,
            promotion: parse(ResourceKind::Promotion.type_name())?,
            waiver: parse(ResourceKind::Waiver.type_name())?,
            trust_root: parse(ResourceKind::TrustRoot.type_name())?,
            access_grant: parse(ResourceKind::AccessGrant.type_name())?,
            log: parse(ResourceKind::Log.type_name())?,
            actions: Action::ALL
                .iter()
                .map(|a| EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(a.as_str())))
                .collect(),
        })
    }

    /// The Cedar id of `action`, `Airlock::Action::"pull"`.
    pub(crate) fn action(&self, action: Action) -> Option<&EntityUid> {
        self.actions.get(action.index())
    }

    /// `Airlock::<type>::"<id>"`.
    pub(crate) fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
    }
}

/// A Cedar diagnostic on one line, so error messages stay one line.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_loads_and_declares_every_action() {
        let schema = load_schema().unwrap();
        let names = Names::new().unwrap();
        let declared: Vec<String> = schema.actions().map(ToString::to_string).collect();
        for action in Action::ALL {
            let uid = names.action(action).unwrap().to_string();
            assert!(declared.contains(&uid), "{uid} is not in the schema");
        }
        assert_eq!(declared.len(), Action::ALL.len());
    }

    /// `index.rs` reads `action in [...]` as "one of": it relies on there being no action groups.
    #[test]
    fn the_schema_declares_no_action_groups() {
        assert_eq!(load_schema().unwrap().action_groups().count(), 0);
    }

    #[test]
    fn each_action_applies_to_the_resource_its_kind_names() {
        let schema = load_schema().unwrap();
        let names = Names::new().unwrap();
        for action in Action::ALL {
            let resources: Vec<String> =
                schema.resources_for_action(names.action(action).unwrap()).unwrap().map(ToString::to_string).collect();
            assert_eq!(resources, [format!("Airlock::{}", action.resource_kind().type_name())], "{action}");
        }
    }
}
