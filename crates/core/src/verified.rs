//! Attestations read and verified once, kept for the decisions that follow.
//!
//! Every decision rebuilds the policy input from the stored attestations (`crate::policy_input`).
//! Two parts of that work depend on nothing but bytes, so they are kept, bounded:
//!
//! - what an envelope says, keyed by the envelope's digest: the envelope parsed, its in-toto
//!   statement, and, once it has been trusted, its predicate as a JSON value and the evidence read
//!   from it (an untrusted predicate is never parsed, kept or not);
//! - which keys signed it, keyed by the envelope's digest and the trust root's content digest:
//!   the signature checks of [`airlock_trust::TrustedRoot::signed_by`]. A root change of any kind
//!   (rotation, revocation, a narrowed signer rule, even a new signature on the same root) is
//!   another key, so no answer of an earlier root is ever read under a later one.
//!
//! Nothing that depends on the time or the repository is kept: root expiry, revocations, signer
//! windows, scopes and thresholds are applied on every decision
//! ([`airlock_trust::TrustedRoot::evaluate_signed`]), so a key stops counting the moment the
//! clock passes its rule's end, warm or cold.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

use airlock_dsse::{Envelope, EnvelopeLimits, KeyId, Statement, StatementLimits};
use airlock_evidence::{Evidence, Limits as EvidenceLimits};
use airlock_model::Digest;
use serde_json::Value;

/// Most envelopes whose reading is kept, and most (envelope, root) pairs whose signature checks
/// are kept, each.
pub const ENTRIES_MAX: usize = 4096;

/// Most bytes the kept readings may account for, estimated as [`CHARGE_PER_BYTE`] times each
/// envelope's size plus [`CHARGE_PER_ENTRY`]. The signature checks count against a budget of
/// the same size, at [`CHARGE_PER_ENTRY`] and the key ids' length each.
pub const BYTES_MAX: usize = 64 * 1024 * 1024;

/// Bytes charged per envelope byte: the envelope as received is not kept, but its decoded
/// payload, the predicate as signed, the predicate's JSON value and its evidence are, together
/// a few times the envelope's size for JSON as attestations write it.
pub const CHARGE_PER_BYTE: usize = 8;

/// Bytes charged per entry, whatever its size: the key, the map's own bookkeeping.
pub const CHARGE_PER_ENTRY: usize = 512;

/// Bounds of the kept readings and signature checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    pub entries: usize,
    pub bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits { entries: ENTRIES_MAX, bytes: BYTES_MAX }
    }
}

/// What a stored envelope says, read once.
#[derive(Debug)]
pub(crate) enum Reading {
    /// The envelope no longer parses (it did at ingest): why.
    Unparsable { reason: String },
    /// The envelope parses, its payload is no in-toto statement: the key id hints, and why.
    NoStatement { hints: Vec<String>, reason: String },
    /// An in-toto statement.
    Statement(Box<ReadStatement>),
}

/// An envelope whose payload is an in-toto statement.
#[derive(Debug)]
pub(crate) struct ReadStatement {
    pub(crate) envelope: Envelope,
    /// The envelope's key id hints, unauthenticated: only well-formed ones, for the record.
    pub(crate) hints: Vec<String>,
    pub(crate) statement: Statement,
    /// The predicate, read the first time the attestation is trusted, never before.
    predicate: OnceLock<Predicate>,
}

/// A trusted attestation's predicate as the policy sees it.
#[derive(Debug)]
pub(crate) struct Predicate {
    /// The predicate as signed, or `null` when it is no JSON value.
    pub(crate) value: Value,
    pub(crate) evidence: Option<Evidence>,
    pub(crate) evidence_error: Option<String>,
}

impl ReadStatement {
    /// The predicate as a JSON value and the evidence read from it: parsed on the first call,
    /// kept for the next. Call it only for a trusted attestation.
    pub(crate) fn predicate(&self) -> &Predicate {
        self.predicate.get_or_init(|| {
            let bytes = self.statement.predicate.get().as_bytes();
            let value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            let (evidence, evidence_error) = match airlock_evidence::from_predicate(
                &self.statement.predicate_type,
                bytes,
                &EvidenceLimits::default(),
            ) {
                Ok(e) => (e, None),
                Err(e) => (None, Some(e.to_string())),
            };
            Predicate { value, evidence, evidence_error }
        })
    }
}

