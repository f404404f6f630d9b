//! The promotion engine through the `airlock` binary with real clients: skopeo pushes into `dev`,
//! `airlock attest` signs provenance, a CI service account promotes to `staging` and asks for
//! `prod`, two release approvers with a second factor approve, skopeo pulls from `prod`, and
//! `airlock verify --offline` checks the release record against pinned keys.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use airlock_test_support::oci::Image;
use airlock_test_support::process::{Endpoint, ServerProcess};
use serde_json::{Value, json};

use crate::{airlock, cmd, run, show};

/// Writes the policy bundle and a config with the three stages, plus `extra` (TOML keys outside
/// the stages); returns the config's path.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let bundle = dir.join("policy");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("policy.rego"), airlock_test_support::promotion::DENY_CRITICAL_POLICY).unwrap();
    let config = format!(
        r#"{extra}
[policy]
bundle = "{}"

[[stages]]
name = "dev"
pushable = true

[[stages]]
name = "staging"
[[stages.attestations]]
name = "provenance"
predicate_types = ["https://slsa.dev/provenance/*"]
signers = ["ci"]

[[stages]]
name = "prod"
[stages.approvals]
count = 2
role = "release-approver"
"#,
        bundle.display()
    );
    let path = dir.join("airlock.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The binary with `tester`'s credentials in the environment, as CI passes them.
fn as_tester(home: &Path, server: &Endpoint, args: &[&str]) -> Output {
    cmd(home, args).env("AIRLOCK_USERNAME", "tester").env("AIRLOCK_PASSWORD", &server.tester_key).output().unwrap()
}

/// The JSON a command printed, after checking it exited with `code`.
fn json_with(output: &Output, code: i32) -> Value {
    assert_eq!(output.status.code(), Some(code), "{}", show(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", show(output)))
}

fn ok(output: &Output) -> Value {
    json_with(output, 0)
}

/// Logs in to `url` as `name` with `secret` and, for a session that may approve, a TOTP code.
fn login(home: &Path, url: &str, name: &str, secret: &str, otp: Option<&str>) -> Value {
    let mut args = vec!["login", url, "--username", name, "--output", "json"];
    if let Some(code) = otp {
        args.extend(["--otp", code]);
    }
    ok(&cmd(home, &args).env("AIRLOCK_PASSWORD", secret).output().unwrap())
}

/// Creates user `name` with `roles`, a password and the e-mail `NAME@example.com` (approvers
/// are people only with an e-mail) through the admin API, enrolls a TOTP authenticator for it,
/// and returns the current code.
fn user_with_mfa(server: &Endpoint, name: &str, password: &str, roles: &[&str]) -> String {
    let secret = server.user(name, password, roles, Some(&format!("{name}@example.com")));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    airlock_access::totp::code_at(&secret, now)
}

/// Pushes `image` with skopeo as `tester` to `repo:tag`.
fn skopeo_push(server: &Endpoint, dir: &Path, image: &Image, repo: &str, tag: &str) {
    let layout = dir.join(format!("layout-{tag}"));
    image.write_layout(&layout, tag);
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--preserve-digests"])
        .args(["--dest-creds", &format!("tester:{}", server.tester_key)])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{}/{repo}:{tag}", server.host())));
}

#[test]
fn promotion_with_real_clients_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = ServerProcess::start_with(
        airlock(),
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        "warn",
        Stdio::inherit(),
    );
    promote_end_to_end(dir.path(), &server);
}

/// The whole job through `server` (one server, or a load balancer in front of several), over a
/// config from [`write_config`]: trust root, pushes, attestation, gates, approvals, pulls from
/// prod and offline verification.
pub fn promote_end_to_end(dir: &Path, server: &Endpoint) {
    let d = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let url = format!("http://{}", server.addr);
    let home = |who: &str| dir.join(format!("home-{who}"));

    // A trust root whose `ci` signer may sign provenance for dev and staging.
    let (ci_pub, ci_priv, root_dir) = (d("ci.pub"), d("ci.key"), d("root"));
    ok(&cmd(&home("ceremony"), &["key", "generate", "--out", &d("ci"), "--output", "json"]).output().unwrap());
    let mut init = vec!["trust", "init", "--dir", &root_dir, "--signer", "ci", "--signer-key", &ci_pub];
    init.extend(["--predicate-type", "https://slsa.dev/provenance/*", "--repository", "dev/**"]);
    init.extend(["--repository", "staging/**", "--output", "json"]);
    let root = d("root/root.json");
    ok(&cmd(&home("ceremony"), &init).output().unwrap());
    crate::login_key_admin(server, &home("ceremony"));
    ok(&crate::trust_apply(&home("ceremony"), &root, &["--server", &url, "--output", "json"]));

    // skopeo pushes into dev; without provenance the staging gate denies, exit 3, with a fix.
    let image = Image::new(&[("app.bin", b"payments api 1.0"), ("etc/config", b"mode=prod\n")]);
    let digest = image.digest();
    skopeo_push(server, dir, &image, "dev/payments/api", "1.0");
    let ci_key = server.service_account("ci-bot", &["ci"]);
    let ci = home("ci-bot");
    assert_eq!(login(&ci, &url, "ci-bot", &ci_key, None)["kind"], "service_account");
    let to_staging = ["promote", "dev/payments/api:1.0", "--to", "staging", "--tag", "1.0", "--output", "json"];
    let denied = json_with(&cmd(&ci, &to_staging).output().unwrap(), 3);
    assert_eq!(denied["status"], "denied", "{denied}");
    let finding = &denied["report"]["findings"][0];
    assert_eq!(finding["rule"], "provenance", "{denied}");
    assert!(finding["remediation"].as_str().is_some_and(|r| !r.is_empty()), "{denied}");

    // CI attaches signed provenance naming `dave` as the build's trigger.
    let predicate = json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": "https://github.com/acme/payments", "path": ".github/workflows/release.yml"}},
            "internalParameters": {"github": {"actor": "dave", "event_name": "push"}},
        },
        "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}},
    });
    std::fs::write(d("provenance.json"), predicate.to_string()).unwrap();
    let (subject, predicate_file) = (format!("dev/payments/api@{digest}"), d("provenance.json"));
    let mut attest = vec!["attest", &subject, "--predicate-type", "https://slsa.dev/provenance/v1"];
    attest.extend(["--predicate", &predicate_file, "--key", &ci_priv, "--server", &url, "--output", "json"]);
    let attested = ok(&as_tester(&home("tester"), server, &attest));
    assert_eq!(attested["evidence"]["status"], "trusted", "{attested}");
    let provenance = attested["referrer"].as_str().expect("referrer digest").to_owned();

    // Asked again, the promotion into staging passes the provenance gate; no approval needed.
    let staged = ok(&cmd(&ci, &to_staging).output().unwrap());
    assert_eq!(staged["status"], "promoted", "{staged}");
    assert_eq!(staged["digest"], digest.as_str(), "{staged}");
    assert_eq!(staged["target"], "staging/payments/api", "{staged}");
    assert_ne!(staged["id"], denied["id"], "a denied promotion is closed; asking again opens a new one");
    assert!(staged["release_record"].as_str().is_some_and(|r| r.starts_with("sha256:")), "{staged}");
    let checked = &staged["report"]["attestations"][0];
    assert_eq!((&checked["referrer"], &checked["trusted"]), (&json!(provenance), &json!(true)), "{staged}");
    assert_eq!(checked["signers"], json!(["ci"]), "{staged}");

    // Prod waits for two release approvers with a fresh second factor.
    let alice_otp = user_with_mfa(server, "alice", "alice-password-123", &["release-approver"]);
    let bob_otp = user_with_mfa(server, "bob", "bob-password-123", &["release-approver"]);
    let reason = "release 1.0";
    let mut request = vec!["promote", "staging/payments/api:1.0", "--to", "prod", "--tag", "1.0"];
    request.extend(["--reason", reason, "--output", "json"]);
    let pending = ok(&cmd(&ci, &request).output().unwrap());
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["report"]["approvals"]["missing"], 2, "{pending}");
    assert_eq!(pending["report"]["approvals"]["mfa"], true, "mfa defaults to true: {pending}");
    assert_eq!((&pending["requester"], &pending["reason"]), (&json!("ci-bot"), &json!(reason)), "{pending}");
    let id = pending["id"].as_str().expect("promotion id").to_owned();
    assert!(id.starts_with("prm-"), "{id}");
    // The same request again is the same promotion.
    assert_eq!(ok(&cmd(&ci, &request).output().unwrap())["id"], id.as_str());

    // The requester, a service account, may not approve; an approver without a second factor
    // in the session may not either.
    let selfie = cmd(&ci, &["approve", &id, "--output", "json"]).output().unwrap();
    assert_eq!(selfie.status.code(), Some(3), "{}", show(&selfie));
    assert!(
        String::from_utf8_lossy(&selfie.stderr).contains("airlock.service-accounts-do-not-approve"),
        "{}",
        show(&selfie)
    );
    let stale = home("alice-no-otp");
    assert_eq!(login(&stale, &url, "alice", "alice-password-123", None)["principal"], "alice");
    let no_mfa = cmd(&stale, &["approve", &id, "--output", "json"]).output().unwrap();
    assert_eq!(no_mfa.status.code(), Some(3), "{}", show(&no_mfa));
    assert!(String::from_utf8_lossy(&no_mfa.stderr).contains("airlock.approval-needs-fresh-mfa"), "{}", show(&no_mfa));

    let (alice, bob) = (home("alice"), home("bob"));
    login(&alice, &url, "alice", "alice-password-123", Some(&alice_otp));
    login(&bob, &url, "bob", "bob-password-123", Some(&bob_otp));
    let one = ok(&cmd(&alice, &["approve", &id, "--comment", "change 4711", "--output", "json"]).output().unwrap());
    assert_eq!(one["status"], "pending", "{one}");
    assert_eq!(one["report"]["approvals"]["missing"], 1, "{one}");
    assert_eq!(one["report"]["approvals"]["counted"], json!(["alice"]), "{one}");
    let done = ok(&cmd(&bob, &["approve", &id, "--output", "json"]).output().unwrap());
    assert_eq!(done["status"], "promoted", "{done}");
    assert_eq!(done["report"]["approvals"]["counted"], json!(["alice", "bob"]), "{done}");
    let record = done["release_record"].as_str().expect("release record").to_owned();
    let shown = ok(&cmd(&alice, &["promotion", "show", &id, "--output", "json"]).output().unwrap());
    assert_eq!(shown["status"], "promoted", "{shown}");
    assert_eq!(shown["release_record"], record.as_str(), "{shown}");

    // skopeo pulls the same bytes out of prod.
    let creds = format!("tester:{}", server.tester_key);
    let prod = format!("docker://{}/prod/payments/api:1.0", server.host());
    let out = dir.join("pulled");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--preserve-digests", "--src-creds", &creds])
        .arg(&prod)
        .arg(format!("dir:{}", out.display())));
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), image.manifest.to_vec());
    let inspect = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--creds", &creds]).arg(&prod));
    let inspected: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());

    // The provenance travelled with the artifact, and the release record is a referrer in prod.
    let referrers = server.request("GET", &format!("/v2/prod/payments/api/referrers/{digest}"), &[], b"");
    assert_eq!(referrers.status, 200, "{}", String::from_utf8_lossy(&referrers.body));
    let referrers: Value = serde_json::from_slice(&referrers.body).unwrap();
    let listed: Vec<&str> =
        referrers["manifests"].as_array().unwrap().iter().filter_map(|m| m["digest"].as_str()).collect();
    assert!(listed.contains(&provenance.as_str()), "provenance {provenance} missing from {listed:?}");
    assert!(listed.contains(&record.as_str()), "release record {record} missing from {listed:?}");

    // Offline verification against pinned keys.
    let release_key = server.request("GET", "/api/v1/release-key", &[], b"");
    let release_key: Value = serde_json::from_slice(&release_key.body).unwrap();
    std::fs::write(d("release.pem"), release_key["pem"].as_str().expect("release key PEM")).unwrap();
    let log_key = server.request("GET", "/api/v1/log/key", &[], b"");
    assert_eq!(log_key.status, 200);
    let log_key_file = d("log.key");
    std::fs::write(&log_key_file, &log_key.body).unwrap();
    let verify = |reference: &str, key: &str| {
        let args = ["verify", reference, "--offline", "--release-key", key, "--log-key", &log_key_file];
        as_tester(&home("auditor"), server, &[&args[..], &["--server", &url, "--output", "json"]].concat())
    };
    let verified = ok(&verify("prod/payments/api:1.0", &d("release.pem")));
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["digest"], digest.as_str(), "{verified}");
    assert_eq!(verified["proof"]["promotion"], id.as_str(), "{verified}");
    assert_eq!(verified["proof"]["source"], "staging/payments/api", "{verified}");
    assert_eq!(verified["proof"]["release_record"], record.as_str(), "{verified}");
    assert_eq!(verified["proof"]["approvers"], "alice, bob", "{verified}");
    assert_eq!(verified["proof"]["log_index"], done["log_index"], "{verified}");

    // A digest only in dev was never promoted into prod.
    let other = Image::new(&[("app.bin", b"payments api 1.1, never released")]);
    skopeo_push(server, dir, &other, "dev/payments/api", "1.1");
    let never = json_with(&verify(&format!("prod/payments/api@{}", other.digest()), &d("release.pem")), 3);
    assert_eq!(never["verified"], false, "{never}");
    assert!(never["reason"].as_str().unwrap().contains("never promoted"), "{never}");

    // A release key other than the server's proves nothing.
    ok(&cmd(&home("ceremony"), &["key", "generate", "--out", &d("impostor"), "--output", "json"]).output().unwrap());
    let forged = json_with(&verify("prod/payments/api:1.0", &d("impostor.pub")), 3);
    assert_eq!(forged["verified"], false, "{forged}");
    let why = forged["reason"].as_str().unwrap();
    assert!(why.contains(&id) && why.contains("not signed by the release key"), "{forged}");
}
