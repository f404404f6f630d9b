//! `/api/v1/promotions`: request a promotion, approve or reject it, and read where it stands;
//! `/api/v1/release-key`, the public key release records verify with. Cedar decides who may ask
//! (`promote.request`, `promote.approve`, `promote.reject`); the engine in `core` decides the
//! rest and re-checks separation of duties itself.

use std::collections::BTreeMap;

use airlock_access::authz::{Action, Resource};
use airlock_api::v1 as api;
use airlock_core::ports::{PromotionFilter, PromotionRecord, PromotionStatus};
use airlock_core::promotion::{Caller as EngineCaller, PromoteRequest, PromotionError};
use airlock_model::{Digest, Reference, RepoName, StageName, Tag};
use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;

use crate::app::AppState;
use crate::caller::{Caller, CallerError, EngineAccess};
use crate::convert::to_api;
use crate::error::ApiError;
use crate::extract::{ApiCaller, ApiJson};
use crate::visibility::Visibility;

/// Most promotions one list returns.
pub const PROMOTIONS_PAGE_MAX: u32 = 500;
/// Most promotions one list reads to find those the caller may see: a caller who may see few
/// of many finds its own among this many newest.
pub const PROMOTIONS_SCAN_MAX: u32 = 5_000;

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

/// `POST /api/v1/promotions`.
#[utoipa::path(
    post,
    operation_id = "promotion_request",
    path = "/api/v1/promotions",
    tag = "promotions",
    request_body = api::PromotionRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Requested, with its first gate report", body = api::Promotion),
        (status = 200, description = "The same request was made already; that promotion", body = api::Promotion),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn request(
    State(app): State<AppState>,
    ApiCaller { caller, source, request_id }: ApiCaller,
    ApiJson(body): ApiJson<api::PromotionRequest>,
) -> Result<(StatusCode, Json<api::Promotion>), ApiError> {
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
    let target_repo = repo.in_stage(&target);
    let access = EngineAccess::promote_request(&app.callers, &caller, &target_repo, &source, &request_id);
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
    Ok((status, Json(to_api::promotion(&view))))
}

/// `POST /api/v1/promotions/{id}/approve`.
#[utoipa::path(
    post,
    operation_id = "promotion_approve",
    path = "/api/v1/promotions/{id}/approve",
    tag = "promotions",
    params(("id" = String, Path, description = "The promotion")),
    request_body = api::PromotionDecision,
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Promotion),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn approve(
    State(app): State<AppState>,
    Path(id): Path<String>,
    who: ApiCaller,
    ApiJson(body): ApiJson<api::PromotionDecision>,
) -> Result<Json<api::Promotion>, ApiError> {
    decide(app, id, who, body, Action::PromoteApprove).await
}

/// `POST /api/v1/promotions/{id}/reject`.
#[utoipa::path(
    post,
    operation_id = "promotion_reject",
    path = "/api/v1/promotions/{id}/reject",
    tag = "promotions",
    params(("id" = String, Path, description = "The promotion")),
    request_body = api::PromotionDecision,
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Promotion),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn reject(
    State(app): State<AppState>,
    Path(id): Path<String>,
    who: ApiCaller,
    ApiJson(body): ApiJson<api::PromotionDecision>,
) -> Result<Json<api::Promotion>, ApiError> {
    decide(app, id, who, body, Action::PromoteReject).await
}

async fn decide(
    app: AppState,
    id: String,
    ApiCaller { caller, source, request_id }: ApiCaller,
    body: api::PromotionDecision,
    action: Action,
) -> Result<Json<api::Promotion>, ApiError> {
    let current = app.promoter.get(&id).await?;
    // One the caller may not see is, to it, one that does not exist.
    if !Visibility::new(&app, &caller, &source).promotion(&current.record) {
        return Err(PromotionError::Unknown { id }.into());
    }
    let pusher =
        app.registry.store().pusher(&current.record.source, &current.record.digest).await.map_err(CallerError::from)?;
    let engine_caller = engine_caller(&app, &caller, &source, &request_id);
    let origin = match app.callers.has_custom_policies() {
        true => Some(
            app.promoter.origin(&current.record.source, &current.record.digest, current.record.target.stage()).await,
        ),
        false => None,
    };
    let seen = origin.as_ref().and_then(|o| o.as_ref().ok().cloned().flatten());
    let decided =
        app.callers.require_in(&caller, action, &resource(&current.record, pusher), &source, &request_id, seen).await;
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
    // An approval is decided on the artifact's origin, never past a failure to read it; a
    // rejection takes something away and needs none.
    if action == Action::PromoteApprove
        && let Some(Err(e)) = origin
    {
        return Err(e.into());
    }
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
    Ok(Json(to_api::promotion(&view)))
}

/// `GET /api/v1/promotions/{id}`: a promotion the caller may not see answers as a missing one.
#[utoipa::path(
    get,
    operation_id = "promotion_get",
    path = "/api/v1/promotions/{id}",
    tag = "promotions",
    params(("id" = String, Path, description = "The promotion")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Promotion),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn get(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiCaller { caller, source, .. }: ApiCaller,
) -> Result<Json<api::Promotion>, ApiError> {
    let view = app.promoter.get(&id).await?;
    if !Visibility::new(&app, &caller, &source).promotion(&view.record) {
        return Err(PromotionError::Unknown { id }.into());
    }
    Ok(Json(to_api::promotion(&view)))
}

/// `GET /api/v1/promotions[?status=pending&target=prod/app&digest=sha256:...&limit=50]`: the
/// newest `limit` promotions the caller may see, found among at most
/// [`PROMOTIONS_SCAN_MAX`] newest that match the filter.
#[utoipa::path(
    get,
    operation_id = "promotion_list",
    path = "/api/v1/promotions",
    tag = "promotions",
    params(("status" = Option<String>, Query, description = "pending, promoted, denied, rejected, expired or cancelled"), ("target" = Option<String>, Query, description = "The target repository, `prod/app`"), ("digest" = Option<String>, Query, description = "`sha256:<hex>`"), ("limit" = Option<u32>, Query, description = "1 to 500, 100 when left out")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest first; `report` is null and `approvals` empty", body = Vec<api::Promotion>),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    ApiCaller { caller, source, .. }: ApiCaller,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<Vec<api::Promotion>>, ApiError> {
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
    Ok(Json(records.into_iter().map(to_api::promotion_listed).collect()))
}

/// `GET /api/v1/release-key`: the public key release records are signed with, PEM.
#[utoipa::path(
    get,
    operation_id = "promotion_release_key",
    path = "/api/v1/release-key",
    tag = "promotions",
    responses(
        (status = 200, body = api::ReleaseKey),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn release_key(State(app): State<AppState>) -> Json<api::ReleaseKey> {
    Json(to_api::release_key(app.promoter.release_key()))
}
