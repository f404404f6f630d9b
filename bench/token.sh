#!/usr/bin/env bash
# `GET /token` throughput with a service account's API key, on loopback, against the release
# binary: what every CI job and cluster node does before each push or pull. Uses wrk (installed
# through apt-get when missing). Prints requests per second and the latency distribution, then
# TINY (default 200) tiny images pushed with the token over one connection (bench/tiny_push.py):
# every request's own path (rate limit, body drain, authorization) without the token issue.
#   bench/token.sh                                  # this checkout's release build
#   BEFORE_BIN=/path/to/old/airlock bench/token.sh  # the same, then that binary, and the ratio
#   AIRLOCK_BIN=/path/to/airlock bench/token.sh     # skip the build, measure that binary
#   DURATION=30s CONNECTIONS=64 bench/token.sh
# With BEFORE_BIN, the two binaries run one after the other in the same run, alternating RUNS
# times (default 2), so the load on the machine falls on both alike.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
RUNS=${RUNS:-2}
TINY=${TINY:-200}

missing=()
for tool in wrk curl python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -n "${AIRLOCK_BIN:-}" ]; then
  airlock=$AIRLOCK_BIN
else
  echo "building airlock (release)" >&2
  cargo build --release --quiet --bin airlock
  airlock=$root/target/release/airlock
fi
[ -x "$airlock" ] || { echo "error: $airlock is not an executable; build it or fix AIRLOCK_BIN" >&2; exit 1; }
if [ -n "${BEFORE_BIN:-}" ] && [ ! -x "$BEFORE_BIN" ]; then
  echo "error: BEFORE_BIN=$BEFORE_BIN is not an executable" >&2
  exit 1
fi

work=$(mktemp -d /var/tmp/airlock-token-bench.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Measures `$1` on a fresh data directory; prints the requests per second on the last line.
measure() {
  local bin=$1 name=$2 password=bench-admin-password port=5103
  rm -rf "$work/data"
  AIRLOCK_BOOTSTRAP_PASSWORD=$password "$bin" serve --listen 127.0.0.1:$port --data "$work/data" \
    >"$work/out" 2>"$work/log" &
  pid=$!
  for _ in $(seq 100); do curl -fsS http://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.1; done
  local api key basic url
  api=$(curl -fsS -X POST -u "admin:$password" http://127.0.0.1:$port/api/v1/auth/token |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  key=$(curl -fsS -H "Authorization: Bearer $api" -H 'Content-Type: application/json' \
    -d '{"name":"bench","kind":"service_account","roles":["ci"]}' http://127.0.0.1:$port/api/v1/principals |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
  basic=$(printf 'bench:%s' "$key" | base64 -w0)
  url="http://127.0.0.1:$port/token?service=airlock&scope=repository:dev/payments/api:pull,push"
  curl -fsS -H "Authorization: Basic $basic" "$url" >/dev/null
  echo "== $name: wrk $THREADS threads, $CONNECTIONS connections, $DURATION" >&2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Basic $basic" "$url" >"$work/wrk.txt"
  grep -E "Latency|50%|99%|Requests/sec|Non-2xx" "$work/wrk.txt" >&2 || true
  local token secs
  token=$(curl -fsS -H "Authorization: Basic $basic" \
    "http://127.0.0.1:$port/token?service=airlock&scope=repository:dev/tiny:pull,push" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  secs=$(python3 bench/tiny_push.py 127.0.0.1 "$port" dev/tiny "$TINY" "$token")
  echo "   $TINY tiny images in $secs s" >&2
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  pid=""
  printf '%s %s\n' "$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")" "$(python3 -c "print(f'{$TINY / $secs:.1f}')")"
}

best() { printf '%s\n' "$@" | sort -g | tail -1; }

after=()
before=()
after_tiny=()
before_tiny=()
for _ in $(seq "$RUNS"); do
  read -r rps ips < <(measure "$airlock" "after ($airlock)" | tail -1)
  after+=("$rps"); after_tiny+=("$ips")
  if [ -n "${BEFORE_BIN:-}" ]; then
    read -r rps ips < <(measure "$BEFORE_BIN" "before ($BEFORE_BIN)" | tail -1)
    before+=("$rps"); before_tiny+=("$ips")
  fi
done
a=$(best "${after[@]}")
at=$(best "${after_tiny[@]}")
printf '\n/token with an API key: %s requests/s, best of %s (target >= 3000)\n' "$a" "$RUNS"
printf '%s tiny images with a token: %s images/s, best of %s\n' "$TINY" "$at" "$RUNS"
if [ -n "${BEFORE_BIN:-}" ]; then
  b=$(best "${before[@]}")
  bt=$(best "${before_tiny[@]}")
  python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'before: {b:.0f} requests/s; after/before: {a / b:.2f}x')" "$a" "$b"
  python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'before: {b:.1f} images/s; after/before: {a / b:.2f}x')" "$at" "$bt"
fi
