//! `/api/v1/promotions`: request a promotion, approve or reject it, and read where it stands;
//! `/api/v1/release-key`, the public key release records verify with. Cedar decides who may ask
//! (`promote.request`, `promote.approve`, `promote.reject`); the engine in `core` decides the
//! rest and re-checks separation of duties itself.

use std::collections::BTreeMap;

use airlock_access::authz::{Action, Resource};
use airlock_access::token::TokenKind;
use airlock_core::ports::{ApprovalRecord, PromotionFilter, PromotionRecord, PromotionStatus};
use airlock_core::promotion::{Caller as EngineCaller, PromoteRequest, PromotionError, PromotionView};
use airlock_model::{Digest, Reference, RepoName, StageName, Tag};
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api_login::origin;
use crate::app::AppState;
use crate::caller::{Caller, CallerError, EngineAccess};
use crate::error::ApiError;
use crate::visibility::Visibility;

/// Most promotions one list returns.
pub const PROMOTIONS_PAGE_MAX: u32 = 500;
/// Most promotions one list reads to find those the caller may see: a caller who may see few
/// of many finds its own among this many newest.
pub const PROMOTIONS_SCAN_MAX: u32 = 5_000;

impl From<PromotionError> for ApiError {
    fn from(e: PromotionError) -> Self {
        let message = e.to_string();
        match e {
            PromotionError::Registry(e) => ApiError::Registry(e),
            PromotionError::Store(e) => ApiError::Internal(e.to_string()),
            PromotionError::Seal(detail) => ApiError::Internal(detail),
            PromotionError::Unknown { .. } => ApiError::NotFound(message),
            PromotionError::NotPromotable { .. }
            | PromotionError::WrongSource { .. }
            | PromotionError::NoApprovalNeeded { .. }
            | PromotionError::GraphTooLarge { .. } => ApiError::BadParameter {
                message,
                remediation: "see `airlock promote --help` and the stages in `GET /api/v1/system`".to_owned(),
            },
            PromotionError::ApprovalRefused { .. } => ApiError::Rejected {
                code: "APPROVAL_REFUSED",
                message,
                remediation: "ask another eligible approver; `airlock promotion show ID` lists what is missing"
                    .to_owned(),
            },
            PromotionError::NotPending { .. }
            | PromotionError::TagImmutable { .. }
            | PromotionError::Missing { .. } => {
                ApiError::Conflict { message, remediation: "show it with `airlock promotion show ID`".to_owned() }
            }
            PromotionError::Conflict { .. } => {
                ApiError::Conflict { message, remediation: "look at the current state and try again".to_owned() }
            }
            PromotionError::NotFound { .. } => ApiError::NotFound(message),
            PromotionError::Refused { .. } => ApiError::Rejected {
                code: "REFUSED",
                message,
                remediation: "see the command's `--help` for its rules".to_owned(),
            },
            PromotionError::PolicyUnavailable { message, remediation } => {
                ApiError::Rejected { code: "POLICY_UNTRUSTED", message, remediation }
            }
            PromotionError::Access(e) => ApiError::from(CallerError::from(e)),
        }
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    app: &AppState,
    request: Request,
    example: &str,
) -> Result<T, ApiError> {
    crate::extract::json(app, request.into_body(), crate::extract::Limit::Action, example).await
}

fn bad(message: String, remediation: &str) -> ApiError {
    ApiError::BadParameter { message, remediation: remediation.to_owned() }
}

/// The engine's view of an authenticated caller, with the freshness of its second factor.
pub(crate) fn engine_caller(app: &AppState, caller: &Caller, source: &str, request_id: &str) -> EngineCaller {
    EngineCaller {
        principal: caller.id.clone(),
        kind: caller.kind,
        actor: caller.actor(request_id),
        mfa_fresh: app.callers.context_for(caller, source).mfa_fresh,
    }
}

fn resource(record: &PromotionRecord, pusher: Option<String>) -> Resource {
    Resource::Promotion {
        id: record.id.clone(),
        repository: record.target.path().to_owned(),
        stage: record.target.stage().to_string(),
        requester_id: record.requester.clone(),
        pushers: pusher.into_iter().collect(),
    }
}

/// The promotion as the API shows it.
pub fn view_json(view: &PromotionView) -> Value {
    let r = &view.record;
    json!({
        "id": r.id,
        "status": r.status.as_str(),
        "source": r.source.as_str(),
        "target": r.target.as_str(),
        "digest": r.digest.as_str(),
        "tag": r.tag.as_ref().map(Tag::as_str),
        "requester": r.requester,
        "reason": r.reason,
        "policy_digest": r.policy_digest,
        "evidence_digest": r.evidence_digest,
        "created_at": r.created_at.to_rfc3339(),
        "updated_at": r.updated_at.to_rfc3339(),
        "closed_reason": r.closed_reason,
        "release_record": r.release_digest.as_ref().map(Digest::as_str),
        "log_index": r.log_index,
        "break_glass": r.break_glass,
        "report": view.report,
        "approvals": view.approvals.iter().map(approval_json).collect::<Vec<_>>(),
        "created": view.created,
    })
}

fn approval_json(a: &ApprovalRecord) -> Value {
    json!({
        "approver": a.approver,
        "comment": a.comment,
        "created_at": a.created_at.to_rfc3339(),
        "expires_at": a.expires_at.to_rfc3339(),
        "policy_digest": a.policy_digest,
        "evidence_digest": a.evidence_digest,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    /// `dev/app`.
    repository: String,
    /// A tag or a digest in that repository.
    reference: String,
    /// The target stage.
    to: String,
    /// The tag to set in the target repository.
    tag: Option<String>,
    #[serde(default)]
    reason: String,
    /// The break-glass procedure (needs the `break-glass` role and a reason).
    #[serde(default)]
    break_glass: bool,
}

const REQUEST_EXAMPLE: &str = r#"{"repository": "dev/app", "reference": "sha256:<hex>", "to": "staging", "tag": "1.4.2", "reason": "release 1.4.2"}"#;

/// `POST /api/v1/promotions`.
pub async fn request(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let caller = app.callers.caller(request.headers(), TokenKind::Api, None).await?;
    let body: RequestBody = read_json(&app, request, REQUEST_EXAMPLE).await?;
    let repo = RepoName::parse(&body.repository)
        .map_err(|e| bad(format!("`repository`: {e}"), "name the repository as `<stage>/<path>`, `dev/app`"))?;
    let reference = Reference::parse(&body.reference)
        .map_err(|e| bad(format!("`reference`: {e}"), "give a tag (`1.4.2`) or a digest (`sha256:<hex>`)"))?;
    let target = StageName::parse(&body.to).map_err(|e| bad(format!("`to`: {e}"), "name a stage, `staging`"))?;
    let tag = body
        .tag
        .as_deref()
        .map(Tag::parse)
        .transpose()
        .map_err(|e| bad(format!("`tag`: {e}"), "use a tag like `1.4.2`"))?;
    // Access is decided by the engine, on the digest it resolves for this promotion.
    let access = EngineAccess {
        service: &app.callers,
        caller: &caller,
        action: Action::PromoteRequest,
        resource: Resource::Promotion {
            id: String::new(),
            repository: repo.in_stage(&target).path().to_owned(),
            stage: target.to_string(),
            requester_id: caller.id.to_string(),
            pushers: Vec::new(),
        },
        source: &source,
        request_id: &request_id,
    };
    let engine_caller = engine_caller(&app, &caller, &source, &request_id);
    let view = app
        .promoter
        .request(
            &engine_caller,
            &access,
            &PromoteRequest {
                source: repo,
                reference,
                target,
                tag,
                reason: body.reason,
                break_glass: body.break_glass,
            },
        )
        .await?;
    let status = if view.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view_json(&view))).into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reason: String,
}

/// `POST /api/v1/promotions/{id}/approve`.
pub async fn approve(
    State(app): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    decide(app, id, request, Action::PromoteApprove).await
}

/// `POST /api/v1/promotions/{id}/reject`.
pub async fn reject(
    State(app): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    decide(app, id, request, Action::PromoteReject).await
}

async fn decide(app: AppState, id: String, request: Request, action: Action) -> Result<Response, ApiError> {
    let (source, request_id) = origin(&request);
    let caller = app.callers.caller(request.headers(), TokenKind::Api, None).await?;
    let body: DecisionBody = read_json(&app, request, r#"{"comment": "looks good"} or {"reason": "..."}"#).await?;
    let current = app.promoter.get(&id).await?;
    // One the caller may not see is, to it, one that does not exist.
    if !Visibility::new(&app, &caller, &source).promotion(&current.record) {
        return Err(PromotionError::Unknown { id }.into());
    }
    let pusher =
        app.registry.store().pusher(&current.record.source, &current.record.digest).await.map_err(CallerError::from)?;
    let engine_caller = engine_caller(&app, &caller, &source, &request_id);
    let origin = match app.callers.has_custom_policies() {
        true => app
            .promoter
            .origin(&current.record.source, &current.record.digest, current.record.target.stage())
            .await
            .ok()
            .flatten(),
        false => None,
    };
    let decided =
        app.callers.require_in(&caller, action, &resource(&current.record, pusher), &source, &request_id, origin).await;
    decided.map_err(|e| {
        match e {
            CallerError::Denied(message) if action == Action::PromoteApprove && !engine_caller.mfa_fresh => {
                CallerError::Denied(format!(
                    "{message}; approving needs a second factor verified recently: run `airlock login URL --otp CODE` and approve again"
                ))
            }
            other => other,
        }
    })?;
    let view = if action == Action::PromoteApprove {
        app.promoter.approve(&engine_caller, &id, &body.comment).await?
    } else {
        if body.reason.trim().is_empty() {
            return Err(bad(
                "a rejection needs a `reason`".to_owned(),
                r#"send `{"reason": "CVE-2026-1234 is exploitable here"}`"#,
            ));
        }
        app.promoter.reject(&engine_caller, &id, &body.reason).await?
    };
    Ok(Json(view_json(&view)).into_response())
}

/// `GET /api/v1/promotions/{id}`: a promotion the caller may not see answers as a missing one.
pub async fn get(State(app): State<AppState>, Path(id): Path<String>, request: Request) -> Result<Response, ApiError> {
    let (source, _) = origin(&request);
    let caller = app.callers.caller(request.headers(), TokenKind::Api, None).await?;
    let view = app.promoter.get(&id).await?;
    if !Visibility::new(&app, &caller, &source).promotion(&view.record) {
        return Err(PromotionError::Unknown { id }.into());
    }
    Ok(Json(view_json(&view)).into_response())
}

/// `GET /api/v1/promotions[?status=pending&target=prod/app&digest=sha256:...&limit=50]`: the
/// newest `limit` promotions the caller may see, found among at most
/// [`PROMOTIONS_SCAN_MAX`] newest that match the filter.
pub async fn list(
    State(app): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
    request: Request,
) -> Result<Response, ApiError> {
    let (source, _) = origin(&request);
    let caller = app.callers.caller(request.headers(), TokenKind::Api, None).await?;
    let status = query
        .get("status")
        .map(|s| {
            PromotionStatus::parse(s).ok_or_else(|| {
                bad(
                    format!("`status` `{}` is not a promotion status", airlock_model::echo::echo(s)),
                    "use pending, promoted, denied, rejected, expired or cancelled",
                )
            })
        })
        .transpose()?;
    let target = query
        .get("target")
        .map(|t| RepoName::parse(t).map_err(|e| bad(format!("`target`: {e}"), "name a repository, `prod/app`")))
        .transpose()?;
    let digest = query
        .get("digest")
        .map(|d| Digest::parse(d).map_err(|e| bad(format!("`digest`: {e}"), "give a `sha256:<hex>` digest")))
        .transpose()?;
    let limit = match query.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=PROMOTIONS_PAGE_MAX).contains(n))
            .ok_or_else(|| bad(format!("`limit` must be 1 to {PROMOTIONS_PAGE_MAX}"), "pass `?limit=50`"))?,
    };
    // Hidden promotions are left out; the scan widens until `limit` visible ones are found,
    // the store has no more, or the bound is reached.
    let mut visibility = Visibility::new(&app, &caller, &source);
    let mut scan = limit;
    let records = loop {
        let filter = PromotionFilter { status, target: target.clone(), digest: digest.clone(), limit: scan };
        let found = app.promoter.list(&filter).await?;
        let exhausted = found.len() < scan as usize || scan >= PROMOTIONS_SCAN_MAX;
        let visible: Vec<PromotionRecord> =
            found.into_iter().filter(|r| visibility.promotion(r)).take(limit as usize).collect();
        if visible.len() >= limit as usize || exhausted {
            break visible;
        }
        scan = scan.saturating_mul(4).min(PROMOTIONS_SCAN_MAX);
    };
    let views: Vec<Value> = records
        .into_iter()
        .map(|record| view_json(&PromotionView { report: Value::Null, approvals: Vec::new(), created: true, record }))
        .collect();
    Ok(Json(views).into_response())
}

