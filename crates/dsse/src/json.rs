//! The JSON rules serde_json leaves to its callers: no member twice in one object, bounded nesting,
//! bounded arrays and maps while they are read, and an infallible string writer for rendering.
//!
//! serde_json keeps the last of two members with the same name when it builds a map or a `Value`,
//! and ignores repeats of unknown members. Another parser may keep the first. An envelope or
//! statement that says two things at once is refused here, before anything reads it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use airlock_model::echo::echo_short as echo;

/// One step from a JSON value to one of its children.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Member(String),
    Index(usize),
}

/// Where in a document a problem was found, in JSONPath notation (`$.signatures[1]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JsonPath(Vec<Step>);

/// Longest path shown in an error message, in characters; a deeper path ends in `…`.
const PATH_MAX_CHARS: usize = 120;

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = String::from("$");
        // Steps are collected while the error unwinds, so innermost first.
        for step in self.0.iter().rev() {
            match step {
                Step::Member(name) => path.push_str(&format!(".{name}")),
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
            if path.chars().count() > PATH_MAX_CHARS {
                let cut: String = path.chars().take(PATH_MAX_CHARS).collect();
                return write!(f, "{cut}…");
            }
        }
        f.write_str(&path)
    }
}

/// Why a document failed the strict check.
#[derive(Debug)]
pub(crate) enum StrictError {
    /// An object names `member` twice; `path` is the object.
    Duplicate { member: String, path: JsonPath },
    /// Arrays and objects nest deeper than the limit at `path`.
    TooDeep { path: JsonPath },
    /// Not JSON at all (syntax, invalid UTF-8, trailing bytes, numbers out of range).
    Syntax(serde_json::Error),
}

/// What the strict walk found, kept aside because serde's errors are strings.
#[derive(Debug)]
enum Found {
    Duplicate { member: String, path: JsonPath },
    TooDeep { path: JsonPath },
}

impl Found {
    fn path(&mut self) -> &mut JsonPath {
        match self {
            Found::Duplicate { path, .. } | Found::TooDeep { path } => path,
        }
    }
}

/// Walks the whole document once and refuses it if any object repeats a member name (compared
/// after unescaping, so `"\u0070ayload"` repeats `"payload"`) or if arrays and objects nest more
/// than `max_depth` levels (the top-level value is level 1).
pub(crate) fn check_strict(bytes: &[u8], max_depth: usize) -> Result<(), StrictError> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walked = Strict { depth: 0, max_depth, found: &found }.deserialize(&mut de).and_then(|()| de.end());
    match (found.into_inner(), walked) {
        (Some(Found::Duplicate { member, path }), _) => Err(StrictError::Duplicate { member, path }),
        (Some(Found::TooDeep { path }), _) => Err(StrictError::TooDeep { path }),
        (None, Err(e)) => Err(StrictError::Syntax(e)),
        (None, Ok(())) => Ok(()),
    }
}

/// The strict walk over one value at nesting level `depth`.
#[derive(Clone, Copy)]
struct Strict<'f> {
    depth: usize,
    max_depth: usize,
    found: &'f RefCell<Option<Found>>,
}

