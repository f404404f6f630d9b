//! Who may suppress a finding: a VEX statement removes a vulnerability from the policy input only
//! when its signer's key is one the trust root allows to sign a VEX predicate type for the
//! repository, now, and the statement is about this artifact. Every other statement is listed in
//! `vex_ignored` with the reason, and changes nothing.

use airlock_dsse::KeyId;
use airlock_evidence::{CYCLONEDX_VEX, OPENVEX_NS, VexStatement, VexStatus, Vulnerability};
use airlock_model::{Digest, RepoName, Timestamp};
use airlock_trust::TrustedRoot;
use serde::Serialize;

/// The OpenVEX predicate type of version 0.2.0 (OpenVEX names every version under
/// [`OPENVEX_NS`]).
pub const OPENVEX_V0_2_0: &str = "https://openvex.dev/ns/v0.2.0";

/// The predicate types a signer must be allowed to sign for its statements to suppress a
/// finding: OpenVEX (`https://openvex.dev/ns`, `https://openvex.dev/ns/v0.2.0`) and CycloneDX VEX
/// (`https://cyclonedx.org/vex`). A CycloneDX SBOM (`https://cyclonedx.org/bom`) is not among
/// them: its `analysis` counts only when its signer may also sign one of these.
pub const VEX_PREDICATE_TYPES: [&str; 3] = [OPENVEX_NS, OPENVEX_V0_2_0, CYCLONEDX_VEX];

/// Whether `predicate_type` is itself a VEX type: anything under `https://openvex.dev/ns`, and
/// `https://cyclonedx.org/vex` with or without a version (`.../vex/v1.6`).
pub fn is_vex_predicate_type(predicate_type: &str) -> bool {
    predicate_type.starts_with(OPENVEX_NS)
        || predicate_type == CYCLONEDX_VEX
        || predicate_type.strip_prefix(CYCLONEDX_VEX).is_some_and(|rest| rest.starts_with("/v"))
}

/// Whether the statements of a trusted attestation of `predicate_type`, signed by `keyids`, may
/// suppress findings in `repo` at `now`. An attestation of a VEX type was just trusted for that
/// very type; any other (an SBOM, a scan) needs its keys to be allowed a VEX type as well, by the
/// same signer rules and thresholds that decide attestations.
pub fn signer_may_suppress(
    root: &TrustedRoot,
    keyids: &[KeyId],
    predicate_type: &str,
    repo: &RepoName,
    now: Timestamp,
) -> bool {
    is_vex_predicate_type(predicate_type) || VEX_PREDICATE_TYPES.iter().any(|t| root.allows(keyids, t, repo, now))
}

/// Whether `product` names `artifact`: its digest (`sha256:<hex>`, as OpenVEX hashes read), or an
/// OCI purl whose version is that digest (`pkg:oci/api@sha256%3A<hex>`).
fn names_artifact(product: &str, artifact: &Digest) -> bool {
    if product == artifact.as_str() {
        return true;
    }
    let Some(rest) = product.strip_prefix("pkg:oci/") else { return false };
    let version = rest.split(['?', '#']).next().and_then(|p| p.rsplit_once('@')).map(|(_, v)| v);
    version.is_some_and(|v| v.replace("%3A", ":").replace("%3a", ":") == artifact.as_str())
}

/// Whether a VEX statement is about this vulnerability in this artifact:
///
/// 1. its products are this artifact (by digest) or it names none (an OpenVEX statement inside
///    an attestation is about the attestation's subject, which is this artifact), and it names no
///    subcomponents or names the vulnerable package among them; or
/// 2. its product is the vulnerable package itself (a CycloneDX `analysis` whose `affects` names
///    the component).
///
/// A statement about another product, or for another digest, never covers, whatever
/// subcomponents it lists.
pub fn covers(statement: &VexStatement, artifact: &Digest, vulnerability: &Vulnerability) -> bool {
    let purl = vulnerability.package_purl.as_deref();
    let about_this_artifact =
        statement.products.is_empty() || statement.products.iter().any(|p| names_artifact(p, artifact));
    if about_this_artifact {
        return statement.subcomponents.is_empty()
            || purl.is_some_and(|purl| statement.subcomponents.iter().any(|s| s == purl));
    }
    purl.is_some_and(|purl| statement.products.iter().any(|p| p == purl))
}

/// Whether the statement names the vulnerability, by id or alias.
fn names(statement: &VexStatement, vulnerability: &Vulnerability) -> bool {
    statement.vulnerability_id == vulnerability.id
        || statement.aliases.contains(&vulnerability.id)
        || vulnerability.aliases.contains(&statement.vulnerability_id)
}

/// One VEX statement read from a trusted attestation, with where it came from.
#[derive(Debug, Clone)]
pub struct Sourced {
    pub statement: VexStatement,
    pub referrer: String,
    pub signers: Vec<String>,
    /// Whether its signer may suppress findings here ([`signer_may_suppress`]).
    pub may_suppress: bool,
}

/// What applying VEX did: the entries of `vex_applied` and `vex_ignored`.
#[derive(Debug, Default)]
pub struct Applied {
    pub applied: Vec<AppliedStatement>,
    pub ignored: Vec<IgnoredStatement>,
}

