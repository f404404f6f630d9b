//! The entry points: a document's bytes in, checked against the limits, unwrapped from an in-toto
//! statement if it is one, recognized, and read.

use serde_json::value::RawValue;

use crate::error::EvidenceError;
use crate::formats::{self, Format, SlsaVersion};
use crate::json::{self, Ptr, StrictError};
use crate::limits::Limits;
use crate::model::Evidence;
use crate::read::Reader;
use airlock_model::echo::echo_short as echo;

/// The prefix of every in-toto Statement `_type` (v0.1 and v1).
const STATEMENT_TYPE_PREFIX: &str = "https://in-toto.io/Statement/";

/// Steps 1 to 3 of every parse: the size limit, UTF-8, then one strict walk that bounds nesting
/// and refuses repeated members, all before anything is read.
fn prepare<'b>(bytes: &'b [u8], limits: &Limits) -> Result<&'b RawValue, EvidenceError> {
    // 1. Size, before any work.
    if bytes.len() > limits.max_bytes {
        return Err(EvidenceError::TooLarge { len: bytes.len(), max: limits.max_bytes });
    }
    // 2. UTF-8 without a byte-order mark (RFC 8259 §8.1), so values can be borrowed as text.
    if bytes.starts_with(b"\xef\xbb\xbf") {
        return Err(EvidenceError::ByteOrderMark);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| EvidenceError::NotUtf8 { offset: e.valid_up_to() })?;
    // 3. Depth and repeated members, in one walk over the whole document.
    json::check_strict(text, limits.max_depth).map_err(|e| match e {
        StrictError::Duplicate { member, at } => {
            EvidenceError::DuplicateMember { member, path: at.pointer(json::PATH_MAX_CHARS) }
        }
        StrictError::TooDeep { at } => {
            EvidenceError::TooDeep { path: at.pointer(json::PATH_MAX_CHARS), max: limits.max_depth }
        }
        StrictError::Syntax(source) => EvidenceError::NotJson { source },
    })?;
    json::root(text).map_err(|source| EvidenceError::NotJson { source })
}

/// The predicate type and predicate of an in-toto statement, if `raw` is one.
fn statement(raw: &RawValue) -> Option<(String, &RawValue)> {
    let [kind, predicate_type, predicate] = json::members(raw, &["_type", "predicateType", "predicate"])?;
    let kind: String = serde_json::from_str(kind?.get()).ok()?;
    if !kind.starts_with(STATEMENT_TYPE_PREFIX) {
        return None;
    }
    Some((serde_json::from_str(predicate_type?.get()).ok()?, predicate?))
}

/// What a statement's predicate is: by its type where Airlock knows it, else by its content.
fn predicate_format(predicate_type: &str, predicate: &RawValue) -> Option<(Format, Option<SlsaVersion>)> {
    formats::predicate_kind(predicate_type).or_else(|| formats::sniff(predicate).map(|format| (format, None)))
}

/// Reads `raw` as `format` and, if it is not that format but another one Airlock reads, says so.
fn read(
    format: Format,
    raw: &RawValue,
    at: Ptr<'_>,
    slsa: Option<SlsaVersion>,
    limits: &Limits,
) -> Result<Evidence, EvidenceError> {
    let mut reader = Reader::new(limits);
    match formats::read(&mut reader, format, raw, at, slsa) {
        Ok(()) => Ok(reader.finish()),
        Err(EvidenceError::WrongFormat { expected, mut reason }) => {
            if let Some(other) = formats::sniff(raw).filter(|other| *other != format) {
                reason.push_str(&format!("; it looks like {}, so read it as `{other}`", other.describe()));
            }
            Err(EvidenceError::WrongFormat { expected, reason })
        }
        Err(e) => Err(e),
    }
}

/// Which format a document is, from its members (or, for an in-toto statement, from its
/// predicate type, else its predicate's members); `None` if it is not one Airlock reads, or not
/// JSON within the default [`Limits`].
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let root = prepare(bytes, &Limits::default()).ok()?;
    match statement(root) {
        Some((predicate_type, predicate)) => predicate_format(&predicate_type, predicate).map(|(format, _)| format),
        None => formats::sniff(root),
    }
}

/// Reads a document of `format` into the evidence model.
///
/// The document is the format's own JSON, or an in-toto statement (v0.1 or v1) whose predicate
/// is of that format; `unread` paths then start at `/predicate`. Refused as a whole only when it
/// is over the limits, not JSON, not of `format`, or lists more entries than the limits allow;
/// anything odd inside is reported in [`Evidence::unread`].
pub fn parse(format: Format, bytes: &[u8], limits: &Limits) -> Result<Evidence, EvidenceError> {
    let root = prepare(bytes, limits)?;
    match statement(root) {
        Some((predicate_type, predicate)) => match predicate_format(&predicate_type, predicate) {
            Some((found, slsa)) if found == format => read(format, predicate, Ptr::ROOT.key("predicate"), slsa, limits),
            _ => Err(formats::wrong(
                format,
                format!("it is an in-toto statement with predicate type `{}`", echo(&predicate_type)),
            )),
        },
        None => read(format, root, Ptr::ROOT, None, limits),
    }
}

/// [`detect`] then [`parse`]: reads a document of whichever format it is.
pub fn parse_auto(bytes: &[u8], limits: &Limits) -> Result<(Format, Evidence), EvidenceError> {
    let root = prepare(bytes, limits)?;
    let (format, raw, at, slsa) = match statement(root) {
        Some((predicate_type, predicate)) => {
            let Some((format, slsa)) = predicate_format(&predicate_type, predicate) else {
                return Err(EvidenceError::UnknownPredicateType { predicate_type: echo(&predicate_type) });
            };
            (format, predicate, Ptr::ROOT.key("predicate"), slsa)
        }
        None => (formats::sniff(root).ok_or(EvidenceError::UnknownDocument)?, root, Ptr::ROOT, None),
    };
    read(format, raw, at, slsa, limits).map(|evidence| (format, evidence))
}

/// The evidence in an in-toto statement's predicate, by its predicate type.
///
/// SLSA provenance (v1, v0.2), CycloneDX (`https://cyclonedx.org/bom`, versioned or not), SPDX
/// (`https://spdx.dev/Document`, versioned or not), cosign vulnerability scans and OpenVEX
/// (`https://openvex.dev/ns…`) are read as their type says, and a predicate that is not what its
/// type says is refused. A predicate of any other type is `Ok(None)`, unless its content is a
/// Trivy, Grype or SARIF report (as `cosign attest --type custom` and similar tools wrap them),
/// which is read; a predicate of another type that is over the limits or not JSON is `Ok(None)`
/// too, since it is not evidence Airlock reads.
pub fn from_predicate(
    predicate_type: &str,
    predicate: &[u8],
    limits: &Limits,
) -> Result<Option<Evidence>, EvidenceError> {
    if let Some((format, slsa)) = formats::predicate_kind(predicate_type) {
        let root = prepare(predicate, limits)?;
        return read(format, root, Ptr::ROOT, slsa, limits).map(Some);
    }
    let Ok(root) = prepare(predicate, limits) else { return Ok(None) };
    match formats::sniff(root) {
        Some(format @ (Format::Trivy | Format::Grype | Format::Sarif)) => {
            read(format, root, Ptr::ROOT, None, limits).map(Some)
        }
        _ => Ok(None),
    }
}
