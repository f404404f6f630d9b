package airlock

deny contains sprintf("now is %d", [time.now_ns()]) if true
