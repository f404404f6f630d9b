package airlock

deny := set()
