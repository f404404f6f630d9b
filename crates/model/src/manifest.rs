//! OCI image manifests and indexes (and their Docker v2 twins), parsed from the bytes received.
//!
//! The parse keeps only what the registry needs to decide: which blobs or child manifests a
//! manifest references, its subject (for the referrers API), its artifact type and annotations.
//! The bytes themselves are stored and served exactly as received; nothing here re-serializes them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::{Digest, DigestError};
use crate::media_type::{MediaType, MediaTypeError};

/// Largest manifest body accepted, in bytes (4 MiB, as the distribution spec suggests).
pub const MANIFEST_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most layers in a manifest, or entries in an index.
pub const MANIFEST_MAX_DESCRIPTORS: usize = 1024;
/// Deepest JSON nesting accepted in a manifest body.
pub const MANIFEST_MAX_DEPTH: usize = 32;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The config media type of an artifact manifest that has no config of its own.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Limits on the work a manifest body can cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestLimits {
    pub max_bytes: usize,
    pub max_descriptors: usize,
    pub max_depth: usize,
}

impl Default for ManifestLimits {
    fn default() -> Self {
        ManifestLimits {
            max_bytes: MANIFEST_MAX_BYTES,
            max_descriptors: MANIFEST_MAX_DESCRIPTORS,
            max_depth: MANIFEST_MAX_DEPTH,
        }
    }
}

/// Why a manifest body was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is {size} bytes; the limit is {max} (config key `limits.manifest_max_bytes`)")]
    TooLarge { size: usize, max: usize },
    #[error("manifest JSON nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("manifest lists {count} descriptors; the limit is {max} (config key `limits.manifest_max_descriptors`)")]
    TooManyDescriptors { count: usize, max: usize },
    #[error("manifest is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error(
        "manifest media type `{media_type}` is not supported; push an OCI image manifest or index, or a Docker v2 manifest or manifest list"
    )]
    Unsupported { media_type: String },
    #[error("manifest has no media type; send a `Content-Type` header naming it")]
    NoMediaType,
    #[error("`Content-Type` is `{header}` but the manifest's `mediaType` is `{body}`; make them agree")]
    MediaTypeMismatch { header: String, body: String },
    #[error("manifest `schemaVersion` is {}; only schema version 2 is supported", .found.map_or_else(|| "missing".to_owned(), |v| v.to_string()))]
    SchemaVersion { found: Option<i64> },
    #[error("manifest field `{field}` is missing")]
    MissingField { field: &'static str },
    #[error("manifest field `{field}` is invalid: {source}")]
    BadDigest {
        field: &'static str,
        #[source]
        source: DigestError,
    },
    #[error("manifest field `{field}` is invalid: {source}")]
    BadMediaType {
        field: &'static str,
        #[source]
        source: MediaTypeError,
    },
    #[error("manifest field `{field}` has a negative size")]
    NegativeSize { field: &'static str },
    #[error(
        "image manifest also has `manifests`, so clients could read it as an index; an image manifest has `config` and `layers` only"
    )]
    ImageWithManifests,
    #[error("index also has `{field}`, so clients could read it as an image manifest; an index has `manifests` only")]
    IndexWithImageFields { field: &'static str },
    #[error(
        "manifest has no `mediaType` and carries both `manifests` and `{field}`, so its kind is ambiguous; set `mediaType` and keep only the fields of that kind"
    )]
    Ambiguous { field: &'static str },
}

/// Which of the four supported manifest formats a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestKind {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerManifestList,
}

impl ManifestKind {
    /// The kind named by a media type, if it is one Airlock stores.
    pub fn from_media_type(media_type: &str) -> Option<ManifestKind> {
        let essence = media_type.split(';').next().unwrap_or_default().trim();
        match essence {
            OCI_MANIFEST => Some(ManifestKind::OciManifest),
            OCI_INDEX => Some(ManifestKind::OciIndex),
            DOCKER_MANIFEST => Some(ManifestKind::DockerManifest),
            DOCKER_MANIFEST_LIST => Some(ManifestKind::DockerManifestList),
            _ => None,
        }
    }

    /// The canonical media type of this kind.
    pub fn media_type(self) -> &'static str {
        match self {
            ManifestKind::OciManifest => OCI_MANIFEST,
            ManifestKind::OciIndex => OCI_INDEX,
            ManifestKind::DockerManifest => DOCKER_MANIFEST,
            ManifestKind::DockerManifestList => DOCKER_MANIFEST_LIST,
        }
    }

    /// Whether entries are child manifests (an index) rather than blobs.
    pub fn is_index(self) -> bool {
        matches!(self, ManifestKind::OciIndex | ManifestKind::DockerManifestList)
    }
}