/// Reads a stored envelope: parsed, its hints, its statement. Checks no signature.
pub(crate) fn read(bytes: &[u8]) -> Reading {
    let envelope = match Envelope::parse(bytes, &EnvelopeLimits::default()) {
        Ok(envelope) => envelope,
        Err(e) => return Reading::Unparsable { reason: format!("the stored envelope no longer parses: {e}") },
    };
    let hints: Vec<String> = envelope
        .signatures
        .iter()
        .filter_map(|s| s.keyid.as_deref())
        .filter_map(|k| KeyId::parse(k).ok())
        .map(|k| k.as_str().to_owned())
        .collect();
    match envelope.in_toto_statement(&StatementLimits::default()) {
        Ok(statement) => {
            Reading::Statement(Box::new(ReadStatement { envelope, hints, statement, predicate: OnceLock::new() }))
        }
        Err(e) => Reading::NoStatement { hints, reason: format!("the stored envelope no longer parses: {e}") },
    }
}

/// An envelope's digest and a trust root's content digest.
type SignedKey = (Digest, Digest);

/// The readings and signature checks kept by one registry, shared by its clones.
#[derive(Debug)]
pub struct AttestationCache {
    readings: Mutex<Bounded<Digest, Arc<Reading>>>,
    /// (envelope digest, root content digest) to the ids of the root's keys that signed.
    signed: Mutex<Bounded<SignedKey, Arc<[KeyId]>>>,
}

impl Default for AttestationCache {
    fn default() -> Self {
        AttestationCache::new(CacheLimits::default())
    }
}

impl AttestationCache {
    pub fn new(limits: CacheLimits) -> AttestationCache {
        AttestationCache { readings: Mutex::new(Bounded::new(limits)), signed: Mutex::new(Bounded::new(limits)) }
    }

    /// The reading of the envelope `bytes`, whose digest is `digest`: kept, or read now.
    pub(crate) fn reading(&self, digest: &Digest, bytes: &[u8]) -> Arc<Reading> {
        if let Some(kept) = lock(&self.readings).get(digest) {
            return kept;
        }
        let reading = Arc::new(read(bytes));
        let charge = CHARGE_PER_BYTE.saturating_mul(bytes.len()).saturating_add(CHARGE_PER_ENTRY);
        lock(&self.readings).insert(digest.clone(), Arc::clone(&reading), charge);
        reading
    }

    /// The ids of the keys of the root whose content digest is `root` that signed the envelope
    /// `envelope`: kept, or checked now by `check`.
    pub(crate) fn signed_by(
        &self,
        envelope: &Digest,
        root: &Digest,
        check: impl FnOnce() -> Vec<KeyId>,
    ) -> Arc<[KeyId]> {
        let key = (envelope.clone(), root.clone());
        if let Some(kept) = lock(&self.signed).get(&key) {
            return kept;
        }
        let ids: Arc<[KeyId]> = check().into();
        let charge = ids.iter().map(|id| id.as_str().len()).sum::<usize>().saturating_add(CHARGE_PER_ENTRY);
        lock(&self.signed).insert(key, Arc::clone(&ids), charge);
        ids
    }

    /// How many readings and signature checks are kept, and the bytes charged for them.
    pub fn usage(&self) -> CacheUsage {
        let readings = lock(&self.readings);
        let signed = lock(&self.signed);
        CacheUsage {
            readings: readings.entries.len(),
            readings_bytes: readings.charged,
            signed: signed.entries.len(),
            signed_bytes: signed.charged,
        }
    }
}

/// What an [`AttestationCache`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheUsage {
    pub readings: usize,
    pub readings_bytes: usize,
    pub signed: usize,
    pub signed_bytes: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A map bounded in entries and in charged bytes, least recently used out first.
#[derive(Debug)]
struct Bounded<K, V> {
    limits: CacheLimits,
    entries: HashMap<K, Slot<V>>,
    /// Use order: the tick of each entry's last use to its key.
    order: BTreeMap<u64, K>,
    tick: u64,
    charged: usize,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    charge: usize,
    used: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn new(limits: CacheLimits) -> Self {
        Bounded { limits, entries: HashMap::new(), order: BTreeMap::new(), tick: 0, charged: 0 }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick = self.tick.wrapping_add(1);
        self.tick
    }

    fn get(&mut self, key: &K) -> Option<V> {
        let tick = self.next_tick();
        let slot = self.entries.get_mut(key)?;
        self.order.remove(&slot.used);
        slot.used = tick;
        self.order.insert(tick, key.clone());
        Some(slot.value.clone())
    }

