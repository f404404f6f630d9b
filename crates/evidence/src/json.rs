//! The JSON machinery under every parser: the strict walk of `airlock_model::json` that bounds
//! nesting and refuses repeated members before anything is read, JSON pointers for messages, and
//! lazy access to the members and elements of a value already in memory.
//!
//! Nothing here builds a `serde_json::Value`. A document is read as borrowed [`RawValue`] slices:
//! the members a parser asks for are sliced out of the input, everything else is skipped without
//! allocating, and arrays are walked one element at a time. Memory then grows with what the
//! evidence model keeps, not with what a document contains.

use std::fmt;

/// The strict walk: refuses a document if arrays and objects nest more than its limit or if any
/// object repeats a member name (compared after unescaping, so `"\u0053everity"` repeats
/// `"Severity"`): two members with one name say two things at once, and parsers disagree about
/// which one counts.
pub(crate) use airlock_model::json::check_strict_str as check_strict;
use airlock_model::json::{StrSeed, pointer_token};
pub(crate) use airlock_model::json::{StrictError, kind};
use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON pointer (RFC 6901) built on the stack while a document is read: each step borrows its
/// parent, so naming where a value sits costs nothing until a message needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ptr<'p> {
    parent: Option<&'p Ptr<'p>>,
    step: Step<'p>,
}

#[derive(Clone, Copy, Debug)]
enum Step<'p> {
    Root,
    Key(&'p str),
    Index(usize),
}

impl<'p> Ptr<'p> {
    /// The whole document.
    pub(crate) const ROOT: Ptr<'static> = Ptr { parent: None, step: Step::Root };

    /// The member `key` of the object here.
    pub(crate) fn key<'q>(&'q self, key: &'q str) -> Ptr<'q> {
        Ptr { parent: Some(self), step: Step::Key(key) }
    }

    /// The element `index` of the array here.
    pub(crate) fn index<'q>(&'q self, index: usize) -> Ptr<'q> {
        Ptr { parent: Some(self), step: Step::Index(index) }
    }
}

impl fmt::Display for Ptr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut steps = Vec::new();
        let mut here = Some(self);
        while let Some(ptr) = here {
            steps.push(ptr.step);
            here = ptr.parent;
        }
        for step in steps.iter().rev() {
            match step {
                Step::Root => {}
                Step::Key(key) => write!(f, "/{}", pointer_token(key))?,
                Step::Index(index) => write!(f, "/{index}")?,
            }
        }
        Ok(())
    }
}

/// Where a problem sits, for messages: "the top level" or a pointer in backticks.
pub(crate) fn shown(path: &str) -> String {
    if path.is_empty() { "the top level".to_owned() } else { format!("`{path}`") }
}

/// Longest pointer shown in a message, in characters; a longer one ends in `…`.
pub(crate) const PATH_MAX_CHARS: usize = 160;

/// The top-level value of a document that passed [`check_strict`], borrowed from it.
pub(crate) fn root(text: &str) -> Result<&RawValue, serde_json::Error> {
    serde_json::from_str(text)
}

/// Whether `raw` is a JSON object.
pub(crate) fn is_object(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

/// Whether `raw` is JSON `null`.
pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

/// The members named in `names` of the object `raw`, each borrowed from the input (`None` when
/// absent or `null`); every other member is skipped without being kept. `None` if `raw` is not an
/// object. Repeated members were refused by [`check_strict`], so each slot has one answer.
pub(crate) fn members<'a, const N: usize>(raw: &'a RawValue, names: &[&str; N]) -> Option<[Option<&'a RawValue>; N]> {
    if !is_object(raw) {
        return None;
    }
    let mut slots = [None; N];
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_map(Members { names, slots: &mut slots }).ok()?;
    Some(slots)
}

struct Members<'s, 'a, const N: usize> {
    names: &'s [&'s str; N],
    slots: &'s mut [Option<&'a RawValue>; N],
}

