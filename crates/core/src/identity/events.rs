//! The audit events of identity: principals created and changed, grants asked for and decided,
//! roles defined, refusals.

use airlock_model::{PrincipalId, Timestamp};
use serde_json::json;

use crate::audit::{Actor, Event, EventKind, Outcome, Subject};
use crate::ports::GrantRecord;

/// A change to a grant (`access.request`, `access.approve`, `access.revoke`).
pub(crate) fn grant(kind: EventKind, actor: &Actor, time: Timestamp, grant: &GrantRecord) -> Event {
    Event::allowed(kind, actor, time, Subject::default())
        .with_detail("principal", json!(grant.principal.as_str()))
        .with_detail("grant", json!(grant.id))
        .with_detail("role", json!(grant.role))
}

/// A change to principal `id`.
pub(crate) fn principal(kind: EventKind, actor: &Actor, time: Timestamp, id: &PrincipalId) -> Event {
    Event::allowed(kind, actor, time, Subject::default()).with_detail("principal", json!(id.as_str()))
}

/// `actor` was refused `action` on `resource` for `reasons`.
pub fn denied(
    actor: &Actor,
    time: Timestamp,
    principal: &str,
    action: &str,
    resource: Option<&str>,
    reasons: Vec<String>,
) -> Event {
    let event = Event {
        kind: EventKind::AccessDenied,
        time,
        actor: actor.clone(),
        subject: Subject::default(),
        outcome: Outcome::Denied { reasons },
        details: Default::default(),
    }
    .with_detail("principal", json!(principal))
    .with_detail("action", json!(action));
    match resource {
        Some(resource) => event.with_detail("resource", json!(resource)),
        None => event,
    }
}
