package airlock

# regorus' parser takes twice as long for each level of `[` or `{`.
deny contains "x" if {
	x := [[[[[[[[[[[[1]]]]]]]]]]]]
	count(x) == 2
}
