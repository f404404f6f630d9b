//! The OpenAPI document a running server serves at `/api/v1/openapi.json`, validated by an
//! independent implementation: Python's `openapi-spec-validator`, over HTTP.

use airlock_test_support::spawn_app;

/// The Python with `openapi-spec-validator`, from `AIRLOCK_TEST_PYTHON` (set by `scripts/test`).
fn python() -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python");
    std::env::var_os("AIRLOCK_TEST_PYTHON").map(std::path::PathBuf::from).unwrap_or(venv)
}

const VALIDATE: &str = r#"
import json, sys, urllib.request
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
with urllib.request.urlopen(sys.argv[1] + "/api/v1/openapi.json") as response:
    content_type = response.headers.get("content-type")
    document = json.load(response)
try:
    validate(document)
except OpenAPIValidationError as e:
    print(json.dumps({"valid": False, "error": str(e)}))
    sys.exit(0)
print(json.dumps({"valid": True, "openapi": document["openapi"], "content_type": content_type,
                  "paths": len(document["paths"])}))
"#;

#[tokio::test]
async fn the_served_openapi_document_is_valid_openapi_3_1() {
    let app = spawn_app("").await;
    let url = app.url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg("-c")
            .arg(VALIDATE)
            .arg(url)
            .output()
            .expect("python runs; set AIRLOCK_TEST_PYTHON to a Python with `openapi-spec-validator`")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["openapi"], "3.1.0");
    assert_eq!(report["content_type"], "application/json");
    // Every `/api/v1` route but the catch-all artifact routes has its own path, and those five.
    let routed: std::collections::BTreeSet<_> =
        airlock_server::API_V1_ROUTES.iter().map(|(_, path)| *path).filter(|p| !p.ends_with("{*rest}")).collect();
    assert_eq!(report["paths"], routed.len() + 5, "{report}");
    app.stop().await;
}
