# Tests of the source repository rule of the default library: exact matches only.
package airlock_test

import data.airlock

from_repository(repository) := make_input("prod", [
	object.union(provenance_attestation, {"evidence": object.union(empty_evidence, {"provenance": [object.union(provenance_entry, {"source_repository": repository})]})}),
	sbom_attestation,
	scan_attestation,
], merged_evidence)

test_exact_repository_passes if {
	count(prod_rules(from_repository("github.com/acme/payments-api"))) == 0
}

test_near_misses_are_denied if {
	every repository in [
		"github.com/acme/payments-api-evil",
		"github.com/acme/payments-api/../evil",
		"GitHub.com/Acme/Payments-Api",
		"github.com/acme/payments",
		"github.com/acme/payments-api/",
		"gitlab.com/acme/payments-api",
		"",
	] {
		prod_rules(from_repository(repository)) == {"source-repository-allowed"}
	}
}

test_missing_repository_is_denied if {
	prod_rules(from_repository(null)) == {"source-repository-allowed"}
}
