# Tests of the default library's attestation rules, and the fixtures every test file shares: an
# input that passes every rule for `staging` and, with `prod_data`, for `prod`.
package airlock_test

import data.airlock

empty_evidence := {"provenance": [], "components": [], "vulnerabilities": [], "vex": [], "tests": [], "unread": []}

provenance_entry := {
	"slsa_version": "v1",
	"builder_id": "https://github.com/actions/runner/github-hosted",
	"build_type": "https://actions.github.io/buildtypes/workflow/v1",
	"source_repository": "github.com/acme/payments-api",
	"source_repository_raw": "git+https://github.com/acme/payments-api@refs/heads/main",
	"source_ref": "refs/heads/main",
	"source_commit": "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
	"trigger": "alice",
	"invocation_id": "https://github.com/acme/payments-api/actions/runs/1/attempts/1",
}

component := {
	"name": "left-pad",
	"version": "1.3.0",
	"purl": "pkg:npm/left-pad@1.3.0",
	"licenses": ["MIT"],
	"license_expression": "MIT",
	"license_choices": [["MIT"]],
	"license_error": null,
}

provenance_attestation := {
	"predicate_type": "https://slsa.dev/provenance/v1",
	"signers": ["ci"],
	"trusted": true,
	"referrer": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
	"predicate": {},
	"evidence": object.union(empty_evidence, {"provenance": [provenance_entry]}),
}

sbom_attestation := {
	"predicate_type": "https://cyclonedx.org/bom",
	"signers": ["ci"],
	"trusted": true,
	"referrer": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
	"predicate": {},
	"evidence": object.union(empty_evidence, {"components": [component]}),
}

scan_attestation := {
	"predicate_type": "https://cosign.sigstore.dev/attestation/vuln/v1",
	"signers": ["scanner"],
	"trusted": true,
	"referrer": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
	"predicate": {"metadata": {"scanStartedOn": "2026-11-25T04:59:00Z", "scanFinishedOn": "2026-11-25T05:00:00Z"}},
	"evidence": empty_evidence,
}

# The input, for `stage`, with these attestations and merged evidence.
make_input(stage, attestations, evidence) := {
	"artifact": {
		"repository": "dev/payments/api",
		"digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444",
		"media_type": "application/vnd.oci.image.manifest.v1+json",
		"annotations": {},
		"size": 1234,
	},
	"source_stage": "dev",
	"target_stage": stage,
	"attestations": attestations,
	"evidence": evidence,
	"vex_applied": [],
	"requester": {"principal": "alice", "kind": "user"},
	"approvals": [],
	"time": "2026-11-26T05:00:00Z",
	"waivers": [],
}

attestations := [provenance_attestation, sbom_attestation, scan_attestation]

merged_evidence := object.union(empty_evidence, {"provenance": [provenance_entry], "components": [component]})

staging_input := make_input("staging", attestations, merged_evidence)

prod_input := make_input("prod", attestations, merged_evidence)

prod_repositories := ["github.com/acme/payments-api"]

# The rules that fire for `inp` (staging data) and for `inp` with the prod allowlist.
rules(inp) := {f.rule | some f in airlock.deny with input as inp}

prod_rules(inp) := {f.rule | some f in airlock.deny with input as inp with data.airlock.allowed_source_repositories as prod_repositories}

test_staging_passes if {
	count(rules(staging_input)) == 0
}

test_prod_passes_with_an_allowed_repository if {
	count(prod_rules(prod_input)) == 0
}

test_prod_denies_with_the_shipped_empty_repository_list if {
	rules(prod_input) == {"source-repository-allowed"}
}

test_unknown_stage_is_denied if {
	rules(make_input("qa", attestations, merged_evidence)) == {"stage-unknown"}
}

test_missing_provenance if {
	r := rules(make_input("staging", [sbom_attestation, scan_attestation], merged_evidence))
	r == {"provenance-required", "builder-allowed"}
}

