//! Replay: a decision stored in `tests/data/replay/decision.json` (its RFC 8785 bytes) is
//! reproduced byte for byte from the same bundle bytes (`bundle/`, a snapshot of the default
//! library with a site `data.json` and `waivers.json`), input and time. The snapshot is kept so
//! that the library can change while the replay still checks the engine. `UPDATE_EXPECT=1`
//! rewrites the stored decision.

use airlock_policy::{Bundle, Engine, EvalLimits};

use crate::support::{at, data_dir};

#[test]
fn a_stored_decision_is_reproduced_byte_for_byte() {
    let dir = data_dir().join("replay");
    let bundle = Bundle::load_dir(&dir.join("bundle")).unwrap();
    let input: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("input.json")).unwrap()).unwrap();
    let decision = Engine::new().evaluate(&bundle, &input, at(input["time"].as_str().unwrap()), &EvalLimits::default());
    let bytes = decision.to_canonical_json();
    let stored_path = dir.join("decision.json");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&stored_path, &bytes).unwrap();
    }
    let stored = std::fs::read(&stored_path).unwrap();
    assert_eq!(String::from_utf8_lossy(&bytes), String::from_utf8_lossy(&stored));
    // The stored decision names the bundle it was made with, and exercises every part of one.
    assert_eq!(decision.bundle_digest, bundle.digest().to_string());
    assert!(!decision.violations.is_empty() && !decision.warnings.is_empty());
    assert!(!decision.waivers_applied.is_empty() && !decision.waivers_inactive.is_empty());
    assert!(!decision.vex_applied.is_empty());
}
