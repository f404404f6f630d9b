//! Keys, the trust root ceremony and attestations through the `airlock` binary: init, apply,
//! attest, offline verification, rotation with revocation, a refused lone-key root, and
//! interoperability with Python's securesystemslib and in-toto on the envelopes `attest` pushed.

use std::path::Path;
use std::process::{Command, Output};

use airlock_test_support::oci::Image;
use airlock_test_support::process::ServerProcess;

use crate::{airlock, login_key_admin, python, run, trust_apply, trust_init};

fn airlock_cmd(args: &[&str]) -> Output {
    Command::new(airlock()).args(args).output().expect("airlock runs")
}

/// The binary with the `tester` service account's credentials, as CI would run it.
fn airlock_as(server: &ServerProcess, args: &[&str]) -> Output {
    Command::new(airlock())
        .args(args)
        .env("AIRLOCK_USERNAME", "tester")
        .env("AIRLOCK_PASSWORD", &server.tester_key)
        .output()
        .expect("airlock runs")
}

fn ok(output: Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

fn push_image(server: &ServerProcess, repo: &str) -> String {
    let image = Image::new(&[("app", b"release candidate")]);
    for blob in image.blobs() {
        let d = airlock_test_support::oci::digest(blob);
        assert_eq!(server.request("POST", &format!("/v2/{repo}/blobs/uploads/?digest={d}"), &[], blob).status, 201);
    }
    let put = server.request(
        "PUT",
        &format!("/v2/{repo}/manifests/1.0"),
        &[("Content-Type", image.media_type())],
        &image.manifest,
    );
    assert_eq!(put.status, 201);
    image.digest()
}

/// The envelope the registry holds for a referrer, written to `out`.
fn fetch_envelope(server: &ServerProcess, repo: &str, referrer: &str, out: &Path) {
    let manifest = server.request("GET", &format!("/v2/{repo}/manifests/{referrer}"), &[], b"");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.body).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = server.request("GET", &format!("/v2/{repo}/blobs/{layer}"), &[], b"");
    assert_eq!(blob.status, 200);
    std::fs::write(out, &blob.body).unwrap();
}

fn python_verifies(public: &Path, envelope: &Path) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dsse_interop.py");
    let out = Command::new(python())
        .arg(script)
        .args(["verify", "--key"])
        .arg(public)
        .arg("--envelope")
        .arg(envelope)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the Python verifier ({e}); run the tests through scripts/test"));
    out.status.success()
}

