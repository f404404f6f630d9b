//! Decisions: Cedar over the caller's roles in force and the request's context.

use airlock_access::authz::{Action, AuthzContext, AuthzDecision, Origin, Resource};
use airlock_access::scope::RepoAction;
use airlock_core::audit::{Actor, Event, EventKind, Outcome, Subject};
use airlock_core::identity::Acting;
use airlock_core::ports::PrincipalRecord;
use airlock_model::{PrincipalId, PrincipalKind, RepoName};
use serde_json::json;

use super::{ADMIN, ADMIN_ROLES, Caller, CallerError, CallerService, repo_action};

impl CallerService {
    /// The context of a request from `source`, with no second factor proved.
    fn context(&self, source: &str) -> AuthzContext {
        AuthzContext {
            now: self.clock.now().as_millis() / 1000,
            source_ip: source.to_owned(),
            mfa_fresh: false,
            stage_frozen: false,
            incident_mode: false,
            origin: None,
        }
    }

    /// The context of a request by `caller`: its second factor is fresh when proved within
    /// `access.mfa_window_minutes`.
    pub fn context_for(&self, caller: &Caller, source: &str) -> AuthzContext {
        let window = self.config.mfa_window_minutes.saturating_mul(60);
        let now = self.now_secs();
        AuthzContext {
            mfa_fresh: caller.mfa_at.is_some_and(|at| at <= now.saturating_add(60) && now.saturating_sub(at) <= window),
            ..self.context(source)
        }
    }

    /// `caller` acting on a request from `source`, for identity's decisions.
    pub fn acting(&self, caller: &Caller, source: &str, request_id: &str) -> Acting {
        Acting {
            id: caller.id.clone(),
            kind: caller.kind,
            roles: caller.roles.clone(),
            actor: caller.actor(request_id),
            context: self.context_for(caller, source),
        }
    }

    /// The bootstrap administrator acting with a fresh second factor, for setup done in-process
    /// on an operator's behalf (`airlock demo`); never reached from a request.
    pub fn admin_acting(&self) -> Result<Acting, CallerError> {
        let admin = PrincipalId::parse(ADMIN).map_err(|e| CallerError::Internal(e.to_string()))?;
        let caller = Caller {
            id: admin,
            kind: PrincipalKind::User,
            roles: ADMIN_ROLES.iter().map(|r| (*r).to_owned()).collect(),
            mfa_at: Some(self.now_secs()),
            access: Vec::new(),
        };
        Ok(self.acting(&caller, "local", "setup"))
    }

    /// Decides `action` on `resource` for a caller, with its second factor's freshness.
    pub fn decide_caller(&self, caller: &Caller, action: Action, resource: &Resource, source: &str) -> AuthzDecision {
        self.identity.decide(&self.acting(caller, source, ""), action, resource)
    }

    /// Refuses, and logs, what Cedar does not allow the caller.
    pub(crate) async fn require(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        source: &str,
        request_id: &str,
    ) -> Result<(), CallerError> {
        self.require_in(caller, action, resource, source, request_id, None).await
    }

    /// [`CallerService::require`] for a request about an artifact whose trusted provenance
    /// names `origin` (Cedar's `context.origin_builder` and `context.origin_source`).
    pub(crate) async fn require_in(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        source: &str,
        request_id: &str,
        origin: Option<Origin>,
    ) -> Result<(), CallerError> {
        let mut acting = self.acting(caller, source, request_id);
        acting.context.origin = origin;
        Ok(self.identity.require(&acting, action, resource).await?)
    }

    /// Logs that `caller` presented a token for `action` on `repo` that its roles in force no
    /// longer allow.
    pub async fn log_denied(
        &self,
        caller: &Caller,
        repo: &RepoName,
        action: RepoAction,
        request_id: &str,
    ) -> Result<(), CallerError> {
        let event = Event {
            kind: EventKind::AccessDenied,
            time: self.clock.now(),
            actor: caller.actor(request_id),
            subject: Subject { repository: Some(repo.clone()), ..Subject::default() },
            outcome: Outcome::Denied {
                reasons: vec![format!(
                    "the roles of `{}` in force now do not allow `{}` on `{repo}`",
                    caller.id,
                    action.as_str()
                )],
            },
            details: Default::default(),
        }
        .with_detail("principal", json!(caller.id.as_str()))
        .with_detail("action", json!(action.as_str()))
        .with_detail("resource", json!(repo.as_str()));
        Ok(self.identity.log(&[event]).await?)
    }

