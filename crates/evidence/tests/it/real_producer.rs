//! A real producer: the Python package `cyclonedx-bom` (CycloneDX's own generator for Python
//! environments) describes the test virtual environment, and Airlock must read every component
//! it lists, with purls and licenses, for each spec version the crate claims.
//!
//! The Python is `AIRLOCK_TEST_PYTHON`, or else `target/venv/bin/python`, which `scripts/test`
//! creates with `scripts/requirements-test.txt`. Without it the test fails; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_evidence::{Format, Limits, parse_auto};

fn python() -> PathBuf {
    let path = std::env::var_os("AIRLOCK_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python"));
    assert!(
        path.exists(),
        "no Python at `{}` for the cyclonedx-bom test: run scripts/test, which creates target/venv with \
         scripts/requirements-test.txt (or set AIRLOCK_TEST_PYTHON)",
        path.display()
    );
    path
}

/// `python -m cyclonedx_py environment PYTHON` writing CycloneDX JSON of `spec_version`, checked
/// against the spec's JSON schema by the producer itself when `validate` (which costs it seconds).
fn sbom_of_the_test_environment(spec_version: &str, validate: bool) -> Vec<u8> {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("environment.cdx.json");
    let output = Command::new(&python)
        .args(["-m", "cyclonedx_py", "environment", "--output-format", "JSON", "--spec-version", spec_version])
        .arg(if validate { "--validate" } else { "--no-validate" })
        .arg("--output-file")
        .arg(&out)
        .arg(&python)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cyclonedx_py failed ({}); if the module is missing, run scripts/test\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&out).unwrap()
}

#[test]
fn cyclonedx_bom_describes_the_test_environment_and_airlock_reads_it() {
    for (spec_version, validate) in [("1.4", false), ("1.5", false), ("1.6", true)] {
        let sbom = sbom_of_the_test_environment(spec_version, validate);
        let (format, evidence) = parse_auto(&sbom, &Limits::default()).unwrap();
        assert_eq!(format, Format::CycloneDx);
        assert!(evidence.unread.is_empty(), "spec {spec_version}: {:#?}", evidence.unread);
        // Every package of the environment, each with its purl (requirements-test.txt has ~6
        // direct requirements; with their dependencies there are dozens).
        assert!(evidence.components.len() >= 10, "spec {spec_version}: {} components", evidence.components.len());
        for component in &evidence.components {
            let purl = component.purl.as_deref().unwrap_or_else(|| panic!("{} has no purl", component.name));
            assert!(purl.starts_with("pkg:pypi/"), "{purl}");
        }
        let requests = evidence
            .components
            .iter()
            .find(|c| c.purl.as_deref().is_some_and(|p| p.starts_with("pkg:pypi/requests@")))
            .unwrap_or_else(|| panic!("spec {spec_version}: no pkg:pypi/requests in {:#?}", evidence.components));
        assert_eq!(requests.name, "requests");
        assert!(requests.version.is_some());
        assert!(requests.licenses.iter().any(|l| l.contains("Apache")), "{:?}", requests.licenses);
    }
}