test_untrusted_provenance if {
	untrusted := object.union(provenance_attestation, {"trusted": false})
	r := rules(make_input("staging", [untrusted, sbom_attestation, scan_attestation], merged_evidence))
	r == {"provenance-required", "builder-allowed"}
	some f in airlock.deny with input as make_input("staging", [untrusted, sbom_attestation, scan_attestation], merged_evidence)
	f.rule == "provenance-required"
	contains(f.msg, "untrusted")
}

test_provenance_by_a_signer_not_allowed_for_it if {
	by_scanner := object.union(provenance_attestation, {"signers": ["scanner"]})
	r := rules(make_input("staging", [by_scanner, sbom_attestation, scan_attestation], merged_evidence))
	r == {"provenance-required", "builder-allowed"}
}

test_provenance_v02_counts if {
	v02 := object.union(provenance_attestation, {"predicate_type": "https://slsa.dev/provenance/v0.2"})
	count(rules(make_input("staging", [v02, sbom_attestation, scan_attestation], merged_evidence))) == 0
}

test_builder_not_allowed if {
	evil := object.union(provenance_entry, {"builder_id": "https://evil.example/runner"})
	att := object.union(provenance_attestation, {"evidence": object.union(empty_evidence, {"provenance": [evil]})})
	rules(make_input("staging", [att, sbom_attestation, scan_attestation], merged_evidence)) == {"builder-allowed"}
}

test_builder_missing if {
	anonymous := object.remove(provenance_entry, ["builder_id"])
	att := object.union(provenance_attestation, {"evidence": object.union(empty_evidence, {"provenance": [anonymous]})})
	rules(make_input("staging", [att, sbom_attestation, scan_attestation], merged_evidence)) == {"builder-allowed"}
}

test_sbom_missing if {
	rules(make_input("staging", [provenance_attestation, scan_attestation], merged_evidence)) == {"sbom-required"}
}

test_spdx_sbom_counts if {
	spdx := object.union(sbom_attestation, {"predicate_type": "https://spdx.dev/Document/v2.3"})
	count(rules(make_input("staging", [provenance_attestation, spdx, scan_attestation], merged_evidence))) == 0
}

test_lookalike_sbom_type_does_not_count if {
	fake := object.union(sbom_attestation, {"predicate_type": "https://cyclonedx.org/bomb"})
	rules(make_input("staging", [provenance_attestation, fake, scan_attestation], merged_evidence)) == {"sbom-required"}
}

test_scan_missing if {
	rules(make_input("staging", [provenance_attestation, sbom_attestation], merged_evidence)) == {"scan-fresh"}
}

test_scan_stale if {
	stale := object.union(scan_attestation, {"predicate": {"metadata": {"scanFinishedOn": "2026-11-18T04:59:59Z"}}})
	rules(make_input("staging", [provenance_attestation, sbom_attestation, stale], merged_evidence)) == {"scan-fresh"}
}

test_scan_exactly_at_the_limit_is_fresh if {
	edge := object.union(scan_attestation, {"predicate": {"metadata": {"scanFinishedOn": "2026-11-19T05:00:00Z"}}})
	count(rules(make_input("staging", [provenance_attestation, sbom_attestation, edge], merged_evidence))) == 0
}

test_scan_from_the_future if {
	future := object.union(scan_attestation, {"predicate": {"metadata": {"scanFinishedOn": "2026-11-27T05:00:00Z"}}})
	rules(make_input("staging", [provenance_attestation, sbom_attestation, future], merged_evidence)) == {"scan-fresh"}
}

test_scan_time_from_findings if {
	finding := {"id": "CVE-2026-0001", "severity": "low", "fix_available": false, "scanned_at": "2026-11-26T04:00:00Z"}
	grype := {
		"predicate_type": "https://anchore.com/grype/v1",
		"signers": ["scanner"],
		"trusted": true,
		"predicate": {},
		"evidence": object.union(empty_evidence, {"vulnerabilities": [finding]}),
	}
	count(rules(make_input("staging", [provenance_attestation, sbom_attestation, grype], merged_evidence))) == 0
}