    /// Logs a `/v2` write refused before it reached the registry: no token, one that does not
    /// verify (`caller` is then `None`, and the client address is recorded), or one without the
    /// scope. Identical refusals are aggregated ([`airlock_core::refusals`]).
    pub async fn log_write_refused(
        &self,
        caller: Option<&Caller>,
        repo: &RepoName,
        action: &str,
        reason: String,
        source: &str,
        request_id: &str,
    ) -> Result<(), CallerError> {
        let actor = caller.map_or_else(|| Actor::anonymous(request_id), |c| c.actor(request_id));
        let event = Event {
            kind: EventKind::WriteDenied,
            time: self.clock.now(),
            actor,
            subject: Subject { repository: Some(repo.clone()), ..Subject::default() },
            outcome: Outcome::Denied { reasons: vec![reason] },
            details: Default::default(),
        }
        .with_detail("action", json!(action));
        let event = match caller {
            Some(caller) => event.with_detail("principal", json!(caller.id.as_str())),
            None => event.with_detail("source", json!(source)),
        };
        Ok(self.identity.log(&[event]).await?)
    }

    /// Whether the caller's roles in force now still allow `action` on `repo`: a token outlives
    /// neither a grant's expiry nor a role change.
    pub fn still_allowed(&self, caller: &Caller, repo: &RepoName, action: RepoAction, source: &str) -> bool {
        self.repository(repo)
            .is_some_and(|resource| self.decide_caller(caller, repo_action(action), &resource, source).allowed)
    }

    fn repository(&self, repo: &RepoName) -> Option<Resource> {
        let stage = self.stages.get(repo.stage())?;
        Some(Resource::Repository {
            stage: repo.stage().to_string(),
            path: repo.path().to_owned(),
            gated: !stage.pushable(),
        })
    }

    /// The repository actions Cedar allows `record` (with its roles in force) on `repo` (none
    /// in an unknown stage).
    pub fn allowed_actions(&self, record: &PrincipalRecord, repo: &RepoName, source: &str) -> Vec<RepoAction> {
        let Some(resource) = self.repository(repo) else { return Vec::new() };
        let principal = airlock_access::authz::Principal {
            kind: record.kind,
            id: record.id.to_string(),
            roles: record.roles.clone(),
        };
        let context = self.context(source);
        let authorizer = self.identity.authorizer();
        RepoAction::ALL
            .into_iter()
            .filter(|a| authorizer.authorize(&principal, repo_action(*a), &resource, &context).allowed)
            .collect()
    }
}

/// A caller's access decision on one request, made by the promotion engine on the digest it
/// resolves ([`airlock_core::promotion::AccessCheck`]).
pub(crate) struct EngineAccess<'a> {
    pub service: &'a CallerService,
    pub caller: &'a Caller,
    pub action: Action,
    pub resource: Resource,
    pub source: &'a str,
    pub request_id: &'a str,
}

impl<'a> EngineAccess<'a> {
    /// `caller` asking to promote into `target` (the repository in its target stage).
    pub(crate) fn promote_request(
        service: &'a CallerService,
        caller: &'a Caller,
        target: &RepoName,
        source: &'a str,
        request_id: &'a str,
    ) -> EngineAccess<'a> {
        EngineAccess {
            service,
            caller,
            action: Action::PromoteRequest,
            resource: Resource::Promotion {
                id: String::new(),
                repository: target.path().to_owned(),
                stage: target.stage().to_string(),
                requester_id: caller.id.to_string(),
                pushers: Vec::new(),
            },
            source,
            request_id,
        }
    }
}

#[async_trait::async_trait]
impl airlock_core::promotion::AccessCheck for EngineAccess<'_> {
    fn reads_origin(&self) -> bool {
        self.service.has_custom_policies()
    }

    async fn check(&self, origin: Option<Origin>) -> Result<(), airlock_core::promotion::PromotionError> {
        let mut acting = self.service.acting(self.caller, self.source, self.request_id);
        acting.context.origin = origin;
        Ok(self.service.identity.require(&acting, self.action, &self.resource).await?)
    }
}
