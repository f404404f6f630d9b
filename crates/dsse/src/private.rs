//! Private keys that sign DSSE envelopes: generated from the operating system's randomness or
//! read from unencrypted PKCS#8 PEM, the format `openssl genpkey` and securesystemslib write.

use std::fmt;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, KeypairBytes};
use pkcs8::der::pem::LineEnding;
use pkcs8::der::zeroize::Zeroize as _;
use pkcs8::{PrivateKeyInfo, SecretDocument};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};

use crate::key::{
    Algorithm, KeyError, MAX_KEY_BYTES, OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, PublicKey, SignatureError,
};
use airlock_model::echo::echo_short as echo;

/// The PEM label of unencrypted PKCS#8 (RFC 7468 §10).
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

/// The secret half.
enum Secret {
    Ed25519(SigningKey),
    /// ring cannot export a key pair, so the PKCS#8 it was read from is kept (zeroized on drop).
    P256 {
        pair: EcdsaKeyPair,
        pkcs8: SecretDocument,
    },
}

/// A private key that signs DSSE envelopes. Its `Debug` shows the algorithm and key id only.
pub struct PrivateKey {
    secret: Secret,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.public.algorithm())
            .field("keyid", &self.public.keyid().as_str())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A new key from the operating system's randomness (ring's `SystemRandom`).
    pub fn generate(algorithm: Algorithm) -> Result<PrivateKey, KeyError> {
        let rng = SystemRandom::new();
        match algorithm {
            Algorithm::Ed25519 => {
                let mut seed = [0u8; 32];
                rng.fill(&mut seed).map_err(|_| KeyError::Randomness)?;
                let key = PrivateKey::from_ed25519_seed(&seed);
                seed.zeroize();
                Ok(key)
            }
            Algorithm::EcdsaP256Sha256 => {
                let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| KeyError::Randomness)?;
                PrivateKey::from_pkcs8_der(document.as_ref())
            }
        }
    }

    /// The Ed25519 key with the given RFC 8032 32-byte secret (the "seed").
    pub fn from_ed25519_seed(seed: &[u8; 32]) -> PrivateKey {
        let key = SigningKey::from_bytes(seed);
        let public = PublicKey::ed25519(key.verifying_key());
        PrivateKey { secret: Secret::Ed25519(key), public }
    }

    /// Reads an unencrypted PKCS#8 `PRIVATE KEY` PEM (RFC 5958) holding an Ed25519 key (RFC 8410)
    /// or a P-256 key (RFC 5915; ring requires the public key inside, as OpenSSL writes it).
    pub fn from_pkcs8_pem(pem: &str) -> Result<PrivateKey, KeyError> {
        if pem.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLarge { len: pem.len(), max: MAX_KEY_BYTES });
        }
        let (label, document) = SecretDocument::from_pem(pem.trim()).map_err(|source| KeyError::Pem { source })?;
        match label {
            PRIVATE_KEY_LABEL => PrivateKey::from_pkcs8_der(document.as_bytes()),
            "ENCRYPTED PRIVATE KEY" => Err(KeyError::EncryptedPrivateKey),
            "EC PRIVATE KEY" | "RSA PRIVATE KEY" | "OPENSSH PRIVATE KEY" => {
                Err(KeyError::LegacyPrivateKey { label: label.to_owned() })
            }
            other => Err(KeyError::PemLabel { found: echo(other), expected: PRIVATE_KEY_LABEL }),
        }
    }

    /// Reads an unencrypted PKCS#8 `PrivateKeyInfo` in DER; see [`PrivateKey::from_pkcs8_pem`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        if der.len() > MAX_KEY_BYTES {
            return Err(KeyError::TooLarge { len: der.len(), max: MAX_KEY_BYTES });
        }
        let info = PrivateKeyInfo::try_from(der).map_err(|source| KeyError::Pkcs8 { source })?;
        match info.algorithm.oid {
            OID_ED25519 => {
                let algorithm = Algorithm::Ed25519;
                // Checks the public key against the private one when the document has both.
                let key = SigningKey::from_pkcs8_der(der)
                    .map_err(|e| KeyError::PrivateKeyRejected { algorithm, reason: e.to_string() })?;
                let public = PublicKey::ed25519(key.verifying_key());
                Ok(PrivateKey { secret: Secret::Ed25519(key), public })
            }
            OID_EC_PUBLIC_KEY => {
                let algorithm = Algorithm::EcdsaP256Sha256;
                match info.algorithm.parameters_oid() {
                    Ok(OID_P256) => {}
                    Ok(other) => return Err(KeyError::UnsupportedCurve { oid: other.to_string() }),
                    Err(_) => return Err(KeyError::NoNamedCurve),
                }
                // ring checks that the private scalar and the embedded public point agree.
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &SystemRandom::new())
                    .map_err(|e| KeyError::PrivateKeyRejected { algorithm, reason: e.to_string() })?;
                let point = pair.public_key().as_ref().try_into().map_err(|_| KeyError::InvalidPoint { algorithm })?;
                let pkcs8 =
                    SecretDocument::try_from(der).map_err(|source| KeyError::Pkcs8 { source: source.into() })?;
                Ok(PrivateKey { secret: Secret::P256 { pair, pkcs8 }, public: PublicKey::p256(point) })
            }
            other => Err(KeyError::UnsupportedAlgorithm { oid: other.to_string() }),
        }
    }

    /// The key as an unencrypted PKCS#8 `PRIVATE KEY` PEM. Keep it secret.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        let pem = match &self.secret {
            // PKCS#8 v1 without the public key, as OpenSSL writes it (RFC 8410 §7): pyca/cryptography,
            // and so securesystemslib, refuse the v2 document ed25519-dalek would write.
            Secret::Ed25519(key) => {
                KeypairBytes { secret_key: key.to_bytes(), public_key: None }.to_pkcs8_pem(LineEnding::LF)
            }
            Secret::P256 { pkcs8, .. } => pkcs8.to_pem(PRIVATE_KEY_LABEL, LineEnding::LF).map_err(pkcs8::Error::from),
        };
        pem.map(|pem| pem.as_str().to_owned()).map_err(|source| KeyError::Pkcs8Encode { source })
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message`: Ed25519 (deterministic), or ECDSA P-256 over SHA-256(`message`) with a
    /// random nonce, as an ASN.1 DER signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        match &self.secret {
            Secret::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                Ok(key.sign(message).to_bytes().to_vec())
            }
            Secret::P256 { pair, .. } => pair
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| SignatureError::Signing { keyid: self.public.keyid().clone() }),
        }
    }
}
