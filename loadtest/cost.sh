#!/usr/bin/env bash
# Per-request cost of two shardgate binaries (a before/after of a change) under the same
# closed-loop load against the same mock upstream, in alternating rounds so that drift in a
# shared machine's load falls on both alike.
#
# usage: loadtest/cost.sh BEFORE_BIN AFTER_BIN
#   e.g. git worktree add /tmp/before <commit> && cargo build --release --bin shardgate \
#          --manifest-path /tmp/before/Cargo.toml --target-dir /tmp/before/target
#        loadtest/cost.sh /tmp/before/target/release/shardgate target/release/shardgate
#
# Each round runs each binary for DURATION s (default 5) at CONCURRENCY (64) connections with a
# ~1 KB chat request with a virtual key (access log on) to a single-target alias, after a 1 s
# warm-up, and reads the gateway's CPU time (utime + stime) and, where `perf` works, its
# instructions over the measured run. Output:
# one line per run and the medians per binary (CPU µs and instructions per request, req/s).
# ROUNDS (default 5). Pinning as compare.sh: gateway on GATEWAY_CPUS, mock and load on LOAD_CPUS.
# CALLGRIND=1: count instructions with valgrind's callgrind instead (repeatable whatever else
# the machine does; for VMs without hardware counters): each gateway runs under callgrind on the
# epoll driver (valgrind does not know io_uring), instrumentation is switched on only for the
# measured run, and the instructions column is exact; the CPU column is then valgrind's time
# (meaningless, left out). Use a short DURATION (2) and CONCURRENCY (8): valgrind is ~50x slower.
# CALLGRIND_KEEP=DIR keeps each run's profile there (compare with callgrind_annotate).
# LIMITS=1: the "after" binary runs with governance on: the key with rpm, tpm, parallel and a
# 30-day budget (limits that never refuse), the alias with an rpm limit, a priced target, and a
# store file with the spend ledger written. Give the same binary twice to price exactly that.
# LEDGER=off with LIMITS=1: everything but the ledger.
# GUARD=request|both: the "after" alias has PII and secrets guardrails on requests (and answers).
# CACHE=miss|hit: the "after" alias caches answers (see below); give the same binary twice.
# PERF_RECORD=DIR: sample each measured run's gateway with `perf record -e cpu-clock -g` (a
# software clock, so it works without hardware counters) into DIR/perf.NAME.data (`perf report`).
# Only 127.0.0.1 is contacted; every process started here is stopped on exit (by its PID).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCRIPT=cost.sh
# shellcheck source=loadtest/common.sh
. "$ROOT/loadtest/common.sh"

(($# == 2)) || die "usage: loadtest/cost.sh BEFORE_BIN AFTER_BIN"
NAMES=(before after)
BINS=("$(realpath "$1")" "$(realpath "$2")")
for b in "${BINS[@]}"; do [[ -x $b ]] || die "$b is not an executable"; done
DURATION=${DURATION:-5} CONCURRENCY=${CONCURRENCY:-64} ROUNDS=${ROUNDS:-5}
PIDS=() LOADGEN_PID=""
setup_tmp shardgate-cost
raise_nofile 4096
say "building the load generator and mock (release)..."
cargo build --release -p loadtest --bins >&2
BIN="$ROOT/target/release"
pinning_plan
start_mock "$LOAD_CPUS"
PERF=""
CALLGRIND=${CALLGRIND:-}
# perf counts instructions only where the CPU's counters are exposed (often not in a VM).
if [[ -n $CALLGRIND ]]; then
    command -v valgrind >/dev/null || die "CALLGRIND=1 needs valgrind (apt-get install valgrind)"
    say "counting instructions with callgrind (epoll driver)"
elif command -v perf >/dev/null && perf stat -x, -e instructions -- true 2>&1 | grep -qE '^[0-9]+,'; then
    PERF=perf
else
    say "perf cannot count instructions here (no hardware counters): CPU time only"
fi

body="$TMP/body.json"
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"%s"}]}' \
    "$(head -c 950 /dev/zero | tr '\0' x)" >"$body"
