//! Helpers for promotion tests: a policy that denies critical vulnerabilities, signed
//! attestations pushed as referrers, their predicates, and TOTP secrets read back from
//! enrollment.

use std::collections::BTreeMap;

use airlock_dsse::{DSSE_MEDIA_TYPE, Envelope, IN_TOTO_PAYLOAD_TYPE, PrivateKey, Statement, StatementSubject};
#[cfg(feature = "server")]
use http::{Method, StatusCode};
use serde_json::{Value, json};

#[cfg(feature = "server")]
use crate::TestApp;
use crate::oci::{Image, OCI_MANIFEST, digest};

/// A policy bundle's one file: it denies each critical vulnerability (rule `no-critical`, naming
/// the vulnerability so a waiver can match it), so the policy gate has something to decide.
pub const DENY_CRITICAL_POLICY: &str = r#"package airlock
import rego.v1

deny contains {"rule": "no-critical", "msg": sprintf("`%s` is critical", [v.id]), "vulnerability": v.id, "remediation": "upgrade the package, or attach a VEX"} if {
	some v in input.evidence.vulnerabilities
	v.severity == "critical"
}
"#;

/// The predicate type of SLSA provenance v1.
pub const PROVENANCE: &str = "https://slsa.dev/provenance/v1";
/// The predicate type of cosign's vulnerability scan.
pub const SCAN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

/// Decodes RFC 4648 base32 without padding, as TOTP enrollment returns secrets.
pub fn base32_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {c}"),
        };
        buffer = (buffer << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// SLSA provenance of a GitHub Actions build of `acme/payments` that `trigger` started.
pub fn provenance(subject: &Image, trigger: &str) -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": "https://github.com/acme/payments", "path": ".github/workflows/release.yml"}},
            "internalParameters": {"github": {"actor": trigger, "event_name": "push"}},
        },
        "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}, "metadata": {"invocationId": format!("run-{}", subject.digest())}},
    })
}

/// A Trivy scan, in cosign's predicate, finding each of `critical` in openssl.
pub fn scan(critical: &[&str]) -> Value {
    let results: Vec<Value> = critical
        .iter()
        .map(|id| json!({"VulnerabilityID": id, "PkgName": "openssl", "InstalledVersion": "3.0.1", "Severity": "CRITICAL"}))
        .collect();
    json!({
        "invocation": {"uri": "https://github.com/aquasecurity/trivy", "event_id": "1"},
        "scanner": {"uri": "pkg:github/aquasecurity/trivy@0.50.0", "version": "0.50.0", "result": {"SchemaVersion": 2, "Results": [{"Target": "app", "Vulnerabilities": results}]}},
        "metadata": {"scanStartedOn": "2026-11-26T04:00:00Z", "scanFinishedOn": "2026-11-26T04:01:00Z"},
    })
}

/// A signed statement about an image, as the referrer that carries it: the blobs (an empty
/// config and the DSSE envelope) and the manifest naming the image as its subject.
#[derive(Debug, Clone)]
pub struct Attestation {
    pub config: Vec<u8>,
    pub envelope: Vec<u8>,
    pub manifest: Vec<u8>,
    /// The referrer manifest's digest.
    pub digest: String,
}

/// Signs a statement of `predicate_type` about `subject` (named `repo`) with `key`.
pub fn attestation(
    repo: &str,
    subject: &Image,
    predicate_type: &str,
    predicate: &Value,
    key: &PrivateKey,
) -> Attestation {
    let digests = BTreeMap::from([("sha256".to_owned(), subject.digest().trim_start_matches("sha256:").to_owned())]);
    let statement =
        Statement::new(vec![StatementSubject { name: repo.to_owned(), digest: digests }], predicate_type, predicate);
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_json(), &[key]).expect("signs").to_json();
    let config = b"{}".to_vec();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": IN_TOTO_PAYLOAD_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": DSSE_MEDIA_TYPE, "digest": digest(&envelope), "size": envelope.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest(), "size": subject.manifest.len()},
    }))
    .expect("json");
    Attestation { digest: digest(&manifest), config, envelope, manifest }
}

/// Signs a statement about `subject` with `key` and pushes it into `repo` as a referrer, as the
/// tester; returns the referrer's digest.
#[cfg(feature = "server")]
pub async fn attest(
    app: &TestApp,
    repo: &str,
    subject: &Image,
    predicate_type: &str,
    predicate: &Value,
    key: &PrivateKey,
) -> String {
    let (referrer, reply) = push_attestation(app, repo, subject, predicate_type, predicate, key).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    referrer
}

/// Like [`attest`], but returns the status and body of the referrer's push, whatever they are.
#[cfg(feature = "server")]
pub async fn try_attest(
    app: &TestApp,
    repo: &str,
    subject: &Image,
    predicate_type: &str,
    predicate: &Value,
    key: &PrivateKey,
) -> (StatusCode, String) {
    let (_, reply) = push_attestation(app, repo, subject, predicate_type, predicate, key).await;
    (reply.status, String::from_utf8_lossy(&reply.body).into_owned())
}

#[cfg(feature = "server")]
async fn push_attestation(
    app: &TestApp,
    repo: &str,
    subject: &Image,
    predicate_type: &str,
    predicate: &Value,
    key: &PrivateKey,
) -> (String, crate::Reply) {
    let signed = attestation(repo, subject, predicate_type, predicate, key);
    app.push_blob(repo, &signed.config).await;
    app.push_blob(repo, &signed.envelope).await;
    let referrer = signed.digest;
    let reply = app
        .send(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{referrer}"),
            &[("content-type", OCI_MANIFEST)],
            signed.manifest,
        )
        .await;
    (referrer, reply)
}
