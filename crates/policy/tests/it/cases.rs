//! The case files of `tests/cases/<name>/`: each holds `input.json`, a bundle (a `bundle/`
//! directory, or a `bundle` file naming `default` for the default library, which the case's own
//! `data.json` and `waivers.json` then replace or join), optionally `limits.json` (fields of
//! `EvalLimits`: `time_budget_ms`, `max_input_bytes`, `max_input_depth`, `max_results`) and `at`
//! (the decision time; `input.time` otherwise), and `expected.json`: the decision, or
//! `{"bundle_error": ...}` when the bundle is refused. `UPDATE_EXPECT=1` rewrites `expected.json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_policy::{Bundle, DATA_FILE, Engine, EvalLimits, WAIVERS_FILE, default_bundle_files};

use crate::support::{at, cases_dir};

/// How long any case may take: the timeout case proves the budget stops evaluation.
const CASE_MAX_DURATION: Duration = Duration::from_secs(2);

fn bundle(case: &Path) -> Result<Bundle, String> {
    let dir = case.join("bundle");
    if dir.is_dir() {
        return Bundle::load_dir(&dir).map_err(|e| e.to_string());
    }
    let name = std::fs::read_to_string(&dir).unwrap();
    assert_eq!(name.trim(), "default", "{}: `bundle` names `default` or is a directory", case.display());
    let mut files = default_bundle_files();
    for overlay in [DATA_FILE, WAIVERS_FILE] {
        if let Ok(bytes) = std::fs::read(case.join(overlay)) {
            files.retain(|(p, _)| p != overlay);
            files.push((overlay.to_owned(), bytes));
        }
    }
    Bundle::from_files(files).map_err(|e| e.to_string())
}

fn limits(case: &Path) -> EvalLimits {
    let mut limits = EvalLimits::default();
    let Ok(text) = std::fs::read_to_string(case.join("limits.json")) else { return limits };
    let overrides: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    for (key, value) in overrides {
        let n = value.as_u64().unwrap();
        match key.as_str() {
            "time_budget_ms" => limits.time_budget = Duration::from_millis(n),
            "max_input_bytes" => limits.max_input_bytes = n as usize,
            "max_input_depth" => limits.max_input_depth = n as usize,
            "max_results" => limits.max_results = n as usize,
            other => panic!("{}: unknown limit `{other}`", case.display()),
        }
    }
    limits
}

/// The case's decision as pretty JSON, or its bundle error.
pub(crate) fn run(engine: &Engine, case: &Path) -> String {
    let bundle = match bundle(case) {
        Ok(bundle) => bundle,
        Err(e) => {
            return format!("{}\n", serde_json::to_string_pretty(&serde_json::json!({"bundle_error": e})).unwrap());
        }
    };
    let input: serde_json::Value = serde_json::from_slice(&std::fs::read(case.join("input.json")).unwrap()).unwrap();
    let time = match std::fs::read_to_string(case.join("at")) {
        Ok(text) => text.trim().to_owned(),
        Err(_) => input["time"].as_str().unwrap().to_owned(),
    };
    let decision = engine.evaluate(&bundle, &input, at(&time), &limits(case));
    // From the canonical bytes, so members come out sorted whatever order serde_json's maps
    // keep in this build.
    let canonical: serde_json::Value = serde_json::from_slice(&decision.to_canonical_json()).unwrap();
    format!("{}\n", serde_json::to_string_pretty(&canonical).unwrap())
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(cases_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    cases
}

#[test]
fn cases_match_their_expected_decisions() {
    let engine = Engine::new();
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failed = Vec::new();
    for case in cases() {
        let started = Instant::now();
        let actual = run(&engine, &case);
        let took = started.elapsed();
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        assert!(took < CASE_MAX_DURATION, "case `{name}` took {took:?}");
        let expected_path = case.join("expected.json");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            if update {
                std::fs::write(&expected_path, &actual).unwrap();
            } else {
                failed.push(format!("{name}:\n{}", diff(&expected, &actual)));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "cases differ from expected.json (UPDATE_EXPECT=1 rewrites them):\n{}",
        failed.join("\n")
    );
}

/// The lines that differ, for the failure message.
fn diff(expected: &str, actual: &str) -> String {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    for i in 0..expected.len().max(actual.len()) {
        let (e, a) = (expected.get(i), actual.get(i));
        if e != a {
            out.push_str(&format!("  line {}: expected {:?}\n  line {}:   actual {:?}\n", i + 1, e, i + 1, a));
        }
    }
    out
}

#[test]
fn every_case_is_complete() {
    for case in cases() {
        let name = case.display();
        assert!(case.join("input.json").is_file(), "{name}: no input.json");
        assert!(case.join("bundle").exists(), "{name}: no bundle");
        assert!(
            case.join("expected.json").is_file() || std::env::var_os("UPDATE_EXPECT").is_some(),
            "{name}: no expected.json"
        );
    }
}
