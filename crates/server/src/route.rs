//! `/v2/...` paths parsed into routes. The raw (still percent-encoded) path is parsed, so
//! `%2e%2e` is just bytes that fail the name grammar, never a path traversal.

use airlock_model::{Digest, Reference, RepoName, UploadId};

use crate::error::RequestError;

/// A recognised registry endpoint with its parsed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, Reference),
    Blob(RepoName, Digest),
    UploadStart(RepoName),
    Upload(RepoName, UploadId),
    Referrers(RepoName, Digest),
}

impl Route {
    /// A fixed label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Tags(_) => "tags",
            Route::Manifest(..) => "manifest",
            Route::Blob(..) => "blob",
            Route::UploadStart(_) => "upload_start",
            Route::Upload(..) => "upload",
            Route::Referrers(..) => "referrers",
        }
    }
}

fn name(segments: &[&str]) -> Result<RepoName, RequestError> {
    RepoName::parse(&segments.join("/")).map_err(|e| RequestError::NameInvalid(e.to_string()))
}

fn digest(text: &str) -> Result<Digest, RequestError> {
    Digest::parse(text).map_err(|e| RequestError::DigestInvalid(e.to_string()))
}

/// Parses the path that follows `/v2/`.
pub fn parse(rest: &str) -> Result<Route, RequestError> {
    if rest.is_empty() {
        return Ok(Route::Base);
    }
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let not_found = || RequestError::NotFound { path: format!("/v2/{}", rest.chars().take(200).collect::<String>()) };
    let segments: Vec<&str> = rest.split('/').collect();
    // Match the endpoint suffix from the right, so a repository may contain `blobs` or `tags`.
    match segments.as_slice() {
        [repo @ .., "tags", "list"] if !repo.is_empty() => Ok(Route::Tags(name(repo)?)),
        [repo @ .., "manifests", reference] if !repo.is_empty() => {
            let repo = name(repo)?;
            let reference = Reference::parse(reference).map_err(|e| match e {
                airlock_model::NameError::Reference { .. } => RequestError::DigestInvalid(e.to_string()),
                other => RequestError::TagInvalid(other.to_string()),
            })?;
            Ok(Route::Manifest(repo, reference))
        }
        [repo @ .., "blobs", "uploads", ""] if !repo.is_empty() => Ok(Route::UploadStart(name(repo)?)),
        [repo @ .., "blobs", "uploads", id] if !repo.is_empty() => {
            let repo = name(repo)?;
            let id = UploadId::parse(id).map_err(|e| RequestError::UploadInvalid(e.to_string()))?;
            Ok(Route::Upload(repo, id))
        }
        [repo @ .., "blobs", d] if !repo.is_empty() => {
            let repo = name(repo)?;
            Ok(Route::Blob(repo, digest(d)?))
        }
        [repo @ .., "referrers", d] if !repo.is_empty() => {
            let repo = name(repo)?;
            Ok(Route::Referrers(repo, digest(d)?))
        }
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(path: &str, expect: Expect) {
        let actual = match parse(path) {
            Ok(r) => format!("{} {r:?}", r.label()),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn routes() {
        check("", expect!["base Base"]);
        check("_catalog", expect!["catalog Catalog"]);
        check("dev/a/tags/list", expect![[r#"tags Tags(RepoName { name: "dev/a", stage: StageName("dev") })"#]]);
        check(
            "dev/blobs/manifests/v1",
            expect![[r#"manifest Manifest(RepoName { name: "dev/blobs", stage: StageName("dev") }, Tag(Tag("v1")))"#]],
        );
        check(
            "dev/a/blobs/uploads/",
            expect![[r#"upload_start UploadStart(RepoName { name: "dev/a", stage: StageName("dev") })"#]],
        );
        check(
            &format!("dev/a/blobs/{D}"),
            expect![[
                r#"blob Blob(RepoName { name: "dev/a", stage: StageName("dev") }, Digest("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))"#
            ]],
        );
        check(
            "dev/a/blobs/uploads/0123456789abcdef0123",
            expect![[
                r#"upload Upload(RepoName { name: "dev/a", stage: StageName("dev") }, UploadId("0123456789abcdef0123"))"#
            ]],
        );
    }

    #[test]
    fn hostile_paths() {
        check(
            "dev/../prod/x/manifests/v1",
            expect![
                "err repository name `dev/../prod/x` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check(
            "dev/%2e%2e/x/tags/list",
            expect![
                "err repository name `dev/%2e%2e/x` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check(
            "dev//x/tags/list",
            expect![
                "err repository name `dev//x` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check(
            "dev/X/tags/list",
            expect![
                "err repository name `dev/X` is invalid: each `/`-separated part is lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            ],
        );
        check(
            "dev/a/manifests/-bad",
            expect![
                "err tag `-bad` is invalid: a tag is 1 to 128 characters of letters, digits, `_`, `.` and `-`, and does not start with `.` or `-`"
            ],
        );
        check("dev/a/manifests/sha256:xyz", expect!["err reference `sha256:xyz` is neither a tag nor a digest"]);
        check(
            "dev/a/blobs/sha256:abc",
            expect!["err digest `sha256:abc` is malformed; a sha256 digest is 64 lowercase hex characters"],
        );
        check(
            "dev/a/blobs/uploads/..",
            expect![
                "err upload id `..` is malformed; use the `Location` the registry returned when the upload started"
            ],
        );
        check("tags/list", expect!["err no such endpoint `/v2/tags/list`; the registry API lives under `/v2/`"]);
        check(
            "dev/a/nothing",
            expect!["err no such endpoint `/v2/dev/a/nothing`; the registry API lives under `/v2/`"],
        );
    }
}
