//! Public keys that verify DSSE signatures: Ed25519 (RFC 8032, verified strictly) and ECDSA over
//! P-256 with SHA-256 (FIPS 186-5, ASN.1 DER signatures), read from SPKI DER or PEM.
//!
//! A key is named by its [`KeyId`], the lowercase hex SHA-256 of its SubjectPublicKeyInfo DER as
//! Airlock re-encodes it (one canonical encoding per key), and counted toward thresholds by its
//! [`PublicKey::fingerprint`], which does not depend on how the key was encoded either.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use sha2::{Digest as _, Sha256};
use spki::der::Decode as _;
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

use airlock_model::echo::echo_short as echo;

/// Largest key accepted, PEM or DER, in bytes. A P-256 public key is 91 bytes of DER; a private
/// key in PEM is under 300 bytes. The margin admits keys of other algorithms, to be refused by
/// name rather than by size.
pub const MAX_KEY_BYTES: usize = 16 * 1024;

/// `id-Ed25519` (RFC 8410 §3).
pub(crate) const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-ecPublicKey` (RFC 5480 §2.1.1).
pub(crate) const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1`, the named curve P-256 (RFC 5480 §2.1.1.1).
pub(crate) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The SPKI DER of an Ed25519 key up to its 32 key bytes (RFC 8410 §4).
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// The SPKI DER of a P-256 key up to its 65-byte uncompressed point (RFC 5480 §2).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Length of an uncompressed SEC1 P-256 point: `0x04 || X || Y`.
const P256_POINT_LEN: usize = 65;
/// Length of a compressed SEC1 P-256 point: `0x02 or 0x03 || X`.
const P256_COMPRESSED_LEN: usize = 33;
/// Shortest and longest ASN.1 DER ECDSA P-256 signature: `SEQUENCE { INTEGER r, INTEGER s }`.
const P256_DER_SIGNATURE_LEN: std::ops::RangeInclusive<usize> = 8..=72;
/// Length of an Ed25519 signature.
const ED25519_SIGNATURE_LEN: usize = 64;

/// Why a key, a key id or an algorithm name was refused. Messages never include private key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key is {len} bytes; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("key id `{keyid}` is not 64 lowercase hex digits (the sha-256 of a public key's spki der)")]
    KeyIdFormat { keyid: String },
    #[error("signature algorithm `{name}` is not supported; use `ed25519` or `ecdsa-p256`")]
    UnknownAlgorithm { name: String },
    #[error("key is not a pem document: {source}")]
    Pem {
        #[source]
        source: spki::der::Error,
    },
    #[error("pem label is `{found}`; expected `{expected}`")]
    PemLabel { found: String, expected: &'static str },
    #[error(
        "private key is encrypted; decrypt it to unencrypted pkcs#8 first, e.g. `openssl pkey -in KEY -out PLAIN.pem`"
    )]
    EncryptedPrivateKey,
    #[error("private key is a legacy `{label}`; convert it to pkcs#8 with `openssl pkey -in KEY -out KEY.pk8.pem`")]
    LegacyPrivateKey { label: String },
    #[error("public key is not a der-encoded subjectPublicKeyInfo: {source}")]
    Spki {
        #[source]
        source: spki::der::Error,
    },
    #[error("private key is not a der-encoded pkcs#8 privateKeyInfo: {source}")]
    Pkcs8 {
        #[source]
        source: pkcs8::Error,
    },
    #[error("key algorithm `{oid}` is not supported; use ed25519 (`1.3.101.112`) or ecdsa over p-256")]
    UnsupportedAlgorithm { oid: String },
    #[error("elliptic curve `{oid}` is not supported; use p-256 (`1.2.840.10045.3.1.7`)")]
    UnsupportedCurve { oid: String },
    #[error("ecdsa key names no curve; rfc 5480 requires the named curve `1.2.840.10045.3.1.7` (p-256)")]
    NoNamedCurve,
    #[error("`ed25519` key has algorithm parameters; rfc 8410 requires them to be absent")]
    UnexpectedParameters,
    #[error("public key bit string has unused bits")]
    UnusedBits,
    #[error("`{algorithm}` public key is {len} bytes; expected {expected}")]
    KeyLength { algorithm: Algorithm, len: usize, expected: &'static str },
    #[error(
        "`ecdsa-p256` public key starts with byte 0x{tag:02x}; a sec1 point is compressed (0x02, 0x03) or uncompressed (0x04)"
    )]
    PointEncoding { tag: u8 },
    #[error("`{algorithm}` public key is not a valid point on its curve")]
    InvalidPoint { algorithm: Algorithm },
    #[error("`ed25519` public key is not canonically encoded (its y coordinate is not reduced)")]
    NonCanonicalKey,
    #[error("`ed25519` public key has small order, so it would verify forged signatures")]
    WeakKey,
    #[error("`{algorithm}` private key is malformed or does not match its public key ({reason})")]
    PrivateKeyRejected { algorithm: Algorithm, reason: String },
    #[error("the operating system's random number generator failed")]
    Randomness,
    #[error("cannot encode the private key as pkcs#8: {source}")]
    Pkcs8Encode {
        #[source]
        source: pkcs8::Error,
    },
}