#[test]
fn the_trust_ceremony_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let url = format!("http://{}", server.addr);
    let digest = push_image(&server, "dev/app");

    let ci = ok(airlock_cmd(&["key", "generate", "--algorithm", "ed25519", "--out", &d("ci"), "--output", "json"]));
    let ci_keyid = ci["keyid"].as_str().unwrap().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d("ci.key")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    ok(trust_init(dir.path(), 3, 2).output().expect("airlock runs"));
    // Applying a root is a key admin's duty: anonymously it is refused (exit 1: not logged in).
    let keys_home = dir.path().join("home-keys");
    let anonymous = trust_apply(&keys_home, &d("root/root.json"), &["--server", &url]);
    assert_eq!(anonymous.status.code(), Some(1), "{}", String::from_utf8_lossy(&anonymous.stderr));
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("airlock login"));
    login_key_admin(&server, &keys_home);
    ok(trust_apply(&keys_home, &d("root/root.json"), &["--server", &url, "--output", "json"]));

    // CI signs provenance; the registry trusts it at ingest.
    std::fs::write(d("provenance.json"), r#"{"buildDefinition":{"buildType":"https://example.com/ci"}}"#).unwrap();
    let attested = ok(airlock_as(
        &server,
        &[
            "attest",
            &format!("dev/app@{digest}"),
            "--predicate-type",
            "https://slsa.dev/provenance/v1",
            "--predicate",
            &d("provenance.json"),
            "--key",
            &d("ci.key"),
            "--server",
            &url,
            "--output",
            "json",
        ],
    ));
    assert_eq!(attested["evidence"]["status"], "trusted", "{attested}");
    let referrer = attested["referrer"].as_str().unwrap().to_owned();

    // The envelope as stored verifies in securesystemslib/in-toto and offline in airlock.
    fetch_envelope(&server, "dev/app", &referrer, &dir.path().join("envelope.json"));
    assert!(python_verifies(&dir.path().join("ci.pub"), &dir.path().join("envelope.json")));
    let offline = airlock_cmd(&[
        "attestation",
        "verify",
        &d("envelope.json"),
        "--trust-root",
        &d("root/root.json"),
        "--subject",
        &digest,
        "--repository",
        "dev/app",
        "--output",
        "json",
    ]);
    assert_eq!(ok(offline)["signers"], serde_json::json!(["ci"]));
    let wrong_subject = airlock_cmd(&[
        "attestation",
        "verify",
        &d("envelope.json"),
        "--trust-root",
        &d("root/root.json"),
        "--subject",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "--repository",
        "dev/app",
    ]);
    assert_eq!(wrong_subject.status.code(), Some(3));

    // Rotate `ci` to a new key and revoke the old one: propose, two root keys sign, apply.
    ok(airlock_cmd(&["key", "generate", "--out", &d("ci2"), "--output", "json"]));
    ok(airlock_cmd(&[
        "trust",
        "propose",
        "--server",
        &url,
        "--out",
        &d("v2.json"),
        "--rotate-signer",
        "ci",
        "--signer-key",
        &d("ci2.pub"),
        "--revoke",
        &ci_keyid,
        "--reason",
        "rotated",
        "--output",
        "json",
    ]));
    let half = trust_apply(&keys_home, &d("v2.json"), &["--server", &url]);
    assert_eq!(half.status.code(), Some(3), "an unsigned proposal is refused");
    ok(airlock_cmd(&["trust", "sign", &d("v2.json"), "--key", &d("root/root-1.key"), "--output", "json"]));
    ok(airlock_cmd(&["trust", "sign", &d("v2.json"), "--key", &d("root/root-3.key"), "--output", "json"]));
    ok(trust_apply(&keys_home, &d("v2.json"), &["--server", &url, "--output", "json"]));

    let evidence = server.request("GET", &format!("/api/v1/artifacts/dev/app/{digest}/evidence"), &[], b"");
    let evidence: serde_json::Value = serde_json::from_slice(&evidence.body).unwrap();
    assert_eq!(evidence["trust_root_version"], 2);
    let old = &evidence["attestations"][0];
    assert_eq!(old["status"], "untrusted", "{old}");
    assert!(old["current"]["reasons"].to_string().contains("revoked"), "{old}");
    let revoked = airlock_cmd(&[
        "attestation",
        "verify",
        &d("envelope.json"),
        "--trust-root",
        &d("v2.json"),
        "--subject",
        &digest,
        "--repository",
        "dev/app",
    ]);
    assert_eq!(revoked.status.code(), Some(3), "{}", String::from_utf8_lossy(&revoked.stdout));
    let fresh = ok(airlock_as(
        &server,
        &[
            "attest",
            &format!("dev/app@{digest}"),
            "--predicate-type",
            "https://slsa.dev/provenance/v1",
            "--predicate",
            &d("provenance.json"),
            "--key",
            &d("ci2.key"),
            "--server",
            &url,
            "--output",
            "json",
        ],
    ));
    assert_eq!(fresh["evidence"]["status"], "trusted");

    // A v3 signed by a single root key is refused.
    ok(airlock_cmd(&["trust", "propose", "--from", &d("v2.json"), "--out", &d("v3.json"), "--output", "json"]));
    ok(airlock_cmd(&["trust", "sign", &d("v3.json"), "--key", &d("root/root-2.key"), "--output", "json"]));
    let lone = trust_apply(&keys_home, &d("v3.json"), &["--server", &url, "--output", "json"]);
    assert_eq!(lone.status.code(), Some(3));
    let shown = ok(airlock_cmd(&["trust", "show", "--server", &url, "--output", "json"]));
    assert_eq!(shown["signed"]["version"], 2);
}

