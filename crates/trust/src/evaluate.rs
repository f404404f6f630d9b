//! The decision for one attestation: is this envelope signed by someone the trusted root trusts to
//! sign this predicate type for this repository, with a valid, unrevoked key?

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use airlock_dsse::{Envelope, KeyId, PublicKey};
use airlock_model::{RepoName, Timestamp};

use crate::document::SignerRule;
use crate::verify::TrustedRoot;
use airlock_model::echo::echo;

/// Longest predicate type [`TrustedRoot::evaluate`] considers, in bytes; a longer one is never
/// trusted. It bounds the pattern matching an unauthenticated envelope can cause.
pub const PREDICATE_TYPE_MAX_LEN: usize = 1024;

/// The outcome of [`TrustedRoot::evaluate`]: data, to be recorded verbatim.
///
/// When `trusted` is false, `reasons` says why (never empty). When it is true, `reasons` lists the
/// signatures that did not count, if any, for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub trusted: bool,
    /// The version of the trust root that decided.
    pub root_version: u64,
    /// Names of the signer rules satisfied by a signature, in the root's order.
    pub signers: Vec<String>,
    /// The keys whose signatures verified, each once (by fingerprint), in the root's key order,
    /// with the signer rules each satisfied. A revoked key, or one no rule allows here, is listed
    /// with no signers. Thresholds over several attestations count these keys, never names.
    pub keys: Vec<VerifiedKey>,
    pub reasons: Vec<UntrustedReason>,
}

/// A key that signed, and the signer rules it satisfied for this predicate type, repository and
/// time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    /// The key's id as the trust root lists it.
    pub keyid: KeyId,
    /// Names of the rules it satisfied, in the root's order; empty when it counts for none.
    pub signers: Vec<String>,
}

/// Why a signature, or the envelope as a whole, does not count. Exhaustive on purpose: a new
/// reason must break every `match` that handles them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UntrustedReason {
    /// The trust root itself expired: nothing is trusted.
    ExpiredRoot { version: u64, expired_at: Timestamp },
    /// The predicate type is longer than [`PREDICATE_TYPE_MAX_LEN`].
    PredicateTypeTooLong { len: usize, max: usize },
    /// No signature verifies with a key that a signer rule names (or a revoked key).
    NoSignatureByKnownKey,
    /// The key is revoked. `signer` is a rule that lists the key, if any still does.
    RevokedKey { keyid: KeyId, signer: Option<String>, revoked_at: Timestamp, reason: String },
    /// The signer rule's validity window has not started.
    SignerNotYetValid { signer: String, not_before: Timestamp },
    /// The signer rule's validity window has ended.
    SignerExpired { signer: String, not_after: Timestamp },
    /// The signer rule does not cover this predicate type.
    PredicateTypeNotAllowed { signer: String, predicate_type: String },
    /// The signer rule does not cover this repository.
    RepositoryOutOfScope { signer: String, repository: String },
    /// Fewer distinct signers, each with its own key, than the predicate type needs.
    BelowThreshold { predicate_type: String, required: u32, got: u32 },
}

impl UntrustedReason {
    /// A stable, kebab-case name for the reason, for logs and machine output.
    pub fn code(&self) -> &'static str {
        match self {
            UntrustedReason::ExpiredRoot { .. } => "expired-root",
            UntrustedReason::PredicateTypeTooLong { .. } => "predicate-type-too-long",
            UntrustedReason::NoSignatureByKnownKey => "no-signature-by-known-key",
            UntrustedReason::RevokedKey { .. } => "revoked-key",
            UntrustedReason::SignerNotYetValid { .. } => "signer-not-yet-valid",
            UntrustedReason::SignerExpired { .. } => "signer-expired",
            UntrustedReason::PredicateTypeNotAllowed { .. } => "predicate-type-not-allowed",
            UntrustedReason::RepositoryOutOfScope { .. } => "repository-out-of-scope",
            UntrustedReason::BelowThreshold { .. } => "below-threshold",
        }
    }
}

