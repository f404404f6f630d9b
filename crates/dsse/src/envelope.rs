//! DSSE v1 (<https://github.com/secure-systems-lab/dsse>): the JSON envelope, its
//! Pre-Authentication Encoding, and verification over the payload bytes as received.
//!
//! ```text
//! {"payloadType": "<type>", "payload": "<base64 body>", "signatures": [{"keyid": "<hint>", "sig": "<base64>"}]}
//! PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//! ```

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::json::{self, Bounded, BoundedSeq, StrSeed, StrictError};
use crate::key::{PublicKey, SignatureError};
use crate::private::PrivateKey;
use crate::statement::{Statement, StatementError, StatementLimits};
use airlock_model::echo::echo_short as echo;

/// The payload type of an in-toto attestation (in-toto attestation spec, "Envelope").
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The media type of a DSSE JSON envelope, as an OCI layer or artifact type.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// Largest envelope accepted, in bytes (4 MiB, the largest manifest the registry accepts).
pub const ENVELOPE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most signatures in one envelope. A threshold of trusted keys rarely needs more than a few;
/// every extra signature costs one verification per trusted key.
pub const MAX_SIGNATURES: usize = 16;
/// Deepest JSON nesting in an envelope. The envelope itself needs 3 levels; the rest is room for
/// unsigned extension members (DSSE 1.1's signature `extension`), which are read and ignored.
pub const ENVELOPE_MAX_DEPTH: usize = 16;

/// Bounds on the work one envelope can cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvelopeLimits {
    /// Largest envelope, in bytes ([`ENVELOPE_MAX_BYTES`] by default).
    pub max_bytes: usize,
    /// Most signatures ([`MAX_SIGNATURES`] by default).
    pub max_signatures: usize,
}

impl Default for EnvelopeLimits {
    fn default() -> Self {
        EnvelopeLimits { max_bytes: ENVELOPE_MAX_BYTES, max_signatures: MAX_SIGNATURES }
    }
}

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is {len} bytes; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("envelope nests deeper than {max} levels at `{path}`")]
    TooDeep { path: String, max: usize },
    #[error("envelope repeats member `{member}` in the object at `{path}`; a member may appear once")]
    DuplicateMember { member: String, path: String },
    #[error("envelope is not a dsse json envelope: {source}")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error("envelope has no `{member}` member")]
    MissingMember { member: &'static str },
    #[error("envelope has no signatures; a dsse envelope needs at least one")]
    NoSignatures,
    #[error("envelope has {count} signatures; the limit is {max}")]
    TooManySignatures { count: usize, max: usize },
    #[error("envelope member `{member}` is not base64 (standard or url-safe, with padding)")]
    Base64 { member: String },
    #[error("envelope signature {index} is empty")]
    EmptySignature { index: usize },
    #[error("envelope payload type is `{payload_type}`; an in-toto attestation has `{IN_TOTO_PAYLOAD_TYPE}`")]
    WrongPayloadType { payload_type: String },
    #[error("envelope payload is not an in-toto statement: {0}")]
    Statement(#[from] StatementError),
    #[error("a threshold of 0 would accept an envelope that no trusted key signed")]
    ZeroThreshold,
    #[error("envelope is signed by {verified} of the trusted keys; {threshold} required (trusted: {trusted})")]
    ThresholdNotMet { verified: usize, threshold: usize, trusted: String },
}

/// One signature of an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// The signer's hint of which key made the signature: unauthenticated, and never used to pick
    /// a trusted key. An empty `keyid` reads as `None`.
    pub keyid: Option<String>,
    /// The signature bytes, base64-decoded.
    pub sig: Vec<u8>,
}

/// A DSSE envelope, its payload decoded but otherwise kept as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    /// The payload bytes exactly as received (base64-decoded): what the signatures cover.
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
}

/// DSSE protocol, "Signature Definition": `PAE(type, body)`, the bytes a signature covers.
/// `LEN` is the byte length (not the character count) in ASCII decimal without leading zeros.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let parts: [&[u8]; 8] =
        [b"DSSEv1 ", type_len.as_bytes(), b" ", payload_type.as_bytes(), b" ", body_len.as_bytes(), b" ", payload];
    let capacity = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    let mut out = Vec::with_capacity(capacity);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

