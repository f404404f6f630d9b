//! Domain records and views into the `/api/v1` DTOs.

use airlock_access::authz::RoleDefinition;
use airlock_api::v1 as api;
use airlock_core::attest::EvidenceItem;
use airlock_core::identity::Outcome;
use airlock_core::ports::{
    ApprovalRecord, FreezeRecord, GrantRecord, PrincipalRecord, PromotionRecord, ReviewRecord, Verdict, WaiverRecord,
};
use airlock_core::promotion::PromotionView;
use airlock_core::promotion::control::{Rollback, Unfreeze};
use airlock_core::promotion::history::ReleaseProof;
use airlock_dsse::PublicKey;
use airlock_model::{Digest, RepoName, StageName, Tag, Timestamp};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::caller::IssuedToken;

fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// A promotion with its report and approvals.
pub fn promotion(view: &PromotionView) -> api::Promotion {
    let r = &view.record;
    api::Promotion {
        id: r.id.clone(),
        status: r.status.as_str().to_owned(),
        source: r.source.as_str().to_owned(),
        target: r.target.as_str().to_owned(),
        digest: r.digest.as_str().to_owned(),
        tag: r.tag.as_ref().map(|t| t.as_str().to_owned()),
        requester: r.requester.clone(),
        reason: r.reason.clone(),
        policy_digest: r.policy_digest.clone(),
        evidence_digest: r.evidence_digest.clone(),
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
        closed_reason: r.closed_reason.clone(),
        release_record: r.release_digest.as_ref().map(|d| d.as_str().to_owned()),
        log_index: r.log_index,
        break_glass: r.break_glass,
        report: view.report.clone(),
        approvals: view.approvals.iter().map(approval).collect(),
        created: view.created,
    }
}

/// A promotion as a list shows it: no report, no approvals.
pub fn promotion_listed(record: PromotionRecord) -> api::Promotion {
    promotion(&PromotionView { report: serde_json::Value::Null, approvals: Vec::new(), created: true, record })
}

pub fn approval(a: &ApprovalRecord) -> api::Approval {
    api::Approval {
        approver: a.approver.clone(),
        comment: a.comment.clone(),
        created_at: time(a.created_at),
        expires_at: time(a.expires_at),
        policy_digest: a.policy_digest.clone(),
        evidence_digest: a.evidence_digest.clone(),
    }
}

pub fn release_key(key: &PublicKey) -> api::ReleaseKey {
    api::ReleaseKey { keyid: key.keyid().as_str().to_owned(), pem: key.to_pem() }
}

/// Whether `digest` was promoted into `repo`: each promotion with its signed release record and
/// summary (base64 DSSE envelopes, for clients to verify with their own copy of the release
/// key) and the server's own check.
pub fn history(key: &PublicKey, repo: &RepoName, digest: &Digest, proofs: &[ReleaseProof]) -> api::PromotionHistory {
    let b64 = |b: &Option<bytes::Bytes>| b.as_ref().map(|b| STANDARD.encode(b));
    let promoted = proofs.iter().any(|p| p.verified.is_ok());
    let reason = if promoted {
        None
    } else if proofs.is_empty() {
        Some(format!("`{digest}` was never promoted into `{repo}`"))
    } else {
        proofs.iter().find_map(|p| p.verified.as_ref().err().cloned())
    };
    api::PromotionHistory {
        repository: repo.as_str().to_owned(),
        stage: repo.stage().as_str().to_owned(),
        digest: digest.as_str().to_owned(),
        promoted,
        reason,
        release_key: api::ReleaseKeyId { keyid: key.keyid().as_str().to_owned() },
        promotions: proofs
            .iter()
            .map(|p| api::HistoryEntry {
                id: p.promotion.id.clone(),
                source: p.promotion.source.as_str().to_owned(),
                tag: p.promotion.tag.as_ref().map(Tag::as_str).map(str::to_owned),
                requester: p.promotion.requester.clone(),
                promoted_at: time(p.promotion.updated_at),
                log_index: p.promotion.log_index,
                release_record: p.promotion.release_digest.as_ref().map(|d| d.as_str().to_owned()),
                summary: p.promotion.summary_digest.as_ref().map(|d| d.as_str().to_owned()),
                record_envelope: b64(&p.record),
                summary_envelope: b64(&p.summary),
                verified: p.verified.is_ok(),
                reason: p.verified.as_ref().err().cloned(),
            })
            .collect(),
    }
}

