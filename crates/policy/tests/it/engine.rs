//! The engine's guarantees beyond single cases: the time budget really stops evaluation, limits at
//! their defaults, the compile cache, reproducible decisions, derived fields that cannot be
//! spoofed, `run_tests` reports, and RFC 8785 numbers checked against ECMAScript itself.

use std::time::{Duration, Instant};

use airlock_policy::{
    Bundle, Decision, Engine, ErrorCode, EvalLimits, INPUT_MAX_BYTES, Outcome, TestOutcome, canonicalize,
    default_bundle, run_tests,
};
use expect_test::expect;
use serde_json::{Value, json};

use crate::support::{at, cases_dir, data_dir};

fn bundle(files: &[(&str, &str)]) -> Bundle {
    Bundle::from_files(files.iter().map(|(p, b)| ((*p).to_owned(), b.as_bytes().to_vec())).collect()).unwrap()
}

/// The staging input that passes the default library.
fn passing_input() -> Value {
    serde_json::from_slice(&std::fs::read(cases_dir().join("staging-passes/input.json")).unwrap()).unwrap()
}

fn evaluate(engine: &Engine, bundle: &Bundle, input: &Value, limits: &EvalLimits) -> Decision {
    engine.evaluate(bundle, input, at(input["time"].as_str().unwrap()), limits)
}

fn codes(decision: &Decision) -> Vec<ErrorCode> {
    decision.errors.iter().map(|e| e.code).collect()
}

const EXPONENTIAL: &str = r#"package airlock

n := numbers.range(1, 30)

deny contains "unreachable" if {
	some a in n
	some b in n
	some c in n
	some d in n
	some e in n
	some f in n
	some g in n
	some h in n
	a + b + c + d + e + f + g + h < 0
}
"#;

#[test]
fn the_time_budget_stops_an_exponential_rule() {
    let engine = Engine::new();
    let bundle = bundle(&[("policy.rego", EXPONENTIAL)]);
    for budget in [Duration::from_millis(20), Duration::from_millis(250)] {
        let limits = EvalLimits { time_budget: budget, ..EvalLimits::default() };
        let started = Instant::now();
        let decision = evaluate(&engine, &bundle, &passing_input(), &limits);
        let took = started.elapsed();
        assert_eq!(codes(&decision), [ErrorCode::Timeout]);
        assert_eq!(decision.outcome, Outcome::Deny);
        // 30^8 iterations would take hours; the budget ends it close to its limit.
        assert!(took >= budget && took < budget + Duration::from_millis(750), "{budget:?} took {took:?}");
    }
}

