//! The engine: compiles a bundle once per digest (bounded cache), evaluates `data.airlock.deny`
//! and `data.airlock.warn` over an input within a time budget, applies waivers, and returns a
//! [`Decision`]. Every failure denies.

use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use airlock_model::{Digest, Timestamp};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{LimitError, Value as RegoValue};
use serde::Deserialize;
use serde_json::Value;

use crate::bundle::{Bundle, FileKind};
use crate::decision::{Decision, ErrorCode, EvalError, Outcome, Violation};
use crate::input::prepare;
use crate::waiver::{self, Waiver, WaiverLimits};

/// Default wall-clock budget of one decision's Rego evaluation.
pub const EVAL_TIME_BUDGET: Duration = Duration::from_millis(250);
/// Default wall-clock budget of compiling one bundle (parsing and analysing its modules), which
/// regorus' execution timer does not cover. The default library compiles in about 2 ms.
pub const COMPILE_TIME_BUDGET: Duration = Duration::from_secs(2);
/// Stack of the thread that compiles a bundle.
const COMPILE_STACK_BYTES: usize = 8 * 1024 * 1024;
/// Default limit on the input's size, in bytes of its canonical JSON.
pub const INPUT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Default limit on the input's nesting depth.
pub const INPUT_MAX_DEPTH: usize = 48;
/// Default limit on violations and warnings together.
pub const RESULTS_MAX: usize = 1000;
/// Default limit on lines of `print` output kept in a decision.
pub const TRACE_MAX_LINES: usize = 256;
/// Longest message, remediation or trace line kept, in characters; longer ones are cut.
pub const TEXT_MAX_CHARS: usize = 4096;
/// Default number of compiled bundles kept.
pub const ENGINE_CACHE_CAPACITY: usize = 16;
/// Work units regorus runs between two looks at the clock.
const TIMER_CHECK_INTERVAL: u32 = 16;

/// The rules the engine evaluates (conftest conventions).
const DENY_RULE: &str = "data.airlock.deny";
const WARN_RULE: &str = "data.airlock.warn";
const PACKAGE: &str = "data.airlock";

/// Bounds on one evaluation. Every field is a config key of the server (`policy.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalLimits {
    /// Wall-clock budget of the Rego evaluation (`deny` and `warn` together).
    pub time_budget: Duration,
    /// Wall-clock budget of compiling a bundle the engine has not compiled yet.
    pub compile_budget: Duration,
    /// Largest input, in bytes of its canonical JSON.
    pub max_input_bytes: usize,
    /// Deepest input nesting.
    pub max_input_depth: usize,
    /// Most violations and warnings together.
    pub max_results: usize,
    /// Most `print` lines kept in the trace.
    pub max_trace_lines: usize,
    /// Bounds on `input.waivers`.
    pub waivers: WaiverLimits,
}

impl Default for EvalLimits {
    fn default() -> EvalLimits {
        EvalLimits {
            time_budget: EVAL_TIME_BUDGET,
            compile_budget: COMPILE_TIME_BUDGET,
            max_input_bytes: INPUT_MAX_BYTES,
            max_input_depth: INPUT_MAX_DEPTH,
            max_results: RESULTS_MAX,
            max_trace_lines: TRACE_MAX_LINES,
            waivers: WaiverLimits::default(),
        }
    }
}

/// A compiled bundle: a prepared regorus engine, cloned for each evaluation.
struct Program {
    rego: regorus::Engine,
    has_warn: bool,
}

type Compiled = Arc<Result<Program, EvalError>>;

/// A bundle in the cache: compiled (or failed), or still compiling past its budget.
enum Entry {
    Ready(Compiled),
    Pending(Receiver<Result<Program, EvalError>>),
}

/// Evaluates bundles. Share one per process: it caches each bundle compiled, by digest.
pub struct Engine {
    cache: Mutex<Vec<(Digest, Entry)>>,
    capacity: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("Engine").field("cached", &cached).field("capacity", &self.capacity).finish()
    }
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new()
    }
}

impl Engine {
    /// An engine keeping up to [`ENGINE_CACHE_CAPACITY`] compiled bundles.
    pub fn new() -> Engine {
        Engine::with_capacity(ENGINE_CACHE_CAPACITY)
    }

    /// An engine keeping up to `capacity` compiled bundles (at least one).
    pub fn with_capacity(capacity: usize) -> Engine {
        Engine { cache: Mutex::new(Vec::new()), capacity: capacity.max(1) }
    }

