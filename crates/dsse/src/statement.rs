//! in-toto Statement v1 (<https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>):
//! the subjects an attestation is about, by digest, and its typed predicate, kept as received.
//!
//! ```text
//! {"_type": "https://in-toto.io/Statement/v1",
//!  "subject": [{"name": "<name>", "digest": {"sha256": "<hex>"}}],
//!  "predicateType": "<URI>",
//!  "predicate": {...}}
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::json::{self, Bounded, BoundedSeq, BoundedStringMap, StrSeed, StrictError};
use airlock_model::echo::echo_short as echo;

/// The `_type` of an in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The `_type` of the pre-v1 Statement, still written by widely deployed producers (for example
/// slsa-github-generator's provenance and older cosign releases). Its fields are a subset of v1's,
/// so it reads the same. (The Python `in-toto` package 3.x signs links and layouts, not
/// Statements, under the same payload type; their `_type` is refused.)
pub const STATEMENT_V0_1: &str = "https://in-toto.io/Statement/v0.1";

/// Largest statement accepted, in bytes: the largest payload a 4 MiB envelope can carry in base64.
pub const STATEMENT_MAX_BYTES: usize = 3 * 1024 * 1024;
/// Most subjects in one statement.
pub const MAX_SUBJECTS: usize = 1024;
/// Most digests in one subject's digest set.
pub const MAX_DIGESTS_PER_SUBJECT: usize = 16;
/// Deepest JSON nesting in a statement, its predicate included.
pub const STATEMENT_MAX_DEPTH: usize = 64;

/// Bounds on the work one statement can cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatementLimits {
    /// Largest statement, in bytes ([`STATEMENT_MAX_BYTES`] by default).
    pub max_bytes: usize,
    /// Most subjects ([`MAX_SUBJECTS`] by default).
    pub max_subjects: usize,
    /// Deepest nesting of arrays and objects ([`STATEMENT_MAX_DEPTH`] by default).
    pub max_depth: usize,
}

impl Default for StatementLimits {
    fn default() -> Self {
        StatementLimits { max_bytes: STATEMENT_MAX_BYTES, max_subjects: MAX_SUBJECTS, max_depth: STATEMENT_MAX_DEPTH }
    }
}

