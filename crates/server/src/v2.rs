//! The OCI distribution API under `/v2/`: one dispatcher over the parsed [`Route`].

use std::collections::BTreeMap;

use airlock_api::oci::{Catalog, Descriptor, ImageIndex, TagList};
use airlock_core::audit::{Actor, Subject};
use airlock_core::ports::ByteStream;
use airlock_core::{BlobBody, ByteRange, RegistryError};
use airlock_model::manifest::OCI_INDEX;
use airlock_model::{Digest, Reference, RepoName, UploadId};
use axum::Json;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::app::AppState;
use crate::body;
use crate::caller::{Caller, CallerError};
use crate::error::{RequestError, ServerError};
use crate::metrics::RouteLabel;
use crate::route::{self, Route};
use airlock_access::scope::{RepoAction, Scope};
use airlock_access::token::TokenKind;

const DIGEST_HEADER: &str = "docker-content-digest";
const UPLOAD_UUID: &str = "docker-upload-uuid";
const API_VERSION: &str = "docker-distribution-api-version";
/// The transparency log index of the event a write recorded.
const LOG_INDEX: &str = "airlock-log-index";

type Result<T, E = ServerError> = std::result::Result<T, E>;

/// Entry point for every `/v2` request.
pub async fn dispatch(State(app): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let rest = if path == "/v2" { Some("") } else { path.strip_prefix("/v2/") };
    let parsed = match rest {
        Some(rest) => route::parse(rest),
        None => Err(RequestError::NotFound { path: path.chars().take(200).collect() }),
    };
    let label = parsed.as_ref().map_or("invalid", Route::label);
    let client = crate::client_addr::of(request.extensions());
    let request_id =
        request.extensions().get::<crate::telemetry::RequestId>().map_or_else(String::new, |r| r.0.clone());
    let mut response = match parsed {
        Ok(route) => match authorize(&app, &route, request.method(), request.headers(), &client, &request_id).await {
            Ok(caller) => {
                let actor = caller.actor(&request_id);
                handle(&app, &client, &actor, &caller, route, request).await.unwrap_or_else(IntoResponse::into_response)
            }
            Err(e) => e.into_response(),
        },
        Err(e) => ServerError::from(e).into_response(),
    };
    response.extensions_mut().insert(RouteLabel(label));
    response.headers_mut().insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

/// The repository action a request needs, if it names a repository.
fn needs(route: &Route, method: &Method) -> Option<(RepoName, RepoAction)> {
    let action = match *method {
        Method::GET | Method::HEAD => RepoAction::Pull,
        Method::DELETE if !matches!(route, Route::Upload(..)) => RepoAction::Delete,
        _ => RepoAction::Push,
    };
    match route {
        Route::Base | Route::Catalog => None,
        Route::Tags(repo) | Route::Manifest(repo, _) | Route::Blob(repo, _) | Route::Referrers(repo, _) => {
            Some((repo.clone(), action))
        }
        // Every upload request, even a status `GET`, is part of pushing.
        Route::UploadStart(repo) | Route::Upload(repo, _) => Some((repo.clone(), RepoAction::Push)),
    }
}

/// The caller, if its registry token grants what the request needs. `/v2/` and the catalog
/// need only a valid token; the catalog then lists what the caller may pull.
async fn authorize(
    app: &AppState,
    route: &Route,
    method: &Method,
    headers: &HeaderMap,
    client: &str,
    request_id: &str,
) -> Result<Caller> {
    let need = needs(route, method);
    // An unknown stage is a naming mistake, said as such to anyone: the stages are no secret.
    if let Some((repo, _)) = &need {
        app.registry.stage_of(repo)?;
    }
    let scope = match (&need, route) {
        (Some((repo, action)), _) => Some(Scope::repository(repo.clone(), [*action]).to_string()),
        (None, Route::Catalog) => Some(Scope::Catalog.to_string()),
        (None, _) => None,
    };
    // A write refused for want of a token (or of its scope) is on record, like every refusal.
    let write = need.as_ref().filter(|_| !matches!(*method, Method::GET | Method::HEAD));
    let caller = match app.callers.caller(headers, TokenKind::Registry, scope.as_deref()).await {
        Ok(caller) => caller,
        Err(e) => {
            if let Some((repo, _)) = write {
                let reason = match &e {
                    CallerError::Missing { .. } => "no registry token".to_owned(),
                    _ => "the registry token does not verify".to_owned(),
                };
                let action = write_action(route, method);
                app.callers.log_write_refused(None, repo, action, reason, client, request_id).await?;
            }
            return Err(e.into());
        }
    };
    // The token must name the access, and the caller's roles in force now must still allow it:
    // an expired elevation or a revoked role ends access at once, not when the token expires.
    // A token naming access its holder does not have (any more) is logged.
    if let (Some((repo, action)), Some(scope)) = (&need, &scope)
        && caller.may(repo, *action)
        && !app.callers.still_allowed(&caller, repo, *action, client)
    {
        app.callers.log_denied(&caller, repo, *action, request_id).await?;
        return Err(CallerError::InsufficientScope {
            scope: scope.clone(),
            challenge: app.callers.challenge(Some(scope), Some("insufficient_scope")),
        }
        .into());
    }
    if let (Some((repo, action)), Some(scope)) = (&need, &scope)
        && !caller.may(repo, *action)
    {
        if write.is_some() {
            let reason = format!("the registry token does not grant `{scope}`");
            let action = write_action(route, method);
            app.callers.log_write_refused(Some(&caller), repo, action, reason, client, request_id).await?;
        }
        return Err(CallerError::InsufficientScope {
            scope: scope.clone(),
            challenge: app.callers.challenge(Some(scope), Some("insufficient_scope")),
        }
        .into());
    }
    Ok(caller)
}

/// The logged name of a write, as `registry.write.denied` names it.
fn write_action(route: &Route, method: &Method) -> &'static str {
    match (route, method) {
        (Route::Manifest(_, airlock_model::Reference::Tag(_)), &Method::DELETE) => "tag.delete",
        (Route::Manifest(..), &Method::DELETE) => "manifest.delete",
        (Route::Manifest(..), _) => "manifest.put",
        (Route::Blob(..), _) => "blob.delete",
        _ => "blob.upload",
    }
}