    /// Compiles `bundle` (or finds it compiled), returning why it does not compile.
    pub fn check(&self, bundle: &Bundle, limits: &EvalLimits) -> Result<(), EvalError> {
        match &*self.program(bundle, limits) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.clone()),
        }
    }

    /// Evaluates `bundle` over a typed `input`, which becomes JSON here and nowhere else. An
    /// input that does not serialize is a denying decision.
    pub fn evaluate_input<I: serde::Serialize>(
        &self,
        bundle: &Bundle,
        input: &I,
        at: Timestamp,
        limits: &EvalLimits,
    ) -> Decision {
        match serde_json::to_value(input) {
            Ok(value) => self.evaluate(bundle, &value, at, limits),
            Err(e) => refused(
                bundle,
                at,
                EvalError::new(ErrorCode::InputInvalid, format!("policy input does not serialize: {e}")),
            ),
        }
    }

    /// Evaluates `bundle` over `input` at `at`. Never fails: every failure is an [`EvalError`] in
    /// a denying decision. The same bundle, input and time give the same decision, byte for
    /// byte, unless the time budget runs out.
    pub fn evaluate(&self, bundle: &Bundle, input: &Value, at: Timestamp, limits: &EvalLimits) -> Decision {
        let prepared = prepare(input, at, limits);
        let mut errors = prepared.errors;
        let mut violations = Vec::new();
        let mut warnings = Vec::new();
        let mut trace = Vec::new();
        if let (true, Some(value)) = (errors.is_empty(), prepared.value) {
            let compiled = self.program(bundle, limits);
            match &*compiled {
                Err(e) => errors.push(e.clone()),
                Ok(program) => {
                    let run = run(program, value, at, limits);
                    violations = run.deny;
                    warnings = run.warn;
                    trace = run.trace;
                    errors.extend(run.errors);
                }
            }
        }
        let mut waivers: Vec<&Waiver> = bundle.waivers().iter().chain(&prepared.waivers).collect();
        waivers.sort_by(|a, b| a.id().cmp(b.id()));
        let applied = waiver::apply(violations, &waivers, &prepared.repository, at);
        let outcome = if errors.is_empty() && applied.remaining.is_empty() { Outcome::Allow } else { Outcome::Deny };
        errors.sort();
        errors.dedup();
        Decision {
            outcome,
            violations: applied.remaining,
            warnings,
            waivers_applied: applied.applied,
            waivers_inactive: applied.inactive,
            vex_applied: prepared.vex_applied,
            errors,
            bundle_digest: bundle.digest().to_string(),
            input_digest: prepared.digest,
            evaluated_at: at.to_rfc3339(),
            trace,
        }
    }

    /// Evaluates `bundle` over an input given as JSON bytes, refusing them before parsing when
    /// they are over `limits.max_input_bytes`; bytes that are not JSON deny with `input-invalid`.
    pub fn evaluate_json(&self, bundle: &Bundle, input: &[u8], at: Timestamp, limits: &EvalLimits) -> Decision {
        if input.len() > limits.max_input_bytes {
            return refused(
                bundle,
                at,
                EvalError::new(
                    ErrorCode::InputTooLarge,
                    format!(
                        "policy input is {} bytes; the limit is {}; attach less evidence or raise `policy.max_input_bytes`",
                        input.len(),
                        limits.max_input_bytes
                    ),
                ),
            );
        }
        match serde_json::from_slice::<Value>(input) {
            Ok(value) => self.evaluate(bundle, &value, at, limits),
            Err(e) => {
                refused(bundle, at, EvalError::new(ErrorCode::InputInvalid, format!("policy input is not JSON: {e}")))
            }
        }
    }

    /// The compiled bundle, from the cache or compiled now, on a thread of its own, waiting at
    /// most `limits.compile_budget` (regorus cannot be interrupted while it parses). A compile
    /// still running past its budget stays in the cache as pending: later calls report
    /// `compile-timeout` without starting another, and take its result once it is there.
    fn program(&self, bundle: &Bundle, limits: &EvalLimits) -> Compiled {
        let digest = bundle.digest();
        let budget = limits.compile_budget;
        {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(i) = cache.iter().position(|(d, _)| d == digest) {
                // Most recently used last.
                let (d, entry) = cache.remove(i);
                let (entry, compiled) = match entry {
                    Entry::Ready(compiled) => (Some(Entry::Ready(compiled.clone())), compiled),
                    Entry::Pending(rx) => match rx.try_recv() {
                        Ok(result) => {
                            let compiled = Arc::new(result);
                            (Some(Entry::Ready(compiled.clone())), compiled)
                        }
                        Err(TryRecvError::Empty) => (Some(Entry::Pending(rx)), Arc::new(Err(compile_timeout(budget)))),
                        Err(TryRecvError::Disconnected) => (None, Arc::new(Err(compile_lost()))),
                    },
                };
                if let Some(entry) = entry {
                    cache.push((d, entry));
                }
                return compiled;
            }
        }
        let modules: Vec<(String, String)> =
            bundle.modules(FileKind::Policy).map(|(p, s)| (p.to_owned(), s.to_owned())).collect();
        let data = bundle.data().cloned();
        let (entry, compiled) = match spawn(move || compile(modules, data)) {
            Err(e) => (None, Arc::new(Err(e))),
            Ok(rx) => match rx.recv_timeout(budget) {
                Ok(result) => {
                    let compiled = Arc::new(result);
                    (Some(Entry::Ready(compiled.clone())), compiled)
                }
                Err(RecvTimeoutError::Timeout) => (Some(Entry::Pending(rx)), Arc::new(Err(compile_timeout(budget)))),
                Err(RecvTimeoutError::Disconnected) => (None, Arc::new(Err(compile_lost()))),
            },
        };
        if let Some(entry) = entry {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            // Another call may have compiled the same bundle meanwhile; one entry is kept.
            if !cache.iter().any(|(d, _)| d == digest) {
                if cache.len() >= self.capacity {
                    cache.remove(0);
                }
                cache.push((digest.clone(), entry));
            }
        }
        compiled
    }
}

