//! The policy input: bounded, checked against the shape of `docs/policy-input.md`, hashed, and
//! given the fields the engine derives (`license_choices`, `license_error`).
//!
//! A policy that reads a missing field sees `undefined`, and a `deny` rule over `undefined` does
//! not fire: an input without `evidence.vulnerabilities` would pass every vulnerability rule. So
//! the engine refuses, before any Rego runs, an input that lacks a field the rules rely on or
//! holds one of the wrong type.

use std::collections::BTreeMap;

use airlock_model::Timestamp;
use airlock_model::echo::echo;
use regorus::Value as RegoValue;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::canonical::{CanonicalError, canonicalize};
use crate::decision::{ErrorCode, EvalError};
use crate::engine::EvalLimits;
use crate::license::component_choices;
use crate::time::parse_time;
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
    match parse_time(time) {
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
        // Converted from a borrow, without regorus' `From<serde_json::Value>`, which turns a
        // failure into `undefined`: an undefined input would silence every `deny` body.
        match RegoValue::deserialize(input) {
            Ok(mut value) => {
                enrich(&mut value);
                out.value = Some(value);
            }
            Err(e) => out.errors.push(EvalError::new(
                ErrorCode::InputInvalid,
                format!("policy input cannot be handed to the policy engine: {e}"),
            )),
        }
    }
    out
}

fn str_at<'a>(root: &'a Map<String, Value>, object: &str, key: &str) -> Option<&'a str> {
    root.get(object)?.as_object()?.get(key)?.as_str()
}

/// The first problem with the input's shape, as `` `path`: what is wrong ``.
fn check_shape(input: &Value) -> Result<(), String> {
    let root = object(input, "input")?;
    let artifact = object(required(root, "input", "artifact")?, "input.artifact")?;
    string(required(artifact, "input.artifact", "repository")?, "input.artifact.repository")?;
    string(required(artifact, "input.artifact", "digest")?, "input.artifact.digest")?;
    for key in ["source_stage", "target_stage", "time"] {
        string(required(root, "input", key)?, &format!("input.{key}"))?;
    }
    let attestations = array(required(root, "input", "attestations")?, "input.attestations")?;
    for (i, a) in attestations.iter().enumerate() {
        let path = format!("input.attestations[{i}]");
        let a = object(a, &path)?;
        string(required(a, &path, "predicate_type")?, &format!("{path}.predicate_type"))?;
        let signers = array(required(a, &path, "signers")?, &format!("{path}.signers"))?;
        for (j, s) in signers.iter().enumerate() {
            string(s, &format!("{path}.signers[{j}]"))?;
        }
        if !required(a, &path, "trusted")?.is_boolean() {
            return Err(format!("`{path}.trusted` is not a boolean"));
        }
        if let Some(evidence) = a.get("evidence") {
            check_evidence(evidence, &format!("{path}.evidence"))?;
        }
    }
    check_evidence(required(root, "input", "evidence")?, "input.evidence")?;
    for key in ["vex_applied", "approvals", "waivers"] {
        if let Some(v) = root.get(key) {
            array(v, &format!("input.{key}"))?;
        }
    }
    if let Some(v) = root.get("requester") {
        object(v, "input.requester")?;
    }
    Ok(())
}

