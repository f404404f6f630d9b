//! Negative manifest fixtures, each named after the attack it stands for: every one must be
//! refused with the error shown, never accepted and never a panic. Each is pushed as a client
//! would push it, with `Content-Type: application/vnd.oci.image.manifest.v1+json`, or with the
//! header in `<name>.content-type` beside it when the attack needs another.

use std::path::Path;

use airlock_model::manifest::{Manifest, ManifestLimits, OCI_MANIFEST};
use expect_test::expect_file;

#[test]
fn every_negative_fixture_is_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/manifest");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "fixtures went missing: {names:?}");
    let mut report = String::new();
    for path in names {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let header = std::fs::read_to_string(path.with_extension("content-type")).ok();
        let content_type = header.as_deref().map_or(OCI_MANIFEST, str::trim);
        let outcome = match Manifest::parse(Some(content_type), &bytes, &ManifestLimits::default()) {
            Ok(m) => panic!("{name}: accepted a hostile manifest: {m:?}"),
            Err(e) => e.to_string(),
        };
        report.push_str(&format!("{name}: {outcome}\n"));
    }
    expect_file!["../data/manifest/expected.txt"].assert_eq(&report);
}

#[test]
fn descriptor_flood_is_refused() {
    let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let layer = format!(r#"{{"mediaType":"a/b","digest":"{d}","size":1}}"#);
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{layer},"layers":[{}]}}"#,
        vec![layer.as_str(); 1025].join(",")
    );
    let err = Manifest::parse(None, body.as_bytes(), &ManifestLimits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "manifest lists 1025 descriptors; the limit is 1024 (config key `limits.manifest_max_descriptors`)"
    );
}
