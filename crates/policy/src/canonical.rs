//! RFC 8785 (JCS) canonical JSON for policy inputs and decisions, numbers included.
//!
//! `airlock_model::jcs` canonicalizes Airlock's own documents, which hold only integers. A policy
//! input holds scanner data (`cvss_score: 9.8`), so this module writes every number the way
//! RFC 8785 §3.2.2.3 says: the ECMAScript `Number.prototype.toString` form of the IEEE 754 double
//! (shortest digits that round-trip, exponent form outside `1e-7 <= |x| < 1e21`). For integers of
//! magnitude below 2^53 the bytes are the same as `airlock_model::jcs`.

use serde_json::Value;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("JSON nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("number `{number}` is not finite, and JSON has no form for it")]
    NotFinite { number: String },
}

/// Largest integer magnitude that is exact in an IEEE 754 double.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The canonical (RFC 8785) bytes of `value`, refusing nesting deeper than `max_depth`.
pub fn canonicalize(value: &Value, max_depth: usize) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(4096);
    write_value(value, &mut out, 0, max_depth)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>, depth: usize, max: usize) -> Result<(), CanonicalError> {
    if depth > max {
        return Err(CanonicalError::TooDeep { max });
    }
    let deeper = depth.saturating_add(1);
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) if n.as_i64().is_some_and(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER) => {
            // An integer that a double holds exactly prints the same in ECMAScript.
            write_display(n, out);
        }
        Value::Number(n) if n.as_u64().is_some_and(|u| u <= MAX_SAFE_INTEGER) => {
            write_display(n, out);
        }
        Value::Number(n) => {
            // Without serde_json's `arbitrary_precision`, every number converts to a double;
            // RFC 8785 §3.2.2.3 canonicalizes that double (I-JSON, RFC 7493).
            let double = n.as_f64().ok_or_else(|| CanonicalError::NotFinite { number: n.to_string() })?;
            out.extend_from_slice(number(double)?.as_bytes());
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out, deeper, max)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // RFC 8785 §3.2.3: members sorted by their names as UTF-16 code unit sequences.
            // serde_json's map may keep insertion order (another crate can switch on its
            // `preserve_order`), so the members are always sorted here; for ASCII names byte
            // order is the same order, and cheaper.
            out.push(b'{');
            if in_byte_order_ascii(map) {
                // serde_json's default map iterates in byte order already.
                for (i, (key, item)) in map.iter().enumerate() {
                    write_member(i, key, item, out, deeper, max)?;
                }
                out.push(b'}');
                return Ok(());
            }
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            if members.iter().all(|(k, _)| k.is_ascii()) {
                members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            } else {
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            for (i, (key, item)) in members.into_iter().enumerate() {
                write_member(i, key, item, out, deeper, max)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Whether every member name of `map` is ASCII and the map iterates them in byte order (for
/// ASCII names, the UTF-16 order RFC 8785 sorts by).
fn in_byte_order_ascii(map: &serde_json::Map<String, Value>) -> bool {
    let mut previous: Option<&str> = None;
    for key in map.keys() {
        if !key.is_ascii() || previous.is_some_and(|p| p.as_bytes() >= key.as_bytes()) {
            return false;
        }
        previous = Some(key);
    }
    true
}

fn write_member(
    i: usize,
    key: &str,
    item: &Value,
    out: &mut Vec<u8>,
    depth: usize,
    max: usize,
) -> Result<(), CanonicalError> {
    if i > 0 {
        out.push(b',');
    }
    write_string(key, out);
    out.push(b':');
    write_value(item, out, depth, max)
}

/// `value`'s `Display` form appended to `out`, without a `String` in between.
fn write_display(value: &impl std::fmt::Display, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing to a `Vec` cannot fail.
    let _ = write!(out, "{value}");
}

/// ECMAScript `Number::toString(x)` (ECMA-262 §6.1.6.1.20), which RFC 8785 adopts.
fn number(x: f64) -> Result<String, CanonicalError> {
    if !x.is_finite() {
        return Err(CanonicalError::NotFinite { number: x.to_string() });
    }
    if x == 0.0 {
        // Both zeros are `0`.
        return Ok("0".to_owned());
    }
    let (digits, n) = shortest_digits(x.abs());
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        // An integer: the digits then n - k zeros.
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', usize::try_from(n.saturating_sub(k)).unwrap_or(0)));
    } else if 0 < n && n <= 21 {
        // A decimal point inside the digits.
        let point = usize::try_from(n).unwrap_or(0);
        let (int, frac) = digits.split_at(point.min(digits.len()));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        // `0.` then -n zeros then the digits.
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', usize::try_from(n.saturating_neg()).unwrap_or(0)));
        out.push_str(&digits);
    } else {
        // Exponent form: `d[.ddd]e±(n-1)`.
        let mut chars = digits.chars();
        if let Some(first) = chars.next() {
            out.push(first);
        }
        let rest: String = chars.collect();
        if !rest.is_empty() {
            out.push('.');
            out.push_str(&rest);
        }
        let e = n.saturating_sub(1);
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&e.unsigned_abs().to_string());
    }
    Ok(out)
}

/// The shortest decimal digits `d1…dk` (no trailing zeros) and the exponent `n` such that
/// `x = 0.d1…dk × 10^n` round-trips, for a finite `x > 0`, chosen as ECMAScript does.
fn shortest_digits(x: f64) -> (String, i64) {
    // Rust's `{:e}` writes the shortest digits that round-trip, the closest to `x` among them.
    let (digits, exp) = split_exp(&format!("{x:e}"));
    // Where two shortest candidates are equally close (`x` lies exactly halfway, its exact
    // expansion ending in a 5 right after them), ECMAScript takes the even one; Rust may not.
    // One more digit, correctly rounded, shows a 5 there when that can be the case, and only
    // then is the exact expansion (at most 767 significant digits) worth writing out.
    let k = digits.len();
    let (longer, longer_exp) = split_exp(&format!("{x:.k$e}"));
    if longer_exp == exp && longer.len() > k && longer.ends_with('5') {
        let (exact, exact_exp) = split_exp(&format!("{x:.800e}"));
        let exact = exact.trim_end_matches('0');
        let prefix = exact.get(..k).unwrap_or_default();
        let tie = exact_exp == exp && exact.len() == k.saturating_add(1) && exact.ends_with('5');
        if tie && prefix.bytes().last().is_some_and(|d| d.is_multiple_of(2)) {
            let candidate = format!("{}.{}e{}", prefix.get(..1).unwrap_or("0"), prefix.get(1..).unwrap_or(""), exp);
            if candidate.parse::<f64>().ok() == Some(x) {
                let trimmed = prefix.trim_end_matches('0');
                return (trimmed.to_owned(), exp.saturating_add(1));
            }
        }
    }
    (digits, exp.saturating_add(1))
}

/// `d.ddde±x` as its digits without trailing zeros and its exponent.
fn split_exp(sci: &str) -> (String, i64) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let trimmed = digits.trim_end_matches('0');
    let digits = if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() };
    (digits, exp.parse().unwrap_or(0))
}

