#!/usr/bin/env bash
# Airlock over PostgreSQL at scale, in one run:
#   1. the store alone (`cargo bench -p airlock-store --bench scale`, no HTTP): one database grown
#      to 10 thousand, 100 thousand, 1 million and 10 million log entries (a tenth as many
#      manifests), and at each size an inclusion proof read from the stored nodes, a promotion
#      commit, a tags-list page, a catalog page and an evidence read, p50 and p99;
#   2. replicas: `airlock serve` behind HAProxy (deploy/haproxy.cfg) over one PostgreSQL and one
#      S3 bucket (SeaweedFS, `scripts/services start s3`), one replica against three: gate
#      decisions/s (wrk on `POST …/evaluate`, as bench/promote.sh) and tiny-image pushes/s
#      (bench/tiny_push.py, as bench/registry.sh, from CLIENTS clients at once), with the CPU
#      time each process used.
# It starts its own PostgreSQL in a fresh directory under WORK_DIR and removes it at the end, and
# stops the run if the disk there falls under MIN_FREE_GIB. With PG_TABLES_DIR (say /dev/shm, a
# tmpfs) the table files go there instead while the WAL stays under WORK_DIR, so every commit
# still waits for the disk's fsync: for a machine short of disk (10 million entries take ~12 GB).
#   bench/scale.sh                           # everything, full sizes (~10 GB of database at the top)
#   SIZES=10000,100000 bench/scale.sh        # smaller sizes
#   bench/scale.sh --smoke                   # sizes 1,000 and 10,000, debug build, no replicas (CI)
#   AIRLOCK_BIN=/path/to/airlock bench/scale.sh   # the release binary for the replica part
#   SKIP_REPLICAS=1 / SKIP_STORE=1           # one part only
#   PG_TABLES_DIR=/dev/shm bench/scale.sh    # table files on tmpfs, WAL on the disk
# Cargo honours CARGO_TARGET_DIR; the replica part also needs haproxy, wrk, skopeo and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
smoke=0
if [ "${1:-}" = --smoke ]; then smoke=1; fi
if ((smoke)); then
  SIZES=${SIZES:-1000,10000}
  SAMPLES=${SAMPLES:-200}
  COMMITS=${COMMITS:-20}
  SKIP_REPLICAS=1
else
  SIZES=${SIZES:-10000,100000,1000000,10000000}
  SAMPLES=${SAMPLES:-2000}
  COMMITS=${COMMITS:-200}
fi
SKIP_REPLICAS=${SKIP_REPLICAS:-0}
SKIP_STORE=${SKIP_STORE:-0}
WORK_DIR=${WORK_DIR:-/var/tmp}
PG_TABLES_DIR=${PG_TABLES_DIR:-}
MIN_FREE_GIB=${MIN_FREE_GIB:-$((smoke ? 1 : 3))}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
TINY=${TINY:-800}
CLIENTS=${CLIENTS:-8}
RUNS=${RUNS:-2}
target_dir=${CARGO_TARGET_DIR:-$root/target}