fn not_allowed(method: &Method, route: &Route) -> ServerError {
    RequestError::MethodNotAllowed { method: method.to_string(), path: route.label().to_owned() }.into()
}

async fn handle(
    app: &AppState,
    client: &str,
    actor: &Actor,
    caller: &Caller,
    route: Route,
    request: Request,
) -> Result<Response> {
    let method = request.method().clone();
    match (&method, route) {
        (&Method::GET | &Method::HEAD, Route::Base) => Ok(Json(serde_json::json!({})).into_response()),
        (&Method::GET, Route::Catalog) => catalog(app, caller, client, query(&request)?).await,
        (&Method::GET, Route::Tags(repo)) => tags(app, &repo, query(&request)?).await,
        (&Method::GET | &Method::HEAD, Route::Manifest(repo, reference)) => {
            get_manifest(app, &repo, &reference, method == Method::HEAD).await
        }
        (&Method::PUT, Route::Manifest(repo, reference)) => put_manifest(app, actor, &repo, &reference, request).await,
        (&Method::DELETE, Route::Manifest(repo, reference)) => {
            app.registry.delete_manifest(actor, &repo, &reference).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (&Method::GET | &Method::HEAD, Route::Blob(repo, digest)) => {
            let range = if method == Method::HEAD { None } else { parse_range(request.headers())? };
            get_blob(app, &repo, &digest, range, method == Method::HEAD).await
        }
        (&Method::DELETE, Route::Blob(repo, digest)) => {
            app.registry.delete_blob(actor, &repo, &digest).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (&Method::POST, Route::UploadStart(repo)) => start_upload(app, client, actor, caller, &repo, request).await,
        (&Method::GET, Route::Upload(repo, id)) => {
            let size = app.registry.upload_status(actor, &repo, &id).await?;
            Ok(upload_response(StatusCode::NO_CONTENT, &repo, &id, size))
        }
        (&Method::PATCH, Route::Upload(repo, id)) => patch_upload(app, actor, &repo, &id, request).await,
        (&Method::PUT, Route::Upload(repo, id)) => put_upload(app, actor, &repo, &id, request).await,
        (&Method::DELETE, Route::Upload(repo, id)) => {
            app.registry.cancel_upload(actor, &repo, &id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (&Method::GET, Route::Referrers(repo, digest)) => referrers(app, &repo, &digest, query(&request)?).await,
        (method, route) => Err(not_allowed(method, &route)),
    }
}

fn header_value(text: &str) -> HeaderValue {
    // Every value built here is ASCII from validated names, digests and numbers.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn query(request: &Request) -> Result<BTreeMap<String, String>> {
    Query::<BTreeMap<String, String>>::try_from_uri(request.uri())
        .map(|q| q.0)
        .map_err(|e| RequestError::PaginationInvalid(format!("query string is malformed: {e}")).into())
}

/// `n` and `last` of a paginated list.
fn pagination(query: &BTreeMap<String, String>) -> Result<(Option<u32>, Option<String>)> {
    let n = match query.get("n") {
        None => None,
        Some(text) => Some(text.parse::<u32>().map_err(|_| {
            RequestError::PaginationInvalid(format!(
                "page size `n={}` is not a whole number from 0 to {}",
                text.chars().take(40).flat_map(char::escape_default).collect::<String>(),
                u32::MAX
            ))
        })?),
    };
    Ok((n, query.get("last").cloned()))
}

fn next_link(response: &mut Response, base: &str, n: u32, last: Option<&String>) {
    if let Some(last) = last {
        let link = format!("<{base}?n={n}&last={last}>; rel=\"next\"");
        response.headers_mut().insert(header::LINK, header_value(&link));
    }
}

async fn catalog(app: &AppState, caller: &Caller, client: &str, query: BTreeMap<String, String>) -> Result<Response> {
    let (n, last) = pagination(&query)?;
    let page = app.registry.page_size(n);
    let repositories = app.registry.catalog(last.as_deref(), n).await?;
    let full = page > 0 && repositories.len() == page as usize;
    let last = if full { repositories.last().cloned() } else { None };
    // Only what the caller may pull is listed; a page may come back shorter than `n`.
    let record = app.callers.identity().principal(&caller.id).await.map_err(CallerError::from)?;
    let repositories = repositories
        .into_iter()
        .filter(|name| {
            RepoName::parse(name).is_ok_and(|repo| {
                record
                    .as_ref()
                    .is_some_and(|r| app.callers.allowed_actions(r, &repo, client).contains(&RepoAction::Pull))
            })
        })
        .collect();
    let mut response = Json(Catalog { repositories }).into_response();
    next_link(&mut response, "/v2/_catalog", page, last.as_ref());
    Ok(response)
}

async fn tags(app: &AppState, repo: &RepoName, query: BTreeMap<String, String>) -> Result<Response> {
    let (n, last) = pagination(&query)?;
    let page = app.registry.page_size(n);
    let tags = app.registry.tags(repo, last.as_deref(), n).await?;
    let full = page > 0 && tags.len() == page as usize;
    let last = if full { tags.last().cloned() } else { None };
    let mut response = Json(TagList { name: repo.to_string(), tags }).into_response();
    next_link(&mut response, &format!("/v2/{repo}/tags/list"), page, last.as_ref());
    Ok(response)
}

async fn get_manifest(app: &AppState, repo: &RepoName, reference: &Reference, head: bool) -> Result<Response> {
    let manifest = app.registry.get_manifest(repo, reference).await?;
    let len = manifest.body.len();
    let body = if head { Body::empty() } else { Body::from(manifest.body) };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header_value(&manifest.media_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(DIGEST_HEADER, header_value(manifest.digest.as_str()));
    Ok(response)
}

async fn put_manifest(
    app: &AppState,
    actor: &Actor,
    repo: &RepoName,
    reference: &Reference,
    request: Request,
) -> Result<Response> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let max = app.registry.limits().manifest.max_bytes;
    if declared_length(request.headers())?.is_some_and(|len| len > max as u64) {
        return Err(RequestError::ManifestTooLarge { max }.into());
    }
    // Refuse (and log the refusal) before reading a byte when the repository cannot take writes.
    let subject = match reference {
        Reference::Tag(t) => Subject { tag: Some(t.clone()), ..Subject::default() },
        Reference::Digest(d) => Subject { digest: Some(d.clone()), ..Subject::default() },
    };
    app.registry.ensure_pushable(actor, repo, "manifest.put", subject).await?;
    let stream = body::guarded(request.into_body(), app.body, app.metrics.clone());
    let bytes = body::collect(stream, max).await.map_err(body_error)?.ok_or(RequestError::ManifestTooLarge { max })?;
    let stored = app.registry.put_manifest(actor, repo, reference, content_type.as_deref(), bytes).await?;
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, header_value(&format!("/v2/{repo}/manifests/{}", stored.digest)));
    headers.insert(DIGEST_HEADER, header_value(stored.digest.as_str()));
    headers.insert(LOG_INDEX, HeaderValue::from(stored.log_index));
    if let Some(subject) = stored.subject {
        headers.insert("oci-subject", header_value(subject.as_str()));
    }
    Ok(response)
}

fn body_error(e: std::io::Error) -> ServerError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        RequestError::BodyTimeout(e.to_string()).into()
    } else {
        RequestError::Body(e.to_string()).into()
    }
}

/// Parses `Range: bytes=...`; only single ranges are supported.
fn parse_range(headers: &HeaderMap) -> Result<Option<ByteRange>> {
    let Some(value) = headers.get(header::RANGE) else { return Ok(None) };
    let invalid = || {
        RequestError::RangeInvalid(format!(
            "range `{}` is not a single `bytes=a-b` range",
            value.to_str().unwrap_or("?")
        ))
    };
    let text = value.to_str().map_err(|_| invalid())?;
    let spec = text.strip_prefix("bytes=").ok_or_else(invalid)?;
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| invalid());
    let range = match (a.trim().is_empty(), b.trim().is_empty()) {
        (false, false) => ByteRange::Inclusive(num(a)?, num(b)?),
        (false, true) => ByteRange::From(num(a)?),
        (true, false) => ByteRange::Suffix(num(b)?),
        (true, true) => return Err(invalid().into()),
    };
    Ok(Some(range))
}

