//! Media types (RFC 6838 `type/subtype`, optional parameters), as OCI descriptors carry them.

use std::fmt;

/// Longest media type accepted, in bytes.
pub const MEDIA_TYPE_MAX_LEN: usize = 255;

/// Why a string is not a media type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "media type `{input}` is invalid: write it as `type/subtype`, for example `application/vnd.oci.image.manifest.v1+json`"
)]
pub struct MediaTypeError {
    input: String,
}

/// A `type/subtype` string with RFC 6838 restricted-name characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaType(String);

fn restricted_name(s: &str) -> bool {
    // RFC 6838 4.2: restricted-name = 1*127 restricted-name-chars, starting with an alphanumeric.
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.len() <= 127
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

impl MediaType {
    /// Parses `type/subtype`, ignoring any `;parameters` when checking the grammar.
    pub fn parse(input: &str) -> Result<MediaType, MediaTypeError> {
        let essence = input.split(';').next().unwrap_or_default().trim();
        let ok = input.len() <= MEDIA_TYPE_MAX_LEN
            && essence.split_once('/').is_some_and(|(t, s)| restricted_name(t) && restricted_name(s));
        if ok { Ok(MediaType(input.to_owned())) } else { Err(MediaTypeError { input: crate::echo::echo(input) }) }
    }

    /// The media type as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `type/subtype` without parameters, lowercased for comparison.
    pub fn essence(&self) -> String {
        self.0.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert!(MediaType::parse("application/vnd.oci.image.manifest.v1+json").is_ok());
        assert_eq!(MediaType::parse("Application/JSON; charset=utf-8").unwrap().essence(), "application/json");
        for bad in ["", "application", "/json", "application/", "a/b/c", "a b/c"] {
            assert!(MediaType::parse(bad).is_err(), "{bad}");
        }
    }
}