gateway_config "$TMP/gw.yaml" 1 false 256
# As users run it: a virtual key on every request and the access log on (to a file).
sed -i "s|access_log: off|access_log: { file: $TMP/access.log }|" "$TMP/gw.yaml"
printf 'keys:\n  - { name: bench, key: { env: COST_KEY }, models: [gpt-4o-mini] }\n' >>"$TMP/gw.yaml"
export COST_KEY=sg-cost-bench-key
cp "$TMP/gw.yaml" "$TMP/gw-before.yaml"
if [[ -n ${LIMITS:-} ]]; then
    sed -i -e "s|models: \[gpt-4o-mini\] }|models: [gpt-4o-mini], rpm_limit: 1000000000, tpm_limit: 1000000000000, max_parallel_requests: 100000, max_budget: 1000000000, budget_duration: 30d }|" \
        -e "s|gpt-4o-mini: { targets: \[ { provider: mock, model: gpt-4o-mini } \] }|gpt-4o-mini: { limits: { rpm: 1000000000 }, targets: [ { provider: mock, model: gpt-4o-mini, price: { input: 0.15, output: 0.6 } } ] }|" \
        "$TMP/gw.yaml"
    printf 'store: { path: %s }\n' "$TMP/store.db" >>"$TMP/gw.yaml"
    # LEDGER=off: the same, without writing the spend ledger (to price the ledger apart).
    [[ ${LEDGER:-on} == on ]] || sed -i "s|pin: false }|pin: false, ledger: off }|" "$TMP/gw.yaml"
    grep -q max_budget "$TMP/gw.yaml" && grep -q 'limits: { rpm' "$TMP/gw.yaml" || die "LIMITS=1: the config did not take the limits"
    say "after: limits, a budget, cost and the spend ledger on"
fi
# CACHE=miss|hit: the "after" alias has the response cache on. miss: a budget of 0 bytes, so
# every request is keyed, looked up, recorded and refused by the store (a miss every time: the
# cost of the cache on an alias whose questions do not repeat); hit: every request after the
# first is answered from the cache.
if [[ -n ${CACHE:-} ]]; then
    sed -i "s|gpt-4o-mini: { targets: \[ { provider: mock, model: gpt-4o-mini } \] }|gpt-4o-mini: { cache: { ttl_s: 3600 }, targets: [ { provider: mock, model: gpt-4o-mini } ] }|" "$TMP/gw.yaml"
    grep -q 'cache: { ttl_s' "$TMP/gw.yaml" || die "CACHE: the config did not take the cache"
    case $CACHE in
        miss) printf 'cache: { max_bytes: 0 }\n' >>"$TMP/gw.yaml" ;;
        hit) ;;
        *) die "CACHE is miss or hit" ;;
    esac
    say "after: the response cache on ($CACHE)"
fi
# GUARD=request|both: the "after" alias runs the PII check (redact) and the secrets check
# (block) on every request, and with `both` on every whole answer too (nothing is found in
# either: the cost of guarding a clean request).
if [[ -n ${GUARD:-} ]]; then
    case $GUARD in
        request) on='[request]' ;;
        both) on='[request, response]' ;;
        *) die "GUARD is request or both" ;;
    esac
    sed -i "s|gpt-4o-mini: { targets: \[ { provider: mock, model: gpt-4o-mini } \] }|gpt-4o-mini: { guardrails: [pii, secrets], targets: [ { provider: mock, model: gpt-4o-mini } ] }|" "$TMP/gw.yaml"
    grep -q 'guardrails: \[pii' "$TMP/gw.yaml" || die "GUARD: the config did not take the guardrails"
    printf 'guardrails:\n  pii: { check: pii, action: redact, on: %s }\n  secrets: { check: secrets, action: block, on: %s }\n' "$on" "$on" >>"$TMP/gw.yaml"
    say "after: PII and secrets guardrails on ($GUARD)"
fi
cp "$TMP/gw.yaml" "$TMP/gw-after.yaml"