async fn get_blob(
    app: &AppState,
    repo: &RepoName,
    digest: &Digest,
    requested: Option<ByteRange>,
    head: bool,
) -> Result<Response> {
    let read = if head {
        let record = app.registry.stat_blob(repo, digest).await?;
        (record, None, BlobBody::Inline(bytes::Bytes::new()))
    } else {
        match app.registry.read_blob(repo, digest, requested).await {
            Err(RegistryError::RangeNotSatisfiable { range, size }) => {
                let mut response =
                    ServerError::from(RegistryError::RangeNotSatisfiable { range, size }).into_response();
                response.headers_mut().insert(header::CONTENT_RANGE, header_value(&format!("bytes */{size}")));
                return Ok(response);
            }
            other => other?,
        }
    };
    let (record, range, body) = read;
    let (status, len) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end.saturating_sub(r.start)),
        None => (StatusCode::OK, record.size),
    };
    let body = match body {
        _ if head => Body::empty(),
        BlobBody::Inline(bytes) => Body::from(bytes),
        BlobBody::Stream(stream) => Body::from_stream(stream),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(DIGEST_HEADER, header_value(digest.as_str()));
    if let Some(r) = range {
        let content_range = format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), record.size);
        h.insert(header::CONTENT_RANGE, header_value(&content_range));
    }
    Ok(response)
}

