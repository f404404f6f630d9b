# Tests of the vulnerability rules of the default library.
package airlock_test

import data.airlock

vulnerability(id, severity, fix) := {
	"id": id,
	"aliases": [],
	"severity": severity,
	"cvss_score": null,
	"package_purl": "pkg:npm/lodash@4.17.20",
	"package_name": "lodash",
	"installed_version": "4.17.20",
	"fixed_version": "4.17.21",
	"fix_available": fix,
	"scanner": "grype",
	"scanned_at": "2026-11-25T05:00:00Z",
}

with_vulnerabilities(stage, vulns) := make_input(stage, attestations, object.union(merged_evidence, {"vulnerabilities": vulns}))

test_critical_vulnerability_denies_staging if {
	inp := with_vulnerabilities("staging", [vulnerability("CVE-2026-0001", "critical", false)])
	findings := [f | some f in airlock.deny with input as inp]
	count(findings) == 1
	findings[0].rule == "no-critical-vulnerabilities"
	findings[0].vulnerability == "CVE-2026-0001"
	findings[0].component == "pkg:npm/lodash@4.17.20"
}

test_score_only_critical_counts if {
	v := object.union(vulnerability("CVE-2026-0002", "unknown", false), {"cvss_score": 9.8})
	rules(with_vulnerabilities("staging", [v])) == {"no-critical-vulnerabilities"}
}

test_high_with_fix_passes_staging_but_denies_prod if {
	vulns := [vulnerability("CVE-2026-0003", "high", true)]
	count(rules(with_vulnerabilities("staging", vulns))) == 0
	prod_rules(with_vulnerabilities("prod", vulns)) == {"no-fixable-high-vulnerabilities"}
}

test_high_without_fix_passes_prod if {
	count(prod_rules(with_vulnerabilities("prod", [vulnerability("CVE-2026-0004", "high", false)]))) == 0
}

test_medium_passes_prod if {
	count(prod_rules(with_vulnerabilities("prod", [vulnerability("CVE-2026-0005", "medium", true)]))) == 0
}

test_one_finding_per_vulnerability if {
	vulns := [vulnerability("CVE-2026-0006", "critical", true), vulnerability("CVE-2026-0007", "critical", true)]
	count([f | some f in airlock.deny with input as with_vulnerabilities("staging", vulns)]) == 2
}
