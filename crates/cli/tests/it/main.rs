//! End-to-end tests of the `airlock` binary: real registry clients (skopeo, podman, oras), a
//! crash in the middle of an upload, graceful shutdown, and the `scrub` command.
//!
//! These need the tools `scripts/test` installs; run them through it.

#![allow(
    clippy::disallowed_methods,
    reason = "tests read the wall clock for TOTP codes and validity windows against a running server"
)]

mod audit;
mod checkpoint_file;
mod clients;
mod cpu_work;
mod crash;
mod crash_campaign;
mod crash_support;
mod damaged_store;
mod disk_full;
mod identity;
mod migrate;
mod promotion;
mod promotion_crash;
mod quickstart;
mod release;
mod replicas;
mod serve;
mod trust;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn airlock() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_airlock"))
}

/// Runs a tool, failing the test with its output and a hint when it is missing or fails.
pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}; run the tests through `scripts/test`, which installs it"));
    assert!(
        output.status.success(),
        "{shown} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The binary with its session under `home` (an `XDG_CONFIG_HOME`) and no ambient Airlock
/// settings.
pub fn cmd(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(airlock());
    cmd.args(args)
        .env("XDG_CONFIG_HOME", home)
        .env_remove("AIRLOCK_SERVER")
        .env_remove("AIRLOCK_USERNAME")
        .env_remove("AIRLOCK_PASSWORD")
        .env_remove("AIRLOCK_OTP")
        .env_remove("AIRLOCK_CONFIG")
        .stdin(Stdio::null());
    cmd
}

/// A command's exit code and output, for assertion messages.
pub fn show(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Logs in under `home` (an `XDG_CONFIG_HOME`) as a key admin, the service account `keys` with
/// role `key-admin`, created (or given a new key) on `server`: applying a trust root is a key
/// admin's duty (issue 17), never anonymous.
pub fn login_key_admin(server: &airlock_test_support::process::Endpoint, home: &Path) {
    let key = server.service_account("keys", &["key-admin"]);
    let url = format!("http://{}", server.addr);
    run(Command::new(airlock())
        .args(["login", &url, "--username", "keys", "--output", "json"])
        .env("XDG_CONFIG_HOME", home)
        .env("AIRLOCK_PASSWORD", key)
        .env_remove("AIRLOCK_USERNAME")
        .env_remove("AIRLOCK_SERVER"));
}

/// `airlock trust apply FILE [args]` in the key admin's session under `home`
/// ([`login_key_admin`]).
pub fn trust_apply(home: &Path, file: &str, args: &[&str]) -> Output {
    Command::new(airlock())
        .args(["trust", "apply", file])
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env_remove("AIRLOCK_SERVER")
        .output()
        .expect("airlock runs")
}

/// `airlock trust init` of a root under `dir/root` with `root_keys` keys of which `threshold`
/// must sign, and one signer `ci` (its public key in `dir/ci.pub`) for SLSA provenance in
/// `dev/**`.
pub fn trust_init(dir: &Path, root_keys: u32, threshold: u32) -> Command {
    let mut cmd = Command::new(airlock());
    cmd.args(["trust", "init", "--dir"])
        .arg(dir.join("root"))
        .args(["--root-keys", &root_keys.to_string(), "--threshold", &threshold.to_string()])
        .args(["--signer", "ci", "--signer-key"])
        .arg(dir.join("ci.pub"))
        .args(["--predicate-type", "https://slsa.dev/provenance/*", "--repository", "dev/**", "--output", "json"]);
    cmd
}

/// The Python with the `oras` package, from `AIRLOCK_TEST_PYTHON` (set by `scripts/test`).
pub fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python");
    std::env::var_os("AIRLOCK_TEST_PYTHON").map(PathBuf::from).unwrap_or(venv)
}