/// RFC 8785 §3.2.2.2: only `"`, `\` and control characters are escaped; the short forms where
/// JSON has them, `\u00xx` in lowercase hex otherwise.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    // Bytes from 0x20 up, but `"` and `\`, are written as they are; UTF-8 continuation and lead
    // bytes are all 0x80 or more, so runs of them are copied whole.
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(bytes.get(run_start..i).unwrap_or_default());
        run_start = i.saturating_add(1);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
        }
    }
    out.extend_from_slice(bytes.get(run_start..).unwrap_or_default());
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let vectors: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, text) in vectors {
            assert_eq!(number(f64::from_bits(*bits)).unwrap(), *text, "{bits:#018x}");
        }
        assert!(number(f64::NAN).is_err());
        assert!(number(f64::INFINITY).is_err());
    }

    #[test]
    fn documents() {
        let value: Value = serde_json::from_str(
            r#"{"b": [1, 2.5, -0.0, 1e30, "é\n\u0001"], "a": {"z": null, "€": true, "\r": false}, "cvss_score": 9.8}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(canonicalize(&value, 8).unwrap()).unwrap(),
            r#"{"a":{"\r":false,"z":null,"€":true},"b":[1,2.5,0,1e+30,"é\n\u0001"],"cvss_score":9.8}"#
        );
        let deep: Value = serde_json::from_str("[[[[1]]]]").unwrap();
        assert_eq!(canonicalize(&deep, 3), Err(CanonicalError::TooDeep { max: 3 }));
        assert!(canonicalize(&deep, 4).is_ok());
    }

    #[test]
    fn integers_agree_with_the_model() {
        let value: Value =
            serde_json::from_str(r#"{"n": [0, 1, -1, 9007199254740991, -9007199254740991, 1234]}"#).unwrap();
        assert_eq!(canonicalize(&value, 8).unwrap(), airlock_model::jcs::canonicalize(&value).unwrap());
    }
}
