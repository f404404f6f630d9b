//! `airlock demo`: Airlock's main job on its embedded defaults, in one command. It starts a
//! server, signs its policy bundle, has a key admin apply a trust root, creates people and a CI
//! identity, builds and pushes a small image with
//! signed provenance, an SBOM and a scan carrying a critical CVE, shows the gate's denial and its
//! fix (a signed VEX), promotes to staging, asks for prod, refuses a self-approval, takes two
//! approvals, verifies the release record and the whole log. `airlock serve` on the same data
//! directory then shows the result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use airlock_api::v1::{ApiToken, ErrorBody, LogEntries, Promotion, PromotionDecision, PromotionRequest, ReleaseKey};
use airlock_dsse::{Algorithm, PrivateKey, PublicKey};
use airlock_model::{Digest, PrincipalId, RepoName};
use airlock_server::{Config, Server};
use airlock_tlog::Verifier;
use anyhow::{Context, bail};
use serde::Deserialize as _;
use serde_json::{Value, json};

use super::client::{Credentials, registry_client};
use super::runtime;
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory; the same default as `airlock serve`, so `serve` afterwards shows the demo.
    #[arg(long, env = "AIRLOCK_DATA", default_value = "./airlock-data")]
    data: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

const REPO: &str = "dev/demo/hello";
const PROVENANCE: &str = "https://slsa.dev/provenance/v1";
const SBOM: &str = "https://cyclonedx.org/bom";
const SCAN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
const VEX: &str = "https://openvex.dev/ns/v0.2.0";
const SOURCE: &str = "https://github.com/example/hello";
const CVE: &str = "CVE-2026-1000";
/// The demo's CI service account.
const DEMO_CI: &str = "demo-ci";
/// The developer who asks for prod, and the two release approvers.
const DEVELOPER: &str = "dana";
const APPROVERS: [&str; 2] = ["alex", "sam"];
/// The key admin who applies the trust root.
const KEY_ADMIN: &str = "kim";

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(run(args))
}

struct Steps {
    text: bool,
    report: Vec<Value>,
}

impl Steps {
    fn say(&mut self, step: &str, detail: Value) {
        if self.text {
            println!("• {step}");
            if let Some(lines) = detail.as_str() {
                for line in lines.lines() {
                    println!("    {line}");
                }
            }
        }
        self.report.push(json!({"step": step, "detail": detail}));
    }
}

/// What `people.json` keeps of a person the demo made before: the password, if it holds one.
#[derive(serde::Deserialize)]
struct KnownPerson {
    password: Option<String>,
}