/// Why a signature was not made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a {len}-byte signature cannot be an `{algorithm}` signature (key `{keyid}`)")]
    Malformed { keyid: KeyId, algorithm: Algorithm, len: usize },
    #[error("signature does not verify under key `{keyid}`")]
    Invalid { keyid: KeyId },
    #[error("key `{keyid}` could not sign: the operating system's random number generator failed")]
    Signing { keyid: KeyId },
    #[error("an envelope needs at least one signing key")]
    NoSigners,
}

/// A key id: the lowercase hex SHA-256 of a public key's SubjectPublicKeyInfo DER, the convention
/// of DESIGN.md ("keyid = hex SHA-256 of the SPKI DER"). Built by [`KeyId::parse`] or taken from
/// [`PublicKey::keyid`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Length of a key id in hex digits.
    pub const LEN: usize = 64;

    /// Parses 64 lowercase hex digits. Uppercase is refused, so one key has one key id text.
    pub fn parse(s: &str) -> Result<KeyId, KeyError> {
        if s.len() != Self::LEN || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(KeyError::KeyIdFormat { keyid: echo(s) });
        }
        Ok(KeyId(s.to_owned()))
    }

    /// The key id of the given SubjectPublicKeyInfo DER.
    pub(crate) fn of_spki(der: &[u8]) -> KeyId {
        KeyId(hex::encode(Sha256::digest(der)))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyId::parse(s)
    }
}

/// A signature algorithm Airlock accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032), verified with ed25519-dalek's `verify_strict`.
    Ed25519,
    /// ECDSA over P-256 with SHA-256, signatures in ASN.1 DER.
    EcdsaP256Sha256,
}

impl Algorithm {
    /// The name used in configuration and messages: `ed25519` or `ecdsa-p256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256",
        }
    }

    /// Parses the name [`Algorithm::as_str`] gives.
    pub fn parse(name: &str) -> Result<Algorithm, KeyError> {
        match name {
            "ed25519" => Ok(Algorithm::Ed25519),
            "ecdsa-p256" => Ok(Algorithm::EcdsaP256Sha256),
            _ => Err(KeyError::UnknownAlgorithm { name: echo(name) }),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::parse(s)
    }
}

/// The key material, canonical: an Ed25519 point or an uncompressed P-256 point.
#[derive(Clone, PartialEq, Eq)]
enum Material {
    Ed25519(VerifyingKey),
    P256([u8; P256_POINT_LEN]),
}