/// A statement that removed a vulnerability, as `input.vex_applied` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedStatement {
    pub vulnerability: String,
    pub package_purl: Option<String>,
    pub status: VexStatus,
    pub justification: Option<String>,
    pub impact_statement: Option<String>,
    pub referrer: String,
    pub signers: Vec<String>,
}

/// A statement that changed nothing, and why, as `input.vex_ignored` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredStatement {
    pub vulnerability: String,
    pub status: VexStatus,
    pub referrer: String,
    pub signers: Vec<String>,
    /// `signer-not-allowed-vex` or `not-about-this-artifact`.
    pub reason: &'static str,
    pub message: String,
}

fn ignored(s: &Sourced, reason: &'static str, message: String) -> IgnoredStatement {
    IgnoredStatement {
        vulnerability: s.statement.vulnerability_id.clone(),
        status: s.statement.status,
        referrer: s.referrer.clone(),
        signers: s.signers.clone(),
        reason,
        message,
    }
}

/// Removes from `vulnerabilities` those a suppressing statement covers, and says which
/// statements were applied and which were ignored and why.
pub fn apply(vulnerabilities: &mut Vec<Vulnerability>, statements: &[Sourced], artifact: &Digest) -> Applied {
    let suppressing = |s: &Sourced| matches!(s.statement.status, VexStatus::NotAffected | VexStatus::Fixed);
    let mut out = Applied::default();
    let mut used = vec![false; statements.len()];
    let names_one: Vec<bool> =
        statements.iter().map(|s| vulnerabilities.iter().any(|v| names(&s.statement, v))).collect();
    vulnerabilities.retain(|v| {
        let found = statements.iter().enumerate().find(|(_, s)| {
            s.may_suppress && suppressing(s) && names(&s.statement, v) && covers(&s.statement, artifact, v)
        });
        let Some((i, s)) = found else { return true };
        if let Some(u) = used.get_mut(i) {
            *u = true;
        }
        out.applied.push(AppliedStatement {
            vulnerability: v.id.clone(),
            package_purl: v.package_purl.clone(),
            status: s.statement.status,
            justification: s.statement.justification.clone(),
            impact_statement: s.statement.impact_statement.clone(),
            referrer: s.referrer.clone(),
            signers: s.signers.clone(),
        });
        false
    });
    for ((s, used), names_one) in statements.iter().zip(used).zip(names_one) {
        if used || !suppressing(s) {
            continue;
        }
        if !s.may_suppress {
            let signers = if s.signers.is_empty() { "its signer".to_owned() } else { s.signers.join("`, `") };
            out.ignored.push(ignored(
                s,
                "signer-not-allowed-vex",
                format!(
                    "`{signers}` may not sign VEX (OpenVEX or `{CYCLONEDX_VEX}`) for this repository, so its statement suppresses nothing"
                ),
            ));
        } else if names_one {
            out.ignored.push(ignored(
                s,
                "not-about-this-artifact",
                "the statement is about another product or digest, or another package in this artifact".to_owned(),
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ARTIFACT: &str = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
    const OTHER: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
    const OPENSSL: &str = "pkg:apk/alpine/openssl@3.0.1";

    fn check(products: &[&str], subcomponents: &[&str], expect: bool) {
        let statement = VexStatement {
            vulnerability_id: "CVE-1".into(),
            products: products.iter().map(|p| (*p).to_owned()).collect(),
            subcomponents: subcomponents.iter().map(|p| (*p).to_owned()).collect(),
            status: VexStatus::NotAffected,
            ..VexStatement::default()
        };
        let vulnerability =
            Vulnerability { id: "CVE-1".into(), package_purl: Some(OPENSSL.into()), ..Vulnerability::default() };
        let artifact = Digest::parse(ARTIFACT).unwrap();
        assert_eq!(covers(&statement, &artifact, &vulnerability), expect, "{products:?} {subcomponents:?}");
    }

    #[test]
    fn a_statement_covers_only_this_artifact_or_the_vulnerable_package() {
        check(&[], &[], true);
        check(&[ARTIFACT], &[], true);
        check(&[ARTIFACT], &[OPENSSL], true);
        check(&[], &[OPENSSL], true);
        check(&[&format!("pkg:oci/api@{}", ARTIFACT.replace(':', "%3A"))], &[OPENSSL], true);
        check(&[OPENSSL], &[], true);
        // Another digest, another product: never, whatever the subcomponents say.
        check(&[OTHER], &[OPENSSL], false);
        check(&[OTHER], &[], false);
        check(&["pkg:oci/other-image@sha256%3Aabc"], &[OPENSSL], false);
        check(&[&format!("pkg:oci/api@{}", OTHER.replace(':', "%3A"))], &[OPENSSL], false);
        // This artifact, but another package inside it.
        check(&[ARTIFACT], &["pkg:apk/alpine/zlib@1.3"], false);
        check(&["pkg:apk/alpine/zlib@1.3"], &[], false);
    }

    #[test]
    fn vex_predicate_types() {
        for t in ["https://openvex.dev/ns", "https://openvex.dev/ns/v0.2.0", "https://cyclonedx.org/vex/v1.6"] {
            assert!(is_vex_predicate_type(t), "{t}");
        }
        for t in ["https://cyclonedx.org/bom", "https://cyclonedx.org/bom/v1.6", "https://cyclonedx.org/vexx"] {
            assert!(!is_vex_predicate_type(t), "{t}");
        }
    }
}
