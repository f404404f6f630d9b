//! SLSA provenance, v1 (`https://slsa.dev/provenance/v1`) and v0.2:
//!
//! ```text
//! v1:   {"buildDefinition": {"buildType", "externalParameters": {"workflow": {"ref", "repository", "path"}},
//!                            "internalParameters": {"github": {"event_name", "actor", "actor_id"}},
//!                            "resolvedDependencies": [{"uri": "git+https://…@refs/heads/main", "digest": {"gitCommit"}}]},
//!        "runDetails": {"builder": {"id"}, "metadata": {"invocationId"}}}
//! v0.2: {"builder": {"id"}, "buildType",
//!        "invocation": {"configSource": {"uri", "digest": {"sha1"}, "entryPoint"},
//!                       "environment": {"github_actor", "github_actor_id", "github_event_name", "github_ref"}},
//!        "metadata": {"buildInvocationId"}, "materials": [{"uri", "digest"}]}
//! ```
//!
//! The trigger is GitHub's `actor` (login) and `actor_id` where the build type records them
//! (slsa-github-generator's v1 type has `actor_id`; GitHub's own has neither; v0.2 has both);
//! a rerun's `triggering_actor_id` is not read.
//!
//! The source is, in order: the GitHub workflow's `repository` (v1 GitHub build types), the
//! external parameter `source` (other v1 builders), v0.2's `configSource.uri`, else the first
//! `git+` dependency or material. Its commit is the `gitCommit` (or `sha1`) digest of the
//! dependency or material naming the same repository, or v0.2's `configSource` digest. The ref
//! is the workflow's `ref`, else the part of the source URI after `@`, else v0.2's `github_ref`.

use serde_json::value::RawValue;

use super::{Format, wrong};
use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::model::Provenance;
use crate::normalize::{self, SourceUri};
use crate::read::Reader;
use airlock_model::echo::echo_short as echo;

/// Which SLSA provenance version a predicate is, when its predicate type says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlsaVersion {
    V1,
    V0_2,
}

pub(super) fn read(
    r: &mut Reader<'_>,
    raw: &RawValue,
    at: Ptr<'_>,
    version: Option<SlsaVersion>,
) -> Result<(), EvidenceError> {
    let Some([build_definition, run_details, builder, build_type, invocation, metadata, materials]) = json::members(
        raw,
        &["buildDefinition", "runDetails", "builder", "buildType", "invocation", "metadata", "materials"],
    ) else {
        return Err(wrong(Format::SlsaProvenance, "it is not an object"));
    };
    let v1_shaped = build_definition.is_some() || run_details.is_some();
    let v0_2_shaped = builder.is_some() || build_type.is_some() || invocation.is_some();
    // 1. The version: as the predicate type says, else as the members show.
    let version = match version {
        Some(SlsaVersion::V1) if !v1_shaped => {
            return Err(wrong(
                Format::SlsaProvenance,
                "its predicate type is v1 but it has no `buildDefinition` or `runDetails`",
            ));
        }
        Some(SlsaVersion::V0_2) if !v0_2_shaped => {
            return Err(wrong(
                Format::SlsaProvenance,
                "its predicate type is v0.2 but it has no `builder` or `buildType`",
            ));
        }
        Some(version) => version,
        None if v1_shaped => SlsaVersion::V1,
        None if v0_2_shaped => SlsaVersion::V0_2,
        None => {
            return Err(wrong(Format::SlsaProvenance, "it has neither `buildDefinition` (v1) nor `builder` (v0.2)"));
        }
    };
    let provenance = match version {
        SlsaVersion::V1 => v1(r, build_definition, run_details, at)?,
        SlsaVersion::V0_2 => v0_2(r, V0_2 { builder, build_type, invocation, metadata, materials }, at)?,
    };
    r.push_provenance(provenance);
    Ok(())
}

