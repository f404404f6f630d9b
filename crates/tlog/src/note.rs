//! C2SP signed notes (<https://c2sp.org/signed-note>): text signed by one or more Ed25519 keys, in
//! the format of Go's `golang.org/x/mod/sumdb/note`, the reference implementation.
//!
//! ```text
//! <text, ending in a newline>
//!
//! — <key name> base64(4-byte key id || signature)
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use airlock_model::echo::echo_short as echo;

/// Largest signed note accepted, in bytes. Room for the 16 signatures the spec requires a verifier
/// to accept even when they are post-quantum ones of nearly 5 kB.
pub const MAX_NOTE_BYTES: usize = 256 * 1024;
/// Most lines in a signed note, text and signatures together.
pub const MAX_NOTE_LINES: usize = 1024;
/// Longest line in a signed note, in bytes, without its newline.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Most signature lines in a signed note (Go's `note.Open` stops at the same number).
pub const MAX_SIGNATURES: usize = 100;
/// Longest verifier or private key text accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The signature type byte of Ed25519 (signed-note, "Signature types").
const ALG_ED25519: u8 = 0x01;
/// Every signature line starts with an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Every private key starts with this, so it is never mistaken for a verifier key.
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Why a note, a key or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note is {len} bytes; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("note is not valid UTF-8 (at byte {offset})")]
    NotUtf8 { offset: usize },
    #[error("note line {line} contains control character `{character}`; only newline may appear")]
    ControlCharacter { line: usize, character: String },
    #[error("note has more than {max} lines")]
    TooManyLines { max: usize },
    #[error("note line {line} is longer than {max} bytes")]
    LineTooLong { line: usize, max: usize },
    #[error("note has no empty line between its text and its signatures")]
    MissingBlankLine,
    #[error("note has no signature lines after its last empty line")]
    NoSignatures,
    #[error("note does not end in a newline")]
    MissingFinalNewline,
    #[error(
        "note line {line} is not a signature line; every line after the last empty one is `— <key name> <base64 signature>`"
    )]
    NotASignatureLine { line: usize },
    #[error("note line {line} is signed by key name `{name}`; a key name is non-empty, with no spaces and no `+`")]
    SignatureKeyName { line: usize, name: String },
    #[error("note line {line} has a signature that is not standard base64")]
    SignatureBase64 { line: usize },
    #[error("note line {line} has a {len}-byte signature; a signature is a 4-byte key id and at least one more byte")]
    SignatureTooShort { line: usize, len: usize },
    #[error("note has more than {max} signatures")]
    TooManySignatures { max: usize },
    #[error("two different trusted keys are named `{name}` with key id `{key_hash:08x}`; remove one")]
    AmbiguousVerifier { name: String, key_hash: u32 },
    #[error(
        "signature by trusted key `{name}+{key_hash:08x}` does not verify; the note was altered or signed by another key"
    )]
    InvalidSignature { name: String, key_hash: u32 },
    #[error("note has no signature by a trusted key (trusted: {trusted})")]
    NotVerified { trusted: String },
    #[error("note text does not end in a newline")]
    TextMissingNewline,
    #[error("a note needs at least one signer")]
    NoSigners,
    #[error("key name `{name}` is invalid: a key name is non-empty, with no spaces and no `+`")]
    KeyName { name: String },
    #[error("verifier key `{key}` is malformed; write it as `<name>+<8 hex digit key id>+<base64 key>`")]
    VerifierKeyFormat { key: String },
    #[error("private key is malformed; write it as `PRIVATE+KEY+<name>+<8 hex digit key id>+<base64 key>`")]
    PrivateKeyFormat,
    #[error("key `{name}` states key id `{stated:08x}` but its key has id `{computed:08x}`")]
    KeyIdMismatch { name: String, stated: u32, computed: u32 },
    #[error("key `{name}` uses signature type {algorithm}; only Ed25519 (type 1) is supported")]
    KeyAlgorithm { name: String, algorithm: u8 },
    #[error("key `{name}` is {len} bytes; an Ed25519 key is 32")]
    KeyLength { name: String, len: usize },
    #[error("key `{name}` is not a canonical Ed25519 public key")]
    InvalidPublicKey { name: String },
    #[error("key `{name}` is a small-order Ed25519 public key, which verifies forged signatures")]
    WeakPublicKey { name: String },
}

