#!/usr/bin/env bash
# Airlock against Debian's docker-registry (distribution 2.8), side by side on loopback, in one
# run. Prints each figure for both and the ratio (higher is better for Airlock, except RSS).
#   bench/registry.sh            # 256 MiB image, 200 tiny images
#   SIZE_MIB=64 TINY=50 bench/registry.sh
#   AIRLOCK_BIN=/path/to/airlock bench/registry.sh   # skip the build, use that release binary
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SIZE_MIB=${SIZE_MIB:-256}
TINY=${TINY:-200}
RUNS=${RUNS:-3}

missing=()
for tool in skopeo docker-registry curl bc python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  pkgs=("${missing[@]/docker-registry/docker-registry}")
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
if [ -n "${AIRLOCK_BIN:-}" ]; then
  airlock=$AIRLOCK_BIN # a release binary built elsewhere (another checkout, a pinned commit)
  [ -x "$airlock" ] || { echo "AIRLOCK_BIN=$airlock is not an executable" >&2; exit 1; }
else
  echo "building airlock (release)" >&2
  cargo build --release --quiet --bin airlock
  airlock=${CARGO_TARGET_DIR:-$root/target}/release/airlock
fi

work=$(mktemp -d /var/tmp/airlock-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "making a ${SIZE_MIB} MiB single-layer image" >&2
python3 bench/make_layout.py "$work/layout" "$SIZE_MIB"
layer_digest=$(cat "$work/layout/layer.digest")
cat "$work/layout/layer.bin" >/dev/null   # warm the page cache for both sides

BENCH_ADMIN_PASSWORD=bench-admin-password
start_airlock() {
  rm -rf "$work/airlock-data"
  AIRLOCK_BOOTSTRAP_PASSWORD=$BENCH_ADMIN_PASSWORD "$airlock" serve --listen 127.0.0.1:5101 --data "$work/airlock-data" >"$work/airlock.out" 2>"$work/airlock.log" &
  pids+=($!); airlock_pid=$!
  wait_up 5101
  # A service account that pushes to dev, as CI would; skopeo and curl authenticate as it.
  local api; api=$(curl -fsS -X POST -u "admin:$BENCH_ADMIN_PASSWORD" http://127.0.0.1:5101/api/v1/auth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  airlock_key=$(curl -fsS -H "Authorization: Bearer $api" -H 'Content-Type: application/json' \
    -d '{"name":"bench","kind":"service_account","roles":["developer"]}' http://127.0.0.1:5101/api/v1/principals |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
}
creds() { [ "$1" = 5101 ] && echo "bench:$airlock_key" || true; }
bearer() { # port repo: an Authorization header for Airlock, nothing for the peer
  [ "$1" = 5101 ] || return 0
  local t; t=$(curl -fsS -u "$(creds 5101)" "http://127.0.0.1:5101/token?service=airlock&scope=repository:$2:pull,push" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  echo "Authorization: Bearer $t"
}
start_peer() {
  rm -rf "$work/peer-data"
  cat >"$work/peer.yml" <<YML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/peer-data}
  delete: {enabled: true}
http: {addr: 127.0.0.1:5102}
YML
  docker-registry serve "$work/peer.yml" >"$work/peer.log" 2>&1 &
  pids+=($!); peer_pid=$!
  wait_up 5102
}
wait_up() { for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 || curl -fsS "http://127.0.0.1:$1/v2/" >/dev/null 2>&1 && return; sleep 0.1; done; echo "server on $1 did not start" >&2; exit 1; }
rss_kib() { awk -v k="$2" '$1==k":" {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }
best() { sort -g | head -1; }

skopeo_push() { # port repo; a fresh blob-info cache so skopeo cannot mount from an earlier run
  rm -f /var/lib/containers/cache/blob-info-cache-v1.* "${HOME:-/root}"/.local/share/containers/cache/blob-info-cache-v1.* 2>/dev/null || true
  local c; c=$(creds "$1")
  skopeo copy -q --dest-tls-verify=false --preserve-digests ${c:+--dest-creds "$c"} "oci:$work/layout:big" "docker://127.0.0.1:$1/$2:big"
}
skopeo_pull() {
  local c; c=$(creds "$1")
  rm -rf "$work/pulled"; skopeo copy -q --src-tls-verify=false ${c:+--src-creds "$c"} "docker://127.0.0.1:$1/$2:big" "dir:$work/pulled"
}
# The curl figures time the registry requests only: the caller fetches the token (a curl and a
# Python start, slower than a GET of the whole layer here) before the clock starts, as a client
# that reuses its token does; the peer needs none.
curl_put() { # port repo auth-header: POST for a session, then one monolithic PUT of the whole layer
  local auth=$3
  local loc; loc=$(curl -fsS -D - -o /dev/null ${auth:+-H "$auth"} -X POST "http://127.0.0.1:$1/v2/$2/blobs/uploads/" | awk 'tolower($1)=="location:" {print $2}' | tr -d '\r')
  case "$loc" in http*) ;; *) loc="http://127.0.0.1:$1$loc" ;; esac
  local sep='?'; case "$loc" in *\?*) sep='&' ;; esac
  curl -fsS -o /dev/null ${auth:+-H "$auth"} -H 'Expect:' -H 'Content-Type: application/octet-stream' -T "$work/layout/layer.bin" "$loc${sep}digest=$layer_digest"
}
curl_get() { # port repo auth-header
  local auth=$3
  curl -fsS -o /dev/null ${auth:+-H "$auth"} "http://127.0.0.1:$1/v2/$2/blobs/$layer_digest"
}
curl_range() { # port repo auth-header: the middle half of the layer, from an odd offset
  local auth=$3 size=$((SIZE_MIB * 1048576))
  curl -fsS -o /dev/null ${auth:+-H "$auth"} -H "Range: bytes=$((size / 4 + 1))-$((size / 4 + size / 2))" "http://127.0.0.1:$1/v2/$2/blobs/$layer_digest"
}
skopeo_alone() { # the client's own ceiling: layout to directory, no registry involved
  rm -rf "$work/alone"; skopeo copy -q --preserve-digests "oci:$work/layout:big" "dir:$work/alone"
}
timed() { local t0; t0=$(now); "$@"; echo "$(now) - $t0" | bc -l; }

