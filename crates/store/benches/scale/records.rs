//! The records the scale bench stores: OCI image and attestation manifests, their blobs, and the
//! log events Airlock writes for them, shaped as a real push and a real gate decision write them.

use airlock_core::audit::{Actor, Event, EventKind, Outcome, Subject};
use airlock_model::{Digest, PrincipalId, PrincipalKind, RepoName, Tag, Timestamp};
use bytes::Bytes;
use serde_json::json;

pub const IMAGE_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// The four attestations every attested image carries, as `bench/promote.sh` attaches them.
pub const PREDICATES: [&str; 4] = [
    "https://slsa.dev/provenance/v1",
    "https://cyclonedx.org/bom",
    "https://cosign.sigstore.dev/attestation/vuln/v1",
    "https://openvex.dev/ns/v0.2.0",
];

/// The empty config of an attestation manifest, shared by all of them.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// A small deterministic generator (splitmix64): the bench needs spread, not secrecy.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[0, n)`; `n` must be above zero.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The account CI pushes and asks for decisions as.
pub fn ci(request: u64) -> Actor {
    let id = PrincipalId::parse("ci").expect("valid principal");
    Actor::authenticated(&id, PrincipalKind::ServiceAccount, format!("req-{request:012x}"))
}

pub fn repo(name: &str) -> RepoName {
    RepoName::parse(name).expect("valid repository name")
}

pub fn tag(name: &str) -> Tag {
    Tag::parse(name).expect("valid tag")
}

/// Repository `n` of the loaded ones (in `stage`).
pub fn repo_name(stage: &str, n: u64) -> String {
    format!("{stage}/team-{n:04}/app")
}

/// One image: its config bytes (stored inline), its layer (in the blob store: only its digest and
/// size are recorded) and its manifest.
#[derive(Debug, Clone)]
pub struct Image {
    pub config: Bytes,
    pub config_digest: Digest,
    pub layer_digest: Digest,
    pub layer_size: u64,
    pub body: Bytes,
    pub digest: Digest,
}

/// Image number `n` (unique across the run; `salt` tells fixtures from loaded images).
pub fn image(salt: &str, n: u64) -> Image {
    let config = Bytes::from(
        json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Entrypoint": ["/app"]},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(format!("{salt} diff {n}").as_bytes()).as_str()]},
            "created": "2026-12-07T00:00:00Z",
        })
        .to_string(),
    );
    let config_digest = Digest::of(&config);
    let layer_digest = Digest::of(format!("{salt} layer {n}").as_bytes());
    let layer_size = 3_000_000 + n % 1_000_000;
    let body = Bytes::from(
        json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest.as_str(), "size": config.len()},
            "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest.as_str(), "size": layer_size}],
        })
        .to_string(),
    );
    let digest = Digest::of(&body);
    Image { config, config_digest, layer_digest, layer_size, body, digest }
}

/// One attestation referrer of an image: a DSSE envelope (its one layer, stored inline) in a
/// manifest whose subject is the image.
#[derive(Debug, Clone)]
pub struct Attestation {
    pub predicate_type: &'static str,
    pub envelope: Bytes,
    pub envelope_digest: Digest,
    pub body: Bytes,
    pub digest: Digest,
}

/// The attestation of `predicate_type` about `subject` (an image manifest of `subject_size`
/// bytes): a ~1.2 KB envelope, about what a signed SLSA provenance statement weighs.
pub fn attestation(subject: &Digest, subject_size: usize, predicate_type: &'static str) -> Attestation {
    let seed = Digest::of(format!("{subject} {predicate_type}").as_bytes());
    // Stand-in payload and signature bytes: hex of chained digests, the length of the real ones.
    let mut filler = String::new();
    while filler.len() < 1000 {
        filler.push_str(Digest::of(format!("{seed}{}", filler.len()).as_bytes()).hex());
    }
    let envelope = Bytes::from(
        json!({
            "payloadType": IN_TOTO,
            "payload": &filler[..900],
            "signatures": [{"keyid": "ci", "sig": &filler[900..988]}],
        })
        .to_string(),
    );
    let envelope_digest = Digest::of(&envelope);
    let body = Bytes::from(
        json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_MEDIA_TYPE,
            "artifactType": IN_TOTO,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": Digest::of(EMPTY_CONFIG).as_str(), "size": 2},
            "layers": [{"mediaType": ENVELOPE_MEDIA_TYPE, "digest": envelope_digest.as_str(), "size": envelope.len(),
                        "annotations": {"in-toto.io/predicate-type": predicate_type}}],
            "subject": {"mediaType": IMAGE_MEDIA_TYPE, "digest": subject.as_str(), "size": subject_size},
        })
        .to_string(),
    );
    let digest = Digest::of(&body);
    Attestation { predicate_type, envelope, envelope_digest, body, digest }
}

/// The verdict stored with a trusted attestation, in the store's JSON form.
pub fn verdict_json() -> String {
    json!({"trusted": true, "signers": ["ci"], "reasons": [], "root_version": 2}).to_string()
}

/// The events `put_manifest` logs for an image pushed with a tag that did not exist: the push,
/// then the tag's creation.
pub fn push_events(repo: &RepoName, digest: &Digest, tag: &Tag, actor: &Actor, now: Timestamp) -> [Event; 2] {
    let subject = Subject { repository: Some(repo.clone()), digest: Some(digest.clone()), tag: Some(tag.clone()) };
    [
        Event::allowed(EventKind::ManifestPush, actor, now, subject.clone()),
        Event::allowed(EventKind::TagCreate, actor, now, subject),
    ]
}

/// The events `put_manifest` logs for an attestation manifest: the push, then the ingest with the
/// verdict's signers.
pub fn attestation_events(
    repo: &RepoName,
    subject: &Digest,
    a: &Attestation,
    actor: &Actor,
    now: Timestamp,
) -> [Event; 2] {
    let pushed = Subject { repository: Some(repo.clone()), digest: Some(a.digest.clone()), tag: None };
    let about = Subject { repository: Some(repo.clone()), digest: Some(subject.clone()), tag: None };
    [
        Event::allowed(EventKind::ManifestPush, actor, now, pushed),
        Event::allowed(EventKind::AttestationIngest, actor, now, about)
            .with_detail("referrer", json!(a.digest.as_str()))
            .with_detail("predicate_type", json!(a.predicate_type))
            .with_detail("signers", json!(["ci"]))
            .with_detail("root_version", json!(2)),
    ]
}

/// The event a gate decision (`POST …/evaluate`) logs; one in five is a denial.
pub fn decision_event(repo: &RepoName, digest: &Digest, n: u64, actor: &Actor, now: Timestamp) -> Event {
    let subject = Subject { repository: Some(repo.clone()), digest: Some(digest.clone()), tag: None };
    let mut event = Event::allowed(EventKind::PolicyEvaluate, actor, now, subject)
        .with_detail("target_stage", json!("staging"))
        .with_detail("bundle_digest", json!(Digest::of(b"default library").as_str()))
        .with_detail("input_digest", json!(Digest::of(format!("input {n}").as_bytes()).as_str()));
    if n.is_multiple_of(5) {
        event.outcome = Outcome::Denied {
            reasons: vec!["no-critical: critical vulnerability CVE-2026-0001 in openssl 3.0.1".to_owned()],
        };
    }
    event
}
