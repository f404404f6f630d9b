//! Who may read what under `/api/v1`: promotions (with their approvals and reports), break-glass
//! reviews, waivers and freezes are visible to a principal only when it may pull a repository
//! they concern, decided with Cedar over the caller's roles in force.
//!
//! There is no "sees everything" override. The `auditor` role sees everything because it may
//! pull every repository of every stage; `audit.read` is no such sign, since most default roles
//! hold it (`developer` included) and the log it names is public anyway. What an artifact holds
//! (evidence, policy input, dry-run decisions, release records) is read under
//! `/api/v1/artifacts/...` through [`crate::caller::CallerService::reader`], the same pull decision
//! made for one repository named in the request.
//!
//! Lists leave out what the caller may not see; a direct read or action on a hidden one answers
//! exactly as for a missing one, so ids cannot be probed.

use std::collections::HashMap;

use airlock_access::authz::{Action, Resource, RoleDefinition};
use airlock_access::scope::RepoAction;
use airlock_core::ports::{PromotionRecord, WaiverRecord};
use airlock_model::{RepoName, StageName};

use crate::app::AppState;
use crate::caller::Caller;

/// What one caller may read, for one request: each repository's pull decision is made once.
pub(crate) struct Visibility<'a> {
    app: &'a AppState,
    caller: &'a Caller,
    source: &'a str,
    pulls: HashMap<RepoName, bool>,
    roles: Option<Vec<RoleDefinition>>,
}

impl<'a> Visibility<'a> {
    /// The reads of `caller`, whose request came from `source` (Cedar's `context.source_ip`).
    pub(crate) fn new(app: &'a AppState, caller: &'a Caller, source: &'a str) -> Visibility<'a> {
        Visibility { app, caller, source, pulls: HashMap::new(), roles: None }
    }

    /// A promotion, with its report and approvals: visible to its requester and to whoever may
    /// pull its source or its target repository. Approving or rejecting it is then decided by
    /// Cedar; a caller who cannot see it is told it does not exist.
    pub(crate) fn promotion(&mut self, record: &PromotionRecord) -> bool {
        record.requester == self.caller.id.as_str() || self.may_pull(&record.source) || self.may_pull(&record.target)
    }

    /// A break-glass review follows one promotion: visible exactly when that promotion is (and
    /// never when the promotion cannot be found).
    pub(crate) fn review(&mut self, promotion: Option<&PromotionRecord>) -> bool {
        promotion.is_some_and(|p| self.promotion(p))
    }

    /// A freeze concerns a whole stage: visible to whoever may freeze that stage, or may pull
    /// some repository in it. The latter is decided from the caller's roles in force: a
    /// permission granting `pull` in the stage names repository patterns, and Cedar must allow
    /// pulling one repository such a pattern names (its `*` read as `x`), so `forbid` policies
    /// and the request's context still count.
    pub(crate) fn freeze(&mut self, stage: &StageName) -> bool {
        let Some(configured) = self.app.registry.stages().get(stage) else { return false };
        let resource = Resource::Stage { name: stage.to_string(), gated: !configured.pushable() };
        if self.app.callers.decide_caller(self.caller, Action::Freeze, &resource, self.source).allowed {
            return true;
        }
        let candidates = self.pull_witnesses(stage);
        candidates.iter().any(|repo| self.may_pull(repo))
    }

    /// A waiver concerns the repositories its pattern matches (`*/payments/api`: one segment
    /// may be a glob): visible to its requester and to whoever may pull one of them. Each
    /// configured stage is tried; a glob in the path is tried with `x` for its `*` and with the
    /// repositories the caller's own `pull` patterns name there. A caller whose patterns only
    /// partly overlap the waiver's (neither names a repository the other matches) does not see
    /// it: when in doubt, less visible.
    pub(crate) fn waiver(&mut self, record: &WaiverRecord) -> bool {
        if record.requester == self.caller.id.as_str() {
            return true;
        }
        let Ok(pattern) = airlock_model::pattern::RepoPattern::parse(&record.repository) else { return false };
        let Some((_, path)) = record.repository.split_once('/') else { return false };
        let stages: Vec<StageName> = self.app.registry.stages().iter().map(|s| s.name().clone()).collect();
        for stage in &stages {
            let mut candidates: Vec<String> = vec![format!("{stage}/{}", path.replace('*', "x"))];
            if path.contains('*') {
                candidates.extend(self.pull_witnesses(stage).iter().map(RepoName::to_string));
            }
            let visible = candidates
                .iter()
                .filter(|name| pattern.matches(name))
                .filter_map(|name| RepoName::parse(name).ok())
                .filter(|repo| repo.stage() == stage)
                .any(|repo| self.may_pull(&repo));
            if visible {
                return true;
            }
        }
        false
    }

    /// Whether Cedar allows the caller, with its roles in force now, to pull `repo`.
    fn may_pull(&mut self, repo: &RepoName) -> bool {
        if let Some(&known) = self.pulls.get(repo) {
            return known;
        }
        let allowed = self.app.callers.still_allowed(self.caller, repo, RepoAction::Pull, self.source);
        self.pulls.insert(repo.clone(), allowed);
        allowed
    }

    /// One repository in `stage` for each repository pattern of a `pull` permission, in `stage`,
    /// of the caller's roles in force: the pattern with each `*` read as `x`. A pattern that
    /// names no valid repository that way names none at all.
    fn pull_witnesses(&mut self, stage: &StageName) -> Vec<RepoName> {
        let roles = self.roles.get_or_insert_with(|| self.app.callers.identity().roles());
        roles
            .iter()
            .filter(|role| self.caller.roles.contains(&role.name))
            .flat_map(|role| &role.permissions)
            .filter(|p| p.actions.contains(&Action::Pull))
            .filter(|p| p.stages.iter().any(|s| s == "*" || s == stage.as_str()))
            .flat_map(|p| &p.repositories)
            .filter_map(|pattern| RepoName::parse(&format!("{stage}/{}", pattern.replace('*', "x"))).ok())
            .collect()
    }
}
