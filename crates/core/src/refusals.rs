//! Refusals on record without the log growing with an attacker's traffic: identical refusals
//! within one window are logged once in full and then only counted, and one
//! `refusal.aggregate` entry says how many there were.
//!
//! - Two refusals are **identical** (have the same key) when they have the same event type,
//!   actor and actor kind, subject, outcome (the reasons) and the same [`KEY_DETAILS`]: `action`,
//!   `resource`, `method` and `source`. Anonymous refusals carry the client address in `source`,
//!   so the key of an anonymous refusal is its client address; an authenticated one's is its
//!   principal. Other details (a claimed principal name, say) are not part of the key: the
//!   aggregate repeats those of the window's first refusal.
//! - The first refusal of a key opens a **window** of [`RefusalLimits::window_secs`] and is
//!   appended as it always was. Identical refusals inside the window are counted only.
//! - When the window closes (the next identical refusal after it, or the server's periodic
//!   [`Refusals::close`], or the final one at shutdown) an aggregate entry records the refused
//!   type, the count (the refusal logged in full included), and the first and last time. A
//!   window holding only its first refusal closes without an entry: it is on record in full.
//! - At most [`RefusalLimits::keys_max`] keys are open at once. Past that, a refusal with a new
//!   key is counted in one **overflow** tally per event type, whose aggregate names no actor
//!   (`airlock`) and no subject: a flood of distinct refusals costs a bounded number of entries.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use airlock_model::{Digest, Timestamp};
use serde_json::{Map, Value, json};

use crate::audit::{Actor, Event, EventKind, Outcome, Subject};

/// Seconds a window of identical refusals stays open, by default (`log.refusal_window_secs`).
pub const REFUSAL_WINDOW_SECS: u64 = 60;
/// Most distinct refusal keys open at once, by default (`log.refusal_keys_max`).
pub const REFUSAL_KEYS_MAX: usize = 1024;

/// How refusals are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalLimits {
    /// How long a window stays open after its first refusal, in seconds (at least 1).
    pub window_secs: u64,
    /// Most distinct keys open at once (at least 1); past it, new keys fold into the overflow
    /// tally of their event type.
    pub keys_max: usize,
}

impl Default for RefusalLimits {
    fn default() -> RefusalLimits {
        RefusalLimits { window_secs: REFUSAL_WINDOW_SECS, keys_max: REFUSAL_KEYS_MAX }
    }
}

/// What a refusal is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// Identical refusals: the digest of the document without `time` and `request_id`.
    Exact(Digest),
    /// Every refusal of one type that found the table full.
    Overflow(EventKind),
}

/// One open window.
#[derive(Debug)]
struct Tally {
    first: Timestamp,
    last: Timestamp,
    /// Refusals in the window, the one logged in full included.
    count: u64,
    /// Refusals in the window appended in full (1 for an exact key, 0 for an overflow tally).
    logged: u64,
    /// The first refusal, whose actor, subject, outcome and details the aggregate repeats.
    sample: Event,
}

/// The open windows: at most `keys_max` exact keys, and at most one overflow tally per type.
#[derive(Debug, Default)]
struct Table {
    tallies: HashMap<Key, Tally>,
    exact: usize,
}

impl Table {
    fn remove(&mut self, key: &Key) -> Option<Tally> {
        let tally = self.tallies.remove(key)?;
        if matches!(key, Key::Exact(_)) {
            self.exact = self.exact.saturating_sub(1);
        }
        Some(tally)
    }

    fn insert(&mut self, key: Key, tally: Tally) {
        if matches!(key, Key::Exact(_)) {
            self.exact = self.exact.saturating_add(1);
        }
        self.tallies.insert(key, tally);
    }
}

/// The open windows of identical refusals, in memory, per process.
#[derive(Debug)]
pub struct Refusals {
    limits: RefusalLimits,
    open: Mutex<Table>,
}

impl Default for Refusals {
    fn default() -> Refusals {
        Refusals::new(RefusalLimits::default())
    }
}

impl Refusals {
    pub fn new(limits: RefusalLimits) -> Refusals {
        let limits = RefusalLimits { window_secs: limits.window_secs.max(1), keys_max: limits.keys_max.max(1) };
        Refusals { limits, open: Mutex::default() }
    }

    pub fn limits(&self) -> RefusalLimits {
        self.limits
    }

    fn window_ms(&self) -> u64 {
        self.limits.window_secs.saturating_mul(1000)
    }

