//! SPDX 2.x JSON (2.2 and 2.3; the SPDX specification's JSON schema):
//!
//! ```text
//! {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT",
//!  "packages": [{"SPDXID", "name", "versionInfo", "licenseConcluded", "licenseDeclared",
//!                "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
//!                                  "referenceLocator": "pkg:..."}]}],
//!  "files": [...], "relationships": [...]}
//! ```
//!
//! Each package is a component. Its licenses are `licenseConcluded` and `licenseDeclared`
//! (expressions, kept as given, without duplicates); `NOASSERTION` says nothing and is dropped,
//! `NONE` says there is no license and is kept. The component's `license_expression` is the
//! concluded license, else the declared one. Files and relationships are not read.

use serde_json::value::RawValue;

use super::{Format, wrong};
use crate::error::EvidenceError;
use crate::json::{self, Ptr};
use crate::model::Component;
use crate::read::{Reader, dedup};
use airlock_model::echo::echo_short as echo;

/// The prefix of the SPDX versions this reader knows.
const VERSION_PREFIX: &str = "SPDX-2.";
/// SPDX's "the author makes no assertion".
const NOASSERTION: &str = "NOASSERTION";

pub(super) fn read(r: &mut Reader<'_>, raw: &RawValue, at: Ptr<'_>) -> Result<(), EvidenceError> {
    let Some([spdx_version, packages]) = json::members(raw, &["spdxVersion", "packages"]) else {
        return Err(wrong(Format::Spdx, "it is not an object"));
    };
    // 1. The version marks the format: SPDX 3 is JSON-LD of another shape.
    match spdx_version.map(|v| serde_json::from_str::<String>(v.get())) {
        Some(Ok(version)) if version.starts_with(VERSION_PREFIX) => {}
        Some(Ok(version)) => {
            let reason = format!("`spdxVersion` is `{}`; expected `SPDX-2.2` or `SPDX-2.3`", echo(&version));
            return Err(wrong(Format::Spdx, reason));
        }
        Some(Err(_)) | None => return Err(wrong(Format::Spdx, "it has no `spdxVersion`")),
    }
    // 2. Each package.
    r.each(packages, at.key("packages"), package)
}

fn package(r: &mut Reader<'_>, at: Ptr<'_>, raw: &RawValue) -> Result<(), EvidenceError> {
    let Some([name, version, concluded, declared, external_refs]) =
        r.object(Some(raw), at, &["name", "versionInfo", "licenseConcluded", "licenseDeclared", "externalRefs"])
    else {
        return Ok(());
    };
    let Some(name) = r.text(name, at.key("name")) else {
        r.note(at, "has no `name`; the package was not read");
        return Ok(());
    };
    let version = r.text(version, at.key("versionInfo"));
    let concluded = r.text(concluded, at.key("licenseConcluded")).filter(|l| l != NOASSERTION);
    let declared = r.text(declared, at.key("licenseDeclared")).filter(|l| l != NOASSERTION);
    let mut licenses = Vec::new();
    for license in concluded.iter().chain(declared.iter()) {
        r.add(&mut licenses, license.clone(), "licenses in one package")?;
    }
    dedup(&mut licenses);
    // The first purl among the external references.
    let mut purl = None;
    r.each(external_refs, at.key("externalRefs"), |r, at, raw| {
        if purl.is_some() {
            return Ok(());
        }
        let Some([kind, locator]) = r.object(Some(raw), at, &["referenceType", "referenceLocator"]) else {
            return Ok(());
        };
        if r.text(kind, at.key("referenceType")).as_deref() == Some("purl") {
            purl = r.purl(locator, at.key("referenceLocator"));
        }
        Ok(())
    })?;
    r.push_component(Component { name, version, purl, licenses, license_expression: concluded.or(declared) })
}
