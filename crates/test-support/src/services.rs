//! External services the tests use (PostgreSQL, S3), found through environment variables that
//! `scripts/services` prints and `scripts/test` exports.
//!
//! A test that needs a service asks [`service`] for its variable. When the variable is unset it
//! is skipped with a line on stderr, unless `AIRLOCK_TEST_SERVICES=required` (which
//! `scripts/test` sets): then a missing service fails the test, so CI can never pass by skipping.

/// Set to `required` to fail, not skip, a test whose service is not configured.
pub const REQUIRED_VAR: &str = "AIRLOCK_TEST_SERVICES";

/// The value of `var` (a service's address), or `None` when the test should be skipped.
///
/// # Panics
/// When `var` is unset and services are required: the run is meant to include the service.
pub fn service(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var(REQUIRED_VAR).as_deref() == Ok("required") => {
            panic!("`{var}` is not set but {REQUIRED_VAR}=required; start the services with `scripts/services start`")
        }
        _ => {
            eprintln!("skipped {test}: `{var}` is not set (run `scripts/services start`, or `scripts/test`)");
            None
        }
    }
}
