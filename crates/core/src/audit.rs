//! Audit events: what the transparency log records, one canonical JSON document per leaf.
//!
//! The schema is documented in `docs/audit-events.md`; every event type Airlock emits is a
//! variant of [`EventKind`], so adding one forces every `match` that must handle it to change.

use airlock_model::jcs::{self, CanonicalError};
use airlock_model::{Digest, PrincipalKind, RepoName, Tag, Timestamp};
use serde_json::{Map, Value, json};

/// The actor of requests made before access control identifies principals.
pub const ANONYMOUS: &str = "anonymous";
/// The actor of events Airlock causes itself (start-up, background work).
pub const SYSTEM: &str = "airlock";

/// What kind of actor caused an event: the `actor_kind` of the logged document. With it, an
/// entry by the server or an unauthenticated client never reads like one by a principal, even
/// one named like them (such names are refused, too: [`airlock_model::PrincipalId::is_reserved`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// Airlock itself (`actor` is `airlock`).
    Server,
    /// A client that did not authenticate (`actor` is `anonymous`).
    Anonymous,
    /// A person.
    User,
    /// A machine identity.
    ServiceAccount,
}

impl ActorKind {
    /// `server`, `anonymous`, `user` or `service_account`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Server => "server",
            ActorKind::Anonymous => "anonymous",
            ActorKind::User => "user",
            ActorKind::ServiceAccount => "service_account",
        }
    }
}

impl From<PrincipalKind> for ActorKind {
    fn from(kind: PrincipalKind) -> ActorKind {
        match kind {
            PrincipalKind::User => ActorKind::User,
            PrincipalKind::ServiceAccount => ActorKind::ServiceAccount,
        }
    }
}

/// Who caused an event, and under which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    principal: String,
    kind: ActorKind,
    request_id: Option<String>,
}

impl Actor {
    /// An unauthenticated client request.
    pub fn anonymous(request_id: impl Into<String>) -> Actor {
        Actor { principal: ANONYMOUS.to_owned(), kind: ActorKind::Anonymous, request_id: Some(request_id.into()) }
    }

    /// An authenticated principal's request.
    pub fn authenticated(
        principal: &airlock_model::PrincipalId,
        kind: PrincipalKind,
        request_id: impl Into<String>,
    ) -> Actor {
        Actor { principal: principal.to_string(), kind: kind.into(), request_id: Some(request_id.into()) }
    }

    /// Airlock itself, outside any request.
    pub fn system() -> Actor {
        Actor { principal: SYSTEM.to_owned(), kind: ActorKind::Server, request_id: None }
    }

    /// The same actor outside any one request: an entry summing up several requests.
    pub fn without_request(&self) -> Actor {
        Actor { request_id: None, ..self.clone() }
    }

    pub fn principal(&self) -> &str {
        &self.principal
    }