fn upload_response(status: StatusCode, repo: &RepoName, id: &UploadId, size: u64) -> Response {
    let mut response = status.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, header_value(&format!("/v2/{repo}/blobs/uploads/{id}")));
    // The spec's `Range` is inclusive; an empty upload reports `0-0`.
    h.insert(header::RANGE, header_value(&format!("0-{}", size.saturating_sub(1))));
    h.insert(UPLOAD_UUID, header_value(id.as_str()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

fn blob_created(repo: &RepoName, digest: &Digest) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, header_value(&format!("/v2/{repo}/blobs/{digest}")));
    h.insert(DIGEST_HEADER, header_value(digest.as_str()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

fn new_upload_id() -> Result<UploadId> {
    // A v4 UUID's hyphenated form always satisfies the upload id grammar; the error arm is
    // there so that a broken invariant is a 500, never a panic.
    let text = uuid::Uuid::new_v4().hyphenated().to_string();
    UploadId::parse(&text).map_err(|e| RequestError::Internal(e.to_string()).into())
}

fn declared_length(headers: &HeaderMap) -> Result<Option<u64>> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| RequestError::SizeInvalid("`Content-Length` is not a number".to_owned()).into()),
    }
}

fn has_body(headers: &HeaderMap) -> Result<bool> {
    Ok(headers.contains_key(header::TRANSFER_ENCODING) || declared_length(headers)?.is_some_and(|n| n > 0))
}

