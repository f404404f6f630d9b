//! The policy input: bounded, checked against the shape of `docs/policy-input.md`, hashed, and
//! given the fields the engine derives (`license_choices`, `license_error`).
//!
//! A policy that reads a missing field sees `undefined`, and a `deny` rule over `undefined` does
//! not fire: an input without `evidence.vulnerabilities` would pass every vulnerability rule. So
//! the engine refuses, before any Rego runs, an input that lacks a field the rules rely on or
//! holds one of the wrong type.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher as _;

use airlock_model::Timestamp;
use airlock_model::echo::echo;
use regorus::Value as RegoValue;
use serde_json::{Map, Value};

use crate::canonical::{CanonicalError, canonicalize};
use crate::decision::{ErrorCode, EvalError};
use crate::engine::EvalLimits;
use crate::license::component_choices;
use crate::waiver::{Waiver, waivers_from_value};

/// The severities of `evidence.vulnerabilities[].severity`.
const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "unknown"];
/// The lists of an evidence object.
const EVIDENCE_LISTS: [&str; 6] = ["provenance", "components", "vulnerabilities", "vex", "tests", "unread"];

/// An input ready for evaluation, or the reasons it is not.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// `sha256:<hex>` of the input's RFC 8785 form, when it has one.
    pub(crate) digest: Option<String>,
    /// The input as regorus holds it, with the derived fields, when it passed every check.
    pub(crate) value: Option<RegoValue>,
    /// `input.artifact.repository`.
    pub(crate) repository: String,
    /// `input.vex_applied`, copied.
    pub(crate) vex_applied: Vec<Value>,
    /// `input.waivers`, checked.
    pub(crate) waivers: Vec<Waiver>,
    pub(crate) errors: Vec<EvalError>,
}

/// Bounds, hashes, checks and enriches `input` for a decision at `at`.
pub(crate) fn prepare(input: &Value, at: Timestamp, limits: &EvalLimits) -> Prepared {
    let mut out = Prepared::default();
    // 1. Depth and size, on the canonical form that is also hashed.
    let canonical = match canonicalize(input, limits.max_input_depth) {
        Ok(bytes) => bytes,
        Err(CanonicalError::TooDeep { max }) => {
            out.errors.push(EvalError::new(
                ErrorCode::InputTooDeep,
                format!("policy input nests deeper than {max} levels; the engine builds inputs within this limit, so the evidence is likely hostile"),
            ));
            return out;
        }
        Err(e @ CanonicalError::NotFinite { .. }) => {
            out.errors
                .push(EvalError::new(ErrorCode::InputInvalid, format!("policy input has no canonical form: {e}")));
            return out;
        }
    };
    out.digest = Some(airlock_model::Digest::of(&canonical).to_string());
    if canonical.len() > limits.max_input_bytes {
        out.errors.push(EvalError::new(
            ErrorCode::InputTooLarge,
            format!(
                "policy input is {} bytes; the limit is {}; attach less evidence or raise `policy.max_input_bytes`",
                canonical.len(),
                limits.max_input_bytes
            ),
        ));
        return out;
    }
    // 2. Shape.
    if let Err(problem) = check_shape(input) {
        out.errors.push(EvalError::new(ErrorCode::InputInvalid, format!("policy input is invalid: {problem}")));
        return out;
    }
    let Some(root) = input.as_object() else { return out };
    out.repository = str_at(root, "artifact", "repository").unwrap_or_default().to_owned();
    out.vex_applied = root.get("vex_applied").and_then(Value::as_array).cloned().unwrap_or_default();
    // 3. Time: `input.time` is the decision time, so that rules and waivers judge the same instant.
    let time = root.get("time").and_then(Value::as_str).unwrap_or_default();
    match Timestamp::parse_rfc3339_strict(time) {
        Some(t) if t == at => {}
        _ => out.errors.push(EvalError::new(
            ErrorCode::TimeMismatch,
            format!(
                "policy input `time` is `{}` but the decision time is {}; build the input with the decision time",
                echo(time),
                at.to_rfc3339()
            ),
        )),
    }
    // 4. Waivers granted outside the bundle.
    if let Some(waivers) = root.get("waivers") {
        match waivers_from_value(waivers, &limits.waivers) {
            Ok(waivers) => out.waivers = waivers,
            Err(e) => out.errors.push(EvalError::new(ErrorCode::InvalidWaiver, format!("policy input `waivers`: {e}"))),
        }
    }
    if out.errors.is_empty() {
        // Built from the borrowed JSON, not through regorus' `From<serde_json::Value>`, which
        // turns a failure into `undefined`: an undefined input would silence every `deny` body.
        out.value = Some(Converter::default().root(input));
    }
    out
}

