//! `airlock trust init|show|propose|sign|apply`: the trust root's life cycle. Root keys stay
//! offline: `propose` writes version N+1 unsigned, each root-key holder runs `sign` on it, and
//! `apply` uploads it once a threshold of the current and of the new root keys have signed, in
//! the session of a key admin (`airlock login` as a principal allowed `trust.sign`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_api::v1::TrustRootApplied;
use airlock_dsse::{Algorithm, PrivateKey, PublicKey};
use airlock_model::Timestamp;
use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::key::generate;
use super::runtime;
use super::session::{Api, Refused};
use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate root keys into a directory and write a signed version 1 trust root.
    Init(InitArgs),
    /// Print a trust root's keys, signers, thresholds and revocations.
    Show(ShowArgs),
    /// Write version N+1 of a root with changes, unsigned.
    Propose(ProposeArgs),
    /// Add one root key's signature to a proposed root.
    Sign(SignArgs),
    /// Upload a signed root to the server, which applies it only under the rotation rules.
    Apply(ApplyArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AlgorithmArg {
    Ed25519,
    P256,
}

impl AlgorithmArg {
    fn algorithm(self) -> Algorithm {
        match self {
            AlgorithmArg::Ed25519 => Algorithm::Ed25519,
            AlgorithmArg::P256 => Algorithm::EcdsaP256Sha256,
        }
    }
}

/// A signer rule given on the command line.
#[derive(Debug, clap::Args)]
struct SignerArgs {
    /// Name of a signer to add (with `--signer-key`, `--predicate-type`, `--repository`).
    #[arg(long)]
    signer: Option<String>,
    /// The signer's public key (PEM file).
    #[arg(long)]
    signer_key: Option<PathBuf>,
    /// Predicate types the signer may sign; `*` matches within a path segment, `**` across.
    #[arg(long = "predicate-type")]
    predicate_types: Vec<String>,
    /// Repositories the signer may sign for, as patterns like `dev/payments/**`.
    #[arg(long = "repository")]
    repositories: Vec<String>,
    /// Days the signer stays valid.
    #[arg(long, default_value_t = 365)]
    signer_days: u64,
}

/// The policy role given on the command line: who signs policy bundles.
#[derive(Debug, clap::Args)]
struct PolicyArgs {
    /// A policy signer's public key (PEM file; repeatable). Once the root names policy signers,
    /// a server loads a policy bundle only when `--policy-threshold` of them signed it
    /// (`airlock policy sign`).
    #[arg(long = "policy-key")]
    policy_keys: Vec<PathBuf>,
    /// How many distinct policy keys must sign a bundle (1 when the role is created).
    #[arg(long)]
    policy_threshold: Option<u32>,
}

impl PolicyArgs {
    // tidy(json-lookup): edits the `signed` member of a root being built, kept as JSON to keep its other members.
    /// Adds the policy keys to `signed` (its `keys` and its `policy` role) and sets the
    /// threshold; returns what changed.
    fn apply(&self, signed: &mut Value) -> anyhow::Result<Vec<String>> {
        let mut changes = Vec::new();
        if self.policy_keys.is_empty() && self.policy_threshold.is_none() {
            return Ok(changes);
        }
        if signed.get("policy").is_none_or(Value::is_null) {
            signed["policy"] = json!({"keyids": [], "threshold": 1});
        }
        for path in &self.policy_keys {
            let key = read_public(path)?;
            signed["keys"][key.keyid().as_str()] = key_entry(&key);
            let keyids = signed["policy"]["keyids"].as_array_mut().context("`policy.keyids` is not a list")?;
            if !keyids.iter().any(|k| k == key.keyid().as_str()) {
                keyids.push(json!(key.keyid().as_str()));
                changes.push(format!("added policy key {}", key.keyid()));
            }
        }
        if let Some(t) = self.policy_threshold {
            signed["policy"]["threshold"] = json!(t);
            changes.push(format!("policy threshold {t}"));
        }
        Ok(changes)
    }
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Directory for the root keys and `root.json`; keep the keys offline afterwards.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 3)]
    root_keys: u32,
    #[arg(long, default_value_t = 2)]
    threshold: u32,
    #[arg(long, value_enum, default_value = "ed25519")]
    algorithm: AlgorithmArg,
    /// Days until the root expires and must be re-signed.
    #[arg(long, default_value_t = 365)]
    expires_days: u64,
    #[command(flatten)]
    signer: SignerArgs,
    #[command(flatten)]
    policy: PolicyArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// A root document; without it, the server's current root.
    #[arg(long)]
    file: Option<PathBuf>,
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    /// A past version instead of the current root.
    #[arg(long)]
    root_version: Option<u64>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct ProposeArgs {
    /// The current root document; without it, fetched from the server.
    #[arg(long)]
    from: Option<PathBuf>,
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    /// Where to write the proposed version.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    signer: SignerArgs,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Remove a policy keyid from the policy role (repeatable); the role goes when none is left.
    #[arg(long = "remove-policy-key")]
    remove_policy_keys: Vec<String>,
    /// Replace the keys of this existing signer with `--signer-key`.
    #[arg(long)]
    rotate_signer: Option<String>,
    /// Revoke this keyid (repeatable); signatures by it are rejected from then on.
    #[arg(long = "revoke")]
    revoke: Vec<String>,
    /// Why the keys are revoked.
    #[arg(long, default_value = "revoked by the trust root owners")]
    reason: String,
    /// Add a root key (PEM public key file; repeatable).
    #[arg(long = "add-root-key")]
    add_root_keys: Vec<PathBuf>,
    /// Remove a root keyid (repeatable).
    #[arg(long = "remove-root-key")]
    remove_root_keys: Vec<String>,
    /// New root threshold.
    #[arg(long)]
    root_threshold: Option<u32>,
    /// Days until the new version expires.
    #[arg(long, default_value_t = 365)]
    expires_days: u64,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct SignArgs {
    /// The proposed root document; signed in place.
    file: PathBuf,
    /// A root private key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct ApplyArgs {
    file: PathBuf,
    /// The server; defaults to the stored session's (`airlock login` as a key admin), and must
    /// match it when given.
    #[arg(long, env = "AIRLOCK_SERVER")]
    server: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Init(a) => init(a),
        Command::Show(a) => runtime()?.block_on(show(a)),
        Command::Propose(a) => runtime()?.block_on(propose(a)),
        Command::Sign(a) => sign(a),
        Command::Apply(a) => runtime()?.block_on(apply(a)),
    }
}

