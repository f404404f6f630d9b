//! OCI fixtures: images with real gzip-compressed tar layers, artifacts with subjects, and OCI
//! image layouts on disk for clients like skopeo.

use std::io::Write;
use std::path::Path;

use airlock_model::Digest;
use bytes::Bytes;
use serde_json::json;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    Digest::of(bytes).to_string()
}

/// Deterministic pseudo-random bytes (xorshift), so fixtures are reproducible without a seed file.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A gzip-compressed tar holding one file.
pub fn layer(file_name: &str, contents: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, file_name, contents).expect("tar entry");
    let tar = tar.into_inner().expect("tar finishes");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    gz.finish().expect("gzip finishes")
}

/// An image: config, layers and the manifest bytes that reference them.
#[derive(Debug, Clone)]
pub struct Image {
    pub config: Bytes,
    pub layers: Vec<Bytes>,
    pub manifest: Bytes,
}

impl Image {
    /// A linux/amd64 image whose layers each hold one file with the given contents.
    pub fn new(files: &[(&str, &[u8])]) -> Image {
        let layers: Vec<Bytes> = files.iter().map(|(n, c)| Bytes::from(layer(n, c))).collect();
        Image::from_layers(layers, None)
    }

    /// An image with given layer bytes, optionally referring to a subject manifest.
    pub fn from_layers(layers: Vec<Bytes>, subject: Option<(&str, usize)>) -> Image {
        let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
        let config = Bytes::from(
            serde_json::to_vec(&json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }))
            .expect("json"),
        );
        let layer_descriptors: Vec<_> = layers
            .iter()
            .map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(l), "size": l.len()}))
            .collect();
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": layer_descriptors,
        });
        if let Some((d, size)) = subject {
            manifest["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size});
        }
        let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("json"));
        Image { config, layers, manifest }
    }

    /// An artifact (OCI 1.1): empty config, one blob, an `artifactType`, optionally a subject.
    pub fn artifact(
        artifact_type: &str,
        blob: &[u8],
        subject: Option<(&str, usize)>,
        annotations: serde_json::Value,
    ) -> Image {
        let config = Bytes::from_static(b"{}");
        let layers = vec![Bytes::copy_from_slice(blob)];
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(&config), "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": digest(blob), "size": blob.len()}],
            "annotations": annotations,
        });
        if let Some((d, size)) = subject {
            manifest["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size});
        }
        let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("json"));
        Image { config, layers, manifest }
    }

    pub fn media_type(&self) -> &'static str {
        OCI_MANIFEST
    }

    pub fn digest(&self) -> String {
        digest(&self.manifest)
    }

    /// Config first, then layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }

    /// Writes an OCI image layout with this image tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).expect("layout dir");
        for blob in self.blobs().chain(std::iter::once(&self.manifest)) {
            let name = digest(blob);
            std::fs::write(blobs.join(name.trim_start_matches("sha256:")), blob).expect("layout blob");
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": self.digest(),
                "size": self.manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).expect("json")).expect("index.json");
    }
}

/// An OCI index over the given manifests.
pub fn index(manifests: &[&Image]) -> Bytes {
    let entries: Vec<_> = manifests
        .iter()
        .map(|m| json!({"mediaType": OCI_MANIFEST, "digest": m.digest(), "size": m.manifest.len(), "platform": {"architecture": "amd64", "os": "linux"}}))
        .collect();
    Bytes::from(
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})).expect("json"),
    )
}
