#!/usr/bin/env bash
# Promotion in Airlock against "promotion" in a plain registry (Debian's docker-registry,
# distribution 2.8), side by side on loopback, in one run:
#   - Airlock: dev -> staging (no approval: the request commits at once), then staging -> prod
#     with 2 release approvers holding fresh TOTP second factors; the final approval's request,
#     the one that commits, timed end to end with curl, for a SIZE_MIB image and a 1 KiB one;
#   - the peer: `skopeo copy` of the same image from `staging/...` to `prod/...`, and the
#     cross-repository mount variant (one mount POST per blob plus the manifest PUT);
#   - gate decisions over HTTP: wrk against `POST /api/v1/artifacts/.../evaluate?to=staging` on
#     an artifact with 4 signed attestations (provenance, SBOM, scan, VEX), default library.
# Prints each figure with the ratio (higher is better for Airlock).
#   bench/promote.sh                         # 1 GiB image, 7 runs, wrk 10 s
#   SIZE_MIB=64 RUNS=3 bench/promote.sh      # quick
#   AIRLOCK_BIN=/path/to/airlock bench/promote.sh   # skip the build, use that release binary
#   PERF=1 bench/promote.sh                  # and a CPU profile of the server's gate decisions
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SIZE_MIB=${SIZE_MIB:-1024}
SMALL_BYTES=${SMALL_BYTES:-1024}
RUNS=${RUNS:-7}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
AIRLOCK_PORT=${AIRLOCK_PORT:-5111}
PEER_PORT=${PEER_PORT:-5112}
A=http://127.0.0.1:$AIRLOCK_PORT
P=http://127.0.0.1:$PEER_PORT

die() { echo "bench/promote.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }
trap 'echo "bench/promote.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

missing=()
for tool in skopeo docker-registry curl bc python3 wrk; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for port in "$AIRLOCK_PORT" "$PEER_PORT"; do
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    die "port $port is already in use; set AIRLOCK_PORT / PEER_PORT to free ports"
  fi
done
if [ -n "${AIRLOCK_BIN:-}" ]; then
  airlock=$AIRLOCK_BIN # a release binary built elsewhere (another checkout, a pinned commit)
  [ -x "$airlock" ] || die "AIRLOCK_BIN=$airlock is not an executable"
else
  say "building airlock (release)"
  cargo build --release --quiet --bin airlock || die "the release build failed; fix it, or point AIRLOCK_BIN at a built binary"
  airlock=$root/target/release/airlock
fi
util() { python3 "$root/bench/promote_util.py" "$@"; }

work=$(mktemp -d /var/tmp/airlock-promote-bench.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((rc != 0)); then
    for f in airlock.log peer.log; do
      [ -s "$work/$f" ] || continue
      echo "--- last lines of $f ---" >&2
      tail -n 20 "$work/$f" >&2 || true
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

wait_up() { # port pid name
  for _ in $(seq 200); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null && return
    curl -fsS -o /dev/null "http://127.0.0.1:$1/v2/" 2>/dev/null && return
    kill -0 "$2" 2>/dev/null || die "$3 exited at start; its log follows"
    sleep 0.1
  done
  die "$3 did not answer on port $1 within 20 s"
}
load() { uptime | sed 's/.*load average/load average/'; }
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$airlock_pid/stat"; } # the server's user + system time

# ---------------------------------------------------------------------------------------------
say "making a ${SIZE_MIB} MiB and a ${SMALL_BYTES}-byte single-layer image"
python3 bench/make_layout.py "$work/big" "$SIZE_MIB"
util layout "$work/small" "$SMALL_BYTES"
cat "$work/big/layer.bin" >/dev/null # warm the page cache for both sides
declare -A manifest layer config
for img in big small; do
  manifest[$img]=$(util json manifests.0.digest <"$work/$img/index.json")
  layer[$img]=$(cat "$work/$img/layer.digest")
  config[$img]=$(util json config.digest <"$work/$img/blobs/sha256/${manifest[$img]#sha256:}")
done

# The stage bundle: permissive, so promotions measure the engine and not the library's rules.
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
# No `policy.bundle`: the evaluate endpoint uses the embedded default library.
cat >"$work/airlock.toml" <<TOML
listen = "127.0.0.1:$AIRLOCK_PORT"
data_dir = "$work/airlock-data"

[[stages]]
name = "dev"
pushable = true

[[stages]]
name = "staging"
policy = "$work/permissive"

[[stages]]
name = "prod"
policy = "$work/permissive"
[stages.approvals]
count = 2
role = "release-approver"
mfa = true

# What is measured is the server's capacity, not the per-principal quotas that bound one caller.
[limits]
evaluations_per_minute = 4000000000
[rate_limits]
principal_per_minute = 4000000000
principal_burst = 4000000000
TOML

say "starting airlock on $AIRLOCK_PORT and docker-registry on $PEER_PORT"
admin_password=bench-admin-password
AIRLOCK_BOOTSTRAP_PASSWORD=$admin_password "$airlock" serve --config "$work/airlock.toml" \
  >"$work/airlock.out" 2>"$work/airlock.log" &
airlock_pid=$!; pids+=("$airlock_pid")
wait_up "$AIRLOCK_PORT" "$airlock_pid" airlock
cat >"$work/peer.yml" <<YML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/peer-data}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$PEER_PORT}
YML
docker-registry serve "$work/peer.yml" >"$work/peer.log" 2>&1 &
peer_pid=$!; pids+=("$peer_pid")
wait_up "$PEER_PORT" "$peer_pid" docker-registry