fn v1(
    r: &mut Reader<'_>,
    build_definition: Option<&RawValue>,
    run_details: Option<&RawValue>,
    at: Ptr<'_>,
) -> Result<Provenance, EvidenceError> {
    let mut provenance = Provenance { slsa_version: "v1".to_owned(), ..Provenance::default() };
    // The run: builder and invocation.
    let run_at = at.key("runDetails");
    if let Some([builder, metadata]) = r.object(run_details, run_at, &["builder", "metadata"]) {
        let builder_at = run_at.key("builder");
        if let Some([id]) = r.object(builder, builder_at, &["id"]) {
            provenance.builder_id = r.text(id, builder_at.key("id"));
        }
        let metadata_at = run_at.key("metadata");
        if let Some([invocation_id]) = r.object(metadata, metadata_at, &["invocationId"]) {
            provenance.invocation_id = r.text(invocation_id, metadata_at.key("invocationId"));
        }
    }
    // The definition: type, parameters, dependencies.
    let definition_at = at.key("buildDefinition");
    let Some([build_type, external, internal, dependencies]) = r.object(
        build_definition,
        definition_at,
        &["buildType", "externalParameters", "internalParameters", "resolvedDependencies"],
    ) else {
        return Ok(provenance);
    };
    provenance.build_type = r.text(build_type, definition_at.key("buildType"));
    let external_at = definition_at.key("externalParameters");
    let mut source: Option<Source> = None;
    let mut workflow_ref = None;
    if let Some([workflow, source_parameter, entry_point]) =
        r.object(external, external_at, &["workflow", "source", "entryPoint"])
    {
        // External parameters are the builder's to define: a `workflow` that is not GitHub's
        // object is another builder's parameter, not a malformed one.
        let workflow_at = external_at.key("workflow");
        if let Some([git_ref, repository, path]) =
            workflow.and_then(|w| json::members(w, &["ref", "repository", "path"]))
        {
            workflow_ref = r.text(git_ref, workflow_at.key("ref"));
            let at = workflow_at.key("repository");
            source = r.text(repository, at).map(|uri| Source { uri, at: at.to_string() });
            provenance.entry_point = r.text(path, workflow_at.key("path"));
        }
        // Other builders name the source as a URI string.
        if source.is_none() && source_parameter.is_some_and(|s| !json::is_object(s)) {
            let at = external_at.key("source");
            source = r.text(source_parameter, at).map(|uri| Source { uri, at: at.to_string() });
        }
        if provenance.entry_point.is_none() && entry_point.is_some_and(|e| !json::is_object(e)) {
            provenance.entry_point = r.text(entry_point, external_at.key("entryPoint"));
        }
    }
    let internal_at = definition_at.key("internalParameters");
    if let Some([github]) = r.object(internal, internal_at, &["github"]) {
        let github_at = internal_at.key("github");
        if let Some([event, actor, actor_id]) =
            github.and_then(|g| json::members(g, &["event_name", "actor", "actor_id"]))
        {
            provenance.trigger_event = r.text(event, github_at.key("event_name"));
            provenance.trigger = r.text(actor, github_at.key("actor"));
            provenance.trigger_id = r.text(actor_id, github_at.key("actor_id"));
        }
    }
    let dependencies = git_dependencies(r, dependencies, definition_at.key("resolvedDependencies"))?;
    set_source(r, &mut provenance, source, None, dependencies);
    if workflow_ref.is_some() {
        provenance.source_ref = workflow_ref;
    }
    Ok(provenance)
}

/// The members of a v0.2 predicate.
struct V0_2<'a> {
    builder: Option<&'a RawValue>,
    build_type: Option<&'a RawValue>,
    invocation: Option<&'a RawValue>,
    metadata: Option<&'a RawValue>,
    materials: Option<&'a RawValue>,
}

