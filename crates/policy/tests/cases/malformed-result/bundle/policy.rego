package airlock

deny contains 42 if true
