# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are read by the scripts that source this
# Helpers shared by loadtest/compare.sh and loadtest/soak.sh (sourced, not run).
#
# The caller sets ROOT (the repository) and SCRIPT (its name, for messages) first and runs with
# `set -euo pipefail`. Every process started through here is recorded in PIDS and stopped on
# exit, by its PID; nothing else is touched. Only 127.0.0.1 is contacted.

say() { printf '%s\n' "$*" >&2; }
die() { say "$SCRIPT: $*"; exit 1; }

# ---------------------------------------------------------------- limits and build
# raise_nofile NEED: the open-file limit of this shell (inherited by everything it starts) up to
# its hard limit, and the hard limit to NEED where that is allowed (root). Sets FD_LIMIT to the
# soft limit. (Not in a $(...) subshell: the limit must change in this shell.)
raise_nofile() {
    local need=$1 hard
    hard=$(ulimit -Hn)
    if [[ $hard != unlimited ]] && ((hard < need)); then
        ulimit -Hn "$need" 2>/dev/null || true
        hard=$(ulimit -Hn)
    fi
    ulimit -Sn "$hard" 2>/dev/null || true
    FD_LIMIT=$(ulimit -Sn)
}

build_release() {
    say "building (release)..."
    cargo build --release -p loadtest --bins
    cargo build --release -p shardgate --bin shardgate
    BIN="$ROOT/target/release"
}

# pinning_plan: GATEWAY_CPUS and LOAD_CPUS (taskset lists; defaults: gateway on CPU 1, load
# generator and mock on CPU 0 when there are two CPUs or more), LOAD_CPU_FIRST and ALL_CPUS.
pinning_plan() {
    NPROC=$(nproc)
    local def_gw=0
    ((NPROC < 2)) || def_gw=1
    GATEWAY_CPUS=${GATEWAY_CPUS:-$def_gw}
    LOAD_CPUS=${LOAD_CPUS:-0}
    LOAD_CPU_FIRST=${LOAD_CPUS%%[,-]*}
    ALL_CPUS="0-$((NPROC - 1))"
}

