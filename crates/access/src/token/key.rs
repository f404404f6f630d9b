//! Airlock's token keys: the Ed25519 key that signs tokens, its public half named by a `kid`, and
//! the set of public keys a verifier accepts while keys rotate.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, SecretDocument};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use super::TokenError;

/// The SPKI DER of an Ed25519 key up to its 32 key bytes (RFC 8410 §4).
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The Ed25519 key Airlock signs tokens with. Its [`kid`](TokenKey::kid) is the lowercase hex
/// SHA-256 of its public key's SubjectPublicKeyInfo DER, Airlock's key id rule everywhere.
#[derive(Clone)]
pub struct TokenKey {
    signing: SigningKey,
    public: TokenPublicKey,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey").field("kid", &self.public.kid).finish_non_exhaustive()
    }
}

impl TokenKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> TokenKey {
        TokenKey::from_signing(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    /// Reads an unencrypted PKCS#8 Ed25519 private key (RFC 8410 §7), v1 or v2; a v2 key's
    /// embedded public key must match.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<TokenKey, TokenError> {
        let signing = SigningKey::from_pkcs8_der(der).map_err(|source| TokenError::PrivateKey { source })?;
        Ok(TokenKey::from_signing(signing))
    }

    /// The key as PKCS#8 DER, in a buffer that is zeroed when dropped.
    pub fn to_pkcs8_der(&self) -> Result<SecretDocument, TokenError> {
        self.signing.to_pkcs8_der().map_err(|source| TokenError::PrivateKeyEncode { source })
    }

    /// The key id: 64 lowercase hex digits.
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// The public half, to put in a [`VerifyingKeys`].
    pub fn public(&self) -> &TokenPublicKey {
        &self.public
    }

    /// An Ed25519 signature over `message`.
    pub(super) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    fn from_signing(signing: SigningKey) -> TokenKey {
        let public = TokenPublicKey::from_verifying(signing.verifying_key());
        TokenKey { signing, public }
    }
}

/// An Ed25519 public key that verifies Airlock tokens, with its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenPublicKey {
    key: VerifyingKey,
    kid: String,
}

impl fmt::Debug for TokenPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPublicKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl TokenPublicKey {
    /// Reads an Ed25519 SubjectPublicKeyInfo DER (RFC 8410 §4). Keys of small order are refused:
    /// they would verify forged signatures.
    pub fn from_spki_der(der: &[u8]) -> Result<TokenPublicKey, TokenError> {
        let key = VerifyingKey::from_public_key_der(der).map_err(|source| TokenError::PublicKey { source })?;
        if key.is_weak() {
            return Err(TokenError::WeakKey);
        }
        Ok(TokenPublicKey::from_verifying(key))
    }

    /// The SubjectPublicKeyInfo DER that [`TokenPublicKey::from_spki_der`] reads and the key id
    /// hashes.
    pub fn to_spki_der(&self) -> Vec<u8> {
        [ED25519_SPKI_PREFIX.as_slice(), self.key.as_bytes()].concat()
    }

    /// The 32 bytes of the key (RFC 8032 §5.1.5), as a JWK's `x` holds them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The key id: the lowercase hex SHA-256 of [`TokenPublicKey::to_spki_der`].
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Whether `signature` is this key's over `message`, checked strictly: non-canonical
    /// encodings and small-order points are refused (ed25519-dalek's `verify_strict`).
    pub(super) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.key.verify_strict(message, &Signature::from_bytes(signature)).is_ok()
    }

    fn from_verifying(key: VerifyingKey) -> TokenPublicKey {
        let mut digest = Sha256::new();
        digest.update(ED25519_SPKI_PREFIX);
        digest.update(key.as_bytes());
        TokenPublicKey { key, kid: hex::encode(digest.finalize()) }
    }
}

/// The public keys a verifier accepts, by key id: the current token key and, while tokens it
/// signed may still be alive, the previous ones. Rotation adds the new key and, once the longest
/// token lifetime has passed, removes the old.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyingKeys {
    keys: BTreeMap<String, TokenPublicKey>,
}

impl VerifyingKeys {
    /// An empty set, which verifies nothing.
    pub fn new() -> VerifyingKeys {
        VerifyingKeys::default()
    }

    /// Adds `key`; returns the key it replaces, if one had its key id.
    pub fn insert(&mut self, key: TokenPublicKey) -> Option<TokenPublicKey> {
        self.keys.insert(key.kid.clone(), key)
    }

    /// Removes and returns the key with id `kid`.
    pub fn remove(&mut self, kid: &str) -> Option<TokenPublicKey> {
        self.keys.remove(kid)
    }

    /// The key with id `kid`.
    pub fn get(&self, kid: &str) -> Option<&TokenPublicKey> {
        self.keys.get(kid)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in key id order.
    pub fn iter(&self) -> impl Iterator<Item = &TokenPublicKey> {
        self.keys.values()
    }
}

impl FromIterator<TokenPublicKey> for VerifyingKeys {
    fn from_iter<I: IntoIterator<Item = TokenPublicKey>>(iter: I) -> Self {
        VerifyingKeys { keys: iter.into_iter().map(|key| (key.kid.clone(), key)).collect() }
    }
}

impl Extend<TokenPublicKey> for VerifyingKeys {
    fn extend<I: IntoIterator<Item = TokenPublicKey>>(&mut self, iter: I) {
        self.keys.extend(iter.into_iter().map(|key| (key.kid.clone(), key)));
    }
}
