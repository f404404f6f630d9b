//! `airlock demo`: Airlock's main job on its embedded defaults, in one command. It starts a
//! server, creates a trust root with offline-style root keys and a CI signer, pushes an artifact
//! into `dev`, attests its provenance, shows the registry's verdict, shows that `prod` refuses a
//! direct push, and verifies the transparency log. Then `airlock serve` on the same data
//! directory shows the result.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use airlock_dsse::{Algorithm, PrivateKey};
use airlock_model::{Digest, RepoName};
use airlock_server::{Config, Server};
use airlock_tlog::Verifier;
use anyhow::{Context, bail};
use serde_json::{Value, json};

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

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (mut config, _) = Config::from_toml("listen = \"127.0.0.1:0\"", "<demo>").context("demo config")?;
    config.data_dir = args.data.clone();
    let server = Server::bind(config).await.context("cannot start the demo server")?;
    let admin_password = server.bootstrap_password().map(str::to_owned);
    let ci = ci_account(server.app()).await?;
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
        &format!("service account `{DEMO_CI}` (role ci) pushes to dev; its API key is shown only now"),
        json!(ci.secret),
    );
    let result = demo(&url, &args.data, &ci, &mut steps).await;
    let _ = stop.send(());
    let _ = task.await;
    result?;
    match args.output {
        Output::Json => {
            println!("{}", serde_json::to_string_pretty(&json!({"data": args.data, "steps": steps.report}))?)
        }
        Output::Text => {
            println!();
            println!(
                "next: `cargo run --release -- serve` (or `airlock serve --data {}`) and look around:",
                args.data.display()
            );
            println!("  curl -s http://127.0.0.1:5000/api/v1/log/entries | head -c 600");
            println!("  curl -s -u {DEMO_CI}:{} 'http://127.0.0.1:5000/token?scope=repository:{REPO}:pull'", ci.secret);
            println!(
                "  skopeo inspect --tls-verify=false --creds {DEMO_CI}:{} docker://127.0.0.1:5000/{REPO}:latest",
                ci.secret
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo's CI service account.
const DEMO_CI: &str = "demo-ci";

/// Creates the demo's CI service account, or gives it a new key when a previous demo made it.
async fn ci_account(app: &airlock_server::App) -> anyhow::Result<super::client::Credentials> {
    let id = airlock_model::PrincipalId::parse(DEMO_CI).map_err(|e| anyhow::anyhow!("{e}"))?;
    let actor = airlock_server::Actor::system();
    let auth = &app.state.auth;
    let secret = match auth.record(&id).await? {
        None => auth.create_service_account(&actor, &id, &["ci".to_owned()], None).await?.1,
        Some(_) => auth.rotate_key(&actor, &id, None).await?.context("the demo service account vanished")?.0,
    };
    Ok(super::client::Credentials { name: DEMO_CI.to_owned(), secret })
}

async fn demo(
    url: &str,
    data: &std::path::Path,
    ci_account: &super::client::Credentials,
    steps: &mut Steps,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let keys = data.join("demo-keys");
    std::fs::create_dir_all(&keys).with_context(|| format!("cannot create `{}`", keys.display()))?;

    // 1. A CI signing key and a trust root signed by 2 of 3 root keys.
    let root = http.get(format!("{url}/api/v1/trust/root")).send().await?;
    let ci = load_or_generate(&keys.join("ci"))?;
    if root.status().is_success() {
        steps.say("a trust root is already in force; keeping it", Value::Null);
    } else {
        let init = std::process::Command::new(std::env::current_exe()?)
            .args(["trust", "init", "--root-keys", "3", "--threshold", "2", "--signer", "ci"])
            .arg("--dir")
            .arg(keys.join("root"))
            .arg("--signer-key")
            .arg(keys.join("ci.pub"))
            .args(["--predicate-type", "https://slsa.dev/provenance/*", "--repository", "dev/**", "--output", "json"])
            .output()
            .context("cannot run `airlock trust init`")?;
        if !init.status.success() {
            bail!("`airlock trust init` failed: {}", String::from_utf8_lossy(&init.stderr));
        }
        let document = std::fs::read(keys.join("root/root.json"))?;
        let applied = http.put(format!("{url}/api/v1/trust/root")).body(document).send().await?;
        if !applied.status().is_success() {
            bail!("the demo trust root was refused: {}", applied.text().await.unwrap_or_default());
        }
        steps.say(
            "created a trust root: 3 root keys (2 must sign any change), signer `ci` may sign SLSA provenance for dev/**",
            json!(format!("keys in {}", keys.display())),
        );
    }

    // 2. An artifact in `dev`.
    let repo = RepoName::parse(REPO).map_err(|e| anyhow::anyhow!("{e}"))?;
    let notes = format!("hello from the airlock demo at {}\n", super::trust::now().to_rfc3339());
    let pusher = super::client::registry_client(url, ci_account, &[format!("repository:{repo}:pull,push")]).await?;
    let subject = push_artifact(&pusher, url, &repo, notes.as_bytes()).await?;
    steps.say(&format!("pushed {repo}@{subject} into dev"), Value::Null);

    // 3. CI attests its provenance; the registry verifies it at ingest.
    let predicate = json!({
        "buildDefinition": {"buildType": "https://airlock.dev/demo/build@v1", "externalParameters": {"repository": "https://github.com/example/hello"}},
        "runDetails": {"builder": {"id": "https://github.com/actions/runner"}}
    });
    let (referrer, item) =
        super::attest::attest(url, ci_account, &repo, &subject, PROVENANCE, &predicate, &ci, |_| {}).await?;
    let verdict = match item["status"].as_str() {
        Some("trusted") => format!("trusted: signed by {}", item["current"]["signers"]),
        _ => format!("not trusted: {}", item["current"]["reasons"]),
    };
    steps.say(&format!("attested SLSA provenance as referrer {referrer}"), json!(verdict));

    // 4. `prod` accepts nothing but promotion.
    let prod =
        super::client::registry_client(url, ci_account, &["repository:prod/demo/hello:pull,push".to_owned()]).await?;
    let denied = prod.post(format!("{url}/v2/prod/demo/hello/blobs/uploads/")).send().await?;
    let status = denied.status();
    let body: Value = denied.json().await.unwrap_or(Value::Null);
    steps.say(
        &format!("a direct push to prod was refused with {status}"),
        json!(body["errors"][0]["message"].as_str().unwrap_or("")),
    );

    // 5. The transparency log verifies from the public API alone.
    let key_text = http.get(format!("{url}/api/v1/log/key")).send().await?.text().await?;
    let key = Verifier::parse(key_text.trim()).map_err(|e| anyhow::anyhow!("log key: {e}"))?;
    wait_for_checkpoint(&http, url).await?;
    match super::audit::verify_online(url, &key, None, false).await? {
        Ok(v) => steps.say(
            &format!("verified the transparency log: {} entries reproduce the signed root", v.entries_checked),
            json!(format!("root {}", v.root)),
        ),
        Err(f) => bail!("the demo log did not verify: {}", f.reason),
    }
    Ok(())
}

fn load_or_generate(prefix: &std::path::Path) -> anyhow::Result<PrivateKey> {
    let private = prefix.with_extension("key");
    if private.exists() {
        let pem = std::fs::read_to_string(&private)?;
        return PrivateKey::from_pkcs8_pem(&pem).map_err(|e| anyhow::anyhow!("`{}`: {e}", private.display()));
    }
    Ok(super::key::generate(Algorithm::Ed25519, prefix)?.0)
}

/// Pushes a one-file OCI artifact and returns its manifest digest.
async fn push_artifact(http: &reqwest::Client, url: &str, repo: &RepoName, contents: &[u8]) -> anyhow::Result<Digest> {
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
    let config = push(b"{}".to_vec()).await?;
    let layer = push(contents.to_vec()).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.airlock.demo.notes.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.as_str(), "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": layer.as_str(), "size": contents.len()}],
    }))?;
    let response = http
        .put(format!("{url}/v2/{repo}/manifests/latest"))
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
    for _ in 0..200 {
        let size: Value = http.get(format!("{url}/api/v1/log/entries?start=0&end=0")).send().await?.json().await?;
        let note = http.get(format!("{url}/api/v1/log/checkpoint")).send().await?.text().await?;
        if note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) == size["size"].as_u64() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("no checkpoint covered the log within 2 s")
}
