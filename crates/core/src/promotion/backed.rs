//! State backed by the log. A row that grants something (an approval, an active waiver, a
//! freeze lift and the request before it) stores the index of the log entry appended with it in
//! the same transaction; it counts only if that entry exists, still hashes to its leaf hash and
//! says the same (type, actor, promotion, digest, ...). A row typed into the database has no such
//! entry: it is ignored, the promotion says which row and why, and `integrity.mismatch` is
//! appended once per distinct bad row.
//!
//! The entries are read through [`crate::ports::LogStore::log_entries`], the log's public read
//! path, in one call for every row a decision looks at.
//!
//! What takes something away (a freeze, a waiver's revocation) is read from the log itself
//! ([`LogFacts`]): deleting a freeze row or setting a revoked waiver back to active changes the
//! table, not the log, so the stage stays frozen and the waiver revoked.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use airlock_model::{StageName, Timestamp};
use serde_json::{Value, json};

use crate::audit::{Actor, Event, EventKind, Outcome, Subject};
use crate::ports::{ApprovalRecord, FreezeRecord, LogLeaf, LogStore, StoreError, WaiverRecord, WaiverState};
use crate::promotion::control::waiver_json;
use crate::promotion::gates::Finding;
use crate::registry::Registry;

/// Distinct bad rows remembered as logged already. Past this the memory starts again, so under a
/// flood of forged rows each is logged again at most once per this many distinct ones.
pub const MISMATCHES_REMEMBERED: usize = 4096;

/// Where the runbook says what to do about a mismatch.
pub const RUNBOOK: &str = "docs/runbook.md#integrity-mismatch";

/// The bad rows this process has logged already, so a row read on every request is logged once.
#[derive(Debug, Default)]
pub struct Reported(Mutex<HashSet<String>>);

impl Reported {
    /// True the first time `key` is seen.
    fn first(&self, key: String) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(&key) {
            return false;
        }
        if seen.len() >= MISMATCHES_REMEMBERED {
            seen.clear();
        }
        seen.insert(key)
    }
}

/// Leaves read per page while catching up with the log.
const FACTS_PAGE: u64 = 1000;

/// A freeze the log recorded and no lift followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedFreeze {
    pub index: u64,
    pub reason: String,
    pub frozen_by: String,
    pub frozen_at: Timestamp,
}

/// What the log says is frozen and revoked, read leaf by leaf in order.
#[derive(Debug, Default)]
pub struct LogFacts(Mutex<Facts>);

#[derive(Debug, Default)]
struct Facts {
    /// The next leaf to read.
    next: u64,
    frozen: BTreeMap<String, LoggedFreeze>,
    /// Revoked waivers and the index of the entry that revoked each.
    revoked: BTreeMap<String, u64>,
}

impl LogFacts {
    /// Reads `leaf` if it is the next one; any other is ignored, so readers racing over the same
    /// pages agree.
    pub fn observe(&self, leaf: &LogLeaf) {
        let mut facts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if leaf.index != facts.next {
            return;
        }
        facts.next = facts.next.saturating_add(1);
        // Most leaves are decisions and pushes: look for the few kinds that matter first.
        let data = leaf.data.as_ref();
        if !(contains(data, b"\"stage.") || contains(data, b"\"waiver.revoke\"")) {
            return;
        }
        // A leaf that no longer hashes to its recorded hash fails the log's own checks.
        if airlock_tlog::leaf_hash(data) != leaf.leaf_hash {
            return;
        }
        let Ok(entry) = serde_json::from_slice::<Value>(data) else { return };
        if entry.pointer("/outcome/decision").and_then(Value::as_str) != Some("allowed") {
            return;
        }
        let text = |pointer: &str| entry.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
        match entry.get("type").and_then(Value::as_str).unwrap_or_default() {
            "stage.freeze" => {
                let frozen_at = Timestamp::parse_rfc3339(&text("/time")).unwrap_or(Timestamp::from_millis(0));
                let freeze = LoggedFreeze {
                    index: leaf.index,
                    reason: text("/details/reason"),
                    frozen_by: text("/actor"),
                    frozen_at,
                };
                facts.frozen.insert(text("/details/stage"), freeze);
            }
            "stage.unfreeze" => {
                facts.frozen.remove(&text("/details/stage"));
            }
            "waiver.revoke" => {
                facts.revoked.insert(text("/details/waiver"), leaf.index);
            }
            _ => {}
        }
    }

