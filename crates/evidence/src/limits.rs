//! The bounds on the work one evidence document can cause: each a named constant, a field of
//! [`Limits`] (so configuration can change it), an [`EvidenceError`](crate::EvidenceError)
//! variant or an [`Unread`](crate::Unread) entry, and a test.

/// Largest document accepted, in bytes (32 MiB: the SBOM of a large image is a few MiB).
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Deepest nesting of arrays and objects. Real documents stay under 20 (SARIF code flows, the
/// GitHub event payload inside v0.2 provenance); the parser's own recursion stops at 128.
pub const MAX_DEPTH: usize = 64;
/// Longest string read into the model, in bytes; a longer one is reported in `unread`.
pub const MAX_STRING_LEN: usize = 64 * 1024;
/// Most components in one document.
pub const MAX_COMPONENTS: usize = 100_000;
/// Most vulnerabilities in one document (a CycloneDX vulnerability counts once per affected
/// component).
pub const MAX_VULNERABILITIES: usize = 100_000;
/// Most VEX statements in one document.
pub const MAX_VEX_STATEMENTS: usize = 100_000;
/// Most items in one list inside one entry: a vulnerability's aliases or ratings, a component's
/// licenses, a VEX statement's products.
pub const MAX_LIST_LEN: usize = 4096;
/// Most `unread` entries kept per document; past it, one last entry says how many more there were.
pub const MAX_UNREAD: usize = 1000;

/// Bounds on the work one document can cause.
///
/// Sizes and depth are checked before anything is read. Counts are checked while the model is
/// built, and going past one refuses the whole document
/// ([`EvidenceError::TooMany`](crate::EvidenceError::TooMany)) rather than keeping the first part:
/// a truncated vulnerability list would let a policy pass on what it never saw. A string over
/// `max_string_len` costs only its own field or entry, reported in `unread`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest document, in bytes ([`MAX_BYTES`] by default).
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects ([`MAX_DEPTH`] by default; at most 127).
    pub max_depth: usize,
    /// Longest string kept, in bytes ([`MAX_STRING_LEN`] by default).
    pub max_string_len: usize,
    /// Most components ([`MAX_COMPONENTS`] by default).
    pub max_components: usize,
    /// Most vulnerabilities ([`MAX_VULNERABILITIES`] by default).
    pub max_vulnerabilities: usize,
    /// Most VEX statements ([`MAX_VEX_STATEMENTS`] by default).
    pub max_vex_statements: usize,
    /// Most items in one list inside one entry ([`MAX_LIST_LEN`] by default).
    pub max_list_len: usize,
    /// Most `unread` entries kept ([`MAX_UNREAD`] by default).
    pub max_unread: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: MAX_BYTES,
            max_depth: MAX_DEPTH,
            max_string_len: MAX_STRING_LEN,
            max_components: MAX_COMPONENTS,
            max_vulnerabilities: MAX_VULNERABILITIES,
            max_vex_statements: MAX_VEX_STATEMENTS,
            max_list_len: MAX_LIST_LEN,
            max_unread: MAX_UNREAD,
        }
    }
}
