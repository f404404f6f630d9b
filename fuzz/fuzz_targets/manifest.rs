//! Fuzzes the manifest and index parser with every supported content type. It must never
//! panic, and everything it accepts must respect the configured limits.
#![no_main]

use airlock_model::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Manifest, ManifestLimits, OCI_INDEX, OCI_MANIFEST};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let content_type = match selector % 5 {
        0 => None,
        1 => Some(OCI_MANIFEST),
        2 => Some(OCI_INDEX),
        3 => Some(DOCKER_MANIFEST),
        _ => Some(DOCKER_MANIFEST_LIST),
    };
    let limits = ManifestLimits { max_bytes: 64 * 1024, max_descriptors: 64, max_depth: 16 };
    if let Ok(manifest) = Manifest::parse(content_type, body, &limits) {
        assert!(manifest.entries.len() <= limits.max_descriptors);
        let _ = manifest.required_blobs().count();
        let _ = manifest.required_manifests().count();
    }
});