fn v0_2(r: &mut Reader<'_>, predicate: V0_2<'_>, at: Ptr<'_>) -> Result<Provenance, EvidenceError> {
    let mut provenance = Provenance { slsa_version: "v0.2".to_owned(), ..Provenance::default() };
    let builder_at = at.key("builder");
    if let Some([id]) = r.object(predicate.builder, builder_at, &["id"]) {
        provenance.builder_id = r.text(id, builder_at.key("id"));
    }
    provenance.build_type = r.text(predicate.build_type, at.key("buildType"));
    let metadata_at = at.key("metadata");
    if let Some([invocation_id]) = r.object(predicate.metadata, metadata_at, &["buildInvocationId"]) {
        provenance.invocation_id = r.text(invocation_id, metadata_at.key("buildInvocationId"));
    }
    let mut source = None;
    let mut source_commit = None;
    let mut environment_ref = None;
    let invocation_at = at.key("invocation");
    if let Some([config_source, environment]) =
        r.object(predicate.invocation, invocation_at, &["configSource", "environment"])
    {
        let config_at = invocation_at.key("configSource");
        if let Some([uri, digest, entry_point]) = r.object(config_source, config_at, &["uri", "digest", "entryPoint"]) {
            let at = config_at.key("uri");
            source = r.text(uri, at).map(|uri| Source { uri, at: at.to_string() });
            source_commit = commit(r, digest, config_at.key("digest"));
            provenance.entry_point = r.text(entry_point, config_at.key("entryPoint"));
        }
        let environment_at = invocation_at.key("environment");
        if let Some([actor, actor_id, event, git_ref]) = r.object(
            environment,
            environment_at,
            &["github_actor", "github_actor_id", "github_event_name", "github_ref"],
        ) {
            provenance.trigger = r.text(actor, environment_at.key("github_actor"));
            provenance.trigger_id = r.text(actor_id, environment_at.key("github_actor_id"));
            provenance.trigger_event = r.text(event, environment_at.key("github_event_name"));
            environment_ref = r.text(git_ref, environment_at.key("github_ref"));
        }
    }
    let materials = git_dependencies(r, predicate.materials, at.key("materials"))?;
    set_source(r, &mut provenance, source, source_commit, materials);
    if provenance.source_ref.is_none() {
        provenance.source_ref = environment_ref;
    }
    Ok(provenance)
}

/// A source URI, and where the provenance gives it.
struct Source {
    uri: String,
    at: String,
}

/// A `git+` dependency or material: its URI, commit, and where it is.
struct GitDependency {
    source: Source,
    commit: Option<String>,
}

/// The dependencies (v1) or materials (v0.2) whose URI starts `git+`, at most
/// `limits.max_list_len` of them.
fn git_dependencies(
    r: &mut Reader<'_>,
    raw: Option<&RawValue>,
    at: Ptr<'_>,
) -> Result<Vec<GitDependency>, EvidenceError> {
    let mut out = Vec::new();
    r.each(raw, at, |r, at, raw| {
        let Some([uri, digest]) = r.object(Some(raw), at, &["uri", "digest"]) else { return Ok(()) };
        let uri_at = at.key("uri");
        let Some(uri) = r.text(uri, uri_at).filter(|uri| uri.starts_with("git+")) else { return Ok(()) };
        if out.len() >= r.limits.max_list_len {
            return Err(EvidenceError::TooMany { what: "git dependencies", max: r.limits.max_list_len });
        }
        let commit = commit(r, digest, at.key("digest"));
        out.push(GitDependency { source: Source { uri, at: uri_at.to_string() }, commit });
        Ok(())
    })?;
    Ok(out)
}

/// The `gitCommit` (else `sha1`) digest of a digest set, if it is a commit id.
fn commit(r: &mut Reader<'_>, digest: Option<&RawValue>, at: Ptr<'_>) -> Option<String> {
    let [git_commit, sha1] = r.object(digest, at, &["gitCommit", "sha1"])?;
    let (value, value_at) = match git_commit {
        Some(value) => (value, at.key("gitCommit")),
        None => (sha1?, at.key("sha1")),
    };
    let text = r.text(Some(value), value_at)?;
    let commit = normalize::commit(&text);
    if commit.is_none() {
        r.note(value_at, format!("`{}` is not a git commit id", echo(&text)));
    }
    commit
}

/// Fills the source fields from the named `source` (else the first git dependency), its commit
/// (else the commit of the dependency on the same repository) and the ref its URI names.
fn set_source(
    r: &mut Reader<'_>,
    provenance: &mut Provenance,
    source: Option<Source>,
    commit: Option<String>,
    dependencies: Vec<GitDependency>,
) {
    let first = || dependencies.first().map(|d| Source { uri: d.source.uri.clone(), at: d.source.at.clone() });
    let Some(Source { uri: raw, at }) = source.or_else(first) else { return };
    let SourceUri { repository, git_ref } = normalize::source_uri(&raw);
    if repository.is_none() {
        r.note_at(at, format!("`{}` names no repository airlock can read", echo(&raw)));
    }
    let same_repository =
        |d: &&GitDependency| repository.is_some() && normalize::source_uri(&d.source.uri).repository == repository;
    provenance.source_commit =
        commit.or_else(|| dependencies.iter().find(same_repository).and_then(|d| d.commit.clone()));
    provenance.source_ref = git_ref;
    provenance.source_repository = repository;
    provenance.source_repository_raw = Some(raw);
}
