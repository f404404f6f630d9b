//! The trust root document: its JSON form, the parse that checks everything a document can say
//! about itself, and the writers that sign a root and add signatures to one.
//!
//! The format is shown on [`RootDocument`].
//!
//! Signatures cover the bytes of `signed` exactly as received, and those bytes must already be
//! RFC 8785 canonical JSON: the parse canonicalizes what it read and refuses the document if the
//! two differ, so nothing here ever re-serializes signed content to verify it.

use std::collections::{BTreeMap, BTreeSet};

use airlock_dsse::{KeyId, PrivateKey, PublicKey};
use airlock_model::Timestamp;
use airlock_model::jcs::canonicalize;
use airlock_model::pattern::{Pattern, PatternError, RepoPattern};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::error::TrustError;
use airlock_model::echo::echo;

/// The `_type` of every trust root.
pub const ROOT_TYPE: &str = "airlock-trust-root";
/// Largest trust root document accepted, in bytes.
pub const ROOT_MAX_BYTES: usize = 1024 * 1024;
/// Most keys in `keys`.
pub const ROOT_MAX_KEYS: usize = 256;
/// Most signer rules.
pub const ROOT_MAX_SIGNERS: usize = 256;
/// Most predicate-type thresholds.
pub const ROOT_MAX_THRESHOLDS: usize = 64;
/// Most revocations.
pub const ROOT_MAX_REVOKED: usize = 1024;
/// Most signatures on one document; each may cost a signature verification.
pub const ROOT_MAX_SIGNATURES: usize = 32;
/// Most patterns in one signer rule's `predicate_types` or `repositories`.
pub const ROOT_MAX_PATTERNS: usize = 64;
/// Longest signer name, in bytes.
pub const SIGNER_NAME_MAX_LEN: usize = 64;
/// Longest revocation reason, in characters.
pub const REVOCATION_REASON_MAX_LEN: usize = 512;

/// Limits on the work a trust root document can cause. Every field has a named default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootLimits {
    pub max_bytes: usize,
    pub max_keys: usize,
    pub max_signers: usize,
    pub max_thresholds: usize,
    pub max_revoked: usize,
    pub max_signatures: usize,
    pub max_patterns: usize,
}

impl Default for RootLimits {
    fn default() -> Self {
        RootLimits {
            max_bytes: ROOT_MAX_BYTES,
            max_keys: ROOT_MAX_KEYS,
            max_signers: ROOT_MAX_SIGNERS,
            max_thresholds: ROOT_MAX_THRESHOLDS,
            max_revoked: ROOT_MAX_REVOKED,
            max_signatures: ROOT_MAX_SIGNATURES,
            max_patterns: ROOT_MAX_PATTERNS,
        }
    }
}

/// The `signed` member of a trust root: what the root keys vouch for.
///
/// Built by [`RootDocument::parse`], or by hand to propose a new version; [`Root::to_signed_bytes`]
/// refuses a hand-built root that a parse would refuse.
#[derive(Debug, Clone)]
pub struct Root {
    /// Starts at 1 and grows by exactly one per update.
    pub version: u64,
    /// After this instant the root, and everything it lists, is not trusted.
    pub expires: Timestamp,
    /// Every key the root mentions, by the key id computed from the key.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// The keys that sign trust root documents.
    pub root_keyids: Vec<KeyId>,
    /// How many distinct root keys must sign a document.
    pub root_threshold: u32,
    /// Who may sign which attestations.
    pub signers: Vec<SignerRule>,
    /// How many distinct signers some predicate types need (1 when none matches).
    pub thresholds: Vec<PredicateThreshold>,
    /// Keys whose signatures never count again.
    pub revoked: Vec<Revocation>,
    /// Who signs policy bundles (like TUF's targets role); `None` when the root names nobody,
    /// and unsigned bundles then load with a warning.
    pub policy: Option<PolicyRole>,
}

/// The policy role: a policy bundle is trusted when `threshold` distinct keys of `keyids`, none
/// revoked, signed its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRole {
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
}