impl fmt::Display for UntrustedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UntrustedReason::ExpiredRoot { version, expired_at } => write!(
                f,
                "trust root version {version} expired at {}; no attestation is trusted until a new version is applied: sign version {} with the root keys and apply it with `airlock trust apply`",
                expired_at.to_rfc3339(),
                version.saturating_add(1)
            ),
            UntrustedReason::PredicateTypeTooLong { len, max } => {
                write!(f, "predicate type is {len} bytes long; the limit is {max}")
            }
            UntrustedReason::NoSignatureByKnownKey => f.write_str(
                "no signature verifies with a key of a signer in the trust root; sign with a key that a signer rule lists",
            ),
            UntrustedReason::RevokedKey { keyid, signer, revoked_at, reason } => {
                write!(f, "signature by key `{keyid}`")?;
                if let Some(signer) = signer {
                    write!(f, " of signer `{signer}`")?;
                }
                write!(
                    f,
                    " does not count: the key is revoked ({reason}; compromised since {}), and with no trusted timestamp to prove a signature older than that, every signature by a revoked key is rejected; sign again with a current key",
                    revoked_at.to_rfc3339()
                )
            }
            UntrustedReason::SignerNotYetValid { signer, not_before } => {
                write!(f, "signer `{signer}` is not valid before {}", not_before.to_rfc3339())
            }
            UntrustedReason::SignerExpired { signer, not_after } => write!(
                f,
                "signer `{signer}` expired at {}; a new trust root version must extend it, or sign with a current signer",
                not_after.to_rfc3339()
            ),
            UntrustedReason::PredicateTypeNotAllowed { signer, predicate_type } => {
                write!(f, "signer `{signer}` may not sign predicate type `{predicate_type}`")
            }
            UntrustedReason::RepositoryOutOfScope { signer, repository } => {
                write!(f, "signer `{signer}` may not sign for repository `{repository}`")
            }
            UntrustedReason::BelowThreshold { predicate_type, required: 1, .. } => {
                write!(f, "predicate type `{predicate_type}` needs a signature by a trusted signer; none counted")
            }
            UntrustedReason::BelowThreshold { predicate_type, required, got } => write!(
                f,
                "predicate type `{predicate_type}` needs {required} distinct trusted signers, each with its own key; {got} counted"
            ),
        }
    }
}

impl TrustedRoot {
    /// Decides whether `envelope` is trusted as an attestation of `predicate_type` (the statement's
    /// `predicateType`, as the caller parsed it from the envelope's payload) about an artifact in
    /// `repository`, at `now`.
    ///
    /// A signature counts for a signer rule only if it verifies (DSSE, over the payload received)
    /// with one of the rule's keys, the key is not revoked, `now` is within the rule's window, and
    /// the rule's patterns match both the predicate type and the repository. The envelope is
    /// trusted when the number of distinct rules satisfied by distinct keys reaches the predicate
    /// type's threshold (the largest of the matching `thresholds` entries, or 1).
    pub fn evaluate(&self, envelope: &Envelope, predicate_type: &str, repo: &RepoName, now: Timestamp) -> Evaluation {
        // 1. An expired root, or a predicate type past the limit, decides before any signature.
        if let Some(refused) = self.refuse_early(predicate_type, now) {
            return refused;
        }

        // 2. Which keys the envelope is signed by.
        let verified = self.verified_keys(envelope);
        self.decide(&verified, predicate_type, repo, now)
    }

    /// The ids (as this root lists them) of the keys that made a valid signature over
    /// `envelope`'s PAE: step 2 of [`TrustedRoot::evaluate`], the only step that verifies
    /// signatures, and the only one that depends on nothing but the envelope's bytes and this
    /// root's content. Only keys a signer rule names or a revocation names are tried, each key (by
    /// fingerprint) at most once; the ids are in the root's key order.
    ///
    /// A caller that keeps the answer, to spare verifying the same envelope again, must key it
    /// by this root's content (its document's digest), never by its version alone, and pass it
    /// back only to [`TrustedRoot::evaluate_signed`] of a root with that same content.
    pub fn signed_by(&self, envelope: &Envelope) -> Vec<KeyId> {
        let verified = self.verified_keys(envelope);
        let root = self.root();
        // Back from each verified key to the id the root lists it under.
        verified
            .iter()
            .filter_map(|v| root.keys.iter().find(|(_, k)| std::ptr::eq(*k, *v)).map(|(id, _)| id.clone()))
            .collect()
    }

    /// [`TrustedRoot::evaluate`] with step 2 answered by `signed_by`, the ids
    /// [`TrustedRoot::signed_by`] returned for the envelope under a root of this same content.
    /// Steps 1, 3 and 4 (root expiry, revocations, signer windows and scopes, thresholds) run
    /// here on every call, so a kept answer never outlives a revocation, an expiry or a scope.
    /// `signed_by` is called only when step 1 lets the decision reach signatures.
    pub fn evaluate_signed<S: AsRef<[KeyId]>>(
        &self,
        predicate_type: &str,
        repo: &RepoName,
        now: Timestamp,
        signed_by: impl FnOnce() -> S,
    ) -> Evaluation {
        // 1. As in `evaluate`: an expired root, or a predicate type past the limit, decides first.
        if let Some(refused) = self.refuse_early(predicate_type, now) {
            return refused;
        }
        // 2. The keys that signed, each once by fingerprint; ids this root does not list count
        //    for nothing.
        let signed = signed_by();
        let mut seen = BTreeSet::new();
        let verified: Vec<&PublicKey> = signed
            .as_ref()
            .iter()
            .filter_map(|id| self.root().keys.get(id))
            .filter(|key| seen.insert(key.fingerprint()))
            .collect();
        self.decide(&verified, predicate_type, repo, now)
    }

