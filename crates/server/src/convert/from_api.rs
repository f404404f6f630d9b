//! Request DTOs into the values core takes.

use airlock_api::v1 as api;

/// A role definition as core reads it: the JSON of the request, fields left out staying out,
/// so the definition stored and logged is what was sent.
pub fn role_definition(definition: &api::RoleDefinition) -> serde_json::Value {
    serde_json::to_value(definition).unwrap_or(serde_json::Value::Null)
}
