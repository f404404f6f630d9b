package airlock

deny contains "coin flip" if rand.intn("x", 2) == 0
