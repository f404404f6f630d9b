//! What a failed login costs: exponential backoff for guessable secrets, keyed so that nobody
//! can lock anybody else out, and the same work for every refused password.
//!
//! - Passwords and one-time codes back off per (principal, client address): failures from one
//!   address never hold back the principal's owner at another. Backoff is never keyed on the
//!   name alone (anyone could lock out anyone) nor on a shared address alone (one client behind
//!   a proxy would lock out all).
//! - One client address also backs off after [`CLIENT_FAILURES_BEFORE_BACKOFF`] failures over
//!   any names, against spraying one password over many names; that holds back only the
//!   address that failed.
//! - API keys (256 random bits) and CI tokens (signed) cannot be guessed: their failures are
//!   refused, logged and counted ([`LoginCounters`]), never backed off, so a service account is
//!   never locked out.
//! - Every refused password costs one Argon2 verification, against the principal's hash or, for
//!   an unknown name (or a principal without a password), against [`decoy_password_hash`], so
//!   the time taken does not tell which names exist.
//!
//! The state is in memory, per process, bounded by [`THROTTLE_ENTRIES_MAX`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use airlock_model::PRINCIPAL_NAME_MAX_LEN;
use prometheus_client::metrics::counter::Counter;

use airlock_core::identity::API_KEY_PREFIX;

/// Failed logins for one principal from one client address before backoff starts.
pub const LOGIN_FAILURES_BEFORE_BACKOFF: u32 = 5;
/// Failed logins from one client address, over any names, before that address backs off.
pub const CLIENT_FAILURES_BEFORE_BACKOFF: u32 = 100;
/// Longest backoff after repeated failed logins.
pub const LOGIN_BACKOFF_MAX: Duration = Duration::from_secs(900);
/// Failures are forgotten after this long without another.
pub const LOGIN_FAILURES_FORGOTTEN_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Most keys tracked; past it, the failures forgotten and then the quietest half are dropped.
pub const THROTTLE_ENTRIES_MAX: usize = 100_000;
/// Characters after the prefix: 256 bits in unpadded URL-safe base64.
const API_KEY_BODY_CHARS: usize = 43;

/// What a failure is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Password guesses at one principal from one client address.
    Password { principal: String, client: String },
    /// One-time-code guesses for one principal from one client address (after its password).
    Otp { principal: String, client: String },
    /// Every password or code failure from one client address, whatever the name.
    Client(String),
}

impl Key {
    /// Password guesses at `principal` (as claimed: lowercased, and cut past the longest valid
    /// name, so junk names cannot grow the table) from `client`.
    pub fn password(principal: &str, client: &str) -> Key {
        Key::Password { principal: claimed(principal), client: client.to_owned() }
    }

    /// One-time-code guesses for `principal` from `client`.
    pub fn otp(principal: &str, client: &str) -> Key {
        Key::Otp { principal: claimed(principal), client: client.to_owned() }
    }

    /// Every failure from `client`.
    pub fn client(client: &str) -> Key {
        Key::Client(client.to_owned())
    }

    fn before_backoff(&self) -> u32 {
        match self {
            Key::Password { .. } | Key::Otp { .. } => LOGIN_FAILURES_BEFORE_BACKOFF,
            Key::Client(_) => CLIENT_FAILURES_BEFORE_BACKOFF,
        }
    }
}

fn claimed(name: &str) -> String {
    name.chars().take(PRINCIPAL_NAME_MAX_LEN.saturating_add(1)).collect::<String>().to_ascii_lowercase()
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    last: Instant,
    blocked_until: Instant,
}

impl Strikes {
    fn new(now: Instant) -> Strikes {
        Strikes { failures: 0, last: now, blocked_until: now }
    }

    fn forgotten(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= LOGIN_FAILURES_FORGOTTEN_AFTER
    }
}

/// Failed logins of unguessable credentials, for `/metrics`: they are never backed off, so a
/// flood of them shows here (and in the log).
#[derive(Debug, Clone, Default)]
pub struct LoginCounters {
    /// `airlock_api_key_failures_total`: secrets of an API key's form that matched no key in force.
    pub api_key_failures: Counter,
    /// `airlock_ci_token_failures_total`: CI tokens refused or mapped to no service account.
    pub ci_token_failures: Counter,
}

/// Failed logins per [`Key`], with exponential backoff: after a key's threshold of failures,
/// each further attempt waits 1 s, 2 s, 4 s, ... up to [`LOGIN_BACKOFF_MAX`].
#[derive(Debug)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Strikes>>,
    capacity: usize,
    counters: LoginCounters,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::with_capacity(THROTTLE_ENTRIES_MAX)
    }
}

