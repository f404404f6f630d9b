//! The `airlock` binary: parses the command line and runs one subcommand.
//!
//! Exit codes: 0 success, 1 error, 2 usage, 3 denied: by a gate or policy, a failed
//! verification, or the server's authorization or rules (403, 422).

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// jemalloc rather than glibc's allocator: glibc raises its mmap threshold after the first
/// password hash frees its 19 MiB, and from then on keeps that much per thread arena for good;
/// jemalloc hands blocks that large back to the system as they are freed.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Airlock: a secure artifact promotion system and OCI registry.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry server.
    Serve(commands::serve::Args),
    /// Show Airlock's main job end to end on a fresh data directory, then exit.
    Demo(commands::demo::Args),
    /// Re-hash every stored blob and quarantine any that no longer match their digest.
    Scrub(commands::scrub::Args),
    /// Check a data directory (the whole database, the log) with the server stopped, and say what to do next.
    Doctor(commands::doctor::Args),
    /// Move a single node (SQLite and the data directory) to PostgreSQL and S3, with the server stopped.
    Migrate(commands::migrate::Args),
    /// Verify, export and follow the transparency log.
    Audit(commands::audit::Args),
    /// Sign an in-toto statement about an artifact and push it as a referrer.
    Attest(commands::attest::Args),
    /// Verify attestations offline.
    Attestation(commands::attestation::Args),
    /// Manage the trust root: init, show, propose, sign, apply.
    Trust(commands::trust::Args),
    /// Manage signing keys.
    Key(commands::key::Args),
    /// Test and evaluate policy bundles, and decide access requests offline.
    Policy(commands::policy::Args),
    /// Show what Airlock reads from scanner reports, SBOMs and provenance.
    Evidence(commands::evidence::Args),
    /// Log in to a server and store the session the identity commands use.
    Login(commands::login::Args),
    /// Show who the stored session acts as.
    Whoami(commands::whoami::Args),
    /// Manage users: add, disable, enable, list.
    User(commands::user::Args),
    /// Manage service accounts and their API keys: create, rotate-key, list.
    Sa(commands::sa::Args),
    /// List, grant and revoke roles.
    Role(commands::role::Args),
    /// Just-in-time elevation: request a role for a while, approve, revoke, list.
    Access(commands::access::Args),
    /// Promote an artifact to the next stage through its gates (exit 3 when denied).
    Promote(commands::promote::PromoteArgs),
    /// Approve a pending promotion (a person holding the stage's approver role).
    Approve(commands::promote::ApproveArgs),
    /// Reject a pending promotion, with the reason.
    Reject(commands::promote::RejectArgs),
    /// List promotions and show one.
    Promotion(commands::promote::PromotionArgs),
    /// Check that a digest was promoted into a stage: release record, summary and log proof.
    Verify(commands::verify::Args),
    /// Release bundles: export one for verification with no server.
    Release(commands::release::Args),
    /// Freeze a stage: every promotion into it is denied until two people unfreeze it.
    Freeze(commands::control::FreezeArgs),
    /// Ask to lift a stage's freeze; a second, different person must confirm.
    Unfreeze(commands::control::UnfreezeArgs),
    /// Point a gated tag back at a digest promoted there before (re-verified, logged).
    Rollback(commands::control::RollbackArgs),
    /// Policy waivers: request, approve (another person), revoke, list.
    Waiver(commands::control::WaiverArgs),
    /// Follow-up reviews of break-glass promotions: list, close.
    Review(commands::control::ReviewArgs),
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

fn main() -> ExitCode {
    // HTTPS clients (reqwest over rustls) use ring, which the workspace builds anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => commands::serve::exec(args),
        Command::Demo(args) => commands::demo::exec(args),
        Command::Scrub(args) => commands::scrub::exec(args),
        Command::Doctor(args) => commands::doctor::exec(args),
        Command::Migrate(args) => commands::migrate::exec(args),
        Command::Audit(args) => commands::audit::exec(args),
        Command::Attest(args) => commands::attest::exec(args),
        Command::Attestation(args) => commands::attestation::exec(args),
        Command::Trust(args) => commands::trust::exec(args),
        Command::Key(args) => commands::key::exec(args),
        Command::Policy(args) => commands::policy::exec(args),
        Command::Evidence(args) => commands::evidence::exec(args),
        Command::Login(args) => commands::login::exec(args),
        Command::Whoami(args) => commands::whoami::exec(args),
        Command::User(args) => commands::user::exec(args),
        Command::Sa(args) => commands::sa::exec(args),
        Command::Role(args) => commands::role::exec(args),
        Command::Access(args) => commands::access::exec(args),
        Command::Promote(args) => commands::promote::promote(args),
        Command::Approve(args) => commands::promote::approve(args),
        Command::Reject(args) => commands::promote::reject(args),
        Command::Promotion(args) => commands::promote::promotion(args),
        Command::Verify(args) => commands::verify::exec(args),
        Command::Release(args) => commands::release::exec(args),
        Command::Freeze(args) => commands::control::freeze(args),
        Command::Unfreeze(args) => commands::control::unfreeze(args),
        Command::Rollback(args) => commands::control::rollback(args),
        Command::Waiver(args) => commands::control::waiver(args),
        Command::Review(args) => commands::control::review(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A refusal by the server's rules or authorization is a denial, like a gate's.
            if e.downcast_ref::<commands::session::Refused>().is_some() { ExitCode::from(3) } else { ExitCode::from(1) }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