fn str_at<'a>(root: &'a Map<String, Value>, object: &str, key: &str) -> Option<&'a str> {
    root.get(object)?.as_object()?.get(key)?.as_str()
}

/// Where a value sits in the input, written out only when it is reported.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// The first problem with the input's shape, as `` `path`: what is wrong ``.
fn check_shape(input: &Value) -> Result<(), String> {
    let path = Path::Root("input");
    let root = object(input, &path)?;
    let artifact_path = path.key("artifact");
    let artifact = object(required(root, &path, "artifact")?, &artifact_path)?;
    string(required(artifact, &artifact_path, "repository")?, &artifact_path.key("repository"))?;
    string(required(artifact, &artifact_path, "digest")?, &artifact_path.key("digest"))?;
    for key in ["source_stage", "target_stage", "time"] {
        string(required(root, &path, key)?, &path.key(key))?;
    }
    let attestations_path = path.key("attestations");
    let attestations = array(required(root, &path, "attestations")?, &attestations_path)?;
    for (i, a) in attestations.iter().enumerate() {
        let path = attestations_path.index(i);
        let a = object(a, &path)?;
        string(required(a, &path, "predicate_type")?, &path.key("predicate_type"))?;
        let signers_path = path.key("signers");
        let signers = array(required(a, &path, "signers")?, &signers_path)?;
        for (j, s) in signers.iter().enumerate() {
            string(s, &signers_path.index(j))?;
        }
        if !required(a, &path, "trusted")?.is_boolean() {
            return Err(format!("`{}` is not a boolean", path.key("trusted")));
        }
        if let Some(evidence) = a.get("evidence") {
            check_evidence(evidence, &path.key("evidence"))?;
        }
    }
    check_evidence(required(root, &path, "evidence")?, &path.key("evidence"))?;
    for key in ["vex_applied", "approvals", "waivers"] {
        if let Some(v) = root.get(key) {
            array(v, &path.key(key))?;
        }
    }
    if let Some(v) = root.get("requester") {
        object(v, &path.key("requester"))?;
    }
    Ok(())
}