fn compile_timeout(budget: Duration) -> EvalError {
    EvalError::new(
        ErrorCode::CompileTimeout,
        format!(
            "compiling the bundle ran past its budget of {} ms; split large files, flatten deeply nested literals, or raise `policy.compile_budget_ms`",
            budget.as_millis()
        ),
    )
}

fn compile_lost() -> EvalError {
    EvalError::new(ErrorCode::Internal, "the thread compiling the bundle ended without a result")
}

/// Runs `f` on a thread of its own; its result arrives on the receiver.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<Receiver<T>, EvalError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("airlock-policy-compile".to_owned())
        .stack_size(COMPILE_STACK_BYTES)
        .spawn(move || {
            // Nobody may be waiting any more (the cache entry was evicted); that is fine.
            let _ = tx.send(f());
        })
        .map_err(|e| {
            EvalError::new(ErrorCode::Internal, format!("cannot start a thread to compile the bundle: {e}"))
        })?;
    Ok(rx)
}

/// Runs `f` on a thread of its own and waits for it at most `budget`; past it, the thread is
/// left to finish on its own and its result is dropped.
pub(crate) fn within<T: Send + 'static>(
    budget: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EvalError> {
    match spawn(f)?.recv_timeout(budget) {
        Ok(value) => Ok(value),
        Err(RecvTimeoutError::Timeout) => Err(compile_timeout(budget)),
        Err(RecvTimeoutError::Disconnected) => Err(compile_lost()),
    }
}

/// A denying decision for an input that could not be read at all.
fn refused(bundle: &Bundle, at: Timestamp, error: EvalError) -> Decision {
    Decision {
        outcome: Outcome::Deny,
        violations: Vec::new(),
        warnings: Vec::new(),
        waivers_applied: Vec::new(),
        waivers_inactive: Vec::new(),
        vex_applied: Vec::new(),
        errors: vec![error],
        bundle_digest: bundle.digest().to_string(),
        input_digest: None,
        evaluated_at: at.to_rfc3339(),
        trace: Vec::new(),
    }
}

/// Parses and analyses every policy module with `data.json`, once.
fn compile(modules: Vec<(String, String)>, data: Option<Value>) -> Result<Program, EvalError> {
    let compile_error = |e: anyhow::Error| EvalError::new(ErrorCode::Compile, one_line(&e));
    let mut rego = regorus::Engine::new();
    // A builtin that fails raises an error (which denies) instead of making its expression
    // undefined, which in a `deny` body would let the input pass.
    rego.set_strict_builtin_errors(true);
    let mut has_deny = false;
    let mut has_warn = false;
    for (path, source) in modules {
        let package = contained(|| rego.add_policy(path.clone(), source)).map_err(compile_error)?;
        if package == PACKAGE {
            has_deny |= rego.has_declared_rule_rooted_at(&path, "deny").unwrap_or(false);
            has_warn |= rego.has_declared_rule_rooted_at(&path, "warn").unwrap_or(false);
        }
    }
    if let Some(data) = data {
        // Not regorus' `From<serde_json::Value>`: it turns a failure into `undefined`.
        let data = RegoValue::deserialize(&data)
            .map_err(|e| EvalError::new(ErrorCode::Compile, format!("`data.json`: {e}")))?;
        contained(|| rego.add_data(data)).map_err(compile_error)?;
    }
    // Analysis (schedules, unsafe variables, conflicts) runs at the first query; run it now.
    contained(|| rego.eval_query("true".to_owned(), false)).map_err(compile_error)?;
    if !has_deny {
        return Err(EvalError::new(
            ErrorCode::NoDenyRule,
            "bundle declares no `deny` rule in package `airlock`, so it could never deny; add `deny contains violation if { ... }`",
        ));
    }
    Ok(Program { rego, has_warn })
}