pub fn freeze(f: &FreezeRecord) -> api::Freeze {
    api::Freeze {
        stage: f.stage.as_str().to_owned(),
        reason: f.reason.clone(),
        frozen_by: f.frozen_by.clone(),
        frozen_at: time(f.frozen_at),
        unfreeze_requested_by: f.unfreeze_by.clone(),
    }
}

pub fn unfreeze(stage: &StageName, done: Unfreeze) -> api::Unfreeze {
    let stage = stage.as_str().to_owned();
    match done {
        Unfreeze::Waiting { first } => {
            api::Unfreeze { stage, frozen: true, unfreeze_requested_by: Some(first), lifted_by: None }
        }
        Unfreeze::Lifted { first, second } => {
            api::Unfreeze { stage, frozen: false, unfreeze_requested_by: None, lifted_by: Some(vec![first, second]) }
        }
    }
}

pub fn waiver(w: &WaiverRecord) -> api::Waiver {
    api::Waiver {
        id: w.id.clone(),
        status: w.state.as_str().to_owned(),
        rule: w.rule.clone(),
        vulnerability: w.vulnerability.clone(),
        component: w.component.clone(),
        repository: w.repository.clone(),
        justification: w.justification.clone(),
        requester: w.requester.clone(),
        approver: w.approver.clone(),
        created_at: time(w.created_at),
        decided_at: w.decided_at.map(time),
        expires_at: time(w.expires_at),
    }
}

pub fn rollback(done: &Rollback) -> api::Rollback {
    api::Rollback {
        repository: done.repository.as_str().to_owned(),
        tag: done.tag.as_str().to_owned(),
        from: done.from.as_str().to_owned(),
        to: done.to.as_str().to_owned(),
        log_index: done.log_index,
    }
}

pub fn review(r: &ReviewRecord) -> api::Review {
    api::Review {
        id: r.id.clone(),
        promotion: r.promotion.clone(),
        open: r.closed_at.is_none(),
        opened_at: time(r.opened_at),
        closed_by: r.closed_by.clone(),
        closed_at: r.closed_at.map(time),
        note: r.note.clone(),
    }
}

/// A principal: never a secret, never a hash.
pub fn principal(r: &PrincipalRecord) -> api::Principal {
    api::Principal {
        name: r.id.to_string(),
        kind: r.kind.as_str().to_owned(),
        roles: r.roles.clone(),
        disabled: r.disabled,
        epoch: r.epoch,
        api_key_expires_at: r.api_key_expires_at.map(time),
        mfa_enrolled: r.totp_secret.is_some(),
        created_at: time(r.created_at),
        email: r.email.clone(),
    }
}

pub fn api_token(issued: IssuedToken, record: &PrincipalRecord) -> api::ApiToken {
    api::ApiToken {
        token: issued.token,
        expires_in: issued.expires_in,
        issued_at: issued.issued_at,
        principal: record.id.to_string(),
        kind: record.kind.as_str().to_owned(),
        roles: record.roles.clone(),
    }
}

pub fn totp(principal: &PrincipalRecord, secret: String, otpauth_uri: String) -> api::TotpEnrollment {
    api::TotpEnrollment { principal: principal.id.as_str().to_owned(), secret, otpauth_uri }
}