/// Now, to the whole second.
pub fn now() -> Timestamp {
    use airlock_core::ports::Clock as _;
    let ms = airlock_server::SystemClock.now().as_millis();
    Timestamp::from_millis(ms - ms % 1000)
}

/// RFC 3339 `days` from now, to the whole second: `2027-11-26T05:00:00Z`.
fn rfc3339_in_days(days: u64) -> String {
    now().plus_millis(days.saturating_mul(86_400_000)).to_rfc3339().replace(".000Z", "Z")
}

fn read_public(path: &Path) -> anyhow::Result<PublicKey> {
    airlock_dsse::read_public_key(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn key_entry(key: &PublicKey) -> Value {
    json!({"algorithm": key.algorithm().as_str(), "public_key": key.to_pem()})
}

fn signer_rule(args: &SignerArgs, key: &PublicKey) -> anyhow::Result<Value> {
    let Some(name) = &args.signer else { bail!("`--signer-key` needs `--signer NAME`") };
    if args.predicate_types.is_empty() || args.repositories.is_empty() {
        bail!("signer `{name}` needs at least one `--predicate-type` and one `--repository` pattern");
    }
    Ok(json!({
        "name": name,
        "keyids": [key.keyid().as_str()],
        "predicate_types": args.predicate_types,
        "repositories": args.repositories,
        "not_before": rfc3339_in_days(0),
        "not_after": rfc3339_in_days(args.signer_days),
    }))
}

/// The canonical bytes of a root's `signed` member.
fn canonical(signed: &Value) -> anyhow::Result<Vec<u8>> {
    airlock_model::jcs::canonicalize(signed).map_err(|e| anyhow::anyhow!("the root cannot be canonicalized: {e}"))
}

/// A document with `signed` in canonical form and the given signatures.
fn document(signed: &Value, signatures: &[Value]) -> anyhow::Result<Vec<u8>> {
    let signed = String::from_utf8(canonical(signed)?)?;
    let signatures = serde_json::to_string(signatures)?;
    Ok(format!("{{\"signatures\":{signatures},\"signed\":{signed}}}").into_bytes())
}

// tidy(json-lookup): reads the signatures of a root document, kept as JSON to write them back as they were.
/// Adds one signature over the `signed` bytes exactly as they stand in the document.
fn add_signature(document_bytes: &[u8], key: &PrivateKey) -> anyhow::Result<Vec<u8>> {
    let raw: RawDocument = serde_json::from_slice(document_bytes).context("the root document is not JSON")?;
    let signed_bytes = raw.signed.get().as_bytes();
    let mut signatures = raw.signatures;
    let keyid = key.public_key().keyid().to_string();
    if signatures.iter().any(|s| s["keyid"] == keyid.as_str()) {
        bail!("key `{keyid}` has already signed this document");
    }
    let sig = key.sign(signed_bytes).map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
    signatures.push(json!({"keyid": keyid, "sig": STANDARD.encode(sig)}));
    let signatures = serde_json::to_string(&signatures)?;
    Ok(format!("{{\"signatures\":{signatures},\"signed\":{}}}", raw.signed.get()).into_bytes())
}

#[derive(serde::Deserialize)]
struct RawDocument {
    signed: Box<serde_json::value::RawValue>,
    signatures: Vec<Value>,
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    if args.threshold == 0 || args.threshold > args.root_keys {
        bail!("`--threshold` must be between 1 and `--root-keys` ({})", args.root_keys);
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create `{}`", args.dir.display()))?;
    let mut root_keys = Vec::new();
    let mut files = Vec::new();
    for i in 1..=args.root_keys {
        let (key, private, _) = generate(args.algorithm.algorithm(), &args.dir.join(format!("root-{i}")))?;
        files.push(private);
        root_keys.push(key);
    }
    let mut keys = serde_json::Map::new();
    for key in &root_keys {
        keys.insert(key.public_key().keyid().to_string(), key_entry(key.public_key()));
    }
    let mut signers = Vec::new();
    if let Some(path) = &args.signer.signer_key {
        let key = read_public(path)?;
        keys.insert(key.keyid().to_string(), key_entry(&key));
        signers.push(signer_rule(&args.signer, &key)?);
    }
    let mut signed = json!({
        "_type": "airlock-trust-root",
        "version": 1,
        "expires": rfc3339_in_days(args.expires_days),
        "keys": keys,
        "root": {"keyids": root_keys.iter().map(|k| k.public_key().keyid().to_string()).collect::<Vec<_>>(), "threshold": args.threshold},
        "signers": signers,
        "thresholds": [],
        "revoked": [],
    });
    args.policy.apply(&mut signed)?;
    let mut doc = document(&signed, &[])?;
    for key in &root_keys {
        doc = add_signature(&doc, key)?;
    }
    let out = args.dir.join("root.json");
    std::fs::write(&out, &doc).with_context(|| format!("cannot write `{}`", out.display()))?;
    match args.output {
        Output::Json => println!("{}", json!({"root": out, "root_keys": files, "threshold": args.threshold})),
        Output::Text => {
            println!("wrote trust root version 1 to {}", out.display());
            println!("root keys ({} of {} must sign every change):", args.threshold, args.root_keys);
            for f in &files {
                println!("  {}", f.display());
            }
            println!("move each root key to offline storage held by a different person, then:");
            println!("  airlock trust apply {}        (or set `trust.root` in airlock.toml)", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn fetch_root(server: &str, version: Option<u64>) -> anyhow::Result<Vec<u8>> {
    let query = version.map_or_else(String::new, |v| format!("?version={v}"));
    let url = format!("{}/api/v1/trust/root{query}", server.trim_end_matches('/'));
    let response = reqwest::get(&url).await.with_context(|| format!("cannot reach `{url}`"))?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "`GET {url}` answered {status}: {}",
            String::from_utf8_lossy(&body).chars().take(300).collect::<String>()
        );
    }
    Ok(body.to_vec())
}

async fn load(file: Option<&Path>, server: &str, version: Option<u64>) -> anyhow::Result<Vec<u8>> {
    match file {
        Some(path) => std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display())),
        None => fetch_root(server, version).await,
    }
}

// tidy(json-lookup): prints a root document (a file, or the server's opaque `TrustRootDocument`) as it reads.
async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let bytes = load(args.file.as_deref(), &args.server, args.root_version).await?;
    let doc: Value = serde_json::from_slice(&bytes).context("the root document is not JSON")?;
    let signed = &doc["signed"];
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        Output::Text => {
            println!(
                "trust root version {} (expires {})",
                signed["version"],
                signed["expires"].as_str().unwrap_or("?")
            );
            println!("root: {} of {:?}", signed["root"]["threshold"], signed["root"]["keyids"]);
            for s in signed["signers"].as_array().into_iter().flatten() {
                println!(
                    "signer {}: keys {} may sign {} for {} until {}",
                    s["name"],
                    s["keyids"],
                    s["predicate_types"],
                    s["repositories"],
                    s["not_after"].as_str().unwrap_or("?")
                );
            }
            for t in signed["thresholds"].as_array().into_iter().flatten() {
                println!("threshold: {} distinct signers for {}", t["signers"], t["predicate_type"]);
            }
            if let Some(policy) = signed.get("policy") {
                println!("policy: {} of {} sign policy bundles", policy["threshold"], policy["keyids"]);
            } else {
                println!("policy: no signers named; servers load policy bundles unsigned, with a warning");
            }
            for r in signed["revoked"].as_array().into_iter().flatten() {
                println!(
                    "revoked {} at {}: {}",
                    r["keyid"],
                    r["revoked_at"].as_str().unwrap_or("?"),
                    r["reason"].as_str().unwrap_or("")
                );
            }
            println!("{} signatures", doc["signatures"].as_array().map_or(0, Vec::len));
        }
    }
    Ok(ExitCode::SUCCESS)
}

// tidy(json-lookup): edits the `signed` member of a root being built, kept as JSON to keep its other members.
async fn propose(args: ProposeArgs) -> anyhow::Result<ExitCode> {
    let bytes = load(args.from.as_deref(), &args.server, None).await?;
    let doc: Value = serde_json::from_slice(&bytes).context("the current root is not JSON")?;
    let mut signed = doc["signed"].clone();
    let version = signed["version"].as_u64().context("the current root has no `version`")?;
    signed["version"] = json!(version + 1);
    signed["expires"] = json!(rfc3339_in_days(args.expires_days));
    let mut changes = Vec::new();
    if let Some(path) = &args.signer.signer_key {
        let key = read_public(path)?;
        signed["keys"][key.keyid().as_str()] = key_entry(&key);
        if let Some(name) = &args.rotate_signer {
            let signers = signed["signers"].as_array_mut().context("`signers` is not a list")?;
            let signer = signers
                .iter_mut()
                .find(|s| s["name"] == name.as_str())
                .with_context(|| format!("no signer named `{name}` to rotate"))?;
            signer["keyids"] = json!([key.keyid().as_str()]);
            changes.push(format!("rotated signer `{name}` to key {}", key.keyid()));
        } else {
            let rule = signer_rule(&args.signer, &key)?;
            signed["signers"].as_array_mut().context("`signers` is not a list")?.push(rule);
            changes.push(format!("added signer `{}`", args.signer.signer.as_deref().unwrap_or("?")));
        }
    }
    for keyid in &args.revoke {
        signed["revoked"]
            .as_array_mut()
            .context("`revoked` is not a list")?
            .push(json!({"keyid": keyid, "revoked_at": rfc3339_in_days(0), "reason": args.reason}));
        changes.push(format!("revoked key {keyid}"));
    }
    for path in &args.add_root_keys {
        let key = read_public(path)?;
        signed["keys"][key.keyid().as_str()] = key_entry(&key);
        signed["root"]["keyids"]
            .as_array_mut()
            .context("`root.keyids` is not a list")?
            .push(json!(key.keyid().as_str()));
        changes.push(format!("added root key {}", key.keyid()));
    }
    for keyid in &args.remove_root_keys {
        signed["root"]["keyids"].as_array_mut().context("`root.keyids` is not a list")?.retain(|k| k != keyid.as_str());
        changes.push(format!("removed root key {keyid}"));
    }
    if let Some(t) = args.root_threshold {
        signed["root"]["threshold"] = json!(t);
        changes.push(format!("root threshold {t}"));
    }
    changes.extend(args.policy.apply(&mut signed)?);
    for keyid in &args.remove_policy_keys {
        if let Some(keyids) = signed.get_mut("policy").and_then(|p| p.get_mut("keyids")).and_then(Value::as_array_mut) {
            keyids.retain(|k| k != keyid.as_str());
            changes.push(format!("removed policy key {keyid}"));
        }
    }
    let role_empty = signed["policy"]["keyids"].as_array().is_some_and(Vec::is_empty);
    if role_empty && let Some(object) = signed.as_object_mut() {
        object.remove("policy");
        changes.push("removed the policy role: bundles load unsigned, with a warning".to_owned());
    }
    let out = document(&signed, &[])?;
    std::fs::write(&args.out, &out).with_context(|| format!("cannot write `{}`", args.out.display()))?;
    match args.output {
        Output::Json => println!("{}", json!({"version": version + 1, "out": args.out, "changes": changes})),
        Output::Text => {
            println!("proposed trust root version {} in {}", version + 1, args.out.display());
            for c in &changes {
                println!("  {c}");
            }
            println!(
                "next: a threshold of the current and of the new root keys run `airlock trust sign {} --key ...`",
                args.out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let key = airlock_dsse::read_private_key(&args.key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read `{}`", args.file.display()))?;
    let signed = add_signature(&bytes, &key)?;
    std::fs::write(&args.file, &signed).with_context(|| format!("cannot write `{}`", args.file.display()))?;
    let keyid = key.public_key().keyid().to_string();
    match args.output {
        Output::Json => println!("{}", json!({"signed_by": keyid, "file": args.file})),
        Output::Text => println!("signed {} with root key {keyid}", args.file.display()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read `{}`", args.file.display()))?;
    // Applying a root is a key admin's duty: the server refuses anonymous requests.
    let api = Api::connect(args.server.as_deref())
        .await
        .context("applying a trust root needs the session of a key admin (a principal allowed `trust.sign`)")?;
    let applied =
        api.put_bytes::<TrustRootApplied>("/api/v1/trust/root", bytes, "application/json", "trust root refused").await;
    let applied = match applied {
        Ok(reply) => reply.body,
        Err(e) if e.downcast_ref::<Refused>().is_some() => {
            match args.output {
                Output::Json => println!("{}", json!({"applied": false, "error": format!("{e:#}")})),
                Output::Text => eprintln!("error: {e:#}"),
            }
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e),
    };
    match args.output {
        Output::Json => println!("{}", json!({"applied": true, "version": applied.version})),
        Output::Text => println!("trust root version {} is now in force", applied.version),
    }
    Ok(ExitCode::SUCCESS)
}
