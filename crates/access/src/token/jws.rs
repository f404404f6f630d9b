//! The pieces both token verifiers share: the JWS compact serialization (RFC 7515 §7.1) split
//! and decoded strictly, the time checks of RFC 7519 §4.1.4-§4.1.6 against an injected clock, and
//! how untrusted input is quoted back in errors.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::{DecodeError, Engine as _};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{MAX_TOKEN_BYTES, TokenError};

/// How untrusted input is quoted back in errors: bounded and on one line.
pub(super) use airlock_model::echo::echo_short as echo;

/// A token split into its three base64url parts, before anything is decoded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Compact<'a> {
    /// `header.payload` exactly as received: the bytes the signature covers (RFC 7515 §5.2 step 8).
    pub(super) signing_input: &'a str,
    pub(super) header: &'a str,
    pub(super) payload: &'a str,
    pub(super) signature: &'a str,
}

impl<'a> Compact<'a> {
    /// Splits a token of at most [`MAX_TOKEN_BYTES`] into exactly three `.`-separated parts.
    pub(super) fn split(token: &'a str) -> Result<Compact<'a>, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge { len: token.len(), max: MAX_TOKEN_BYTES });
        }
        let malformed = || TokenError::Malformed {
            part: "compact serialization",
            reason: "expected three base64url parts separated by `.`".to_owned(),
        };
        let (signing_input, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or_else(malformed)?;
        if payload.contains('.') {
            return Err(malformed());
        }
        Ok(Compact { signing_input, header, payload, signature })
    }

    /// The header, decoded and parsed; RFC 7515 §4.1.11: refused if it lists `crit` extensions.
    pub(super) fn header(&self) -> Result<Header, TokenError> {
        let header: Header = json_object("header", &decode("header", self.header)?)?;
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        Ok(header)
    }

    /// The payload, decoded and parsed as `T`.
    pub(super) fn payload<T: DeserializeOwned>(&self) -> Result<T, TokenError> {
        json_object("payload", &decode("payload", self.payload)?)
    }

    /// The signature, decoded, of whatever length.
    pub(super) fn signature_bytes(&self) -> Result<Vec<u8>, TokenError> {
        decode("signature", self.signature)
    }

    /// The signature, decoded; it must be `N` bytes long.
    pub(super) fn signature<const N: usize>(&self) -> Result<[u8; N], TokenError> {
        let bytes = self.signature_bytes()?;
        let len = bytes.len();
        bytes.try_into().map_err(|_| TokenError::Malformed {
            part: "signature",
            reason: format!("{len} bytes where the algorithm makes {N}"),
        })
    }
}

/// The JOSE header members Airlock reads (RFC 7515 §4.1). Others are ignored; a member given twice
/// is refused.
#[derive(Debug, Deserialize)]
pub(super) struct Header {
    pub(super) alg: String,
    pub(super) kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Base64url without padding (RFC 7515 §2), canonical: padding, whitespace and non-zero trailing
/// bits are refused, so one signature has one text.
fn decode(part: &'static str, text: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|error| {
        let why = match error {
            DecodeError::InvalidByte(offset, byte) => format!("byte 0x{byte:02x} at offset {offset}"),
            DecodeError::InvalidLength(len) => format!("a length of {len}, which no encoding has"),
            DecodeError::InvalidLastSymbol(offset, _) => {
                format!("non-zero unused bits in the symbol at offset {offset}")
            }
            DecodeError::InvalidPadding => "padding".to_owned(),
        };
        TokenError::Malformed { part, reason: format!("not base64url without padding: {why}") }
    })
}

/// `bytes` parsed as a JSON object into `T`. The object check matters because serde also reads
/// structs from arrays.
fn json_object<T: DeserializeOwned>(part: &'static str, bytes: &[u8]) -> Result<T, TokenError> {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(TokenError::Malformed { part, reason: "not a json object".to_owned() });
    }
    serde_json::from_slice(bytes).map_err(|error| TokenError::Malformed { part, reason: echo(&error.to_string()) })
}

/// RFC 7519 §4.1.4-§4.1.6 against the injected clock: the token is refused on or after
/// `exp + leeway`, before `nbf - leeway`, and if it claims to be issued after `now + leeway`.
pub(super) fn check_validity(
    exp: u64,
    nbf: Option<u64>,
    iat: Option<u64>,
    now: u64,
    leeway: u64,
) -> Result<(), TokenError> {
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired { exp, now, leeway });
    }
    let horizon = now.saturating_add(leeway);
    for (claim, at) in [("nbf", nbf), ("iat", iat)] {
        if let Some(at) = at
            && at > horizon
        {
            return Err(TokenError::NotYetValid { claim, at, now, leeway });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{Compact, check_validity, echo};
    use crate::token::TokenError;

    #[test]
    fn echo_is_one_bounded_line() {
        assert_eq!(echo("a\r\nb"), "a\\r\\nb");
        assert_eq!(echo(&"x".repeat(500)).chars().count(), 81);
    }

    #[test]
    fn split_needs_exactly_three_parts() {
        for token in ["", "a", "a.b", "a.b.c.d", "...."] {
            assert!(matches!(Compact::split(token), Err(TokenError::Malformed { .. })), "{token:?}");
        }
        let parts = Compact::split("h.p.s").unwrap();
        assert_eq!((parts.signing_input, parts.header, parts.payload, parts.signature), ("h.p", "h", "p", "s"));
    }

    #[test]
    fn validity_window_edges() {
        // Valid up to, not including, exp + leeway (RFC 7519 §4.1.4).
        assert!(check_validity(100, None, None, 159, 60).is_ok());
        assert!(matches!(check_validity(100, None, None, 160, 60), Err(TokenError::Expired { .. })));
        assert!(matches!(check_validity(100, None, None, 100, 0), Err(TokenError::Expired { .. })));
        assert!(check_validity(u64::MAX, Some(160), Some(160), 100, 60).is_ok());
        assert!(matches!(
            check_validity(u64::MAX, Some(161), None, 100, 60),
            Err(TokenError::NotYetValid { claim: "nbf", .. })
        ));
        assert!(matches!(
            check_validity(u64::MAX, None, Some(161), 100, 60),
            Err(TokenError::NotYetValid { claim: "iat", .. })
        ));
    }
}