/// `GET /api/v1/release-key`: the public key release records are signed with, PEM.
pub async fn release_key(State(app): State<AppState>) -> Response {
    let key = app.promoter.release_key();
    Json(json!({"keyid": key.keyid().as_str(), "pem": key.to_pem()})).into_response()
}

/// `GET /api/v1/artifacts/{repo}/{digest}/promotions`: whether `digest` was promoted into
/// `repo`, each promotion with its signed release record and summary (base64 DSSE envelopes,
/// for clients to verify with their own copy of the release key) and the server's own check.
pub fn history_json(
    app: &AppState,
    repo: &RepoName,
    digest: &Digest,
    proofs: &[airlock_core::promotion::history::ReleaseProof],
) -> Value {
    use base64::Engine as _;
    let b64 = |b: &Option<bytes::Bytes>| b.as_ref().map(|b| base64::engine::general_purpose::STANDARD.encode(b));
    let promoted = proofs.iter().any(|p| p.verified.is_ok());
    let reason = if promoted {
        None
    } else if proofs.is_empty() {
        Some(format!("`{digest}` was never promoted into `{repo}`"))
    } else {
        proofs.iter().find_map(|p| p.verified.as_ref().err().cloned())
    };
    let key = app.promoter.release_key();
    json!({
        "repository": repo.as_str(),
        "stage": repo.stage().as_str(),
        "digest": digest.as_str(),
        "promoted": promoted,
        "reason": reason,
        "release_key": {"keyid": key.keyid().as_str()},
        "promotions": proofs.iter().map(|p| json!({
            "id": p.promotion.id,
            "source": p.promotion.source.as_str(),
            "tag": p.promotion.tag.as_ref().map(Tag::as_str),
            "requester": p.promotion.requester,
            "promoted_at": p.promotion.updated_at.to_rfc3339(),
            "log_index": p.promotion.log_index,
            "release_record": p.promotion.release_digest.as_ref().map(Digest::as_str),
            "summary": p.promotion.summary_digest.as_ref().map(Digest::as_str),
            "record_envelope": b64(&p.record),
            "summary_envelope": b64(&p.summary),
            "verified": p.verified.is_ok(),
            "reason": p.verified.as_ref().err(),
        })).collect::<Vec<_>>(),
    })
}
