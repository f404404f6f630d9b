//! The reader every format parser uses: typed, tolerant access to the members of a document, the
//! `unread` report of what did not fit, and the count limits on what goes into the model.
//!
//! Every accessor takes the value (absent is `None`) and its JSON pointer. A value of the wrong
//! kind, too long, or not what its field may hold is reported once in `unread` and read as absent;
//! only a count limit stops the document.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::value::RawValue;

use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::limits::Limits;
use crate::model::{Component, Evidence, Provenance, Severity, Unread, VexStatement, Vulnerability};
use crate::normalize;
use airlock_model::echo::echo_short as echo;

/// Reads one document into an [`Evidence`], within `limits`.
#[derive(Debug)]
pub(crate) struct Reader<'l> {
    pub(crate) limits: &'l Limits,
    pub(crate) out: Evidence,
    /// Problems past `limits.max_unread`, counted but not kept.
    dropped: usize,
}

impl<'l> Reader<'l> {
    pub(crate) fn new(limits: &'l Limits) -> Self {
        Reader { limits, out: Evidence::default(), dropped: 0 }
    }

    /// The evidence read, with a last `unread` entry counting the problems not listed.
    pub(crate) fn finish(mut self) -> Evidence {
        if self.dropped > 0 {
            let reason = format!("{} more problems were found and not listed", self.dropped);
            self.out.unread.push(Unread { path: String::new(), reason });
        }
        self.out
    }

    /// Reports that the value at `at` was not read, and why.
    pub(crate) fn note(&mut self, at: Ptr<'_>, reason: impl Into<String>) {
        self.note_at(at.to_string(), reason);
    }

    /// [`Reader::note`] with the pointer already rendered.
    pub(crate) fn note_at(&mut self, path: String, reason: impl Into<String>) {
        if self.out.unread.len() < self.limits.max_unread {
            self.out.unread.push(Unread { path, reason: reason.into() });
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The members `names` of the object `raw`; `None` if absent, and reported if not an object.
    pub(crate) fn object<'a, const N: usize>(
        &mut self,
        raw: Option<&'a RawValue>,
        at: Ptr<'_>,
        names: &[&str; N],
    ) -> Option<[Option<&'a RawValue>; N]> {
        let raw = raw?;
        let members = json::members(raw, names);
        if members.is_none() {
            self.note(at, format!("is {}; expected an object", json::kind(raw)));
        }
        members
    }

    /// A string naming something (an id, a version, a name): no control characters at all.
    /// Empty strings read as absent.
    pub(crate) fn text(&mut self, raw: Option<&RawValue>, at: Ptr<'_>) -> Option<String> {
        self.string(raw, at, false)
    }

    /// Free text meant for people (an impact statement): line breaks and tabs are allowed, other
    /// control characters are not.
    pub(crate) fn prose(&mut self, raw: Option<&RawValue>, at: Ptr<'_>) -> Option<String> {
        self.string(raw, at, true)
    }

    fn string(&mut self, raw: Option<&RawValue>, at: Ptr<'_>, prose: bool) -> Option<String> {
        let raw = raw?;
        let Ok(value) = serde_json::from_str::<String>(raw.get()) else {
            self.note(at, format!("is {}; expected a string", json::kind(raw)));
            return None;
        };
        if value.len() > self.limits.max_string_len {
            let max = self.limits.max_string_len;
            self.note(at, format!("is a string of {} bytes; the limit is {max}", value.len()));
            return None;
        }
        if value.chars().any(|c| c.is_control() && !(prose && matches!(c, '\n' | '\r' | '\t'))) {
            self.note(at, format!("`{}` contains control characters", echo(&value)));
            return None;
        }
        (!value.is_empty()).then_some(value)
    }

    /// A finite number, given as a JSON number or as a string holding one (SARIF writes
    /// `"security-severity": "9.8"`). `NaN` and infinities are refused.
    pub(crate) fn number(&mut self, raw: Option<&RawValue>, at: Ptr<'_>) -> Option<f64> {
        let raw = raw?;
        if let Ok(number) = serde_json::from_str::<f64>(raw.get()) {
            // JSON has no NaN or infinity, and the parser refuses numbers out of range.
            return Some(number);
        }
        let text = self.text(Some(raw), at)?;
        match text.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => Some(number),
            Ok(_) => {
                self.note(at, format!("`{}` is not a finite number", echo(&text)));
                None
            }
            Err(_) => {
                self.note(at, format!("`{}` is not a number", echo(&text)));
                None
            }
        }
    }