    /// Only keys a signer rule names or a revocation names are tried, each key (by fingerprint)
    /// at most once, in the root's key order.
    fn verified_keys(&self, envelope: &Envelope) -> Vec<&PublicKey> {
        let root = self.root();
        let named: BTreeSet<&KeyId> =
            root.signers.iter().flat_map(|s| s.keyids.iter()).chain(root.revoked.iter().map(|r| &r.keyid)).collect();
        let candidates: Vec<&PublicKey> =
            root.keys.iter().filter(|(id, _)| named.contains(id)).map(|(_, k)| k).collect();
        envelope.verified_keys(&candidates)
    }

    /// Whether signatures by `keyids` (keys that already verified, as [`Evaluation::keys`] lists
    /// them) would make an attestation of `predicate_type` about `repository` trusted at `now`:
    /// the same rules as [`TrustedRoot::evaluate`] (window, revocation, patterns, threshold) over
    /// keys instead of an envelope.
    ///
    /// It answers questions such as "may the key that signed this SBOM also sign VEX here?". Key
    /// ids the root does not list count for nothing; each key counts once, by fingerprint.
    pub fn allows(&self, keyids: &[KeyId], predicate_type: &str, repo: &RepoName, now: Timestamp) -> bool {
        if self.refuse_early(predicate_type, now).is_some() {
            return false;
        }
        let mut seen = BTreeSet::new();
        let keys: Vec<&PublicKey> = keyids
            .iter()
            .filter_map(|id| self.root().keys.get(id))
            .filter(|key| seen.insert(key.fingerprint()))
            .collect();
        self.decide(&keys, predicate_type, repo, now).trusted
    }

    /// Step 1 of the decision: TUF 5.3.10 at use time, an expired root trusts nothing; and the
    /// work is bounded, a predicate type past the limit is refused before any pattern sees it.
    fn refuse_early(&self, predicate_type: &str, now: Timestamp) -> Option<Evaluation> {
        let root = self.root();
        let refused = |reason| Evaluation {
            trusted: false,
            root_version: root.version,
            signers: Vec::new(),
            keys: Vec::new(),
            reasons: vec![reason],
        };
        if now >= root.expires {
            return Some(refused(UntrustedReason::ExpiredRoot { version: root.version, expired_at: root.expires }));
        }
        if predicate_type.len() > PREDICATE_TYPE_MAX_LEN {
            let len = predicate_type.len();
            return Some(refused(UntrustedReason::PredicateTypeTooLong { len, max: PREDICATE_TYPE_MAX_LEN }));
        }
        None
    }

