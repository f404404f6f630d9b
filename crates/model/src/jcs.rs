//! RFC 8785 JSON Canonicalization Scheme: the one byte form of every JSON document Airlock
//! hashes or signs (log events, release records).
//!
//! Numbers are limited to integers of magnitude below 2^53, the range where RFC 8785's
//! ECMAScript number form and plain decimal agree; Airlock's own documents never need more.

use serde_json::Value;

/// Why a value has no canonical form here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("number `{number}` cannot be canonicalized; canonical documents hold only integers below 2^53")]
    Number { number: String },
    #[error("JSON nests deeper than {max} levels")]
    TooDeep { max: usize },
}

/// Deepest nesting canonicalized.
pub const CANONICAL_MAX_DEPTH: usize = 64;

/// Largest integer magnitude that is exact in an IEEE 754 double.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The canonical (RFC 8785) bytes of `value`.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write_value(value, &mut out, 0)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), CanonicalError> {
    if depth > CANONICAL_MAX_DEPTH {
        return Err(CanonicalError::TooDeep { max: CANONICAL_MAX_DEPTH });
    }
    let deeper = depth.saturating_add(1);
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            let safe = n
                .as_u64()
                .filter(|v| *v <= MAX_SAFE_INTEGER)
                .map(|v| v.to_string())
                .or_else(|| n.as_i64().filter(|v| v.unsigned_abs() <= MAX_SAFE_INTEGER).map(|v| v.to_string()));
            match safe {
                Some(text) => out.extend_from_slice(text.as_bytes()),
                None => return Err(CanonicalError::Number { number: n.to_string() }),
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out, deeper)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // RFC 8785 3.2.3: members sorted by their names as UTF-16 code unit sequences.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out, deeper)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// RFC 8785 3.2.2.2: only `"`, `\` and control characters are escaped; the short forms where
/// JSON has them, `\u00xx` in lowercase hex otherwise.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if u32::from(c) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(input: &str, expect: Expect) {
        let value: Value = serde_json::from_str(input).unwrap();
        let actual = match canonicalize(&value) {
            Ok(bytes) => String::from_utf8(bytes).unwrap(),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn canonical_forms() {
        check(
            r#"{ "b": 1, "a": [true, false, null], "c": {"z": "", "y": -5} }"#,
            expect![[r#"{"a":[true,false,null],"b":1,"c":{"y":-5,"z":""}}"#]],
        );
        // RFC 8785 3.2.2.2 string escaping.
        check(r#""\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/""#, expect![[r#""€$\u000f\nA'B\"\\\\\"/""#]]);
        check(r#""\u0008\u0009\u000c\u000d\u007f\u2028""#, expect!["\"\\b\\t\\f\\r\u{7f}\u{2028}\""]);
        check("9007199254740991", expect!["9007199254740991"]);
        check(
            "9007199254740992",
            expect![
                "err number `9007199254740992` cannot be canonicalized; canonical documents hold only integers below 2^53"
            ],
        );
        check(
            "1.5",
            expect!["err number `1.5` cannot be canonicalized; canonical documents hold only integers below 2^53"],
        );
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // RFC 8785 3.2.3's example: U+1F600 (surrogates D83D DE00) sorts before U+FB33 in UTF-16,
        // though after it in UTF-8 byte order.
        let value = serde_json::json!({"\u{fb33}": 1, "\u{1f600}": 2, "\r": 3, "1": 4, "\u{80}": 5, "\u{f6}": 6});
        let text = String::from_utf8(canonicalize(&value).unwrap()).unwrap();
        assert_eq!(text, "{\"\\r\":3,\"1\":4,\"\u{80}\":5,\"\u{f6}\":6,\"\u{1f600}\":2,\"\u{fb33}\":1}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep: Value = serde_json::from_str(&format!("{}{}", "[".repeat(100), "]".repeat(100))).unwrap();
        assert_eq!(canonicalize(&deep), Err(CanonicalError::TooDeep { max: CANONICAL_MAX_DEPTH }));
    }
}
