//! Fuzzes policy bundles: arbitrary bytes become bundle files (`path NUL contents NUL ...`), and a
//! bundle that loads is compiled and evaluated over a tiny input with a short time budget. Neither
//! may panic, whatever the Rego; a decision with errors must deny, and it must have a canonical
//! form.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use airlock_model::Timestamp;
use airlock_policy::{Bundle, Engine, EvalLimits, Outcome};
use libfuzzer_sys::fuzz_target;

/// 2026-11-26T05:00:00Z, the time of the input below.
const AT: Timestamp = Timestamp::from_millis(1_795_669_200_000);

/// A tiny input of the documented shape, with one component whose license needs evaluating.
const INPUT: &[u8] = br#"{"artifact": {"repository": "dev/payments/api", "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"},
 "source_stage": "dev", "target_stage": "staging", "time": "2026-11-26T05:00:00Z", "vex_applied": [], "waivers": [],
 "attestations": [{"predicate_type": "https://slsa.dev/provenance/v1", "signers": ["ci"], "trusted": true}],
 "evidence": {"provenance": [], "vulnerabilities": [], "vex": [], "tests": [], "unread": [],
              "components": [{"name": "c", "licenses": ["MIT"], "license_expression": "MIT OR (Apache-2.0 AND ISC)"}]}}"#;

static ENGINE: LazyLock<Engine> = LazyLock::new(|| Engine::with_capacity(4));

static LIMITS: LazyLock<EvalLimits> =
    LazyLock::new(|| EvalLimits { time_budget: Duration::from_millis(20), ..EvalLimits::default() });

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let mut files = Vec::new();
    while let (Some(path), Some(contents)) = (parts.next(), parts.next()) {
        files.push((String::from_utf8_lossy(path).into_owned(), contents.to_vec()));
    }
    let Ok(bundle) = Bundle::from_files(files) else { return };
    let decision = ENGINE.evaluate_json(&bundle, INPUT, AT, &LIMITS);
    if !decision.errors.is_empty() {
        assert_eq!(decision.outcome, Outcome::Deny, "a decision with errors must deny");
    }
    assert!(!decision.to_canonical_json().is_empty());
});
