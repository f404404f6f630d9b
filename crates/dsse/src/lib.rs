//! DSSE envelopes (<https://github.com/secure-systems-lab/dsse>), their Pre-Authentication
//! Encoding, in-toto Statements v1, and the Ed25519 and ECDSA P-256 keys that sign them.
//!
//! A spec leaf: it knows nothing of OCI, HTTP or storage. Signatures are verified over the PAE of
//! the payload bytes as received, never over a re-serialization; a `keyid` hint never selects a
//! key; each distinct key counts once.
//!
//! ```
//! use airlock_dsse::{
//!     Algorithm, Envelope, EnvelopeLimits, IN_TOTO_PAYLOAD_TYPE, PrivateKey, Statement, StatementLimits,
//!     StatementSubject,
//! };
//!
//! // A builder signs a statement about an artifact.
//! let builder = PrivateKey::generate(Algorithm::EcdsaP256Sha256)?;
//! let subject = StatementSubject {
//!     name: "app.tar".into(),
//!     digest: [("sha256".to_owned(), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".to_owned())].into(),
//! };
//! let statement = Statement::new(vec![subject], "https://slsa.dev/provenance/v1", &serde_json::json!({}));
//! let bytes = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_json(), &[&builder])?.to_json();
//!
//! // A verifier that trusts the builder's public key reads it back.
//! let trusted = builder.public_key().clone();
//! let envelope = Envelope::parse(&bytes, &EnvelopeLimits::default())?;
//! let (statement, signers) = envelope.verify_in_toto(&[&trusted], 1, &StatementLimits::default())?;
//! assert_eq!(signers[0].keyid(), trusted.keyid());
//! assert_eq!(statement.sha256_subjects().collect::<Vec<_>>(), ["5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything that reads untrusted input is bounded by a named constant ([`ENVELOPE_MAX_BYTES`],
//! [`MAX_SIGNATURES`], [`MAX_SUBJECTS`], ...), refuses JSON objects that repeat a member, and never
//! panics.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod envelope;
mod json;
mod key;
mod key_file;
mod private;
mod statement;

pub use envelope::{
    DSSE_MEDIA_TYPE, ENVELOPE_MAX_BYTES, ENVELOPE_MAX_DEPTH, Envelope, EnvelopeError, EnvelopeLimits,
    EnvelopeSignature, IN_TOTO_PAYLOAD_TYPE, MAX_SIGNATURES, pae,
};
pub use key::{Algorithm, KeyError, KeyId, MAX_KEY_BYTES, PublicKey, SignatureError};
pub use key_file::{KEY_FILE_MAX_BYTES, KeyFileError, read_private_key, read_public_key};
pub use private::PrivateKey;
pub use statement::{
    MAX_DIGESTS_PER_SUBJECT, MAX_SUBJECTS, STATEMENT_MAX_BYTES, STATEMENT_MAX_DEPTH, STATEMENT_V0_1, STATEMENT_V1,
    Statement, StatementError, StatementLimits, StatementSubject,
};