/// A public key that verifies DSSE signatures. Two encodings of the same key (a compressed or an
/// uncompressed P-256 point) give equal values: the key is kept in one canonical form, from which
/// its SPKI DER, key id and fingerprint are computed.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    material: Material,
    spki: Vec<u8>,
    keyid: KeyId,
    fingerprint: [u8; 32],
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("keyid", &self.keyid.as_str())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Reads a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): Ed25519 per RFC 8410, or an
    /// `id-ecPublicKey` on the named curve P-256 per RFC 5480, its point compressed or not.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        // 1. Bound the work.
        if der.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLarge { len: der.len(), max: MAX_KEY_BYTES });
        }
        // 2. Strict DER, nothing after the structure.
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|source| KeyError::Spki { source })?;
        // 3. The algorithm, and the parameters it requires.
        let algorithm = match spki.algorithm.oid {
            OID_ED25519 => {
                // RFC 8410 §3: "the parameters MUST be absent".
                if spki.algorithm.parameters.is_some() {
                    return Err(KeyError::UnexpectedParameters);
                }
                Algorithm::Ed25519
            }
            OID_EC_PUBLIC_KEY => {
                // RFC 5480 §2.1.1: only the namedCurve choice; P-256 is the one Airlock accepts.
                let Some(parameters) = spki.algorithm.parameters else {
                    return Err(KeyError::NoNamedCurve);
                };
                let curve = parameters
                    .decode_as::<ObjectIdentifier>()
                    .map_err(|_| KeyError::UnsupportedCurve { oid: "an explicit curve".to_owned() })?;
                if curve != OID_P256 {
                    return Err(KeyError::UnsupportedCurve { oid: curve.to_string() });
                }
                Algorithm::EcdsaP256Sha256
            }
            other => return Err(KeyError::UnsupportedAlgorithm { oid: other.to_string() }),
        };
        // 4. The key bytes, a whole number of octets.
        let key = spki.subject_public_key.as_bytes().ok_or(KeyError::UnusedBits)?;
        PublicKey::from_raw(algorithm, key)
    }

    /// Reads a PEM `PUBLIC KEY` (RFC 7468 §13): a SubjectPublicKeyInfo, as `openssl pkey -pubout`
    /// and Python's `cryptography` write it.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        if pem.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLarge { len: pem.len(), max: MAX_KEY_BYTES });
        }
        let (label, document) = spki::Document::from_pem(pem.trim()).map_err(|source| KeyError::Pem { source })?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::PemLabel { found: echo(label), expected: "PUBLIC KEY" });
        }
        PublicKey::from_spki_der(document.as_bytes())
    }

    /// Reads a bare key: 32 bytes for Ed25519 (RFC 8032 §5.1.5), a SEC1 point (compressed or
    /// uncompressed) for P-256. Ed25519 keys must be canonical and not of small order.
    pub fn from_raw(algorithm: Algorithm, bytes: &[u8]) -> Result<PublicKey, KeyError> {
        match algorithm {
            Algorithm::Ed25519 => {
                let bytes: &[u8; 32] = bytes.try_into().map_err(|_| KeyError::KeyLength {
                    algorithm,
                    len: bytes.len(),
                    expected: "32",
                })?;
                let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPoint { algorithm })?;
                // A y coordinate of at least the field prime decodes to the same point as its
                // reduction; refuse it so that one key has one encoding.
                if key.to_edwards().compress().as_bytes() != bytes {
                    return Err(KeyError::NonCanonicalKey);
                }
                if key.is_weak() {
                    return Err(KeyError::WeakKey);
                }
                Ok(PublicKey::ed25519(key))
            }
            Algorithm::EcdsaP256Sha256 => {
                let (tag, expected_len) = match bytes.first() {
                    Some(&tag @ (0x02 | 0x03)) => (tag, P256_COMPRESSED_LEN),
                    Some(&tag @ 0x04) => (tag, P256_POINT_LEN),
                    Some(&tag) => return Err(KeyError::PointEncoding { tag }),
                    None => return Err(KeyError::KeyLength { algorithm, len: 0, expected: "33 or 65" }),
                };
                if bytes.len() != expected_len {
                    let expected = if tag == 0x04 { "65 (uncompressed)" } else { "33 (compressed)" };
                    return Err(KeyError::KeyLength { algorithm, len: bytes.len(), expected });
                }
                // On the curve, not the identity; then re-encoded uncompressed.
                let key = p256::PublicKey::from_sec1_bytes(bytes).map_err(|_| KeyError::InvalidPoint { algorithm })?;
                let point: [u8; P256_POINT_LEN] = key
                    .to_encoded_point(false)
                    .as_bytes()
                    .try_into()
                    .map_err(|_| KeyError::InvalidPoint { algorithm })?;
                Ok(PublicKey::p256(point))
            }
        }
    }

    /// An Ed25519 key already known to be valid (from a private key or [`PublicKey::from_raw`]).
    pub(crate) fn ed25519(key: VerifyingKey) -> PublicKey {
        PublicKey::build(Material::Ed25519(key))
    }

    /// A P-256 key already known to be a valid uncompressed point.
    pub(crate) fn p256(point: [u8; P256_POINT_LEN]) -> PublicKey {
        PublicKey::build(Material::P256(point))
    }

    fn build(material: Material) -> PublicKey {
        let (prefix, raw, algorithm): (&[u8], &[u8], Algorithm) = match &material {
            Material::Ed25519(key) => (&ED25519_SPKI_PREFIX, key.as_bytes(), Algorithm::Ed25519),
            Material::P256(point) => (&P256_SPKI_PREFIX, point, Algorithm::EcdsaP256Sha256),
        };
        let mut spki = Vec::with_capacity(prefix.len().saturating_add(raw.len()));
        spki.extend_from_slice(prefix);
        spki.extend_from_slice(raw);
        let keyid = KeyId::of_spki(&spki);
        let mut hasher = Sha256::new();
        hasher.update(algorithm.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(raw);
        let fingerprint = hasher.finalize().into();
        PublicKey { material, spki, keyid, fingerprint }
    }

    /// The key as a PEM `PUBLIC KEY`, lines of 64 characters, ending in a newline.
    pub fn to_pem(&self) -> String {
        let body = STANDARD.encode(&self.spki);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        let mut rest = body.as_str();
        while !rest.is_empty() {
            // Base64 is ASCII, so any byte index is a character boundary.
            let (line, tail) = rest.split_at(rest.len().min(64));
            pem.push_str(line);
            pem.push('\n');
            rest = tail;
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// The SubjectPublicKeyInfo DER, in Airlock's canonical encoding (a P-256 point uncompressed),
    /// which may differ from the bytes the key was read from.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key's canonical bytes: 32 for Ed25519, the 65-byte uncompressed point for P-256.
    pub fn raw_bytes(&self) -> &[u8] {
        match &self.material {
            Material::Ed25519(key) => key.as_bytes(),
            Material::P256(point) => point,
        }
    }

    /// The key id: lowercase hex SHA-256 of [`PublicKey::spki_der`]. Always computed from the key,
    /// never taken from input.
    pub fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    /// The algorithm of the key.
    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            Material::Ed25519(_) => Algorithm::Ed25519,
            Material::P256(_) => Algorithm::EcdsaP256Sha256,
        }
    }

    /// The same key gives the same fingerprint however it was encoded: SHA-256 over the algorithm
    /// name, a zero byte and [`PublicKey::raw_bytes`]. Used to count each key once toward a
    /// threshold.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Whether `signature` could be of this key's algorithm at all, judged by its length alone.
    pub(crate) fn may_have_made(&self, signature: &[u8]) -> bool {
        match self.material {
            Material::Ed25519(_) => signature.len() == ED25519_SIGNATURE_LEN,
            Material::P256(_) => P256_DER_SIGNATURE_LEN.contains(&signature.len()),
        }
    }

    /// Verifies `signature` over `message`. Ed25519: ed25519-dalek's `verify_strict`, which also
    /// refuses small-order `R` and non-canonical `S`. P-256: ECDSA over SHA-256(`message`) with an
    /// ASN.1 DER signature (what securesystemslib and OpenSSL produce), verified by ring.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        if !self.may_have_made(signature) {
            return Err(SignatureError::Malformed {
                keyid: self.keyid.clone(),
                algorithm: self.algorithm(),
                len: signature.len(),
            });
        }
        let invalid = || SignatureError::Invalid { keyid: self.keyid.clone() };
        match &self.material {
            Material::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| invalid())?;
                key.verify_strict(message, &signature).map_err(|_| invalid())
            }
            Material::P256(point) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point).verify(message, signature).map_err(|_| invalid())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_64_lowercase_hex_digits() {
        let good = "a".repeat(64);
        assert_eq!(KeyId::parse(&good).unwrap().as_str(), good);
        for bad in ["", "A".repeat(64).as_str(), "a".repeat(63).as_str(), "g".repeat(64).as_str()] {
            assert!(matches!(KeyId::parse(bad), Err(KeyError::KeyIdFormat { .. })), "{bad}");
        }
    }

    #[test]
    fn algorithm_names_round_trip() {
        for algorithm in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            assert_eq!(Algorithm::parse(algorithm.as_str()).unwrap(), algorithm);
        }
        assert_eq!(
            Algorithm::parse("rsa").unwrap_err().to_string(),
            "signature algorithm `rsa` is not supported; use `ed25519` or `ecdsa-p256`"
        );
    }

    #[test]
    fn canonical_spki_prefixes_decode() {
        let mut ed = ED25519_SPKI_PREFIX.to_vec();
        ed.extend_from_slice(&[0x11; 32]);
        let spki = SubjectPublicKeyInfoRef::from_der(&ed).unwrap();
        assert_eq!(spki.algorithm.oid, OID_ED25519);
        let mut ec = P256_SPKI_PREFIX.to_vec();
        ec.extend_from_slice(&[0x04; 65]);
        let spki = SubjectPublicKeyInfoRef::from_der(&ec).unwrap();
        assert_eq!(spki.algorithm.oid, OID_EC_PUBLIC_KEY);
        assert_eq!(spki.algorithm.parameters_oid().unwrap(), OID_P256);
    }
}
