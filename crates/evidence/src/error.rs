//! Why a document was refused as a whole. Problems inside a document that was read are not
//! errors: they are [`Unread`](crate::Unread) entries beside what was read.

use crate::formats::Format;
use crate::json::shown;

/// Why a document was refused.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("document is {len} bytes; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("document starts with a byte-order mark, which json forbids (rfc 8259 §8.1); write it without one")]
    ByteOrderMark,
    #[error("document is not utf-8: invalid byte at offset {offset}")]
    NotUtf8 { offset: usize },
    #[error("document is not json: {source}")]
    NotJson {
        #[source]
        source: serde_json::Error,
    },
    #[error("document nests deeper than {max} levels at {}", shown(.path))]
    TooDeep { path: String, max: usize },
    #[error("document repeats member `{member}` in the object at {}; a member may appear once", shown(.path))]
    DuplicateMember { member: String, path: String },
    #[error(
        "document is not in a format airlock reads; expected json of slsa provenance, cyclonedx, spdx 2.x, trivy, \
         grype, sarif 2.1.0, a cosign vulnerability scan or openvex"
    )]
    UnknownDocument,
    #[error("in-toto statement has predicate type `{predicate_type}`, which is not evidence airlock reads")]
    UnknownPredicateType { predicate_type: String },
    #[error("document is not {}: {reason}", .expected.describe())]
    WrongFormat { expected: Format, reason: String },
    #[error("document exceeds the limit of {max} {what}; raise the limit if the document is genuine")]
    TooMany { what: &'static str, max: usize },
    #[error("unknown evidence format `{name}`; expected one of {}", Format::NAMES)]
    UnknownFormat { name: String },
}
