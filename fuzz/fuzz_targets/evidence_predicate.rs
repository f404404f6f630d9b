//! Fuzzes reading evidence from in-toto predicates (`airlock_evidence::from_predicate`): the first
//! byte picks the predicate type (each type Airlock knows, and some it does not), the rest is the
//! predicate. It must never panic, and what it reads must stay within the limits.
#![no_main]

use airlock_evidence::{Limits, from_predicate};
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 10] = [
    "https://slsa.dev/provenance/v1",
    "https://slsa.dev/provenance/v0.2",
    "https://cyclonedx.org/bom",
    "https://cyclonedx.org/bom/v1.6",
    "https://spdx.dev/Document/v2.3",
    "https://cosign.sigstore.dev/attestation/vuln/v1",
    "https://openvex.dev/ns/v0.2.0",
    "https://in-toto.io/attestation/test-result/v0.1",
    "https://example.com/custom/v1",
    "",
];

const LIMITS: Limits = Limits {
    max_bytes: 256 * 1024,
    max_depth: 32,
    max_string_len: 1024,
    max_components: 64,
    max_vulnerabilities: 64,
    max_vex_statements: 64,
    max_list_len: 16,
    max_unread: 16,
};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, predicate)) = data.split_first() else { return };
    let predicate_type = TYPES[usize::from(pick) % TYPES.len()];
    let Ok(Some(evidence)) = from_predicate(predicate_type, predicate, &LIMITS) else { return };
    assert!(evidence.components.len() <= LIMITS.max_components);
    assert!(evidence.vulnerabilities.len() <= LIMITS.max_vulnerabilities);
    assert!(evidence.vex.len() <= LIMITS.max_vex_statements);
    assert!(evidence.provenance.len() <= 1);
    assert!(evidence.unread.len() <= LIMITS.max_unread + 1);
    assert!(evidence.vulnerabilities.iter().all(|v| v.cvss_score.is_none_or(|s| (0.0..=10.0).contains(&s))));
});