fn check_evidence(value: &Value, path: &Path<'_>) -> Result<(), String> {
    let evidence = object(value, path)?;
    for list in EVIDENCE_LISTS {
        let list_path = path.key(list);
        let items = array(required(evidence, path, list)?, &list_path)?;
        for (i, item) in items.iter().enumerate() {
            let item_path = list_path.index(i);
            let p = &item_path;
            let item = object(item, p)?;
            match list {
                "components" => {
                    string(required(item, p, "name")?, &p.key("name"))?;
                    if let Some(licenses) = item.get("licenses") {
                        let licenses_path = p.key("licenses");
                        for (j, l) in array(licenses, &licenses_path)?.iter().enumerate() {
                            string(l, &licenses_path.index(j))?;
                        }
                    }
                    optional_string(item, p, "license_expression")?;
                    optional_string(item, p, "purl")?;
                }
                "vulnerabilities" => {
                    let id = string(required(item, p, "id")?, &p.key("id"))?;
                    if id.is_empty() {
                        return Err(format!("`{}` is empty", p.key("id")));
                    }
                    let severity = string(required(item, p, "severity")?, &p.key("severity"))?;
                    if !SEVERITIES.contains(&severity) {
                        return Err(format!(
                            "`{}` is `{}`; it is one of `critical`, `high`, `medium`, `low`, `unknown`",
                            p.key("severity"),
                            echo(severity)
                        ));
                    }
                    if !required(item, p, "fix_available")?.is_boolean() {
                        return Err(format!("`{}` is not a boolean", p.key("fix_available")));
                    }
                    if item.get("cvss_score").is_some_and(|s| !s.is_null() && !s.is_number()) {
                        return Err(format!("`{}` is not a number or null", p.key("cvss_score")));
                    }
                    optional_string(item, p, "package_purl")?;
                    optional_string(item, p, "scanned_at")?;
                }
                "provenance" => {
                    optional_string(item, p, "builder_id")?;
                    optional_string(item, p, "source_repository")?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn required<'a>(object: &'a Map<String, Value>, path: &Path<'_>, key: &str) -> Result<&'a Value, String> {
    object.get(key).ok_or_else(|| format!("`{path}.{key}` is missing"))
}

fn object<'a>(value: &'a Value, path: &Path<'_>) -> Result<&'a Map<String, Value>, String> {
    value.as_object().ok_or_else(|| format!("`{path}` is not an object"))
}

fn array<'a>(value: &'a Value, path: &Path<'_>) -> Result<&'a Vec<Value>, String> {
    value.as_array().ok_or_else(|| format!("`{path}` is not an array"))
}

fn string<'a>(value: &'a Value, path: &Path<'_>) -> Result<&'a str, String> {
    value.as_str().ok_or_else(|| format!("`{path}` is not a string"))
}

fn optional_string(object: &Map<String, Value>, path: &Path<'_>, key: &str) -> Result<(), String> {
    match object.get(key) {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(_) => Err(format!("`{path}.{key}` is not a string or null")),
    }
}

/// Builds the regorus value of an input, adding `license_choices` and `license_error` to every
/// component of `evidence` and of each attestation's `evidence` (replacing any the caller set):
/// Rego has no recursion to evaluate SPDX expressions (see [`crate::license`]). Components that
/// state the same licenses share one reading. The input's depth is already bounded.
///
/// The merged `evidence` repeats what the attestations' own `evidence` holds, so an item of an
/// evidence list identical to one already converted at the same place (the same JSON, numbers
/// by kind and bits) is not converted again: it shares that value (regorus values are immutable
/// and reference-counted), which is the value converting it again would give. Member names,
/// repeated by every item, are shared too.
#[derive(Default)]
struct Converter<'a> {
    seen: BTreeMap<(Option<&'a str>, Vec<&'a str>), Derived>,
    /// Converted evidence items by their fingerprint's hash and place, with the JSON they came
    /// from, compared in full on a hit.
    items: HashMap<(u64, Place), Vec<(&'a Value, RegoValue)>>,
    /// The hasher of fingerprints: keyed per process, so that crafted evidence cannot make every
    /// item collide.
    hasher: std::hash::RandomState,
    /// A fingerprint being written.
    buffer: Vec<u8>,
    keys: HashMap<&'a str, RegoValue>,
}

type Derived = (RegoValue, RegoValue);

/// Where a value sits in the input, as far as enrichment cares.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Root,
    Attestations,
    Attestation,
    Evidence,
    Components,
    Component,
    /// An evidence list other than `components`.
    EvidenceList,
    /// An item of such a list.
    EvidenceItem,
    Other,
}

impl Place {
    /// The place of member `key` of an object at `self`, or of an item of an array at `self`.
    fn child(self, key: Option<&str>) -> Place {
        match (self, key) {
            (Place::Root, Some("evidence")) | (Place::Attestation, Some("evidence")) => Place::Evidence,
            (Place::Root, Some("attestations")) => Place::Attestations,
            (Place::Attestations, None) => Place::Attestation,
            (Place::Evidence, Some("components")) => Place::Components,
            (Place::Evidence, Some(_)) => Place::EvidenceList,
            (Place::Components, None) => Place::Component,
            (Place::EvidenceList, None) => Place::EvidenceItem,
            _ => Place::Other,
        }
    }
}

impl<'a> Converter<'a> {
    fn root(&mut self, value: &'a Value) -> RegoValue {
        self.convert(value, Place::Root)
    }

    fn convert(&mut self, value: &'a Value, place: Place) -> RegoValue {
        match value {
            Value::Null => RegoValue::Null,
            Value::Bool(b) => RegoValue::Bool(*b),
            Value::Number(n) => number(n),
            Value::String(s) => RegoValue::String(s.as_str().into()),
            Value::Array(items) => {
                let place = place.child(None);
                let shared = matches!(place, Place::Component | Place::EvidenceItem);
                RegoValue::from(
                    items
                        .iter()
                        .map(|item| if shared { self.convert_shared(item, place) } else { self.convert(item, place) })
                        .collect::<Vec<_>>(),
                )
            }
            Value::Object(map) => {
                let mut object: BTreeMap<RegoValue, RegoValue> =
                    map.iter().map(|(key, item)| (self.key(key), self.convert(item, place.child(Some(key))))).collect();
                if place == Place::Component {
                    let (choices, error) = self.licenses(map);
                    object.insert(RegoValue::from("license_choices"), choices);
                    object.insert(RegoValue::from("license_error"), error);
                }
                RegoValue::from(object)
            }
        }
    }

    /// `value` at `place` converted, or the value of an equal one converted there before.
    fn convert_shared(&mut self, value: &'a Value, place: Place) -> RegoValue {
        self.buffer.clear();
        fingerprint(value, &mut self.buffer);
        let hash = self.hasher.hash_one(self.buffer.as_slice());
        if let Some(converted) =
            self.items.get(&(hash, place)).and_then(|same| same.iter().find(|(v, _)| identical(v, value)))
        {
            return converted.1.clone();
        }
        let converted = self.convert(value, place);
        self.items.entry((hash, place)).or_default().push((value, converted.clone()));
        converted
    }

    /// A member name as a regorus string, shared with every other occurrence of the same name.
    fn key(&mut self, key: &'a str) -> RegoValue {
        self.keys.entry(key).or_insert_with(|| RegoValue::String(key.into())).clone()
    }

    /// The reading of a component's licenses, worked out once per distinct statement.
    fn licenses(&mut self, component: &'a Map<String, Value>) -> Derived {
        let expression = component.get("license_expression").and_then(Value::as_str);
        let licenses: Vec<&str> = component
            .get("licenses")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let key = (expression, licenses);
        if let Some(derived) = self.seen.get(&key) {
            return derived.clone();
        }
        let derived = derive(component_choices(key.0, &key.1));
        self.seen.insert(key, derived.clone());
        derived
    }
}

/// Whether `a` and `b` are the same JSON, numbers by kind and bits: serde_json's `==` holds `0.0`
/// and `-0.0` equal, which regorus does not print alike.
fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_bits(x) == number_bits(y),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| identical(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
        }
        _ => a == b,
    }
}

/// A number's kind (unsigned, negative, float) and bits.
fn number_bits(n: &serde_json::Number) -> (u8, u64) {
    match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(u), _, _) => (3, u),
        (None, Some(i), _) => (4, u64::from_le_bytes(i.to_le_bytes())),
        (None, None, f) => (5, f.unwrap_or_default().to_bits()),
    }
}