/// signed-note, "Format": key names are non-empty and contain no Unicode spaces and no `+`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// signed-note, "Signatures": `SHA-256(key name || 0x0A || signature type || public key)[:4]`.
fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ALG_ED25519]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 4];
    for (to, from) in first.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    u32::from_be_bytes(first)
}

/// The parts of `<name>+<hash hex8>+<base64 key>`, decoded; `None` if the text is not of that
/// form. The base64 part may itself contain `+`, so the text is cut at the first two only.
fn split_key(text: &str) -> Option<(&str, u32, Vec<u8>)> {
    let (name, rest) = text.split_once('+')?;
    let (hash, key) = rest.split_once('+')?;
    if hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || !is_valid_name(name) {
        return None;
    }
    let hash = u32::from_str_radix(hash, 16).ok()?;
    let key = STANDARD.decode(key).ok()?;
    if key.is_empty() {
        return None;
    }
    Some((name, hash, key))
}

/// The 32-byte Ed25519 key after the signature type byte, or why there is none.
fn ed25519_bytes(name: &str, key: &[u8]) -> Result<[u8; 32], NoteError> {
    let Some((&algorithm, key)) = key.split_first() else {
        return Err(NoteError::KeyLength { name: name.to_owned(), len: 0 });
    };
    if algorithm != ALG_ED25519 {
        return Err(NoteError::KeyAlgorithm { name: name.to_owned(), algorithm });
    }
    <[u8; 32]>::try_from(key).map_err(|_| NoteError::KeyLength { name: name.to_owned(), len: key.len() })
}

/// Signs notes with one Ed25519 key (signature type `0x01`).
#[derive(Clone)]
pub struct Signer {
    name: String,
    key: SigningKey,
    key_hash: u32,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_hash", &format_args!("{:08x}", self.key_hash))
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer named `name` with the Ed25519 private key `seed` (RFC 8032's 32-byte secret).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::KeyName { name: echo(name) });
        }
        let key = SigningKey::from_bytes(&seed);
        let key_hash = key_id(name, &key.verifying_key());
        Ok(Signer { name: name.to_owned(), key, key_hash })
    }

    /// Parses `PRIVATE+KEY+<name>+<hash hex8>+<base64(0x01 || seed)>`, as Go's
    /// `note.GenerateKey` writes it. The key id must match the key. Errors never echo the key.
    pub fn from_private_key(text: &str) -> Result<Signer, NoteError> {
        let parts =
            if text.len() > MAX_KEY_BYTES { None } else { text.strip_prefix(PRIVATE_KEY_PREFIX).and_then(split_key) };
        let Some((name, stated, key)) = parts else {
            return Err(NoteError::PrivateKeyFormat);
        };
        let seed = ed25519_bytes(name, &key)?;
        let signer = Signer::from_seed(name, seed)?;
        if signer.key_hash != stated {
            return Err(NoteError::KeyIdMismatch { name: name.to_owned(), stated, computed: signer.key_hash });
        }
        Ok(signer)
    }

    /// The private key in the format [`Signer::from_private_key`] reads. Keep it secret.
    pub fn private_key(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        format!("{PRIVATE_KEY_PREFIX}{}+{:08x}+{}", self.name, self.key_hash, STANDARD.encode(key))
    }

    /// The verifier for this signer's signatures.
    pub fn verifier(&self) -> Verifier {
        Verifier { name: self.name.clone(), key: self.key.verifying_key(), key_hash: self.key_hash }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id: the first four bytes of `SHA-256(name || "\n" || 0x01 || public key)`.
    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    fn signature_line(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.key_hash.to_be_bytes().to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// Verifies one Ed25519 key's signatures on notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key: VerifyingKey,
    key_hash: u32,
}

impl Verifier {
    /// Parses `<name>+<hash hex8>+<base64(0x01 || public key)>`. The key id must match the key,
    /// and the key must be a canonical encoding of a point that is not of small order.
    pub fn parse(vkey: &str) -> Result<Verifier, NoteError> {
        let parts = if vkey.len() > MAX_KEY_BYTES { None } else { split_key(vkey) };
        let Some((name, stated, key)) = parts else {
            return Err(NoteError::VerifierKeyFormat { key: echo(vkey) });
        };
        let bytes = ed25519_bytes(name, &key)?;
        let invalid = || NoteError::InvalidPublicKey { name: name.to_owned() };
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| invalid())?;
        // A non-canonical encoding (y at least the field prime) decodes to the same point as the
        // canonical one; refuse it so that one key has one text.
        if key.to_edwards().compress().to_bytes() != bytes {
            return Err(invalid());
        }
        if key.is_weak() {
            return Err(NoteError::WeakPublicKey { name: name.to_owned() });
        }
        let computed = key_id(name, &key);
        if computed != stated {
            return Err(NoteError::KeyIdMismatch { name: name.to_owned(), stated, computed });
        }
        Ok(Verifier { name: name.to_owned(), key, key_hash: computed })
    }

    /// The verifier key text that [`Verifier::parse`] reads.
    pub fn to_vkey(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_hash, STANDARD.encode(key))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id: the first four bytes (big endian) of `SHA-256(name || "\n" || 0x01 || public key)`.
    pub fn key_hash(&self) -> u32 {
        self.key_hash
    }

    /// Whether `signature` is this key's Ed25519 signature of `message` (RFC 8032, with the
    /// strict checks: canonical `S`, and no small-order `R`).
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(message, &signature).is_ok()
    }
}