impl Throttle {
    /// A throttle tracking at most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Throttle {
        Throttle { entries: Mutex::default(), capacity: capacity.max(2), counters: LoginCounters::default() }
    }

    /// How long the longest-blocked of `keys` must still wait, if any is blocked.
    pub fn blocked(&self, keys: &[Key], now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        keys.iter()
            .filter_map(|k| entries.get(k))
            .filter(|s| !s.forgotten(now))
            .map(|s| s.blocked_until.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
            .max()
    }

    /// Counts a failure against each of `keys`.
    pub fn fail(&self, keys: &[Key], now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            if entries.len() >= self.capacity && !entries.contains_key(key) {
                make_room(&mut entries, self.capacity, now);
            }
            let strikes = entries.entry(key.clone()).or_insert_with(|| Strikes::new(now));
            if strikes.forgotten(now) {
                *strikes = Strikes::new(now);
            }
            strikes.failures = strikes.failures.saturating_add(1);
            strikes.last = now;
            if let Some(over) = strikes.failures.checked_sub(key.before_backoff()) {
                let secs = 1u64.checked_shl(over.min(20)).unwrap_or(u64::MAX);
                let wait = Duration::from_secs(secs).min(LOGIN_BACKOFF_MAX);
                strikes.blocked_until = now.checked_add(wait).unwrap_or(now);
            }
        }
    }

    /// Forgets the failures of `key` (its owner just proved the secret).
    pub fn succeed(&self, key: &Key) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// Counts a refused API key.
    pub fn api_key_failed(&self) {
        self.counters.api_key_failures.inc();
    }

    /// Counts a refused CI token.
    pub fn ci_token_failed(&self) {
        self.counters.ci_token_failures.inc();
    }

    /// The counters, sharing their values, for `/metrics`.
    pub fn counters(&self) -> LoginCounters {
        self.counters.clone()
    }
}

/// Drops forgotten failures and then, if the table is still full, the quietest half.
fn make_room(entries: &mut HashMap<Key, Strikes>, capacity: usize, now: Instant) {
    entries.retain(|_, s| !s.forgotten(now));
    if entries.len() < capacity {
        return;
    }
    let mut lasts: Vec<Instant> = entries.values().map(|s| s.last).collect();
    let middle = lasts.len() / 2;
    let (_, median, _) = lasts.select_nth_unstable(middle);
    let median = *median;
    entries.retain(|_, s| s.last > median);
}

/// The `Retry-After` of a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    if wait.subsec_nanos() > 0 { whole.saturating_add(1) } else { whole.max(1) }
}