    pub fn kind(&self) -> ActorKind {
        self.kind
    }

    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

/// Every event type. The string form is the `type` field of the logged document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    ManifestPush,
    ManifestDelete,
    TagCreate,
    TagMove,
    TagDelete,
    BlobDelete,
    WriteDenied,
    ServerStart,
    TrustRootBootstrap,
    TrustRootUpdate,
    TrustRootRefused,
    AttestationIngest,
    PolicyEvaluate,
    PolicyBundleLoad,
    PrincipalCreate,
    PrincipalChange,
    LoginFailed,
    AccessDenied,
    AccessRequest,
    AccessApprove,
    AccessRevoke,
    RoleDefine,
    PromotionRequest,
    PromotionDeny,
    PromotionApprove,
    PromotionReject,
    PromotionCommit,
    PromotionBundleAttach,
    StageFreeze,
    StageUnfreezeRequest,
    StageUnfreeze,
    WaiverRequest,
    WaiverApprove,
    WaiverRevoke,
    PromotionRollback,
    PromotionBreakGlass,
    ReviewClose,
    IntegrityMismatch,
    RefusalAggregate,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ManifestPush => "registry.manifest.push",
            EventKind::ManifestDelete => "registry.manifest.delete",
            EventKind::TagCreate => "registry.tag.create",
            EventKind::TagMove => "registry.tag.move",
            EventKind::TagDelete => "registry.tag.delete",
            EventKind::BlobDelete => "registry.blob.delete",
            EventKind::WriteDenied => "registry.write.denied",
            EventKind::ServerStart => "server.start",
            EventKind::TrustRootBootstrap => "trust.root.bootstrap",
            EventKind::TrustRootUpdate => "trust.root.update",
            EventKind::TrustRootRefused => "trust.root.refused",
            EventKind::AttestationIngest => "trust.attestation.ingest",
            EventKind::PolicyEvaluate => "policy.evaluate",
            EventKind::PolicyBundleLoad => "policy.bundle.load",
            EventKind::PrincipalCreate => "access.principal.create",
            EventKind::PrincipalChange => "access.principal.change",
            EventKind::LoginFailed => "access.login.failed",
            EventKind::AccessDenied => "access.denied",
            EventKind::AccessRequest => "access.grant.request",
            EventKind::AccessApprove => "access.grant.approve",
            EventKind::AccessRevoke => "access.grant.revoke",
            EventKind::RoleDefine => "access.role.define",
            EventKind::PromotionRequest => "promotion.request",
            EventKind::PromotionDeny => "promotion.deny",
            EventKind::PromotionApprove => "promotion.approve",
            EventKind::PromotionReject => "promotion.reject",
            EventKind::PromotionCommit => "promotion.commit",
            EventKind::PromotionBundleAttach => "promotion.bundle.attach",
            EventKind::StageFreeze => "stage.freeze",
            EventKind::StageUnfreezeRequest => "stage.unfreeze.request",
            EventKind::StageUnfreeze => "stage.unfreeze",
            EventKind::WaiverRequest => "waiver.request",
            EventKind::WaiverApprove => "waiver.approve",
            EventKind::WaiverRevoke => "waiver.revoke",
            EventKind::PromotionRollback => "promotion.rollback",
            EventKind::PromotionBreakGlass => "promotion.break_glass",
            EventKind::ReviewClose => "promotion.review.close",
            EventKind::IntegrityMismatch => "integrity.mismatch",
            EventKind::RefusalAggregate => "refusal.aggregate",
        }
    }

    /// Every kind, for documentation and exhaustive tests.
    pub const ALL: [EventKind; 39] = [
        EventKind::ManifestPush,
        EventKind::ManifestDelete,
        EventKind::TagCreate,
        EventKind::TagMove,
        EventKind::TagDelete,
        EventKind::BlobDelete,
        EventKind::WriteDenied,
        EventKind::ServerStart,
        EventKind::TrustRootBootstrap,
        EventKind::TrustRootUpdate,
        EventKind::TrustRootRefused,
        EventKind::AttestationIngest,
        EventKind::PolicyEvaluate,
        EventKind::PolicyBundleLoad,
        EventKind::PrincipalCreate,
        EventKind::PrincipalChange,
        EventKind::LoginFailed,
        EventKind::AccessDenied,
        EventKind::AccessRequest,
        EventKind::AccessApprove,
        EventKind::AccessRevoke,
        EventKind::RoleDefine,
        EventKind::PromotionRequest,
        EventKind::PromotionDeny,
        EventKind::PromotionApprove,
        EventKind::PromotionReject,
        EventKind::PromotionCommit,
        EventKind::PromotionBundleAttach,
        EventKind::StageFreeze,
        EventKind::StageUnfreezeRequest,
        EventKind::StageUnfreeze,
        EventKind::WaiverRequest,
        EventKind::WaiverApprove,
        EventKind::WaiverRevoke,
        EventKind::PromotionRollback,
        EventKind::PromotionBreakGlass,
        EventKind::ReviewClose,
        EventKind::IntegrityMismatch,
        EventKind::RefusalAggregate,
    ];
}

/// What an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub repository: Option<RepoName>,
    pub digest: Option<Digest>,
    pub tag: Option<Tag>,
}

/// Whether the action happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied { reasons: Vec<String> },
}

/// One logged event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub time: Timestamp,
    pub actor: Actor,
    pub subject: Subject,
    pub outcome: Outcome,
    pub details: Map<String, Value>,
}

