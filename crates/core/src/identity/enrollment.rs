//! One-time enrollment tokens: how a person sets their own password and second factor, so that
//! nobody who creates or resets an account ever holds its secrets.
//!
//! A token is `ale_<256 random bits, base64url>.<principal name>`: the name says whose it is,
//! the random part proves it. Only its SHA-256 is stored; it works once, until it expires
//! (`access.enrollment_ttl_secs`).

use airlock_model::{PrincipalId, Timestamp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest as _, Sha256};

/// Prefix of every enrollment token, so a leaked one is recognisable.
pub const ENROLLMENT_PREFIX: &str = "ale_";
/// Longest enrollment token accepted, in bytes.
const TOKEN_MAX_BYTES: usize = 256;

/// A new token for `id`: the token (shown once), its stored hash and when it expires.
pub(super) fn issue(id: &PrincipalId, now: Timestamp, ttl_secs: u64) -> (String, String, Timestamp) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("{ENROLLMENT_PREFIX}{}.{id}", URL_SAFE_NO_PAD.encode(secret));
    let hash = hash(&token);
    (token, hash, now.plus_millis(ttl_secs.saturating_mul(1000)))
}

/// How a token is stored: hex SHA-256 (it has 256 bits of entropy).
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The principal a token names, if it is shaped like one.
pub fn subject(token: &str) -> Option<PrincipalId> {
    if token.len() > TOKEN_MAX_BYTES {
        return None;
    }
    let rest = token.strip_prefix(ENROLLMENT_PREFIX)?;
    let (secret, name) = rest.split_once('.')?;
    if secret.len() != 43 || !secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return None;
    }
    PrincipalId::parse(name).ok()
}

/// Equality that takes as long whatever differs.
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_principal_and_nothing_else_parses() {
        let id = PrincipalId::parse("dana.smith").unwrap();
        let (token, stored, expires) = issue(&id, Timestamp::from_millis(1_000), 60);
        assert_eq!(subject(&token), Some(id));
        assert_eq!(stored, hash(&token));
        assert_eq!(expires, Timestamp::from_millis(61_000));
        for bad in ["", "ale_", "ale_abc.dana", "alk_x.dana", &format!("{token}x/"), &"a".repeat(300)] {
            assert_eq!(subject(bad), None, "{bad}");
        }
        assert!(same(&stored, &hash(&token)));
        assert!(!same(&stored, &hash("other")));
    }
}
