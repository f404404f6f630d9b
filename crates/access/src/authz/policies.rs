//! The policy set: the shipped `forbid` policies (`shipped.cedar`), an operator's custom
//! policies, their ids, and strict validation of the whole set against the schema.

use std::collections::HashMap;
use std::str::FromStr;

use airlock_model::echo::echo;
use cedar_policy::{Policy, PolicyId, PolicySet, Schema, ValidationMode, ValidationWarning, Validator};

use crate::authz::error::AuthzError;
use crate::authz::schema::one_line;

/// The shipped policies, Cedar source. Each starts with `@id("airlock.…")`.
pub const SHIPPED_SOURCE: &str = include_str!("shipped.cedar");

/// The ids of the shipped policies, in the order of [`SHIPPED_SOURCE`].
pub const SHIPPED_POLICY_IDS: [&str; 8] = [
    "airlock.gated-stage-read-only",
    "airlock.no-self-approval",
    "airlock.no-approving-own-push",
    "airlock.no-self-waiver",
    "airlock.no-self-access-approval",
    "airlock.service-accounts-do-not-approve",
    "airlock.approval-needs-fresh-mfa",
    "airlock.frozen-stage",
];

/// Largest custom policy source accepted, in bytes.
pub const CUSTOM_POLICIES_MAX_BYTES: usize = 1 << 20;
/// Longest custom policy id, in bytes.
pub const CUSTOM_ID_MAX_LEN: usize = 128;

/// Who owns a policy id: error messages say whose id a custom policy collided with.
pub(crate) const OWNER_SHIPPED: &str = "a shipped policy";
pub(crate) const OWNER_ROLE: &str = "a role permission";
pub(crate) const OWNER_CUSTOM: &str = "another custom policy";

/// Id prefixes custom policies may not use, and whose they are.
const RESERVED_PREFIXES: [(&str, &str); 2] = [("airlock.", "shipped policies"), ("role.", "role permissions")];

/// Parses a policy source and returns its static policies in source order, each renamed to its
/// `@id` annotation. `Err(position)` is the 1-based position of a policy without `@id`.
fn parse_with_ids(source: &str) -> Result<(Vec<Policy>, Vec<String>), ParseFailure> {
    let set = PolicySet::from_str(source).map_err(|e| ParseFailure::Parse(one_line(&e.to_string())))?;
    // `PolicySet::from_str` names policies `policy0`, `policy1`, ... in source order.
    let position = |p: &Policy| p.id().to_string().strip_prefix("policy").and_then(|n| n.parse::<usize>().ok());
    let mut policies: Vec<(usize, &Policy)> = set.policies().map(|p| (position(p).unwrap_or(usize::MAX), p)).collect();
    policies.sort_by_key(|(n, _)| *n);
    if let Some(template) = set.templates().next() {
        let id = template.annotation("id").unwrap_or("").to_owned();
        return Err(ParseFailure::Template(id));
    }
    let mut renamed = Vec::with_capacity(policies.len());
    let mut ids = Vec::with_capacity(policies.len());
    for (n, policy) in policies {
        let Some(id) = policy.annotation("id") else {
            return Err(ParseFailure::WithoutId(n.saturating_add(1)));
        };
        renamed.push(policy.new_id(PolicyId::new(id)));
        ids.push(id.to_owned());
    }
    Ok((renamed, ids))
}

/// Why [`parse_with_ids`] failed.
enum ParseFailure {
    Parse(String),
    Template(String),
    WithoutId(usize),
}

/// The shipped policies, parsed and renamed to their `@id`s.
pub(crate) fn shipped() -> Result<Vec<Policy>, AuthzError> {
    let (policies, ids) = parse_with_ids(SHIPPED_SOURCE).map_err(|failure| AuthzError::Shipped {
        message: match failure {
            ParseFailure::Parse(message) => message,
            ParseFailure::Template(id) => format!("`{id}` is a template"),
            ParseFailure::WithoutId(position) => format!("policy {position} has no `@id`"),
        },
    })?;
    if ids != SHIPPED_POLICY_IDS {
        return Err(AuthzError::Shipped { message: format!("the ids are {ids:?}, not {SHIPPED_POLICY_IDS:?}") });
    }
    Ok(policies)
}

