package airlock

deny contains msg if {
	count(input.attestations) > 0
	msg := sprintf("%d", [1 / 0])
}
