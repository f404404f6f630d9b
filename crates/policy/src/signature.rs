//! Signed policy bundles: a bundle is code, so it loads only under the signature of the trust
//! root's policy signers (TUF's targets role, for Rego).
//!
//! # The manifest
//!
//! A bundle's manifest is RFC 8785 canonical JSON naming every bundle file by its SHA-256:
//!
//! ```json
//! {"_type":"airlock-policy-bundle","digest":"sha256:<bundle digest>",
//!  "files":{"airlock.rego":"sha256:<hex>","data.json":"sha256:<hex>"}}
//! ```
//!
//! # The signature file
//!
//! [`SIGNATURE_FILE`] (`bundle.sig`) at the bundle's root holds one DSSE envelope whose payload
//! type is [`MANIFEST_PAYLOAD_TYPE`] and whose payload is the manifest's bytes, with one signature
//! per policy signer ([`sign_bundle`] adds them one after another). It is not a bundle file: the
//! bundle digest, the manifest and Rego never see it.
//!
//! # Verification ([`verify_bundle`])
//!
//! 1. The file is there, at most [`SIGNATURE_MAX_BYTES`], a DSSE envelope of at most
//!    [`SIGNATURE_MAX_SIGNATURES`] signatures.
//! 2. Its payload type is [`MANIFEST_PAYLOAD_TYPE`].
//! 3. Its payload is byte for byte the manifest of the files on disk now: a file changed, added
//!    or removed after signing makes it differ, and the error names the files.
//! 4. At least `threshold` distinct keys among the policy keys made a valid signature over the
//!    envelope's PAE (DSSE "Multi-signature Verification"; a key counts once, however often it
//!    signed or under whatever key id).

use std::collections::BTreeMap;

use airlock_dsse::{Envelope, EnvelopeLimits, KeyId, PrivateKey, PublicKey};
use airlock_model::Digest;
use airlock_model::echo::echo;

use crate::bundle::Bundle;

/// The name of a bundle's signature file, at its root.
pub const SIGNATURE_FILE: &str = "bundle.sig";
/// The DSSE payload type of a signed bundle manifest.
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.airlock.policy-bundle.v1+json";
/// The manifest's `_type`.
pub const MANIFEST_TYPE: &str = "airlock-policy-bundle";
/// Largest signature file read, in bytes.
pub const SIGNATURE_MAX_BYTES: usize = 256 * 1024;
/// Most signatures in a signature file; each may cost a verification per policy key.
pub const SIGNATURE_MAX_SIGNATURES: usize = 16;
/// Most file names one tampering error lists.
const CHANGES_SHOWN: usize = 5;

/// Why a bundle is not trusted. Each step of [`verify_bundle`] has its own variant; messages say
/// how to sign the bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleTrustError {
    #[error(
        "it is unsigned (no `{SIGNATURE_FILE}`); {threshold} of the trust root's policy signers must sign it with `airlock policy sign DIR --key KEY`"
    )]
    Unsigned { threshold: u32 },
    #[error(
        "its `{SIGNATURE_FILE}` is {size} bytes; the limit is {max}; sign the bundle again with `airlock policy sign`"
    )]
    SignatureTooLarge { size: usize, max: usize },
    #[error(
        "its `{SIGNATURE_FILE}` is not a DSSE envelope: {reason}; delete it and sign again with `airlock policy sign`"
    )]
    SignatureMalformed { reason: String },
    #[error(
        "its `{SIGNATURE_FILE}` has payload type `{found}`, not `{MANIFEST_PAYLOAD_TYPE}`; delete it and sign again with `airlock policy sign`"
    )]
    WrongPayloadType { found: String },
    #[error(
        "it changed after it was signed ({changes}); review the change, then {threshold} of the trust root's policy signers sign it again with `airlock policy sign DIR --key KEY`"
    )]
    Tampered { changes: String, threshold: u32 },
    #[error(
        "it is signed by {verified} distinct policy signer key(s) of the trust root in force and needs {threshold}; more policy signers add theirs with `airlock policy sign DIR --key KEY`"
    )]
    UnderThreshold { verified: usize, threshold: u32 },
}

/// Why [`sign_bundle`] could not sign.
#[derive(Debug, thiserror::Error)]
pub enum BundleSignError {
    #[error("the existing `{SIGNATURE_FILE}` is unreadable: {0}; delete it and collect the signatures again")]
    Existing(String),
    #[error(
        "the existing `{SIGNATURE_FILE}` signs other contents ({changes}); delete it and collect every signature again over the bundle as it is now"
    )]
    Stale { changes: String },
    #[error("key `{keyid}` has already signed this bundle")]
    AlreadySigned { keyid: KeyId },
    #[error("`{SIGNATURE_FILE}` already holds {max} signatures, the most it may hold")]
    TooManySignatures { max: usize },
    #[error("cannot sign: {0}")]
    Sign(String),
}

impl Bundle {
    /// The bundle's manifest: canonical JSON naming each file by its SHA-256 (see the module
    /// documentation). This is what policy signers sign.
    pub fn manifest(&self) -> Vec<u8> {
        let files: serde_json::Map<String, serde_json::Value> =
            self.files().map(|(path, bytes, _)| (path.to_owned(), Digest::of(bytes).to_string().into())).collect();
        let value = serde_json::json!({
            "_type": MANIFEST_TYPE,
            "digest": self.digest().as_str(),
            "files": files,
        });
        // Strings only: canonical by construction.
        airlock_model::jcs::canonicalize(&value).unwrap_or_default()
    }
}