/// A person of the demo: name, password and TOTP secret.
struct Person {
    name: String,
    password: String,
    totp: Vec<u8>,
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data).with_context(|| format!("cannot create `{}`", args.data.display()))?;
    // The embedded default library, with the demo's source repository allowed into prod.
    let bundle = args.data.join("demo-policy");
    write_demo_bundle(&bundle)?;
    let keys = args.data.join("demo-keys");
    std::fs::create_dir_all(&keys).with_context(|| format!("cannot create `{}`", keys.display()))?;
    // Policy is code under signature: the root names `policy` as its policy signer.
    let policy_key = load_or_generate(&keys.join("policy"))?;
    sign_demo_bundle(&bundle, &policy_key)?;
    // `airlock serve` on this data directory reads these settings, so it serves the demo's
    // policy and what the demo printed to try by hand works there too.
    let settings = write_settings(&args.data, &bundle)?;
    let text = format!("listen = \"127.0.0.1:0\"\n{settings}");
    let (mut config, _) = Config::from_toml(&text, "<demo>").context("demo config")?;
    config.data_dir = args.data.clone();
    let server = Server::bind(config).await.context("cannot start the demo server")?;
    let admin_password = server.bootstrap_password().map(str::to_owned);
    let ci = ci_account(server.app()).await?;
    let people = people(server.app(), &keys).await?;
    let addr = server.local_addr()?;
    let url = format!("http://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let mut steps = Steps { text: args.output == Output::Text, report: Vec::new() };
    if let Some(password) = &admin_password {
        steps.say("created user `admin` (role access-admin); its one-time password is shown only now", json!(password));
    }
    steps.say(
        &format!("service account `{DEMO_CI}` (role ci) builds and pushes to dev; its API key is shown only now"),
        json!(ci.secret),
    );
    steps.say(
        &format!(
            "people: `{DEVELOPER}` (developer), `{}` and `{}` (release-approver), `{KEY_ADMIN}` (key-admin), each with an e-mail at example.com and a TOTP second factor",
            APPROVERS[0], APPROVERS[1]
        ),
        json!(format!("passwords and TOTP secrets in {}", keys.join("people.json").display())),
    );
    let result = demo(&url, &args.data, &keys, &ci, &people, &mut steps).await;
    let _ = stop.send(());
    let _ = task.await;
    let summary = result?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"data": args.data, "steps": steps.report, "summary": summary}))?
        ),
        Output::Text => {
            println!();
            println!("{}", summary.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first line of the `airlock.toml` the demo leaves in its data directory; a file there
/// without it is the operator's, and the demo leaves it alone.
const SETTINGS_HEADER: &str = "# Written by `airlock demo`";

/// Writes `DATA/airlock.toml`, the demo's settings (its policy bundle), which `airlock serve`
/// reads when no `--config` is given and the working directory has no `airlock.toml`; returns
/// them.
fn write_settings(data: &Path, bundle: &Path) -> anyhow::Result<String> {
    let bundle = std::path::absolute(bundle).with_context(|| format!("cannot resolve `{}`", bundle.display()))?;
    let settings = format!("[policy]\nbundle = {}\n", toml_string(&bundle.display().to_string()));
    let file = data.join(super::DATA_DIR_CONFIG);
    match std::fs::read_to_string(&file) {
        Ok(existing) if !existing.starts_with(SETTINGS_HEADER) => {
            eprintln!(
                "warning: `{}` is not the demo's; leaving it, so `airlock serve` there may not serve the demo's policy",
                file.display()
            );
        }
        _ => {
            let text = format!(
                "{SETTINGS_HEADER}: the demo's policy bundle. `airlock serve --data {}` reads this file\n\
                 # when no `--config` is given and the working directory has no `airlock.toml`.\n{settings}",
                data.display()
            );
            std::fs::write(&file, text).with_context(|| format!("cannot write `{}`", file.display()))?;
        }
    }
    Ok(settings)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

// tidy(json-lookup): edits the policy library's own `data.json`, kept as JSON to keep its other members.
/// Writes the embedded default library, allowing the demo's source repository into prod.
fn write_demo_bundle(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    for (name, bytes) in airlock_policy::default_bundle_files() {
        let bytes = if name == "data.json" {
            let mut data: Value = serde_json::from_slice(&bytes).context("the default library's data.json")?;
            data["airlock"]["allowed_source_repositories"] = json!(["github.com/example/hello"]);
            serde_json::to_vec_pretty(&data)?
        } else {
            bytes
        };
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(())
}

/// Signs the demo bundle's manifest with the policy key, replacing a signature of an earlier run.
fn sign_demo_bundle(dir: &Path, key: &PrivateKey) -> anyhow::Result<()> {
    let file = dir.join(airlock_policy::SIGNATURE_FILE);
    let _ = std::fs::remove_file(&file);
    let bundle = airlock_policy::Bundle::load_dir(dir).map_err(|e| anyhow::anyhow!("the demo bundle: {e}"))?;
    let signed = airlock_policy::sign_bundle(&bundle, None, key).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(&file, signed).with_context(|| format!("cannot write `{}`", file.display()))
}

/// Creates the demo's CI service account, or gives it a new key when a previous demo made it.
async fn ci_account(app: &airlock_server::App) -> anyhow::Result<Credentials> {
    let id = PrincipalId::parse(DEMO_CI).map_err(|e| anyhow::anyhow!("{e}"))?;
    let auth = &app.state.callers;
    let acting = auth.admin_acting()?;
    let secret = match auth.identity().principal(&id).await? {
        None => auth.identity().create_service_account(&acting, &id, &["ci".to_owned()], None).await?.secret,
        Some(_) => {
            auth.identity().rotate_key(&acting, &id, None).await?.1.context("the demo's ci key did not rotate")?.0
        }
    };
    Ok(Credentials { name: DEMO_CI.to_owned(), secret })
}

/// The demo's people: created at the first run, each with a new TOTP secret every run; their
/// passwords and secrets are kept in `people.json` (mode 0600) for trying things by hand.
async fn people(app: &airlock_server::App, keys: &Path) -> anyhow::Result<Vec<Person>> {
    let file = keys.join("people.json");
    let mut passwords: serde_json::Map<String, Value> = match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("`{}` is not JSON", file.display()))?,
        Err(_) => serde_json::Map::new(),
    };
    let auth = &app.state.callers;
    // The bootstrap administrator grants nothing privileged before it has a second factor.
    let admin = PrincipalId::parse(airlock_server::caller::ADMIN).map_err(|e| anyhow::anyhow!("{e}"))?;
    let admin_totp = airlock_access::totp::generate_secret().to_vec();
    let change = airlock_core::ports::PrincipalChange::SetTotp { secret: Some(hex::encode(&admin_totp)) };
    auth.identity().apply(&airlock_server::Actor::system(), &admin, change).await?;
    passwords.insert(
        "admin".to_owned(),
        json!({
            "role": "access-admin",
            "totp_secret": airlock_access::totp::base32(&admin_totp),
            "otpauth_uri": airlock_access::totp::otpauth_uri("airlock", "admin", &admin_totp),
        }),
    );
    let acting = auth.admin_acting()?;
    let mut people = Vec::new();
    let wanted = std::iter::once((DEVELOPER, "developer"))
        .chain(APPROVERS.iter().map(|a| (*a, "release-approver")))
        .chain(std::iter::once((KEY_ADMIN, "key-admin")));
    for (name, role) in wanted {
        let id = PrincipalId::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?;
        let known = passwords.get(name).and_then(|p| KnownPerson::deserialize(p).ok()).and_then(|p| p.password);
        let password = match (auth.identity().principal(&id).await?, known) {
            (Some(_), Some(p)) => p,
            (Some(_), None) => bail!(
                "user `{name}` exists but `{}` has no password for it; run the demo on a fresh `--data` directory",
                file.display()
            ),
            (None, _) => {
                // As a person would: the admin creates the user, the person enrolls with the
                // one-time token, choosing their password.
                let password = hex::encode(airlock_access::totp::generate_secret());
                // Each person has an e-mail: approvals compare people by it.
                let email = format!("{name}@example.com");
                let created = auth.identity().create_user(&acting, &id, &[role.to_owned()], Some(&email)).await?;
                auth.enroll(&created.secret, password.clone()).await?;
                password
            }
        };
        let totp = airlock_access::totp::generate_secret().to_vec();
        let change = airlock_core::ports::PrincipalChange::SetTotp { secret: Some(hex::encode(&totp)) };
        auth.identity().apply(&acting.actor, &id, change).await?;
        passwords.insert(
            name.to_owned(),
            json!({
                "password": password,
                "role": role,
                "totp_secret": airlock_access::totp::base32(&totp),
                "otpauth_uri": airlock_access::totp::otpauth_uri("airlock", name, &totp),
            }),
        );
        people.push(Person { name: name.to_owned(), password, totp });
    }
    let text = serde_json::to_string_pretty(&Value::Object(passwords))?;
    let _ = std::fs::remove_file(&file);
    write_private(&file, &text)?;
    Ok(people)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).with_context(|| format!("cannot write `{}`", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn now_secs() -> u64 {
    use airlock_core::ports::Clock as _;
    u64::try_from(airlock_server::SystemClock.now().as_millis() / 1000).unwrap_or(0)
}

/// An API token for `name`, with a fresh second factor when `totp` is given.
async fn api_token(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    secret: &str,
    totp: Option<&[u8]>,
) -> anyhow::Result<String> {
    let mut request = http.post(format!("{url}/api/v1/auth/token")).basic_auth(name, Some(secret));
    if let Some(totp) = totp {
        request = request.header("x-airlock-otp", airlock_access::totp::code_at(totp, now_secs()));
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if !status.is_success() {
        bail!("`{name}` cannot log in ({status}): {}", json!(error_message(&body)));
    }
    Ok(serde_json::from_slice::<ApiToken>(&body).ok().context("no token")?.token)
}

/// The message of an `/api/v1` error body, if the body is one.
fn error_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body).ok().map(|b| b.error.message)
}

/// What the server answered a demo request: its status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    /// The promotion the body holds, if it holds one.
    fn promotion(&self) -> Option<Promotion> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as the server sent it, for a message.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn call(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    token: &str,
    body: &impl serde::Serialize,
) -> anyhow::Result<Answer> {
    let response = http.post(format!("{url}{path}")).bearer_auth(token).json(body).send().await?;
    let status = response.status().as_u16();
    Ok(Answer { status, body: response.bytes().await.map(|b| b.to_vec()).unwrap_or_default() })
}

fn findings(promotion: Option<&Promotion>) -> String {
    let report = promotion.map(super::promote::gate_report).unwrap_or_default();
    report
        .findings
        .iter()
        .map(|f| format!("✗ {}: {}\n  fix: {}", f.rule, f.message, f.remediation))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The demo's outcome: what went to prod, and what to try by hand.
#[derive(serde::Serialize)]
struct Summary {
    digest: String,
    tag: String,
    promotion: String,
    text: String,
}

async fn demo(
    url: &str,
    data: &Path,
    keys: &Path,
    ci_account: &Credentials,
    people: &[Person],
    steps: &mut Steps,
) -> anyhow::Result<Summary> {
    let http = reqwest::Client::new();
    let (Some(dana), Some(alex), Some(sam), Some(kim)) = (people.first(), people.get(1), people.get(2), people.get(3))
    else {
        bail!("the demo's people are missing");
    };

    // 1. Signing keys for CI and the scanner, and a trust root signed by 2 of 3 root keys,
    //    applied by a key admin with a fresh second factor: nobody installs one anonymously.
    let ci = load_or_generate(&keys.join("ci"))?;
    let scanner = load_or_generate(&keys.join("scanner"))?;
    let policy = load_or_generate(&keys.join("policy"))?;
    let root = http.get(format!("{url}/api/v1/trust/root")).send().await?;
    if root.status().is_success() {
        steps.say("a trust root is already in force; keeping it", Value::Null);
    } else {
        let document = trust_root(keys, &ci, &scanner, &policy)?;
        let token = api_token(&http, url, &kim.name, &kim.password, Some(&kim.totp)).await?;
        let applied = http.put(format!("{url}/api/v1/trust/root")).bearer_auth(token).body(document).send().await?;
        if !applied.status().is_success() {
            bail!("the demo trust root was refused: {}", applied.text().await.unwrap_or_default());
        }
        steps.say(
            &format!(
                "`{KEY_ADMIN}` (key-admin) applied a trust root: 3 root keys (2 must sign any change); `ci` signs provenance and SBOMs, `scanner` signs scans and VEX, `policy` signs the policy bundle"
            ),
            json!(format!("keys in {}; the bundle's signature in its bundle.sig", keys.display())),
        );
    }

    // 2. Build and push a small image into dev.
    let repo = RepoName::parse(REPO).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Each run builds a new image: the version is the build's time in milliseconds.
    let millis = {
        use airlock_core::ports::Clock as _;
        airlock_server::SystemClock.now().as_millis()
    };
    let version = format!("1.0.{millis}");
    let pusher = registry_client(url, ci_account, &[format!("repository:{repo}:pull,push")]).await?;
    let notes = format!("hello from the airlock demo, version {version}\n");
    let subject = push_image(&pusher, url, &repo, &version, notes.as_bytes()).await?;
    steps.say(&format!("CI built and pushed {repo}:{version} ({subject}) into dev"), Value::Null);

    // 3. Provenance and an SBOM signed by CI; a scan, with a critical CVE, signed by the scanner.
    let attest = |key: &'static str, predicate_type: &'static str, predicate: Value| {
        let (repo, subject) = (repo.clone(), subject.clone());
        let signing = if key == "ci" { &ci } else { &scanner };
        async move {
            super::attest::attest(url, ci_account, &repo, &subject, predicate_type, &predicate, signing, |_| {}).await
        }
    };
    attest("ci", PROVENANCE, provenance(&version)).await?;
    attest("ci", SBOM, sbom()).await?;
    attest("scanner", SCAN, scan()).await?;
    steps.say("attached signed SLSA provenance, a CycloneDX SBOM and a vulnerability scan", Value::Null);

    // 4. The staging gate denies, with the fix; a signed VEX is the fix.
    let ci_token = api_token(&http, url, DEMO_CI, &ci_account.secret, None).await?;
    let request = PromotionRequest {
        repository: REPO.to_owned(),
        reference: subject.as_str().to_owned(),
        to: "staging".to_owned(),
        tag: Some(version.clone()),
        reason: "demo".to_owned(),
        break_glass: false,
    };
    let denied = call(&http, url, "/api/v1/promotions", &ci_token, &request).await?;
    let denied = match denied.promotion() {
        Some(p) if p.status == "denied" => p,
        _ => bail!("the staging gate should deny the critical CVE, but the promotion is {}", denied.text()),
    };
    steps.say("promotion to staging DENIED by the policy (the CLI exits 3):", json!(findings(Some(&denied))));
    attest("scanner", VEX, vex()).await?;
    let staged = call(&http, url, "/api/v1/promotions", &ci_token, &request).await?.promotion();
    let staged = match staged {
        Some(p) if p.status == "promoted" => p,
        other => bail!("promotion to staging did not commit: {}", findings(other.as_ref())),
    };
    steps.say(
        &format!("the scanner signed a VEX: {CVE} is not exploitable here; promoted to staging"),
        json!(format!(
            "release record {} at log index {}",
            staged.release_record.as_deref().unwrap_or("?"),
            json!(staged.log_index)
        )),
    );

    // 5. Prod needs two release approvers; the requester cannot approve.
    let staging = "staging/demo/hello";
    let dana_token = api_token(&http, url, &dana.name, &dana.password, None).await?;
    let request = PromotionRequest {
        repository: staging.to_owned(),
        reference: version.clone(),
        to: "prod".to_owned(),
        tag: Some(version.clone()),
        reason: "release".to_owned(),
        break_glass: false,
    };
    let pending = call(&http, url, "/api/v1/promotions", &dana_token, &request).await?.promotion();
    let pending = pending.context("no promotion id")?;
    let id = pending.id.clone();
    let missing = super::promote::gate_report(&pending).approvals.map(|a| a.missing);
    steps.say(
        &format!("`{DEVELOPER}` asked for prod: promotion {id} is {}", pending.status),
        json!(format!("waiting for {} approvals from release-approver", json!(missing))),
    );
    let dana_mfa = api_token(&http, url, &dana.name, &dana.password, Some(&dana.totp)).await?;
    let mine = PromotionDecision { comment: "mine".to_owned(), ..PromotionDecision::default() };
    let refused = call(&http, url, &format!("/api/v1/promotions/{id}/approve"), &dana_mfa, &mine).await?;
    let status = refused.status;
    if status < 400 {
        bail!("the requester's self-approval was accepted");
    }
    steps.say(
        &format!("`{DEVELOPER}`'s own approval was refused ({status})"),
        json!(error_message(&refused.body).unwrap_or_default()),
    );
    let mut last = None;
    let reviewed = PromotionDecision { comment: "reviewed".to_owned(), ..PromotionDecision::default() };
    for approver in [alex, sam] {
        let token = api_token(&http, url, &approver.name, &approver.password, Some(&approver.totp)).await?;
        let approved = call(&http, url, &format!("/api/v1/promotions/{id}/approve"), &token, &reviewed).await?;
        if approved.status >= 400 {
            bail!("`{}` could not approve: {}", approver.name, json!(error_message(&approved.body)));
        }
        let approved = approved.promotion();
        steps.say(
            &format!(
                "`{}` approved with a fresh second factor: {}",
                approver.name,
                approved.as_ref().map_or("?", |p| p.status.as_str())
            ),
            Value::Null,
        );
        last = approved;
    }
    let last_status = last.map(|p| p.status);
    if last_status.as_deref() != Some("promoted") {
        bail!("two approvals did not promote it: {}", json!(last_status));
    }

    // 6. Verify the release record and its log entry, as a deployer would.
    let release_key: Option<ReleaseKey> = http.get(format!("{url}/api/v1/release-key")).send().await?.json().await.ok();
    let release_pem = release_key.context("no release key")?.pem;
    std::fs::write(keys.join("release.pub"), &release_pem)?;
    let release = PublicKey::from_pem(&release_pem).map_err(|e| anyhow::anyhow!("release key: {e}"))?;
    let key_text = http.get(format!("{url}/api/v1/log/key")).send().await?.text().await?;
    std::fs::write(keys.join("log.pub"), key_text.trim())?;
    let log_key = Verifier::parse(key_text.trim()).map_err(|e| anyhow::anyhow!("log key: {e}"))?;
    let prod = RepoName::parse("prod/demo/hello").map_err(|e| anyhow::anyhow!("{e}"))?;
    let reader = Credentials { name: alex.name.clone(), secret: alex.password.clone() };
    let puller = registry_client(url, &reader, &[format!("repository:{prod}:pull")]).await?;
    wait_for_checkpoint(&http, url).await?;
    // The release bundle, fetched once and kept: from here on, two public keys check it.
    let bundle = match super::release::from_endpoint(url, &puller, &prod, &subject).await? {
        Ok(bytes) => bytes,
        Err(reason) => bail!("no release bundle for {prod}@{subject}: {reason}"),
    };
    let bundle_file = keys.join("release-bundle.json");
    std::fs::write(&bundle_file, &bundle)?;
    match airlock_core::promotion::bundle::verify_bundle(&bundle, &release, &log_key) {
        Ok(proof) => {
            let facts = super::verify::RecordFacts::of(&proof.record.predicate);
            let approvers = facts.approvers();
            steps.say(
                &format!(
                    "verified {prod}@{subject} offline from its release bundle with the pinned release and log keys"
                ),
                json!(format!(
                    "release record approved by {}, log entry {} included in the signed checkpoint of size {}",
                    approvers.join(", "),
                    proof.record.log_index,
                    proof.checkpoint_size
                )),
            );
        }
        Err(reason) => bail!("the release bundle did not verify: {reason}"),
    }

    // 7. The whole transparency log verifies from the public API alone.
    match super::audit::verify_online(url, &log_key, None, false).await? {
        Ok(v) => steps.say(
            &format!("verified the transparency log: {} entries reproduce the signed root", v.entries_checked),
            json!(format!("root {}", v.root)),
        ),
        Err(f) => bail!("the demo log did not verify: {}", f.reason),
    }

    let text = format!(
        "Done: {subject} went dev -> staging -> prod through its gates.\n\
         By hand: start `airlock serve --data {data}` (it reads the demo's settings from {settings}), then\n\
         (passwords and TOTP secrets are in {people}; a code is what an authenticator app shows for the secret):\n  \
         AIRLOCK_PASSWORD=<{DEVELOPER}'s password> airlock login http://127.0.0.1:5000 --username {DEVELOPER}\n  \
         airlock promotion list\n  \
         airlock promote staging/demo/hello:{version} --to prod --tag {version}-stable\n  \
         AIRLOCK_PASSWORD=<{a}'s password> airlock login http://127.0.0.1:5000 --username {a} --otp <{a}'s code>\n  \
         airlock approve <id>\n  \
         AIRLOCK_PASSWORD=<{b}'s password> airlock login http://127.0.0.1:5000 --username {b} --otp <{b}'s code>\n  \
         airlock approve <id>\n  \
         AIRLOCK_USERNAME={b} AIRLOCK_PASSWORD=<{b}'s password> airlock verify {prod}:{version}-stable --offline --release-key {release} --log-key {log}\n  \
         airlock verify --bundle {bundle} --release-key {release} --log-key {log}   # no server needed\n  \
         airlock audit verify --key {log}",
        a = APPROVERS[0],
        b = APPROVERS[1],
        data = data.display(),
        settings = data.join(super::DATA_DIR_CONFIG).display(),
        people = keys.join("people.json").display(),
        release = keys.join("release.pub").display(),
        log = keys.join("log.pub").display(),
        bundle = bundle_file.display(),
    );
    Ok(Summary { digest: subject.as_str().to_owned(), tag: version, promotion: id, text })
}

/// A version 1 trust root: `ci` signs provenance and SBOMs, `scanner` signs scans and VEX, for
/// every repository; `policy` signs policy bundles; 2 of 3 root keys sign it.
fn trust_root(keys: &Path, ci: &PrivateKey, scanner: &PrivateKey, policy: &PrivateKey) -> anyhow::Result<Vec<u8>> {
    use airlock_trust::{Pattern, PolicyRole, RepoPattern, Root, SignerRule, sign_root};
    let root_keys: Vec<PrivateKey> =
        (1..=3).map(|i| load_or_generate(&keys.join(format!("root-{i}")))).collect::<anyhow::Result<_>>()?;
    let now = super::trust::now();
    let year = 365 * 86_400_000;
    let pattern = |p: &str| Pattern::parse(p).map_err(|e| anyhow::anyhow!("{e}"));
    let mut all = std::collections::BTreeMap::new();
    for k in root_keys.iter().chain([ci, scanner, policy]) {
        all.insert(k.public_key().keyid().clone(), k.public_key().clone());
    }
    let rule = |name: &str, key: &PrivateKey, types: &[&str]| -> anyhow::Result<SignerRule> {
        Ok(SignerRule {
            name: name.to_owned(),
            keyids: vec![key.public_key().keyid().clone()],
            predicate_types: types.iter().map(|t| pattern(t)).collect::<anyhow::Result<_>>()?,
            repositories: vec![RepoPattern::parse("**").map_err(|e| anyhow::anyhow!("{e}"))?],
            not_before: now,
            not_after: now.plus_millis(year),
        })
    };
    let root = Root {
        version: 1,
        expires: now.plus_millis(year),
        keys: all,
        root_keyids: root_keys.iter().map(|k| k.public_key().keyid().clone()).collect(),
        root_threshold: 2,
        signers: vec![
            rule("ci", ci, &["https://slsa.dev/provenance/*", "https://cyclonedx.org/bom"])?,
            rule("scanner", scanner, &["https://cosign.sigstore.dev/attestation/vuln/*", "https://openvex.dev/ns/*"])?,
        ],
        thresholds: Vec::new(),
        revoked: Vec::new(),
        policy: Some(PolicyRole { keyids: vec![policy.public_key().keyid().clone()], threshold: 1 }),
    };
    let signers: Vec<&PrivateKey> = root_keys.iter().take(2).collect();
    sign_root(&root, &signers).map_err(|e| anyhow::anyhow!("cannot sign the demo root: {e}"))
}

fn provenance(version: &str) -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": SOURCE, "path": ".github/workflows/release.yml"}},
            "internalParameters": {"github": {"event_name": "push", "actor": DEVELOPER}},
            "resolvedDependencies": [{"uri": format!("git+{SOURCE}@refs/heads/main"), "digest": {"gitCommit": "a3f5c1e2d4b6a8c0e2f4a6b8c0d2e4f6a8b0c2d4"}}],
        },
        "runDetails": {
            "builder": {"id": "https://github.com/actions/runner/github-hosted"},
            "metadata": {"invocationId": format!("{SOURCE}/actions/runs/{version}")},
        },
    })
}