/// Checks what signed-note asks of a whole note, in one pass: no ASCII control character other
/// than newline, and the line limits of this crate.
fn check_lines(text: &str) -> Result<(), NoteError> {
    let mut line = 1usize;
    let mut line_start = 0usize;
    for (at, c) in text.char_indices() {
        if c == '\n' {
            line = line.saturating_add(1);
            line_start = at.saturating_add(1);
            if line > MAX_NOTE_LINES && at.saturating_add(1) < text.len() {
                return Err(NoteError::TooManyLines { max: MAX_NOTE_LINES });
            }
            continue;
        }
        if c < '\u{20}' {
            return Err(NoteError::ControlCharacter { line, character: c.escape_default().to_string() });
        }
        if at.saturating_sub(line_start) >= MAX_LINE_BYTES {
            return Err(NoteError::LineTooLong { line, max: MAX_LINE_BYTES });
        }
    }
    Ok(())
}

/// Signs `text` with every signer and returns the signed note.
///
/// `text` must end in a newline, and the signed note must be one that [`Note::parse`] accepts
/// (no control characters, within the limits).
pub fn sign(text: &str, signers: &[&Signer]) -> Result<String, NoteError> {
    if signers.is_empty() {
        return Err(NoteError::NoSigners);
    }
    if !text.ends_with('\n') {
        return Err(NoteError::TextMissingNewline);
    }
    let mut note = String::with_capacity(text.len().saturating_add(signers.len().saturating_mul(128)));
    note.push_str(text);
    note.push('\n');
    for signer in signers {
        note.push_str(&signer.signature_line(text));
    }
    // What we sign, we must be able to read back; this also applies every limit to the text.
    Note::parse(note.as_bytes())?;
    Ok(note)
}

/// One signature line of a note, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id, the signature's first four bytes.
    pub key_hash: u32,
    /// The signature proper, after the key id.
    pub signature: Vec<u8>,
}