    /// A CVSS-style score: a finite number from 0 to 10.
    pub(crate) fn score(&mut self, raw: Option<&RawValue>, at: Ptr<'_>) -> Option<f64> {
        let score = self.number(raw, at)?;
        if !(0.0..=10.0).contains(&score) {
            self.note(at, format!("`{score}` is not a score from 0 to 10"));
            return None;
        }
        Some(score)
    }

    /// An RFC 3339 timestamp, rewritten in UTC (`2021-08-25T12:20:30.000000005Z`).
    pub(crate) fn timestamp(&mut self, raw: Option<&RawValue>, at: Ptr<'_>) -> Option<String> {
        let text = self.text(raw, at)?;
        match DateTime::parse_from_rfc3339(&text) {
            Ok(time) => Some(time.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Err(_) => {
                self.note(at, format!("`{}` is not an rfc 3339 timestamp", echo(&text)));
                None
            }
        }
    }

    /// A package URL; anything else is reported and dropped, so a purl in the model is one.
    pub(crate) fn purl(&mut self, raw: Option<&RawValue>, at: Ptr<'_>) -> Option<String> {
        let text = self.text(raw, at)?;
        if normalize::looks_like_purl(&text) {
            Some(text)
        } else {
            self.note(at, format!("`{}` is not a package url", echo(&text)));
            None
        }
    }

    /// A severity name, mapped as [`Severity`] documents; `None` when absent. A name no scanner
    /// uses reads as unknown and is reported.
    pub(crate) fn severity(&mut self, raw: Option<&RawValue>, at: Ptr<'_>) -> Option<Severity> {
        let raw = raw?;
        if serde_json::from_str::<&str>(raw.get()).is_ok_and(str::is_empty) {
            return Some(Severity::Unknown);
        }
        let Some(word) = self.text(Some(raw), at) else { return Some(Severity::Unknown) };
        Some(normalize::severity(&word).unwrap_or_else(|| {
            self.note(at, format!("`{}` is not a severity any scanner defines; read as unknown", echo(&word)));
            Severity::Unknown
        }))
    }

    /// Calls `f` with each element of the array `raw` and its pointer; reports a value that is not
    /// an array. Stops at the first error `f` returns.
    pub(crate) fn each<'a>(
        &mut self,
        raw: Option<&'a RawValue>,
        at: Ptr<'_>,
        mut f: impl FnMut(&mut Self, Ptr<'_>, &'a RawValue) -> Result<(), EvidenceError>,
    ) -> Result<(), EvidenceError> {
        let Some(raw) = raw else { return Ok(()) };
        if !json::each_element(raw, |i, element| f(self, at.index(i), element))? {
            self.note(at, format!("is {}; expected an array", json::kind(raw)));
        }
        Ok(())
    }

