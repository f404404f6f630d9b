package airlock

deny contains msg if {
	some a in input.attestations
	print("checking", a.predicate_type)
	a.predicate_type == "https://slsa.dev/provenance/v1"
	msg := "provenance present"
}

warn contains "warned" if print("in warn")