impl Event {
    /// An allowed event with no details.
    pub fn allowed(kind: EventKind, actor: &Actor, time: Timestamp, subject: Subject) -> Event {
        Event { kind, time, actor: actor.clone(), subject, outcome: Outcome::Allowed, details: Map::new() }
    }

    /// Adds one `details` member.
    pub fn with_detail(mut self, key: &str, value: Value) -> Event {
        self.details.insert(key.to_owned(), value);
        self
    }

    /// The event as a JSON value, in the documented schema.
    pub fn to_json(&self) -> Value {
        let mut subject = Map::new();
        if let Some(r) = &self.subject.repository {
            subject.insert("repository".to_owned(), json!(r.as_str()));
        }
        if let Some(d) = &self.subject.digest {
            subject.insert("digest".to_owned(), json!(d.as_str()));
        }
        if let Some(t) = &self.subject.tag {
            subject.insert("tag".to_owned(), json!(t.as_str()));
        }
        let outcome = match &self.outcome {
            Outcome::Allowed => json!({"decision": "allowed", "reasons": []}),
            Outcome::Denied { reasons } => json!({"decision": "denied", "reasons": reasons}),
        };
        json!({
            "type": self.kind.as_str(),
            "time": self.time.to_rfc3339(),
            "actor": self.actor.principal(),
            "actor_kind": self.actor.kind().as_str(),
            "request_id": self.actor.request_id(),
            "subject": subject,
            "outcome": outcome,
            "details": self.details,
        })
    }

    /// The leaf bytes: the event in RFC 8785 canonical JSON.
    pub fn to_leaf(&self) -> Result<Vec<u8>, CanonicalError> {
        jcs::canonicalize(&self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn leaf_bytes_are_canonical_json() {
        let subject = Subject {
            repository: Some(RepoName::parse("dev/payments/api").unwrap()),
            digest: Some(Digest::of(b"m")),
            tag: Some(Tag::parse("1.4.2").unwrap()),
        };
        let event = Event::allowed(
            EventKind::TagMove,
            &Actor::anonymous("r-1"),
            Timestamp::from_millis(1_795_669_200_123),
            subject,
        )
        .with_detail("previous", json!(Digest::of(b"old").as_str()));
        let leaf = String::from_utf8(event.to_leaf().unwrap()).unwrap();
        expect![[r#"{"actor":"anonymous","actor_kind":"anonymous","details":{"previous":"sha256:cba06b5736faf67e54b07b561eae94395e774c517a7d910a54369e1263ccfbd4"},"outcome":{"decision":"allowed","reasons":[]},"request_id":"r-1","subject":{"digest":"sha256:62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a","repository":"dev/payments/api","tag":"1.4.2"},"time":"2026-11-26T05:00:00.123Z","type":"registry.tag.move"}"#]].assert_eq(&leaf);
        let denied = Event { outcome: Outcome::Denied { reasons: vec!["gated".into()] }, ..event };
        assert!(
            String::from_utf8(denied.to_leaf().unwrap())
                .unwrap()
                .contains(r#""outcome":{"decision":"denied","reasons":["gated"]}"#)
        );
    }

    #[test]
    fn every_actor_says_its_kind() {
        let alice = airlock_model::PrincipalId::parse("alice").unwrap();
        let actors = [
            Actor::system(),
            Actor::anonymous("r-1"),
            Actor::authenticated(&alice, PrincipalKind::User, "r-2"),
            Actor::authenticated(&alice, PrincipalKind::ServiceAccount, "r-3"),
        ];
        let kinds: Vec<String> = actors
            .iter()
            .map(|actor| {
                let json = Event::allowed(EventKind::ServerStart, actor, Timestamp::from_millis(0), Subject::default())
                    .to_json();
                format!("{} {}", json["actor"].as_str().unwrap(), json["actor_kind"].as_str().unwrap())
            })
            .collect();
        expect![[r#"["airlock server", "anonymous anonymous", "alice user", "alice service_account"]"#]]
            .assert_eq(&format!("{kinds:?}"));
    }

    #[test]
    fn kinds_have_distinct_names() {
        let mut names: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
    }
}