#[test]
fn p256_envelopes_interoperate_with_securesystemslib() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let url = format!("http://{}", server.addr);
    let digest = push_image(&server, "dev/app");
    ok(airlock_cmd(&["key", "generate", "--algorithm", "p256", "--out", &d("scanner"), "--output", "json"]));
    std::fs::write(d("scan.json"), r#"{"scanner":{"uri":"https://example.com/scanner"},"result":[]}"#).unwrap();
    let attested = ok(airlock_as(
        &server,
        &[
            "attest",
            &format!("dev/app@{digest}"),
            "--predicate-type",
            "https://cosign.sigstore.dev/attestation/vuln/v1",
            "--predicate",
            &d("scan.json"),
            "--key",
            &d("scanner.key"),
            "--server",
            &url,
            "--output",
            "json",
        ],
    ));
    assert_eq!(attested["evidence"]["status"], "untrusted", "no root: recorded, not trusted");
    let referrer = attested["referrer"].as_str().unwrap().to_owned();
    fetch_envelope(&server, "dev/app", &referrer, &dir.path().join("envelope.json"));
    assert!(python_verifies(&dir.path().join("scanner.pub"), &dir.path().join("envelope.json")));
    // And a tampered copy fails there too.
    let mut envelope: serde_json::Value = serde_json::from_slice(&std::fs::read(d("envelope.json")).unwrap()).unwrap();
    envelope["payloadType"] = serde_json::json!("application/vnd.tampered+json");
    std::fs::write(d("tampered.json"), serde_json::to_vec(&envelope).unwrap()).unwrap();
    assert!(!python_verifies(&dir.path().join("scanner.pub"), &dir.path().join("tampered.json")));
    let _ = run;
}

#[test]
fn policy_and_evidence_commands() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(airlock(), &dir.path().join("data"));
    let url = format!("http://{}", server.addr);
    let digest = push_image(&server, "dev/app");
    let artifact = format!("dev/app@{digest}");

    let input =
        ok(airlock_as(&server, &["policy", "input", "--artifact", &artifact, "--to", "staging", "--server", &url]));
    assert_eq!(input["target_stage"], "staging");
    assert_eq!(input["artifact"]["digest"], serde_json::json!(digest));

    // Gathered from the server, evaluated locally with the default library: denied, with fixes.
    let eval = airlock_as(&server, &["policy", "eval", "--artifact", &artifact, "--to", "staging", "--server", &url]);
    assert_eq!(eval.status.code(), Some(3), "{}", String::from_utf8_lossy(&eval.stderr));
    let text = String::from_utf8_lossy(&eval.stdout);
    assert!(text.starts_with("DENY") && text.contains("[provenance-required]") && text.contains("fix:"), "{text}");
    let input_file = dir.path().join("input.json");
    std::fs::write(&input_file, serde_json::to_vec(&input).unwrap()).unwrap();
    let json_eval = airlock_cmd(&["policy", "eval", "--input", input_file.to_str().unwrap(), "--output", "json"]);
    assert_eq!(json_eval.status.code(), Some(3));
    let decision: serde_json::Value = serde_json::from_slice(&json_eval.stdout).unwrap();
    assert_eq!(decision["outcome"], "deny");

    let tests = airlock_cmd(&["policy", "test"]);
    assert!(tests.status.success(), "{}", String::from_utf8_lossy(&tests.stdout));
    assert!(String::from_utf8_lossy(&tests.stdout).contains("PASS:"));

    let report = Path::new(env!("CARGO_MANIFEST_DIR")).join("../evidence/tests/data/trivy/payments-api.trivy.json");
    let shown = ok(airlock_cmd(&["evidence", "show", report.to_str().unwrap(), "--output", "json"]));
    assert_eq!(shown["format"], "trivy");
    assert!(!shown["evidence"]["vulnerabilities"].as_array().unwrap().is_empty());
    let not_evidence = airlock_cmd(&["evidence", "show", input_file.to_str().unwrap()]);
    assert_eq!(not_evidence.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_evidence.stderr).contains("--format"));
}