/// A signed note, parsed but not yet verified: read [`Note::text`] only after [`Note::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, exactly as received, including its final newline.
    pub text: String,
    /// Every signature line, in order, duplicates included.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note strictly, per signed-note's "Format" section.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        // Bound the work before looking at the bytes.
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLong { len: bytes.len(), max: MAX_NOTE_BYTES });
        }
        // 1. "Signed notes MUST be valid UTF-8 and MUST NOT contain any ASCII control characters
        //    (those below U+0020) other than newline."
        let note = std::str::from_utf8(bytes).map_err(|e| NoteError::NotUtf8 { offset: e.valid_up_to() })?;
        check_lines(note)?;
        // 2. "The text is separated from the signatures by the last empty line in the note." The
        //    text "includes the final newline but not the separating blank line".
        let (before, signatures) = note.rsplit_once("\n\n").ok_or(NoteError::MissingBlankLine)?;
        let text = format!("{before}\n");
        // 3. "followed by one or more signature lines", each ending in a newline.
        if signatures.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let Some(signatures) = signatures.strip_suffix('\n') else {
            return Err(NoteError::MissingFinalNewline);
        };
        // Line numbers in errors count from the note's first line; the blank line follows the text.
        let first_line = text.matches('\n').count().saturating_add(2);
        let mut parsed = Vec::new();
        for (i, line) in signatures.split('\n').enumerate() {
            let line_number = first_line.saturating_add(i);
            if i >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures { max: MAX_SIGNATURES });
            }
            parsed.push(parse_signature_line(line, line_number)?);
        }
        Ok(Note { text, signatures: parsed })
    }

    /// Verifies the note's signatures by the trusted `verifiers` and returns the names of those
    /// whose signature verified, in the order of their first signature.
    ///
    /// signed-note, "Signatures": a signature by an unknown key (name and key id not both
    /// matching a verifier) is ignored; every signature line by a known key must verify, wherever
    /// it stands and however many good ones by the same key come before or after it, or the whole
    /// note is refused; at least one known key's signature must verify. (Go's `note.Open` looks
    /// only at a key's first line; a bad line hiding behind a good one is refused here.)
    pub fn verify(&self, verifiers: &[&Verifier]) -> Result<Vec<String>, NoteError> {
        let mut verified: Vec<(&str, u32)> = Vec::new();
        // `parse` allows at most MAX_SIGNATURES signatures; a caller-built note is bounded here.
        for signature in self.signatures.iter().take(MAX_SIGNATURES) {
            let mut known = verifiers.iter().filter(|v| v.name == signature.name && v.key_hash == signature.key_hash);
            let Some(verifier) = known.next() else { continue };
            if known.any(|other| other.key != verifier.key) {
                return Err(NoteError::AmbiguousVerifier {
                    name: signature.name.clone(),
                    key_hash: signature.key_hash,
                });
            }
            if !verifier.verifies(self.text.as_bytes(), &signature.signature) {
                return Err(NoteError::InvalidSignature { name: signature.name.clone(), key_hash: signature.key_hash });
            }
            if !verified.contains(&(verifier.name.as_str(), verifier.key_hash)) {
                verified.push((verifier.name.as_str(), verifier.key_hash));
            }
        }
        if verified.is_empty() {
            let trusted: Vec<String> = verifiers.iter().map(|v| format!("`{}+{:08x}`", v.name, v.key_hash)).collect();
            let trusted = if trusted.is_empty() { "none".to_owned() } else { trusted.join(", ") };
            return Err(NoteError::NotVerified { trusted });
        }
        Ok(verified.into_iter().map(|(name, _)| name.to_owned()).collect())
    }
}

