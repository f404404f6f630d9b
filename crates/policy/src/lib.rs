//! Airlock's policy gate: policy as code in Rego, evaluated in-process by `regorus`, bounded in
//! time and size, with waivers applied after Rego, and the default policy library embedded.
//!
//! ```
//! use airlock_model::Timestamp;
//! use airlock_policy::{Bundle, Engine, EvalLimits, Outcome};
//!
//! let bundle = Bundle::from_files(vec![(
//!     "policy.rego".into(),
//!     br#"package airlock
//! deny contains {"rule": "no-root", "msg": "runs as root"} if input.artifact.annotations.user == "root"
//! "#.to_vec(),
//! )])?;
//! let input = serde_json::json!({
//!     "artifact": {"repository": "dev/payments/api", "digest": "sha256:…", "annotations": {"user": "root"}},
//!     "source_stage": "dev", "target_stage": "staging", "attestations": [],
//!     "evidence": {"provenance": [], "components": [], "vulnerabilities": [], "vex": [], "tests": [], "unread": []},
//!     "time": "2026-11-26T05:00:00Z",
//! });
//! let at = Timestamp::from_millis(1_795_669_200_000); // 2026-11-26T05:00:00Z, from a `Clock`
//! let engine = Engine::new(); // one per process: it caches compiled bundles by digest
//! let decision = engine.evaluate(&bundle, &input, at, &EvalLimits::default());
//! assert_eq!(decision.outcome, Outcome::Deny);
//! assert_eq!(decision.violations[0].rule.as_deref(), Some("no-root"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Bundles
//!
//! A [`Bundle`] is a directory of `.rego` modules (Rego v1 syntax), an optional `data.json` (the
//! document under `data`), `*_test.rego` tests (never evaluated for decisions; see
//! [`run_tests`]) and an optional `waivers.json` (see [`waiver`]). It is bounded
//! ([`BundleLimits`]) and named by a digest over its files (framing on [`Bundle`]).
//! [`default_bundle`] is the default library of `crates/policy/library`, documented rule by rule
//! in `docs/policies/`.
//!
//! # Signed bundles
//!
//! A bundle is code, so a server loads a directory bundle only under the signature of the trust
//! root's policy signers: `bundle.sig` ([`SIGNATURE_FILE`]) holds a DSSE envelope over the
//! bundle's manifest ([`Bundle::manifest`], every file by its SHA-256), made by
//! [`sign_bundle`] and checked by [`verify_bundle`]. The embedded default library is trusted as
//! part of the binary.
//!
//! # Evaluation
//!
//! [`Engine::evaluate`] follows conftest's conventions: `data.airlock.deny` and
//! `data.airlock.warn` are sets of strings or of objects with `msg`, `rule`, `severity`,
//! `remediation`, `doc` and, for waiver matching, `vulnerability` and `component`. The input's
//! shape is `docs/policy-input.md`. Decisions are reproducible: `time.now_ns()` is the decision
//! time, `rand.intn` is refused, sets are ordered, and [`Decision::to_canonical_json`] is RFC 8785.
//!
//! # Failing closed
//!
//! Evaluation never returns an error: every failure is an [`EvalError`] in a denying
//! [`Decision`], with an exhaustive [`ErrorCode`]:
//!
//! - a module that does not parse or compile (`compile`), or a compile that runs past its own
//!   budget, [`COMPILE_TIME_BUDGET`] by default (`compile-timeout`): regorus' timer does not
//!   cover parsing, so a bundle compiles on a thread of its own and the engine stops waiting; the
//!   compile stays pending in the cache (one thread per bundle, never more) and its result is
//!   used once it is there. `[`/`{` nesting beyond [`REGO_MAX_NESTING`], on which regorus'
//!   parser backtracks exponentially, is refused when the bundle is read;
//! - a bundle without a `deny` rule in package `airlock` (`no-deny-rule`), or one whose `deny`
//!   is undefined (`deny-undefined`);
//! - an evaluation error (`evaluation`); builtins are strict, so a failing builtin is an error,
//!   not an `undefined` that would silence a `deny` body;
//! - the time budget, [`EVAL_TIME_BUDGET`] by default, enforced by regorus' execution timer
//!   inside evaluation and checked again at its end (`timeout`);
//! - an input over [`INPUT_MAX_BYTES`] or nested deeper than [`INPUT_MAX_DEPTH`]
//!   (`input-too-large`, `input-too-deep`), an input missing a field the rules rely on
//!   (`input-invalid`), an `input.time` other than the decision time (`time-mismatch`);
//! - a result that is not a set of findings (`malformed-result`) or holds more than
//!   [`RESULTS_MAX`] (`too-many-results`); an invalid waiver in `input.waivers`
//!   (`invalid-waiver`); a panic inside regorus, contained (`internal`).
//!
//! Memory: regorus' memory limit needs its allocator installed as the process's global
//! allocator, a choice for the binary, not this library. Until then memory is bounded through
//! what drives it: input size and depth, bundle size, result counts, and the time budget.
//!
//! # Limits
//!
//! Every limit is a named constant, a field of [`EvalLimits`], [`BundleLimits`] or
//! [`WaiverLimits`], an error and a test. Nothing here panics on untrusted input.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod bundle;
mod canonical;
mod decision;
mod engine;
mod error;
mod input;
pub mod license;
mod signature;
mod testing;
pub mod waiver;

pub use bundle::{
    BUNDLE_FILE_MAX_BYTES, BUNDLE_MAX_BYTES, BUNDLE_MAX_DEPTH, BUNDLE_MAX_FILES, BUNDLE_PATH_MAX_LEN, Bundle,
    BundleLimits, DATA_FILE, FileKind, REGO_MAX_NESTING, WAIVERS_FILE, default_bundle, default_bundle_files,
};
pub use canonical::{CanonicalError, canonicalize};
pub use decision::{AppliedWaiver, Decision, ErrorCode, EvalError, InactiveWaiver, Outcome, Violation, WaiverStatus};
pub use engine::{
    COMPILE_TIME_BUDGET, ENGINE_CACHE_CAPACITY, EVAL_TIME_BUDGET, Engine, EvalLimits, INPUT_MAX_BYTES, INPUT_MAX_DEPTH,
    RESULTS_MAX, TEXT_MAX_CHARS, TRACE_MAX_LINES,
};
pub use error::PolicyError;
pub use signature::{
    BundleSignError, BundleTrustError, MANIFEST_PAYLOAD_TYPE, MANIFEST_TYPE, SIGNATURE_FILE, SIGNATURE_MAX_BYTES,
    SIGNATURE_MAX_SIGNATURES, sign_bundle, verify_bundle,
};
pub use testing::{TestOutcome, TestReport, TestResult, run_tests, run_tests_with};
pub use waiver::{Waiver, WaiverError, WaiverLimits, WaiverPatternError, parse_waiver_repository};