fn digest_param(query: &BTreeMap<String, String>, key: &str) -> Result<Option<Digest>> {
    query.get(key).map(|d| Digest::parse(d).map_err(|e| RequestError::DigestInvalid(e.to_string()).into())).transpose()
}

async fn start_upload(
    app: &AppState,
    client: &str,
    actor: &Actor,
    caller: &Caller,
    repo: &RepoName,
    request: Request,
) -> Result<Response> {
    let query = query(&request)?;
    app.registry.ensure_pushable(actor, repo, "blob.upload", Subject::default()).await?;
    if let (Some(mount), Some(from)) = (digest_param(&query, "mount")?, query.get("from")) {
        let from = RepoName::parse(from).map_err(|e| RequestError::NameInvalid(e.to_string()))?;
        // Mounting reads the source: without pull there, it is a plain upload, and the caller
        // learns nothing about what the source holds.
        if caller.may(&from, RepoAction::Pull) && app.registry.mount_blob(actor, repo, &from, &mount).await? {
            return Ok(blob_created(repo, &mount));
        }
        // Not mountable: fall back to a regular upload session, as the spec asks.
    }
    let digest = digest_param(&query, "digest")?;
    let length = declared_length(request.headers())?;
    let inline_max = app.registry.limits().inline_blob_max;
    match digest {
        Some(digest) if length.is_some_and(|n| n <= inline_max) => {
            let max = usize::try_from(inline_max).unwrap_or(usize::MAX);
            let stream = body::guarded(request.into_body(), app.body, app.metrics.clone());
            let bytes = body::collect(stream, max)
                .await
                .map_err(body_error)?
                .ok_or_else(|| RequestError::SizeInvalid("body is longer than its `Content-Length`".to_owned()))?;
            app.registry.put_small_blob(actor, repo, &digest, bytes).await?;
            Ok(blob_created(repo, &digest))
        }
        Some(digest) => {
            let id = app.registry.start_upload(actor, repo, new_upload_id()?, client).await?;
            let stream = body::guarded(request.into_body(), app.body, app.metrics.clone());
            let finished = app.registry.finish_upload(actor, repo, &id, &digest, Some(stream)).await;
            if finished.is_err() {
                // The session is single-use; never leave it open after a failed monolithic push.
                let _ = app.registry.cancel_upload(actor, repo, &id).await;
            }
            finished?;
            Ok(blob_created(repo, &digest))
        }
        None => {
            let id = app.registry.start_upload(actor, repo, new_upload_id()?, client).await?;
            Ok(upload_response(StatusCode::ACCEPTED, repo, &id, 0))
        }
    }
}

