package airlock.rules

deny contains "never read" if true