    /// The entries to append for refusal `event`, in order: the aggregate of the window of its
    /// key if that window has closed, then `event` itself if it opens a window. Empty when it
    /// is only counted.
    pub fn admit(&self, event: &Event) -> Vec<Event> {
        let Some(digest) = key_of(event) else {
            // A document that cannot be canonicalized cannot be logged either; the append
            // reports that.
            return vec![event.clone()];
        };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        let exact = Key::Exact(digest);
        let key = if open.tallies.contains_key(&exact) || open.exact < self.limits.keys_max {
            exact
        } else {
            Key::Overflow(event.kind)
        };
        if let Some(tally) = open.tallies.get_mut(&key) {
            if event.time < tally.first.plus_millis(self.window_ms()) {
                tally.count = tally.count.saturating_add(1);
                tally.last = tally.last.max(event.time);
                return out;
            }
            if let Some(tally) = open.remove(&key) {
                out.extend(self.aggregate(&key, tally, event.time));
            }
        }
        let logged = u64::from(matches!(key, Key::Exact(_)));
        if logged == 1 {
            out.push(event.clone());
        }
        open.insert(key, Tally { first: event.time, last: event.time, count: 1, logged, sample: event.clone() });
        out
    }

    /// Closes the windows that have run their length by `now` (every open window when `all`,
    /// at shutdown) and returns their aggregate entries, oldest window first.
    pub fn close(&self, now: Timestamp, all: bool) -> Vec<Event> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.window_ms();
        let closed: Vec<Key> = open
            .tallies
            .iter()
            .filter(|(_, t)| all || now >= t.first.plus_millis(window))
            .map(|(k, _)| k.clone())
            .collect();
        let mut tallies: Vec<(Key, Tally)> =
            closed.into_iter().filter_map(|k| open.remove(&k).map(|t| (k, t))).collect();
        drop(open);
        tallies.sort_by_key(|(_, t)| t.first);
        tallies.into_iter().filter_map(|(k, t)| self.aggregate(&k, t, now)).collect()
    }

    /// How many windows are open (overflow tallies included).
    pub fn open_windows(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).tallies.len()
    }

    /// The `refusal.aggregate` entry of a closed window, at `time`; none when every refusal in
    /// it was logged in full.
    fn aggregate(&self, key: &Key, tally: Tally, time: Timestamp) -> Option<Event> {
        if tally.count <= tally.logged {
            return None;
        }
        let overflow = matches!(key, Key::Overflow(_));
        let mut details = Map::new();
        details.insert("refused".to_owned(), json!(tally.sample.kind.as_str()));
        details.insert("count".to_owned(), json!(tally.count));
        details.insert("first".to_owned(), json!(tally.first.to_rfc3339()));
        details.insert("last".to_owned(), json!(tally.last.to_rfc3339()));
        details.insert("window_secs".to_owned(), json!(self.limits.window_secs));
        details.insert("overflow".to_owned(), json!(overflow));
        let (actor, subject, outcome) = if overflow {
            let reasons = vec![format!(
                "more than {} distinct refusals were open in one window; these were counted without their details",
                self.limits.keys_max
            )];
            (Actor::system(), Subject::default(), Outcome::Denied { reasons })
        } else {
            details.insert("details".to_owned(), Value::Object(tally.sample.details.clone()));
            (tally.sample.actor.without_request(), tally.sample.subject.clone(), tally.sample.outcome.clone())
        };
        Some(Event { kind: EventKind::RefusalAggregate, time, actor, subject, outcome, details })
    }
}

impl crate::Registry {
    /// Logs a refusal: in full when it opens a window of identical refusals, else only counted.
    pub async fn log_refusal(&self, event: &Event) -> Result<(), crate::RegistryError> {
        let events = self.refusals().admit(event);
        if !events.is_empty() {
            self.log_events(&events).await?;
        }
        Ok(())
    }
}

/// The details that are part of a refusal's key: what was attempted, on what, how, and from
/// where (the client address of anonymous refusals).
pub const KEY_DETAILS: [&str; 4] = ["action", "resource", "method", "source"];

/// The key of identical refusals: the digest of the canonical JSON of the refusal's type,
/// actor, actor kind, subject, outcome and its [`KEY_DETAILS`].
fn key_of(event: &Event) -> Option<Digest> {
    let mut document = event.to_json();
    if let Value::Object(members) = &mut document {
        members.remove("time");
        members.remove("request_id");
        if let Some(Value::Object(details)) = members.get_mut("details") {
            details.retain(|name, _| KEY_DETAILS.contains(&name.as_str()));
        }
    }
    airlock_model::jcs::canonicalize(&document).ok().map(|bytes| Digest::of(&bytes))
}

#[cfg(test)]
mod tests;