/// Parses `Content-Range: <start>-<end>` (inclusive), with or without a `bytes ` prefix.
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else { return Ok(None) };
    let invalid = || RequestError::UploadInvalid("`Content-Range` must be `<start>-<end>`".to_owned());
    let text = value.to_str().map_err(|_| invalid())?;
    let text = text.strip_prefix("bytes ").unwrap_or(text);
    let text = text.split('/').next().unwrap_or_default();
    let (a, b) = text.split_once('-').ok_or_else(invalid)?;
    let a = a.trim().parse::<u64>().map_err(|_| invalid())?;
    let b = b.trim().parse::<u64>().map_err(|_| invalid())?;
    if b < a {
        return Err(invalid().into());
    }
    Ok(Some((a, b)))
}

async fn patch_upload(
    app: &AppState,
    actor: &Actor,
    repo: &RepoName,
    id: &UploadId,
    request: Request,
) -> Result<Response> {
    let range = content_range(request.headers())?;
    if let (Some((a, b)), Some(len)) = (range, declared_length(request.headers())?)
        && b.saturating_sub(a).saturating_add(1) != len
    {
        return Err(RequestError::SizeInvalid(format!(
            "`Content-Range` {a}-{b} does not match `Content-Length` {len}"
        ))
        .into());
    }
    let stream: ByteStream = body::guarded(request.into_body(), app.body, app.metrics.clone());
    match app.registry.append_upload(actor, repo, id, range.map(|r| r.0), stream).await {
        Ok(size) => Ok(upload_response(StatusCode::ACCEPTED, repo, id, size)),
        Err(RegistryError::OutOfOrder(e)) => {
            // 416 with the session's true state, so the client can resume where it really is.
            let size = app.registry.upload_status(actor, repo, id).await?;
            let mut response = ServerError::from(RegistryError::OutOfOrder(e)).into_response();
            let status = upload_response(StatusCode::RANGE_NOT_SATISFIABLE, repo, id, size);
            for name in [header::LOCATION, header::RANGE] {
                if let Some(v) = status.headers().get(&name) {
                    response.headers_mut().insert(name, v.clone());
                }
            }
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

async fn put_upload(
    app: &AppState,
    actor: &Actor,
    repo: &RepoName,
    id: &UploadId,
    request: Request,
) -> Result<Response> {
    let query = query(&request)?;
    let digest = digest_param(&query, "digest")?
        .ok_or_else(|| RequestError::DigestInvalid("closing an upload needs `?digest=sha256:<hex>`".to_owned()))?;
    let inline_max = app.registry.limits().inline_blob_max;
    let length = declared_length(request.headers())?;
    if let Some(len) = length.filter(|n| *n > 0 && *n <= inline_max) {
        // A short last chunk is read into memory; small blobs then never touch a file.
        let stream = body::guarded(request.into_body(), app.body, app.metrics.clone());
        let max = usize::try_from(len).unwrap_or(usize::MAX);
        let bytes = body::collect(stream, max)
            .await
            .map_err(body_error)?
            .ok_or_else(|| RequestError::SizeInvalid("body is longer than its `Content-Length`".to_owned()))?;
        app.registry.finish_upload_small(actor, repo, id, &digest, bytes).await?;
        return Ok(blob_created(repo, &digest));
    }
    let last = if has_body(request.headers())? {
        Some(body::guarded(request.into_body(), app.body, app.metrics.clone()))
    } else {
        None
    };
    app.registry.finish_upload(actor, repo, id, &digest, last).await?;
    Ok(blob_created(repo, &digest))
}

async fn referrers(
    app: &AppState,
    repo: &RepoName,
    digest: &Digest,
    query: BTreeMap<String, String>,
) -> Result<Response> {
    let artifact_type = query.get("artifactType").map(String::as_str);
    let records = app.registry.referrers(repo, digest, artifact_type).await?;
    let manifests = records
        .into_iter()
        .map(|r| Descriptor {
            media_type: r.media_type,
            digest: r.digest.to_string(),
            size: r.size,
            artifact_type: r.artifact_type,
            annotations: serde_json::from_str(&r.annotations_json).unwrap_or_default(),
        })
        .collect();
    let index = ImageIndex { schema_version: 2, media_type: OCI_INDEX.to_owned(), manifests };
    let mut response = Json(index).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if artifact_type.is_some() {
        response.headers_mut().insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    Ok(response)
}
