//! `airlock policy test|eval|input|sign|authz`: run a bundle's tests like `opa test`, evaluate a
//! bundle on an input (a file, or gathered by a server for an artifact and a target stage), show
//! the exact input document a gate would evaluate, and sign a bundle as one of the trust root's
//! policy signers; `airlock policy authz check` decides an access request offline (see
//! `authz.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use airlock_api::v1::{ErrorBody, PolicyInput};
use airlock_model::Timestamp;
use airlock_policy::{Bundle, Decision, Engine, EvalLimits, TestOutcome, default_bundle, run_tests};
use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Deserialize as _;
use serde_json::Value;

use super::runtime;
use crate::Output;

/// Exit code when the policy denies.
const DENIED: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every `test_*` rule of a bundle's `*_test.rego` files.
    Test(TestArgs),
    /// Evaluate a bundle; exit 3 when it denies.
    Eval(EvalArgs),
    /// Print the input document a gate would evaluate for an artifact.
    Input(InputArgs),
    /// Sign a bundle directory's manifest as a policy signer, into its `bundle.sig`.
    Sign(SignArgs),
    /// Decide access requests offline with a configuration's roles and Cedar policies.
    Authz(super::authz::Args),
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// The bundle directory; without it, the embedded default library.
    dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct Target {
    /// The artifact, `<repository>@sha256:<hex>`.
    #[arg(long)]
    artifact: Option<String>,
    /// The stage it would be promoted to.
    #[arg(long)]
    to: Option<String>,
    /// The server that gathers the input; credentials with `pull` on the repository come from
    /// `AIRLOCK_USERNAME` and `AIRLOCK_PASSWORD`.
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// The bundle directory; without it, the embedded default library.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// An input document (JSON); or use `--artifact` and `--to` to gather one from a server.
    #[arg(long, conflicts_with = "artifact")]
    input: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct SignArgs {
    /// The bundle directory; its `bundle.sig` is written, or gets one more signature.
    dir: PathBuf,
    /// A policy signer's private key (PKCS#8 PEM), one the trust root's `policy` role names.
    #[arg(long)]
    key: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct InputArgs {
    #[command(flatten)]
    target: Target,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Test(a) => test(a),
        Command::Eval(a) => runtime()?.block_on(eval(a)),
        Command::Input(a) => runtime()?.block_on(async {
            let input = gather(&a.target).await?;
            println!("{}", serde_json::to_string_pretty(&input)?);
            Ok(ExitCode::SUCCESS)
        }),
        Command::Sign(a) => sign(a),
        Command::Authz(a) => super::authz::exec(a),
    }
}

/// Adds `--key`'s signature over the bundle's manifest to its `bundle.sig` (creating it): each
/// policy signer runs this in turn until the trust root's policy threshold is met.
fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let key = airlock_dsse::read_private_key(&args.key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bundle = load_bundle(Some(&args.dir))?;
    let file = args.dir.join(airlock_policy::SIGNATURE_FILE);
    let signed = airlock_policy::sign_bundle(&bundle, bundle.signature(), &key)
        .map_err(|e| anyhow::anyhow!("cannot sign bundle `{}`: {e}", args.dir.display()))?;
    std::fs::write(&file, &signed).with_context(|| format!("cannot write `{}`", file.display()))?;
    let signatures = airlock_dsse::Envelope::parse(&signed, &airlock_dsse::EnvelopeLimits::default())
        .map_or(0, |e| e.signatures.len());
    let keyid = key.public_key().keyid().to_string();
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"bundle": args.dir, "bundle_digest": bundle.digest().as_str(), "signed_by": keyid, "signatures": signatures, "file": file})
        ),
        Output::Text => {
            println!("signed bundle {} ({}) with policy key {keyid}", args.dir.display(), bundle.digest());
            println!(
                "{} now holds {signatures} signature(s); the server trusts the bundle once a threshold of the trust root's policy signers signed it (restart it to load the bundle)",
                file.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_bundle(dir: Option<&PathBuf>) -> anyhow::Result<Bundle> {
    match dir {
        Some(dir) => Bundle::load_dir(dir).map_err(|e| anyhow::anyhow!("bundle `{}`: {e}", dir.display())),
        None => default_bundle().map_err(|e| anyhow::anyhow!("the embedded default library: {e}")),
    }
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let bundle = load_bundle(args.dir.as_ref())?;
    let report = run_tests(&bundle);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => {
            if let Some(e) = &report.compile_error {
                println!("{}: compile error: {e}", report.bundle_digest);
            }
            for r in &report.results {
                let word = match r.outcome {
                    TestOutcome::Pass => "PASS",
                    TestOutcome::Fail => "FAIL",
                    _ => "ERROR",
                };
                println!("{}: {} ({})", r.file, r.name, word);
                if let Some(m) = &r.message {
                    println!("  {m}");
                }
            }
            let passed = report.results.iter().filter(|r| r.outcome == TestOutcome::Pass).count();
            println!("--------------------------------------------------------------------------------");
            println!("PASS: {passed}/{}", report.results.len());
        }
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The input document the server would evaluate for `--artifact` and `--to`.
async fn gather(target: &Target) -> anyhow::Result<PolicyInput> {
    let (Some(artifact), Some(to)) = (&target.artifact, &target.to) else {
        bail!("name the artifact and the stage: `--artifact <repository>@sha256:<hex> --to <stage>`");
    };
    let (repo, digest) = super::attest::parse_reference(artifact)?;
    let url = format!("{}/api/v1/artifacts/{repo}/{digest}/policy-input?to={to}", target.server.trim_end_matches('/'));
    // Reading what an artifact holds needs pull on its repository.
    let credentials = super::client::Credentials::from_env()?;
    let http =
        super::client::registry_client(&target.server, &credentials, &[format!("repository:{repo}:pull")]).await?;
    let response = http.get(&url).send().await.with_context(|| format!("cannot reach `{url}`"))?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if !status.is_success() {
        let error = serde_json::from_slice::<ErrorBody>(&body).ok().map(|b| b.error.message);
        bail!("`{url}` answered {status}: {}", error.as_deref().unwrap_or("no detail"));
    }
    Ok(serde_json::from_slice(&body).unwrap_or(PolicyInput(Value::Null)))
}

async fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let bundle = load_bundle(args.bundle.as_ref())?;
    let input: Value = match &args.input {
        Some(path) => {
            serde_json::from_slice(&std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?)
                .with_context(|| format!("input `{}` is not JSON", path.display()))?
        }
        None => gather(&args.target).await?.0,
    };
    // A gathered or stored input carries its decision time; replaying it gives the same decision.
    let at: Timestamp = InputTime::deserialize(&input)
        .ok()
        .and_then(|i| i.time)
        .and_then(|t| Timestamp::parse_rfc3339(&t))
        .unwrap_or_else(super::trust::now);
    let decision = Engine::new().evaluate(&bundle, &input, at, &EvalLimits::default());
    match args.output {
        Output::Json => println!("{}", String::from_utf8(decision.to_canonical_json())?),
        Output::Text => print_decision(&decision),
    }
    Ok(if decision.allowed() { ExitCode::SUCCESS } else { ExitCode::from(DENIED) })
}

/// The decision time an input carries (`docs/policy-input.md`).
#[derive(serde::Deserialize)]
struct InputTime {
    time: Option<String>,
}

/// One entry of a decision's `vex_applied`, copied from the input: what a client shows of it.
#[derive(Default, serde::Deserialize)]
struct VexApplied {
    vulnerability: Option<String>,
    status: Option<String>,
    justification: Option<String>,
}

/// A decision for people: outcome, each violation with its remediation, warnings, waivers.
pub fn print_decision(d: &Decision) {
    let outcome = if d.allowed() { "allow" } else { "deny" };
    println!(
        "{} (bundle {}, input {})",
        outcome.to_uppercase(),
        d.bundle_digest,
        d.input_digest.as_deref().unwrap_or("?")
    );
    for e in &d.errors {
        println!("  error: {}", e.message);
    }
    for v in &d.violations {
        println!("  ✗ [{}] {}", v.rule.as_deref().unwrap_or("?"), v.message);
        if let Some(r) = &v.remediation {
            println!("      fix: {r}");
        }
        if let Some(doc) = &v.doc {
            println!("      see: {doc}");
        }
    }
    for w in &d.warnings {
        println!("  ! [{}] {}", w.rule.as_deref().unwrap_or("?"), w.message);
    }
    for w in &d.waivers_applied {
        println!("  waived by {}: {}", w.waiver, w.justification);
    }
    for v in &d.vex_applied {
        let v = VexApplied::deserialize(v).unwrap_or_default();
        println!(
            "  VEX {} {}: {}",
            v.vulnerability.as_deref().unwrap_or("?"),
            v.status.as_deref().unwrap_or("?"),
            v.justification.as_deref().unwrap_or("")
        );
    }
}