/// signed-note, "Signatures": `— <key name> base64(32-bit key ID || signature)`.
fn parse_signature_line(line: &str, line_number: usize) -> Result<NoteSignature, NoteError> {
    let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
        return Err(NoteError::NotASignatureLine { line: line_number });
    };
    let Some((name, encoded)) = rest.split_once(' ') else {
        return Err(NoteError::NotASignatureLine { line: line_number });
    };
    if !is_valid_name(name) {
        return Err(NoteError::SignatureKeyName { line: line_number, name: echo(name) });
    }
    let blob = STANDARD.decode(encoded).map_err(|_| NoteError::SignatureBase64 { line: line_number })?;
    let Some((id, signature)) = blob.split_first_chunk::<4>() else {
        return Err(NoteError::SignatureTooShort { line: line_number, len: blob.len() });
    };
    if signature.is_empty() {
        return Err(NoteError::SignatureTooShort { line: line_number, len: blob.len() });
    }
    Ok(NoteSignature { name: name.to_owned(), key_hash: u32::from_be_bytes(*id), signature: signature.to_vec() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    // golang.org/x/mod/sumdb/note, note.go's package example and note_test.go.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIG: &str =
        "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str =
        "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    fn peter() -> Verifier {
        Verifier::parse(PETER_VKEY).unwrap()
    }

    fn enoch() -> Verifier {
        Verifier::parse(ENOCH_VKEY).unwrap()
    }

    fn check_open(note: &str, verifiers: &[&Verifier], expect: Expect) {
        let actual = match Note::parse(note.as_bytes()).and_then(|n| n.verify(verifiers)) {
            Ok(names) => format!("ok {}", names.join(",")),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    fn check_vkey(vkey: &str, expect: Expect) {
        let actual = match Verifier::parse(vkey) {
            Ok(v) => format!("ok {} {:08x}", v.name(), v.key_hash()),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    fn check_skey(skey: &str, expect: Expect) {
        let actual = match Signer::from_private_key(skey) {
            Ok(s) => format!("ok {} {:08x}", s.name(), s.key_hash()),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn go_example_verifies_and_signs_byte_for_byte() {
        let note = format!("{TEXT}\n{PETER_SIG}");
        let parsed = Note::parse(note.as_bytes()).unwrap();
        assert_eq!(parsed.text, TEXT);
        assert_eq!(parsed.verify(&[&peter()]).unwrap(), vec!["PeterNeumann"]);

        let signer = Signer::from_private_key(PETER_SKEY).unwrap();
        assert_eq!(signer.private_key(), PETER_SKEY);
        assert_eq!(signer.verifier(), peter());
        assert_eq!(signer.verifier().to_vkey(), PETER_VKEY);
        assert_eq!(sign(TEXT, &[&signer]).unwrap(), note);
    }

    #[test]
    fn open_cases() {
        let (p, e) = (peter(), enoch());
        let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        check_open(&both, &[&p], expect!["ok PeterNeumann"]);
        check_open(&both, &[&p, &e], expect!["ok PeterNeumann,EnochRoot"]);
        check_open(&both, &[], expect!["err note has no signature by a trusted key (trusted: none)"]);
        check_open(
            &format!("{TEXT}\n{ENOCH_SIG}"),
            &[&p],
            expect!["err note has no signature by a trusted key (trusted: `PeterNeumann+c74f20a3`)"],
        );
        check_open(&format!("{TEXT}\n{}", PETER_SIG.repeat(100)), &[&p], expect!["ok PeterNeumann"]);
        check_open(
            &format!("{TEXT}\n{}", PETER_SIG.repeat(101)),
            &[&p],
            expect!["err note has more than 100 signatures"],
        );
        let forged = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        check_open(
            &format!("{TEXT}\n{forged}"),
            &[&p],
            expect![
                "err signature by trusted key `PeterNeumann+c74f20a3` does not verify; the note was altered or signed by another key"
            ],
        );
        // Every line by a known key is checked: a bad one fails the note wherever it stands.
        check_open(
            &format!("{TEXT}\n{PETER_SIG}{forged}"),
            &[&p],
            expect![
                "err signature by trusted key `PeterNeumann+c74f20a3` does not verify; the note was altered or signed by another key"
            ],
        );
        check_open(
            &format!("{TEXT}\n{}", PETER_SIG.replace("PeterNeumann", "CarmenSandiego")),
            &[&p],
            expect!["err note has no signature by a trusted key (trusted: `PeterNeumann+c74f20a3`)"],
        );
        check_open(TEXT, &[&p], expect!["err note has no empty line between its text and its signatures"]);
        check_open(&format!("{TEXT}\n"), &[&p], expect!["err note has no signature lines after its last empty line"]);
        check_open(&format!("{TEXT}\n{}", PETER_SIG.trim_end()), &[&p], expect!["err note does not end in a newline"]);
        check_open(
            &format!("\u{1}{TEXT}\n{PETER_SIG}"),
            &[&p],
            expect!["err note line 1 contains control character `\\u{1}`; only newline may appear"],
        );
        check_open(
            &format!(
                "{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            &[&p],
            expect!["err note line 4 has a signature that is not standard base64"],
        );
        check_open(
            &format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
            &[&p],
            expect![
                "err note line 5 is not a signature line; every line after the last empty one is `— <key name> <base64 signature>`"
            ],
        );
        check_open(
            &format!("{TEXT}\n— a+b AAAAAAA=\n"),
            &[&p],
            expect!["err note line 4 is signed by key name `a+b`; a key name is non-empty, with no spaces and no `+`"],
        );
        check_open(
            &format!("{TEXT}\n— a AAAA\n"),
            &[&p],
            expect![
                "err note line 4 has a 3-byte signature; a signature is a 4-byte key id and at least one more byte"
            ],
        );
        // Two different keys under one name and key id: refuse rather than pick one.
        let twin = Verifier { key: e.key, ..p.clone() };
        check_open(
            &format!("{TEXT}\n{PETER_SIG}"),
            &[&p, &twin],
            expect!["err two different trusted keys are named `PeterNeumann` with key id `c74f20a3`; remove one"],
        );
        check_open(&format!("{TEXT}\n{PETER_SIG}"), &[&p, &p], expect!["ok PeterNeumann"]);
    }

    #[test]
    fn limits_are_enforced() {
        let big = vec![b'a'; MAX_NOTE_BYTES + 1];
        expect!["note is 262145 bytes; the limit is 262144"].assert_eq(&Note::parse(&big).unwrap_err().to_string());
        // Exactly at the limits is fine: MAX_NOTE_LINES lines, the longest MAX_LINE_BYTES long.
        let signer = Signer::from_seed("s", [5; 32]).unwrap();
        let text = format!("{}\n{}", "a".repeat(MAX_LINE_BYTES), "b\n".repeat(MAX_NOTE_LINES - 3));
        let note = sign(&text, &[&signer]).unwrap();
        assert_eq!(note.matches('\n').count(), MAX_NOTE_LINES);
        let text = format!("{}\n", "a".repeat(MAX_LINE_BYTES + 1));
        expect!["note line 1 is longer than 8192 bytes"].assert_eq(&sign(&text, &[&signer]).unwrap_err().to_string());
        let text = "b\n".repeat(MAX_NOTE_LINES - 1);
        expect!["note has more than 1024 lines"].assert_eq(&sign(&text, &[&signer]).unwrap_err().to_string());
    }

    #[test]
    fn empty_lines_in_the_text_are_kept() {
        let signer = Signer::from_seed("example.com/log", [7; 32]).unwrap();
        for text in ["a\n\nb\n", "\n", "a\n\n", "\n\n\n"] {
            let note = sign(text, &[&signer]).unwrap();
            let parsed = Note::parse(note.as_bytes()).unwrap();
            assert_eq!(parsed.text, text);
            assert_eq!(parsed.verify(&[&signer.verifier()]).unwrap(), vec!["example.com/log"]);
        }
    }

    #[test]
    fn sign_cases() {
        let signer = Signer::from_seed("s", [1; 32]).unwrap();
        expect!["a note needs at least one signer"].assert_eq(&sign("a\n", &[]).unwrap_err().to_string());
        expect!["note text does not end in a newline"].assert_eq(&sign("a", &[&signer]).unwrap_err().to_string());
        expect!["note line 1 contains control character `\\r`; only newline may appear"]
            .assert_eq(&sign("a\r\n", &[&signer]).unwrap_err().to_string());
        expect!["note line 1 is longer than 8192 bytes"]
            .assert_eq(&sign(&format!("{}\n", "a".repeat(9000)), &[&signer]).unwrap_err().to_string());
        expect!["key name `a b` is invalid: a key name is non-empty, with no spaces and no `+`"]
            .assert_eq(&Signer::from_seed("a b", [1; 32]).unwrap_err().to_string());
    }

    #[test]
    fn verifier_key_cases() {
        check_vkey(PETER_VKEY, expect!["ok PeterNeumann c74f20a3"]);
        check_vkey(ENOCH_VKEY, expect!["ok EnochRoot af0cfe78"]);
        // note_test.go: wrong length key and unknown algorithm, each with an adjusted key hash. Go
        // decodes the first despite its non-zero trailing base64 bits; this crate refuses those.
        check_vkey(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            expect![
                "err verifier key `PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==` is malformed; write it as `<name>+<8 hex digit key id>+<base64 key>`"
            ],
        );
        check_vkey(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            expect!["err key `PeterNeumann` uses signature type 101; only Ed25519 (type 1) is supported"],
        );
        check_vkey(
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            expect!["err key `PeterNeumann` states key id `c74f20a4` but its key has id `c74f20a3`"],
        );
        check_vkey(
            "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            expect![
                "err verifier key `PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW` is malformed; write it as `<name>+<8 hex digit key id>+<base64 key>`"
            ],
        );
        check_vkey(
            "",
            expect!["err verifier key `` is malformed; write it as `<name>+<8 hex digit key id>+<base64 key>`"],
        );
        // Keys with a correct key id that are still no Ed25519 key.
        let vkey = |name: &str, key: &[u8]| {
            let mut h = Sha256::new();
            h.update(name.as_bytes());
            h.update(b"\n");
            h.update(key);
            let d = h.finalize();
            format!("{name}+{:08x}+{}", u32::from_be_bytes([d[0], d[1], d[2], d[3]]), STANDARD.encode(key))
        };
        check_vkey(&vkey("short", &[ALG_ED25519; 32]), expect!["err key `short` is 31 bytes; an Ed25519 key is 32"]);
        check_vkey(&vkey("long", &[ALG_ED25519; 34]), expect!["err key `long` is 33 bytes; an Ed25519 key is 32"]);
        // y = 2^255 - 1 is not canonical (it is at least p = 2^255 - 19).
        let mut non_canonical = vec![ALG_ED25519];
        non_canonical.extend_from_slice(&[0xff; 31]);
        non_canonical.push(0x7f);
        check_vkey(&vkey("big", &non_canonical), expect!["err key `big` is not a canonical Ed25519 public key"]);
        // The identity point has small order: every signature over it is forgeable.
        let mut identity = vec![ALG_ED25519, 1];
        identity.resize(33, 0);
        check_vkey(
            &vkey("weak", &identity),
            expect!["err key `weak` is a small-order Ed25519 public key, which verifies forged signatures"],
        );
    }

    #[test]
    fn private_key_cases() {
        check_skey(PETER_SKEY, expect!["ok PeterNeumann c74f20a3"]);
        check_skey(
            &PETER_SKEY.replace("c74f20a3", "c74f20a4"),
            expect!["err key `PeterNeumann` states key id `c74f20a4` but its key has id `c74f20a3`"],
        );
        check_skey(
            &PETER_SKEY["PRIVATE+".len()..],
            expect!["err private key is malformed; write it as `PRIVATE+KEY+<name>+<8 hex digit key id>+<base64 key>`"],
        );
        check_skey(
            PETER_VKEY,
            expect!["err private key is malformed; write it as `PRIVATE+KEY+<name>+<8 hex digit key id>+<base64 key>`"],
        );
    }

    /// note_test.go's manglings: every proper substring of the keys, and every byte bumped by one,
    /// must be refused.
    #[test]
    fn mangled_keys_are_refused() {
        for key in [PETER_VKEY, PETER_SKEY] {
            let parse = |k: &str| {
                if key == PETER_VKEY { Verifier::parse(k).is_ok() } else { Signer::from_private_key(k).is_ok() }
            };
            let b = key.as_bytes();
            for i in 0..=b.len() {
                for j in i + 1..=b.len() {
                    if (i, j) != (0, b.len())
                        && let Ok(s) = std::str::from_utf8(&b[i..j])
                    {
                        assert!(!parse(s), "{s}");
                    }
                }
            }
            for i in 0..b.len() {
                let mut m = b.to_vec();
                m[i] += 1;
                if let Ok(s) = std::str::from_utf8(&m) {
                    assert!(!parse(s), "{s}");
                }
            }
        }
    }

    #[test]
    fn signer_debug_hides_the_key() {
        let signer = Signer::from_private_key(PETER_SKEY).unwrap();
        expect![[r#"Signer { name: "PeterNeumann", key_hash: c74f20a3, .. }"#]].assert_eq(&format!("{signer:?}"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(note) = Note::parse(&bytes) {
                let _ = note.verify(&[&peter()]);
            }
        }

        #[test]
        fn sign_then_parse_round_trips(lines in proptest::collection::vec("[^\\x00-\\x1f]{0,40}", 1..8)) {
            let text = format!("{}\n", lines.join("\n"));
            let signer = Signer::from_seed("example.com/prop", [9; 32]).unwrap();
            let note = sign(&text, &[&signer]).unwrap();
            let parsed = Note::parse(note.as_bytes()).unwrap();
            proptest::prop_assert_eq!(&parsed.text, &text);
            proptest::prop_assert_eq!(parsed.verify(&[&signer.verifier()]).unwrap(), vec!["example.com/prop".to_owned()]);
        }
    }
}