/// What one evaluation produced.
struct Run {
    deny: Vec<Violation>,
    warn: Vec<Violation>,
    trace: Vec<String>,
    errors: Vec<EvalError>,
}

fn run(program: &Program, input: RegoValue, at: Timestamp, limits: &EvalLimits) -> Run {
    let mut out = Run { deny: Vec::new(), warn: Vec::new(), trace: Vec::new(), errors: Vec::new() };
    let mut rego = program.rego.clone();
    // `time.now_ns()` is the decision time, so a replay gives the same decision; `rand.intn`
    // would not, so it fails (and denies).
    let now_ns = i128::from(at.as_millis()).saturating_mul(1_000_000);
    let extensions = rego
        .add_extension("time.now_ns".to_owned(), 0, Box::new(move |_: Vec<RegoValue>| Ok(RegoValue::from(now_ns))))
        .and_then(|()| {
            rego.add_extension(
                "rand.intn".to_owned(),
                2,
                Box::new(|_: Vec<RegoValue>| -> anyhow::Result<RegoValue> {
                    Err(anyhow::Error::msg("`rand.intn` is not available: decisions must be reproducible"))
                }),
            )
        });
    if let Err(e) = extensions {
        out.errors.push(EvalError::new(ErrorCode::Internal, one_line(&e)));
        return out;
    }
    rego.set_gather_prints(true);
    // The input is converted and handed to regorus once per decision.
    rego.set_input(input);
    let deadline = Instant::now().checked_add(limits.time_budget);
    match eval(&mut rego, DENY_RULE, deadline, limits) {
        Ok(RegoValue::Undefined) => out.errors.push(EvalError::new(
            ErrorCode::DenyUndefined,
            "`data.airlock.deny` is undefined; write it as a set (`deny contains ...`) so that no violation is an empty set",
        )),
        Ok(value) => match findings(&value, DENY_RULE) {
            Ok(found) => out.deny = found,
            Err(e) => out.errors.push(e),
        },
        Err(e) => out.errors.push(e),
    }
    collect_prints(&mut rego, &mut out.trace);
    if program.has_warn && out.errors.is_empty() {
        match eval(&mut rego, WARN_RULE, deadline, limits) {
            Ok(RegoValue::Undefined) => {}
            Ok(value) => match findings(&value, WARN_RULE) {
                Ok(found) => out.warn = found,
                Err(e) => out.errors.push(e),
            },
            Err(e) => out.errors.push(e),
        }
        collect_prints(&mut rego, &mut out.trace);
    }
    if out.deny.len().saturating_add(out.warn.len()) > limits.max_results {
        out.errors.push(EvalError::new(
            ErrorCode::TooManyResults,
            format!(
                "policy returned {} violations and {} warnings; the limit is {} together",
                out.deny.len(),
                out.warn.len(),
                limits.max_results
            ),
        ));
        out.deny.clear();
        out.warn.clear();
    }
    truncate_trace(&mut out.trace, limits.max_trace_lines);
    out
}

/// Evaluates `rule` with the execution timer set to what is left of the budget.
fn eval(
    rego: &mut regorus::Engine,
    rule: &str,
    deadline: Option<Instant>,
    limits: &EvalLimits,
) -> Result<RegoValue, EvalError> {
    let timeout = || {
        EvalError::new(
            ErrorCode::Timeout,
            format!(
                "evaluating `{rule}` ran past the time budget of {} ms; simplify the rules or raise `policy.time_budget_ms`",
                limits.time_budget.as_millis()
            ),
        )
    };
    let remaining = deadline.map_or(limits.time_budget, |d| d.saturating_duration_since(Instant::now()));
    if remaining.is_zero() {
        return Err(timeout());
    }
    let interval = NonZeroU32::new(TIMER_CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN);
    rego.set_execution_timer_config(ExecutionTimerConfig { limit: remaining, check_interval: interval });
    let result = contained(|| rego.eval_rule(rule.to_owned()));
    match result {
        Ok(value) => {
            // The timer is cooperative: one long builtin call can overrun it. Judge the end too.
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(timeout());
            }
            Ok(value)
        }
        Err(e) => Err(match e.downcast_ref::<LimitError>() {
            Some(LimitError::TimeLimitExceeded { .. }) => timeout(),
            Some(LimitError::MemoryLimitExceeded { limit, .. }) => EvalError::new(
                ErrorCode::MemoryLimit,
                format!("evaluating `{rule}` ran past the memory limit of {limit} bytes"),
            ),
            _ if e.to_string().starts_with(PANIC_PREFIX) => EvalError::new(ErrorCode::Internal, one_line(&e)),
            _ => EvalError::new(ErrorCode::Evaluation, format!("evaluating `{rule}` failed: {}", one_line(&e))),
        }),
    }
}

