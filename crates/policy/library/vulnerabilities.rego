# Rules about the vulnerabilities the trusted scans report. Vulnerabilities a trusted OpenVEX
# statement marks `not_affected` or `fixed` were removed by the engine before evaluation and are
# listed in `input.vex_applied`; they are not counted here because they are not present.
package airlock

# The severity a rule judges by: the scanner's, or, when it gave none, the CVSS v3 band of the
# score it gave.
severity(v) := "critical" if {
	v.severity == "unknown"
	is_number(v.cvss_score)
	v.cvss_score >= 9
} else := "high" if {
	v.severity == "unknown"
	is_number(v.cvss_score)
	v.cvss_score >= 7
} else := v.severity

# How a finding names the package: its purl, else its name.
package_label(v) := sprintf("`%v`", [v.package_purl]) if {
	is_string(v.package_purl)
} else := sprintf("`%v`", [v.package_name]) if {
	is_string(v.package_name)
} else := "the artifact"

# A finding about vulnerability `v`, carrying its id and package for waivers.
vulnerability_finding(rule, sev, v, msg, remediation) := object.union(finding(rule, sev, msg, remediation), {
	"vulnerability": v.id,
	"component": v.package_purl,
}) if {
	is_string(v.package_purl)
} else := object.union(finding(rule, sev, msg, remediation), {"vulnerability": v.id})

fix_remediation(v) := sprintf("upgrade %s to `%v` (or later), rebuild, scan and promote the new digest", [package_label(v), v.fixed_version]) if {
	v.fix_available == true
	is_string(v.fixed_version)
} else := "upgrade the package to a fixed version, rebuild, scan and promote the new digest" if {
	v.fix_available == true
} else := "no fix is published: remove or replace the package; if the vulnerable code cannot be reached, publish a signed OpenVEX `not_affected` statement; a waiver is the last resort"

deny contains f if {
	"no-critical-vulnerabilities" in stage_rules
	some v in input.evidence.vulnerabilities
	# `severity` keeps every severity but `unknown` as it is, so only `critical` and `unknown`
	# findings can be judged critical; the others are skipped without calling it.
	v.severity != "low"
	v.severity != "medium"
	v.severity != "high"
	severity(v) == "critical"
	f := vulnerability_finding(
		"no-critical-vulnerabilities",
		"critical",
		v,
		sprintf("critical vulnerability `%v` in %s", [v.id, package_label(v)]),
		fix_remediation(v),
	)
}

deny contains f if {
	"no-fixable-high-vulnerabilities" in stage_rules
	some v in input.evidence.vulnerabilities
	# Likewise, only `high` and `unknown` findings can be judged high.
	v.severity != "low"
	v.severity != "medium"
	v.severity != "critical"
	severity(v) == "high"
	v.fix_available == true
	f := vulnerability_finding(
		"no-fixable-high-vulnerabilities",
		"high",
		v,
		sprintf("high vulnerability `%v` in %s has a fix", [v.id, package_label(v)]),
		fix_remediation(v),
	)
}
