#!/usr/bin/env bash
# `GET /token` throughput with a service account's API key, on loopback, against the release
# binary: what every CI job and cluster node does before each push or pull. Uses wrk (installed
# through apt-get when missing). Prints requests per second and the latency distribution.
#   bench/token.sh                # 10 s, 2 threads, 32 connections
#   DURATION=30s CONNECTIONS=64 bench/token.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}

missing=()
for tool in wrk curl python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "building airlock (release)" >&2
cargo build --release --quiet --bin airlock

work=$(mktemp -d /var/tmp/airlock-token-bench.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

password=bench-admin-password
AIRLOCK_BOOTSTRAP_PASSWORD=$password "$root/target/release/airlock" serve --listen 127.0.0.1:5103 --data "$work/data" \
  >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do curl -fsS http://127.0.0.1:5103/healthz >/dev/null 2>&1 && break; sleep 0.1; done
api=$(curl -fsS -X POST -u "admin:$password" http://127.0.0.1:5103/api/v1/auth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
key=$(curl -fsS -H "Authorization: Bearer $api" -H 'Content-Type: application/json' \
  -d '{"name":"bench","kind":"service_account","roles":["ci"]}' http://127.0.0.1:5103/api/v1/principals |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
basic=$(printf 'bench:%s' "$key" | base64 -w0)
url="http://127.0.0.1:5103/token?service=airlock&scope=repository:dev/payments/api:pull,push"
curl -fsS -H "Authorization: Basic $basic" "$url" >/dev/null
echo "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION" >&2
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Basic $basic" "$url" | tee "$work/wrk.txt"
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $5}' "$work/wrk.txt")
printf '\n/token with an API key: %s requests/s (target >= 2000)%s\n' "$rps" "${non2xx:+, $non2xx non-2xx responses}"
