package airlock

# 30^8 iterations: each added `some` multiplies the work by 30. Only the time budget stops it.
n := numbers.range(1, 30)

deny contains "unreachable" if {
	some a in n
	some b in n
	some c in n
	some d in n
	some e in n
	some f in n
	some g in n
	some h in n
	a + b + c + d + e + f + g + h < 0
}
