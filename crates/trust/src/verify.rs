//! Trusting a trust root: the first one (bootstrap) and each next version (TUF 1.0 §5.3, "Update
//! the root role"), with threshold counting that counts each key once.

use std::collections::BTreeSet;

use airlock_dsse::KeyId;
use airlock_model::Timestamp;

use crate::document::{Root, RootDocument};
use crate::error::TrustError;

/// A trust root that passed verification: signed by a threshold of its own root keys and, when it
/// replaced an earlier trusted version, by a threshold of that version's root keys too.
///
/// It does not stay trusted forever: it expires, and every use re-checks that
/// ([`TrustedRoot::check_fresh`], [`TrustedRoot::evaluate`]).
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    document: RootDocument,
}

impl TrustedRoot {
    /// The first root (from config or `airlock trust init`): it must be signed by a threshold of
    /// its own root keys and not be expired. Trust in it comes from where it was read, so install
    /// it out of band; later versions reach it only through [`TrustedRoot::update`].
    pub fn bootstrap(doc: RootDocument, now: Timestamp) -> Result<TrustedRoot, TrustError> {
        // 1. Thresholds are sane (at least 1, at most the number of distinct root keys): checked
        //    by `RootDocument::parse`, which every document passed.
        // 2. TUF 5.3.4 (2): the root must be signed by a threshold of its own root keys.
        check_self_signed(&doc)?;
        // 3. TUF 5.3.10: the root must not be expired (freeze attack).
        check_not_expired(doc.root(), now)?;
        Ok(TrustedRoot { document: doc })
    }

    /// A root that was trusted when it was applied, read back from storage: it must still be
    /// signed by a threshold of its own root keys, but it may have expired since. An expired root
    /// stays the one in force: it trusts nothing and says that it expired
    /// ([`crate::UntrustedReason::ExpiredRoot`]), and the next version must still be signed by
    /// its root keys (TUF 5.3.10 checks the freshness of the newest root only, after updating).
    /// Never use this for a root that did not pass [`TrustedRoot::bootstrap`] or
    /// [`TrustedRoot::update`] before.
    pub fn reload(doc: RootDocument) -> Result<TrustedRoot, TrustError> {
        check_self_signed(&doc)?;
        Ok(TrustedRoot { document: doc })
    }

    /// TUF 5.3 update from this root (version N) to `next`: it must be signed by a threshold of
    /// N's root keys and a threshold of its own, be version N+1 exactly, and not be expired.
    pub fn update(&self, next: RootDocument, now: Timestamp) -> Result<TrustedRoot, TrustError> {
        let next = self.step(next)?;
        // 5. TUF 5.3.10: the new root must not be expired (freeze attack).
        check_not_expired(next.root(), now)?;
        Ok(next)
    }

    /// Applies `versions` (N+1, N+2, ...) in order. As TUF 5.3.6 notes, an intermediate version
    /// may have expired since; only the last one must be fresh (TUF 5.3.10).
    pub fn update_chain(
        &self,
        versions: impl IntoIterator<Item = RootDocument>,
        now: Timestamp,
    ) -> Result<TrustedRoot, TrustError> {
        let mut trusted = self.clone();
        for next in versions {
            trusted = trusted.step(next)?;
        }
        check_not_expired(trusted.root(), now)?;
        Ok(trusted)
    }

    /// One TUF 5.3 step without the expiry check.
    fn step(&self, next: RootDocument) -> Result<TrustedRoot, TrustError> {
        let trusted = self.root();
        // 1. Thresholds of `next` are sane: checked by `RootDocument::parse`.
        // 2. TUF 5.3.4 (1): root N+1 must be signed by a threshold of root N's keys.
        let got = root_signers(trusted, &next).len();
        if !meets(got, trusted.root_threshold) {
            return Err(TrustError::NotSignedByTrustedRoot {
                version: next.version(),
                trusted_version: trusted.version,
                got,
                required: trusted.root_threshold,
            });
        }
        // 3. TUF 5.3.4 (2): root N+1 must be signed by a threshold of its own keys.
        check_self_signed(&next)?;
        // 4. TUF 5.3.5: the version must be exactly N+1 (no rollback, no skipped version).
        let expected = trusted.version.saturating_add(1);
        if next.version() != expected || expected == trusted.version {
            return Err(TrustError::VersionNotNext { trusted: trusted.version, found: next.version(), expected });
        }
        Ok(TrustedRoot { document: next })
    }

