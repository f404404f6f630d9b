//! The JSON rules serde_json leaves to its callers, checked in one strict walk before anything
//! reads a document: no object names a member twice, and arrays and objects nest at most to a
//! limit. Each parser (DSSE envelopes and statements, evidence documents) passes its own limit
//! and maps [`StrictError`] to its own error, naming the place with [`Location::json_path`] or
//! [`Location::pointer`].
//!
//! serde_json keeps the last of two members with the same name when it builds a map or a `Value`,
//! and ignores repeats of unknown members. Another parser may keep the first. A document that says
//! two things at once is refused here, before anything reads it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::echo::echo_short;

/// One step from a JSON value to one of its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A member of an object, its name quoted as [`echo_short`] quotes input.
    Member(String),
    /// An element of an array.
    Index(usize),
}

/// Where in a document the strict walk found a problem: the steps from the top-level value, at
/// most the nesting limit of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Innermost first: steps are collected while the walk unwinds.
    inward: Vec<Step>,
}

impl Location {
    /// The steps from the top-level value, outermost first.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.inward.iter().rev()
    }

    /// JSONPath notation (`$.signatures[1]`), cut to `max_chars` characters and then `…`.
    pub fn json_path(&self, max_chars: usize) -> String {
        let mut path = String::from("$");
        for step in self.steps() {
            match step {
                Step::Member(name) => path.push_str(&format!(".{name}")),
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
            if path.chars().count() > max_chars {
                return cut(&path, max_chars);
            }
        }
        path
    }

    /// A JSON pointer (RFC 6901, `/Results/0/a~1b`; empty for the top level), cut to `max_chars`
    /// characters and then `…`.
    pub fn pointer(&self, max_chars: usize) -> String {
        let mut path = String::new();
        for step in self.steps() {
            path.push('/');
            match step {
                Step::Member(name) => path.push_str(&escape_pointer(name)),
                Step::Index(i) => path.push_str(&i.to_string()),
            }
            if path.chars().count() > max_chars {
                return cut(&path, max_chars);
            }
        }
        path
    }
}

/// The first `max_chars` characters of `path`, then `…`.
fn cut(path: &str, max_chars: usize) -> String {
    let mut cut: String = path.chars().take(max_chars).collect();
    cut.push('…');
    cut
}

/// `~` and `/` escaped as RFC 6901 says.
fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// A member name as a JSON pointer token: bounded and control-free as every echo of input is,
/// then `~` and `/` escaped as RFC 6901 says.
pub fn pointer_token(name: &str) -> String {
    escape_pointer(&echo_short(name))
}

/// Why a document failed the strict walk.
#[derive(Debug)]
pub enum StrictError {
    /// An object names `member` (quoted as [`echo_short`] quotes input) twice; `at` is the object.
    Duplicate { member: String, at: Location },
    /// Arrays and objects nest deeper than the limit at `at`.
    TooDeep { at: Location },
    /// Not JSON at all (syntax, invalid UTF-8, trailing bytes, numbers out of range).
    Syntax(serde_json::Error),
}

/// What the walk found, kept aside because serde's errors are strings.
#[derive(Debug)]
enum Found {
    Duplicate { member: String, at: Location },
    TooDeep { at: Location },
}

impl Found {
    fn location(&mut self) -> &mut Location {
        match self {
            Found::Duplicate { at, .. } | Found::TooDeep { at } => at,
        }
    }
}

/// Walks the whole document once and refuses it if arrays and objects nest more than `max_depth`
/// levels (the top-level value is level 1; the check happens before descending, so a deep bomb
/// is refused at its first level too many) or if any object repeats a member name (compared after
/// unescaping, so `"\u0070ayload"` repeats `"payload"`).
pub fn check_strict(bytes: &[u8], max_depth: usize) -> Result<(), StrictError> {
    walk(serde_json::Deserializer::from_slice(bytes), max_depth)
}

/// [`check_strict`] over text already known to be UTF-8, which spares checking it again.
pub fn check_strict_str(text: &str, max_depth: usize) -> Result<(), StrictError> {
    walk(serde_json::Deserializer::from_str(text), max_depth)
}

