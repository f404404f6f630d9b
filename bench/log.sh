#!/usr/bin/env bash
# The transparency log's figures: criterion benches of the tree (crates/tlog) and of appends and
# proofs on SQLite (crates/store), printed beside the targets.
#   bench/log.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "running cargo bench -p airlock-tlog and -p airlock-store --bench log (a few minutes)" >&2
cargo bench -q -p airlock-tlog 2>/dev/null | tee -a "$out" >/dev/null
cargo bench -q -p airlock-store --bench log 2>/dev/null | tee -a "$out" >/dev/null
echo
echo "target: appends >= 20,000/s grouped, >= 5,000/s each fsynced; inclusion proof at 1M <= 100 us; verification >= 1M leaves/s"
grep -E "^[a-z_/0-9]+ +time:|^[a-z_/0-9]+$|thrpt:|time:" "$out" | grep -v "change" | sed 's/^/  /'