#[test]
fn the_compile_budget_stops_a_slow_parse_and_is_remembered() {
    // regorus' parser backtracks on nested literals and no execution timer covers it: 3,000
    // rules of 8-deep arrays take seconds to parse.
    let mut source = String::from("package airlock\n\ndeny contains \"x\" if false\n");
    for i in 0..3000 {
        source.push_str(&format!("r{i} := {}1{}\n", "[".repeat(8), "]".repeat(8)));
    }
    let slow = bundle(&[("policy.rego", &source)]);
    let engine = Engine::new();
    let limits = EvalLimits { compile_budget: Duration::from_millis(100), ..EvalLimits::default() };
    for _ in 0..2 {
        let started = Instant::now();
        let decision = evaluate(&engine, &slow, &passing_input(), &limits);
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        expect![[r#"
            [
                EvalError {
                    code: CompileTimeout,
                    message: "compiling the bundle ran past its budget of 100 ms; split large files, flatten deeply nested literals, or raise `policy.compile_budget_ms`",
                },
            ]
        "#]]
        .assert_debug_eq(&decision.errors);
    }
}

#[test]
fn a_compile_past_its_budget_is_adopted_when_it_finishes() {
    // No compile finishes within a microsecond: the first decision fails closed while the
    // compile goes on, and a later one uses its result instead of compiling again.
    let engine = Engine::new();
    let library = default_bundle().unwrap();
    let limits = EvalLimits { compile_budget: Duration::from_micros(1), ..EvalLimits::default() };
    let first = evaluate(&engine, &library, &passing_input(), &limits);
    assert_eq!(codes(&first), [ErrorCode::CompileTimeout]);
    let started = Instant::now();
    loop {
        let decision = evaluate(&engine, &library, &passing_input(), &limits);
        if decision.errors.is_empty() {
            assert!(decision.allowed());
            break;
        }
        assert_eq!(codes(&decision), [ErrorCode::CompileTimeout]);
        assert!(started.elapsed() < Duration::from_secs(20), "the compile never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(format!("{engine:?}"), "Engine { cached: 1, capacity: 16 }");
}

#[test]
fn deny_and_warn_share_one_budget() {
    let warn_exponential = EXPONENTIAL.replace("deny contains \"unreachable\"", "warn contains \"unreachable\"")
        + "\ndeny contains \"never\" if false\n";
    let decision = evaluate(
        &Engine::new(),
        &bundle(&[("policy.rego", &warn_exponential)]),
        &passing_input(),
        &EvalLimits { time_budget: Duration::from_millis(50), ..EvalLimits::default() },
    );
    expect![[r#"
        [
            EvalError {
                code: Timeout,
                message: "evaluating `data.airlock.warn` ran past the time budget of 50 ms; simplify the rules or raise `policy.time_budget_ms`",
            },
        ]
    "#]]
    .assert_debug_eq(&decision.errors);
}

#[test]
fn an_input_over_the_default_limit_is_refused_quickly() {
    let mut input = passing_input();
    input["artifact"]["annotations"]["padding"] = Value::String("x".repeat(INPUT_MAX_BYTES));
    let started = Instant::now();
    let decision = evaluate(&Engine::new(), &default_bundle().unwrap(), &input, &EvalLimits::default());
    assert_eq!(codes(&decision), [ErrorCode::InputTooLarge]);
    assert!(decision.input_digest.is_some());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn json_input_is_bounded_before_it_is_parsed() {
    let engine = Engine::new();
    let library = default_bundle().unwrap();
    let limits = EvalLimits { max_input_bytes: 1000, ..EvalLimits::default() };
    let time = at("2026-11-26T05:00:00Z");
    let decision = engine.evaluate_json(&library, &vec![b'['; 1001], time, &limits);
    expect![[r#"
        [
            EvalError {
                code: InputTooLarge,
                message: "policy input is 1001 bytes; the limit is 1000; attach less evidence or raise `policy.max_input_bytes`",
            },
        ]
    "#]]
    .assert_debug_eq(&decision.errors);
    let decision = engine.evaluate_json(&library, b"{\"artifact\": ", time, &limits);
    assert_eq!(codes(&decision), [ErrorCode::InputInvalid]);
    assert_eq!(decision.outcome, Outcome::Deny);
    let bytes = std::fs::read(cases_dir().join("staging-passes/input.json")).unwrap();
    let decision = engine.evaluate_json(&library, &bytes, time, &EvalLimits::default());
    assert!(decision.allowed(), "{decision:#?}");
}

#[test]
fn too_many_results_and_long_traces_are_bounded() {
    let policy = "package airlock\n\ndeny contains sprintf(\"finding %d\", [i]) if some i in numbers.range(1, 5)\n\nwarn contains sprintf(\"w%d\", [i]) if { some i in numbers.range(1, 300); print(i) }\n";
    let bundle = bundle(&[("policy.rego", policy)]);
    let limits = EvalLimits { max_results: 4, ..EvalLimits::default() };
    let decision = evaluate(&Engine::new(), &bundle, &passing_input(), &limits);
    assert_eq!(codes(&decision), [ErrorCode::TooManyResults]);
    assert!(decision.violations.is_empty());
    assert_eq!(decision.trace.len(), 257);
    assert_eq!(decision.trace[256], "… 44 more lines of `print` output not kept");
}

#[test]
fn compiled_bundles_are_cached_by_digest_and_bounded() {
    let engine = Engine::with_capacity(2);
    let input = passing_input();
    let limits = EvalLimits::default();
    let bundles: Vec<Bundle> = (0..4)
        .map(|i| bundle(&[("policy.rego", &format!("package airlock\n\ndeny contains \"{i}\" if false\n"))]))
        .collect();
    for b in &bundles {
        assert_eq!(evaluate(&engine, b, &input, &limits).outcome, Outcome::Allow);
    }
    assert_eq!(format!("{engine:?}"), "Engine { cached: 2, capacity: 2 }");
    // A compile error is cached too, and reported by `check`.
    let broken = bundle(&[("policy.rego", "package airlock\ndeny contains")]);
    let error = engine.check(&broken, &limits).unwrap_err();
    assert_eq!(error.code, ErrorCode::Compile);
    assert_eq!(codes(&evaluate(&engine, &broken, &input, &limits)), [ErrorCode::Compile]);
    // The cached default library decides the same as a fresh engine, and faster.
    let library = default_bundle().unwrap();
    let fresh = Instant::now();
    let first = evaluate(&engine, &library, &input, &limits);
    let fresh = fresh.elapsed();
    let cached = Instant::now();
    let second = evaluate(&engine, &library, &input, &limits);
    let cached = cached.elapsed();
    assert_eq!(first.to_canonical_json(), second.to_canonical_json());
    assert!(cached < fresh, "cached {cached:?}, fresh {fresh:?}");
}

#[test]
fn decisions_are_reproducible_across_engines() {
    let input: Value = serde_json::from_slice(&std::fs::read(data_dir().join("replay/input.json")).unwrap()).unwrap();
    let library = default_bundle().unwrap();
    let a = evaluate(&Engine::new(), &library, &input, &EvalLimits::default()).to_canonical_json();
    let b = evaluate(&Engine::new(), &library, &input, &EvalLimits::default()).to_canonical_json();
    assert_eq!(a, b);
}

#[test]
fn derived_license_fields_cannot_be_spoofed() {
    let mut input: Value =
        serde_json::from_slice(&std::fs::read(cases_dir().join("license-and-fails/input.json")).unwrap()).unwrap();
    for component in input["evidence"]["components"].as_array_mut().unwrap() {
        component["license_choices"] = json!([["MIT"]]);
        component["license_error"] = Value::Null;
    }
    let data = std::fs::read(cases_dir().join("license-and-fails/data.json")).unwrap();
    let mut files = airlock_policy::default_bundle_files();
    files.retain(|(p, _)| p != "data.json");
    files.push(("data.json".into(), data));
    let decision = evaluate(&Engine::new(), &Bundle::from_files(files).unwrap(), &input, &EvalLimits::default());
    let rules: Vec<_> = decision.violations.iter().map(|v| v.rule.clone().unwrap()).collect();
    assert_eq!(rules, ["license-allowed"]);
}

#[test]
fn test_reports_read_like_opa_test() {
    let tested = bundle(&[
        ("policy.rego", "package airlock\n\ndeny contains \"x\" if input.bad\n"),
        (
            "policy_test.rego",
            "package airlock_test\n\nimport data.airlock\n\ntest_denies_bad if { airlock.deny == {\"x\"} with input as {\"bad\": true} }\n\ntest_wrong if { count(airlock.deny) == 1 with input as {} }\n\ntest_errors if { 1 / 0 }\n\nhelper := 1\n",
        ),
    ]);
    let report = run_tests(&tested);
    assert!(!report.passed());
    assert_eq!(report.count(TestOutcome::Fail), 1);
    expect![[r#"
        policy_test.rego: data.airlock_test.test_denies_bad: PASS
        policy_test.rego: data.airlock_test.test_wrong: FAIL
        policy_test.rego: data.airlock_test.test_errors: ERROR
          `policy_test.rego:9:20`: divide by zero
        --------------------------------------------------------------------------------
        PASS: 1/3
        FAIL: 1/3
        ERROR: 1/3
    "#]]
    .assert_eq(&report.to_string());
    let broken =
        bundle(&[("policy.rego", "package airlock\n"), ("policy_test.rego", "package airlock_test\ntest_x if {")]);
    expect![[r#"
        compile error: `policy_test.rego:2:12`: expecting expression
    "#]]
    .assert_eq(&run_tests(&broken).to_string());
}

/// RFC 8785 numbers are ECMAScript's `Number#toString`; `tests/data/es-numbers.txt` was written by
/// Node.js (`String(x)` of 7,396 doubles of every shape, exact ties included).
#[test]
fn canonical_numbers_agree_with_ecmascript() {
    let text = std::fs::read_to_string(data_dir().join("es-numbers.txt")).unwrap();
    let mut checked = 0;
    for line in text.lines() {
        let (hex, expected) = line.split_once(' ').unwrap();
        let x = f64::from_bits(u64::from_str_radix(hex, 16).unwrap());
        let value = Value::Number(serde_json::Number::from_f64(x).unwrap());
        assert_eq!(String::from_utf8(canonicalize(&value, 1).unwrap()).unwrap(), expected, "{hex}");
        checked += 1;
    }
    assert!(checked > 7000);
}