/// What differs between the files a signed manifest names and the files of `bundle`, for an
/// error message: `file `a.rego` changed`, `file `b.rego` added`, `file `c.rego` removed`.
fn changes(bundle: &Bundle, signed_payload: &[u8]) -> String {
    let signed: BTreeMap<String, String> = serde_json::from_slice::<serde_json::Value>(signed_payload)
        .ok()
        .and_then(|v| v.get("files").and_then(|f| f.as_object()).cloned())
        .map(|files| files.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default();
    let now: BTreeMap<String, String> =
        bundle.files().map(|(path, bytes, _)| (path.to_owned(), Digest::of(bytes).to_string())).collect();
    let mut out = Vec::new();
    for (path, digest) in &now {
        match signed.get(path) {
            None => out.push(format!("file `{}` added", echo(path))),
            Some(d) if d != digest => out.push(format!("file `{}` changed", echo(path))),
            Some(_) => {}
        }
    }
    for path in signed.keys().filter(|p| !now.contains_key(*p)) {
        out.push(format!("file `{}` removed", echo(path)));
    }
    if out.is_empty() {
        return "the signed manifest differs from the bundle's".to_owned();
    }
    let more = out.len().saturating_sub(CHANGES_SHOWN);
    out.truncate(CHANGES_SHOWN);
    if more > 0 {
        out.push(format!("{more} more"));
    }
    out.join(", ")
}

fn parse_envelope(bytes: &[u8]) -> Result<Envelope, String> {
    let limits = EnvelopeLimits { max_bytes: SIGNATURE_MAX_BYTES, max_signatures: SIGNATURE_MAX_SIGNATURES };
    Envelope::parse(bytes, &limits).map_err(|e| e.to_string())
}

/// Checks that `bundle`'s signature file signs its files as they are, by at least `threshold`
/// distinct keys among `keys` (the trust root's policy keys in force). Returns the key ids that
/// signed, in the order of `keys`. The steps are numbered in the module documentation.
pub fn verify_bundle(bundle: &Bundle, keys: &[PublicKey], threshold: u32) -> Result<Vec<KeyId>, BundleTrustError> {
    // 1. A signature file, bounded, that is a DSSE envelope.
    let Some(bytes) = bundle.signature() else {
        return Err(BundleTrustError::Unsigned { threshold });
    };
    if bytes.len() > SIGNATURE_MAX_BYTES {
        return Err(BundleTrustError::SignatureTooLarge { size: bytes.len(), max: SIGNATURE_MAX_BYTES });
    }
    let envelope = parse_envelope(bytes).map_err(|reason| BundleTrustError::SignatureMalformed { reason })?;
    // 2. The payload type says what was signed.
    if envelope.payload_type != MANIFEST_PAYLOAD_TYPE {
        return Err(BundleTrustError::WrongPayloadType { found: echo(&envelope.payload_type) });
    }
    // 3. What was signed is these files, byte for byte.
    if envelope.payload != bundle.manifest() {
        return Err(BundleTrustError::Tampered { changes: changes(bundle, &envelope.payload), threshold });
    }
    // 4. A threshold of distinct policy keys signed it.
    let candidates: Vec<&PublicKey> = keys.iter().collect();
    let verified = envelope.verified_keys(&candidates);
    let enough = usize::try_from(threshold).is_ok_and(|t| t > 0 && verified.len() >= t);
    if !enough {
        return Err(BundleTrustError::UnderThreshold { verified: verified.len(), threshold });
    }
    Ok(verified.into_iter().map(|k| k.keyid().clone()).collect())
}

/// The signature file for `bundle` with `key`'s signature added: a new file when `existing` is
/// `None`, else `existing` (which must sign the bundle as it is now) plus one signature.
pub fn sign_bundle(bundle: &Bundle, existing: Option<&[u8]>, key: &PrivateKey) -> Result<Vec<u8>, BundleSignError> {
    let manifest = bundle.manifest();
    let Some(existing) = existing else {
        let envelope = Envelope::sign(MANIFEST_PAYLOAD_TYPE, &manifest, &[key])
            .map_err(|e| BundleSignError::Sign(e.to_string()))?;
        return Ok(envelope.to_json());
    };
    let mut envelope = parse_envelope(existing).map_err(BundleSignError::Existing)?;
    if envelope.payload_type != MANIFEST_PAYLOAD_TYPE {
        return Err(BundleSignError::Existing(format!("payload type `{}`", echo(&envelope.payload_type))));
    }
    if envelope.payload != manifest {
        return Err(BundleSignError::Stale { changes: changes(bundle, &envelope.payload) });
    }
    let public = key.public_key();
    if !envelope.verified_keys(&[public]).is_empty() {
        return Err(BundleSignError::AlreadySigned { keyid: public.keyid().clone() });
    }
    if envelope.signatures.len() >= SIGNATURE_MAX_SIGNATURES {
        return Err(BundleSignError::TooManySignatures { max: SIGNATURE_MAX_SIGNATURES });
    }
    let one =
        Envelope::sign(MANIFEST_PAYLOAD_TYPE, &manifest, &[key]).map_err(|e| BundleSignError::Sign(e.to_string()))?;
    envelope.signatures.extend(one.signatures);
    Ok(envelope.to_json())
}