/// Why a statement was refused.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error("statement is {len} bytes; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("statement nests deeper than {max} levels at `{path}`")]
    TooDeep { path: String, max: usize },
    #[error("statement repeats member `{member}` in the object at `{path}`; a member may appear once")]
    DuplicateMember { member: String, path: String },
    #[error("statement is not valid json: {source}")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error("statement has no `{member}` member")]
    MissingMember { member: &'static str },
    #[error("statement `_type` is `{found}`; expected `{STATEMENT_V1}`")]
    WrongType { found: String },
    #[error("statement has no subjects; an attestation must be about at least one artifact")]
    NoSubjects,
    #[error("statement has {count} subjects; the limit is {max}")]
    TooManySubjects { count: usize, max: usize },
    #[error("statement subject {index} has no digest; every subject needs at least one")]
    NoDigest { index: usize },
    #[error("statement subject {index} has {count} digests; the limit is {max}")]
    TooManyDigests { index: usize, count: usize, max: usize },
    #[error("statement subject {index} digest `{algorithm}` is `{value}`; expected {expected}")]
    BadDigest { index: usize, algorithm: String, value: String, expected: &'static str },
    #[error("statement `predicateType` is empty")]
    EmptyPredicateType,
    #[error("statement `predicate` is {found}; it must be an object")]
    PredicateNotObject { found: &'static str },
}

/// One artifact an attestation is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementSubject {
    /// The artifact's name; empty when the statement leaves it unset (allowed since v1).
    pub name: String,
    /// Digests by algorithm name (`sha256` → lowercase hex).
    pub digest: BTreeMap<String, String>,
}

/// An in-toto Statement (v1, or v0.1 which reads the same).
#[derive(Clone, Debug)]
pub struct Statement {
    pub subjects: Vec<StatementSubject>,
    pub predicate_type: String,
    /// The predicate JSON exactly as received (an object). An absent or `null` predicate reads as
    /// `{}`: the spec treats "unset" the same as "set-but-empty".
    pub predicate: Box<RawValue>,
}

impl Statement {
    /// Parses a Statement from untrusted bytes (a verified envelope's payload), strictly:
    ///
    /// 1. at most `limits.max_bytes`, nested at most `limits.max_depth` levels;
    /// 2. valid JSON with no member twice in any object, the predicate included;
    /// 3. `_type` is [`STATEMENT_V1`] or [`STATEMENT_V0_1`];
    /// 4. `subject` has 1 to `limits.max_subjects` entries, counted while reading;
    /// 5. each subject has 1 to [`MAX_DIGESTS_PER_SUBJECT`] digests; the values of the spec's
    ///    standard hex algorithms (`sha256`, `sha512`, `sha1`, `gitCommit`, ...) are lowercase hex
    ///    of their length, and other algorithms' values are non-empty;
    /// 6. `predicateType` is a non-empty string;
    /// 7. `predicate`, if present and not `null`, is an object.
    ///
    /// Unrecognized members are ignored, as the spec's parsing rules require.
    pub fn parse(payload: &[u8], limits: &StatementLimits) -> Result<Statement, StatementError> {
        // 1. Bound the work before parsing.
        if payload.len() > limits.max_bytes {
            return Err(StatementError::TooLarge { len: payload.len(), max: limits.max_bytes });
        }
        // 1, 2. Depth and duplicate members, in one walk over the whole document.
        json::check_strict(payload, limits.max_depth).map_err(|e| match e {
            StrictError::Duplicate { member, at } => {
                StatementError::DuplicateMember { member, path: at.json_path(json::PATH_MAX_CHARS) }
            }
            StrictError::TooDeep { at } => {
                StatementError::TooDeep { path: at.json_path(json::PATH_MAX_CHARS), max: limits.max_depth }
            }
            StrictError::Syntax(source) => StatementError::Json { source },
        })?;
        let wire = json::from_slice_seed(payload, WireStatementSeed { max_subjects: limits.max_subjects })
            .map_err(|source| StatementError::Json { source })?;
        // 3. The type.
        let statement_type = wire.statement_type.ok_or(StatementError::MissingMember { member: "_type" })?;
        if statement_type != STATEMENT_V1 && statement_type != STATEMENT_V0_1 {
            return Err(StatementError::WrongType { found: echo(&statement_type) });
        }
        // 4. The subjects.
        let subjects = match wire.subjects.ok_or(StatementError::MissingMember { member: "subject" })? {
            Bounded::Within(subjects) => subjects,
            Bounded::Exceeded { count } => {
                return Err(StatementError::TooManySubjects { count, max: limits.max_subjects });
            }
        };
        if subjects.is_empty() {
            return Err(StatementError::NoSubjects);
        }
        // 5. Their digests.
        let subjects = subjects
            .into_iter()
            .enumerate()
            .map(|(index, subject)| {
                let digest = match subject.digest {
                    None => return Err(StatementError::NoDigest { index }),
                    Some(Bounded::Exceeded { count }) => {
                        return Err(StatementError::TooManyDigests { index, count, max: MAX_DIGESTS_PER_SUBJECT });
                    }
                    Some(Bounded::Within(digest)) => digest,
                };
                if digest.is_empty() {
                    return Err(StatementError::NoDigest { index });
                }
                for (algorithm, value) in &digest {
                    check_digest(index, algorithm, value)?;
                }
                Ok(StatementSubject { name: subject.name.unwrap_or_default(), digest })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // 6. The predicate type.
        let predicate_type = wire.predicate_type.ok_or(StatementError::MissingMember { member: "predicateType" })?;
        if predicate_type.is_empty() {
            return Err(StatementError::EmptyPredicateType);
        }
        // 7. The predicate.
        let predicate = match wire.predicate {
            None => empty_object(),
            Some(raw) if raw.get() == "null" => empty_object(),
            Some(raw) if raw.get().starts_with('{') => raw,
            Some(raw) => return Err(StatementError::PredicateNotObject { found: json::kind_of(&raw) }),
        };
        Ok(Statement { subjects, predicate_type, predicate })
    }

    /// The hex values of the subjects' `sha256` digests, in subject order.
    pub fn sha256_subjects(&self) -> impl Iterator<Item = &str> {
        self.subjects.iter().filter_map(|s| s.digest.get("sha256")).map(String::as_str)
    }

    /// A v1 statement about `subjects`; a `null` predicate becomes `{}`, as [`Statement::parse`]
    /// reads it. Nothing else is checked: [`Statement::parse`] of [`Statement::to_json`] refuses
    /// what it would refuse from anyone else.
    pub fn new(subjects: Vec<StatementSubject>, predicate_type: &str, predicate: &serde_json::Value) -> Statement {
        let predicate = if predicate.is_null() {
            empty_object()
        } else {
            // Serializing a `Value` cannot fail: its map keys are strings.
            serde_json::value::to_raw_value(predicate).unwrap_or_else(|_| empty_object())
        };
        Statement { subjects, predicate_type: predicate_type.to_owned(), predicate }
    }

    /// The statement as compact JSON with `_type` [`STATEMENT_V1`], a subject's `name` left out
    /// when empty, and the predicate as held. For statements Airlock makes; a received statement
    /// is verified and kept as the bytes received, never re-rendered.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.predicate.get().len().saturating_add(256));
        out.extend_from_slice(b"{\"_type\":");
        json::write_string(&mut out, STATEMENT_V1);
        out.extend_from_slice(b",\"subject\":[");
        for (i, subject) in self.subjects.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            if !subject.name.is_empty() {
                out.extend_from_slice(b"\"name\":");
                json::write_string(&mut out, &subject.name);
                out.push(b',');
            }
            out.extend_from_slice(b"\"digest\":{");
            for (j, (algorithm, value)) in subject.digest.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                json::write_string(&mut out, algorithm);
                out.push(b':');
                json::write_string(&mut out, value);
            }
            out.extend_from_slice(b"}}");
        }
        out.extend_from_slice(b"],\"predicateType\":");
        json::write_string(&mut out, &self.predicate_type);
        out.extend_from_slice(b",\"predicate\":");
        out.extend_from_slice(self.predicate.get().as_bytes());
        out.push(b'}');
        out
    }
}

