package airlock

import rego.v1

deny contains "no" if input.no