# run NAME BIN: one warm-up and one measured run; appends "cpu_us_per_req instr_per_req rps".
run() {
    local name=$1 bin=$2 pid api t0 t1 json reqs instr=""
    local cg_out="$TMP/callgrind.$name"
    cp "$TMP/gw-$name.yaml" "$TMP/gw.yaml"
    if [[ -n $CALLGRIND ]]; then
        rm -f "$cg_out"
        MONOIO_FORCE_LEGACY_DRIVER=1 taskset -c "$GATEWAY_CPUS" valgrind --tool=callgrind \
            --instr-atstart=no --callgrind-out-file="$cg_out" \
            "$bin" serve --config "$TMP/gw.yaml" >"$TMP/$name.out" 2>"$TMP/$name.log" &
    else
        taskset -c "$GATEWAY_CPUS" "$bin" serve --config "$TMP/gw.yaml" >"$TMP/$name.out" 2>"$TMP/$name.log" &
    fi
    pid=$!
    PIDS+=("$pid")
    api=$(wait_for "$TMP/$name.log" 'ready: api=' 60 "$pid") || die "$name did not start"
    [[ $api =~ ready:\ api=([^ ]+) ]] && api=${BASH_REMATCH[1]}
    local load=(taskset -c "$LOAD_CPUS" "$BIN/loadgen" --url "http://$api/v1/chat/completions"
        --concurrency "$CONCURRENCY" --body-file "$body" --json --warmup 0
        --header "authorization: Bearer $COST_KEY")
    "${load[@]}" --duration 1 >/dev/null 2>&1
    [[ -z $CALLGRIND ]] || callgrind_control -i on "$pid" >/dev/null
    t0=$(cpu_ticks "$pid")
    if [[ -n $PERF ]]; then
        perf stat -x, -e instructions -p "$pid" -o "$TMP/perf.$name" &
        local perf_pid=$!
    fi
    if [[ -n ${PERF_RECORD:-} ]]; then
        perf record -q -F 4999 -e cpu-clock -g -p "$pid" -o "$PERF_RECORD/perf.$name.data" 2>/dev/null &
        local rec_pid=$!
    fi
    json=$("${load[@]}" --duration "$DURATION" 2>/dev/null)
    t1=$(cpu_ticks "$pid")
    if [[ -n ${PERF_RECORD:-} ]]; then
        kill -INT "$rec_pid" 2>/dev/null || true
        wait "$rec_pid" 2>/dev/null || true
    fi
    [[ -z $CALLGRIND ]] || callgrind_control -i off "$pid" >/dev/null
    if [[ -n $PERF ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        instr=$(awk -F, '/instructions/ {print $1}' "$TMP/perf.$name" | head -1)
    fi
    stop_pid "$pid"
    if [[ -n $CALLGRIND ]]; then
        # The out file is written when the process exits: its totals are the measured run's.
        for _ in $(seq 100); do [[ -s $cg_out ]] && grep -q '^totals:' "$cg_out" && break; sleep 0.1; done
        instr=$(awk '/^totals:/ {print $2; exit}' "$cg_out")
        # CALLGRIND_KEEP=DIR keeps the profiles, for callgrind_annotate.
        [[ -z ${CALLGRIND_KEEP:-} ]] || cp "$cg_out" "$CALLGRIND_KEEP/callgrind.$name.$(date +%s)"
        t1=$t0
    fi
    reqs=$(jget "$json" requests)
    if ! [[ $reqs =~ ^[0-9]+$ ]] || ((reqs == 0)); then
        tail -5 "$TMP/$name.log" >&2
        die "$name: no requests completed: $json"
    fi
    # Row: name, CPU µs per request, instructions per request ("-" without perf), req/s.
    awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$reqs" -v i="${instr:-}" -v d="$DURATION" -v who="$name" \
        'BEGIN { printf "%-7s %8.2f %10s %9.0f\n", who, t * 1e6 / hz / n,
                 (i ~ /^[0-9]+$/ ? sprintf("%.0f", i / n) : "-"), n / d }' | tee -a "$TMP/rows"
}

say "rounds: $ROUNDS x (before, after), ${DURATION}s each at $CONCURRENCY connections"
printf '%-7s %8s %10s %9s\n' binary "cpu_us" "instr" "req/s"
for ((r = 1; r <= ROUNDS; r++)); do
    # Alternate which goes first, so neither always runs on a warmer machine.
    if ((r % 2)); then order=(0 1); else order=(1 0); fi
    for i in "${order[@]}"; do run "${NAMES[i]}" "${BINS[i]}"; done
done
echo
echo "medians over $ROUNDS rounds (per request: gateway CPU µs, instructions; and req/s):"
for name in "${NAMES[@]}"; do
    awk -v who="$name" '$1 == who { cpu[n] = $2; ins[n] = $3; rps[n] = $4; n++ }
        function med(a, n,   i, j, t) { for (i = 0; i < n; i++) for (j = i + 1; j < n; j++)
            if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }; return a[int(n / 2)] }
        END { printf "%-7s %8s %10s %9s\n", who, med(cpu, n), med(ins, n), med(rps, n) }' \
        "$TMP/rows"
done