/// `{}` as a raw value.
fn empty_object() -> Box<RawValue> {
    // `{}` is valid JSON; the fallback is never taken.
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// The hex lengths of the DigestSet algorithms that the spec defines as lowercase hex
/// (in-toto attestation spec v1, `digest_set.md`).
fn hex_lengths(algorithm: &str) -> Option<&'static [usize]> {
    Some(match algorithm {
        "sha256" | "sha512_256" | "sha3_256" | "dirHash1" => &[64],
        "sha224" | "sha512_224" | "sha3_224" => &[56],
        "sha384" | "sha3_384" => &[96],
        "sha512" | "sha3_512" => &[128],
        "sha1" | "ripemd160" => &[40],
        "md5" => &[32],
        "sm3" => &[64],
        // SHA-1 or SHA-256 object ids.
        "gitCommit" | "gitTree" | "gitBlob" | "gitTag" => &[40, 64],
        _ => return None,
    })
}

/// Checks one digest of subject `index`.
fn check_digest(index: usize, algorithm: &str, value: &str) -> Result<(), StatementError> {
    let bad = |expected| StatementError::BadDigest { index, algorithm: echo(algorithm), value: echo(value), expected };
    match hex_lengths(algorithm) {
        Some(lengths) => {
            let lowercase_hex = value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !lowercase_hex || !lengths.contains(&value.len()) {
                return Err(bad(match lengths {
                    [40, 64] => "40 or 64 lowercase hex digits",
                    [32] => "32 lowercase hex digits",
                    [40] => "40 lowercase hex digits",
                    [56] => "56 lowercase hex digits",
                    [96] => "96 lowercase hex digits",
                    [128] => "128 lowercase hex digits",
                    _ => "64 lowercase hex digits",
                }));
            }
        }
        None if value.is_empty() => return Err(bad("a non-empty value")),
        None => {}
    }
    Ok(())
}

/// The statement's members as read, before they are checked.
struct WireStatement {
    statement_type: Option<String>,
    subjects: Option<Bounded<Vec<WireSubject>>>,
    predicate_type: Option<String>,
    predicate: Option<Box<RawValue>>,
}

struct WireSubject {
    name: Option<String>,
    digest: Option<Bounded<BTreeMap<String, String>>>,
}

