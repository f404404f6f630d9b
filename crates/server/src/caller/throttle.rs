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
//! The state is in the metadata store ([`LoginStore`]), so every server over one database sees
//! the same failures at once: a guesser cannot spread guesses over replicas. Keys that nobody
//! failed for a day are swept ([`Throttle::sweep`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use airlock_core::ports::{Clock, LoginFailures, LoginStore, StoreError};
use airlock_model::{PRINCIPAL_NAME_MAX_LEN, Timestamp};
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

    /// The key as stored: a JSON array, so no name or address can pass for another key.
    fn stored(&self) -> String {
        let parts: [&str; 3] = match self {
            Key::Password { principal, client } => ["password", principal, client],
            Key::Otp { principal, client } => ["otp", principal, client],
            Key::Client(client) => ["client", "", client],
        };
        serde_json::to_string(&parts).unwrap_or_default()
    }
}

fn claimed(name: &str) -> String {
    name.chars().take(PRINCIPAL_NAME_MAX_LEN.saturating_add(1)).collect::<String>().to_ascii_lowercase()
}

/// How long a key with `failures` (against a threshold of `before_backoff`) waits after its
/// last failure: nothing up to the threshold, then 1 s, 2 s, 4 s, ... up to [`LOGIN_BACKOFF_MAX`].
fn wait_after(failures: u32, before_backoff: u32) -> Duration {
    match failures.checked_sub(before_backoff) {
        None => Duration::ZERO,
        Some(over) => {
            let secs = 1u64.checked_shl(over.min(20)).unwrap_or(u64::MAX);
            Duration::from_secs(secs).min(LOGIN_BACKOFF_MAX)
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
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

/// Failed logins per [`Key`] in the store, with exponential backoff: after a key's threshold of
/// failures, each further attempt waits 1 s, 2 s, 4 s, ... up to [`LOGIN_BACKOFF_MAX`] after the
/// last failure.
#[derive(Clone)]
pub struct Throttle {
    store: Arc<dyn LoginStore>,
    clock: Arc<dyn Clock>,
    counters: LoginCounters,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle over `store`'s login state, reading time from `clock`.
    pub fn new(store: Arc<dyn LoginStore>, clock: Arc<dyn Clock>) -> Throttle {
        Throttle { store, clock, counters: LoginCounters::default() }
    }

    fn forget_before(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_millis(now.as_millis().saturating_sub(millis(LOGIN_FAILURES_FORGOTTEN_AFTER)))
    }

    /// How long the longest-blocked of `keys` must still wait, if any is blocked.
    pub async fn blocked(&self, keys: &[Key]) -> Result<Option<Duration>, StoreError> {
        let stored: Vec<String> = keys.iter().map(Key::stored).collect();
        let found = self.store.login_failures(&stored).await?;
        let now = self.clock.now();
        let forget_before = self.forget_before(now);
        let waits = keys.iter().zip(found).filter_map(|(key, failures)| {
            let LoginFailures { failures, last } = failures?;
            if last <= forget_before {
                return None;
            }
            let until = last.as_millis().saturating_add(millis(wait_after(failures, key.before_backoff())));
            let left = until.saturating_sub(now.as_millis());
            (left > 0).then(|| Duration::from_millis(u64::try_from(left).unwrap_or(0)))
        });
        Ok(waits.max())
    }

    /// Counts a failure against each of `keys`.
    pub async fn fail(&self, keys: &[Key]) -> Result<(), StoreError> {
        let stored: Vec<String> = keys.iter().map(Key::stored).collect();
        let now = self.clock.now();
        self.store.count_login_failures(&stored, now, self.forget_before(now)).await?;
        Ok(())
    }

    /// Forgets the failures of `key` (its owner just proved the secret).
    pub async fn succeed(&self, key: &Key) -> Result<(), StoreError> {
        self.store.clear_login_failures(&key.stored()).await
    }

    /// Forgets keys nobody failed for [`LOGIN_FAILURES_FORGOTTEN_AFTER`]; returns how many.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        self.store.forget_login_failures(self.forget_before(self.clock.now())).await
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

    const SECOND: i64 = 1000;

    /// A throttle over a fresh SQLite store, with a clock the test moves.
    async fn throttle() -> (tempfile::TempDir, Throttle, airlock_test_support::ManualClock) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(airlock_store::SqliteStore::open(&dir.path().join("metadata.db")).await.unwrap());
        let clock = airlock_test_support::ManualClock::at(1_795_669_200_000);
        (dir, Throttle::new(store, Arc::new(clock.clone())), clock)
    }

    async fn fail_n(throttle: &Throttle, keys: &[Key], n: u32) {
        for _ in 0..n {
            throttle.fail(keys).await.unwrap();
        }
    }

    #[tokio::test]
    async fn backoff_doubles_per_principal_and_address_up_to_the_cap() {
        let (_dir, throttle, clock) = throttle().await;
        let key = [Key::password("victim", "192.0.2.1")];
        fail_n(&throttle, &key, LOGIN_FAILURES_BEFORE_BACKOFF - 1).await;
        assert_eq!(throttle.blocked(&key).await.unwrap(), None, "the first failures are free");
        let mut waits = Vec::new();
        for _ in 0..13 {
            throttle.fail(&key).await.unwrap();
            waits.push(throttle.blocked(&key).await.unwrap().unwrap().as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]);
        clock.advance(899 * SECOND);
        assert_eq!(throttle.blocked(&key).await.unwrap(), Some(Duration::from_secs(1)));
        clock.advance(SECOND);
        assert_eq!(throttle.blocked(&key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn failures_for_a_name_from_one_address_do_not_block_another_address() {
        let (_dir, throttle, clock) = throttle().await;
        let attacker = [Key::password("victim", "198.51.100.9"), Key::client("198.51.100.9")];
        fail_n(&throttle, &attacker, 50).await;
        assert!(throttle.blocked(&attacker).await.unwrap().is_some());
        let owner = [Key::password("victim", "192.0.2.1"), Key::client("192.0.2.1")];
        assert_eq!(throttle.blocked(&owner).await.unwrap(), None);
        clock.advance(10_000 * SECOND);
        assert_eq!(throttle.blocked(&owner).await.unwrap(), None);
    }

    #[tokio::test]
    async fn names_are_compared_as_claimed_lowercase() {
        let (_dir, throttle, _clock) = throttle().await;
        fail_n(&throttle, &[Key::password("Victim", "a")], LOGIN_FAILURES_BEFORE_BACKOFF).await;
        assert!(throttle.blocked(&[Key::password("victim", "a")]).await.unwrap().is_some());
        assert_ne!(Key::password("victim", "a"), Key::otp("victim", "a"), "codes and passwords count apart");
        assert_eq!(throttle.blocked(&[Key::otp("victim", "a")]).await.unwrap(), None);
        let long = "x".repeat(5000);
        assert!(matches!(Key::password(&long, "a"), Key::Password { principal, .. } if principal.len() == 65));
    }

    #[test]
    fn no_name_or_address_passes_for_another_key() {
        let keys = [
            Key::password("a b", "c"),
            Key::password("a", "b c"),
            Key::otp("a b", "c"),
            Key::client("a b c"),
            Key::password("a\"", "b"),
            Key::password("a", "\"b"),
        ];
        let stored: std::collections::HashSet<String> = keys.iter().map(Key::stored).collect();
        assert_eq!(stored.len(), keys.len(), "{stored:?}");
    }

    #[tokio::test]
    async fn spraying_names_from_one_address_backs_off_that_address_only() {
        let (_dir, throttle, _clock) = throttle().await;
        for n in 0..CLIENT_FAILURES_BEFORE_BACKOFF {
            let keys = [Key::password(&format!("user-{n}"), "198.51.100.9"), Key::client("198.51.100.9")];
            assert_eq!(throttle.blocked(&keys).await.unwrap(), None, "after {n} names");
            throttle.fail(&keys).await.unwrap();
        }
        let next = [Key::password("user-new", "198.51.100.9"), Key::client("198.51.100.9")];
        assert_eq!(throttle.blocked(&next).await.unwrap(), Some(Duration::from_secs(1)));
        let elsewhere = [Key::password("user-new", "192.0.2.1"), Key::client("192.0.2.1")];
        assert_eq!(throttle.blocked(&elsewhere).await.unwrap(), None);
    }

    #[tokio::test]
    async fn success_forgets_the_pair_but_not_the_address() {
        let (_dir, throttle, _clock) = throttle().await;
        let pair = Key::password("alice", "192.0.2.1");
        let client = Key::client("192.0.2.1");
        fail_n(&throttle, &[pair.clone(), client.clone()], CLIENT_FAILURES_BEFORE_BACKOFF).await;
        throttle.succeed(&pair).await.unwrap();
        assert_eq!(throttle.blocked(std::slice::from_ref(&pair)).await.unwrap(), None);
        assert!(throttle.blocked(&[pair, client]).await.unwrap().is_some(), "a valid account does not reset a sprayer");
    }

    #[tokio::test]
    async fn failures_are_forgotten_after_a_quiet_day_and_swept() {
        let (_dir, throttle, clock) = throttle().await;
        let key = [Key::password("alice", "192.0.2.1")];
        fail_n(&throttle, &key, 30).await;
        fail_n(&throttle, &[Key::password("bob", "192.0.2.1")], 1).await;
        clock.advance(millis(LOGIN_FAILURES_FORGOTTEN_AFTER));
        assert_eq!(throttle.blocked(&key).await.unwrap(), None);
        throttle.fail(&key).await.unwrap();
        assert_eq!(throttle.blocked(&key).await.unwrap(), None, "counting starts over");
        clock.advance(1);
        assert_eq!(throttle.sweep().await.unwrap(), 1, "only bob's quiet key is swept");
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

    #[tokio::test]
    async fn unguessable_failures_are_counted_not_throttled() {
        let (_dir, throttle, _clock) = throttle().await;
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
