//! Backoff after failed logins.

/// Failed logins (per principal name and per source address) before backoff starts.
pub const LOGIN_FAILURES_BEFORE_BACKOFF: u32 = 5;
/// Longest backoff after repeated failed logins.
pub const LOGIN_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(900);
/// Most principals and addresses tracked for failed logins; past it, the quietest are forgotten.
const THROTTLE_ENTRIES_MAX: usize = 100_000;

/// Failed logins per principal name and per source address, with exponential backoff: after
/// [`LOGIN_FAILURES_BEFORE_BACKOFF`] failures in a row, each further attempt waits 1 s, 2 s, 4 s,
/// ... up to [`LOGIN_BACKOFF_MAX`]. Kept in memory, per process.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    entries: std::sync::Mutex<std::collections::HashMap<String, Strikes>>,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    blocked_until: std::time::Instant,
}

impl Throttle {
    /// How long the first blocked key must still wait, if any is blocked.
    pub(crate) fn blocked(&self, keys: &[String], now: std::time::Instant) -> Option<std::time::Duration> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.iter()
            .filter_map(|k| entries.get(k))
            .map(|s| s.blocked_until.saturating_duration_since(now))
            .find(|d| !d.is_zero())
    }

    pub(crate) fn fail(&self, keys: &[String], now: std::time::Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= THROTTLE_ENTRIES_MAX {
            entries.retain(|_, s| s.blocked_until > now);
            if entries.len() >= THROTTLE_ENTRIES_MAX {
                entries.clear();
            }
        }
        for key in keys {
            let strikes = entries.entry(key.clone()).or_insert(Strikes { failures: 0, blocked_until: now });
            strikes.failures = strikes.failures.saturating_add(1);
            if let Some(over) = strikes.failures.checked_sub(LOGIN_FAILURES_BEFORE_BACKOFF) {
                let secs = 1u64.checked_shl(over.min(20)).unwrap_or(u64::MAX);
                let wait = std::time::Duration::from_secs(secs).min(LOGIN_BACKOFF_MAX);
                strikes.blocked_until = now.checked_add(wait).unwrap_or(now);
            }
        }
    }

    pub(crate) fn succeed(&self, key: &str) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}