/// Policy signers through the binary: `trust init --policy-key`, `policy sign` by each signer
/// into one `bundle.sig`, a second signature by the same key and a stale file refused, and
/// `trust propose` changing the policy role.
#[test]
fn policy_signers_sign_a_bundle_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for k in ["p1", "p2"] {
        ok(airlock_cmd(&["key", "generate", "--out", &d(k), "--output", "json"]));
    }
    ok(airlock_cmd(&[
        "trust",
        "init",
        "--dir",
        &d("root"),
        "--root-keys",
        "1",
        "--threshold",
        "1",
        "--policy-key",
        &d("p1.pub"),
        "--policy-key",
        &d("p2.pub"),
        "--policy-threshold",
        "2",
        "--output",
        "json",
    ]));
    let bytes = std::fs::read(d("root/root.json")).unwrap();
    let doc = airlock_trust::RootDocument::parse(&bytes, &airlock_trust::RootLimits::default()).unwrap();
    let role = doc.root().policy.clone().expect("the root names policy signers");
    assert_eq!((role.keyids.len(), role.threshold), (2, 2));
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let now = airlock_model::Timestamp::from_millis(i64::try_from(ms).unwrap());
    let root = airlock_trust::TrustedRoot::bootstrap(doc, now).unwrap();
    let (keys, threshold) = root.policy_signers().unwrap();

    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("policy.rego"), "package airlock\n\nimport rego.v1\n\ndeny contains \"x\" if input.x\n")
        .unwrap();
    let b = bundle.to_str().unwrap();
    let first = ok(airlock_cmd(&["policy", "sign", b, "--key", &d("p1.key"), "--output", "json"]));
    assert_eq!(first["signatures"], 1);
    let load = || airlock_policy::Bundle::load_dir(&bundle).unwrap();
    let under = airlock_policy::verify_bundle(&load(), &keys, threshold).unwrap_err().to_string();
    assert!(under.contains("needs 2"), "{under}");
    let twice = airlock_cmd(&["policy", "sign", b, "--key", &d("p1.key")]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("has already signed"));
    let second = ok(airlock_cmd(&["policy", "sign", b, "--key", &d("p2.key"), "--output", "json"]));
    assert_eq!(second["signatures"], 2);
    assert_eq!(airlock_policy::verify_bundle(&load(), &keys, threshold).unwrap().len(), 2);

    // An edit after signing: the file is stale, and adding to it is refused.
    std::fs::write(bundle.join("extra.rego"), "package airlock.extra\n").unwrap();
    let stale = airlock_cmd(&["policy", "sign", b, "--key", &d("p1.key")]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stale.stderr).contains("file `extra.rego` added"));

    // Version 2 drops a policy key and lowers the threshold.
    let p2_keyid = keys[1].keyid().to_string();
    let proposed = ok(airlock_cmd(&[
        "trust",
        "propose",
        "--from",
        &d("root/root.json"),
        "--out",
        &d("v2.json"),
        "--remove-policy-key",
        &p2_keyid,
        "--policy-threshold",
        "1",
        "--output",
        "json",
    ]));
    assert!(proposed["changes"].to_string().contains("removed policy key"), "{proposed}");
    let v2 = std::fs::read(d("v2.json")).unwrap();
    let v2 = airlock_trust::RootDocument::parse(&v2, &airlock_trust::RootLimits::default()).unwrap();
    let role = v2.root().policy.clone().unwrap();
    assert_eq!((role.keyids.len(), role.threshold), (1, 1));
}
