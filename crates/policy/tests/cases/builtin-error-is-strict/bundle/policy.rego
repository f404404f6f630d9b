package airlock

# Not strict, the failed parse would be undefined and this `deny` silently skipped.
deny contains "scan too old" if time.parse_rfc3339_ns("yesterday") < 0