    /// Calls `f` with each member of the object `raw`: its pointer, name and value. Reports a
    /// value that is not an object. Stops at the first error `f` returns.
    pub(crate) fn each_member<'a>(
        &mut self,
        raw: Option<&'a RawValue>,
        at: Ptr<'_>,
        mut f: impl FnMut(&mut Self, Ptr<'_>, &str, &'a RawValue) -> Result<(), EvidenceError>,
    ) -> Result<(), EvidenceError> {
        let Some(raw) = raw else { return Ok(()) };
        if !json::each_member(raw, |name, value| f(self, at.key(name), name, value))? {
            self.note(at, format!("is {}; expected an object", json::kind(raw)));
        }
        Ok(())
    }

    /// An array of names (aliases, license ids), each read with [`Reader::text`], without
    /// duplicates, at most `limits.max_list_len` of them.
    pub(crate) fn texts(
        &mut self,
        raw: Option<&RawValue>,
        at: Ptr<'_>,
        what: &'static str,
    ) -> Result<Vec<String>, EvidenceError> {
        let mut out = Vec::new();
        self.each(raw, at, |r, at, element| match r.text(Some(element), at) {
            Some(text) => r.add(&mut out, text, what),
            None => Ok(()),
        })?;
        dedup(&mut out);
        Ok(out)
    }

    /// Appends `item` to `list`; refuses the document when the list would grow past
    /// `limits.max_list_len` (duplicates count: they are dropped by [`dedup`] once it is whole).
    pub(crate) fn add(&self, list: &mut Vec<String>, item: String, what: &'static str) -> Result<(), EvidenceError> {
        if list.len() >= self.limits.max_list_len {
            return Err(EvidenceError::TooMany { what, max: self.limits.max_list_len });
        }
        list.push(item);
        Ok(())
    }

    pub(crate) fn push_provenance(&mut self, provenance: Provenance) {
        // One per document: nothing to bound.
        self.out.provenance.push(provenance);
    }

    pub(crate) fn push_component(&mut self, component: Component) -> Result<(), EvidenceError> {
        if self.out.components.len() >= self.limits.max_components {
            return Err(EvidenceError::TooMany { what: "components", max: self.limits.max_components });
        }
        self.out.components.push(component);
        Ok(())
    }

    pub(crate) fn push_vulnerability(&mut self, vulnerability: Vulnerability) -> Result<(), EvidenceError> {
        if self.out.vulnerabilities.len() >= self.limits.max_vulnerabilities {
            return Err(EvidenceError::TooMany { what: "vulnerabilities", max: self.limits.max_vulnerabilities });
        }
        self.out.vulnerabilities.push(vulnerability);
        Ok(())
    }

    pub(crate) fn push_vex(&mut self, statement: VexStatement) -> Result<(), EvidenceError> {
        if self.out.vex.len() >= self.limits.max_vex_statements {
            return Err(EvidenceError::TooMany { what: "vex statements", max: self.limits.max_vex_statements });
        }
        self.out.vex.push(statement);
        Ok(())
    }
}