/// Whether `id` is a valid custom policy id: `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`.
fn is_custom_id(id: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    id.len() <= CUSTOM_ID_MAX_LEN && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()) && id.bytes().all(ok)
}

/// Parses custom policies. `taken` maps the ids already in use to their owners; each custom id
/// is added to it.
pub(crate) fn custom(source: &str, taken: &mut HashMap<String, &'static str>) -> Result<Vec<Policy>, AuthzError> {
    if source.len() > CUSTOM_POLICIES_MAX_BYTES {
        return Err(AuthzError::CustomTooLarge { size: source.len(), max: CUSTOM_POLICIES_MAX_BYTES });
    }
    let (policies, ids) = parse_with_ids(source).map_err(|failure| match failure {
        ParseFailure::Parse(message) => AuthzError::CustomParse { message },
        ParseFailure::Template(id) => AuthzError::CustomTemplate { id: echo(&id) },
        ParseFailure::WithoutId(position) => AuthzError::CustomWithoutId { position },
    })?;
    for id in ids {
        if let Some(owner) = taken.get(&id) {
            return Err(AuthzError::DuplicateId { id: echo(&id), owner });
        }
        if let Some((prefix, owner)) = RESERVED_PREFIXES.into_iter().find(|(prefix, _)| id.starts_with(prefix)) {
            return Err(AuthzError::ReservedId { id: echo(&id), prefix, owner });
        }
        if !is_custom_id(&id) {
            return Err(AuthzError::CustomId { id: echo(&id) });
        }
        taken.insert(id, OWNER_CUSTOM);
    }
    Ok(policies)
}

/// Validates the whole set against the schema in strict mode. The first error found (in policy
/// id order) is reported, as is a custom policy the validator proves can never apply.
pub(crate) fn validate(
    schema: &Schema,
    set: &PolicySet,
    owners: &HashMap<String, &'static str>,
) -> Result<(), AuthzError> {
    let result = Validator::new(schema.clone()).validate(set, ValidationMode::Strict);
    let owner = |id: &PolicyId| owners.get(AsRef::<str>::as_ref(id)).copied().unwrap_or(OWNER_CUSTOM);
    // Cedar starts most messages with "for policy `<id>`, "; the error names the id itself.
    let message = |id: &PolicyId, text: String| {
        let text = one_line(&text);
        text.strip_prefix(&format!("for policy `{id}`, ")).map(str::to_owned).unwrap_or(text)
    };
    let mut errors: Vec<(String, &'static str, String)> = result
        .validation_errors()
        .map(|e| (e.policy_id().to_string(), owner(e.policy_id()), message(e.policy_id(), e.to_string())))
        .collect();
    errors.sort();
    if let Some((id, owner, message)) = errors.into_iter().next() {
        return Err(if owner == OWNER_CUSTOM {
            AuthzError::CustomInvalid { id, message }
        } else {
            AuthzError::BuiltInInvalid { id, owner, message }
        });
    }
    let mut impossible: Vec<(String, String)> = result
        .validation_warnings()
        .filter(|w| matches!(w, ValidationWarning::ImpossiblePolicy(_)) && owner(w.policy_id()) == OWNER_CUSTOM)
        .map(|w| (w.policy_id().to_string(), message(w.policy_id(), w.to_string())))
        .collect();
    impossible.sort();
    if let Some((id, message)) = impossible.into_iter().next() {
        return Err(AuthzError::CustomImpossible { id, message });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policies_parse_with_their_ids() {
        let ids: Vec<String> = shipped().unwrap().iter().map(|p| p.id().to_string()).collect();
        assert_eq!(ids, SHIPPED_POLICY_IDS);
    }

    #[test]
    fn custom_ids() {
        for good in ["a", "no-prod-on-fridays", "Team_42.rule-1", &"a".repeat(128)] {
            assert!(is_custom_id(good), "{good}");
        }
        for bad in ["", ".a", "-a", "a b", "a\"", "a/b", &"a".repeat(129)] {
            assert!(!is_custom_id(bad), "{bad}");
        }
    }
}