/// Reads the top-level object, bounding the subject array while reading it.
struct WireStatementSeed {
    max_subjects: usize,
}

impl<'de> DeserializeSeed<'de> for WireStatementSeed {
    type Value = WireStatement;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<WireStatement, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WireStatementSeed {
    type Value = WireStatement;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an in-toto statement object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireStatement, A::Error> {
        // Duplicates were refused by the strict walk, so each member is read at most once.
        let mut wire = WireStatement { statement_type: None, subjects: None, predicate_type: None, predicate: None };
        while let Some(member) = map.next_key_seed(StrSeed)? {
            match member.as_ref() {
                "_type" => wire.statement_type = Some(map.next_value()?),
                "subject" => {
                    let seed = BoundedSeq { max: self.max_subjects, element: WireSubjectSeed };
                    wire.subjects = Some(map.next_value_seed(seed)?);
                }
                "predicateType" => wire.predicate_type = Some(map.next_value()?),
                "predicate" => wire.predicate = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(wire)
    }
}

/// Reads one subject (a ResourceDescriptor), bounding its digest set while reading it.
#[derive(Clone, Copy)]
struct WireSubjectSeed;

impl<'de> DeserializeSeed<'de> for WireSubjectSeed {
    type Value = WireSubject;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<WireSubject, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WireSubjectSeed {
    type Value = WireSubject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a subject object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireSubject, A::Error> {
        let mut subject = WireSubject { name: None, digest: None };
        while let Some(member) = map.next_key_seed(StrSeed)? {
            match member.as_ref() {
                "name" => subject.name = Some(map.next_value()?),
                "digest" => {
                    subject.digest = Some(map.next_value_seed(BoundedStringMap { max: MAX_DIGESTS_PER_SUBJECT })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(subject)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn check(statement: &str) -> String {
        match Statement::parse(statement.as_bytes(), &StatementLimits::default()) {
            Ok(s) => format!("ok: {} subjects, predicate {}", s.subjects.len(), s.predicate.get()),
            Err(e) => e.to_string(),
        }
    }

    const SHA: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

    #[test]
    fn minimal_statements() {
        let v1 = format!(
            r#"{{"_type":"{STATEMENT_V1}","subject":[{{"digest":{{"sha256":"{SHA}"}}}}],"predicateType":"x"}}"#
        );
        assert_eq!(check(&v1), "ok: 1 subjects, predicate {}");
        let v01 = v1
            .replace(STATEMENT_V1, STATEMENT_V0_1)
            .replace(r#""predicateType":"x""#, r#""predicateType":"x","predicate":null"#);
        assert_eq!(check(&v01), "ok: 1 subjects, predicate {}");
        let kept = v1.replace(r#""predicateType":"x""#, r#""predicateType":"x","predicate":{ "a" : 1 }"#);
        assert_eq!(check(&kept), r#"ok: 1 subjects, predicate { "a" : 1 }"#);
    }

    #[test]
    fn digests_are_checked_by_algorithm() {
        let with = |algorithm: &str, value: &str| {
            check(&format!(
                r#"{{"_type":"{STATEMENT_V1}","subject":[{{"digest":{{"{algorithm}":"{value}"}}}}],"predicateType":"x"}}"#
            ))
        };
        assert!(with("sha256", SHA).starts_with("ok"));
        assert!(with("gitCommit", &SHA[..40]).starts_with("ok"));
        assert!(with("customHash", "anything").starts_with("ok"));
        assert_eq!(
            with("sha256", &SHA.to_uppercase()),
            format!(
                "statement subject 0 digest `sha256` is `{}`; expected 64 lowercase hex digits",
                SHA.to_uppercase()
            )
        );
        assert!(with("sha512", SHA).contains("expected 128 lowercase hex digits"));
        assert!(with("customHash", "").contains("expected a non-empty value"));
    }

    #[test]
    fn predicate_must_be_an_object() {
        let s = format!(
            r#"{{"_type":"{STATEMENT_V1}","subject":[{{"digest":{{"sha256":"{SHA}"}}}}],"predicateType":"x","predicate":[1]}}"#
        );
        assert_eq!(check(&s), "statement `predicate` is an array; it must be an object");
    }
}