impl<'a, const N: usize> Visitor<'a> for Members<'_, 'a, N> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key_seed(StrSeed)? {
            match self.names.iter().position(|n| *n == name) {
                Some(i) => {
                    let value: &'a RawValue = map.next_value()?;
                    if let Some(slot) = self.slots.get_mut(i) {
                        *slot = (!is_null(value)).then_some(value);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Calls `f` with each element of the array `raw`, in order, without collecting them; stops at
/// the first error `f` returns. `Ok(false)` if `raw` is not an array.
pub(crate) fn each_element<'a, E>(
    raw: &'a RawValue,
    mut f: impl FnMut(usize, &'a RawValue) -> Result<(), E>,
) -> Result<bool, E> {
    if !raw.get().trim_start().starts_with('[') {
        return Ok(false);
    }
    let mut stop = None;
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let walked = de.deserialize_seq(Elements { f: &mut f, stop: &mut stop });
    match (stop, walked) {
        (Some(e), _) => Err(e),
        // The value was sliced out of a document that parsed, so it is an array that parses.
        (None, walked) => Ok(walked.is_ok()),
    }
}

struct Elements<'s, F, E> {
    f: &'s mut F,
    stop: &'s mut Option<E>,
}

impl<'a, F, E> Visitor<'a> for Elements<'_, F, E>
where
    F: FnMut(usize, &'a RawValue) -> Result<(), E>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while let Some(element) = seq.next_element::<&'a RawValue>()? {
            if let Err(e) = (self.f)(index, element) {
                *self.stop = Some(e);
                return Err(de::Error::custom("stopped"));
            }
            index = index.saturating_add(1);
        }
        Ok(())
    }
}

/// Calls `f` with each member (name, value) of the object `raw`, in order, without collecting
/// them; stops at the first error `f` returns. `Ok(false)` if `raw` is not an object.
pub(crate) fn each_member<'a, E>(
    raw: &'a RawValue,
    mut f: impl FnMut(&str, &'a RawValue) -> Result<(), E>,
) -> Result<bool, E> {
    if !is_object(raw) {
        return Ok(false);
    }
    let mut stop = None;
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let walked = de.deserialize_map(EachMember { f: &mut f, stop: &mut stop });
    match (stop, walked) {
        (Some(e), _) => Err(e),
        (None, walked) => Ok(walked.is_ok()),
    }
}

struct EachMember<'s, F, E> {
    f: &'s mut F,
    stop: &'s mut Option<E>,
}

impl<'a, F, E> Visitor<'a> for EachMember<'_, F, E>
where
    F: FnMut(&str, &'a RawValue) -> Result<(), E>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key_seed(StrSeed)? {
            let value: &'a RawValue = map.next_value()?;
            if let Err(e) = (self.f)(&name, value) {
                *self.stop = Some(e);
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    // The strict walk's own tests, in both place notations, are in `airlock_model::json`; the
    // hostile fixtures (`tests/data/hostile/`) check this crate's limits and messages.

    #[test]
    fn members_takes_what_is_asked_and_reads_null_as_absent() {
        let raw = root(r#"{"b":[1,2],"a":"x","c":null,"z":{"deep":[1]}}"#).unwrap();
        let [a, b, c, d] = members(raw, &["a", "b", "c", "d"]).unwrap();
        assert_eq!(a.map(RawValue::get), Some(r#""x""#));
        assert_eq!(b.map(RawValue::get), Some("[1,2]"));
        assert!(c.is_none() && d.is_none());
        assert!(members(root("[1]").unwrap(), &["a"]).is_none());
    }

    #[test]
    fn elements_and_members_are_walked_in_order_and_stop_on_error() {
        let raw = root(r#"[1,"two",{"three":3}]"#).unwrap();
        let mut seen = Vec::new();
        let walked = each_element(raw, |i, v| {
            seen.push(format!("{i}={}", v.get()));
            Ok::<_, ()>(())
        });
        assert_eq!(walked, Ok(true));
        assert_eq!(seen, ["0=1", r#"1="two""#, r#"2={"three":3}"#]);
        assert_eq!(each_element(raw, |i, _| if i == 1 { Err("stop") } else { Ok(()) }), Err("stop"));
        assert_eq!(each_element(root("{}").unwrap(), |_, _| Ok::<_, ()>(())), Ok(false));
        let mut names = Vec::new();
        let object = root(r#"{"n\u0076d":{"V3Score":9.8},"redhat":{}}"#).unwrap();
        let walked = each_member(object, |k, _| {
            names.push(k.to_owned());
            Ok::<_, ()>(())
        });
        assert_eq!(walked, Ok(true));
        assert_eq!(names, ["nvd", "redhat"]);
    }

    #[test]
    fn pointers_escape_their_tokens() {
        let root = Ptr::ROOT;
        let results = root.key("Results");
        let first = results.index(0);
        let odd = first.key("a/b~c\n");
        assert_eq!(odd.to_string(), "/Results/0/a~1b~0c\\n");
        assert_eq!(Ptr::ROOT.to_string(), "");
    }
}
