//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP with HMAC-SHA-1, 30-second steps,
//! 6 digits): what authenticator apps compute, and users' second factor.
//!
//! A code is accepted for the current step and one step either side (clock drift), and a step
//! once used is not accepted again: the caller keeps the last accepted step per principal and
//! passes it in.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Bytes of a generated secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Steps accepted either side of the current one.
pub const DRIFT_STEPS: u64 = 1;

/// A new random secret.
pub fn generate_secret() -> [u8; SECRET_BYTES] {
    rand::random()
}

/// RFC 4226 HOTP of `counter` under `secret`, as a number below 10^[`DIGITS`].
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else { return u32::MAX };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation (RFC 4226 §5.3): the low nibble of the last byte picks four bytes.
    let offset = usize::from(digest.get(19).copied().unwrap_or(0) & 0x0f);
    let bytes: [u8; 4] = match digest.get(offset..offset.saturating_add(4)).and_then(|b| b.try_into().ok()) {
        Some(b) => b,
        None => return u32::MAX,
    };
    (u32::from_be_bytes(bytes) & 0x7fff_ffff).checked_rem(10u32.pow(DIGITS)).unwrap_or(u32::MAX)
}

/// The code for the step holding `now_secs`, as the 6 digits an app shows.
pub fn code_at(secret: &[u8], now_secs: u64) -> String {
    format!("{:06}", hotp(secret, now_secs / STEP_SECS))
}

/// The step `code` matches, if it is a 6-digit code for a step within [`DRIFT_STEPS`] of now
/// and later than `last_used` (no replays).
pub fn verify(secret: &[u8], code: &str, now_secs: u64, last_used: Option<u64>) -> Option<u64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let given: u32 = code.parse().ok()?;
    let now = now_secs / STEP_SECS;
    let mut matched = None;
    // Every candidate is computed, so the time taken does not say which one matched.
    for step in now.saturating_sub(DRIFT_STEPS)..=now.saturating_add(DRIFT_STEPS) {
        if hotp(secret, step) == given && last_used.is_none_or(|last| step > last) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits = bits.saturating_add(8);
        while bits >= 5 {
            bits = bits.saturating_sub(5);
            let index = usize::try_from((buffer >> bits) & 31).unwrap_or(0);
            out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
        }
        buffer &= (1u32 << bits).saturating_sub(1);
    }
    if bits > 0 {
        let index = usize::try_from((buffer << (5u32.saturating_sub(bits))) & 31).unwrap_or(0);
        out.push(char::from(ALPHABET.get(index).copied().unwrap_or(b'A')));
    }
    out
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc4226_appendix_d() {
        let expected = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64), code, "counter {counter}");
        }
    }

    #[test]
    fn rfc6238_appendix_b_sha1_last_six_digits() {
        for (time, eight) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code_at(RFC_SECRET, time), eight[2..], "T = {time}");
        }
    }

    #[test]
    fn drift_and_replay() {
        let now = 1_795_669_200;
        let code = code_at(RFC_SECRET, now);
        let step = now / STEP_SECS;
        assert_eq!(verify(RFC_SECRET, &code, now, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, now + STEP_SECS, None), Some(step), "one step late is accepted");
        assert_eq!(verify(RFC_SECRET, &code, now + 2 * STEP_SECS, None), None, "two steps late is not");
        assert_eq!(verify(RFC_SECRET, &code, now, Some(step)), None, "a used step is not accepted again");
        for bad in ["", "12345", "1234567", "12345a", " 12345", "-12345"] {
            assert_eq!(verify(RFC_SECRET, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), expected);
        }
        assert!(
            otpauth_uri("Airlock", "alice", RFC_SECRET)
                .starts_with("otpauth://totp/Airlock:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&")
        );
    }
}
