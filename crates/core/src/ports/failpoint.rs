//! Failpoints: named places in a durable write where a crash-safety test stops the process.
//!
//! The backends (store, blob) and the server's checkpointer call [`failpoint`] between the steps
//! of a write; `scripts/crash-campaign` starts the server with [`FAILPOINT_ENV`] naming one of
//! them, checks that it died there, and restarts it over the same data. Unset, a failpoint does
//! nothing. `docs/runbook.md` ("Crash safety") lists them and what a crash at each leaves.

/// The environment variable naming a failpoint, for crash-safety tests.
pub const FAILPOINT_ENV: &str = "AIRLOCK_FAILPOINT";

/// Aborts the process, as `kill -9` would, when [`FAILPOINT_ENV`] names `name`: nothing is
/// flushed, no destructor runs, no response is sent. Unset or naming another point, this does
/// nothing.
pub fn failpoint(name: &str) {
    if std::env::var_os(FAILPOINT_ENV).is_some_and(|v| v == name) {
        eprintln!("airlock: failpoint `{name}` reached; aborting");
        std::process::abort();
    }
}