    /// Steps 3 and 4 of the decision over the keys that signed (each once, by fingerprint).
    fn decide(&self, verified: &[&PublicKey], predicate_type: &str, repo: &RepoName, now: Timestamp) -> Evaluation {
        let root = self.root();
        let mut reasons = Vec::new();
        if verified.is_empty() {
            reasons.push(UntrustedReason::NoSignatureByKnownKey);
        }

        // 3. For each key that signed: revoked keys never count; otherwise each rule listing the
        //    key (in any encoding) counts if its window, predicate types and repositories allow.
        let predicate_shown = echo(predicate_type);
        let mut edges: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (k, key) in verified.iter().enumerate() {
            let fingerprint = key.fingerprint();
            let same_key = |id: &KeyId| root.keys.get(id).is_some_and(|other| other.fingerprint() == fingerprint);
            let rules: Vec<(usize, &SignerRule)> =
                root.signers.iter().enumerate().filter(|(_, s)| s.keyids.iter().any(same_key)).collect();
            // 3a. Revocation: by default every signature by a revoked key is rejected (see the
            //     crate documentation: Airlock has no trusted time source).
            if let Some(revocation) = root.revoked.iter().find(|r| same_key(&r.keyid)) {
                let revoked = |signer: Option<String>| UntrustedReason::RevokedKey {
                    keyid: revocation.keyid.clone(),
                    signer,
                    revoked_at: revocation.revoked_at,
                    reason: revocation.reason.clone(),
                };
                if rules.is_empty() {
                    reasons.push(revoked(None));
                }
                reasons.extend(rules.iter().map(|(_, s)| revoked(Some(s.name.clone()))));
                continue;
            }
            for (r, rule) in rules {
                // 3b. The rule's validity window, inclusive.
                if now < rule.not_before {
                    reasons.push(UntrustedReason::SignerNotYetValid {
                        signer: rule.name.clone(),
                        not_before: rule.not_before,
                    });
                } else if now > rule.not_after {
                    reasons
                        .push(UntrustedReason::SignerExpired { signer: rule.name.clone(), not_after: rule.not_after });
                // 3c. The predicate types it may sign.
                } else if !rule.predicate_types.iter().any(|p| p.matches(predicate_type)) {
                    reasons.push(UntrustedReason::PredicateTypeNotAllowed {
                        signer: rule.name.clone(),
                        predicate_type: predicate_shown.clone(),
                    });
                // 3d. The repositories it may sign for.
                } else if !rule.repositories.iter().any(|p| p.matches(repo.as_str())) {
                    reasons.push(UntrustedReason::RepositoryOutOfScope {
                        signer: rule.name.clone(),
                        repository: repo.to_string(),
                    });
                } else {
                    edges.entry(k).or_default().push(r);
                }
            }
        }

        // 4. The threshold: distinct rules, each satisfied by a distinct key (a matching between
        //    keys and rules, so one key cannot stand for two signers nor two keys for one signer).
        let required = root
            .thresholds
            .iter()
            .filter(|t| t.predicate_type.matches(predicate_type))
            .map(|t| t.signers)
            .max()
            .unwrap_or(1);
        let got = max_matching(&edges);
        let satisfied: BTreeSet<usize> = edges.values().flatten().copied().collect();
        let signers = satisfied.iter().filter_map(|r| root.signers.get(*r)).map(|s| s.name.clone()).collect();
        let keys = verified
            .iter()
            .enumerate()
            .map(|(k, key)| VerifiedKey {
                keyid: key.keyid().clone(),
                signers: edges
                    .get(&k)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| root.signers.get(*r))
                    .map(|s| s.name.clone())
                    .collect(),
            })
            .collect();
        let trusted = got >= required;
        if !trusted {
            reasons.push(UntrustedReason::BelowThreshold { predicate_type: predicate_shown, required, got });
        }
        Evaluation { trusted, root_version: root.version, signers, keys, reasons }
    }
}

/// The size of a maximum matching between keys and the rules each satisfies (Kuhn's augmenting
/// paths; the graph has at most one node per envelope signature and per signer rule).
fn max_matching(edges: &BTreeMap<usize, Vec<usize>>) -> u32 {
    let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
    let mut size = 0u32;
    for key in edges.keys() {
        let mut visited = BTreeSet::new();
        if augment(*key, edges, &mut owner, &mut visited) {
            size = size.saturating_add(1);
        }
    }
    size
}

/// Tries to match `key` to a rule, moving other keys to other rules if that frees one. The
/// recursion is at most as deep as there are rules, each visited once.
fn augment(
    key: usize,
    edges: &BTreeMap<usize, Vec<usize>>,
    owner: &mut BTreeMap<usize, usize>,
    visited: &mut BTreeSet<usize>,
) -> bool {
    for rule in edges.get(&key).into_iter().flatten() {
        if !visited.insert(*rule) {
            continue;
        }
        let free = match owner.get(rule).copied() {
            None => true,
            Some(other) => augment(other, edges, owner, visited),
        };
        if free {
            owner.insert(*rule, key);
            return true;
        }
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn graph(edges: &[(usize, &[usize])]) -> BTreeMap<usize, Vec<usize>> {
        edges.iter().map(|(k, rs)| (*k, rs.to_vec())).collect()
    }

    #[test]
    fn matching_counts_distinct_keys_for_distinct_rules() {
        // One key satisfying two rules is one signer.
        assert_eq!(max_matching(&graph(&[(0, &[0, 1])])), 1);
        // Two keys of one rule are one signer.
        assert_eq!(max_matching(&graph(&[(0, &[0]), (1, &[0])])), 1);
        // Two keys, two rules: key 0 must move to rule 1 to free rule 0 for key 1.
        assert_eq!(max_matching(&graph(&[(0, &[0, 1]), (1, &[0])])), 2);
        assert_eq!(max_matching(&graph(&[(0, &[0, 1, 2]), (1, &[0, 1]), (2, &[0])])), 3);
        assert_eq!(max_matching(&graph(&[])), 0);
    }
}