impl Envelope {
    /// Parses a DSSE JSON envelope from untrusted bytes, strictly:
    ///
    /// 1. at most `limits.max_bytes`, nested at most [`ENVELOPE_MAX_DEPTH`] levels;
    /// 2. valid JSON with no member twice in any object (serde_json would keep the last silently;
    ///    another parser may keep the first);
    /// 3. an object with `payloadType` (string), `payload` (string) and `signatures` (array of
    ///    objects with `sig` and an optional `keyid`); other members are unauthenticated and
    ///    ignored;
    /// 4. at least one and at most `limits.max_signatures` signatures, counted while reading;
    /// 5. `payload` and each `sig` in standard or URL-safe base64 with padding (DSSE protocol:
    ///    "verifiers MUST accept either"), one alphabet per string.
    ///
    /// Signatures are not verified here; see [`Envelope::verified_keys`].
    pub fn parse(bytes: &[u8], limits: &EnvelopeLimits) -> Result<Envelope, EnvelopeError> {
        // 1. Bound the work before parsing.
        if bytes.len() > limits.max_bytes {
            return Err(EnvelopeError::TooLarge { len: bytes.len(), max: limits.max_bytes });
        }
        // 1, 2. Depth and duplicate members, in one walk over the whole document.
        json::check_strict(bytes, ENVELOPE_MAX_DEPTH).map_err(|e| match e {
            StrictError::Duplicate { member, at } => {
                EnvelopeError::DuplicateMember { member, path: at.json_path(json::PATH_MAX_CHARS) }
            }
            StrictError::TooDeep { at } => {
                EnvelopeError::TooDeep { path: at.json_path(json::PATH_MAX_CHARS), max: ENVELOPE_MAX_DEPTH }
            }
            StrictError::Syntax(source) => EnvelopeError::Json { source },
        })?;
        // 3, 4. The shape, with the signature count bounded while reading.
        let wire = json::from_slice_seed(bytes, WireEnvelopeSeed { max_signatures: limits.max_signatures })
            .map_err(|source| EnvelopeError::Json { source })?;
        let payload_type = wire.payload_type.ok_or(EnvelopeError::MissingMember { member: "payloadType" })?;
        let payload = wire.payload.ok_or(EnvelopeError::MissingMember { member: "payload" })?;
        let signatures = match wire.signatures.ok_or(EnvelopeError::MissingMember { member: "signatures" })? {
            Bounded::Within(signatures) => signatures,
            Bounded::Exceeded { count } => {
                return Err(EnvelopeError::TooManySignatures { count, max: limits.max_signatures });
            }
        };
        if signatures.is_empty() {
            return Err(EnvelopeError::NoSignatures);
        }
        // 5. Decode.
        let payload = decode_base64(&payload).ok_or_else(|| EnvelopeError::Base64 { member: "payload".to_owned() })?;
        let signatures = signatures
            .into_iter()
            .enumerate()
            .map(|(index, s)| {
                let sig = decode_base64(&s.sig)
                    .ok_or_else(|| EnvelopeError::Base64 { member: format!("signatures[{index}].sig") })?;
                if sig.is_empty() {
                    return Err(EnvelopeError::EmptySignature { index });
                }
                Ok(EnvelopeSignature { keyid: s.keyid.filter(|k| !k.is_empty()), sig })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Envelope { payload_type, payload, signatures })
    }

    /// The PAE of this envelope's payload type and payload bytes: what its signatures cover.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Signs `payload` as `payload_type` with each key in turn; each signature's `keyid` hint is
    /// the signing key's [`KeyId`](crate::KeyId).
    pub fn sign(payload_type: &str, payload: &[u8], keys: &[&PrivateKey]) -> Result<Envelope, SignatureError> {
        if keys.is_empty() {
            return Err(SignatureError::NoSigners);
        }
        let message = pae(payload_type, payload);
        let signatures = keys
            .iter()
            .map(|key| {
                let sig = key.sign(&message)?;
                Ok(EnvelopeSignature { keyid: Some(key.public_key().keyid().to_string()), sig })
            })
            .collect::<Result<Vec<_>, SignatureError>>()?;
        Ok(Envelope { payload_type: payload_type.to_owned(), payload: payload.to_vec(), signatures })
    }

    /// The envelope as compact JSON: `payloadType`, `payload` (standard base64), `signatures`
    /// (`keyid`, empty when there is none, and `sig`). The `keyid` member is always written
    /// because securesystemslib requires it. For envelopes Airlock makes; a received envelope is
    /// stored and forwarded as the bytes received, never re-rendered.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.payload.len() / 3).saturating_mul(4).saturating_add(256));
        out.extend_from_slice(b"{\"payloadType\":");
        json::write_string(&mut out, &self.payload_type);
        out.extend_from_slice(b",\"payload\":\"");
        out.extend_from_slice(STANDARD.encode(&self.payload).as_bytes());
        out.extend_from_slice(b"\",\"signatures\":[");
        for (i, signature) in self.signatures.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"keyid\":");
            json::write_string(&mut out, signature.keyid.as_deref().unwrap_or_default());
            out.extend_from_slice(b",\"sig\":\"");
            out.extend_from_slice(STANDARD.encode(&signature.sig).as_bytes());
            out.extend_from_slice(b"\"}");
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// The keys among `keys` that made a valid signature over this envelope's PAE, in the order of
    /// `keys`, each distinct key (by [`PublicKey::fingerprint`]) at most once, however many times
    /// it signed or was listed.
    ///
    /// DSSE protocol, "Multi-signature Verification". A `keyid` hint never selects a key: every
    /// signature is tried against every key whose algorithm could have made it, and the hint only
    /// decides which signatures are tried first.
    pub fn verified_keys<'k>(&self, keys: &[&'k PublicKey]) -> Vec<&'k PublicKey> {
        let message = self.pae();
        let mut seen = HashSet::new();
        let mut verified = Vec::new();
        for &key in keys {
            if !seen.insert(key.fingerprint()) {
                continue;
            }
            let hinted = |s: &&EnvelopeSignature| s.keyid.as_deref() == Some(key.keyid().as_str());
            let mut candidates =
                self.signatures.iter().filter(hinted).chain(self.signatures.iter().filter(|s| !hinted(s)));
            if candidates.any(|s| key.may_have_made(&s.sig) && key.verify(&message, &s.sig).is_ok()) {
                verified.push(key);
            }
        }
        verified
    }

    /// The payload as an in-toto Statement, refused unless the payload type is
    /// [`IN_TOTO_PAYLOAD_TYPE`]. This checks no signature: call it after
    /// [`Envelope::verified_keys`], or use [`Envelope::verify_in_toto`].
    pub fn in_toto_statement(&self, limits: &StatementLimits) -> Result<Statement, EnvelopeError> {
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(EnvelopeError::WrongPayloadType { payload_type: echo(&self.payload_type) });
        }
        Ok(Statement::parse(&self.payload, limits)?)
    }

    /// Verifies an in-toto attestation in the order of the DSSE protocol ("To verify"):
    ///
    /// 1. at least `threshold` distinct keys of `keys` signed the PAE ([`Envelope::verified_keys`]);
    /// 2. the payload type is [`IN_TOTO_PAYLOAD_TYPE`];
    /// 3. the payload parses as a Statement.
    ///
    /// Returns the statement and the keys that signed it.
    pub fn verify_in_toto<'k>(
        &self,
        keys: &[&'k PublicKey],
        threshold: usize,
        limits: &StatementLimits,
    ) -> Result<(Statement, Vec<&'k PublicKey>), EnvelopeError> {
        if threshold == 0 {
            return Err(EnvelopeError::ZeroThreshold);
        }
        // 1. Signatures first: nothing in an unverified payload is read.
        let verified = self.verified_keys(keys);
        if verified.len() < threshold {
            let trusted = keys.iter().map(|k| format!("`{}`", k.keyid())).collect::<Vec<_>>().join(", ");
            return Err(EnvelopeError::ThresholdNotMet { verified: verified.len(), threshold, trusted });
        }
        // 2, 3. Then the payload type and the payload.
        let statement = self.in_toto_statement(limits)?;
        Ok((statement, verified))
    }
}