/// A signer rule: signatures by one of `keyids` count as signer `name` for the predicate types
/// and repositories its patterns match, from `not_before` to `not_after` inclusive.
#[derive(Debug, Clone)]
pub struct SignerRule {
    pub name: String,
    pub keyids: Vec<KeyId>,
    pub predicate_types: Vec<Pattern>,
    pub repositories: Vec<RepoPattern>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// Attestations of a predicate type that `predicate_type` matches need `signers` distinct signer
/// rules, each satisfied by its own key.
#[derive(Debug, Clone)]
pub struct PredicateThreshold {
    pub predicate_type: Pattern,
    pub signers: u32,
}

/// A revoked key. `revoked_at` records since when the key is believed compromised; every
/// signature by the key is rejected whatever its time (see the crate documentation).
#[derive(Debug, Clone)]
pub struct Revocation {
    pub keyid: KeyId,
    pub revoked_at: Timestamp,
    pub reason: String,
}

/// One signature on a trust root document. `keyid` is only a hint naming the key to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootSignature {
    pub keyid: KeyId,
    pub sig: Vec<u8>,
}

/// A parsed trust root document, not yet trusted: it keeps the bytes received and the exact
/// bytes of its `signed` member, which its signatures cover.
///
/// ```json
/// {"signatures":[{"keyid":"<hex sha256 of SPKI DER>","sig":"<base64>"}],
///  "signed":{"_type":"airlock-trust-root","version":1,"expires":"2027-11-26T00:00:00Z",
///            "keys":{"<keyid>":{"algorithm":"ed25519","public_key":"-----BEGIN PUBLIC KEY-----\n..."}},
///            "root":{"keyids":["<keyid>"],"threshold":1},
///            "signers":[{"name":"ci","keyids":["<keyid>"],"predicate_types":["https://slsa.dev/provenance/*"],
///                        "repositories":["dev/payments/**"],"not_before":"2026-01-01T00:00:00Z","not_after":"2027-01-01T00:00:00Z"}],
///            "thresholds":[{"predicate_type":"https://slsa.dev/provenance/*","signers":1}],
///            "revoked":[{"keyid":"<keyid>","revoked_at":"2026-11-20T00:00:00Z","reason":"laptop stolen"}],
///            "policy":{"keyids":["<keyid>"],"threshold":1}}}
/// ```
///
/// `keys` maps each key id to its key; `root` names the root keys and how many must sign a
/// document; `policy` (optional) names the keys that sign policy bundles and how many distinct
/// ones must sign a bundle; each signer rule says which keys sign as whom, for which predicate types and
/// repositories (see [`Pattern`]), from `not_before` to `not_after`; `thresholds` raise the number
/// of distinct signers some predicate types need; `revoked` lists keys whose signatures never
/// count. Times are RFC 3339 in UTC. Unknown members are refused.
///
/// The example is wrapped and ordered for reading: `signed` itself must be canonical, with no
/// whitespace and its members sorted, as [`Root::to_signed_bytes`] writes it.
#[derive(Debug, Clone)]
pub struct RootDocument {
    raw: Vec<u8>,
    signed: Vec<u8>,
    root: Root,
    signatures: Vec<RootSignature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDocument {
    signed: Box<RawValue>,
    signatures: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSignature {
    keyid: String,
    sig: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRoot {
    #[serde(rename = "_type")]
    kind: String,
    version: u64,
    expires: String,
    keys: BTreeMap<String, WireKey>,
    root: WireRootRole,
    signers: Vec<WireSigner>,
    thresholds: Vec<WireThreshold>,
    revoked: Vec<WireRevocation>,
    #[serde(default)]
    policy: Option<WireRootRole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireKey {
    algorithm: String,
    public_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRootRole {
    keyids: Vec<String>,
    threshold: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSigner {
    name: String,
    keyids: Vec<String>,
    predicate_types: Vec<String>,
    repositories: Vec<String>,
    not_before: String,
    not_after: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireThreshold {
    predicate_type: String,
    signers: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRevocation {
    keyid: String,
    revoked_at: String,
    reason: String,
}

impl RootDocument {
    /// Parses a trust root document and checks everything it can say about itself: its shape,
    /// that `signed` is canonical, that every key id is its key's, that thresholds can be met,
    /// and the limits. Signatures are decoded but not verified: that takes a
    /// [`crate::TrustedRoot`].
    pub fn parse(bytes: &[u8], limits: &RootLimits) -> Result<RootDocument, TrustError> {
        // 1. Bound the work before parsing.
        if bytes.len() > limits.max_bytes {
            return Err(TrustError::TooLarge { size: bytes.len(), max: limits.max_bytes });
        }
        // 2. The envelope: exactly `signed` and `signatures`, `signed` kept as the bytes received.
        let wire: WireDocument = serde_json::from_slice(bytes).map_err(|source| TrustError::Malformed { source })?;
        if !is_object(bytes) {
            return Err(TrustError::NotAnObject { what: "document" });
        }
        if wire.signatures.len() > limits.max_signatures {
            return Err(TrustError::TooManySignatures { count: wire.signatures.len(), max: limits.max_signatures });
        }
        // 3. The signed bytes must be canonical, so that they are the only bytes ever verified.
        let signed = wire.signed.get().as_bytes().to_vec();
        let root = parse_signed(&signed, limits)?;
        // 4. Signatures: a key id hint and base64 signature bytes each.
        let mut signatures = Vec::with_capacity(wire.signatures.len());
        for raw in wire.signatures {
            if !is_object(raw.get().as_bytes()) {
                return Err(TrustError::NotAnObject { what: "signature" });
            }
            let s: WireSignature =
                serde_json::from_str(raw.get()).map_err(|source| TrustError::Malformed { source })?;
            let keyid = parse_keyid(&s.keyid)?;
            let sig =
                STANDARD.decode(s.sig.as_bytes()).map_err(|_| TrustError::SignatureBase64 { keyid: keyid.clone() })?;
            signatures.push(RootSignature { keyid, sig });
        }
        Ok(RootDocument { raw: bytes.to_vec(), signed, root, signatures })
    }

    /// The document's version.
    pub fn version(&self) -> u64 {
        self.root.version
    }

    /// The document exactly as received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The bytes of the `signed` member exactly as received: what the signatures cover.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }

    /// The parsed `signed` member.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The signatures, in document order, unverified.
    pub fn signatures(&self) -> &[RootSignature] {
        &self.signatures
    }
}

/// Parses canonical `signed` bytes into a [`Root`], checking every rule a root states about
/// itself.
fn parse_signed(signed: &[u8], limits: &RootLimits) -> Result<Root, TrustError> {
    // 1. RFC 8785: the bytes received must equal their canonical form.
    let value: Value = serde_json::from_slice(signed).map_err(|source| TrustError::MalformedSigned { source })?;
    let canonical = canonicalize(&value).map_err(|source| TrustError::NoCanonicalForm { source })?;
    if canonical != signed {
        let offset =
            canonical.iter().zip(signed).position(|(a, b)| a != b).unwrap_or(canonical.len().min(signed.len()));
        return Err(TrustError::NotCanonical { offset });
    }
    // 2. The shape: every field present, no field unknown, and objects where objects belong.
    objects_where_expected(&value)?;
    let wire: WireRoot = serde_json::from_slice(signed).map_err(|source| TrustError::MalformedSigned { source })?;
    validate(wire, limits)
}

/// Whether JSON `bytes` hold an object (and not, say, an array).
fn is_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'{')
}

/// serde's derived structs also read a JSON array, positionally. A trust root has one spelling,
/// so every place that holds a struct must hold an object.
fn objects_where_expected(signed: &Value) -> Result<(), TrustError> {
    let objects = |what: &'static str, items: Option<&Vec<Value>>| {
        if items.into_iter().flatten().all(Value::is_object) { Ok(()) } else { Err(TrustError::NotAnObject { what }) }
    };
    if !signed.is_object() {
        return Err(TrustError::NotAnObject { what: "member `signed`" });
    }
    if signed.get("root").is_some_and(|r| !r.is_object()) {
        return Err(TrustError::NotAnObject { what: "member `root`" });
    }
    if signed.get("policy").is_some_and(|r| !r.is_object()) {
        return Err(TrustError::NotAnObject { what: "member `policy`" });
    }
    if signed.get("keys").and_then(Value::as_object).is_some_and(|keys| !keys.values().all(Value::is_object)) {
        return Err(TrustError::NotAnObject { what: "key" });
    }
    objects("signer rule", signed.get("signers").and_then(Value::as_array))?;
    objects("threshold", signed.get("thresholds").and_then(Value::as_array))?;
    objects("revocation", signed.get("revoked").and_then(Value::as_array))
}

/// Turns the wire form into a [`Root`], one check per rule.
fn validate(wire: WireRoot, limits: &RootLimits) -> Result<Root, TrustError> {
    // 1. What the document is.
    if wire.kind != ROOT_TYPE {
        return Err(TrustError::WrongType { found: echo(&wire.kind) });
    }
    if wire.version == 0 {
        return Err(TrustError::VersionZero);
    }
    let expires = time_field("expires", &wire.expires)?;

    // 2. Keys: each listed under the key id computed from it, never under one it claims.
    if wire.keys.len() > limits.max_keys {
        return Err(TrustError::TooManyKeys { count: wire.keys.len(), max: limits.max_keys });
    }
    let mut keys = BTreeMap::new();
    for (stated, key) in &wire.keys {
        let stated = parse_keyid(stated)?;
        let public = PublicKey::from_pem(&key.public_key)
            .map_err(|source| TrustError::BadPublicKey { keyid: stated.clone(), source })?;
        let computed = public.keyid();
        if computed != &stated {
            // The same key in another encoding (a compressed P-256 point, say) has the same
            // computed key id, so it cannot hide under a second one.
            if wire.keys.contains_key(computed.as_str()) {
                return Err(TrustError::SameKeyTwice { keyid: computed.clone(), listed_as: stated });
            }
            return Err(TrustError::KeyIdMismatch { stated, computed: computed.clone() });
        }
        let actual = public.algorithm().as_str();
        if key.algorithm != actual {
            return Err(TrustError::AlgorithmMismatch {
                keyid: stated,
                stated: echo(&key.algorithm),
                actual: actual.to_owned(),
            });
        }
        keys.insert(stated, public);
    }

    // 3. The root role: known keys, each once, and a threshold that is at least 1 and at most
    //    the number of distinct keys (a key in two encodings is one key).
    let mut root_keyids = Vec::with_capacity(wire.root.keyids.len());
    let mut fingerprints = BTreeSet::new();
    for id in &wire.root.keyids {
        let keyid = parse_keyid(id)?;
        let Some(key) = keys.get(&keyid) else {
            return Err(TrustError::UnknownRootKey { keyid });
        };
        if root_keyids.contains(&keyid) {
            return Err(TrustError::DuplicateRootKey { keyid });
        }
        fingerprints.insert(key.fingerprint());
        root_keyids.push(keyid);
    }
    if wire.root.threshold == 0 {
        return Err(TrustError::RootThresholdZero);
    }
    let root_threshold = u32::try_from(wire.root.threshold)
        .ok()
        .filter(|t| usize::try_from(*t).is_ok_and(|t| t <= fingerprints.len()))
        .ok_or(TrustError::RootThresholdAboveKeyCount { threshold: wire.root.threshold, keys: fingerprints.len() })?;

    // 4. Signer rules.
    if wire.signers.len() > limits.max_signers {
        return Err(TrustError::TooManySigners { count: wire.signers.len(), max: limits.max_signers });
    }
    let mut signers: Vec<SignerRule> = Vec::with_capacity(wire.signers.len());
    for s in wire.signers {
        let rule = signer_rule(s, &keys, limits)?;
        if signers.iter().any(|other| other.name == rule.name) {
            return Err(TrustError::DuplicateSigner { name: rule.name });
        }
        signers.push(rule);
    }

    // 5. Predicate-type thresholds: each at least 1 and reachable with the signer rules there are.
    if wire.thresholds.len() > limits.max_thresholds {
        return Err(TrustError::TooManyThresholds { count: wire.thresholds.len(), max: limits.max_thresholds });
    }
    let mut thresholds: Vec<PredicateThreshold> = Vec::with_capacity(wire.thresholds.len());
    for t in wire.thresholds {
        let predicate_type = Pattern::parse(&t.predicate_type)
            .map_err(|source| TrustError::ThresholdPattern { predicate_type: echo(&t.predicate_type), source })?;
        if t.signers == 0 {
            return Err(TrustError::ThresholdZero { predicate_type: predicate_type.to_string() });
        }
        let count = u32::try_from(t.signers)
            .ok()
            .filter(|c| usize::try_from(*c).is_ok_and(|c| c <= signers.len()))
            .ok_or(TrustError::ThresholdUnreachable {
                predicate_type: predicate_type.to_string(),
                required: t.signers,
                signers: signers.len(),
            })?;
        if thresholds.iter().any(|other| other.predicate_type == predicate_type) {
            return Err(TrustError::DuplicateThreshold { predicate_type: predicate_type.to_string() });
        }
        thresholds.push(PredicateThreshold { predicate_type, signers: count });
    }

    // 6. Revocations: of keys still listed (so every encoding of the key is caught), each once,
    //    each with a reason.
    if wire.revoked.len() > limits.max_revoked {
        return Err(TrustError::TooManyRevoked { count: wire.revoked.len(), max: limits.max_revoked });
    }
    let mut revoked: Vec<Revocation> = Vec::with_capacity(wire.revoked.len());
    for (i, r) in wire.revoked.into_iter().enumerate() {
        let keyid = parse_keyid(&r.keyid)?;
        if !keys.contains_key(&keyid) {
            return Err(TrustError::UnknownRevokedKey { keyid });
        }
        if revoked.iter().any(|other| other.keyid == keyid) {
            return Err(TrustError::DuplicateRevocation { keyid });
        }
        let revoked_at = time_field(&format!("revoked[{i}].revoked_at"), &r.revoked_at)?;
        let chars = r.reason.chars().count();
        if chars == 0 || chars > REVOCATION_REASON_MAX_LEN || r.reason.chars().any(char::is_control) {
            return Err(TrustError::RevocationReason { keyid });
        }
        revoked.push(Revocation { keyid, revoked_at, reason: r.reason });
    }

    // 7. The policy role, when present: known keys, each once, and a threshold that is at least
    //    1 and at most the number of distinct keys, like the root role.
    let policy = match wire.policy {
        None => None,
        Some(role) => Some(policy_role(&role, &keys)?),
    };

    Ok(Root { version: wire.version, expires, keys, root_keyids, root_threshold, signers, thresholds, revoked, policy })
}

/// The policy role, checked.
fn policy_role(wire: &WireRootRole, keys: &BTreeMap<KeyId, PublicKey>) -> Result<PolicyRole, TrustError> {
    if wire.keyids.is_empty() {
        return Err(TrustError::PolicyWithoutKeys);
    }
    let mut keyids = Vec::with_capacity(wire.keyids.len());
    let mut fingerprints = BTreeSet::new();
    for id in &wire.keyids {
        let keyid = parse_keyid(id)?;
        let Some(key) = keys.get(&keyid) else {
            return Err(TrustError::UnknownPolicyKey { keyid });
        };
        if keyids.contains(&keyid) {
            return Err(TrustError::DuplicatePolicyKey { keyid });
        }
        fingerprints.insert(key.fingerprint());
        keyids.push(keyid);
    }
    if wire.threshold == 0 {
        return Err(TrustError::PolicyThresholdZero);
    }
    let threshold = u32::try_from(wire.threshold)
        .ok()
        .filter(|t| usize::try_from(*t).is_ok_and(|t| t <= fingerprints.len()))
        .ok_or(TrustError::PolicyThresholdAboveKeyCount { threshold: wire.threshold, keys: fingerprints.len() })?;
    Ok(PolicyRole { keyids, threshold })
}

/// One signer rule, checked.
fn signer_rule(
    wire: WireSigner,
    keys: &BTreeMap<KeyId, PublicKey>,
    limits: &RootLimits,
) -> Result<SignerRule, TrustError> {
    let name_ok = !wire.name.is_empty()
        && wire.name.len() <= SIGNER_NAME_MAX_LEN
        && wire.name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !name_ok {
        return Err(TrustError::SignerName { name: echo(&wire.name) });
    }
    let name = wire.name;
    if wire.keyids.is_empty() {
        return Err(TrustError::SignerWithoutKeys { signer: name });
    }
    let mut keyids = Vec::with_capacity(wire.keyids.len());
    for id in &wire.keyids {
        let keyid = parse_keyid(id)?;
        if !keys.contains_key(&keyid) {
            return Err(TrustError::UnknownSignerKey { signer: name, keyid });
        }
        if keyids.contains(&keyid) {
            return Err(TrustError::DuplicateSignerKey { signer: name, keyid });
        }
        keyids.push(keyid);
    }
    let predicate_types = patterns(&name, "predicate_types", &wire.predicate_types, limits, Pattern::parse)?;
    let repositories = patterns(&name, "repositories", &wire.repositories, limits, RepoPattern::parse)?;
    let not_before = time_field(&format!("signers[{name}].not_before"), &wire.not_before)?;
    let not_after = time_field(&format!("signers[{name}].not_after"), &wire.not_after)?;
    if not_before > not_after {
        return Err(TrustError::SignerWindow { signer: name, not_before: wire.not_before, not_after: wire.not_after });
    }
    Ok(SignerRule { name, keyids, predicate_types, repositories, not_before, not_after })
}

/// One pattern list of a signer rule: non-empty, bounded, every pattern valid as `parse` reads it.
fn patterns<P>(
    signer: &str,
    field: &'static str,
    texts: &[String],
    limits: &RootLimits,
    parse: fn(&str) -> Result<P, PatternError>,
) -> Result<Vec<P>, TrustError> {
    if texts.is_empty() {
        return Err(TrustError::EmptyPatterns { signer: signer.to_owned(), field });
    }
    if texts.len() > limits.max_patterns {
        return Err(TrustError::TooManyPatterns {
            signer: signer.to_owned(),
            field,
            count: texts.len(),
            max: limits.max_patterns,
        });
    }
    texts
        .iter()
        .map(|t| parse(t).map_err(|source| TrustError::SignerPattern { signer: signer.to_owned(), field, source }))
        .collect()
}

fn parse_keyid(text: &str) -> Result<KeyId, TrustError> {
    KeyId::parse(text).map_err(|source| TrustError::BadKeyId { keyid: echo(text), source })
}

fn time_field(field: &str, text: &str) -> Result<Timestamp, TrustError> {
    Timestamp::parse_rfc3339_strict(text).ok_or_else(|| TrustError::Time { field: echo(field), value: echo(text) })
}

fn render_time(field: &str, time: Timestamp) -> Result<String, TrustError> {
    time.to_rfc3339_strict().ok_or_else(|| TrustError::TimeOutOfRange { field: echo(field) })
}

impl Root {
    /// The canonical (RFC 8785) JSON of the `signed` member for this root: the bytes root keys
    /// sign. Refuses a root that [`RootDocument::parse`] would refuse, with the same error.
    pub fn to_signed_bytes(&self) -> Result<Vec<u8>, TrustError> {
        let keyids = |ids: &[KeyId]| Value::Array(ids.iter().map(|k| Value::from(k.as_str())).collect());
        let patterns = |ps: &mut dyn Iterator<Item = &str>| Value::Array(ps.map(Value::from).collect());
        let mut keys = Map::new();
        for (keyid, key) in &self.keys {
            keys.insert(
                keyid.as_str().to_owned(),
                json!({"algorithm": key.algorithm().as_str(), "public_key": key.to_pem()}),
            );
        }
        let mut signers = Vec::with_capacity(self.signers.len());
        for s in &self.signers {
            signers.push(json!({
                "name": s.name,
                "keyids": keyids(&s.keyids),
                "predicate_types": patterns(&mut s.predicate_types.iter().map(Pattern::as_str)),
                "repositories": patterns(&mut s.repositories.iter().map(RepoPattern::as_str)),
                "not_before": render_time(&format!("signers[{}].not_before", s.name), s.not_before)?,
                "not_after": render_time(&format!("signers[{}].not_after", s.name), s.not_after)?,
            }));
        }
        let thresholds: Vec<Value> = self
            .thresholds
            .iter()
            .map(|t| json!({"predicate_type": t.predicate_type.as_str(), "signers": t.signers}))
            .collect();
        let mut revoked = Vec::with_capacity(self.revoked.len());
        for (i, r) in self.revoked.iter().enumerate() {
            revoked.push(json!({
                "keyid": r.keyid.as_str(),
                "revoked_at": render_time(&format!("revoked[{i}].revoked_at"), r.revoked_at)?,
                "reason": r.reason,
            }));
        }
        let mut value = json!({
            "_type": ROOT_TYPE,
            "version": self.version,
            "expires": render_time("expires", self.expires)?,
            "keys": keys,
            "root": {"keyids": keyids(&self.root_keyids), "threshold": self.root_threshold},
            "signers": signers,
            "thresholds": thresholds,
            "revoked": revoked,
        });
        // A root without a policy role has no `policy` member, so its bytes stay as before.
        if let (Some(policy), Some(object)) = (&self.policy, value.as_object_mut()) {
            object
                .insert("policy".to_owned(), json!({"keyids": keyids(&policy.keyids), "threshold": policy.threshold}));
        }
        let bytes = canonicalize(&value).map_err(|source| TrustError::NoCanonicalForm { source })?;
        // What is signed must be what a verifier accepts.
        parse_signed(&bytes, &RootLimits::default())?;
        Ok(bytes)
    }
}

/// A complete trust root document for `root`, signed by each of `keys`. The keys need not be
/// root keys of `root`: a new version is also signed by the previous version's root keys.
pub fn sign_root(root: &Root, keys: &[&PrivateKey]) -> Result<Vec<u8>, TrustError> {
    let signed = root.to_signed_bytes()?;
    let mut signatures = Vec::with_capacity(keys.len());
    for key in keys {
        signatures = with_signature(signatures, &signed, key, &root.keys)?;
    }
    if signatures.len() > ROOT_MAX_SIGNATURES {
        return Err(TrustError::TooManySignatures { count: signatures.len(), max: ROOT_MAX_SIGNATURES });
    }
    assemble(&signed, &signatures)
}

/// `document` with one more signature, by `key`, over its `signed` bytes, which stay untouched.
/// This is how root key holders sign a proposed version one after another (`airlock trust sign`).
pub fn add_signature(document: &[u8], key: &PrivateKey, limits: &RootLimits) -> Result<Vec<u8>, TrustError> {
    let doc = RootDocument::parse(document, limits)?;
    let signatures = with_signature(doc.signatures.clone(), &doc.signed, key, &doc.root.keys)?;
    if signatures.len() > limits.max_signatures {
        return Err(TrustError::TooManySignatures { count: signatures.len(), max: limits.max_signatures });
    }
    assemble(&doc.signed, &signatures)
}

/// `signatures` plus one by `key` over `signed`, unless `key` already signed (under any key id
/// `keys` maps to the same key).
fn with_signature(
    mut signatures: Vec<RootSignature>,
    signed: &[u8],
    key: &PrivateKey,
    keys: &BTreeMap<KeyId, PublicKey>,
) -> Result<Vec<RootSignature>, TrustError> {
    let public = key.public_key();
    let fingerprint = public.fingerprint();
    let already = signatures
        .iter()
        .any(|s| &s.keyid == public.keyid() || keys.get(&s.keyid).is_some_and(|k| k.fingerprint() == fingerprint));
    if already {
        return Err(TrustError::AlreadySigned { keyid: public.keyid().clone() });
    }
    let sig = key.sign(signed).map_err(|source| TrustError::Sign { keyid: public.keyid().clone(), source })?;
    signatures.push(RootSignature { keyid: public.keyid().clone(), sig });
    Ok(signatures)
}

/// The document `{"signatures":[...],"signed":<signed>}`, with `signed` copied byte for byte.
/// Canonical as a whole when `signed` is.
fn assemble(signed: &[u8], signatures: &[RootSignature]) -> Result<Vec<u8>, TrustError> {
    let list = Value::Array(
        signatures.iter().map(|s| json!({"keyid": s.keyid.as_str(), "sig": STANDARD.encode(&s.sig)})).collect(),
    );
    let list = canonicalize(&list).map_err(|source| TrustError::NoCanonicalForm { source })?;
    let mut out = Vec::with_capacity(signed.len().saturating_add(list.len()).saturating_add(32));
    out.extend_from_slice(b"{\"signatures\":");
    out.extend_from_slice(&list);
    out.extend_from_slice(b",\"signed\":");
    out.extend_from_slice(signed);
    out.push(b'}');
    Ok(out)
}
