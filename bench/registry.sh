#!/usr/bin/env bash
# Airlock against Debian's docker-registry (distribution 2.8), side by side on loopback, in one
# run. Prints the machine's own rates, each figure for both and the ratio (higher is better for
# Airlock, except RSS), then each target with whether it is met.
#   bench/registry.sh            # 256 MiB image, 200 tiny images
#   SIZE_MIB=64 TINY=50 bench/registry.sh
#   AIRLOCK_BIN=/path/to/airlock bench/registry.sh     # skip the build, measure that release binary
#   PREVIOUS_BIN=/path/to/older/airlock bench/registry.sh   # and an earlier one, in the same run
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
  airlock_bin=$AIRLOCK_BIN
else
  echo "building airlock (release)" >&2
  cargo build --release --quiet --bin airlock
  airlock_bin=$root/target/release/airlock
fi
for b in "$airlock_bin" ${PREVIOUS_BIN:+"$PREVIOUS_BIN"}; do
  [ -x "$b" ] || { echo "bench/registry.sh: $b is not an executable; build it or fix AIRLOCK_BIN / PREVIOUS_BIN" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/airlock-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "making a ${SIZE_MIB} MiB single-layer image" >&2
python3 bench/make_layout.py "$work/layout" "$SIZE_MIB"
layer_digest=$(cat "$work/layout/layer.digest")
cat "$work/layout/layer.bin" >/dev/null   # warm the page cache for both sides

BENCH_ADMIN_PASSWORD=bench-admin-password
# What is measured is the server's capacity, not the quota that bounds one principal (the tiny
# rows alone send 1,000 requests per run).
cat >"$work/airlock.toml" <<'TOML'
[rate_limits]
principal_per_minute = 4000000000
principal_burst = 4000000000
TOML
start_airlock() { # binary port
  local bin=$1 port=$2
  rm -rf "$work/airlock-data-$port"
  AIRLOCK_BOOTSTRAP_PASSWORD=$BENCH_ADMIN_PASSWORD "$bin" serve --config "$work/airlock.toml" --listen "127.0.0.1:$port" --data "$work/airlock-data-$port" >"$work/airlock-$port.out" 2>"$work/airlock-$port.log" &
  pids+=($!); airlock_pid=$!
  wait_up "$port"
  # A service account that pushes to dev, as CI would; skopeo and curl authenticate as it.
  local api; api=$(curl -fsS -X POST -u "admin:$BENCH_ADMIN_PASSWORD" "http://127.0.0.1:$port/api/v1/auth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  airlock_key=$(curl -fsS -H "Authorization: Bearer $api" -H 'Content-Type: application/json' \
    -d '{"name":"bench","kind":"service_account","roles":["developer"]}' "http://127.0.0.1:$port/api/v1/principals" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
}
is_airlock() { [ "$1" != 5102 ]; }
creds() { is_airlock "$1" && echo "bench:$airlock_key" || true; }
bearer() { # port repo: an Authorization header for Airlock, nothing for the peer
  is_airlock "$1" || return 0
  local t; t=$(curl -fsS -u "$(creds "$1")" "http://127.0.0.1:$1/token?service=airlock&scope=repository:$2:pull,push" |
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
  # Best of RUNS, as every other row: one run of 200 images moves by ±15% on a busy machine.
  t=$(for i in $(seq "$RUNS"); do
    local token=""; is_airlock "$port" && token=$(bearer "$port" "$repo/tiny$i" | sed 's/^Authorization: Bearer //')
    python3 bench/tiny_push.py 127.0.0.1 "$port" "$repo/tiny$i" "$TINY" $token
  done | best); result[$name.tiny]=$t
  result[$name.peak]=$(rss_kib "$pid" VmHWM)
}

python3 bench/machine.py "$work" --shell >"$work/machine.txt"
grep -v '^machine_' "$work/machine.txt" >&2
eval "$(grep '^machine_' "$work/machine.txt")"

echo "measuring skopeo alone" >&2
alone=$(for i in $(seq "$RUNS"); do timed skopeo_alone; done | best)
echo "measuring airlock ($airlock_bin)" >&2
start_airlock "$airlock_bin" 5101; measure airlock 5101 "$airlock_pid" dev/bench
kill "$airlock_pid"; wait "$airlock_pid" 2>/dev/null || true
if [ -n "${PREVIOUS_BIN:-}" ]; then
  echo "measuring the previous airlock ($PREVIOUS_BIN)" >&2
  start_airlock "$PREVIOUS_BIN" 5103; measure previous 5103 "$airlock_pid" dev/bench
  kill "$airlock_pid"; wait "$airlock_pid" 2>/dev/null || true
fi
echo "measuring docker-registry" >&2
start_peer; measure peer 5102 "$peer_pid" dev/bench

mb=$((SIZE_MIB * 1048576))
rate() { echo "$mb / $1 / 1000000" | bc -l; }
per_s() { echo "$TINY / $1" | bc -l; }
mib() { echo "$1 / 1024" | bc -l; }
# figure name, then the value for airlock, previous (if measured) and the peer; the ratio is
# airlock over the peer, or the peer over airlock when lower is better.
declare -A value
figure() { # key label transform lower-is-better
  local key=$1 label=$2 f=$3 lower=$4 a p q ratio
  a=$($f "${result[airlock.$key]}"); p=$($f "${result[peer.$key]}")
  if [ "$lower" = 1 ]; then ratio=$(echo "$p / $a" | bc -l); else ratio=$(echo "$a / $p" | bc -l); fi
  value[$key]=$a; value[$key.ratio]=$ratio
  if [ -n "${PREVIOUS_BIN:-}" ]; then
    q=$($f "${result[previous.$key]}")
    printf '%-34s %10.1f %10.1f %16.1f %8.2fx\n' "$label" "$a" "$q" "$p" "$ratio"
  else
    printf '%-34s %10.1f %16.1f %8.2fx\n' "$label" "$a" "$p" "$ratio"
  fi
}
grep -v '^machine_' "$work/machine.txt"
if [ -n "${PREVIOUS_BIN:-}" ]; then
  printf '%-34s %10s %10s %16s %9s\n' "figure" "airlock" "previous" "docker-registry" "ratio"
else
  printf '%-34s %10s %16s %9s\n' "figure" "airlock" "docker-registry" "ratio"
fi
printf 'skopeo alone, layout to directory, no registry: %.1f MB/s (the client ceiling for push and pull)\n' "$(rate "$alone")"
figure push "skopeo push ${SIZE_MIB} MiB (MB/s)" rate 0
figure pull "skopeo pull ${SIZE_MIB} MiB (MB/s)" rate 0
figure put "curl monolithic PUT (MB/s)" rate 0
figure get "curl GET ${SIZE_MIB} MiB (MB/s)" rate 0
half() { echo "$(rate "$1") / 2" | bc -l; }
figure range "curl range GET $((SIZE_MIB / 2)) MiB (MB/s)" half 0
figure tiny "$TINY tiny images (images/s)" per_s 0
figure idle "idle RSS (MiB, lower is better)" mib 1
figure peak "peak RSS (MiB, lower is better)" mib 1

# The targets, each with whether this run met it.
ceiling=$(echo "if ($machine_sha256_mb_s < $machine_disk_mb_s) $machine_sha256_mb_s else $machine_disk_mb_s" | bc -l)
target() { # label measured target-text met
  printf '%-46s %-22s %-34s %s\n' "$1" "$2" "$3" "$([ "$4" = 1 ] && echo met || echo "NOT met")"
}
ge() { [ "$(echo "$1 >= $2" | bc -l)" = 1 ] && echo 1 || echo 0; }
le() { [ "$(echo "$1 <= $2" | bc -l)" = 1 ] && echo 1 || echo 0; }
echo
printf '%-46s %-22s %-34s %s\n' "target" "measured" "wanted" "met"
target "curl GET vs the peer" "$(printf '%.2fx' "${value[get.ratio]}")" ">= 1.00x" "$(ge "${value[get.ratio]}" 1.0)"
target "curl range GET vs the peer" "$(printf '%.2fx' "${value[range.ratio]}")" ">= 1.00x" "$(ge "${value[range.ratio]}" 1.0)"
target "skopeo pull vs the peer" "$(printf '%.2fx' "${value[pull.ratio]}")" ">= 1.20x" "$(ge "${value[pull.ratio]}" 1.2)"
target "$TINY tiny images vs the peer" "$(printf '%.2fx' "${value[tiny.ratio]}")" ">= 3.00x" "$(ge "${value[tiny.ratio]}" 3.0)"
target "curl monolithic PUT" "$(printf '%.0f MB/s' "${value[put]}")" "$(printf '>= %.0f MB/s (80%% of %.0f)' "$(echo "0.8 * $ceiling" | bc -l)" "$ceiling")" "$(ge "${value[put]}" "$(echo "0.8 * $ceiling" | bc -l)")"
target "idle RSS" "$(printf '%.1f MiB' "${value[idle]}")" "<= 16 MiB" "$(le "${value[idle]}" 16)"
target "peak RSS" "$(printf '%.1f MiB' "${value[peak]}")" "<= 48 MiB" "$(le "${value[peak]}" 48)"