impl Strict<'_> {
    /// The walker for the children of this value, or an error if they would nest too deep.
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        let depth = self.depth.saturating_add(1);
        if depth > self.max_depth {
            self.found.replace(Some(Found::TooDeep { path: JsonPath::default() }));
            return Err(E::custom("nesting too deep"));
        }
        Ok(Strict { depth, ..self })
    }

    /// Adds `step` to the path of what was found below it, as the error unwinds.
    fn unwind<E>(self, step: impl FnOnce() -> Step, error: E) -> E {
        if let Some(found) = self.found.borrow_mut().as_mut() {
            found.path().0.push(step());
        }
        error
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        let mut index = 0usize;
        loop {
            match seq.next_element_seed(inner) {
                Ok(Some(())) => index = index.saturating_add(1),
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.unwind(|| Step::Index(index), e)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        let mut seen = Seen::default();
        while let Some(member) = map.next_key_seed(StrSeed)? {
            if seen.contains(&member) {
                let member = echo(&member);
                self.found.replace(Some(Found::Duplicate { member, path: JsonPath::default() }));
                return Err(de::Error::custom("duplicate member"));
            }
            if let Err(e) = map.next_value_seed(inner) {
                return Err(self.unwind(|| Step::Member(echo(&member)), e));
            }
            seen.insert(member);
        }
        Ok(())
    }
}

/// The member names of one object so far: a list while it is short (most objects have a handful
/// of members, and hashing them would cost more than comparing), a hash set beyond that.
enum Seen<'de> {
    Few(Vec<Cow<'de, str>>),
    Many(HashSet<Cow<'de, str>>),
}

impl Default for Seen<'_> {
    fn default() -> Self {
        Seen::Few(Vec::new())
    }
}

impl<'de> Seen<'de> {
    /// Members kept in a list before switching to a hash set.
    const FEW: usize = 16;

    fn contains(&self, member: &str) -> bool {
        match self {
            Seen::Few(list) => list.iter().any(|m| m == member),
            Seen::Many(set) => set.contains(member),
        }
    }

    fn insert(&mut self, member: Cow<'de, str>) {
        match self {
            Seen::Few(list) if list.len() < Self::FEW => list.push(member),
            Seen::Few(list) => {
                let mut set: HashSet<Cow<'de, str>> = list.drain(..).collect();
                set.insert(member);
                *self = Seen::Many(set);
            }
            Seen::Many(set) => {
                set.insert(member);
            }
        }
    }
}

/// A string (a member name or value), borrowed from the input when it has no escapes.
#[derive(Clone, Copy)]
pub(crate) struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

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

/// The kind of a JSON value, for messages ("an array").
pub(crate) fn kind_of(raw: &serde_json::value::RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn strict(text: &str, max_depth: usize) -> String {
        match check_strict(text.as_bytes(), max_depth) {
            Ok(()) => "ok".to_owned(),
            Err(StrictError::Duplicate { member, path }) => format!("duplicate `{member}` at {path}"),
            Err(StrictError::TooDeep { path }) => format!("too deep at {path}"),
            Err(StrictError::Syntax(e)) => format!("syntax: {e}"),
        }
    }

    #[test]
    fn duplicates_are_found_after_unescaping_and_anywhere() {
        assert_eq!(strict(r#"{"a":1,"b":2}"#, 8), "ok");
        assert_eq!(strict(r#"{"a":1,"a":2}"#, 8), "duplicate `a` at $");
        assert_eq!(strict(r#"{"payload":1,"\u0070ayload":2}"#, 8), "duplicate `payload` at $");
        assert_eq!(strict(r#"{"x":[{},{"k":1,"k":1}]}"#, 8), "duplicate `k` at $.x[1]");
        assert_eq!(strict(r#"{"a":{"a":1},"b":{"a":1}}"#, 8), "ok");
        // Past the short list, in the hash set.
        let many: Vec<String> = (0..40).map(|i| format!(r#""m{i}":{i}"#)).collect();
        assert_eq!(strict(&format!("{{{}}}", many.join(",")), 8), "ok");
        assert_eq!(strict(&format!(r#"{{{},"m3":0}}"#, many.join(",")), 8), "duplicate `m3` at $");
        assert_eq!(strict(&format!(r#"{{{},"m39":0}}"#, many[..20].join(",")), 8), "ok");
    }

    #[test]
    fn depth_counts_arrays_and_objects() {
        assert_eq!(strict("[[1]]", 2), "ok");
        assert_eq!(strict("[[[1]]]", 2), "too deep at $[0][0]");
        assert_eq!(strict(r#"{"a":"[[[[[["}"#, 1), "ok");
        assert!(strict(&"[".repeat(100_000), 8).starts_with("too deep"));
    }

    #[test]
    fn trailing_bytes_and_bad_utf8_are_syntax_errors() {
        assert!(strict("{} {}", 8).starts_with("syntax"));
        assert!(strict("{\"a\":\"\\ud800\"}", 8).starts_with("syntax"));
    }

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
