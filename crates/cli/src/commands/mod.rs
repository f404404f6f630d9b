//! One module per subcommand: a clap `Args` struct and an `exec`.

pub mod access;
pub mod attest;
pub mod attestation;
pub mod audit;
pub mod authz;
pub mod client;
pub mod control;
pub mod demo;
pub mod doctor;
pub mod evidence;
pub mod key;
pub mod login;
pub mod migrate;
pub mod policy;
pub mod promote;
pub mod release;
pub mod role;
pub mod sa;
pub mod scrub;
pub mod serve;
pub mod session;
pub mod trust;
pub mod user;
pub mod verify;
pub mod whoami;

use std::path::PathBuf;

use airlock_server::Config;
use anyhow::Context as _;

/// Flags shared by commands that open the server's configuration and data directory.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file; `airlock.toml` in the working directory is read when present.
    #[arg(long, short = 'c', env = "AIRLOCK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (metadata database and blobs); overrides `data_dir` in the config.
    #[arg(long, env = "AIRLOCK_DATA")]
    pub data: Option<PathBuf>,
}

/// The settings file a data directory may carry (`airlock demo` leaves one), read when no
/// `--config` is given and the working directory has no `airlock.toml`.
pub const DATA_DIR_CONFIG: &str = "airlock.toml";

impl ConfigArgs {
    /// The configuration file to read: `--config`; else `airlock.toml` in the working
    /// directory; else the data directory's own `airlock.toml`; else none (the defaults).
    pub fn path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.config {
            return Some(path.clone());
        }
        let here = PathBuf::from("airlock.toml");
        if here.is_file() {
            return Some(here);
        }
        let data = self.data.clone().unwrap_or_else(|| PathBuf::from(airlock_server::config::DEFAULT_DATA_DIR));
        Some(data.join(DATA_DIR_CONFIG)).filter(|p| p.is_file())
    }

    /// Loads the config, applies the flags, and warns about unknown keys.
    pub fn load(&self) -> anyhow::Result<Config> {
        let (mut config, unknown) = Config::load(self.path().as_deref()).context("cannot load configuration")?;
        for key in unknown {
            eprintln!("warning: unknown config key `{key}` ignored; see the README's configuration table");
        }
        if let Some(data) = &self.data {
            config.data_dir = data.clone();
        }
        Ok(config)
    }
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}