/// Whether `secret` has the form of an Airlock API key: [`API_KEY_PREFIX`] and 43 characters of
/// unpadded URL-safe base64. Such a secret is only ever checked as an API key, and never backed
/// off: it cannot be guessed.
pub fn is_api_key(secret: &str) -> bool {
    secret.strip_prefix(API_KEY_PREFIX).is_some_and(|body| {
        body.len() == API_KEY_BODY_CHARS && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

static DECOY: OnceLock<String> = OnceLock::new();

/// An Argon2id hash of a random password, made once per process with the parameters every
/// password is hashed with: a refused login that has no real hash to check (an unknown name, a
/// principal without a password) checks this one, so it costs what a wrong password costs.
pub async fn decoy_password_hash() -> &'static str {
    if let Some(hash) = DECOY.get() {
        return hash;
    }
    tokio::task::spawn_blocking(|| DECOY.get_or_init(make_decoy).as_str()).await.unwrap_or_default()
}

fn make_decoy() -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use rand::RngCore;
    let mut password = [0u8; 32];
    rand::rng().fill_bytes(&mut password);
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let Ok(salt) = SaltString::encode_b64(&salt) else { return String::new() };
    argon2::Argon2::default().hash_password(&password, &salt).map(|hash| hash.to_string()).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn fail_n(throttle: &Throttle, keys: &[Key], n: u32, now: Instant) {
        for _ in 0..n {
            throttle.fail(keys, now);
        }
    }

    #[test]
    fn backoff_doubles_per_principal_and_address_up_to_the_cap() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let key = [Key::password("victim", "192.0.2.1")];
        fail_n(&throttle, &key, LOGIN_FAILURES_BEFORE_BACKOFF - 1, now);
        assert_eq!(throttle.blocked(&key, now), None, "the first failures are free");
        let waits: Vec<u64> = (0..13)
            .map(|_| {
                throttle.fail(&key, now);
                throttle.blocked(&key, now).unwrap().as_secs()
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]);
        assert_eq!(throttle.blocked(&key, now + 900 * SECOND), None);
    }

    #[test]
    fn failures_for_a_name_from_one_address_do_not_block_another_address() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let attacker = [Key::password("victim", "198.51.100.9"), Key::client("198.51.100.9")];
        fail_n(&throttle, &attacker, 50, now);
        assert!(throttle.blocked(&attacker, now).is_some());
        let owner = [Key::password("victim", "192.0.2.1"), Key::client("192.0.2.1")];
        assert_eq!(throttle.blocked(&owner, now), None);
        // One failure per backoff period keeps only the attacker's own pair blocked.
        assert_eq!(throttle.blocked(&owner, now + 10_000 * SECOND), None);
    }

    #[test]
    fn names_are_compared_as_claimed_lowercase() {
        let throttle = Throttle::default();
        let now = Instant::now();
        fail_n(&throttle, &[Key::password("Victim", "a")], LOGIN_FAILURES_BEFORE_BACKOFF, now);
        assert!(throttle.blocked(&[Key::password("victim", "a")], now).is_some());
        assert_ne!(Key::password("victim", "a"), Key::otp("victim", "a"), "codes and passwords count apart");
        let long = "x".repeat(5000);
        assert!(matches!(Key::password(&long, "a"), Key::Password { principal, .. } if principal.len() == 65));
    }

    #[test]
    fn spraying_names_from_one_address_backs_off_that_address_only() {
        let throttle = Throttle::default();
        let now = Instant::now();
        for n in 0..CLIENT_FAILURES_BEFORE_BACKOFF {
            let keys = [Key::password(&format!("user-{n}"), "198.51.100.9"), Key::client("198.51.100.9")];
            assert_eq!(throttle.blocked(&keys, now), None, "after {n} names");
            throttle.fail(&keys, now);
        }
        let next = [Key::password("user-new", "198.51.100.9"), Key::client("198.51.100.9")];
        assert_eq!(throttle.blocked(&next, now), Some(SECOND));
        let elsewhere = [Key::password("user-new", "192.0.2.1"), Key::client("192.0.2.1")];
        assert_eq!(throttle.blocked(&elsewhere, now), None);
    }

    #[test]
    fn success_forgets_the_pair_but_not_the_address() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let pair = Key::password("alice", "192.0.2.1");
        let client = Key::client("192.0.2.1");
        fail_n(&throttle, &[pair.clone(), client.clone()], CLIENT_FAILURES_BEFORE_BACKOFF, now);
        throttle.succeed(&pair);
        assert_eq!(throttle.blocked(std::slice::from_ref(&pair), now), None);
        assert!(throttle.blocked(&[pair, client], now).is_some(), "a valid account does not reset a sprayer");
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_day() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let key = [Key::password("alice", "192.0.2.1")];
        fail_n(&throttle, &key, 30, now);
        let later = now + LOGIN_FAILURES_FORGOTTEN_AFTER;
        assert_eq!(throttle.blocked(&key, later), None);
        throttle.fail(&key, later);
        assert_eq!(throttle.blocked(&key, later), None, "counting starts over");
    }

    #[test]
    fn a_full_table_drops_the_quietest_half() {
        let throttle = Throttle::with_capacity(100);
        let start = Instant::now();
        let guesser = [Key::password("victim", "198.51.100.9")];
        for n in 0..100u64 {
            throttle.fail(&[Key::password("noise", &format!("192.0.2.{n}"))], start + Duration::from_millis(n));
        }
        fail_n(&throttle, &guesser, 10, start + 200 * SECOND);
        assert!(throttle.blocked(&guesser, start + 200 * SECOND).is_some(), "the latest key is kept");
        let entries = throttle.entries.lock().unwrap();
        assert!(entries.len() <= 100 && entries.len() > 40, "{}", entries.len());
        assert!(entries.contains_key(&Key::password("noise", "192.0.2.99")), "the latest noise is kept");
        assert!(!entries.contains_key(&Key::password("noise", "192.0.2.0")), "the quietest is dropped");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1999)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(4)), 4);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn api_keys_are_recognised_by_their_form() {
        let key = format!("alk_{}", "aZ09-_".repeat(7) + "x");
        assert!(is_api_key(&key));
        for not in ["alk_guess", "", "alk_", &format!("ALK_{}", &key[4..]), &format!("{key}x"), &key.replace('x', "+")]
        {
            assert!(!is_api_key(not), "{not}");
        }
    }

    #[test]
    fn unguessable_failures_are_counted_not_throttled() {
        let throttle = Throttle::default();
        let counters = throttle.counters();
        throttle.api_key_failed();
        throttle.api_key_failed();
        throttle.ci_token_failed();
        assert_eq!((counters.api_key_failures.get(), counters.ci_token_failures.get()), (2, 1));
    }

    #[tokio::test]
    async fn the_decoy_is_hashed_as_passwords_are() {
        use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
        let decoy = PasswordHash::new(decoy_password_hash().await).unwrap();
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let real = argon2::Argon2::default().hash_password(b"a password", &salt).unwrap();
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(decoy.version, real.version);
        assert_eq!(decoy.params, real.params);
        assert_eq!(decoy_password_hash().await, decoy_password_hash().await, "made once");
    }
}
