//! The default library: its Rego tests pass under `run_tests`; every rule has a page in
//! `docs/policies/`, fires in some case and passes in another; and no rule collides with the data
//! it reads.

use std::collections::BTreeSet;
use std::path::PathBuf;

use airlock_policy::{TestOutcome, default_bundle, default_bundle_files, run_tests};

use crate::support::cases_dir;

/// The rules the library can report: every rule a stage lists, and the two it adds itself.
fn library_rules() -> BTreeSet<String> {
    let files = default_bundle_files();
    let data = &files.iter().find(|(p, _)| p == "data.json").unwrap().1;
    let data: serde_json::Value = serde_json::from_slice(data).unwrap();
    let mut rules: BTreeSet<String> = data["airlock"]["stages"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|s| s["rules"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()))
        .collect();
    rules.extend(["stage-unknown".to_owned(), "evidence-unread".to_owned()]);
    rules
}

#[test]
fn default_library_tests_pass() {
    let report = run_tests(&default_bundle().unwrap());
    assert!(report.passed(), "{report}");
    assert!(report.count(TestOutcome::Pass) >= 40, "{report}");
}

#[test]
fn every_rule_is_documented_and_fires_in_a_case() {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/policies");
    let mut fired = BTreeSet::new();
    let mut allowed_cases = 0;
    for entry in std::fs::read_dir(cases_dir()).unwrap() {
        let case = entry.unwrap().path();
        if !case.is_dir() {
            continue;
        }
        let expected = case.join("expected.json");
        let decision: serde_json::Value = serde_json::from_slice(&std::fs::read(expected).unwrap()).unwrap();
        allowed_cases += usize::from(decision["outcome"] == "allow");
        for finding in decision["violations"].as_array().into_iter().chain(decision["warnings"].as_array()).flatten() {
            if let Some(rule) = finding["rule"].as_str() {
                fired.insert(rule.to_owned());
                let doc = finding["doc"].as_str().unwrap_or_default();
                if doc.starts_with("docs/policies/") {
                    assert_eq!(doc, format!("docs/policies/{rule}.md"));
                }
            }
        }
    }
    assert!(allowed_cases >= 5);
    for rule in library_rules() {
        assert!(docs.join(format!("{rule}.md")).is_file(), "no page docs/policies/{rule}.md");
        assert!(fired.contains(&rule), "no case in tests/cases shows rule `{rule}` firing");
    }
}

/// Rules and `data.json` share `data.airlock`: a rule named like a data key reads itself, and a
/// rule reading `data.airlock` whole reads every rule. OPA reports both as recursion; regorus
/// 0.14 may silently leave other rules undefined, so the library is checked here.
#[test]
fn no_rule_reads_itself_through_data() {
    let files = default_bundle_files();
    let data = &files.iter().find(|(p, _)| p == "data.json").unwrap().1;
    let data: serde_json::Value = serde_json::from_slice(data).unwrap();
    let keys: Vec<&String> = data["airlock"].as_object().unwrap().keys().collect();
    for (path, bytes) in files.iter().filter(|(p, _)| p.ends_with(".rego") && !p.ends_with("_test.rego")) {
        let text = std::str::from_utf8(bytes).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for key in &keys {
                let head = line.strip_prefix(key.as_str()).and_then(|rest| rest.chars().next());
                assert!(!matches!(head, Some(' ' | '(' | '[')), "{path}: rule `{key}` is also a key of `data.airlock`");
            }
            let mut rest = line;
            while let Some(i) = rest.find("data.airlock") {
                rest = &rest[i + "data.airlock".len()..];
                assert!(rest.starts_with('.'), "{path}: `{line}` reads `data.airlock` whole");
            }
        }
    }
}

/// `docs/policy-input.md` stays true: its schema is JSON requiring what the engine requires, and
/// its example is an input the default library allows.
#[test]
fn the_input_document_example_is_allowed() {
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy-input.md")).unwrap();
    let block = |heading: &str| -> serde_json::Value {
        let section = &doc[doc.find(heading).unwrap()..];
        let start = section.find("```json\n").unwrap() + "```json\n".len();
        let end = section[start..].find("\n```").unwrap();
        serde_json::from_str(&section[start..start + end]).unwrap()
    };
    let schema = block("## JSON Schema");
    assert_eq!(
        schema["required"],
        serde_json::json!(["artifact", "source_stage", "target_stage", "attestations", "evidence", "time"])
    );
    let example = block("## Example");
    let time = crate::support::at(example["time"].as_str().unwrap());
    let decision =
        airlock_policy::Engine::new().evaluate(&default_bundle().unwrap(), &example, time, &Default::default());
    assert!(decision.allowed(), "{decision:#?}");
}