declare -A result
measure() { # name port pid repo-prefix
  local name=$1 port=$2 pid=$3 repo=$4
  result[$name.idle]=$(rss_kib "$pid" VmRSS)
  local t
  t=$(for i in $(seq "$RUNS"); do timed skopeo_push "$port" "$repo/push$i"; done | best); result[$name.push]=$t
  t=$(for i in $(seq "$RUNS"); do timed skopeo_pull "$port" "$repo/push1"; done | best); result[$name.pull]=$t
  t=$(for i in $(seq "$RUNS"); do a=$(bearer "$port" "$repo/curl$i"); timed curl_put "$port" "$repo/curl$i" "$a"; done | best); result[$name.put]=$t
  t=$(for i in $(seq "$RUNS"); do a=$(bearer "$port" "$repo/curl1"); timed curl_get "$port" "$repo/curl1" "$a"; done | best); result[$name.get]=$t
  t=$(for i in $(seq "$RUNS"); do a=$(bearer "$port" "$repo/curl1"); timed curl_range "$port" "$repo/curl1" "$a"; done | best); result[$name.range]=$t
  local token=""; [ "$port" = 5101 ] && token=$(bearer 5101 "$repo/tiny" | sed 's/^Authorization: Bearer //')
  t=$(python3 bench/tiny_push.py 127.0.0.1 "$port" "$repo/tiny" "$TINY" $token); result[$name.tiny]=$t
  result[$name.peak]=$(rss_kib "$pid" VmHWM)
}

echo "measuring skopeo alone" >&2
alone=$(for i in $(seq "$RUNS"); do timed skopeo_alone; done | best)
echo "measuring airlock" >&2
start_airlock; measure airlock 5101 "$airlock_pid" dev/bench
echo "measuring docker-registry" >&2
start_peer; measure peer 5102 "$peer_pid" dev/bench

mb=$((SIZE_MIB * 1048576))
rate() { echo "$mb / $1 / 1000000" | bc -l; }
row() { printf '%-34s %14.1f %16.1f %8.2fx\n' "$1" "$2" "$3" "$4"; }
printf '%-34s %14s %16s %9s\n' "figure" "airlock" "docker-registry" "ratio"
printf 'skopeo alone, layout to directory, no registry: %.1f MB/s (the client ceiling for push and pull)\n' "$(rate "$alone")"
a=$(rate "${result[airlock.push]}"); p=$(rate "${result[peer.push]}"); row "skopeo push ${SIZE_MIB} MiB (MB/s)" "$a" "$p" "$(echo "$a / $p" | bc -l)"
a=$(rate "${result[airlock.pull]}"); p=$(rate "${result[peer.pull]}"); row "skopeo pull ${SIZE_MIB} MiB (MB/s)" "$a" "$p" "$(echo "$a / $p" | bc -l)"
a=$(rate "${result[airlock.put]}"); p=$(rate "${result[peer.put]}"); row "curl monolithic PUT (MB/s)" "$a" "$p" "$(echo "$a / $p" | bc -l)"
a=$(rate "${result[airlock.get]}"); p=$(rate "${result[peer.get]}"); row "curl GET ${SIZE_MIB} MiB (MB/s)" "$a" "$p" "$(echo "$a / $p" | bc -l)"
a=$(echo "$(rate "${result[airlock.range]}") / 2" | bc -l); p=$(echo "$(rate "${result[peer.range]}") / 2" | bc -l); row "curl range GET $((SIZE_MIB / 2)) MiB (MB/s)" "$a" "$p" "$(echo "$a / $p" | bc -l)"
a=$(echo "$TINY / ${result[airlock.tiny]}" | bc -l); p=$(echo "$TINY / ${result[peer.tiny]}" | bc -l); row "$TINY tiny images (images/s)" "$a" "$p" "$(echo "$a / $p" | bc -l)"
a=$(echo "${result[airlock.idle]} / 1024" | bc -l); p=$(echo "${result[peer.idle]} / 1024" | bc -l); row "idle RSS (MiB, lower is better)" "$a" "$p" "$(echo "$p / $a" | bc -l)"
a=$(echo "${result[airlock.peak]} / 1024" | bc -l); p=$(echo "${result[peer.peak]} / 1024" | bc -l); row "peak RSS (MiB, lower is better)" "$a" "$p" "$(echo "$p / $a" | bc -l)"
