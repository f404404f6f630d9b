# Tests of the license rule of the default library, with `license_choices` as the engine derives
# them from each SPDX expression.
package airlock_test

import data.airlock

licensed(expression, choices) := object.union(component, {
	"license_expression": expression,
	"license_choices": choices,
})

with_components(components) := make_input("prod", attestations, object.union(merged_evidence, {"components": components}))

only_mit := ["MIT"]

license_rules(components) := {f.rule |
	some f in airlock.deny with input as with_components(components)
		with data.airlock.allowed_source_repositories as prod_repositories
		with data.airlock.allowed_licenses as only_mit
}

test_or_passes_when_one_side_is_allowed if {
	count(license_rules([licensed("MIT OR GPL-3.0-only", [["GPL-3.0-only"], ["MIT"]])])) == 0
}

test_and_fails_when_one_side_is_not if {
	license_rules([licensed("MIT AND GPL-3.0-only", [["GPL-3.0-only", "MIT"]])]) == {"license-allowed"}
}

test_ids_compare_case_insensitively if {
	count(license_rules([licensed("mit", [["mit"]])])) == 0
}

test_unreadable_expression_denies if {
	broken := object.union(licensed("MIT OR", []), {"license_error": "license expression ends early"})
	license_rules([broken]) == {"license-allowed"}
}

test_no_license_denies if {
	license_rules([licensed(null, [])]) == {"license-allowed"}
}

test_no_license_may_be_allowed if {
	r := {f.rule |
		some f in airlock.deny with input as with_components([licensed(null, [])])
			with data.airlock.allowed_source_repositories as prod_repositories
			with data.airlock.allow_unlicensed_components as true
	}
	count(r) == 0
}

test_license_finding_names_the_component if {
	some f in airlock.deny with input as with_components([licensed("GPL-3.0-only", [["GPL-3.0-only"]])])
		with data.airlock.allowed_source_repositories as prod_repositories
	f.rule == "license-allowed"
	f.component == "pkg:npm/left-pad@1.3.0"
}

test_licenses_are_not_checked_for_staging if {
	inp := make_input("staging", attestations, object.union(merged_evidence, {"components": [licensed("GPL-3.0-only", [["GPL-3.0-only"]])]}))
	count(rules(inp)) == 0
}

# A component without the fields the engine derives, or with only one, reads as if it had them
# as `null` and `[]`.
test_components_without_derived_fields_read_as_defaults if {
	airlock.license_readings == {[null, []], [null, [["ISC"]]], ["bad", []], [null, [["MIT"]]]} with input as with_components([
		{"name": "neither", "purl": "pkg:npm/neither@1.0.0"},
		{"name": "choices-only", "purl": "pkg:npm/choices-only@1.0.0", "license_choices": [["ISC"]]},
		{"name": "error-only", "purl": "pkg:npm/error-only@1.0.0", "license_error": "bad"},
		licensed("MIT", [["MIT"]]),
	])
}
