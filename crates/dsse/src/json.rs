//! The JSON rules serde_json leaves to its callers, as DSSE reads them: the strict walk of
//! `airlock_model::json` (no member twice in one object, bounded nesting) with places named in
//! JSONPath, bounded arrays and maps while they are read, and an infallible string writer for
//! rendering.
//!
//! serde_json keeps the last of two members with the same name when it builds a map or a `Value`,
//! and ignores repeats of unknown members. Another parser may keep the first. An envelope or
//! statement that says two things at once is refused by the strict walk, before anything reads it.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

pub(crate) use airlock_model::json::{StrSeed, StrictError, check_strict, kind as kind_of};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Longest place shown in an error message, in characters; a deeper one ends in `…`.
pub(crate) const PATH_MAX_CHARS: usize = 120;

/// A JSON array or object read up to a limit: beyond it, the rest is skipped without being kept,
/// and only counted for the error message.
#[derive(Debug)]
pub(crate) enum Bounded<T> {
    Within(T),
    Exceeded { count: usize },
}

/// Reads an array of at most `max` elements, each with `element`.
#[derive(Clone, Copy)]
pub(crate) struct BoundedSeq<S> {
    pub(crate) max: usize,
    pub(crate) element: S,
}

impl<'de, S: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for BoundedSeq<S> {
    type Value = Bounded<Vec<S::Value>>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for BoundedSeq<S> {
    type Value = Bounded<Vec<S::Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // No capacity from the input's size hint: it is the attacker's number.
        let mut items = Vec::new();
        while items.len() < self.max {
            match seq.next_element_seed(self.element)? {
                Some(item) => items.push(item),
                None => return Ok(Bounded::Within(items)),
            }
        }
        let mut count = items.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count = count.saturating_add(1);
        }
        Ok(if count > self.max { Bounded::Exceeded { count } } else { Bounded::Within(items) })
    }
}

/// Reads an object of at most `max` string members into a sorted map.
#[derive(Clone, Copy)]
pub(crate) struct BoundedStringMap {
    pub(crate) max: usize,
}

impl<'de> DeserializeSeed<'de> for BoundedStringMap {
    type Value = Bounded<BTreeMap<String, String>>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BoundedStringMap {
    type Value = Bounded<BTreeMap<String, String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = BTreeMap::new();
        let mut count = 0usize;
        while let Some(name) = map.next_key::<String>()? {
            count = count.saturating_add(1);
            if count > self.max {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value::<String>()?;
            entries.insert(name, value);
        }
        Ok(if count > self.max { Bounded::Exceeded { count } } else { Bounded::Within(entries) })
    }
}

/// A value deserialized with serde's derive, usable where a seed is expected.
pub(crate) fn plain<T>() -> PhantomData<T> {
    PhantomData
}

/// Appends `s` to `out` as a JSON string, quotes included, escaping what RFC 8259 requires.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if u32::from(c) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Deserializes `bytes` with `seed`, then requires nothing but whitespace after the value.
pub(crate) fn from_slice_seed<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn bounded_seq_keeps_at_most_max() {
        let seed = BoundedSeq { max: 2, element: plain::<u8>() };
        assert!(matches!(from_slice_seed(b"[1,2]", seed), Ok(Bounded::Within(v)) if v == [1, 2]));
        assert!(matches!(from_slice_seed(b"[1,2,3,4]", seed), Ok(Bounded::Exceeded { count: 4 })));
    }

    proptest::proptest! {
        #[test]
        fn write_string_agrees_with_serde_json(s in ".*") {
            let mut out = Vec::new();
            write_string(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }
}
