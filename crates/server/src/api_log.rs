//! `/api/v1/log/*`: the transparency log's public read API. Everything an auditor needs to
//! verify the log offline comes through here and nowhere else.

use std::collections::BTreeMap;

use airlock_api::v1::{self as api, ConsistencyProof, InclusionProof, LogEntries};
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::header;

use crate::app::AppState;
use crate::convert::to_api;
use crate::error::ApiError;

fn number(query: &BTreeMap<String, String>, key: &str) -> Result<Option<u64>, ApiError> {
    query
        .get(key)
        .map(|v| {
            v.parse::<u64>().map_err(|_| ApiError::BadParameter {
                message: format!(
                    "`{key}` must be a whole number, got `{}`",
                    v.chars().take(40).flat_map(char::escape_default).collect::<String>()
                ),
                remediation: format!("pass `{key}` as a non-negative integer"),
            })
        })
        .transpose()
}

fn required(query: &BTreeMap<String, String>, key: &str) -> Result<u64, ApiError> {
    number(query, key)?.ok_or_else(|| ApiError::BadParameter {
        message: format!("`{key}` is required"),
        remediation: format!("add `?{key}=<n>` to the request"),
    })
}

/// `GET /api/v1/log/checkpoint`: the latest signed checkpoint as a signed note.
#[utoipa::path(
    get,
    operation_id = "log_checkpoint",
    path = "/api/v1/log/checkpoint",
    tag = "log",
    responses(
        (status = 200, description = "The latest signed checkpoint, a C2SP signed note", body = String, content_type = "text/plain"),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn checkpoint(State(app): State<AppState>) -> Result<Response, ApiError> {
    let latest = app.log.store_latest().await?;
    let Some(latest) = latest else {
        return Err(ApiError::NotFound("no checkpoint has been signed yet".to_owned()));
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], latest.note).into_response())
}

/// `GET /api/v1/log/key`: the verifier key in `name+hash+base64` form.
#[utoipa::path(
    get,
    operation_id = "log_key",
    path = "/api/v1/log/key",
    tag = "log",
    responses(
        (status = 200, description = "The verifier key, `name+hash+base64`", body = String, content_type = "text/plain"),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn key(State(app): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{}\n", app.log.verifier().to_vkey()))
        .into_response()
}

/// `GET /api/v1/log/entries?start=&end=`: at most `log.entries_page_max` entries.
#[utoipa::path(
    get,
    operation_id = "log_entries",
    path = "/api/v1/log/entries",
    tag = "log",
    params(("start" = Option<u64>, Query, description = "The first index, 0 when left out"), ("end" = Option<u64>, Query, description = "One past the last index; at most `log.entries_page_max` after `start`")),
    responses(
        (status = 200, body = api::LogEntries),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn entries(
    State(app): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<LogEntries>, ApiError> {
    let start = number(&query, "start")?.unwrap_or(0);
    let size = app.log.store_size().await?;
    let max = app.log_page_max;
    let end = number(&query, "end")?.unwrap_or(size).min(size).min(start.saturating_add(max));
    if start > size {
        return Err(ApiError::BadParameter {
            message: format!("`start` {start} is past the end of the log ({size} entries)"),
            remediation: "ask for a `start` below the log size in the latest checkpoint".to_owned(),
        });
    }
    let leaves = app.log.store_leaves(start, end).await?;
    let entries = leaves.into_iter().map(|leaf| to_api::log_entry(leaf.index, &leaf.data)).collect();
    Ok(Json(LogEntries { size, entries }))
}

/// `GET /api/v1/log/proof/inclusion?index=&size=`.
#[utoipa::path(
    get,
    operation_id = "log_inclusion",
    path = "/api/v1/log/proof/inclusion",
    tag = "log",
    params(("index" = u64, Query, description = "The entry"), ("size" = Option<u64>, Query, description = "The tree size, the log's when left out")),
    responses(
        (status = 200, body = api::InclusionProof),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn inclusion(
    State(app): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<InclusionProof>, ApiError> {
    let index = required(&query, "index")?;
    let current = app.log.store_size().await?;
    let size = number(&query, "size")?.unwrap_or(current);
    if size > current || index >= size {
        return Err(ApiError::BadParameter {
            message: format!("no inclusion proof for entry {index} in a tree of {size} (the log holds {current})"),
            remediation: "use an `index` below `size`, and a `size` no larger than the latest checkpoint's".to_owned(),
        });
    }
    let plan = airlock_tlog::inclusion_plan(index, size).map_err(|e| ApiError::Internal(e.to_string()))?;
    let hashes = app.log.assemble(&plan).await?;
    Ok(Json(InclusionProof { index, size, hashes: hashes.iter().map(|h| h.to_base64()).collect() }))
}

/// `GET /api/v1/log/proof/consistency?from=&to=`.
#[utoipa::path(
    get,
    operation_id = "log_consistency",
    path = "/api/v1/log/proof/consistency",
    tag = "log",
    params(("from" = u64, Query, description = "The older tree size, above 0"), ("to" = Option<u64>, Query, description = "The newer tree size, the log's when left out")),
    responses(
        (status = 200, body = api::ConsistencyProof),
        (status = "4XX", description = "Refused: the body says why and what to do next", body = api::ErrorBody),
    )
)]
pub async fn consistency(
    State(app): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let from = required(&query, "from")?;
    let current = app.log.store_size().await?;
    let to = number(&query, "to")?.unwrap_or(current);
    if from == 0 || from > to || to > current {
        return Err(ApiError::BadParameter {
            message: format!("no consistency proof from {from} to {to} (the log holds {current})"),
            remediation: "use 0 < `from` <= `to` <= the latest checkpoint's size".to_owned(),
        });
    }
    let plan = airlock_tlog::consistency_plan(from, to).map_err(|e| ApiError::Internal(e.to_string()))?;
    let hashes = app.log.assemble(&plan).await?;
    Ok(Json(ConsistencyProof { from, to, hashes: hashes.iter().map(|h| h.to_base64()).collect() }))
}
