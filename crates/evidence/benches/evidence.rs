//! `cargo bench -p airlock-evidence`: normalizing a CycloneDX 1.6 SBOM of about 5 MB, the size a
//! large image's SBOM reaches: components with purls, hashes, SPDX expressions or license ids,
//! properties and external references, plus embedded vulnerabilities with ratings and analysis.
//! The target is at most 50 ms; the figure is in `bench/README.md`.

use std::hint::black_box;

use airlock_evidence::{Format, Limits, parse};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

/// A CycloneDX 1.6 SBOM of `count` components and `count / 20` vulnerabilities.
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

fn sbom(count: usize) -> Vec<u8> {
    let licenses = [
        json!([{"license": {"id": "MIT"}}]),
        json!([{"expression": "MIT OR Apache-2.0"}]),
        json!([{"license": {"id": "BSD-3-Clause", "url": "https://opensource.org/licenses/BSD-3-Clause"}}]),
        json!([{"expression": "(MIT OR Apache-2.0) AND Unicode-3.0"}]),
        json!([{"license": {"name": "Custom License", "text": {"content": "Permission is granted..."}}}]),
    ];
    let components: Vec<Value> = (0..count)
        .map(|i| {
            let version = format!("{}.{}.{}", i % 5, i % 17, i % 31);
            json!({
                "bom-ref": format!("pkg:cargo/crate-{i}@{version}"),
                "type": "library",
                "group": "",
                "name": format!("crate-{i}"),
                "version": version,
                "description": "A library that does one thing well, used by the service at build and run time.",
                "scope": "required",
                "hashes": [{"alg": "SHA-256", "content": format!("{:064x}", i)}],
                "licenses": licenses[i % licenses.len()],
                "purl": format!("pkg:cargo/crate-{i}@{version}"),
                "externalReferences": [
                    {"type": "vcs", "url": format!("https://github.com/example/crate-{i}")},
                    {"type": "website", "url": format!("https://crates.io/crates/crate-{i}")}
                ],
                "properties": [
                    {"name": "syft:package:foundBy", "value": "rust-cargo-lock-cataloger"},
                    {"name": "syft:package:language", "value": "rust"},
                    {"name": "syft:location:0:path", "value": "/app/Cargo.lock"}
                ]
            })
        })
        .collect();
    let vulnerabilities: Vec<Value> = (0..count / 20)
        .map(|i| {
            let target = i * 20;
            json!({
                "bom-ref": format!("vuln-{i}"),
                "id": format!("CVE-2026-{:05}", 10_000 + i),
                "source": {"name": "NVD", "url": format!("https://nvd.nist.gov/vuln/detail/CVE-2026-{:05}", 10_000 + i)},
                "references": [{"id": format!("GHSA-{i:04}-aaaa-bbbb"), "source": {"name": "GitHub"}}],
                "ratings": [{"source": {"name": "NVD"}, "score": 5.0 + (i % 50) as f64 / 10.0, "severity": SEVERITIES[i % 4], "method": "CVSSv31", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
                "cwes": [79],
                "description": "A crafted input makes the parser read past the end of a buffer.",
                "recommendation": "Upgrade to the fixed version.",
                "published": "2026-10-01T00:00:00Z",
                "affects": [{"ref": format!("pkg:cargo/crate-{target}@{}.{}.{}", target % 5, target % 17, target % 31),
                             "versions": [{"version": "1.0.0", "status": "affected"}]}],
                "analysis": if i % 7 == 0 { json!({"state": "not_affected", "justification": "code_not_reachable"}) } else { json!({"state": "in_triage"}) }
            })
        })
        .collect();
    let bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": {
            "timestamp": "2026-11-25T05:00:00Z",
            "tools": {"components": [{"type": "application", "name": "syft", "version": "1.18.0"}]},
            "component": {"bom-ref": "app", "type": "container", "name": "registry.example/payments/api", "version": "sha256:4444"}
        },
        "components": components,
        "vulnerabilities": vulnerabilities,
    });
    serde_json::to_vec_pretty(&bom).unwrap()
}

fn cyclonedx(c: &mut Criterion) {
    // About 5 MB.
    let bytes = sbom(4_100);
    let limits = Limits::default();
    let evidence = parse(Format::CycloneDx, &bytes, &limits).unwrap();
    eprintln!(
        "CycloneDX SBOM of {} bytes: {} components, {} vulnerabilities, {} vex statements, {} unread",
        bytes.len(),
        evidence.components.len(),
        evidence.vulnerabilities.len(),
        evidence.vex.len(),
        evidence.unread.len()
    );
    assert!(bytes.len() >= 5_000_000, "the SBOM is {} bytes", bytes.len());
    let mut group = c.benchmark_group("normalize");
    group.sample_size(20);
    group.throughput(criterion::Throughput::Bytes(bytes.len() as u64));
    group.bench_function("cyclonedx_5mb", |b| b.iter(|| parse(Format::CycloneDx, black_box(&bytes), &limits)));
    group.finish();
}

criterion_group!(benches, cyclonedx);
criterion_main!(benches);
