//! The OpenAPI 3.1 document of `/api/v1`, generated from the DTOs of `airlock_api::v1` and the
//! `#[utoipa::path]` of each handler, served at `GET /api/v1/openapi.json`. Its paths are the
//! router's: the test below compares them with [`crate::app::API_V1_ROUTES`].

use std::sync::LazyLock;

use airlock_api::v1 as api;
use axum::response::{IntoResponse, Response};
use http::header;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

/// The document's generator: every `/api/v1` operation.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Airlock API",
        description = "Airlock's `/api/v1`: promotions and their gates, freezes, waivers, rollbacks and reviews; principals, roles and grants; the trust root and an artifact's evidence; the transparency log's public read API. Every error answers `{\"error\": {\"code\", \"message\", \"remediation\"}}` (`ErrorBody`). The OCI registry is under `/v2/` and is not described here."
    ),
    paths(
        document,
        crate::app::system,
        crate::api_log::checkpoint,
        crate::api_log::key,
        crate::api_log::entries,
        crate::api_log::inclusion,
        crate::api_log::consistency,
        crate::api_trust::get_root,
        crate::api_trust::put_root,
        artifact_evidence,
        artifact_policy_input,
        artifact_evaluate,
        artifact_promotions,
        artifact_release_bundle,
        crate::api_promotion::list,
        crate::api_promotion::request,
        crate::api_promotion::get,
        crate::api_promotion::approve,
        crate::api_promotion::reject,
        crate::api_promotion::release_key,
        crate::api_control::freezes,
        crate::api_control::freeze,
        crate::api_control::unfreeze,
        crate::api_control::waivers,
        crate::api_control::request_waiver,
        crate::api_control::approve_waiver,
        crate::api_control::revoke_waiver,
        crate::api_control::rollback,
        crate::api_control::reviews,
        crate::api_control::close_review,
        crate::api_login::api_token,
        crate::api_login::whoami,
        crate::api_login::refresh,
        crate::api_login::enroll_mfa,
        crate::api_login::enroll,
        crate::api_access::list_access,
        crate::api_access::request_access,
        crate::api_access::approve_access,
        crate::api_access::revoke_access,
        crate::api_principals::roles,
        crate::api_principals::define_role,
        crate::api_principals::list,
        crate::api_principals::create,
        crate::api_principals::grant,
        crate::api_principals::revoke,
        crate::api_principals::disable,
        crate::api_principals::enable,
        crate::api_principals::rotate_key,
        crate::api_principals::reset,
    ),
    components(schemas(api::ErrorBody, api::TrustRootDocument)),
    modifiers(&Security),
    tags(
        (name = "system", description = "What this server is"),
        (name = "log", description = "The transparency log's public read API"),
        (name = "trust", description = "The trust root and what an artifact holds"),
        (name = "promotions", description = "Promotions, approvals and release records"),
        (name = "control", description = "Freezes, waivers, rollbacks and break-glass reviews"),
        (name = "auth", description = "Tokens, enrollment and second factors"),
        (name = "access", description = "Principals, roles and grants"),
    )
)]
pub struct ApiDoc;

/// The two ways a request authenticates: an Airlock token (`bearer`), or a password or API key
/// (`basic`) where a token is issued.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".to_owned());
        bearer.description = Some(
            "An API token from `POST /api/v1/auth/token`; on the artifact routes, a registry token with `pull` on the repository also works".to_owned(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some("A user's password or a service account's API key".to_owned());
        components.add_security_scheme("basic", SecurityScheme::Http(basic));
    }
}

/// The document, rendered once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));

/// This document.
#[utoipa::path(
    get,
    operation_id = "document",
    path = "/api/v1/openapi.json",
    tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document of `/api/v1`", content_type = "application/json"))
)]
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response()
}

// The artifact routes share one handler (`api_trust::artifacts`, dispatching on
// `api_trust::ARTIFACT_ROUTES`), since a repository name holds slashes; these describe them.

/// An artifact's attestations, re-verified against the trust root in force.
#[utoipa::path(
    get,
    operation_id = "artifact_evidence",
    path = "/api/v1/artifacts/{repository}/{digest}/evidence",
    tag = "trust",
    params(Artifact),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::Evidence),
        (status = "4XX", description = "Refused", body = api::ErrorBody),
    )
)]
#[expect(dead_code, reason = "describes a route of `api_trust::artifacts`")]
fn artifact_evidence() {}

/// The policy input a promotion of the artifact to `to` would be decided on.
#[utoipa::path(
    get,
    operation_id = "artifact_policy_input",
    path = "/api/v1/artifacts/{repository}/{digest}/policy-input",
    tag = "trust",
    params(Artifact, ("to" = String, Query, description = "The target stage")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::PolicyInput),
        (status = "4XX", description = "Refused", body = api::ErrorBody),
    )
)]
#[expect(dead_code, reason = "describes a route of `api_trust::artifacts`")]
fn artifact_policy_input() {}