fn sbom() -> Value {
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "components": [
            {"type": "library", "name": "openssl", "version": "3.0.1", "purl": "pkg:generic/openssl@3.0.1", "licenses": [{"license": {"id": "Apache-2.0"}}]},
            {"type": "library", "name": "hello", "version": "1.0.0", "purl": "pkg:generic/hello@1.0.0", "licenses": [{"license": {"id": "MIT"}}]},
        ],
    })
}

fn scan() -> Value {
    let now = super::trust::now().to_rfc3339();
    json!({
        "invocation": {"uri": format!("{SOURCE}/actions/runs/scan"), "event_id": "scan"},
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy@v0.52.0",
            "version": "v0.52.0",
            "result": {"SchemaVersion": 2, "Results": [{"Target": "hello", "Vulnerabilities": [{
                "VulnerabilityID": CVE,
                "PkgName": "openssl",
                "PkgIdentifier": {"PURL": "pkg:generic/openssl@3.0.1"},
                "InstalledVersion": "3.0.1",
                "Severity": "CRITICAL",
                "Title": "a demo vulnerability in openssl",
            }]}]},
        },
        "metadata": {"scanStartedOn": now, "scanFinishedOn": now},
    })
}

fn vex() -> Value {
    json!({
        "@context": VEX,
        "@id": "https://example.com/vex/demo-1",
        "author": "Example Security <security@example.com>",
        "timestamp": super::trust::now().to_rfc3339(),
        "version": 1,
        "statements": [{
            "vulnerability": {"name": CVE},
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
            "impact_statement": "hello never calls the affected openssl function",
        }],
    })
}