fn walk<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    max_depth: usize,
) -> Result<(), StrictError> {
    let found = RefCell::new(None);
    let walked = Strict { depth: 0, max_depth, found: &found }.deserialize(&mut de).and_then(|()| de.end());
    match (found.into_inner(), walked) {
        (Some(Found::Duplicate { member, at }), _) => Err(StrictError::Duplicate { member, at }),
        (Some(Found::TooDeep { at }), _) => Err(StrictError::TooDeep { at }),
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
            self.found.replace(Some(Found::TooDeep { at: Location::default() }));
            return Err(E::custom("nesting too deep"));
        }
        Ok(Strict { depth, ..self })
    }

    /// Adds `step` to the location of what was found below it, as the error unwinds.
    fn unwind<E>(self, step: impl FnOnce() -> Step, error: E) -> E {
        if let Some(found) = self.found.borrow_mut().as_mut() {
            found.location().inward.push(step());
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
                let member = echo_short(&member);
                self.found.replace(Some(Found::Duplicate { member, at: Location::default() }));
                return Err(de::Error::custom("duplicate member"));
            }
            if let Err(e) = map.next_value_seed(inner) {
                return Err(self.unwind(|| Step::Member(echo_short(&member)), e));
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
#[derive(Debug, Clone, Copy)]
pub struct StrSeed;

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

/// The kind of a JSON value, for messages ("is an array").
pub fn kind(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    /// The outcome with the place in both notations: `json_path | pointer`.
    fn strict(text: &str, max_depth: usize) -> String {
        let both = |at: &Location| format!("{} | `{}`", at.json_path(120), at.pointer(160));
        match check_strict(text.as_bytes(), max_depth) {
            Ok(()) => "ok".to_owned(),
            Err(StrictError::Duplicate { member, at }) => format!("duplicate `{member}` at {}", both(&at)),
            Err(StrictError::TooDeep { at }) => format!("too deep at {}", both(&at)),
            Err(StrictError::Syntax(e)) => format!("syntax: {e}"),
        }
    }

    #[test]
    fn duplicates_are_found_after_unescaping_and_anywhere() {
        assert_eq!(strict(r#"{"a":1,"b":2}"#, 8), "ok");
        assert_eq!(strict(r#"{"a":1,"a":2}"#, 8), "duplicate `a` at $ | ``");
        assert_eq!(strict(r#"{"payload":1,"\u0070ayload":2}"#, 8), "duplicate `payload` at $ | ``");
        assert_eq!(strict(r#"{"Severity":1,"\u0053everity":2}"#, 8), "duplicate `Severity` at $ | ``");
        assert_eq!(strict(r#"{"x":[{},{"k":1,"k":1}]}"#, 8), "duplicate `k` at $.x[1] | `/x/1`");
        assert_eq!(strict(r#"{"a/b":{"k":1,"k":1}}"#, 8), "duplicate `k` at $.a/b | `/a~1b`");
        assert_eq!(strict(r#"{"a":{"a":1},"b":{"a":1}}"#, 8), "ok");
        // Past the short list, in the hash set.
        let many: Vec<String> = (0..40).map(|i| format!(r#""m{i}":{i}"#)).collect();
        assert_eq!(strict(&format!("{{{}}}", many.join(",")), 8), "ok");
        assert_eq!(strict(&format!(r#"{{{},"m3":0}}"#, many.join(",")), 8), "duplicate `m3` at $ | ``");
        assert_eq!(strict(&format!(r#"{{{},"m39":0}}"#, many[..20].join(",")), 8), "ok");
    }

    #[test]
    fn depth_counts_arrays_and_objects_before_descending() {
        assert_eq!(strict("[[1]]", 2), "ok");
        assert_eq!(strict("[[[1]]]", 2), "too deep at $[0][0] | `/0/0`");
        assert_eq!(strict(r#"{"a":"[[[[[["}"#, 1), "ok");
        assert!(strict(&"[".repeat(1_000_000), 64).starts_with("too deep"));
        assert!(check_strict_str(&"[".repeat(100_000), 8).is_err_and(|e| matches!(e, StrictError::TooDeep { .. })));
    }

    #[test]
    fn trailing_bytes_and_bad_utf8_are_syntax_errors() {
        assert!(strict("{} {}", 8).starts_with("syntax"));
        assert!(strict("{\"a\":\"\\ud800\"}", 8).starts_with("syntax"));
        assert!(matches!(check_strict(b"{\"a\":\"\xff\"}", 8), Err(StrictError::Syntax(_))));
        assert!(matches!(check_strict_str("{} {}", 8), Err(StrictError::Syntax(_))));
    }

    #[test]
    fn places_are_bounded_and_escaped() {
        let long = "k".repeat(100);
        let text = format!(r#"{{"{long}":{{"{long}":{{"x":1,"x":2}}}}}}"#);
        let Err(StrictError::Duplicate { at, .. }) = check_strict(text.as_bytes(), 8) else {
            panic!("{text} repeats `x`")
        };
        assert_eq!(at.json_path(120).chars().count(), 121);
        assert!(at.json_path(120).ends_with('…'));
        assert_eq!(at.pointer(160).chars().count(), 161);
        // Member names are echoed: bounded, control characters escaped.
        assert_eq!(pointer_token("a/b~c\n"), "a~1b~0c\\n");
        assert_eq!(pointer_token(&"y".repeat(200)).chars().count(), 81);
    }

    #[test]
    fn kinds() {
        let kind_of = |text: &str| kind(serde_json::from_str::<&RawValue>(text).unwrap());
        let kinds: Vec<&str> =
            [" {}", "[]", "\"s\"", "true", "false", "null", "-1.5"].iter().map(|t| kind_of(t)).collect();
        assert_eq!(kinds, ["an object", "an array", "a string", "a boolean", "a boolean", "null", "a number"]);
    }
}
