//! Airlock's tokens: registry tokens for `/token`, API tokens, and the caller a bearer token
//! proves.

use std::path::Path;

use airlock_access::authz::Action;
use airlock_access::scope::{RepoAction, Scope};
use airlock_access::token::{self, Access, Claims, TokenKey, TokenKind};
use airlock_core::audit::{Actor, Event, EventKind, Outcome, Subject};
use airlock_core::ports::PrincipalRecord;
use airlock_model::pattern::RepoPattern;
use airlock_model::{PrincipalId, RepoName, Timestamp};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::HeaderMap;
use serde_json::json;

use super::{Caller, CallerError, CallerService, CallerStartError};

/// A registry token as `GET /token` returns it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub access_token: String,
    pub expires_in: u64,
    pub issued_at: String,
}

impl CallerService {
    /// allows, possibly empty. What was asked for and not granted is logged as a denial.
    pub async fn issue_registry_token(
        &self,
        record: &PrincipalRecord,
        limit: &[String],
        scopes: &[Scope],
        source: &str,
        request_id: &str,
    ) -> Result<IssuedToken, CallerError> {
        let (effective, grant_ends) = self.identity.in_force(record.clone()).await?;
        let record = &effective;
        let mut access = Vec::new();
        let mut refused = Vec::new();
        for scope in scopes {
            match scope {
                Scope::Repository { name, actions } => {
                    let allowed = self.allowed_actions(record, name, source);
                    let granted: Vec<String> = actions
                        .iter()
                        .filter(|a| allowed.contains(a) && within(limit, name, **a))
                        .map(|a| a.as_str().to_owned())
                        .collect();
                    if granted.len() < actions.len() {
                        refused.push(scope.to_string());
                    }
                    if !granted.is_empty() {
                        access.push(Access { kind: "repository".to_owned(), name: name.to_string(), actions: granted });
                    }
                }
                Scope::Catalog => access.push(Access {
                    kind: "registry".to_owned(),
                    name: "catalog".to_owned(),
                    actions: vec!["*".to_owned()],
                }),
            }
        }
        if !refused.is_empty() {
            let event = Event {
                kind: EventKind::AccessDenied,
                time: self.clock.now(),
                actor: Actor::authenticated(&record.id, record.kind, request_id),
                subject: Subject::default(),
                outcome: Outcome::Denied {
                    reasons: refused.iter().map(|s| format!("`{s}` not granted in full")).collect(),
                },
                details: Default::default(),
            }
            .with_detail("principal", json!(record.id.as_str()))
            .with_detail("action", json!("token"))
            .with_detail("resource", json!(refused));
            self.identity.log(&[event]).await?;
        }
        let now = self.now_secs();
        let mut ttl = self.config.registry_token_ttl_secs;
        // A token dies no later than the elevation it may rest on.
        if let Some(ends) = grant_ends {
            let ends = u64::try_from(ends.as_millis() / 1000).unwrap_or(0);
            ttl = ttl.min(ends.saturating_sub(now).max(1));
        }
        self.mint(record, TokenKind::Registry, now, ttl, |claims| claims.access = access)
    }

    /// Mints a token of `kind` for `record`, living `ttl` seconds from `now`; `fill` adds what
    /// only that kind carries.
    fn mint(
        &self,
        record: &PrincipalRecord,
        kind: TokenKind,
        now: u64,
        ttl: u64,
        fill: impl FnOnce(&mut Claims),
    ) -> Result<IssuedToken, CallerError> {
        let mut claims = Claims::new(
            self.issuer.clone(),
            self.config.service.clone(),
            record.id.to_string(),
            record.kind,
            record.epoch,
            kind,
            now,
        );
        claims.exp = now.saturating_add(ttl);
        fill(&mut claims);
        let token = token::mint(&self.key, &claims).map_err(|e| CallerError::Internal(e.to_string()))?;
        Ok(IssuedToken {
            access_token: token.clone(),
            token,
            expires_in: ttl,
            issued_at: Timestamp::from_millis(i64::try_from(now).unwrap_or(i64::MAX).saturating_mul(1000)).to_rfc3339(),
        })
    }

