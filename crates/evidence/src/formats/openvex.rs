//! OpenVEX (`https://openvex.dev/ns/v0.2.0`, and the earlier `https://openvex.dev/ns` documents
//! whose vulnerabilities and products are plain strings):
//!
//! ```text
//! {"@context": "https://openvex.dev/ns/v0.2.0", "@id", "author", "timestamp", "version",
//!  "statements": [{"vulnerability": {"name", "@id", "aliases": [...]} | "<name>",
//!                  "products": [{"@id", "identifiers": {"purl"}, "hashes": {"sha-256": "<hex>"},
//!                                "subcomponents": [...]} | "<id>"],
//!                  "status": "not_affected|affected|fixed|under_investigation",
//!                  "justification", "impact_statement", "action_statement", "timestamp"}]}
//! ```
//!
//! A product (or subcomponent) contributes its `@id`, its purl and its hashes as digests
//! (`sha-256` becomes `sha256:<hex>`, as OCI names them); CPEs are not read. Subcomponents of all
//! of a statement's products are listed together. A statement without a timestamp has the
//! document's. A statement without products inherits them from where the document is attached
//! (the attestation's subject); its `products` stay empty.

use serde_json::value::RawValue;

use super::{Format, OPENVEX_NS, wrong};
use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::model::{VexStatement, VexStatus};
use crate::read::{Reader, dedup};
use airlock_model::echo::echo_short as echo;

pub(super) fn read(r: &mut Reader<'_>, raw: &RawValue, at: Ptr<'_>) -> Result<(), EvidenceError> {
    let Some([context, timestamp, statements]) = json::members(raw, &["@context", "timestamp", "statements"]) else {
        return Err(wrong(Format::OpenVex, "it is not an object"));
    };
    // 1. The context marks the format.
    match context.map(|c| serde_json::from_str::<String>(c.get())) {
        Some(Ok(context)) if context.starts_with(OPENVEX_NS) => {}
        Some(Ok(context)) => {
            let reason = format!("`@context` is `{}`; expected `{OPENVEX_NS}/v0.2.0`", echo(&context));
            return Err(wrong(Format::OpenVex, reason));
        }
        Some(Err(_)) | None => return Err(wrong(Format::OpenVex, "it has no `@context`")),
    }
    let timestamp = r.timestamp(timestamp, at.key("timestamp"));
    // 2. Each statement.
    r.each(statements, at.key("statements"), |r, at, raw| statement(r, at, raw, timestamp.as_deref()))
}

fn statement(
    r: &mut Reader<'_>,
    at: Ptr<'_>,
    raw: &RawValue,
    document_time: Option<&str>,
) -> Result<(), EvidenceError> {
    let Some([vulnerability, products, status, justification, impact, action, timestamp]) = r.object(
        Some(raw),
        at,
        &["vulnerability", "products", "status", "justification", "impact_statement", "action_statement", "timestamp"],
    ) else {
        return Ok(());
    };
    // The vulnerability: `{"name", "aliases"}` since v0.2.0, a plain name before.
    let vulnerability_at = at.key("vulnerability");
    let (name, aliases) = match vulnerability {
        Some(raw) if json::is_object(raw) => {
            let Some([name, aliases]) = json::members(raw, &["name", "aliases"]) else { return Ok(()) };
            (
                r.text(name, vulnerability_at.key("name")),
                r.texts(aliases, vulnerability_at.key("aliases"), "aliases in one statement")?,
            )
        }
        other => (r.text(other, vulnerability_at), Vec::new()),
    };
    let Some(vulnerability_id) = name else {
        r.note(at, "names no vulnerability; the statement was not read");
        return Ok(());
    };
    let Some(status_word) = r.text(status, at.key("status")) else {
        r.note(at, "has no `status`; the statement was not read");
        return Ok(());
    };
    let Some(status) = parse_status(&status_word) else {
        let reason = format!("`{}` is not an openvex status; the statement was not read", echo(&status_word));
        r.note(at.key("status"), reason);
        return Ok(());
    };
    let mut ids = Ids::default();
    r.each(products, at.key("products"), |r, at, raw| product(r, at, raw, &mut ids))?;
    dedup(&mut ids.products);
    dedup(&mut ids.subcomponents);
    let statement = VexStatement {
        vulnerability_id,
        aliases,
        products: ids.products,
        subcomponents: ids.subcomponents,
        status,
        justification: r.text(justification, at.key("justification")),
        impact_statement: r.prose(impact, at.key("impact_statement")),
        action_statement: r.prose(action, at.key("action_statement")),
        timestamp: r.timestamp(timestamp, at.key("timestamp")).or_else(|| document_time.map(str::to_owned)),
    };
    r.push_vex(statement)
}

/// The identifiers of a statement's products and of their subcomponents.
#[derive(Default)]
struct Ids {
    products: Vec<String>,
    subcomponents: Vec<String>,
}

fn product(r: &mut Reader<'_>, at: Ptr<'_>, raw: &RawValue, ids: &mut Ids) -> Result<(), EvidenceError> {
    let subcomponents = component(r, at, raw, &mut ids.products, "products in one statement")?;
    let subcomponents_at = at.key("subcomponents");
    r.each(subcomponents, subcomponents_at, |r, at, raw| {
        component(r, at, raw, &mut ids.subcomponents, "subcomponents in one statement").map(|_| ())
    })
}

/// Adds the identifiers of one product or subcomponent (a string, or `{"@id", "identifiers",
/// "hashes"}`) to `out`; returns its `subcomponents`.
fn component<'a>(
    r: &mut Reader<'_>,
    at: Ptr<'_>,
    raw: &'a RawValue,
    out: &mut Vec<String>,
    what: &'static str,
) -> Result<Option<&'a RawValue>, EvidenceError> {
    if !json::is_object(raw) {
        if let Some(id) = r.text(Some(raw), at) {
            r.add(out, id, what)?;
        }
        return Ok(None);
    }
    let Some([id, identifiers, hashes, subcomponents]) =
        json::members(raw, &["@id", "identifiers", "hashes", "subcomponents"])
    else {
        return Ok(None);
    };
    if let Some(id) = r.text(id, at.key("@id")) {
        r.add(out, id, what)?;
    }
    let identifiers_at = at.key("identifiers");
    if let Some([purl]) = r.object(identifiers, identifiers_at, &["purl"])
        && let Some(purl) = r.purl(purl, identifiers_at.key("purl"))
    {
        r.add(out, purl, what)?;
    }
    r.each_member(hashes, at.key("hashes"), |r, at, algorithm, value| {
        let Some(hex) = r.text(Some(value), at) else { return Ok(()) };
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            r.note(at, format!("`{}` is not a hex digest", echo(&hex)));
            return Ok(());
        }
        r.add(out, format!("{}:{}", digest_algorithm(algorithm), hex.to_ascii_lowercase()), what)
    })?;
    Ok(subcomponents)
}

/// An IANA hash name as OCI digests name the algorithm: `sha-256` is `sha256`.
fn digest_algorithm(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.as_str() {
        "sha-256" | "sha-384" | "sha-512" => name.replace('-', ""),
        _ => echo(&name),
    }
}

fn parse_status(word: &str) -> Option<VexStatus> {
    match word {
        "not_affected" => Some(VexStatus::NotAffected),
        "affected" => Some(VexStatus::Affected),
        "fixed" => Some(VexStatus::Fixed),
        "under_investigation" => Some(VexStatus::UnderInvestigation),
        _ => None,
    }
}