die() { echo "bench/scale.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }
trap 'echo "bench/scale.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

work=$(mktemp -d "$WORK_DIR/airlock-scale.XXXXXX")
tables=""
[ -z "$PG_TABLES_DIR" ] || tables=$(mktemp -d "$PG_TABLES_DIR/airlock-scale.XXXXXX")
pgdata=${tables:-$work/pg}/data
pids=()
pg_ctl=""
s3_started=0
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((rc != 0)); then
    for f in "$work"/*.log "$work"/pg/log; do
      [ -s "$f" ] || continue
      echo "--- last lines of $f ---" >&2
      tail -n 15 "$f" >&2 || true
    done
  fi
  [ -z "$pg_ctl" ] || "${as_postgres[@]}" "$pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
  ((s3_started == 0)) || scripts/services stop >/dev/null 2>&1 || true
  rm -rf "$work"
  [ -z "$tables" ] || rm -rf "$tables"
}
trap cleanup EXIT

free_gib() { df -P -B1G "$1" | awk 'NR==2 {print $4}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
load() { uptime | sed 's/.*load average/load average/'; }

# ---------------------------------------------------------------------------------------------
say "machine"
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit:   $(git log -1 --format='%h %s' 2>/dev/null | cut -c1-90)"
echo "cpu:      $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "memory:   $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "disk:     $(df -P -h "$WORK_DIR" | awk 'NR==2 {print $4 " free of " $2}') at $WORK_DIR ($(findmnt -no FSTYPE -T "$WORK_DIR" 2>/dev/null || echo '?'))"
echo "kernel:   $(uname -r)"
echo "load:     $(load)"

for dir in "$WORK_DIR" ${PG_TABLES_DIR:+"$PG_TABLES_DIR"}; do
  free=$(free_gib "$dir")
  ((free >= MIN_FREE_GIB + 1)) || die "only $free GiB free at $dir; the run needs more than MIN_FREE_GIB=$MIN_FREE_GIB"
done

# ---------------------------------------------------------------------------------------------
# PostgreSQL in its own directory: Debian's package, as `postgres` (initdb refuses root). fsync
# and synchronous_commit stay on; the buffers are sized for a machine with a few GiB to spare.
as_postgres=()
[ "$(id -u)" = 0 ] && as_postgres=(runuser -u postgres --)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  say "installing postgresql (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
mkdir -p "$work/pg"
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$work/pg" ${tables:+"$tables"}
  chmod 755 "$work" ${tables:+"$tables"}
fi
"${as_postgres[@]}" "$pg_bin/initdb" -D "$pgdata" --waldir "$work/pg/wal" -U postgres -A trust -E UTF8 \
  >"$work/pg/initdb.out" 2>&1 || { cat "$work/pg/initdb.out" >&2; die "initdb failed"; }
pg_port=$(free_port)
"${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pgdata" -l "$work/pg/log" -w \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=1GB -c max_wal_size=1GB" \
  start >/dev/null
pg_ctl=$pg_bin/pg_ctl
pg_url=postgres://postgres@127.0.0.1:$pg_port/postgres
echo "postgres: $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port, tables in $pgdata, WAL in $work/pg/wal"

# Stops the process `$1` when the disk under WORK_DIR (or PG_TABLES_DIR) runs low, so a large run
# cannot fill it.
watch_disk() {
  local dir
  while kill -0 "$1" 2>/dev/null; do
    for dir in "$WORK_DIR" ${PG_TABLES_DIR:+"$PG_TABLES_DIR"}; do
      if (($(free_gib "$dir") < MIN_FREE_GIB)); then
        echo "bench/scale.sh: under $MIN_FREE_GIB GiB free at $dir; stopping the run" >&2
        kill "$1" 2>/dev/null || true
        return
      fi
    done
    # Table files on a tmpfs live in memory: leave the machine MIN_FREE_GIB of it too.
    if [ -n "$PG_TABLES_DIR" ] && (($(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo) < MIN_FREE_GIB)); then
      echo "bench/scale.sh: under $MIN_FREE_GIB GiB of memory available; stopping the run" >&2
      kill "$1" 2>/dev/null || true
      return
    fi
    sleep 5
  done
}

# ---------------------------------------------------------------------------------------------
if ((SKIP_STORE == 0)); then
  # The bench binary: release (`cargo bench`) for the figures, debug for the smoke.
  if ((smoke)); then
    say "building the scale bench (debug)"
    build=(cargo test -q -p airlock-store --bench scale --no-run --message-format=json)
  else
    say "building the scale bench (release)"
    build=(cargo bench -q -p airlock-store --bench scale --no-run --message-format=json)
  fi
  bench_bin=$("${build[@]}" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "scale" and m.get("executable"):
        print(m["executable"])')
  [ -x "$bench_bin" ] || die "the scale bench did not build"
  say "store at scale: sizes $SIZES, $SAMPLES samples per read, $COMMITS commits per size ($(load))"
  AIRLOCK_SCALE_POSTGRES_URL=$pg_url AIRLOCK_SCALE_SIZES=$SIZES AIRLOCK_SCALE_SAMPLES=$SAMPLES \
    AIRLOCK_SCALE_COMMITS=$COMMITS "$bench_bin" &
  bench_pid=$!
  watch_disk "$bench_pid" &
  pids+=($!)
  wait "$bench_pid" || die "the scale bench failed (exit $?)"
fi
((SKIP_REPLICAS == 0)) || exit 0

# ---------------------------------------------------------------------------------------------
# Replicas: one PostgreSQL database and one bucket, three `airlock serve`, two HAProxy running
# deploy/haproxy.cfg: `lb1` sends all three slots to replica 1, `lb3` spreads over all three.
missing=()
for tool in haproxy wrk skopeo curl python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -n "${AIRLOCK_BIN:-}" ]; then
  airlock=$AIRLOCK_BIN
else
  say "building airlock (release)"
  cargo build --release --quiet --bin airlock || die "the release build failed; or point AIRLOCK_BIN at a built binary"
  airlock=$target_dir/release/airlock
fi
[ -x "$airlock" ] || die "AIRLOCK_BIN=$airlock is not an executable"
util() { python3 "$root/bench/promote_util.py" "$@"; }

say "starting SeaweedFS (scripts/services start s3)"
s3_started=1
eval "$(scripts/services start s3)"
"$pg_bin/psql" -q -d "$pg_url" -c "CREATE DATABASE airlock_replicas" >/dev/null
lb1_port=$(free_port); lb3_port=$(free_port)
ports=("$(free_port)" "$(free_port)" "$(free_port)")
mkdir -p "$work/permissive"
cat >"$work/permissive/policy.rego" <<'REGO'
package airlock

import rego.v1

# Never fires: no vulnerability has severity "never".
deny contains {"rule": "never", "msg": "never", "remediation": "none"} if {
	some v in input.evidence.vulnerabilities
	v.severity == "never"
}
REGO
# The configuration of bench/promote.sh, over PostgreSQL and S3; clients reach the replicas
# through `lb3` (the URLs a replica hands out name it; `lb1` forwards them to replica 1 alike).
cat >"$work/airlock.toml" <<TOML
public_url = "http://127.0.0.1:$lb3_port"

[store]
url = "postgres://postgres@127.0.0.1:$pg_port/airlock_replicas"

[blobs]
url = "s3://$AIRLOCK_TEST_S3_BUCKET/scale-$$"
endpoint = "$AIRLOCK_TEST_S3_ENDPOINT"
region = "us-east-1"
allow_http = true

[server]
trusted_proxies = ["127.0.0.1"]

[[stages]]
name = "dev"
pushable = true

[[stages]]
name = "staging"
policy = "$work/permissive"

# What is measured is the servers' capacity, not the per-principal quotas that bound one caller.
[limits]
evaluations_per_minute = 4000000000
[rate_limits]
principal_per_minute = 4000000000
principal_burst = 4000000000
TOML
admin_password=bench-admin-password
start_replica() { # n
  local n=$1 data=$work/replica$1
  if ((n > 1)); then
    # The key files every replica shares with the first: the log's, the token's, the release key.
    for key in log/key log/origin auth/token.key keys/release.key; do
      mkdir -p "$(dirname "$data/$key")"
      cp "$work/replica1/$key" "$data/$key"
    done
  fi
  AIRLOCK_BOOTSTRAP_PASSWORD=$admin_password AWS_ACCESS_KEY_ID=$AIRLOCK_TEST_S3_ACCESS_KEY \
    AWS_SECRET_ACCESS_KEY=$AIRLOCK_TEST_S3_SECRET_KEY RUST_LOG=warn \
    "$airlock" serve --config "$work/airlock.toml" --listen "127.0.0.1:${ports[n - 1]}" --data "$data" \
    >"$work/replica$n.out" 2>"$work/replica$n.log" &
  replica_pid[$n]=$!
  pids+=($!)
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:${ports[n - 1]}/readyz" 2>/dev/null && return
    kill -0 "${replica_pid[$n]}" 2>/dev/null || die "replica $n exited at start; see its log"
    sleep 0.1
  done
  die "replica $n did not become ready within 30 s"
}
start_balancer() { # name port replica-for-slot-1 slot-2 slot-3
  AIRLOCK_LB_BIND=127.0.0.1:$2 AIRLOCK_REPLICA_1=127.0.0.1:${ports[$3 - 1]} \
    AIRLOCK_REPLICA_2=127.0.0.1:${ports[$4 - 1]} AIRLOCK_REPLICA_3=127.0.0.1:${ports[$5 - 1]} \
    haproxy -f "$root/deploy/haproxy.cfg" -db >"$work/$1.log" 2>&1 &
  balancer_pid[$1]=$!
  pids+=($!)
  local ok=0
  for _ in $(seq 200); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$2/readyz" 2>/dev/null; then ok=$((ok + 1)); else ok=0; fi
    ((ok >= 6)) && return
    sleep 0.1
  done
  die "HAProxy $1 did not become ready"
}
declare -A replica_pid balancer_pid
say "starting 3 replicas and 2 balancers"
for n in 1 2 3; do start_replica "$n"; done
start_balancer lb1 "$lb1_port" 1 1 1
start_balancer lb3 "$lb3_port" 1 2 3
A=http://127.0.0.1:$lb3_port

call() { # method path bearer [json]: fails with the server's answer on anything but 2xx
  local code
  code=$(curl -sS -o "$work/call.out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' ${4:+--data-binary "$4"} "$A$2") || die "$1 $2: curl failed"
  [[ $code == 2* ]] || die "$1 $2 answered $code: $(head -c 600 "$work/call.out")"
  cat "$work/call.out"
}
api_token() { # name secret
  curl -fsS -X POST -u "$1:$2" "$A/api/v1/auth/token" | util json token || die "no API token for $1"
}
curl -fsS -o /dev/null -X POST -u "admin:$admin_password" "$A/api/v1/auth/mfa" || die "MFA enrollment for admin failed"
admin=$(api_token admin "$admin_password")
ci_key=$(call POST /api/v1/principals "$admin" '{"name":"bench-ci","kind":"service_account","roles":["ci"]}' | util json api_key)
keys_key=$(call POST /api/v1/principals "$admin" '{"name":"bench-keys","kind":"service_account","roles":["key-admin"]}' | util json api_key)

# The artifact of bench/promote.sh's gate figure: a 1 KiB image with 4 signed attestations.
say "trust root, an image and its 4 attestations"
mkdir -p "$work/keys"
for k in ci scanner; do "$airlock" key generate --algorithm ed25519 --out "$work/keys/$k" --output json >/dev/null; done
"$airlock" trust init --dir "$work/root" --root-keys 1 --threshold 1 --signer ci --signer-key "$work/keys/ci.pub" \
  --predicate-type 'https://**' --repository '**' --output json >/dev/null
XDG_CONFIG_HOME="$work/keys-home" AIRLOCK_PASSWORD="$keys_key" "$airlock" login "$A" --username bench-keys --output json >/dev/null
XDG_CONFIG_HOME="$work/keys-home" "$airlock" trust apply "$work/root/root.json" --server "$A" --output json >/dev/null
"$airlock" trust propose --from "$work/root/root.json" --out "$work/root/v2.json" --signer scanner \
  --signer-key "$work/keys/scanner.pub" --predicate-type 'https://**' --repository '**' --output json >/dev/null
"$airlock" trust sign "$work/root/v2.json" --key "$work/root/root-1.key" --output json >/dev/null
XDG_CONFIG_HOME="$work/keys-home" "$airlock" trust apply "$work/root/v2.json" --server "$A" --output json >/dev/null
util predicates "$work/predicates" bench-developer
util layout "$work/small" 1024
digest=$(util json manifests.0.digest <"$work/small/index.json")
rm -f /var/lib/containers/cache/blob-info-cache-v1.* "${HOME:-/root}"/.local/share/containers/cache/blob-info-cache-v1.* 2>/dev/null || true
skopeo copy -q --dest-tls-verify=false --preserve-digests --dest-creds "bench-ci:$ci_key" \
  "oci:$work/small:big" "docker://127.0.0.1:$lb3_port/dev/bench/small:1" || die "skopeo push through lb3 failed"
for spec in "https://slsa.dev/provenance/v1 provenance.json ci" "https://cyclonedx.org/bom sbom.json ci" \
  "https://cosign.sigstore.dev/attestation/vuln/v1 scan.json scanner" "https://openvex.dev/ns/v0.2.0 vex.json scanner"; do
  read -r type file key <<<"$spec"
  out=$(AIRLOCK_USERNAME=bench-ci AIRLOCK_PASSWORD=$ci_key "$airlock" attest "dev/bench/small@$digest" --predicate-type "$type" \
    --predicate "$work/predicates/$file" --key "$work/keys/$key.key" --server "$A" --output json) || die "attest $type failed"
  [ "$(util json evidence.status <<<"$out")" = trusted ] || die "attestation $type is not trusted: $out"
done
ci=$(api_token bench-ci "$ci_key")
artifact="/api/v1/artifacts/dev/bench/small/$digest"
code=$(curl -sS -o "$work/decision.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $ci" "$A$artifact/evaluate?to=staging")
[ "$code" = 200 ] || die "evaluate answered $code: $(head -c 600 "$work/decision.json")"
outcome=$(util json outcome <"$work/decision.json")

# ---------------------------------------------------------------------------------------------
# CPU time (user + system, in clock ticks) of a process and of PostgreSQL's backends, and the
# machine's busy and total ticks, read before and after each measurement.
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() { # the postmaster and every backend alive now
  local main; main=$(head -1 "$pgdata/postmaster.pid")
  local total; total=$(ticks "$main")
  for child in $(pgrep -P "$main"); do total=$((total + $(ticks "$child"))); done
  echo "$total"
}
weed_ticks() { local p; p=$(cat "$root/target/services/seaweedfs/pid" 2>/dev/null || echo 0); ticks "$p"; }
machine() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
declare -A res
snapshot() { # name: every counter now
  local m; m=$(machine)
  res[$1.busy]=${m% *}; res[$1.all]=${m#* }
  for n in 1 2 3; do res[$1.r$n]=$(ticks "${replica_pid[$n]}"); done
  res[$1.lb1]=$(ticks "${balancer_pid[lb1]}"); res[$1.lb3]=$(ticks "${balancer_pid[lb3]}")
  res[$1.pg]=$(pg_ticks); res[$1.s3]=$(weed_ticks)
}
cpu_line() { # label before after units: CPU seconds per process, and the machine's busy share
  local b=$2 a=$3 line="" n
  for n in r1 r2 r3 lb1 lb3 pg s3; do
    line+=$(printf ' %s %.1f' "$n" "$(echo "(${res[$a.$n]} - ${res[$b.$n]}) / $hz" | bc -l)")
  done
  printf '%s CPU s:%s; machine busy %.0f%% of %d cores\n' "$1" "$line" \
    "$(echo "100 * (${res[$a.busy]} - ${res[$b.busy]}) / (${res[$a.all]} - ${res[$b.all]})" | bc -l)" "$(nproc)"
}

decisions() { # name port: wrk on the evaluate endpoint through one balancer
  printf 'wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$ci" >"$work/wrk.lua"
  snapshot "$1.before"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/wrk.lua" \
    "http://127.0.0.1:$2$artifact/evaluate?to=staging" >"$work/$1.wrk"
  snapshot "$1.after"
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $5}' "$work/$1.wrk")
  # A figure made of refusals measures nothing.
  [ -z "$non2xx" ] || die "$1: $non2xx answers were not 2xx; see $work/$1.wrk"
  res[$1.rps]=$(awk '/Requests\/sec/ {print $2}' "$work/$1.wrk")
  res[$1.p50]=$(awk '$1=="50%" {print $2}' "$work/$1.wrk")
  res[$1.p99]=$(awk '$1=="99%" {print $2}' "$work/$1.wrk")
  res[$1.n]=$(awk '/requests in/ {print $1}' "$work/$1.wrk")
}
pushes() { # name port run: CLIENTS tiny_push.py at once, TINY images in all, each client its own repository
  local each=$((TINY / CLIENTS)) c tokens=()
  for c in $(seq "$CLIENTS"); do
    tokens[c]=$(curl -fsS -u "bench-ci:$ci_key" \
      "http://127.0.0.1:$2/token?service=airlock&scope=repository:dev/tiny-$1-$3-$c:pull,push" | util json token) ||
      die "no registry token for dev/tiny-$1-$3-$c"
  done
  snapshot "$1.before"
  local t0 t1 failed=0 client_pids=()
  t0=$(date +%s.%N)
  for c in $(seq "$CLIENTS"); do
    python3 bench/tiny_push.py 127.0.0.1 "$2" "dev/tiny-$1-$3-$c" "$each" "${tokens[c]}" >"$work/$1.tiny.$c" 2>&1 &
    client_pids+=($!)
  done
  for p in "${client_pids[@]}"; do wait "$p" || failed=1; done
  t1=$(date +%s.%N)
  snapshot "$1.after"
  ((failed == 0)) || die "$1: a tiny_push client failed: $(cat "$work/$1".tiny.* | grep -v '^[0-9.]*$' | head -3)"
  res[$1.ips]=$(echo "$each * $CLIENTS / ($t1 - $t0)" | bc -l)
}

say "replicas: gate decisions (wrk $THREADS threads, $CONNECTIONS connections, $DURATION) and $TINY tiny images from $CLIENTS clients, best of $RUNS ($(load))"
res[load.start]=$(load)
for run in $(seq "$RUNS"); do
  for lb in lb1 lb3; do
    port=$lb1_port; [ "$lb" = lb3 ] && port=$lb3_port
    decisions "dec.$lb.$run" "$port"
    pushes "tiny.$lb.$run" "$port" "$run"
    echo "   run $run $lb: ${res[dec.$lb.$run.rps]} decisions/s, $(printf '%.1f' "${res[tiny.$lb.$run.ips]}") images/s" >&2
  done
done
res[load.end]=$(load)

best() { # figure lb: the run with the highest rate
  local best_run=1 run
  for run in $(seq "$RUNS"); do
    if (($(echo "${res[$1.$2.$run.$3]} > ${res[$1.$2.$best_run.$3]}" | bc -l))); then best_run=$run; fi
  done
  echo "$best_run"
}
echo
echo "Replicas behind HAProxy over one PostgreSQL (this run's cluster) and SeaweedFS, loopback, $(nproc) cores shared by all."
echo "lb1: deploy/haproxy.cfg with all three slots on replica 1; lb3: one slot per replica. Best of $RUNS runs."
printf '%-46s %12s %12s %8s\n' "figure" "1 replica" "3 replicas" "ratio"
d1=$(best dec lb1 rps); d3=$(best dec lb3 rps); t1=$(best tiny lb1 ips); t3=$(best tiny lb3 ips)
printf '%-46s %12.0f %12.0f %7.2fx\n' "gate decisions/s (4 signed attestations)" "${res[dec.lb1.$d1.rps]}" "${res[dec.lb3.$d3.rps]}" \
  "$(echo "${res[dec.lb3.$d3.rps]} / ${res[dec.lb1.$d1.rps]}" | bc -l)"
printf '%-46s %12.1f %12.1f %7.2fx\n' "tiny images/s ($CLIENTS clients at once)" "${res[tiny.lb1.$t1.ips]}" "${res[tiny.lb3.$t3.ips]}" \
  "$(echo "${res[tiny.lb3.$t3.ips]} / ${res[tiny.lb1.$t1.ips]}" | bc -l)"
echo
echo "gate decisions: outcome \`$outcome\`; p50/p99 ${res[dec.lb1.$d1.p50]}/${res[dec.lb1.$d1.p99]} with 1 replica, ${res[dec.lb3.$d3.p50]}/${res[dec.lb3.$d3.p99]} with 3, at $CONNECTIONS connections"
for run in $(seq "$RUNS"); do
  for lb in lb1 lb3; do
    cpu_line "  run $run decisions via $lb (${res[dec.$lb.$run.n]} requests)" "dec.$lb.$run.before" "dec.$lb.$run.after"
    cpu_line "  run $run tiny pushes via $lb" "tiny.$lb.$run.before" "tiny.$lb.$run.after"
  done
done
echo "  (r1..r3: the replicas; lb1, lb3: HAProxy; pg: PostgreSQL's backends; s3: SeaweedFS; the rest is wrk and the clients)"
echo "load: start ${res[load.start]}; end ${res[load.end]}"