test_distinct_signers_in_prod if {
	scan_by_ci := object.union(scan_attestation, {"signers": ["ci"]})
	inp := make_input("prod", [provenance_attestation, sbom_attestation, scan_by_ci], merged_evidence)
	allowed := {"provenance": ["ci"], "sbom": ["ci"], "vulnerability-scan": ["ci", "scanner"]}
	r := {f.rule | some f in airlock.deny with input as inp with data.airlock.allowed_source_repositories as prod_repositories with data.airlock.allowed_signers as allowed}
	r == {"distinct-signers"}
}

# Attestation `a` signed by key `keyid` under its signer names.
keyed(a, keyid) := object.union(a, {"keys": [{"keyid": keyid, "signers": a.signers}]})

test_one_key_under_two_signer_names_vouches_once if {
	inp := make_input("prod", [keyed(provenance_attestation, "k1"), sbom_attestation, keyed(scan_attestation, "k1")], merged_evidence)
	r := {f.rule | some f in airlock.deny with input as inp with data.airlock.allowed_source_repositories as prod_repositories}
	r == {"distinct-signers"}
}

test_two_keys_under_two_signer_names_vouch_twice if {
	inp := make_input("prod", [keyed(provenance_attestation, "k1"), sbom_attestation, keyed(scan_attestation, "k2")], merged_evidence)
	r := {f.rule | some f in airlock.deny with input as inp with data.airlock.allowed_source_repositories as prod_repositories}
	not "distinct-signers" in r
}

test_two_signers_on_one_scan_keep_duties_apart if {
	scan_by_both := object.union(scan_attestation, {"signers": ["ci", "scanner"]})
	inp := make_input("prod", [provenance_attestation, sbom_attestation, scan_by_both], merged_evidence)
	allowed := {"provenance": ["ci"], "sbom": ["ci"], "vulnerability-scan": ["ci", "scanner"]}
	r := {f.rule | some f in airlock.deny with input as inp with data.airlock.allowed_source_repositories as prod_repositories with data.airlock.allowed_signers as allowed}
	count(r) == 0
}

test_every_finding_is_documented if {
	broken := make_input("prod", [], object.union(empty_evidence, {"components": [object.union(component, {"license_choices": [["GPL-3.0-only"]]})]}))
	findings := [f | some f in airlock.deny with input as broken]
	count(findings) > 3
	every f in findings {
		f.doc == sprintf("docs/policies/%s.md", [f.rule])
		f.msg != ""
		f.remediation != ""
		f.severity in {"critical", "high", "medium", "low"}
	}
}

test_unread_evidence_warns if {
	inp := make_input("staging", attestations, object.union(merged_evidence, {"unread": [{"path": "/components/3/licenses", "reason": "not a string"}]}))
	{f.rule | some f in airlock.warn with input as inp} == {"evidence-unread"}
	count(rules(inp)) == 0
}

test_scan_metadata_wins_over_findings if {
	finding := {"id": "CVE-2026-0001", "severity": "low", "fix_available": false, "scanned_at": "2026-11-26T04:00:00Z"}
	stale := object.union(scan_attestation, {
		"predicate": {"metadata": {"scanFinishedOn": "2026-11-01T00:00:00Z"}},
		"evidence": object.union(empty_evidence, {"vulnerabilities": [finding]}),
	})
	rules(make_input("staging", [provenance_attestation, sbom_attestation, stale], merged_evidence)) == {"scan-fresh"}
}

test_scan_is_as_old_as_its_oldest_finding if {
	fresh := {"id": "CVE-2026-0001", "severity": "low", "fix_available": false, "scanned_at": "2026-11-26T04:00:00Z"}
	old := object.union(fresh, {"id": "CVE-2026-0002", "scanned_at": "2026-10-01T00:00:00Z"})
	grype := {
		"predicate_type": "https://anchore.com/grype/v1",
		"signers": ["scanner"],
		"trusted": true,
		"predicate": {},
		"evidence": object.union(empty_evidence, {"vulnerabilities": [fresh, old]}),
	}
	rules(make_input("staging", [provenance_attestation, sbom_attestation, grype], merged_evidence)) == {"scan-fresh"}
}