# ---------------------------------------------------------------------------------------------
# Identity API helpers. `call` fails with the server's answer on anything but 2xx.
call() { # method path bearer [json]
  local code
  code=$(curl -sS -o "$work/call.out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' ${4:+--data-binary "$4"} "$A$2") || die "$1 $2: curl failed"
  [[ $code == 2* ]] || die "$1 $2 answered $code: $(head -c 600 "$work/call.out")"
  cat "$work/call.out"
}
api_token() { # name secret [otp]
  local code
  code=$(curl -sS -o "$work/token.out" -w '%{http_code}' -X POST -u "$1:$2" ${3:+-H "x-airlock-otp: $3"} \
    "$A/api/v1/auth/token") || die "API token for $1: curl failed"
  [[ $code == 200 ]] || die "API token for $1 answered $code: $(head -c 600 "$work/token.out")"
  util json token <"$work/token.out"
}

# The bootstrap administrator grants nothing privileged before it has a second factor.
curl -fsS -o /dev/null -X POST -u "admin:$admin_password" "$A/api/v1/auth/mfa" || die "MFA enrollment for admin failed"
admin=$(api_token admin "$admin_password")
# CI pushes and requests promotions (role `ci`); two people approve prod. A user is created with a
# one-time enrollment token and chooses their password by enrolling, which issues their second
# factor; approvers are people, so each has an e-mail.
ci_key=$(call POST /api/v1/principals "$admin" '{"name":"bench-ci","kind":"service_account","roles":["ci"]}' | util json api_key)
declare -A otp_secret
for who in approver-1 approver-2; do
  enrollment=$(call POST /api/v1/principals "$admin" \
    "{\"name\":\"$who\",\"kind\":\"user\",\"roles\":[\"release-approver\"],\"email\":\"$who@example.com\"}" |
    util json enrollment_token)
  otp_secret[$who]=$(curl -fsS -X POST -H 'content-type: application/json' \
    -d "{\"token\":\"$enrollment\",\"password\":\"$who-password-123\"}" "$A/api/v1/auth/enroll" | util json secret) ||
    die "enrollment of $who failed"
done

# Signing keys and a trust root: `ci` and `scanner` may sign any predicate type for any
# repository (the default library wants provenance from `ci` and scans from `scanner`).
say "keys, trust root, pushes and attestations"
mkdir -p "$work/keys"
for k in ci scanner; do "$airlock" key generate --algorithm ed25519 --out "$work/keys/$k" --output json >/dev/null; done
"$airlock" trust init --dir "$work/root" --root-keys 1 --threshold 1 --signer ci --signer-key "$work/keys/ci.pub" \
  --predicate-type 'https://**' --repository '**' --output json >/dev/null
# Applying a root is a key admin's duty: a `key-admin` service account logs in first.
keys_key=$(call POST /api/v1/principals "$admin" '{"name":"bench-keys","kind":"service_account","roles":["key-admin"]}' | util json api_key)
XDG_CONFIG_HOME="$work/keys-home" AIRLOCK_PASSWORD="$keys_key" "$airlock" login "$A" --username bench-keys --output json >/dev/null
XDG_CONFIG_HOME="$work/keys-home" "$airlock" trust apply "$work/root/root.json" --server "$A" --output json >/dev/null
"$airlock" trust propose --from "$work/root/root.json" --out "$work/root/v2.json" --signer scanner \
  --signer-key "$work/keys/scanner.pub" --predicate-type 'https://**' --repository '**' --output json >/dev/null
"$airlock" trust sign "$work/root/v2.json" --key "$work/root/root-1.key" --output json >/dev/null
XDG_CONFIG_HOME="$work/keys-home" "$airlock" trust apply "$work/root/v2.json" --server "$A" --output json >/dev/null
util predicates "$work/predicates" bench-developer

skopeo_push() { # layout-dir destination [creds]
  rm -f /var/lib/containers/cache/blob-info-cache-v1.* "${HOME:-/root}"/.local/share/containers/cache/blob-info-cache-v1.* 2>/dev/null || true
  skopeo copy -q --dest-tls-verify=false --preserve-digests ${3:+--dest-creds "$3"} "oci:$1:big" "docker://$2"
}
attest() { # repo digest predicate-type file key
  local out
  out=$(AIRLOCK_USERNAME=bench-ci AIRLOCK_PASSWORD=$ci_key "$airlock" attest "$1@$2" --predicate-type "$3" \
    --predicate "$work/predicates/$4" --key "$work/keys/$5.key" --server "$A" --output json) ||
    die "attest $3 on $1@$2 failed"
  [ "$(util json evidence.status <<<"$out")" = trusted ] || die "attestation $3 on $1 is not trusted: $out"
}
for img in big small; do
  skopeo_push "$work/$img" "127.0.0.1:$AIRLOCK_PORT/dev/bench/$img:1" "bench-ci:$ci_key"
  attest "dev/bench/$img" "${manifest[$img]}" https://slsa.dev/provenance/v1 provenance.json ci
  attest "dev/bench/$img" "${manifest[$img]}" https://cyclonedx.org/bom sbom.json ci
  attest "dev/bench/$img" "${manifest[$img]}" https://cosign.sigstore.dev/attestation/vuln/v1 scan.json scanner
  attest "dev/bench/$img" "${manifest[$img]}" https://openvex.dev/ns/v0.2.0 vex.json scanner
  skopeo_push "$work/$img" "127.0.0.1:$PEER_PORT/staging/$img:1"
done

# ---------------------------------------------------------------------------------------------
declare -A res
ms() { echo "$1 * 1000" | bc -l; }
timed_call() { # method path bearer json -> "seconds" ; the body lands in $work/timed.out
  local out
  out=$(curl -sS -o "$work/timed.out" -w '%{http_code} %{time_total}' -X "$1" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' --data-binary "$4" "$A$2") || die "$1 $2: curl failed"
  [[ ${out%% *} == 2* ]] || die "$1 $2 answered ${out%% *}: $(head -c 600 "$work/timed.out")"
  echo "${out#* }"
}
status_is() { # expected
  local s; s=$(util json status <"$work/timed.out")
  [ "$s" = "$1" ] || die "promotion is \`$s\`, expected \`$1\`: $(head -c 800 "$work/timed.out")"
}

say "airlock promotions, $RUNS runs per size ($(load))"
res[load.airlock]=$(load)
ci=$(api_token bench-ci "$ci_key")
# Staging: no approval, so the request itself evaluates the gates and commits. Each staging
# promotion attaches a release record and a VSA to the digest in staging, and the prod promotion
# links the digest's whole referrer graph, so only the first (tag s1) runs before prod: each prod
# promotion then carries the artifact, its 4 attestations and one release record and VSA. The
# other staging runs (s2, s3, ...) come after the prod ones.
staging_runs() { # img first last
  local t i c0
  c0=$(cpu_ticks)
  for i in $(seq "$2" "$3"); do
    t=$(timed_call POST /api/v1/promotions "$ci" \
      "{\"repository\":\"dev/bench/$1\",\"reference\":\"${manifest[$1]}\",\"to\":\"staging\",\"tag\":\"s$i\",\"reason\":\"bench\"}")
    status_is promoted
    ms "$t" >>"$work/staging.$1"
  done
  echo "$(cpu_ticks) - $c0" | bc >>"$work/staging-ticks.$1"
}
for img in big small; do : >"$work/staging.$img"; : >"$work/staging-ticks.$img"; staging_runs "$img" 1 1; done
# Prod: the CI account asks, approver-1 approves, approver-2's approval commits and is timed.
# Each approver logs in once with a fresh code; the API token carries the second factor.
declare -A approver
for who in approver-1 approver-2; do approver[$who]=$(api_token "$who" "$who-password-123" "$(util totp "${otp_secret[$who]}")"); done
for img in big small; do
  : >"$work/prod.$img"
  c0=$(cpu_ticks)
  for i in $(seq "$RUNS"); do
    timed_call POST /api/v1/promotions "$ci" \
      "{\"repository\":\"staging/bench/$img\",\"reference\":\"${manifest[$img]}\",\"to\":\"prod\",\"tag\":\"r$i\",\"reason\":\"bench\"}" >/dev/null
    status_is pending
    id=$(util json id <"$work/timed.out")
    timed_call POST "/api/v1/promotions/$id/approve" "${approver[approver-1]}" '{"comment":"first"}' >/dev/null
    status_is pending
    t=$(timed_call POST "/api/v1/promotions/$id/approve" "${approver[approver-2]}" '{"comment":"second"}')
    status_is promoted
    ms "$t" >>"$work/prod.$img"
  done
  res[prod.cpu.$img]=$(echo "($(cpu_ticks) - $c0) * 1000 / $hz / $RUNS" | bc -l)
  res[prod.$img]=$(util p50 <"$work/prod.$img")
  res[prodmin.$img]=$(sort -g "$work/prod.$img" | head -1)
  res[prod1.$img]=$(head -1 "$work/prod.$img")
  ((RUNS > 1)) && staging_runs "$img" 2 "$RUNS"
  res[staging.$img]=$(util p50 <"$work/staging.$img")
  res[staging.cpu.$img]=$(echo "($(paste -sd+ "$work/staging-ticks.$img")) * 1000 / $hz / $RUNS" | bc -l)
  # The last promoted tag resolves to the digest in prod (release approvers may pull there).
  tok=$(curl -fsS -u "approver-1:approver-1-password-123" "$A/token?service=airlock&scope=repository:prod/bench/$img:pull" |
    util json token) || die "no registry token for approver-1"
  got=$(curl -sS -o /dev/null -D - -H "Authorization: Bearer $tok" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -I "$A/v2/prod/bench/$img/manifests/r$RUNS" | awk 'tolower($1)=="docker-content-digest:" {print $2}' | tr -d '\r')
  [ "$got" = "${manifest[$img]}" ] || die "prod/bench/$img:r$RUNS resolves to \`$got\`, not ${manifest[$img]}"
done

# ---------------------------------------------------------------------------------------------
say "docker-registry: skopeo copy and cross-repository mount, $RUNS runs per size ($(load))"
res[load.peer]=$(load)
peer_copy() { # img run
  rm -f /var/lib/containers/cache/blob-info-cache-v1.* "${HOME:-/root}"/.local/share/containers/cache/blob-info-cache-v1.* 2>/dev/null || true
  local t0 t1
  t0=$(date +%s.%N)
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://127.0.0.1:$PEER_PORT/staging/$1:1" "docker://127.0.0.1:$PEER_PORT/prod/$1-copy$2:1"
  t1=$(date +%s.%N)
  echo "($t1 - $t0) * 1000" | bc -l
}
peer_mount() { # img run: one mount POST per blob, then the manifest PUT; the sum of curl's times
  local dst="prod/$1-mount$2" total=0 out digest
  for digest in "${layer[$1]}" "${config[$1]}"; do
    out=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' -X POST \
      "$P/v2/$dst/blobs/uploads/?mount=$digest&from=staging/$1")
    [ "${out%% *}" = 201 ] || die "peer mount of $digest into $dst answered ${out%% *} (201 expected: a mount, not an upload)"
    total=$(echo "$total + ${out#* }" | bc -l)
  done
  out=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' -X PUT \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$work/$1/blobs/sha256/${manifest[$1]#sha256:}" "$P/v2/$dst/manifests/1")
  [ "${out%% *}" = 201 ] || die "peer manifest PUT into $dst answered ${out%% *}"
  echo "($total + ${out#* }) * 1000" | bc -l
}
for img in big small; do
  : >"$work/copy.$img"; : >"$work/mount.$img"
  for i in $(seq "$RUNS"); do peer_copy "$img" "$i" >>"$work/copy.$img"; done
  for i in $(seq "$RUNS"); do peer_mount "$img" "$i" >>"$work/mount.$img"; done
  res[copy.$img]=$(util p50 <"$work/copy.$img")
  res[mount.$img]=$(util p50 <"$work/mount.$img")
done

# ---------------------------------------------------------------------------------------------
say "gate decisions: wrk $THREADS threads, $CONNECTIONS connections, $DURATION ($(load))"
res[load.wrk]=$(load)
ci=$(api_token bench-ci "$ci_key")
artifact="/api/v1/artifacts/dev/bench/small/${manifest[small]}"
code=$(curl -sS -o "$work/decision.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $ci" "$A$artifact/evaluate?to=staging")
[ "$code" = 200 ] || die "evaluate answered $code: $(head -c 600 "$work/decision.json")"
outcome=$(util json outcome <"$work/decision.json")
signers=$(curl -fsS -H "Authorization: Bearer $ci" "$A$artifact/evidence" |
  python3 -c 'import json,sys; a=json.load(sys.stdin)["attestations"]; print(sum(x["status"]=="trusted" for x in a), "of", len(a))')
log_size() { curl -fsS "$A/api/v1/log/checkpoint" | sed -n 2p; }
run_wrk() { # name method url: requests/s, latency, and the server's CPU time per request
  printf 'wrk.method = "%s"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$2" "$ci" >"$work/$1.lua"
  local c0 c1
  c0=$(cpu_ticks)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/$1.lua" "$3" | tee "$work/$1.wrk" >&2
  c1=$(cpu_ticks)
  res[$1.rps]=$(awk '/Requests\/sec/ {print $2}' "$work/$1.wrk")
  res[$1.n]=$(awk '/requests in/ {print $1}' "$work/$1.wrk")
  res[$1.non2xx]=$(awk '/Non-2xx/ {print $5}' "$work/$1.wrk")
  # A figure made of refusals measures nothing.
  [[ -z "${res[$1.non2xx]}" ]] || die "$1: ${res[$1.non2xx]} of ${res[$1.n]} answers were not 2xx; see $work/$1.wrk"
  res[$1.p50]=$(awk '$1=="50%" {print $2}' "$work/$1.wrk")
  res[$1.p99]=$(awk '$1=="99%" {print $2}' "$work/$1.wrk")
  res[$1.cpu]=$(echo "($c1 - $c0) * 1000 / $hz / ${res[$1.n]}" | bc -l)
}
before=$(log_size)
if [ "${PERF:-0}" = 1 ]; then
  command -v perf >/dev/null || die "PERF=1 needs perf (Debian: linux-perf)"
  perf record -q -g -p "$airlock_pid" -o "$work/decisions.perf" 2>/dev/null &
  perf_pid=$!
fi
run_wrk evaluate POST "$A$artifact/evaluate?to=staging"
if [ "${PERF:-0}" = 1 ]; then
  kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
  perf report -i "$work/decisions.perf" --no-children --sort dso,sym --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n++ < 25' >"$work/decisions.profile"
fi
sleep 0.5
logged=$(($(log_size) - before))
# The same authentication and evidence (4 envelopes re-verified, normalized), without the
# decision and its log entry: what the decision itself adds.
run_wrk input GET "$A$artifact/policy-input?to=staging"
res[load.end]=$(load)

# ---------------------------------------------------------------------------------------------
small_label="${SMALL_BYTES} B"; ((SMALL_BYTES == 1024)) && small_label="1 KiB"
big_label="${SIZE_MIB} MiB"; ((SIZE_MIB == 1024)) && big_label="1 GiB"
row() { printf '%-44s %10.1f %16.1f %9.2fx\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"; }
echo
echo "Airlock: the final approval's request (it re-evaluates the gates and commits), curl time_total."
echo "docker-registry: skopeo copy staging -> prod (wall time), or one cross-repo mount POST per blob"
echo "plus the manifest PUT (sum of curl time_total). p50 of $RUNS runs; ratio = peer / airlock."
echo
printf '%-44s %10s %16s %10s\n' "figure (ms, p50)" "airlock" "docker-registry" "ratio"
row "promote $big_label, vs skopeo copy" "${res[prod.big]}" "${res[copy.big]}"
row "promote $big_label, vs cross-repo mount" "${res[prod.big]}" "${res[mount.big]}"
row "promote $small_label, vs skopeo copy" "${res[prod.small]}" "${res[copy.small]}"
row "promote $small_label, vs cross-repo mount" "${res[prod.small]}" "${res[mount.small]}"
printf '%-44s %10.0f %16s %10s\n' "gate decisions/s (4 signed attestations)" "${res[evaluate.rps]}" "-" "-"
echo
printf 'promote to staging, no approval (the request commits): %s %.1f ms, %s %.1f ms (p50)\n' \
  "$big_label" "${res[staging.big]}" "$small_label" "${res[staging.small]}"
printf 'final approval, fastest run: %s %.1f ms, %s %.1f ms; first run: %s %.1f ms, %s %.1f ms\n' \
  "$big_label" "${res[prodmin.big]}" "$small_label" "${res[prodmin.small]}" "$big_label" "${res[prod1.big]}" "$small_label" "${res[prod1.small]}"
printf 'server CPU per prod promotion (request + 2 approvals): %s %.1f ms, %s %.1f ms; per staging promotion: %.1f ms, %.1f ms\n' \
  "$big_label" "${res[prod.cpu.big]}" "$small_label" "${res[prod.cpu.small]}" "${res[staging.cpu.big]}" "${res[staging.cpu.small]}"
printf 'skopeo copy %s: %.2f s (%.0f MB/s)\n' "$big_label" "$(echo "${res[copy.big]} / 1000" | bc -l)" \
  "$(echo "$SIZE_MIB * 1048576 / (${res[copy.big]} / 1000) / 1000000" | bc -l)"
for f in prod.big prod.small staging.big staging.small copy.big mount.big copy.small mount.small; do
  printf '  runs %-14s %s\n' "$f:" "$(xargs printf '%.1f ' <"$work/$f")"
done
printf 'gate decisions: outcome `%s`, %s attestations trusted; %s requests, p50 %s, p99 %s at %s connections%s;\n' \
  "$outcome" "$signers" "${res[evaluate.n]}" "${res[evaluate.p50]}" "${res[evaluate.p99]}" "$CONNECTIONS" \
  "${res[evaluate.non2xx]:+, ${res[evaluate.non2xx]} non-2xx}"
printf '  log grew by %s entries; server CPU %.2f ms per decision\n' "$logged" "${res[evaluate.cpu]}"
printf 'evidence alone (GET policy-input, no decision, no log entry): %.0f/s, p50 %s, server CPU %.2f ms per request%s\n' \
  "${res[input.rps]}" "${res[input.p50]}" "${res[input.cpu]}" "${res[input.non2xx]:+, ${res[input.non2xx]} non-2xx}"
python3 "$root/bench/machine.py" "$work"
met() { [ "$(echo "$1" | bc -l)" = 1 ] && echo met || echo "NOT met"; }
echo
printf '%-52s %-16s %-14s %s\n' "target" "measured" "wanted" "met"
printf '%-52s %-16s %-14s %s\n' "gate decisions/s over HTTP" "$(printf '%.0f' "${res[evaluate.rps]}")" ">= 2000" "$(met "${res[evaluate.rps]} >= 2000")"
printf '%-52s %-16s %-14s %s\n' "server CPU per gate decision (ms)" "$(printf '%.2f' "${res[evaluate.cpu]}")" "<= 1" "$(met "${res[evaluate.cpu]} <= 1")"
for img in big small; do
  label=$big_label; [ "$img" = small ] && label=$small_label
  printf '%-52s %-16s %-14s %s\n' "promotion commit p50, $label (final approval, ms)" "$(printf '%.1f' "${res[prod.$img]}")" "<= 10" "$(met "${res[prod.$img]} <= 10")"
  printf '%-52s %-16s %-14s %s\n' "promotion commit p50, $label (to staging, ms)" "$(printf '%.1f' "${res[staging.$img]}")" "<= 10" "$(met "${res[staging.$img]} <= 10")"
done
if [ "${PERF:-0}" = 1 ]; then
  echo
  echo "server CPU profile during the gate decisions (perf, self time, top entries):"
  cat "$work/decisions.profile"
fi
echo "load: before airlock ${res[load.airlock]}; before peer ${res[load.peer]}; before wrk ${res[load.wrk]}; end ${res[load.end]}"