/// Drops every item that appeared earlier in `list`, in linear time (a list may hold thousands).
pub(crate) fn dedup(list: &mut Vec<String>) {
    let mut seen = HashSet::new();
    let keep: Vec<bool> = list.iter().map(|item| seen.insert(item.as_str())).collect();
    let mut keep = keep.into_iter();
    list.retain(|_| keep.next().unwrap_or(true));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Reads the JSON `value` with `read` and shows the result and every note.
    fn check<T: std::fmt::Debug>(value: &str, read: impl FnOnce(&mut Reader<'_>, &RawValue) -> T) -> String {
        let limits = Limits { max_string_len: 40, max_list_len: 3, ..Limits::default() };
        let mut reader = Reader::new(&limits);
        let raw = json::root(value).unwrap();
        let result = read(&mut reader, raw);
        let notes: Vec<String> = reader.out.unread.iter().map(|u| format!("{}: {}", u.path, u.reason)).collect();
        format!("{result:?} {notes:?}")
    }

    fn at() -> Ptr<'static> {
        Ptr::ROOT
    }

    #[test]
    fn text_refuses_other_kinds_long_strings_and_control_characters() {
        assert_eq!(check(r#""1.2.3""#, |r, v| r.text(Some(v), at())), r#"Some("1.2.3") []"#);
        assert_eq!(check(r#""""#, |r, v| r.text(Some(v), at())), "None []");
        assert_eq!(check("5", |r, v| r.text(Some(v), at())), r#"None [": is a number; expected a string"]"#);
        assert_eq!(
            check(&format!("\"{}\"", "a".repeat(41)), |r, v| r.text(Some(v), at())),
            r#"None [": is a string of 41 bytes; the limit is 40"]"#
        );
        assert_eq!(
            check(r#""HIGH\u001b[0m""#, |r, v| r.text(Some(v), at())),
            r#"None [": `HIGH\\u{1b}[0m` contains control characters"]"#
        );
        assert_eq!(check(r#""a\nb""#, |r, v| r.prose(Some(v), at())), r#"Some("a\nb") []"#);
    }

    #[test]
    fn numbers_and_scores_are_finite_and_in_range() {
        assert_eq!(check("9.8", |r, v| r.score(Some(v), at())), "Some(9.8) []");
        assert_eq!(check(r#""7.5""#, |r, v| r.score(Some(v), at())), "Some(7.5) []");
        assert_eq!(check(r#""NaN""#, |r, v| r.score(Some(v), at())), r#"None [": `NaN` is not a finite number"]"#);
        assert_eq!(check(r#""-inf""#, |r, v| r.score(Some(v), at())), r#"None [": `-inf` is not a finite number"]"#);
        assert_eq!(check("11", |r, v| r.score(Some(v), at())), r#"None [": `11` is not a score from 0 to 10"]"#);
        assert_eq!(check(r#""high""#, |r, v| r.score(Some(v), at())), r#"None [": `high` is not a number"]"#);
    }

    #[test]
    fn timestamps_are_rewritten_in_utc() {
        assert_eq!(
            check(r#""2022-09-30T11:09:05.421148-04:00""#, |r, v| r.timestamp(Some(v), at())),
            r#"Some("2022-09-30T15:09:05.421148Z") []"#
        );
        assert_eq!(
            check(r#""yesterday""#, |r, v| r.timestamp(Some(v), at())),
            r#"None [": `yesterday` is not an rfc 3339 timestamp"]"#
        );
    }

    #[test]
    fn severities_map_and_report_unknown_words() {
        assert_eq!(check(r#""Negligible""#, |r, v| r.severity(Some(v), at())), "Some(Low) []");
        assert_eq!(check(r#""""#, |r, v| r.severity(Some(v), at())), "Some(Unknown) []");
        assert_eq!(
            check(r#""SEVERE""#, |r, v| r.severity(Some(v), at())),
            r#"Some(Unknown) [": `SEVERE` is not a severity any scanner defines; read as unknown"]"#
        );
    }

    #[test]
    fn lists_skip_odd_items_drop_duplicates_and_stop_at_the_limit() {
        assert_eq!(
            check(r#"["a",1,"a","b"]"#, |r, v| r.texts(Some(v), at(), "aliases").unwrap()),
            r#"["a", "b"] ["/1: is a number; expected a string"]"#
        );
        assert_eq!(
            check(r#"["a","b","c","d"]"#, |r, v| r.texts(Some(v), at(), "aliases").unwrap_err().to_string()),
            r#""document exceeds the limit of 3 aliases; raise the limit if the document is genuine" []"#
        );
        assert_eq!(
            check(r#"{"a":1}"#, |r, v| r.texts(Some(v), at(), "aliases").unwrap()),
            r#"[] [": is an object; expected an array"]"#
        );
    }

    #[test]
    fn dedup_keeps_first_occurrences_in_order() {
        let mut list: Vec<String> = ["b", "a", "b", "c", "a"].map(String::from).to_vec();
        dedup(&mut list);
        assert_eq!(list, ["b", "a", "c"]);
    }

    #[test]
    fn unread_is_bounded_and_counts_the_rest() {
        let limits = Limits { max_unread: 2, ..Limits::default() };
        let mut reader = Reader::new(&limits);
        for _ in 0..5 {
            reader.note(Ptr::ROOT, "odd");
        }
        let evidence = reader.finish();
        assert_eq!(evidence.unread.len(), 3);
        assert_eq!(evidence.unread.last().unwrap().reason, "3 more problems were found and not listed");
    }
}