/// A dry-run policy decision for promoting the artifact to `to`, logged as `policy.evaluate`;
/// needs `promote.request` there, at most `limits.evaluations_per_minute` a minute.
#[utoipa::path(
    post,
    operation_id = "artifact_evaluate",
    path = "/api/v1/artifacts/{repository}/{digest}/evaluate",
    tag = "trust",
    params(Artifact, ("to" = String, Query, description = "The target stage")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::PolicyDecision),
        (status = "4XX", description = "Refused", body = api::ErrorBody),
    )
)]
#[expect(dead_code, reason = "describes a route of `api_trust::artifacts`")]
fn artifact_evaluate() {}

/// Whether the artifact was promoted into the repository, each promotion with its signed
/// release record and summary.
#[utoipa::path(
    get,
    operation_id = "artifact_promotions",
    path = "/api/v1/artifacts/{repository}/{digest}/promotions",
    tag = "promotions",
    params(Artifact),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::PromotionHistory),
        (status = "4XX", description = "Refused", body = api::ErrorBody),
    )
)]
#[expect(dead_code, reason = "describes a route of `api_trust::artifacts`")]
fn artifact_promotions() {}

/// The release bundle of the newest promotion of the artifact into the repository, built
/// against the latest signed checkpoint.
#[utoipa::path(
    get,
    operation_id = "artifact_release_bundle",
    path = "/api/v1/artifacts/{repository}/{digest}/release-bundle",
    tag = "promotions",
    params(Artifact),
    security(("bearer" = [])),
    responses(
        (status = 200, body = api::ReleaseBundle, content_type = "application/vnd.airlock.release-bundle.v1+json"),
        (status = "4XX", description = "Refused", body = api::ErrorBody),
    )
)]
#[expect(dead_code, reason = "describes a route of `api_trust::artifacts`")]
fn artifact_release_bundle() {}

/// The path parameters of an artifact route.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[expect(dead_code, reason = "describes the path of `api_trust::artifacts`")]
struct Artifact {
    /// The repository, `<stage>/<path>`: it holds slashes, sent as they are.
    repository: String,
    /// The artifact's digest, `sha256:<hex>`.
    digest: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Method and path of every operation in the document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = ApiDoc::openapi();
        let mut out = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
                ("TRACE", &item.trace),
            ];
            for (method, operation) in operations {
                if operation.is_some() {
                    out.insert((method.to_owned(), path.clone()));
                }
            }
        }
        out
    }

    /// Method and path of every route the router serves under `/api/v1`, the artifact routes'
    /// catch-all expanded into the routes its handler dispatches to.
    fn served() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (method, path) in crate::app::API_V1_ROUTES {
            match path.strip_suffix("{*rest}") {
                Some(prefix) => {
                    let dispatched: Vec<_> =
                        crate::api_trust::ARTIFACT_ROUTES.iter().filter(|(m, _, _)| m == method).collect();
                    assert!(!dispatched.is_empty(), "{method} {path} is routed but dispatches to nothing");
                    for (m, action, _) in dispatched {
                        out.insert((m.to_string(), format!("{prefix}{{repository}}/{{digest}}/{action}")));
                    }
                }
                None => {
                    out.insert((method.to_string(), path.to_string()));
                }
            }
        }
        for (method, action, _) in crate::api_trust::ARTIFACT_ROUTES {
            assert!(
                crate::app::API_V1_ROUTES.contains(&(method, "/api/v1/artifacts/{*rest}")),
                "artifact route {method} {action} is not routed to the artifacts handler"
            );
        }
        out
    }

    #[test]
    fn the_document_lists_exactly_the_routes_the_router_serves() {
        let (documented, served) = (documented(), served());
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(undocumented.is_empty(), "served, not in the OpenAPI document: {undocumented:?}");
        assert!(unserved.is_empty(), "in the OpenAPI document, not served: {unserved:?}");
        assert!(served.len() > 40, "{served:?}");
    }

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_error_body() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object(), "{doc}");
        assert!(doc["components"]["schemas"]["Promotion"].is_object(), "{doc}");
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "{doc}");
    }

    /// The README's route list (between `<!-- api-routes -->` markers) is the document's.
    #[test]
    fn the_readme_lists_the_documented_routes() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("<!-- api-routes -->").expect("README has the api-routes marker");
        let end = readme.find("<!-- /api-routes -->").expect("README has the closing marker");
        let listed: BTreeSet<(String, String)> = readme[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(route, _)| route.to_owned()))
            .filter_map(|route| route.split_once(' ').map(|(m, p)| (m.to_owned(), p.to_owned())))
            .collect();
        let documented = documented();
        let missing: Vec<_> = documented.difference(&listed).collect();
        let extra: Vec<_> = listed.difference(&documented).collect();
        assert!(missing.is_empty(), "documented, not in the README: {missing:?}");
        assert!(extra.is_empty(), "in the README, not documented: {extra:?}");
    }
}