    /// Reads the leaves appended since the last call, then answers `pick` from all of them.
    ///
    /// One query when fewer than a page of leaves were appended (a decision's usual case): a
    /// page shorter than asked is the end of the log as it was read, so its size is never asked.
    async fn caught_up<T>(&self, log: &dyn LogStore, pick: impl FnOnce(&Facts) -> T) -> Result<T, StoreError> {
        loop {
            let next = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next;
            let leaves = log.log_leaves(next, next.saturating_add(FACTS_PAGE)).await?;
            for leaf in &leaves {
                self.observe(leaf);
            }
            let now_next = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next;
            // A short page ends the log; so does a page that moved nothing (leaves past a gap),
            // rather than asking for the same page again.
            if u64::try_from(leaves.len()).unwrap_or(u64::MAX) < FACTS_PAGE || now_next == next {
                break;
            }
        }
        Ok(pick(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a row says the log recorded.
#[derive(Debug, Clone)]
pub struct Claim {
    pub table: &'static str,
    /// The row as a person finds it: ``approvals row (`prm-…`, `sam`)``.
    pub row: String,
    /// The promotion the row belongs to, if any.
    pub promotion: Option<String>,
    pub index: Option<u64>,
    pub kind: EventKind,
    pub actor: String,
    /// JSON pointers into the entry and what they must hold.
    pub fields: Vec<(&'static str, Value)>,
}

/// A row the log does not back, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub table: &'static str,
    pub row: String,
    pub promotion: Option<String>,
    pub log_index: Option<u64>,
    pub reason: String,
}

impl Mismatch {
    /// As a promotion's report lists it.
    pub fn to_json(&self) -> Value {
        json!({"table": self.table, "row": self.row, "log_index": self.log_index, "reason": self.reason})
    }

    /// As a warning in a promotion's report.
    pub fn finding(&self) -> Finding {
        Finding {
            gate: "integrity",
            rule: "integrity-mismatch".to_owned(),
            message: format!("{} is ignored: {}", self.row, self.reason),
            remediation: "someone wrote to the metadata database outside Airlock; follow the runbook".to_owned(),
            doc: Some(RUNBOOK.to_owned()),
        }
    }

    fn event(&self, now: Timestamp) -> Event {
        let mut event = Event::allowed(EventKind::IntegrityMismatch, &Actor::system(), now, Subject::default())
            .with_detail("table", json!(self.table))
            .with_detail("row", json!(self.row))
            .with_detail("log_index", json!(self.log_index))
            .with_detail("reason", json!(self.reason));
        if let Some(promotion) = &self.promotion {
            event = event.with_detail("promotion", json!(promotion));
        }
        event.outcome = Outcome::Denied { reasons: vec![format!("{} is ignored: {}", self.row, self.reason)] };
        event
    }
}

/// Why `leaf` does not back `claim`, if it does not. Each step one reason.
fn why_not(claim: &Claim, leaf: Option<&LogLeaf>) -> Option<String> {
    // 1. The row names an entry.
    let Some(index) = claim.index else {
        return Some(format!("it stores no log index, so no `{}` entry recorded it", claim.kind.as_str()));
    };
    // 2. The log holds it.
    let Some(leaf) = leaf else {
        return Some(format!("its log index {index} is past the end of the log"));
    };
    // 3. It is the entry the tree was built from.
    if airlock_tlog::leaf_hash(&leaf.data) != leaf.leaf_hash {
        return Some(format!("the log entry at its index {index} no longer hashes to its recorded leaf hash"));
    }
    let Ok(entry) = serde_json::from_slice::<Value>(&leaf.data) else {
        return Some(format!("the log entry at its index {index} is not an event"));
    };
    // 4. It records this kind of thing, allowed, by this person.
    let kind = entry.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind != claim.kind.as_str() {
        return Some(format!("the log entry at its index {index} is a `{kind}` event, not `{}`", claim.kind.as_str()));
    }
    if entry.pointer("/outcome/decision").and_then(Value::as_str) != Some("allowed") {
        return Some(format!("the log entry at its index {index} records a refusal"));
    }
    let actor = entry.get("actor").and_then(Value::as_str).unwrap_or_default();
    if actor != claim.actor {
        return Some(format!("the log entry at its index {index} was made by `{actor}`, not `{}`", claim.actor));
    }
    // 5. It says what the row says.
    for (pointer, want) in &claim.fields {
        let got = entry.pointer(pointer).unwrap_or(&Value::Null);
        if got != want {
            let field = pointer.trim_start_matches('/').replace('/', ".");
            return Some(format!("the log entry at its index {index} has `{field}` {got}, not {want}"));
        }
    }
    None
}

/// Checks `claims` against the log in one read; `None` where the log backs the row.
pub async fn verify(log: &dyn LogStore, claims: &[Claim]) -> Result<Vec<Option<Mismatch>>, StoreError> {
    let indices: Vec<u64> = claims.iter().filter_map(|c| c.index).collect();
    let leaves = if indices.is_empty() { Vec::new() } else { log.log_entries(&indices).await? };
    let mut leaves = leaves.into_iter();
    Ok(claims
        .iter()
        .map(|claim| {
            let leaf = if claim.index.is_some() { leaves.next().flatten() } else { None };
            why_not(claim, leaf.as_ref()).map(|reason| Mismatch {
                table: claim.table,
                row: claim.row.clone(),
                promotion: claim.promotion.clone(),
                log_index: claim.index,
                reason,
            })
        })
        .collect())
}

/// Appends `integrity.mismatch` for each bad row not logged yet. A failure to log leaves the
/// rows ignored all the same; it is reported to the operator's log.
pub async fn report(registry: &Registry, mismatches: &[Mismatch]) {
    let now = registry.clock().now();
    let fresh: Vec<Event> = mismatches
        .iter()
        .filter(|m| {
            let key = format!("{}\n{}\n{:?}\n{}", m.table, m.row, m.log_index, m.reason);
            registry.integrity_reported().first(key)
        })
        .map(|m| {
            tracing::warn!(table = m.table, row = %m.row, reason = %m.reason, "a row not backed by the log is ignored");
            m.event(now)
        })
        .collect();
    if fresh.is_empty() {
        return;
    }
    if let Err(e) = registry.log_events(&fresh).await {
        tracing::error!(error = %e, "cannot log an integrity mismatch");
    }
}

/// Checks `claims`, logs the bad rows, and returns the verdicts.
pub async fn check(registry: &Registry, claims: &[Claim]) -> Result<Vec<Option<Mismatch>>, StoreError> {
    let verdicts = verify(&**registry.store(), claims).await?;
    let bad: Vec<Mismatch> = verdicts.iter().flatten().cloned().collect();
    report(registry, &bad).await;
    Ok(verdicts)
}

/// What an approval row says its `promotion.approve` entry holds.
pub fn approval_claim(a: &ApprovalRecord) -> Claim {
    Claim {
        table: "approvals",
        row: format!("`approvals` row (`{}`, `{}`)", a.promotion, a.approver),
        promotion: Some(a.promotion.clone()),
        index: a.log_index,
        kind: EventKind::PromotionApprove,
        actor: a.approver.clone(),
        fields: vec![
            ("/details/promotion", json!(a.promotion)),
            ("/subject/digest", json!(a.digest.as_str())),
            ("/subject/repository", json!(a.source.as_str())),
            ("/details/target", json!(a.target.as_str())),
            ("/details/policy_digest", json!(a.policy_digest)),
            ("/details/evidence_digest", json!(a.evidence_digest)),
            ("/details/comment", json!(a.comment)),
            ("/details/expires_at", json!(a.expires_at.to_rfc3339())),
            ("/details/identity_digest", json!(identity_digest(&a.identity))),
            ("/time", json!(a.created_at.to_rfc3339())),
        ],
    }
}

/// The person behind an approval as its entry records it: the digest of the stored identity
/// (`email:…`, normalized; rows from before that may hold another form), so two accounts of one
/// person stay one without the log publishing an e-mail address.
pub fn identity_digest(identity: &str) -> String {
    airlock_model::Digest::of(identity.as_bytes()).to_string()
}

/// What an active waiver row says its `waiver.approve` entry holds: the whole waiver as the
/// policy sees it.
pub fn waiver_claim(w: &WaiverRecord) -> Claim {
    Claim {
        table: "waivers",
        row: format!("`waivers` row `{}`", w.id),
        promotion: None,
        index: w.log_index,
        kind: EventKind::WaiverApprove,
        actor: w.approver.clone().unwrap_or_default(),
        fields: vec![("/details/waiver", waiver_json(w)), ("/time", json!(w.decided_at.map(Timestamp::to_rfc3339)))],
    }
}

/// What a freeze row's first request to lift it says its `stage.unfreeze.request` entry holds.
pub fn unfreeze_request_claim(f: &FreezeRecord) -> Claim {
    let first = f.unfreeze_by.clone().unwrap_or_default();
    Claim {
        table: "stage_freezes",
        row: format!("`stage_freezes` row `{}` (lift requested by `{first}`)", f.stage),
        promotion: None,
        index: f.unfreeze_index,
        kind: EventKind::StageUnfreezeRequest,
        actor: first,
        fields: freeze_fields(f),
    }
}

/// What a lifted freeze row says its `stage.unfreeze` entry holds.
pub fn lift_claim(f: &FreezeRecord) -> Claim {
    let second = f.lifted_by.clone().unwrap_or_default();
    let mut fields = freeze_fields(f);
    fields.push(("/details/first", json!(f.unfreeze_by)));
    Claim {
        table: "stage_freezes",
        row: format!("`stage_freezes` row `{}` (lifted by `{second}`)", f.stage),
        promotion: None,
        index: f.lift_index,
        kind: EventKind::StageUnfreeze,
        actor: second,
        fields,
    }
}

/// The freeze an unfreeze entry is about: its stage, and who froze it when.
fn freeze_fields(f: &FreezeRecord) -> Vec<(&'static str, Value)> {
    vec![
        ("/details/stage", json!(f.stage.as_str())),
        ("/details/frozen_by", json!(f.frozen_by)),
        ("/details/frozen_at", json!(f.frozen_at.to_rfc3339())),
    ]
}

/// A freeze in force.
#[derive(Debug, Clone)]
pub struct InForce {
    pub record: FreezeRecord,
    /// Why a lift stored with it does not count, or why the log keeps it in force without its row.
    pub mismatch: Option<Mismatch>,
    /// False when only the log holds it: its row was deleted, or set back to an earlier lift.
    pub stored: bool,
}

/// The freezes in force. A lift counts only when both its entry and its first request's entry
/// back it, and a freeze the log recorded stays in force until the log records its lift.
pub async fn freezes_in_force(registry: &Registry) -> Result<Vec<InForce>, StoreError> {
    let stored = registry.store().freezes().await?;
    let lifted: Vec<&FreezeRecord> = stored.iter().filter(|f| f.lifted_by.is_some()).collect();
    let claims: Vec<Claim> = lifted.iter().flat_map(|f| [lift_claim(f), unfreeze_request_claim(f)]).collect();
    let verdicts = verify(&**registry.store(), &claims).await?;
    let mut bad = Vec::new();
    let mut in_force = Vec::new();
    for (f, pair) in lifted.iter().zip(verdicts.chunks(2)) {
        // The lift's own reason first: one row, one mismatch.
        if let Some(m) = pair.iter().flatten().next() {
            bad.push(m.clone());
            in_force.push(InForce { record: (*f).clone(), mismatch: Some(m.clone()), stored: true });
        }
    }
    let mut all: Vec<InForce> = stored
        .into_iter()
        .filter(|f| f.lifted_by.is_none())
        .map(|record| InForce { record, mismatch: None, stored: true })
        .collect();
    all.extend(in_force);
    // A freeze the log recorded and never lifted is in force even when its row is gone.
    for (stage, logged) in registry.log_facts().caught_up(&**registry.store(), |f| f.frozen.clone()).await? {
        if all.iter().any(|f| f.record.stage.as_str() == stage) {
            continue;
        }
        let Ok(stage) = StageName::parse(&stage) else { continue };
        let m = Mismatch {
            table: "stage_freezes",
            row: format!("the `stage_freezes` row of `{stage}`"),
            promotion: None,
            log_index: Some(logged.index),
            reason: format!(
                "it is missing or lifted, but the log's `stage.freeze` entry at index {} froze the stage and no `stage.unfreeze` entry lifted it",
                logged.index
            ),
        };
        bad.push(m.clone());
        let record = FreezeRecord {
            stage,
            reason: logged.reason,
            frozen_by: logged.frozen_by,
            frozen_at: logged.frozen_at,
            unfreeze_by: None,
            unfreeze_index: None,
            lifted_by: None,
            lift_index: None,
        };
        all.push(InForce { record, mismatch: Some(m), stored: false });
    }
    report(registry, &bad).await;
    all.sort_by(|a, b| a.record.stage.as_str().cmp(b.record.stage.as_str()));
    Ok(all)
}

/// The waivers that waive at `now`: active, unexpired, and backed by their approval's entry;
/// with the active ones the log does not back.
pub async fn active_waivers(
    registry: &Registry,
    now: Timestamp,
) -> Result<(Vec<WaiverRecord>, Vec<Mismatch>), StoreError> {
    let active: Vec<WaiverRecord> = registry
        .store()
        .waivers()
        .await?
        .into_iter()
        .filter(|w| w.state == WaiverState::Active && now < w.expires_at)
        .collect();
    if active.is_empty() {
        // Nothing for the log to take away: the usual decision reads no log entry.
        return Ok((Vec::new(), Vec::new()));
    }
    let claims: Vec<Claim> = active.iter().map(waiver_claim).collect();
    let mut verdicts = verify(&**registry.store(), &claims).await?;
    // A waiver the log revoked stays revoked, whatever its row says.
    let revoked = registry.log_facts().caught_up(&**registry.store(), |f| f.revoked.clone()).await?;
    for (w, verdict) in active.iter().zip(verdicts.iter_mut()) {
        if let (None, Some(index)) = (&verdict, revoked.get(&w.id)) {
            *verdict = Some(Mismatch {
                table: "waivers",
                row: format!("`waivers` row `{}`", w.id),
                promotion: None,
                log_index: Some(*index),
                reason: format!("it says active, but the log's `waiver.revoke` entry at index {index} revoked it"),
            });
        }
    }
    let bad: Vec<Mismatch> = verdicts.iter().flatten().cloned().collect();
    report(registry, &bad).await;
    let backed = active.into_iter().zip(verdicts).filter(|(_, v)| v.is_none()).map(|(w, _)| w).collect();
    Ok((backed, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_model::{Digest, PrincipalKind, RepoName};
    use bytes::Bytes;

    fn approval() -> ApprovalRecord {
        ApprovalRecord {
            promotion: "prm-1".to_owned(),
            approver: "alice".to_owned(),
            identity: "principal:alice".to_owned(),
            digest: Digest::of(b"app"),
            source: RepoName::parse("staging/app").unwrap(),
            target: RepoName::parse("prod/app").unwrap(),
            policy_digest: "sha256:p".to_owned(),
            evidence_digest: "sha256:e".to_owned(),
            comment: "ok".to_owned(),
            created_at: Timestamp::from_millis(1_795_669_200_000),
            expires_at: Timestamp::from_millis(1_795_672_800_000),
            log_index: Some(7),
        }
    }

    fn approve_event(a: &ApprovalRecord, actor: &str) -> Event {
        let actor =
            Actor::authenticated(&airlock_model::PrincipalId::parse(actor).unwrap(), PrincipalKind::User, "r-1");
        let subject = Subject { repository: Some(a.source.clone()), digest: Some(a.digest.clone()), tag: None };
        Event::allowed(EventKind::PromotionApprove, &actor, a.created_at, subject)
            .with_detail("promotion", json!(a.promotion))
            .with_detail("target", json!(a.target.as_str()))
            .with_detail("tag", Value::Null)
            .with_detail("policy_digest", json!(a.policy_digest))
            .with_detail("evidence_digest", json!(a.evidence_digest))
            .with_detail("comment", json!(a.comment))
            .with_detail("expires_at", json!(a.expires_at.to_rfc3339()))
            .with_detail("identity_digest", json!(identity_digest(&a.identity)))
    }

    fn leaf(event: &Event) -> LogLeaf {
        let data = event.to_leaf().unwrap();
        LogLeaf { index: 7, leaf_hash: airlock_tlog::leaf_hash(&data), data: Bytes::from(data) }
    }

    fn check(a: &ApprovalRecord, leaf: Option<&LogLeaf>) -> String {
        why_not(&approval_claim(a), leaf).unwrap_or_else(|| "backed".to_owned())
    }

    #[test]
    fn an_approval_counts_only_when_its_entry_says_the_same() {
        let a = approval();
        let real = leaf(&approve_event(&a, "alice"));
        assert_eq!(check(&a, Some(&real)), "backed");
        assert!(check(&ApprovalRecord { log_index: None, ..a.clone() }, None).contains("no log index"));
        assert!(check(&a, None).contains("past the end"));
        let sam = ApprovalRecord { approver: "sam".to_owned(), ..a.clone() };
        assert!(check(&sam, Some(&real)).contains("made by `alice`, not `sam`"));
        let other = ApprovalRecord { promotion: "prm-2".to_owned(), ..a.clone() };
        assert!(check(&other, Some(&real)).contains("`details.promotion`"));
        let longer = ApprovalRecord { expires_at: a.expires_at.plus_millis(1000), ..a.clone() };
        assert!(check(&longer, Some(&real)).contains("`details.expires_at`"));
        let someone_else = ApprovalRecord { identity: "email:someone.else@example.com".to_owned(), ..a.clone() };
        assert!(check(&someone_else, Some(&real)).contains("`details.identity_digest`"));
        let mut tampered = real.clone();
        tampered.data = Bytes::from(String::from_utf8(real.data.to_vec()).unwrap().replace("alice", "sam"));
        assert!(check(&sam, Some(&tampered)).contains("no longer hashes"));
        let mut commit = approve_event(&a, "alice");
        commit.kind = EventKind::PromotionCommit;
        assert!(check(&a, Some(&leaf(&commit))).contains("`promotion.commit` event"));
        let mut refused = approve_event(&a, "alice");
        refused.outcome = Outcome::Denied { reasons: vec!["no".to_owned()] };
        assert!(check(&a, Some(&leaf(&refused))).contains("refusal"));
    }

    fn stage_event(kind: EventKind, stage: &str, decision_allowed: bool) -> Event {
        let actor =
            Actor::authenticated(&airlock_model::PrincipalId::parse("olga").unwrap(), PrincipalKind::User, "r-1");
        let mut event = Event::allowed(kind, &actor, Timestamp::from_millis(1_795_669_200_000), Subject::default())
            .with_detail("stage", json!(stage))
            .with_detail("reason", json!("incident"));
        if !decision_allowed {
            event.outcome = Outcome::Denied { reasons: vec!["no".to_owned()] };
        }
        event
    }

    fn leaf_at(index: u64, event: &Event) -> LogLeaf {
        let data = event.to_leaf().unwrap();
        LogLeaf { index, leaf_hash: airlock_tlog::leaf_hash(&data), data: Bytes::from(data) }
    }

    fn frozen(facts: &LogFacts) -> Vec<(String, u64)> {
        let facts = facts.0.lock().unwrap();
        facts.frozen.iter().map(|(s, f)| (s.clone(), f.index)).collect()
    }

    #[test]
    fn the_log_decides_what_is_frozen_in_order() {
        let facts = LogFacts::default();
        facts.observe(&leaf_at(0, &stage_event(EventKind::StageFreeze, "prod", true)));
        assert_eq!(frozen(&facts), [("prod".to_owned(), 0)]);
        // Out of order or again: ignored.
        facts.observe(&leaf_at(5, &stage_event(EventKind::StageUnfreeze, "prod", true)));
        facts.observe(&leaf_at(0, &stage_event(EventKind::StageUnfreeze, "prod", true)));
        assert_eq!(frozen(&facts), [("prod".to_owned(), 0)]);
        // A refused lift lifts nothing; a leaf that no longer hashes to its record is skipped.
        facts.observe(&leaf_at(1, &stage_event(EventKind::StageUnfreeze, "prod", false)));
        let mut altered = leaf_at(2, &stage_event(EventKind::StageUnfreeze, "prod", true));
        altered.leaf_hash = airlock_tlog::leaf_hash(b"something else");
        facts.observe(&altered);
        assert_eq!(frozen(&facts), [("prod".to_owned(), 0)]);
        facts.observe(&leaf_at(3, &stage_event(EventKind::StageUnfreeze, "prod", true)));
        assert!(frozen(&facts).is_empty());
        facts.observe(&leaf_at(4, &stage_event(EventKind::StageFreeze, "prod", true)));
        assert_eq!(frozen(&facts), [("prod".to_owned(), 4)]);
        let revoke =
            Event::allowed(EventKind::WaiverRevoke, &Actor::system(), Timestamp::from_millis(0), Subject::default())
                .with_detail("waiver", json!("w-1"));
        facts.observe(&leaf_at(5, &revoke));
        assert_eq!(facts.0.lock().unwrap().revoked.get("w-1"), Some(&5));
    }

    #[test]
    fn a_mismatch_is_remembered_until_the_memory_is_full() {
        let reported = Reported::default();
        assert!(reported.first("a".to_owned()));
        assert!(!reported.first("a".to_owned()));
        for i in 0..MISMATCHES_REMEMBERED {
            reported.first(format!("k{i}"));
        }
        assert!(reported.first("a".to_owned()), "the memory is bounded and starts again");
    }
}
