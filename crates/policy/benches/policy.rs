//! `cargo bench -p airlock-policy`: one default-library decision for a promotion to `prod` over a
//! realistic input: four trusted attestations (SLSA provenance, a CycloneDX SBOM with SPDX
//! expressions, a cosign vulnerability scan and a Grype report splitting the findings between
//! them), the site's `data.json` naming the source repository. Every prod rule runs in full and
//! the decision allows. Two sizes: `typical` (50 components, 20 findings, the target
//! input) and `large` (400 components, 120 findings). Measured warm (the engine has compiled the
//! bundle, as a server's does after its first decision) and cold (a new engine compiles it
//! first). Figures are in `bench/README.md`.

use std::hint::black_box;

use airlock_model::Timestamp;
use airlock_policy::{Bundle, Engine, EvalLimits, default_bundle_files};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const TIME: &str = "2026-11-26T05:00:00Z";
const AT: Timestamp = Timestamp::from_millis(1_795_669_200_000);

fn evidence(provenance: Vec<Value>, components: Vec<Value>, vulnerabilities: Vec<Value>) -> Value {
    json!({"provenance": provenance, "components": components, "vulnerabilities": vulnerabilities,
           "vex": [], "tests": [], "unread": []})
}

fn input(component_count: usize, finding_count: usize) -> Value {
    let licenses =
        ["MIT", "Apache-2.0", "BSD-3-Clause", "ISC", "MIT OR Apache-2.0", "(MIT OR Apache-2.0) AND BSD-2-Clause"];
    let components: Vec<Value> = (0..component_count)
        .map(|i| {
            let expression = licenses[i % licenses.len()];
            json!({"name": format!("package-{i}"), "version": format!("1.{}.{}", i % 7, i % 13),
                   "purl": format!("pkg:npm/package-{i}@1.{}.{}", i % 7, i % 13),
                   "licenses": [expression], "license_expression": expression})
        })
        .collect();
    let severities = ["low", "medium", "medium", "low", "high"];
    let vulnerabilities: Vec<Value> = (0..finding_count)
        .map(|i| {
            let severity = severities[i % severities.len()];
            // Highs have no fix yet, so the decision allows and every rule runs to the end.
            let fix = severity != "high" && i % 3 == 0;
            json!({"id": format!("CVE-2026-{:04}", 1000 + i), "aliases": [format!("GHSA-{i:04}")],
                   "severity": severity, "cvss_score": 2.0 + (i % 60) as f64 / 10.0,
                   "package_purl": format!("pkg:npm/package-{}@1.{}.{}", i * 3 % component_count, i * 3 % component_count % 7, i * 3 % component_count % 13),
                   "package_name": format!("package-{}", i * 3 % component_count), "installed_version": "1.0.0",
                   "fixed_version": if fix { json!("1.0.1") } else { Value::Null }, "fix_available": fix,
                   "scanner": "grype", "scanner_version": "0.86.1", "scanned_at": "2026-11-25T05:00:00Z"})
        })
        .collect();
    let (scan_findings, report_findings) = vulnerabilities.split_at(finding_count / 2);
    let provenance = json!({
        "slsa_version": "v1", "builder_id": "https://github.com/actions/runner/github-hosted",
        "build_type": "https://actions.github.io/buildtypes/workflow/v1",
        "source_repository": "github.com/acme/payments-api",
        "source_repository_raw": "git+https://github.com/acme/payments-api@refs/heads/main",
        "source_ref": "refs/heads/main", "source_commit": "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
        "trigger": "alice", "invocation_id": "https://github.com/acme/payments-api/actions/runs/1/attempts/1"});
    let attestation = |predicate_type: &str, signer: &str, predicate: Value, evidence: Value| {
        json!({"predicate_type": predicate_type, "signers": [signer], "trusted": true,
               "referrer": format!("sha256:{}", "1".repeat(64)), "predicate": predicate, "evidence": evidence})
    };
    let attestations = vec![
        attestation(
            "https://slsa.dev/provenance/v1",
            "ci",
            json!({"runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}}}),
            evidence(vec![provenance.clone()], vec![], vec![]),
        ),
        attestation(
            "https://cyclonedx.org/bom",
            "ci",
            json!({"bomFormat": "CycloneDX", "specVersion": "1.6"}),
            evidence(vec![], components.clone(), vec![]),
        ),
        attestation(
            "https://cosign.sigstore.dev/attestation/vuln/v1",
            "scanner",
            json!({"metadata": {"scanStartedOn": "2026-11-25T04:59:00Z", "scanFinishedOn": "2026-11-25T05:00:00Z"}}),
            evidence(vec![], vec![], scan_findings.to_vec()),
        ),
        attestation(
            "https://anchore.com/grype/v1",
            "scanner",
            json!({}),
            evidence(vec![], vec![], report_findings.to_vec()),
        ),
    ];
    json!({
        "artifact": {"repository": "staging/payments/api", "digest": format!("sha256:{}", "4".repeat(64)),
                     "media_type": "application/vnd.oci.image.manifest.v1+json", "annotations": {}, "size": 48_213_004},
        "source_stage": "staging", "target_stage": "prod", "attestations": attestations,
        "evidence": evidence(vec![provenance], components, vulnerabilities),
        "vex_applied": [{"vulnerability": "CVE-2026-0999", "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path", "signers": ["security"]}],
        "requester": {"principal": "alice", "kind": "user"},
        "approvals": [{"principal": "bob", "roles": ["release-manager"], "at": "2026-11-26T04:00:00Z"}],
        "time": TIME, "waivers": [],
    })
}

fn bundle() -> Bundle {
    let mut files = default_bundle_files();
    for (path, bytes) in &mut files {
        if path == "data.json" {
            let mut data: Value = serde_json::from_slice(bytes).unwrap();
            data["airlock"]["allowed_source_repositories"] = json!(["github.com/acme/payments-api"]);
            *bytes = serde_json::to_vec(&data).unwrap();
        }
    }
    Bundle::from_files(files).unwrap()
}

fn decision(c: &mut Criterion) {
    let bundle = bundle();
    let limits = EvalLimits::default();
    let mut group = c.benchmark_group("policy_decision");
    group.sample_size(30);
    for (name, components, findings) in [("typical", 50, 20), ("large", 400, 120)] {
        let input = input(components, findings);
        let engine = Engine::new();
        let first = engine.evaluate(&bundle, &input, AT, &limits);
        assert!(first.allowed(), "{first:#?}");
        eprintln!("{name}: input of {} bytes", serde_json::to_vec(&input).unwrap().len());
        group.bench_function(format!("default_library_prod_{name}_warm"), |b| {
            b.iter(|| engine.evaluate(black_box(&bundle), black_box(&input), AT, &limits))
        });
        group.bench_function(format!("default_library_prod_{name}_cold"), |b| {
            b.iter(|| Engine::new().evaluate(black_box(&bundle), black_box(&input), AT, &limits))
        });
    }
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