fn load_or_generate(prefix: &Path) -> anyhow::Result<PrivateKey> {
    let private = prefix.with_extension("key");
    match airlock_dsse::read_private_key(&private) {
        Err(e) if e.is_not_found() => Ok(super::key::generate(Algorithm::Ed25519, prefix)?.0),
        read => read.map_err(|e| anyhow::anyhow!("{e}")),
    }
}

/// A one-file tar archive, the image's single layer.
fn tar_of(name: &str, contents: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |header: &mut [u8; 512], at: usize, bytes: &[u8]| {
        if let Some(slot) = header.get_mut(at..at.saturating_add(bytes.len())) {
            slot.copy_from_slice(bytes);
        }
    };
    put(&mut header, 0, name.as_bytes());
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(&mut header, 124, format!("{:011o}\0", contents.len()).as_bytes());
    put(&mut header, 136, b"00000000000\0");
    put(&mut header, 148, b"        ");
    put(&mut header, 156, b"0");
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(contents);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.resize(out.len() + 1024, 0);
    out
}

/// Pushes a one-layer linux/amd64 image tagged `tag`; returns its manifest digest.
async fn push_image(
    http: &reqwest::Client,
    url: &str,
    repo: &RepoName,
    tag: &str,
    contents: &[u8],
) -> anyhow::Result<Digest> {
    let push = |bytes: Vec<u8>| {
        let digest = Digest::of(&bytes);
        let request = http.post(format!("{url}/v2/{repo}/blobs/uploads/?digest={digest}")).body(bytes).send();
        async move {
            let response = request.await?;
            if !response.status().is_success() {
                bail!("blob push answered {}", response.status());
            }
            Ok::<Digest, anyhow::Error>(digest)
        }
    };
    let layer = tar_of("hello.txt", contents);
    let (layer_size, layer_digest) = (layer.len(), Digest::of(&layer));
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["cat", "/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.as_str()]},
    }))?;
    let config_size = config.len();
    let config = push(config).await?;
    push(layer).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.as_str(), "size": layer_size}],
    }))?;
    let response = http
        .put(format!("{url}/v2/{repo}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("manifest push answered {}", response.status());
    }
    Ok(Digest::of(&manifest))
}

async fn wait_for_checkpoint(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    for _ in 0..500 {
        let page: LogEntries = http.get(format!("{url}/api/v1/log/entries?start=0&end=0")).send().await?.json().await?;
        let note = http.get(format!("{url}/api/v1/log/checkpoint")).send().await?.text().await?;
        if note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) == Some(page.size) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("no checkpoint covered the log within 5 s")
}