    /// Keeps `value`, first dropping the least recently used entries until it fits. A value
    /// larger than the whole budget is not kept.
    fn insert(&mut self, key: K, value: V, charge: usize) {
        self.remove(&key);
        if charge > self.limits.bytes || self.limits.entries == 0 {
            return;
        }
        while self.entries.len() >= self.limits.entries || self.charged.saturating_add(charge) > self.limits.bytes {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(slot) = self.entries.remove(&oldest) {
                self.charged = self.charged.saturating_sub(slot.charge);
            }
        }
        let used = self.next_tick();
        self.order.insert(used, key.clone());
        self.entries.insert(key, Slot { value, charge, used });
        self.charged = self.charged.saturating_add(charge);
    }

    fn remove(&mut self, key: &K) {
        if let Some(slot) = self.entries.remove(key) {
            self.order.remove(&slot.used);
            self.charged = self.charged.saturating_sub(slot.charge);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn limits(entries: usize, bytes: usize) -> CacheLimits {
        CacheLimits { entries, bytes }
    }

    #[test]
    fn the_bound_on_entries_holds_and_the_least_recently_used_goes_first() {
        let mut map = Bounded::new(limits(3, usize::MAX));
        for i in 0..3u32 {
            map.insert(i, i, 1);
        }
        // 0 used again: 1 is now the least recently used.
        assert_eq!(map.get(&0), Some(0));
        map.insert(3, 3, 1);
        assert_eq!(map.entries.len(), 3);
        assert_eq!(map.get(&1), None);
        assert_eq!((map.get(&0), map.get(&2), map.get(&3)), (Some(0), Some(2), Some(3)));
        // Many more distinct keys: never more than the bound.
        for i in 10..10_000u32 {
            map.insert(i, i, 1);
            assert!(map.entries.len() <= 3 && map.order.len() == map.entries.len());
        }
        assert_eq!(map.charged, 3);
    }

    #[test]
    fn the_bound_on_bytes_holds() {
        let mut map = Bounded::new(limits(usize::MAX, 100));
        for i in 0..1000u32 {
            map.insert(i, i, 30);
            assert!(map.charged <= 100, "{}", map.charged);
        }
        assert_eq!(map.entries.len(), 3);
        // A value larger than the whole budget is not kept, and evicts nothing.
        map.insert(5000, 5000, 101);
        assert_eq!(map.get(&5000), None);
        assert_eq!(map.entries.len(), 3);
        // The same key again replaces its charge, not adds to it.
        map.insert(999, 999, 10);
        assert_eq!(map.charged, 70);
    }

    #[test]
    fn many_distinct_envelopes_do_not_grow_the_cache_past_its_bounds() {
        let cache = AttestationCache::new(limits(8, 64 * 1024));
        let root = Digest::of(b"root");
        for i in 0..500u32 {
            let bytes = format!("{{\"payloadType\":\"x\",\"payload\":\"\",\"signatures\":[],\"n\":{i}}}");
            let digest = Digest::of(bytes.as_bytes());
            let _ = cache.reading(&digest, bytes.as_bytes());
            let _ = cache.signed_by(&digest, &root, Vec::new);
            let usage = cache.usage();
            assert!(usage.readings <= 8 && usage.signed <= 8, "{usage:?}");
            assert!(usage.readings_bytes <= 64 * 1024 && usage.signed_bytes <= 64 * 1024, "{usage:?}");
        }
        assert_eq!(cache.usage().readings, 8);
    }

    #[test]
    fn a_signature_check_is_kept_per_envelope_and_root_content() {
        let cache = AttestationCache::default();
        let (envelope, v1, v2) = (Digest::of(b"envelope"), Digest::of(b"root v1"), Digest::of(b"root v2"));
        let id = KeyId::parse(&"ab".repeat(32)).unwrap();
        let first = cache.signed_by(&envelope, &v1, || vec![id.clone()]);
        // The same pair again: kept, the check does not run.
        let again = cache.signed_by(&envelope, &v1, || panic!("checked twice"));
        assert_eq!(first, again);
        // Another root content: checked again, whatever its version says.
        let mut ran = false;
        let other = cache.signed_by(&envelope, &v2, || {
            ran = true;
            Vec::new()
        });
        assert!(ran);
        assert!(other.is_empty());
    }
}
