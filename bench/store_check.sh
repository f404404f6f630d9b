#!/usr/bin/env bash
# The cost of checking the metadata database: the start-up `PRAGMA quick_check` (bounded by
# `store.start_check_secs`) and `airlock doctor`'s full `PRAGMA integrity_check`, on a database
# grown to SIZE_MIB (default 1024) of inline blobs, and the server's time to listen over it.
#   bench/store_check.sh
#   SIZE_MIB=256 bench/store_check.sh
# AIRLOCK_BIN picks the binary (default: a release build of this tree).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${SIZE_MIB:-1024}
if [ -z "${AIRLOCK_BIN:-}" ]; then
  cargo build -q --release --bin airlock
  AIRLOCK_BIN=$PWD/target/release/airlock
fi
command -v sqlite3 >/dev/null || { echo "error: sqlite3 is missing; apt-get install sqlite3" >&2; exit 1; }
work=$(mktemp -d)
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
data=$work/data
pid=

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Starts the server over $data (extra environment in "$@") and sets `took` to the milliseconds
# until it listens.
start_server() {
  local started
  started=$(now_ms)
  : >"$work/out"
  env AIRLOCK_BOOTSTRAP_PASSWORD=bench-password-123456 "$@" "$AIRLOCK_BIN" serve --listen 127.0.0.1:0 \
    --data "$data" >"$work/out" 2>"$work/err" &
  pid=$!
  until grep -q "listening" "$work/out" 2>/dev/null; do sleep 0.01; done
  took=$(( $(now_ms) - started ))
}
stop_server() { kill -TERM "$pid"; wait "$pid" || true; pid=; }

# A data directory the server made, then grown offline with 64 KiB inline blobs.
start_server
stop_server
rows=$((size_mib * 16))
echo "growing metadata.db by $size_mib MiB ($rows inline blobs of 64 KiB)" >&2
sqlite3 "$data/metadata.db" "
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
  INSERT INTO blobs (digest, size, inline_data, created_at)
  SELECT 'sha256:' || lower(hex(randomblob(32))), 65536, randomblob(65536), 0 FROM n;
  PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
db_mib=$(( $(stat -c %s "$data/metadata.db") / 1048576 ))

ms() { local s; s=$(date +%s%N); "$@" >/dev/null; echo $(( ($(date +%s%N) - s) / 1000000 )); }
quick=$(ms sqlite3 "$data/metadata.db" "PRAGMA quick_check")
# Cold: the database read from disk, not the page cache (needs root to drop the caches).
cold=unmeasured
if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
  cold="$(ms sqlite3 "$data/metadata.db" "PRAGMA quick_check") ms"
fi
full=$(ms "$AIRLOCK_BIN" doctor --data "$data")
start_server
listen=$took
logged=$(grep -o 'elapsed_ms=[0-9]*' "$work/err" | head -1 || true)
stop_server
printf '[store]\nstart_check_secs = 0\n' >"$work/skip.toml"
start_server AIRLOCK_CONFIG="$work/skip.toml"
listen_skip=$took
stop_server

echo
echo "database: $db_mib MiB"
echo "PRAGMA quick_check (sqlite3), cached:    $quick ms"
echo "PRAGMA quick_check (sqlite3), cold:      $cold"
echo "airlock doctor (full integrity_check):   $full ms"
echo "serve until listening, with the check:   $listen ms (server log: ${logged:-no elapsed_ms line; run with RUST_LOG=info})"
echo "serve until listening, check skipped:    $listen_skip ms"