const PANIC_PREFIX: &str = "the policy engine panicked";

/// Runs a regorus call, turning a panic inside it (a bug in the interpreter) into an error: a
/// bug must deny, not take the process down.
fn contained<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(anyhow::Error::msg(format!("{PANIC_PREFIX}: {what}")))
        }
    }
}

/// The findings of a `deny` or `warn` rule: a set (or array) of strings or of objects with a
/// string `msg` and optional string `rule`, `remediation`, `doc`, `severity`, `vulnerability`,
/// `component`. Sorted, without duplicates.
fn findings(value: &RegoValue, rule: &str) -> Result<Vec<Violation>, EvalError> {
    let malformed = |why: String| {
        EvalError::new(
            ErrorCode::MalformedResult,
            format!(
                "`{rule}` {why}; return strings, or objects with a string `msg` (and `rule`, `remediation`, `doc`, `severity`)"
            ),
        )
    };
    let items: Vec<&RegoValue> = match value {
        RegoValue::Set(set) => set.iter().collect(),
        RegoValue::Array(array) => array.iter().collect(),
        other => return Err(malformed(format!("is {}, not a set", kind(other)))),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let violation = match item {
            RegoValue::String(s) => Violation {
                rule: None,
                message: cut(s),
                remediation: None,
                doc: None,
                severity: None,
                vulnerability: None,
                component: None,
            },
            RegoValue::Object(object) => {
                let field = |name: &str| -> Result<Option<String>, EvalError> {
                    match object.get(&RegoValue::from(name)) {
                        None | Some(RegoValue::Null | RegoValue::Undefined) => Ok(None),
                        Some(RegoValue::String(s)) => Ok(Some(cut(s))),
                        Some(other) => {
                            Err(malformed(format!("holds a `{name}` that is {}, not a string", kind(other))))
                        }
                    }
                };
                Violation {
                    message: field("msg")?
                        .ok_or_else(|| malformed("holds an object without a string `msg`".to_owned()))?,
                    rule: field("rule")?,
                    remediation: field("remediation")?,
                    doc: field("doc")?,
                    severity: field("severity")?,
                    vulnerability: field("vulnerability")?,
                    component: field("component")?,
                }
            }
            other => return Err(malformed(format!("holds {}", kind(other)))),
        };
        out.push(violation);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn kind(value: &RegoValue) -> &'static str {
    match value {
        RegoValue::Null => "null",
        RegoValue::Bool(_) => "a boolean",
        RegoValue::Number(_) => "a number",
        RegoValue::String(_) => "a string",
        RegoValue::Array(_) => "an array",
        RegoValue::Set(_) => "a set",
        RegoValue::Object(_) => "an object",
        RegoValue::Undefined => "undefined",
    }
}

/// `text` cut to [`TEXT_MAX_CHARS`] characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(TEXT_MAX_CHARS) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_owned(),
    }
}

fn collect_prints(rego: &mut regorus::Engine, trace: &mut Vec<String>) {
    if let Ok(lines) = rego.take_prints() {
        trace.extend(lines.iter().map(|l| cut(l)));
    }
}

fn truncate_trace(trace: &mut Vec<String>, max: usize) {
    if trace.len() > max {
        let dropped = trace.len().saturating_sub(max);
        trace.truncate(max);
        trace.push(format!("… {dropped} more lines of `print` output not kept"));
    }
}

/// A regorus error on one line: its first source location and its message, like
/// `` `policy.rego:3:14`: divide by zero ``.
pub(crate) fn one_line(error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    let location = text.lines().find_map(|l| l.trim().strip_prefix("--> ")).map(str::trim);
    let message = text.lines().find_map(|l| l.trim().strip_prefix("error: ")).map(str::trim);
    let line = match (location, message) {
        (Some(location), Some(message)) => format!("`{location}`: {message}"),
        _ => text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "),
    };
    airlock_model::echo::echo(line.replace("--> ", "").trim_end_matches(':'))
}