/// Appends bytes that tell `value` apart from any other JSON value (the converse is checked on
/// a hit): a tag per kind, lengths, string bytes, and numbers by kind and bits. Hashed as one
/// slice, this is several times cheaper than hashing the value member by member.
fn fingerprint(value: &Value, out: &mut Vec<u8>) {
    let length =
        |n: usize, out: &mut Vec<u8>| out.extend_from_slice(&u64::try_from(n).unwrap_or(u64::MAX).to_le_bytes());
    match value {
        Value::Null => out.push(0),
        Value::Bool(b) => out.push(if *b { 2 } else { 1 }),
        Value::Number(n) => {
            let (tag, bits) = number_bits(n);
            out.push(tag);
            out.extend_from_slice(&bits.to_le_bytes());
        }
        Value::String(s) => {
            out.push(6);
            length(s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            out.push(7);
            length(items.len(), out);
            for item in items {
                fingerprint(item, out);
            }
        }
        Value::Object(map) => {
            out.push(8);
            length(map.len(), out);
            for (key, item) in map {
                length(key.len(), out);
                out.extend_from_slice(key.as_bytes());
                fingerprint(item, out);
            }
        }
    }
}

/// A JSON number as regorus holds it: integers exactly, others as the double serde_json read
/// (always finite: JSON has no other).
fn number(n: &serde_json::Number) -> RegoValue {
    if let Some(i) = n.as_i64() {
        RegoValue::from(i)
    } else if let Some(u) = n.as_u64() {
        RegoValue::from(u)
    } else {
        RegoValue::from(n.as_f64().unwrap_or_default())
    }
}

fn derive(result: Result<Vec<crate::license::Choice>, crate::license::LicenseError>) -> Derived {
    match result {
        Ok(choices) => {
            let choices: Vec<RegoValue> = choices
                .into_iter()
                .map(|c| RegoValue::from(c.into_iter().map(RegoValue::from).collect::<Vec<_>>()))
                .collect();
            (RegoValue::from(choices), RegoValue::Null)
        }
        Err(e) => (RegoValue::from(Vec::new()), RegoValue::from(e.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn evidence(components: Value) -> Value {
        json!({"provenance": [], "components": components, "vulnerabilities": [], "vex": [], "tests": [], "unread": []})
    }

    #[test]
    fn conversion_keeps_values_and_derives_licenses_wherever_evidence_is() {
        let component = json!({"name": "a", "license_expression": "MIT OR GPL-3.0-only", "license_choices": "forged"});
        let input = json!({
            "artifact": {"repository": "dev/app", "digest": "sha256:00", "size": 18_446_744_073_709_551_615u64,
                         "annotations": {"score": 9.8, "negative": -3, "none": null, "yes": true}},
            "source_stage": "dev", "target_stage": "staging", "time": "2026-11-26T05:00:00Z",
            "attestations": [{"predicate_type": "x", "signers": [], "trusted": true, "evidence": evidence(json!([component.clone()]))}],
            "evidence": evidence(json!([component, {"name": "b", "license_expression": "MIT AND ("}])),
        });
        let at = Timestamp::parse_rfc3339_strict("2026-11-26T05:00:00Z").unwrap();
        let prepared = prepare(&input, at, &EvalLimits::default());
        assert!(prepared.errors.is_empty(), "{:?}", prepared.errors);
        let value = prepared.value.unwrap();
        let json: Value = serde_json::from_str(&value.to_json_str().unwrap()).unwrap();
        assert_eq!(json["artifact"], input["artifact"]);
        let choices = json!([["GPL-3.0-only"], ["MIT"]]);
        assert_eq!(json["evidence"]["components"][0]["license_choices"], choices);
        assert_eq!(json["evidence"]["components"][0]["license_error"], Value::Null);
        assert_eq!(json["attestations"][0]["evidence"]["components"][0]["license_choices"], choices);
        assert_eq!(json["evidence"]["components"][1]["license_choices"], json!([]));
        assert!(json["evidence"]["components"][1]["license_error"].is_string());
        // Anything outside a component keeps what the caller wrote.
        assert_eq!(json["evidence"]["license_choices"], Value::Null);
    }

    #[test]
    fn equal_evidence_items_share_one_value_and_others_keep_their_own() {
        let item = json!({"id": "CVE-1", "severity": "low", "fix_available": false, "cvss_score": 1});
        // Equal as numbers, but not the same JSON: never shared.
        let float = json!({"id": "CVE-1", "severity": "low", "fix_available": false, "cvss_score": 1.0});
        let zero = json!({"id": "CVE-2", "severity": "low", "fix_available": false, "cvss_score": 0.0});
        let negative_zero = json!({"id": "CVE-2", "severity": "low", "fix_available": false, "cvss_score": -0.0});
        let component = json!({"name": "a", "license_expression": "MIT"});
        let input = json!({
            "evidence": evidence(json!([component.clone()])),
            "attestations": [{"evidence": {"vulnerabilities": [item.clone(), float, item, zero, negative_zero], "components": [component]}}],
        });
        let mut converter = Converter::default();
        let value = converter.root(&input);
        let object = |v: &RegoValue| match v {
            RegoValue::Object(o) => o.clone(),
            other => panic!("{other:?}"),
        };
        let vulnerabilities = &value["attestations"][0]["evidence"]["vulnerabilities"];
        let [first, second, third] = [0u64, 1, 2].map(|i| object(&vulnerabilities[&RegoValue::from(i)]));
        assert!(regorus::Rc::ptr_eq(&first, &third));
        assert!(!regorus::Rc::ptr_eq(&first, &second));
        let [fourth, fifth] = [3u64, 4].map(|i| object(&vulnerabilities[&RegoValue::from(i)]));
        assert!(!regorus::Rc::ptr_eq(&fourth, &fifth));
        // Each is what converting it alone gives.
        let items = input["attestations"][0]["evidence"]["vulnerabilities"].as_array().unwrap();
        for (i, item) in items.iter().enumerate() {
            let alone = Converter::default().convert(item, Place::EvidenceItem);
            let shared = &vulnerabilities[&RegoValue::from(i)];
            assert_eq!(shared.to_json_str().unwrap(), alone.to_json_str().unwrap());
        }
        // A component shared between the merged and an attestation's evidence keeps its licenses.
        let merged = &value["evidence"]["components"][0];
        let attested = &value["attestations"][0]["evidence"]["components"][0];
        assert!(regorus::Rc::ptr_eq(&object(merged), &object(attested)));
        let choices: Value = serde_json::from_str(&merged["license_choices"].to_json_str().unwrap()).unwrap();
        assert_eq!(choices, json!([["MIT"]]));
    }

    #[test]
    fn shape_errors_name_the_full_path() {
        let input = json!({
            "artifact": {"repository": "dev/app", "digest": "sha256:00"},
            "source_stage": "dev", "target_stage": "staging", "time": "2026-11-26T05:00:00Z",
            "attestations": [{"predicate_type": "x", "signers": [], "trusted": true,
                              "evidence": evidence(json!([{"name": "a", "licenses": ["MIT", 7]}]))}],
            "evidence": evidence(json!([])),
        });
        assert_eq!(
            check_shape(&input).unwrap_err(),
            "`input.attestations[0].evidence.components[0].licenses[1]` is not a string"
        );
    }
}