/// A validated content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
    pub artifact_type: Option<MediaType>,
    pub annotations: BTreeMap<String, String>,
    /// Non-empty for foreign (non-distributable) layers that live elsewhere.
    pub urls: Vec<String>,
}

impl Descriptor {
    /// A layer the registry is not expected to hold: one with external `urls`.
    pub fn is_foreign(&self) -> bool {
        !self.urls.is_empty()
    }
}

/// A parsed manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub kind: ManifestKind,
    /// The image config (image manifests only).
    pub config: Option<Descriptor>,
    /// Layers of an image manifest, or child manifests of an index.
    pub entries: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<MediaType>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    artifact_type: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
    urls: Option<Vec<String>>,
}

/// The deepest nesting of arrays and objects in `bytes`, counting only outside strings; stops
/// early once `max` is exceeded so hostile input costs one pass at most.
pub fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut depth: usize = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth = depth.saturating_add(1);
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

impl Manifest {
    /// Parses a manifest body. `content_type` is the request's `Content-Type`, if any; when both
    /// it and the body's `mediaType` are present they must agree.
    pub fn parse(content_type: Option<&str>, bytes: &[u8], limits: &ManifestLimits) -> Result<Manifest, ManifestError> {
        // 1. Bound the work before parsing.
        if bytes.len() > limits.max_bytes {
            return Err(ManifestError::TooLarge { size: bytes.len(), max: limits.max_bytes });
        }
        if json_depth_exceeds(bytes, limits.max_depth) {
            return Err(ManifestError::TooDeep { max: limits.max_depth });
        }
        let raw: RawManifest = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;

        // 2. Decide the kind from the header and the body, which must not disagree.
        let header = content_type
            .map(|c| c.split(';').next().unwrap_or_default().trim())
            .filter(|c| !c.is_empty() && ManifestKind::from_media_type(c).is_some());
        let kind_name = match (header, raw.media_type.as_deref()) {
            (Some(h), Some(b)) if h != b => {
                return Err(ManifestError::MediaTypeMismatch {
                    header: crate::echo::echo(h),
                    body: crate::echo::echo(b),
                });
            }
            (Some(h), _) => h,
            (None, Some(b)) => b,
            (None, None) => match content_type {
                Some(c) if !c.trim().is_empty() => {
                    return Err(ManifestError::Unsupported { media_type: crate::echo::echo(c) });
                }
                _ => return Err(ManifestError::NoMediaType),
            },
        };
        let kind = ManifestKind::from_media_type(kind_name)
            .ok_or_else(|| ManifestError::Unsupported { media_type: crate::echo::echo(kind_name) })?;
        if raw.schema_version != Some(2) {
            return Err(ManifestError::SchemaVersion { found: raw.schema_version });
        }
        // 3. One body, one reading (the CVE-2021-41190 pattern): clients that tell an index from
        //    an image manifest by which fields are present must reach the kind the registry
        //    judged. A body with the fields of both kinds is refused whatever it claims to be.
        let image_field = match (&raw.config, &raw.layers) {
            (Some(_), _) => Some("config"),
            (None, Some(_)) => Some("layers"),
            (None, None) => None,
        };
        match (image_field, raw.manifests.is_some()) {
            (Some(field), true) if raw.media_type.is_none() => return Err(ManifestError::Ambiguous { field }),
            (Some(field), _) if kind.is_index() => return Err(ManifestError::IndexWithImageFields { field }),
            (_, true) if !kind.is_index() => return Err(ManifestError::ImageWithManifests),
            _ => {}
        }

        // 4. Validate the descriptors the registry acts on.
        let (config, raw_entries) = if kind.is_index() {
            (None, raw.manifests.ok_or(ManifestError::MissingField { field: "manifests" })?)
        } else {
            let config = raw.config.ok_or(ManifestError::MissingField { field: "config" })?;
            (Some(descriptor(config, "config")?), raw.layers.ok_or(ManifestError::MissingField { field: "layers" })?)
        };
        if raw_entries.len() > limits.max_descriptors {
            return Err(ManifestError::TooManyDescriptors { count: raw_entries.len(), max: limits.max_descriptors });
        }
        let field = if kind.is_index() { "manifests" } else { "layers" };
        let entries = raw_entries.into_iter().map(|d| descriptor(d, field)).collect::<Result<Vec<_>, _>>()?;
        let subject = raw.subject.map(|d| descriptor(d, "subject")).transpose()?;
        let artifact_type = raw
            .artifact_type
            .map(|t| {
                MediaType::parse(&t).map_err(|source| ManifestError::BadMediaType { field: "artifactType", source })
            })
            .transpose()?;
        Ok(Manifest { kind, config, entries, subject, artifact_type, annotations: raw.annotations.unwrap_or_default() })
    }

