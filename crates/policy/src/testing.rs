//! `run_tests`: every `test_*` rule of a bundle's `*_test.rego` files, run like `opa test`.
//!
//! All modules (policies and tests) are compiled together with `data.json`. A test passes when it
//! evaluates to `true`; it fails when it is `false` or undefined; it errors when evaluation
//! raises an error or runs past the time budget (each test has the whole budget).

use std::fmt;
use std::num::NonZeroU32;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{LimitError, Value as RegoValue};
use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, FileKind};
use crate::engine::{EvalLimits, one_line, within};

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestOutcome {
    Pass,
    Fail,
    Error,
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// The rule's full name, `data.<package>.test_<name>`.
    pub name: String,
    /// The file declaring it.
    pub file: String,
    pub outcome: TestOutcome,
    /// Why it errored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every test's result, in file then source order, and why the bundle did not compile, if so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestReport {
    pub bundle_digest: String,
    pub results: Vec<TestResult>,
    /// Why the modules did not compile; no test ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compile_error: Option<String>,
}

impl TestReport {
    /// Whether the bundle compiled and every test passed.
    pub fn passed(&self) -> bool {
        self.compile_error.is_none() && self.results.iter().all(|r| r.outcome == TestOutcome::Pass)
    }

    /// How many tests ended `outcome`.
    pub fn count(&self, outcome: TestOutcome) -> usize {
        self.results.iter().filter(|r| r.outcome == outcome).count()
    }
}

/// `opa test`'s layout: one line per test, then the totals.
impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.compile_error {
            return writeln!(f, "compile error: {error}");
        }
        for r in &self.results {
            let outcome = match r.outcome {
                TestOutcome::Pass => "PASS",
                TestOutcome::Fail => "FAIL",
                TestOutcome::Error => "ERROR",
            };
            writeln!(f, "{}: {}: {outcome}", r.file, r.name)?;
            if let Some(message) = &r.message {
                writeln!(f, "  {message}")?;
            }
        }
        writeln!(f, "{}", "-".repeat(80))?;
        let total = self.results.len();
        for (label, outcome) in
            [("PASS", TestOutcome::Pass), ("FAIL", TestOutcome::Fail), ("ERROR", TestOutcome::Error)]
        {
            let n = self.count(outcome);
            if n > 0 || (outcome == TestOutcome::Pass && total == 0) {
                writeln!(f, "{label}: {n}/{total}")?;
            }
        }
        Ok(())
    }
}

/// Runs the bundle's tests with the default limits.
pub fn run_tests(bundle: &Bundle) -> TestReport {
    run_tests_with(bundle, &EvalLimits::default())
}

/// Runs the bundle's tests, each within `limits.time_budget`.
pub fn run_tests_with(bundle: &Bundle, limits: &EvalLimits) -> TestReport {
    let mut report =
        TestReport { bundle_digest: bundle.digest().to_string(), results: Vec::new(), compile_error: None };
    let modules: Vec<(String, String)> = bundle
        .modules(FileKind::Policy)
        .chain(bundle.modules(FileKind::Test))
        .map(|(p, s)| (p.to_owned(), s.to_owned()))
        .collect();
    let data = bundle.data().cloned();
    let compiled = within(limits.compile_budget, move || compile(modules, data)).map_err(|e| e.message).and_then(|r| r);
    let (mut rego, tests) = match compiled {
        Ok(compiled) => compiled,
        Err(message) => {
            report.compile_error = Some(message);
            return report;
        }
    };
    let interval = NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN);
    for (file, name) in tests {
        rego.set_execution_timer_config(ExecutionTimerConfig { limit: limits.time_budget, check_interval: interval });
        let (outcome, message) = match rego.eval_rule(name.clone()) {
            Ok(RegoValue::Bool(true)) => (TestOutcome::Pass, None),
            Ok(_) => (TestOutcome::Fail, None),
            Err(e) if matches!(e.downcast_ref::<LimitError>(), Some(LimitError::TimeLimitExceeded { .. })) => {
                (TestOutcome::Error, Some(format!("ran past the time budget of {} ms", limits.time_budget.as_millis())))
            }
            Err(e) => (TestOutcome::Error, Some(one_line(&e))),
        };
        report.results.push(TestResult { name, file, outcome, message });
    }
    report
}

/// Compiles every module with `data.json` and finds the tests: `(file, data.<package>.test_x)`.
fn compile(
    modules: Vec<(String, String)>,
    data: Option<serde_json::Value>,
) -> Result<(regorus::Engine, Vec<(String, String)>), String> {
    let mut rego = regorus::Engine::new();
    rego.set_strict_builtin_errors(true);
    let mut tests = Vec::new();
    for (path, source) in modules {
        let names = if path.ends_with("_test.rego") { candidates(&source) } else { Vec::new() };
        let package = rego.add_policy(path.clone(), source).map_err(|e| one_line(&e))?;
        for name in names {
            if rego.has_declared_rule_rooted_at(&path, &name).unwrap_or(false) {
                tests.push((path.clone(), format!("{package}.{name}")));
            }
        }
    }
    if let Some(data) = data {
        let data = RegoValue::deserialize(&data).map_err(|e| format!("`data.json`: {e}"))?;
        rego.add_data(data).map_err(|e| one_line(&e))?;
    }
    rego.eval_query("true".to_owned(), false).map_err(|e| one_line(&e))?;
    Ok((rego, tests))
}

/// The distinct identifiers starting `test_` in `source`, in order of first appearance; the
/// caller keeps those the module declares as rules.
fn candidates(source: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let bytes = source.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0usize;
    while let Some(rest) = bytes.get(i..) {
        if rest.is_empty() {
            break;
        }
        let at_start = i == 0 || bytes.get(i.saturating_sub(1)).is_some_and(|&b| !ident(b) && b != b'.');
        if at_start && rest.starts_with(b"test_") {
            let len = rest.iter().take_while(|&&b| ident(b)).count();
            let name = String::from_utf8_lossy(rest.get(..len).unwrap_or_default()).into_owned();
            if !out.contains(&name) {
                out.push(name);
            }
            i = i.saturating_add(len.max(1));
        } else {
            i = i.saturating_add(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::candidates;

    #[test]
    fn candidate_names() {
        assert_eq!(
            candidates("test_a if true\n  x := data.p.test_b\ntest_a if false\nnot_test_c := 1\n test_d { }"),
            ["test_a", "test_d"]
        );
    }
}