pub fn grant(g: &GrantRecord) -> api::Grant {
    api::Grant {
        id: g.id.clone(),
        kind: g.kind.as_str().to_owned(),
        principal: g.principal.as_str().to_owned(),
        requested_by: g.requested_by.as_str().to_owned(),
        approved_by: g.approved_by.clone(),
        role: g.role.clone(),
        reason: g.reason.clone(),
        duration_secs: g.duration_secs,
        status: g.status.as_str().to_owned(),
        requested_at: time(g.requested_at),
        decided_by: g.decided_by.clone(),
        decided_at: g.decided_at.map(time),
        expires_at: g.expires_at.map(time),
    }
}

pub fn grant_approved(approved: &airlock_core::identity::Approved) -> api::GrantApproved {
    let (enrollment_token, enrollment_expires_at) = secret(&approved.enrollment);
    let (api_key, api_key_expires_at) = secret(&approved.api_key);
    api::GrantApproved {
        grant: grant(&approved.grant),
        enrollment_token,
        enrollment_expires_at,
        api_key,
        api_key_expires_at,
    }
}

fn secret(pair: &Option<(String, Timestamp)>) -> (Option<String>, Option<String>) {
    match pair {
        Some((secret, expires)) => (Some(secret.clone()), Some(time(*expires))),
        None => (None, None),
    }
}

/// A change to a principal, done or pending, and the status it answers with.
pub fn outcome(outcome: &Outcome) -> (http::StatusCode, api::PrincipalChange) {
    match outcome {
        Outcome::Done(record) => (http::StatusCode::OK, api::PrincipalChange::Done(principal(record))),
        Outcome::Pending(g) => {
            (http::StatusCode::ACCEPTED, api::PrincipalChange::Pending(api::PendingChange { pending: grant(g) }))
        }
    }
}

pub fn role(r: &RoleDefinition) -> api::Role {
    api::Role {
        name: r.name.clone(),
        description: r.description.clone(),
        permissions: r
            .permissions
            .iter()
            .map(|p| api::RolePermission {
                actions: p.actions.iter().map(|a| a.as_str().to_owned()).collect(),
                stages: p.stages.clone(),
                repositories: p.repositories.clone(),
            })
            .collect(),
    }
}

pub fn verdict(v: &Verdict) -> api::VerdictDto {
    api::VerdictDto {
        trusted: v.trusted,
        signers: v.signers.clone(),
        reasons: v.reasons.clone(),
        root_version: v.root_version,
    }
}

/// An artifact's attestations, re-verified against the root in force (`root_version`).
pub fn evidence(repo: &RepoName, digest: &Digest, root_version: Option<u64>, items: &[EvidenceItem]) -> api::Evidence {
    api::Evidence {
        repository: repo.to_string(),
        digest: digest.to_string(),
        trust_root_version: root_version,
        attestations: items
            .iter()
            .map(|i| api::EvidenceItem {
                referrer: i.referrer.to_string(),
                predicate_type: i.predicate_type.clone(),
                status: if i.current.trusted { "trusted".to_owned() } else { "untrusted".to_owned() },
                current: verdict(&i.current),
                at_ingest: verdict(&i.at_ingest),
                created_at: time(i.created_at),
            })
            .collect(),
    }
}

pub fn log_entry(index: u64, data: &[u8]) -> api::LogEntry {
    api::LogEntry {
        index,
        leaf: STANDARD.encode(data),
        event: serde_json::from_slice(data).unwrap_or(serde_json::Value::Null),
    }
}

pub fn stages(stages: &airlock_core::Stages) -> Vec<api::StageInfo> {
    stages.iter().map(|s| api::StageInfo { name: s.name().to_string(), pushable: s.pushable() }).collect()
}

/// The policy input document as `GET …/policy-input` shows it: the engine's typed input,
/// serialized as the policy engine serializes it.
pub fn policy_input(input: &airlock_core::policy_input::Input) -> Result<api::PolicyInput, serde_json::Error> {
    serde_json::to_value(input).map(api::PolicyInput)
}