/// Standard base64, or else URL-safe base64, both padded and canonical. A string without `+`,
/// `/`, `-` or `_` decodes the same in both.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text)).ok()
}

/// The envelope's members as read, before they are checked.
struct WireEnvelope<'de> {
    payload_type: Option<String>,
    payload: Option<Cow<'de, str>>,
    signatures: Option<Bounded<Vec<WireSignature<'de>>>>,
}

#[derive(serde::Deserialize)]
struct WireSignature<'a> {
    keyid: Option<String>,
    #[serde(borrow)]
    sig: Cow<'a, str>,
}

/// Reads the top-level object, bounding the signatures array while reading it.
struct WireEnvelopeSeed {
    max_signatures: usize,
}

impl<'de> DeserializeSeed<'de> for WireEnvelopeSeed {
    type Value = WireEnvelope<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<WireEnvelope<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WireEnvelopeSeed {
    type Value = WireEnvelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a dsse envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireEnvelope<'de>, A::Error> {
        // Duplicates were refused by the strict walk, so each member is read at most once.
        let mut wire = WireEnvelope { payload_type: None, payload: None, signatures: None };
        while let Some(member) = map.next_key_seed(StrSeed)? {
            match member.as_ref() {
                "payloadType" => wire.payload_type = Some(map.next_value()?),
                "payload" => wire.payload = Some(map.next_value_seed(StrSeed)?),
                "signatures" => {
                    let seed = BoundedSeq { max: self.max_signatures, element: json::plain::<WireSignature>() };
                    wire.signatures = Some(map.next_value_seed(seed)?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(wire)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_protocol_example() {
        // DSSE protocol.md, "Test Vectors".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn pae_counts_bytes_not_characters() {
        assert_eq!(pae("ä", b""), "DSSEv1 2 ä 0 ".as_bytes());
    }

    #[test]
    fn base64_accepts_either_alphabet_but_not_both() {
        assert_eq!(decode_base64("-_-_Pj8=").unwrap(), [0xfb, 0xff, 0xbf, 0x3e, 0x3f]);
        assert_eq!(decode_base64("+/+/Pj8=").unwrap(), [0xfb, 0xff, 0xbf, 0x3e, 0x3f]);
        assert!(decode_base64("+_+/Pj8=").is_none());
        assert!(decode_base64("aGVsbG8").is_none(), "unpadded");
        assert!(decode_base64("aGVsbG8=\n").is_none(), "whitespace");
    }
}
