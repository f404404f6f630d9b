# The license rule. The engine reads each component's SPDX expression (Rego has no recursion to
# do it here) into `license_choices`: the ways to satisfy it, each a list of licenses that must
# all be allowed. `MIT OR GPL-3.0-only` is `[["GPL-3.0-only"], ["MIT"]]`: either will do. An
# expression it cannot read sets `license_error` instead.
package airlock

license_allowlist := {lower(l) | some l in data.airlock.allowed_licenses}

# A choice can be taken when every license in it is allowed (ids compare case-insensitively).
acceptable(choice) if {
	count(choice) > 0
	every license in choice {
		lower(license) in license_allowlist
	}
}

# The distinct readings of the components' licenses (`license_error` and `license_choices`):
# components mostly share a few licenses, so each distinct reading is judged once, and the
# components are looked at one by one only when some reading fails. A component lacking either
# field (an input written by hand; the engine derives both) reads as `null` and `[]`. Components
# that have both (all the engine's) are read directly: a third of the cost of `object.get`.
license_readings := {[c.license_error, c.license_choices] | some c in input.evidence.components} | {[
	object.get(c, "license_error", null),
	object.get(c, "license_choices", []),
] |
	some c in input.evidence.components
	not [c.license_error, c.license_choices]
}

# The readings that fail: unreadable, naming no license (unless allowed), or offering no
# acceptable choice.
failing_readings := {r |
	some r in license_readings
	not reading_passes(r)
}

reading_passes([error, choices]) if {
	error == null
	count(choices) == 0
	data.airlock.allow_unlicensed_components == true
}

reading_passes([error, choices]) if {
	error == null
	some choice in choices
	acceptable(choice)
}

# The components whose reading fails; none are looked at when every reading passes.
default failing_components := []

failing_components := [c |
	some c in input.evidence.components
	[object.get(c, "license_error", null), object.get(c, "license_choices", [])] in failing_readings
] if {
	count(failing_readings) > 0
}

component_label(c) := sprintf("`%v`", [c.purl]) if {
	is_string(c.purl)
} else := sprintf("`%v`", [c.name])

license_text(c) := c.license_expression if {
	is_string(c.license_expression)
	trim_space(c.license_expression) != ""
} else := concat(" AND ", c.licenses)

# A license finding about component `c`, carrying its purl for waivers.
license_finding(c, msg, remediation) := object.union(finding("license-allowed", "high", msg, remediation), {"component": c.purl}) if {
	is_string(c.purl)
} else := finding("license-allowed", "high", msg, remediation)

deny contains f if {
	"license-allowed" in stage_rules
	some c in failing_components
	is_string(c.license_error)
	f := license_finding(
		c,
		sprintf("license `%v` of %s cannot be read: %v", [license_text(c), component_label(c), c.license_error]),
		"correct the license expression in the SBOM (SPDX 2.3 Annex D syntax), or have the component's producer correct it",
	)
}

deny contains f if {
	"license-allowed" in stage_rules
	some c in failing_components
	not is_string(c.license_error)
	count(c.license_choices) == 0
	not data.airlock.allow_unlicensed_components
	f := license_finding(
		c,
		sprintf("%s names no license", [component_label(c)]),
		"find the component's license and record it in the SBOM, or set `data.airlock.allow_unlicensed_components` if components without a license are acceptable",
	)
}

deny contains f if {
	"license-allowed" in stage_rules
	some c in failing_components
	not is_string(c.license_error)
	count(c.license_choices) > 0
	f := license_finding(
		c,
		sprintf("license `%v` of %s is not allowed: none of the choices it offers lies within `data.airlock.allowed_licenses`", [license_text(c), component_label(c)]),
		"replace the component, or, if legal agrees, add the license to `data.airlock.allowed_licenses` or grant a waiver for this component",
	)
}
