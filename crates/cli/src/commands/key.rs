//! `airlock key generate`: a signing key pair as PEM files (PKCS#8 private key, mode 0600, and
//! SPKI public key), and its keyid.

use std::path::PathBuf;
use std::process::ExitCode;

use airlock_dsse::{Algorithm, PrivateKey};
use anyhow::Context;
use clap::{Subcommand, ValueEnum};

use crate::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a key pair: NAME.key (private, mode 0600) and NAME.pub.
    Generate(GenerateArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AlgorithmArg {
    Ed25519,
    P256,
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    #[arg(long, value_enum, default_value = "ed25519")]
    algorithm: AlgorithmArg,
    /// Path prefix of the two files written.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// Writes `text` to a new file readable by its owner only.
pub fn write_secret(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        format!("cannot create `{}`; it must not exist yet (keys are never overwritten)", path.display())
    })?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Generates a key and writes `prefix.key` and `prefix.pub`.
pub fn generate(algorithm: Algorithm, prefix: &std::path::Path) -> anyhow::Result<(PrivateKey, PathBuf, PathBuf)> {
    let key = PrivateKey::generate(algorithm).map_err(|e| anyhow::anyhow!("cannot generate a key: {e}"))?;
    let private = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    write_secret(&private, &key.to_pkcs8_pem().map_err(|e| anyhow::anyhow!("cannot encode the key: {e}"))?)?;
    std::fs::write(&public, key.public_key().to_pem())
        .with_context(|| format!("cannot write `{}`", public.display()))?;
    Ok((key, private, public))
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let Command::Generate(args) = args.command;
    let algorithm = match args.algorithm {
        AlgorithmArg::Ed25519 => Algorithm::Ed25519,
        AlgorithmArg::P256 => Algorithm::EcdsaP256Sha256,
    };
    let (key, private, public) = generate(algorithm, &args.out)?;
    let keyid = key.public_key().keyid().to_string();
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"keyid": keyid, "algorithm": algorithm.as_str(), "private_key": private, "public_key": public})
        ),
        Output::Text => {
            println!("keyid {keyid} ({})", algorithm.as_str());
            println!("private key: {} (keep it secret)", private.display());
            println!("public key:  {}", public.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