    /// The artifact type the referrers API reports: `artifactType`, else the config media type.
    pub fn effective_artifact_type(&self) -> Option<&MediaType> {
        self.artifact_type.as_ref().or_else(|| self.config.as_ref().map(|c| &c.media_type))
    }

    /// Blobs this manifest needs in its repository: the config and every non-foreign layer.
    pub fn required_blobs(&self) -> impl Iterator<Item = &Digest> {
        let blobs = if self.kind.is_index() { None } else { Some(self) };
        blobs
            .into_iter()
            .flat_map(|m| m.config.iter().chain(m.entries.iter().filter(|d| !d.is_foreign())).map(|d| &d.digest))
    }

    /// Child manifests this index needs in its repository.
    pub fn required_manifests(&self) -> impl Iterator<Item = &Digest> {
        let index = if self.kind.is_index() { Some(self) } else { None };
        index.into_iter().flat_map(|m| m.entries.iter().map(|d| &d.digest))
    }
}

fn descriptor(raw: RawDescriptor, field: &'static str) -> Result<Descriptor, ManifestError> {
    let media_type = raw.media_type.ok_or(ManifestError::MissingField { field })?;
    let media_type = MediaType::parse(&media_type).map_err(|source| ManifestError::BadMediaType { field, source })?;
    let digest = raw.digest.ok_or(ManifestError::MissingField { field })?;
    let digest = Digest::parse(&digest).map_err(|source| ManifestError::BadDigest { field, source })?;
    let size = raw.size.ok_or(ManifestError::MissingField { field })?;
    let size = u64::try_from(size).map_err(|_| ManifestError::NegativeSize { field })?;
    let artifact_type = raw
        .artifact_type
        .map(|t| MediaType::parse(&t).map_err(|source| ManifestError::BadMediaType { field, source }))
        .transpose()?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type,
        annotations: raw.annotations.unwrap_or_default(),
        urls: raw.urls.unwrap_or_default(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn check(content_type: Option<&str>, body: &str, expect: Expect) {
        let actual = match Manifest::parse(content_type, body.as_bytes(), &ManifestLimits::default()) {
            Ok(m) => format!(
                "ok {:?} blobs={} manifests={} subject={} artifact={}",
                m.kind,
                m.required_blobs().count(),
                m.required_manifests().count(),
                m.subject.as_ref().map(|s| s.digest.hex().get(..4).unwrap_or_default()).unwrap_or("-"),
                m.effective_artifact_type().map(|t| t.as_str()).unwrap_or("-"),
            ),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    fn image(layers: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},"layers":[{layers}]}}"#
        )
    }

    #[test]
    fn parses_the_supported_kinds() {
        let layer = format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D2}","size":3}}"#);
        check(
            Some(OCI_MANIFEST),
            &image(&layer),
            expect!["ok OciManifest blobs=2 manifests=0 subject=- artifact=application/vnd.oci.image.config.v1+json"],
        );
        check(
            None,
            &image(""),
            expect!["ok OciManifest blobs=1 manifests=0 subject=- artifact=application/vnd.oci.image.config.v1+json"],
        );
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":9}}]}}"#
        );
        check(Some(OCI_INDEX), &index, expect!["ok OciIndex blobs=0 manifests=1 subject=- artifact=-"]);
        let artifact = format!(
            r#"{{"schemaVersion":2,"artifactType":"application/spdx+json","config":{{"mediaType":"{OCI_EMPTY}","digest":"{D1}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":7}}}}"#
        );
        check(
            Some(OCI_MANIFEST),
            &artifact,
            expect!["ok OciManifest blobs=1 manifests=0 subject=2222 artifact=application/spdx+json"],
        );
        let foreign = format!(
            r#"{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{D2}","size":3,"urls":["https://example.com/x"]}}"#
        );
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D1}","size":2}},"layers":[{foreign}]}}"#
        );
        check(
            Some(DOCKER_MANIFEST),
            &docker,
            expect![
                "ok DockerManifest blobs=1 manifests=0 subject=- artifact=application/vnd.docker.container.image.v1+json"
            ],
        );
    }

    #[test]
    fn refuses_malformed_manifests() {
        check(
            Some(OCI_INDEX),
            &image(""),
            expect![
                "err `Content-Type` is `application/vnd.oci.image.index.v1+json` but the manifest's `mediaType` is `application/vnd.oci.image.manifest.v1+json`; make them agree"
            ],
        );
        check(
            Some("text/plain"),
            "{}",
            expect![
                "err manifest media type `text/plain` is not supported; push an OCI image manifest or index, or a Docker v2 manifest or manifest list"
            ],
        );
        check(None, "{}", expect!["err manifest has no media type; send a `Content-Type` header naming it"]);
        check(
            Some(OCI_MANIFEST),
            "not json",
            expect!["err manifest is not valid JSON: expected ident at line 1 column 2"],
        );
        check(
            Some(OCI_MANIFEST),
            r#"{"schemaVersion":1}"#,
            expect!["err manifest `schemaVersion` is 1; only schema version 2 is supported"],
        );
        check(
            Some(OCI_MANIFEST),
            r#"{"schemaVersion":2,"layers":[]}"#,
            expect!["err manifest field `config` is missing"],
        );
        let bad_digest = image(r#"{"mediaType":"a/b","digest":"sha256:zz","size":1}"#);
        check(
            None,
            &bad_digest,
            expect![
                "err manifest field `layers` is invalid: digest `sha256:zz` is malformed; a sha256 digest is 64 lowercase hex characters"
            ],
        );
        let negative = image(&format!(r#"{{"mediaType":"a/b","digest":"{D2}","size":-1}}"#));
        check(None, &negative, expect!["err manifest field `layers` has a negative size"]);
        check(None, &"[".repeat(100), expect!["err manifest JSON nests deeper than 32 levels"]);
    }

    #[test]
    fn one_body_has_one_reading() {
        let child = format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":9}}"#);
        let config = format!(r#"{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}}"#);
        // Real clients push without `mediaType` when the header names the kind.
        let plain = format!(r#"{{"schemaVersion":2,"config":{config},"layers":[]}}"#);
        check(
            Some(OCI_MANIFEST),
            &plain,
            expect!["ok OciManifest blobs=1 manifests=0 subject=- artifact=application/vnd.oci.image.config.v1+json"],
        );
        let plain_index = format!(r#"{{"schemaVersion":2,"manifests":[{child}]}}"#);
        check(Some(OCI_INDEX), &plain_index, expect!["ok OciIndex blobs=0 manifests=1 subject=- artifact=-"]);
        // The fields of both kinds: refused whatever the header or the body claims.
        let both = format!(r#"{{"schemaVersion":2,"config":{config},"layers":[],"manifests":[{child}]}}"#);
        check(
            Some(OCI_MANIFEST),
            &both,
            expect![
                "err manifest has no `mediaType` and carries both `manifests` and `config`, so its kind is ambiguous; set `mediaType` and keep only the fields of that kind"
            ],
        );
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[],"manifests":[]}}"#
        );
        check(
            None,
            &image,
            expect![
                "err image manifest also has `manifests`, so clients could read it as an index; an image manifest has `config` and `layers` only"
            ],
        );
        let index = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{child}],"layers":[]}}"#);
        check(
            Some(OCI_INDEX),
            &index,
            expect![
                "err index also has `layers`, so clients could read it as an image manifest; an index has `manifests` only"
            ],
        );
    }

    #[test]
    fn limits_are_enforced() {
        let limits = ManifestLimits { max_bytes: 10, ..ManifestLimits::default() };
        let err = Manifest::parse(None, &[b' '; 11], &limits).unwrap_err();
        assert!(matches!(err, ManifestError::TooLarge { size: 11, max: 10 }));
        let layer = format!(r#"{{"mediaType":"a/b","digest":"{D2}","size":1}}"#);
        let many = image(&vec![layer; 3].join(","));
        let limits = ManifestLimits { max_descriptors: 2, ..ManifestLimits::default() };
        let err = Manifest::parse(None, many.as_bytes(), &limits).unwrap_err();
        assert!(matches!(err, ManifestError::TooManyDescriptors { count: 3, max: 2 }));
    }

    #[test]
    fn depth_ignores_brackets_inside_strings() {
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[[[\"[[[["}"#, 2));
        assert!(json_depth_exceeds(br#"{"a":[[1]]}"#, 2));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(0u8.., 0..512)) {
            let _ = Manifest::parse(Some(OCI_MANIFEST), &bytes, &ManifestLimits::default());
        }
    }
}
