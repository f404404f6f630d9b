package airlock

deny contains msg if {
	msg := "unterminated
}