fn check_evidence(value: &Value, path: &str) -> Result<(), String> {
    let evidence = object(value, path)?;
    for list in EVIDENCE_LISTS {
        let items = array(required(evidence, path, list)?, &format!("{path}.{list}"))?;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}.{list}[{i}]");
            let item = object(item, &item_path)?;
            match list {
                "components" => {
                    string(required(item, &item_path, "name")?, &format!("{item_path}.name"))?;
                    if let Some(licenses) = item.get("licenses") {
                        for (j, l) in array(licenses, &format!("{item_path}.licenses"))?.iter().enumerate() {
                            string(l, &format!("{item_path}.licenses[{j}]"))?;
                        }
                    }
                    optional_string(item, &item_path, "license_expression")?;
                    optional_string(item, &item_path, "purl")?;
                }
                "vulnerabilities" => {
                    let id = string(required(item, &item_path, "id")?, &format!("{item_path}.id"))?;
                    if id.is_empty() {
                        return Err(format!("`{item_path}.id` is empty"));
                    }
                    let severity = string(required(item, &item_path, "severity")?, &format!("{item_path}.severity"))?;
                    if !SEVERITIES.contains(&severity) {
                        return Err(format!(
                            "`{item_path}.severity` is `{}`; it is one of `critical`, `high`, `medium`, `low`, `unknown`",
                            echo(severity)
                        ));
                    }
                    if !required(item, &item_path, "fix_available")?.is_boolean() {
                        return Err(format!("`{item_path}.fix_available` is not a boolean"));
                    }
                    if item.get("cvss_score").is_some_and(|s| !s.is_null() && !s.is_number()) {
                        return Err(format!("`{item_path}.cvss_score` is not a number or null"));
                    }
                    optional_string(item, &item_path, "package_purl")?;
                    optional_string(item, &item_path, "scanned_at")?;
                }
                "provenance" => {
                    optional_string(item, &item_path, "builder_id")?;
                    optional_string(item, &item_path, "source_repository")?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn required<'a>(object: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a Value, String> {
    object.get(key).ok_or_else(|| format!("`{path}.{key}` is missing"))
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    value.as_object().ok_or_else(|| format!("`{path}` is not an object"))
}

fn array<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>, String> {
    value.as_array().ok_or_else(|| format!("`{path}` is not an array"))
}

fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, String> {
    value.as_str().ok_or_else(|| format!("`{path}` is not a string"))
}

fn optional_string(object: &Map<String, Value>, path: &str, key: &str) -> Result<(), String> {
    match object.get(key) {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(_) => Err(format!("`{path}.{key}` is not a string or null")),
    }
}

/// Adds `license_choices` and `license_error` to every component, replacing any the caller set:
/// Rego has no recursion to evaluate SPDX expressions (see [`crate::license`]). Components that
/// state the same licenses share one reading.
fn enrich(input: &mut RegoValue) {
    let mut seen = BTreeMap::new();
    let Ok(root) = input.as_object_mut() else { return };
    if let Some(evidence) = member(root, "evidence") {
        enrich_evidence(evidence, &mut seen);
    }
    if let Some(attestations) = member(root, "attestations").and_then(|a| a.as_array_mut().ok()) {
        for attestation in attestations.iter_mut() {
            if let Ok(a) = attestation.as_object_mut()
                && let Some(evidence) = member(a, "evidence")
            {
                enrich_evidence(evidence, &mut seen);
            }
        }
    }
}

/// The member `key` of `object`, if it has one.
fn member<'a>(object: &'a mut regorus::value::Object, key: &str) -> Option<&'a mut RegoValue> {
    let key = RegoValue::from(key);
    object.get(&key)?;
    Some(object.get_or_insert_with(key, || RegoValue::Undefined))
}

type Derived = (RegoValue, RegoValue);

fn enrich_evidence(evidence: &mut RegoValue, seen: &mut BTreeMap<(Option<String>, Vec<String>), Derived>) {
    let Ok(evidence) = evidence.as_object_mut() else { return };
    let Some(components) = member(evidence, "components").and_then(|c| c.as_array_mut().ok()) else { return };
    for component in components.iter_mut() {
        let Ok(c) = component.as_object_mut() else { continue };
        let text = |v: &RegoValue| v.as_string().ok().map(|s| s.to_string());
        let expression = c.get(&RegoValue::from("license_expression")).and_then(text);
        let licenses: Vec<String> = c
            .get(&RegoValue::from("licenses"))
            .and_then(|l| l.as_array().ok())
            .map(|l| l.iter().filter_map(text).collect())
            .unwrap_or_default();
        let key = (expression, licenses);
        let (choices, error) = match seen.get(&key) {
            Some(derived) => derived.clone(),
            None => {
                let borrowed: Vec<&str> = key.1.iter().map(String::as_str).collect();
                let derived = derive(component_choices(key.0.as_deref(), &borrowed));
                seen.insert(key, derived.clone());
                derived
            }
        };
        c.insert(RegoValue::from("license_choices"), choices);
        c.insert(RegoValue::from("license_error"), error);
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