# machine_info: DATE, STAMP, COMMIT, DIRTY, CPU_MODEL, KERNEL for the results files.
machine_info() {
    DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    DIRTY=false
    [[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] || DIRTY=true
    CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    KERNEL=$(uname -r)
    STAMP="$(date -u +%Y-%m-%d-%H%M%S)-$COMMIT"
}

# ---------------------------------------------------------------- processes and cleanup
PIDS=()
LOADGEN_PID=""
# stop_pid PID: SIGTERM, then SIGKILL after 5 s; reaps it and forgets it.
stop_pid() {
    local pid=$1 i rest=()
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && { say "pid $pid ignored SIGTERM for 5 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
    wait "$pid" 2>/dev/null || true
    for i in ${PIDS[@]+"${PIDS[@]}"}; do [[ $i == "$pid" ]] || rest+=("$i"); done
    PIDS=(${rest[@]+"${rest[@]}"})
}
cleanup() {
    local pid i
    [[ -z $LOADGEN_PID ]] || PIDS=("$LOADGEN_PID" ${PIDS[@]+"${PIDS[@]}"})
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -0 "$pid" 2>/dev/null && { say "pid $pid ignored SIGTERM for 5 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
        wait "$pid" 2>/dev/null || true
    done
    [[ -z ${TMP:-} ]] || rm -rf "$TMP"
}
# setup_tmp PREFIX: TMP, and the traps that stop everything on exit.
setup_tmp() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# wait_for FILE REGEX SECONDS PID: prints the first line of FILE matching REGEX.
wait_for() {
    local file=$1 re=$2 secs=$3 pid=$4 i line
    for ((i = 0; i < secs * 20; i++)); do
        line=$(grep -E -m1 -- "$re" "$file" 2>/dev/null || true)
        [[ -n $line ]] && { printf '%s\n' "$line"; return 0; }
        kill -0 "$pid" 2>/dev/null || { say "process $pid exited:"; cat "$file" >&2 || true; return 1; }
        sleep 0.05
    done
    say "timed out waiting for /$re/ in $file"
    return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral range
        port_open "$p" || { echo "$p"; return 0; }
    done
    return 1
}

# ---------------------------------------------------------------- measuring processes
# The process and its children (nginx: master and workers).
proc_tree() { echo "$1"; cat "/proc/$1/task/"*/children 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+$' || true; }
# CPU time (utime + stime, clock ticks) of a process tree.
cpu_ticks() {
    local total=0 pid stat f
    for pid in $(proc_tree "$1"); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        read -r -a f <<<"${stat##*) }"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
# status_kb PID FIELD: a /proc/PID/status field (VmRSS, VmHWM) summed over the process tree, KiB.
status_kb() {
    local total=0 pid kb
    for pid in $(proc_tree "$1"); do
        kb=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}
# Resident memory (KiB) of a process tree.
rss_kb() { status_kb "$1" VmRSS; }
# Peak RSS: rss_peak_reset PID starts a new peak (clear_refs 5 resets VmHWM; Linux >= 4.0)
# and fails if it cannot; rss_peak_kb PID is the peak since (the sum of the processes' peaks).
rss_peak_reset() {
    local pid
    for pid in $(proc_tree "$1"); do
        { echo 5 >"/proc/$pid/clear_refs"; } 2>/dev/null || return 1
    done
}
rss_peak_kb() { status_kb "$1" VmHWM; }
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- mock and gateway
# start_mock CPUS: the mock upstream pinned to CPUS; sets MOCK_PID and MOCK_ADDR.
start_mock() {
    taskset -c "$1" "$BIN/mock-upstream" --listen "127.0.0.1:${MOCK_PORT:-0}" --threads 1 \
        >"$TMP/mock.out" 2>"$TMP/mock.err" &
    MOCK_PID=$!
    PIDS+=("$MOCK_PID")
    local line
    line=$(wait_for "$TMP/mock.out" '^listening on ' 10 "$MOCK_PID") || die "mock upstream did not start"
    MOCK_ADDR=${line#listening on }
    say "mock upstream: pid $MOCK_PID on $MOCK_ADDR"
}

# gateway_config FILE SHARDS PIN POOL: a shardgate config routing gpt-4o-mini to the mock, with
# room for POOL idle upstream connections per shard.
gateway_config() {
    cat >"$1" <<EOF
server: { listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, shards: $2, access_log: off, pin: $3 }
providers:
  mock: { protocol: openai, base_url: http://$MOCK_ADDR/v1, pool: { max_idle: $4 } }
models:
  gpt-4o-mini: { targets: [ { provider: mock, model: gpt-4o-mini } ] }
EOF
}

# start_gateway NAME CONFIG CPUS: shardgate on CPUS; sets GW_STARTED_PID and GW_STARTED_API.
start_gateway() {
    local name=$1 line
    taskset -c "$3" "$BIN/shardgate" serve --config "$2" >"$TMP/$name.out" 2>"$TMP/$name.log" &
    GW_STARTED_PID=$!
    PIDS+=("$GW_STARTED_PID")
    line=$(wait_for "$TMP/$name.log" 'ready: api=' 20 "$GW_STARTED_PID") || die "$name did not start"
    [[ $line =~ ready:\ api=([^ ]+) ]] || die "cannot read the API address from: $line"
    GW_STARTED_API=${BASH_REMATCH[1]}
}

# ---------------------------------------------------------------- loadgen output
# jget JSON KEY: a number from loadgen's JSON ("latency_us.p50", "requests"), or "-".
jget() {
    local json=$1 key=$2 re
    if [[ $key == *.* ]]; then
        re="\"${key%%.*}\":\\{([^}]*)\\}"
        [[ $json =~ $re ]] || { echo "-"; return; }
        json=${BASH_REMATCH[1]}
        key=${key#*.}
    fi
    re="\"$key\":(-?[0-9][0-9.eE+-]*)"
    if [[ $json =~ $re ]]; then echo "${BASH_REMATCH[1]}"; else echo "-"; fi
}
# jstr JSON KEY: a string from loadgen's JSON (escapes left as they are), or "-".
jstr() {
    local re='"'"$2"'":"(([^"\\]|\\.)*)"'
    if [[ $1 =~ $re ]]; then echo "${BASH_REMATCH[1]}"; else echo "-"; fi
}
# Integer difference "a - b" with a sign, or "-".
delta() { [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && printf '%+d' $(($1 - $2)) || echo "-"; }
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
# A number for JSON, or null for "-" and "".
json_num() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]] && echo "$1" || echo null; }