    /// Issues an API token for `record`.
    pub fn issue_api_token(&self, record: &PrincipalRecord, mfa_at: Option<u64>) -> Result<IssuedToken, CallerError> {
        self.mint(record, TokenKind::Api, self.now_secs(), self.config.api_token_ttl_secs, |claims| {
            claims.mfa_at = mfa_at
        })
    }

    /// The challenge for a request needing `scope` (none for `/v2/` itself).
    pub fn challenge(&self, scope: Option<&str>, error: Option<&str>) -> String {
        let mut out = format!("Bearer realm=\"{}\",service=\"{}\"", self.realm, self.config.service);
        if let Some(scope) = scope {
            out.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Some(error) = error {
            out.push_str(&format!(",error=\"{error}\""));
        }
        out
    }

    /// Verifies the bearer token of a request, of `kind`, against the principal's live epoch.
    /// `scope` is what the request needs, named in the challenge when it fails.
    pub async fn caller(
        &self,
        headers: &HeaderMap,
        kind: TokenKind,
        scope: Option<&str>,
    ) -> Result<Caller, CallerError> {
        let Some(token) = bearer(headers) else {
            return Err(CallerError::Missing { realm: self.realm.clone(), challenge: self.challenge(scope, None) });
        };
        let invalid = |reason: String| CallerError::InvalidToken {
            reason,
            challenge: self.challenge(scope, Some("invalid_token")),
        };
        // The subject picks whose epoch to compare; the signature is checked before anything
        // in the token is believed.
        let subject = unverified_subject(token)
            .ok_or_else(|| invalid("token is malformed; send the token exactly as it was issued".to_owned()))?;
        let found = match PrincipalId::parse(&subject) {
            // Read already in this request, with the cached-state version (`fresh.rs`).
            Ok(id) => match crate::fresh::take_read_principal(&id) {
                Some(found) => found,
                None => self.identity.principal_granted(&id).await?,
            },
            Err(_) => None,
        };
        let epochs =
            LiveEpoch(found.as_ref().map(|(r, _)| r).filter(|r| !r.disabled).map(|r| (r.id.to_string(), r.epoch)));
        let claims = self.verifier.verify(token, kind, self.now_secs(), &epochs).map_err(|e| invalid(e.to_string()))?;
        let Some((record, granted)) = found else {
            return Err(invalid("token names an unknown principal; request a new token".to_owned()));
        };
        let (record, _) = self.identity.in_force_granted(record, granted).await?;
        Ok(Caller {
            id: record.id,
            kind: record.kind,
            roles: record.roles,
            mfa_at: claims.mfa_at,
            access: claims.access,
        })
    }

    /// A caller that may read `repo`: a registry token granting pull there, or an API token of a
    /// principal whose roles in force allow pulling it.
    pub async fn reader(&self, headers: &HeaderMap, repo: &RepoName, source: &str) -> Result<Caller, CallerError> {
        let scope = Scope::repository(repo.clone(), [RepoAction::Pull]).to_string();
        let kind = bearer(headers).and_then(unverified_kind).unwrap_or(TokenKind::Registry);
        let caller = self.caller(headers, kind, Some(&scope)).await?;
        let named = kind == TokenKind::Api || caller.may(repo, RepoAction::Pull);
        if named && self.still_allowed(&caller, repo, RepoAction::Pull, source) {
            return Ok(caller);
        }
        Err(CallerError::InsufficientScope {
            challenge: self.challenge(Some(&scope), Some("insufficient_scope")),
            scope,
        })
    }
}

impl CallerService {
    /// The principal an Airlock token in `headers` was issued to, if its signature, issuer,
    /// audience, lifetime and kind verify; the principal's live epoch is not read (no database
    /// read): a token once valid still names its principal. For the rate limiter only, which
    /// must not charge a principal for a token anyone could forge.
    pub(super) fn signed_subject(&self, headers: &HeaderMap) -> Option<String> {
        let token = bearer(headers)?;
        let kind = unverified_kind(token)?;
        let epoch = unverified_claims(token)?.get("epoch")?.as_u64()?;
        let claims = self.verifier.verify(token, kind, self.now_secs(), &AnyEpoch(epoch)).ok()?;
        Some(claims.sub)
    }
}

/// The epoch a token claims, believed once its signature verified.
struct AnyEpoch(u64);

impl token::EpochSource for AnyEpoch {
    fn live_epoch(&self, _subject: &str) -> Option<u64> {
        Some(self.0)
    }
}

/// Whether a claim rule's scopes (`repository:<pattern>:<actions>`, a repository pattern checked
/// when the rule was read) allow `action` on `repo`; no scopes means no limit beyond the roles.
fn within(limit: &[String], repo: &RepoName, action: RepoAction) -> bool {
    limit.is_empty()
        || limit.iter().any(|scope| {
            let Some(rest) = scope.strip_prefix("repository:") else { return false };
            let Some((pattern, actions)) = rest.rsplit_once(':') else { return false };
            RepoPattern::parse(pattern).is_ok_and(|p| p.matches_repo(repo))
                && actions.split(',').any(|a| a == "*" || a == action.as_str())
        })
}

/// The Cedar action of a registry action.
pub fn repo_action(action: RepoAction) -> Action {
    match action {
        RepoAction::Pull => Action::Pull,
        RepoAction::Push => Action::Push,
        RepoAction::Delete => Action::Delete,
    }
}

/// The one principal whose epoch a token may be checked against.
struct LiveEpoch(Option<(String, u64)>);

impl token::EpochSource for LiveEpoch {
    fn live_epoch(&self, subject: &str) -> Option<u64> {
        self.0.as_ref().filter(|(id, _)| id == subject).map(|(_, epoch)| *epoch)
    }
}

/// The claims of a token, read without verifying them: only to pick how to verify it.
fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    if token.len() > token::MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The `sub` of a token, read without verifying it, only to find whose epoch to check.
fn unverified_subject(token: &str) -> Option<String> {
    unverified_claims(token)?.get("sub")?.as_str().map(str::to_owned)
}

/// The `kind` of a token, read without verifying it, only to pick how to verify it.
fn unverified_kind(token: &str) -> Option<TokenKind> {
    let value = unverified_claims(token)?;
    match value.get("kind")?.as_str()? {
        "api" => Some(TokenKind::Api),
        "registry" => Some(TokenKind::Registry),
        _ => None,
    }
}

/// The principal a request's bearer token names, read without verifying the token: only to
/// read that principal early ([`crate::fresh::layer`]), never to believe anything about it.
pub(crate) fn bearer_subject(headers: &HeaderMap) -> Option<PrincipalId> {
    PrincipalId::parse(&unverified_subject(bearer(headers)?)?).ok()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(super) fn read_or_create_key(path: &Path) -> Result<TokenKey, CallerStartError> {
    let display = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let der = STANDARD.decode(text.trim()).map_err(|e| CallerStartError::KeyRead {
                path: display.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            })?;
            TokenKey::from_pkcs8_der(&der).map_err(|source| CallerStartError::KeyParse { path: display, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = TokenKey::generate();
            let der =
                key.to_pkcs8_der().map_err(|source| CallerStartError::KeyParse { path: display.clone(), source })?;
            crate::log::write_private(path, &STANDARD.encode(der.as_bytes()))
                .map_err(|source| CallerStartError::KeyWrite { path: display, source })?;
            Ok(key)
        }
        Err(source) => Err(CallerStartError::KeyRead { path: display, source }),
    }
}