    /// Re-checks expiry at the time of use: an expired root fails closed.
    pub fn check_fresh(&self, now: Timestamp) -> Result<(), TrustError> {
        check_not_expired(self.root(), now)
    }

    /// The trusted version.
    pub fn version(&self) -> u64 {
        self.document.version()
    }

    /// The trusted root's content.
    pub fn root(&self) -> &Root {
        self.document.root()
    }

    /// The policy role's keys in force and its threshold, or `None` when the root names no
    /// policy signers. Revoked keys are left out, so they never count toward the threshold.
    pub fn policy_signers(&self) -> Option<(Vec<airlock_dsse::PublicKey>, u32)> {
        let root = self.root();
        let role = root.policy.as_ref()?;
        let revoked: BTreeSet<[u8; 32]> =
            root.revoked.iter().filter_map(|r| root.keys.get(&r.keyid)).map(|k| k.fingerprint()).collect();
        let keys = role
            .keyids
            .iter()
            .filter_map(|id| root.keys.get(id))
            .filter(|k| !revoked.contains(&k.fingerprint()))
            .cloned()
            .collect();
        Some((keys, role.threshold))
    }

    /// The document it was verified from, with its bytes.
    pub fn document(&self) -> &RootDocument {
        &self.document
    }
}

/// TUF 5.3.4 (2): `doc` must be signed by a threshold of its own root keys.
fn check_self_signed(doc: &RootDocument) -> Result<(), TrustError> {
    let got = root_signers(doc.root(), doc).len();
    if meets(got, doc.root().root_threshold) {
        Ok(())
    } else {
        Err(TrustError::NotSelfSigned { version: doc.version(), got, required: doc.root().root_threshold })
    }
}

/// TUF 5.3.10: a root is fresh strictly before its `expires`.
fn check_not_expired(root: &Root, now: Timestamp) -> Result<(), TrustError> {
    if now < root.expires {
        Ok(())
    } else {
        Err(TrustError::Expired { version: root.version, expired_at: root.expires.to_rfc3339() })
    }
}

fn meets(got: usize, threshold: u32) -> bool {
    usize::try_from(threshold).is_ok_and(|t| got >= t)
}

/// The root keys of `authority` with a valid signature over `doc`'s signed bytes, each key
/// counted once: a key is identified by its fingerprint, so the same key under two key ids, in
/// two encodings or signing twice still counts once. A signature's key id only says which of
/// `authority`'s keys to try; the key must be a root key of `authority` and the signature must
/// verify with it.
pub(crate) fn root_signers(authority: &Root, doc: &RootDocument) -> Vec<KeyId> {
    let root_keys: BTreeSet<[u8; 32]> =
        authority.root_keyids.iter().filter_map(|id| authority.keys.get(id)).map(|k| k.fingerprint()).collect();
    let mut counted = BTreeSet::new();
    let mut signers = Vec::new();
    for signature in doc.signatures() {
        let Some(key) = authority.keys.get(&signature.keyid) else { continue };
        let fingerprint = key.fingerprint();
        if !root_keys.contains(&fingerprint) || counted.contains(&fingerprint) {
            continue;
        }
        if key.verify(doc.signed_bytes(), &signature.sig).is_ok() {
            counted.insert(fingerprint);
            signers.push(signature.keyid.clone());
        }
    }
    signers
}
