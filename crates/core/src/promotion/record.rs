//! The release record: what Airlock attaches to a promoted digest in its target repository. Two
//! in-toto Statements, each in a DSSE envelope signed with Airlock's release key: the promotion
//! predicate (everything the decision rested on) and a SLSA Verification Summary Attestation for
//! standard consumers. Each travels as an OCI referrer whose subject is the promoted manifest.

use std::collections::BTreeMap;

use airlock_dsse::{
    DSSE_MEDIA_TYPE, Envelope, EnvelopeLimits, IN_TOTO_PAYLOAD_TYPE, PrivateKey, PublicKey, Statement, StatementLimits,
    StatementSubject,
};
use airlock_model::manifest::OCI_EMPTY;
use airlock_model::{Digest, RepoName};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::ports::{EngineManifest, NewManifest};

/// The promotion predicate's type.
pub const PROMOTION_PREDICATE: &str = "https://airlock.dev/promotion/v1";
/// The SLSA Verification Summary Attestation's predicate type.
pub const VSA_PREDICATE: &str = "https://slsa.dev/verification_summary/v1";
/// The annotation naming a referrer's predicate type.
pub const PREDICATE_ANNOTATION: &str = "dev.airlock.predicate-type";
/// The OCI image manifest media type, which referrers use.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The empty JSON object, the config of every referrer.
const EMPTY_CONFIG: &[u8] = b"{}";

/// What the promoted manifest is, for the referrers' `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectDescriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// One statement, signed, wrapped as a referrer of `subject`.
pub fn attach(
    key: &PrivateKey,
    target: &RepoName,
    subject: &SubjectDescriptor,
    predicate_type: &str,
    predicate: &Value,
    created: &str,
) -> Result<EngineManifest, String> {
    let statement = Statement::new(
        vec![StatementSubject {
            name: target.to_string(),
            digest: BTreeMap::from([("sha256".to_owned(), subject.digest.hex().to_owned())]),
        }],
        predicate_type,
        predicate,
    );
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_json(), &[key])
        .map_err(|e| format!("cannot sign the release record: {e}"))?;
    let envelope = Bytes::from(envelope.to_json());
    let envelope_digest = Digest::of(&envelope);
    let config = Bytes::from_static(EMPTY_CONFIG);
    let config_digest = Digest::of(&config);
    let annotations = json!({
        PREDICATE_ANNOTATION: predicate_type,
        "org.opencontainers.image.created": created,
    });
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": IN_TOTO_PAYLOAD_TYPE,
        "config": {"mediaType": OCI_EMPTY, "digest": config_digest.as_str(), "size": config.len()},
        "layers": [{"mediaType": DSSE_MEDIA_TYPE, "digest": envelope_digest.as_str(), "size": envelope.len()}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.as_str(), "size": subject.size},
        "annotations": annotations,
    });
    let body = Bytes::from(serde_json::to_vec(&body).map_err(|e| e.to_string())?);
    let digest = Digest::of(&body);
    Ok(EngineManifest {
        manifest: NewManifest {
            digest,
            media_type: OCI_MANIFEST.to_owned(),
            body,
            artifact_type: Some(IN_TOTO_PAYLOAD_TYPE.to_owned()),
            subject: Some(subject.digest.clone()),
            annotations_json: annotations.to_string(),
            required_blobs: vec![config_digest.clone(), envelope_digest.clone()],
            required_manifests: Vec::new(),
            attestation: None,
        },
        blobs: vec![(config_digest, config), (envelope_digest, envelope)],
    })
}

/// What a verified release record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRecord {
    pub promotion: String,
    pub target_repository: String,
    pub target_stage: String,
    pub digest: String,
    pub log_index: u64,
    pub break_glass: bool,
    pub predicate: Value,
}

/// Why a release record does not prove a promotion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("release record is malformed: {0}")]
    Malformed(String),
    #[error("release record is not signed by the release key `{keyid}`: {reason}")]
    Signature { keyid: String, reason: String },
    #[error("release record is a `{found}` statement, not `{expected}`")]
    PredicateType { found: String, expected: &'static str },
    #[error("release record is about `{found}`, not `{expected}`")]
    Subject { found: String, expected: String },
    #[error("release record promotes into `{found}`, not `{expected}`")]
    Stage { found: String, expected: String },
}

/// Verifies a release record envelope with the release key, for `digest` promoted into `stage`.
pub fn verify_record(
    envelope: &[u8],
    release_key: &PublicKey,
    digest: &Digest,
    stage: &str,
) -> Result<VerifiedRecord, RecordError> {
    let predicate = verify_statement(envelope, release_key, digest, PROMOTION_PREDICATE)?;
    let target_stage = predicate.pointer("/target/stage").and_then(Value::as_str).unwrap_or_default().to_owned();
    if target_stage != stage {
        return Err(RecordError::Stage { found: target_stage, expected: stage.to_owned() });
    }
    let found = predicate.get("digest").and_then(Value::as_str).unwrap_or_default();
    if found != digest.as_str() {
        return Err(RecordError::Subject { found: found.to_owned(), expected: digest.to_string() });
    }
    Ok(VerifiedRecord {
        promotion: predicate.get("promotion").and_then(Value::as_str).unwrap_or_default().to_owned(),
        target_repository: predicate
            .pointer("/target/repository")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        target_stage,
        digest: found.to_owned(),
        log_index: predicate
            .pointer("/log/index")
            .and_then(Value::as_u64)
            .ok_or_else(|| RecordError::Malformed("`log.index` is missing".to_owned()))?,
        break_glass: predicate.get("break_glass").and_then(Value::as_bool) == Some(true),
        predicate,
    })
}

/// Verifies a signed statement of `predicate_type` about `digest`; returns its predicate.
pub fn verify_statement(
    envelope: &[u8],
    key: &PublicKey,
    digest: &Digest,
    predicate_type: &'static str,
) -> Result<Value, RecordError> {
    let envelope =
        Envelope::parse(envelope, &EnvelopeLimits::default()).map_err(|e| RecordError::Malformed(e.to_string()))?;
    let (statement, _) = envelope
        .verify_in_toto(&[key], 1, &StatementLimits::default())
        .map_err(|e| RecordError::Signature { keyid: key.keyid().to_string(), reason: e.to_string() })?;
    if statement.predicate_type != predicate_type {
        return Err(RecordError::PredicateType { found: statement.predicate_type, expected: predicate_type });
    }
    let subjects: Vec<&str> = statement.sha256_subjects().collect();
    if subjects != [digest.hex()] {
        return Err(RecordError::Subject {
            found: subjects.iter().map(|h| format!("sha256:{h}")).collect::<Vec<_>>().join(", "),
            expected: digest.to_string(),
        });
    }
    serde_json::from_str(statement.predicate.get()).map_err(|e| RecordError::Malformed(e.to_string()))
}
