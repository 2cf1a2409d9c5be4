#!/usr/bin/env bash
# Compares shardgate with the mock upstream called directly, nginx as a plain keep-alive reverse
# proxy (when available) and any other local gateways, under identical load from `loadgen`.
#
# usage: loadtest/compare.sh [--with-nginx] [--no-nginx] [--other NAME=URL]...
#
#   --with-nginx      install nginx with apt-get if it is not on PATH (needs root)
#   --no-nginx        skip nginx even if it is installed
#   --other NAME=URL  one more target: a gateway on 127.0.0.1 that routes model gpt-4o-mini to
#                     the mock (fix the mock's port with MOCK_PORT). URL is its chat-completions
#                     endpoint; a bare http://127.0.0.1:PORT gets /v1/chat/completions appended.
#
# Environment: DURATION (s, default 10), WARMUP (1), RATE (2000 req/s), STREAM_RATE (50 streams/s),
# CONNECTIONS (64), STREAM_CONNECTIONS (256), LATENCY_MS (0: instant upstream), MOCK_PORT (0: any
# free port), GATEWAY_CPUS / LOAD_CPUS (taskset lists; default 1 and 0 on a machine with >= 2 CPUs).
#
# Results: markdown tables on stdout, and loadtest/results/<date>-<commit>.{md,json}.
# Only 127.0.0.1 is contacted; every process started here is stopped on exit (by its PID).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
RATE=${RATE:-2000}
STREAM_RATE=${STREAM_RATE:-50}
CONNECTIONS=${CONNECTIONS:-64}
STREAM_CONNECTIONS=${STREAM_CONNECTIONS:-256}
LATENCY_MS=${LATENCY_MS:-0}
MOCK_PORT=${MOCK_PORT:-0}

say() { printf '%s\n' "$*" >&2; }
die() { say "compare.sh: $*"; exit 1; }

WITH_NGINX=auto
OTHER_NAMES=()
OTHER_URLS=()
while (($#)); do
    case $1 in
        --with-nginx) WITH_NGINX=install ;;
        --no-nginx) WITH_NGINX=no ;;
        --other)
            (($# >= 2)) || die "--other needs NAME=URL"
            spec=$2
            shift
            [[ $spec =~ ^([A-Za-z0-9_.-]+)=(http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?(/.*)?)$ ]] ||
                die "--other $spec: expected NAME=http://127.0.0.1:PORT[/path] (loopback only)"
            url=${BASH_REMATCH[2]}
            [[ -n ${BASH_REMATCH[5]} && ${BASH_REMATCH[5]} != / ]] || url="${url%/}/v1/chat/completions"
            OTHER_NAMES+=("${BASH_REMATCH[1]}")
            OTHER_URLS+=("$url")
            ;;
        -h | --help)
            sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument $1 (try --help)" ;;
    esac
    shift
done

for v in DURATION WARMUP RATE STREAM_RATE; do
    [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v=${!v} is not a number"
done
for v in CONNECTIONS STREAM_CONNECTIONS LATENCY_MS MOCK_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not an integer"
done
command -v taskset >/dev/null || die "taskset (util-linux) is needed"

# ---------------------------------------------------------------- build
say "building (release)..."
cargo build --release -p loadtest --bins
cargo build --release -p shardgate --bin shardgate
BIN="$ROOT/target/release"

# ---------------------------------------------------------------- pinning plan
NPROC=$(nproc)
if ((NPROC >= 2)); then def_gw=1 def_load=0; else def_gw=0 def_load=0; fi
GATEWAY_CPUS=${GATEWAY_CPUS:-$def_gw}
LOAD_CPUS=${LOAD_CPUS:-$def_load}
LOAD_CPU_FIRST=${LOAD_CPUS%%[,-]*}
say "pinning plan (nproc=$NPROC):"
say "  gateway under test (shardgate, nginx): CPU $GATEWAY_CPUS"
say "  loadgen + mock upstream:               CPU $LOAD_CPUS"
((NPROC >= 2)) || say "  warning: one CPU only, so the gateway shares it with the load generator"

# ---------------------------------------------------------------- processes and cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shardgate-compare.XXXXXX")
PIDS=()
LOADGEN_PID=""
cleanup() {
    local pid i
    [[ -z $LOADGEN_PID ]] || PIDS=("$LOADGEN_PID" ${PIDS[@]+"${PIDS[@]}"})
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -0 "$pid" 2>/dev/null && { say "pid $pid ignored SIGTERM for 5 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
# Resident memory (KiB) of a process tree.
rss_kb() {
    local total=0 pid kb
    for pid in $(proc_tree "$1"); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- mock upstream
taskset -c "$LOAD_CPUS" "$BIN/mock-upstream" --listen "127.0.0.1:$MOCK_PORT" --threads 1 \
    >"$TMP/mock.out" 2>"$TMP/mock.err" &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
line=$(wait_for "$TMP/mock.out" '^listening on ' 10 "$MOCK_PID") || die "mock upstream did not start"
MOCK_ADDR=${line#listening on }
say "mock upstream: pid $MOCK_PID on $MOCK_ADDR"

# ---------------------------------------------------------------- shardgate
cat >"$TMP/gateway.yaml" <<EOF
server: { listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, shards: 1, access_log: off, pin: false }
providers:
  mock: { protocol: openai, base_url: http://$MOCK_ADDR/v1 }
models:
  gpt-4o-mini: { targets: [ { provider: mock, model: gpt-4o-mini } ] }
EOF
taskset -c "$GATEWAY_CPUS" "$BIN/shardgate" serve --config "$TMP/gateway.yaml" \
    >"$TMP/gateway.out" 2>"$TMP/gateway.log" &
GW_PID=$!
PIDS+=("$GW_PID")
line=$(wait_for "$TMP/gateway.log" 'ready: api=' 20 "$GW_PID") || die "shardgate did not start"
[[ $line =~ ready:\ api=([^ ]+) ]] || die "cannot read the API address from: $line"
GW_API=${BASH_REMATCH[1]}
say "shardgate: pid $GW_PID on $GW_API"

# ---------------------------------------------------------------- nginx (optional)
NGINX_BIN=""
NGINX_NOTE=""
find_nginx() { NGINX_BIN=$(command -v nginx || true); [[ -n $NGINX_BIN || ! -x /usr/sbin/nginx ]] || NGINX_BIN=/usr/sbin/nginx; }
if [[ $WITH_NGINX != no ]]; then
    find_nginx
    if [[ -z $NGINX_BIN && $WITH_NGINX == install ]]; then
        if ((EUID == 0)) && command -v apt-get >/dev/null; then
            say "installing nginx with apt-get (log: $TMP/apt.log)..."
            timeout 600 apt-get install -y nginx >"$TMP/apt.log" 2>&1 ||
                { timeout 600 apt-get update >>"$TMP/apt.log" 2>&1 && timeout 600 apt-get install -y nginx >>"$TMP/apt.log" 2>&1; } ||
                say "apt-get install nginx failed: $(tail -n 3 "$TMP/apt.log")"
            find_nginx
        else
            say "cannot install nginx (needs root and apt-get)"
        fi
    fi
fi
NGINX_PID=""
if [[ -n $NGINX_BIN ]]; then
    NGINX_PORT=$(free_port) || die "no free port for nginx"
    NGX="$TMP/nginx"
    mkdir -p "$NGX"
    chmod 711 "$TMP" && chmod 755 "$NGX" # the worker runs as an unprivileged user when we are root
    cat >"$NGX/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $NGX/client_body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream mock {
        server $MOCK_ADDR;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
EOF
    if "$NGINX_BIN" -t -q -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" 2>"$TMP/nginx-test.log"; then
        taskset -c "$GATEWAY_CPUS" "$NGINX_BIN" -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" \
            >"$NGX/out.log" 2>&1 &
        NGINX_PID=$!
        PIDS+=("$NGINX_PID")
        for ((i = 0; i < 100; i++)); do port_open "$NGINX_PORT" && break; sleep 0.05; done
        if port_open "$NGINX_PORT"; then
            NGINX_NOTE="$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')"
            say "nginx: pid $NGINX_PID ($NGINX_NOTE) on 127.0.0.1:$NGINX_PORT"
        else
            say "nginx did not start: $(cat "$NGX/error.log" "$NGX/out.log" 2>/dev/null | tail -n 3)"
            NGINX_PID=""
        fi
    else
        say "nginx rejected its config: $(cat "$TMP/nginx-test.log")"
    fi
elif [[ $WITH_NGINX == no ]]; then
    say "nginx: skipped (--no-nginx)"
else
    say "nginx: not available, skipped (--with-nginx installs it with apt-get)"
fi

# ---------------------------------------------------------------- targets and bodies
T_NAMES=() T_URLS=() T_PIDS=() T_RSS_IDLE=()
add_target() { T_NAMES+=("$1"); T_URLS+=("$2"); T_PIDS+=("$3"); T_RSS_IDLE+=("${3:+$(rss_kb "$3")}"); }
add_target direct "http://$MOCK_ADDR/v1/chat/completions" ""
[[ -z $NGINX_PID ]] || add_target nginx "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$NGINX_PID"
add_target shardgate "http://$GW_API/v1/chat/completions" "$GW_PID"
for i in ${OTHER_NAMES[@]+"${!OTHER_NAMES[@]}"}; do add_target "${OTHER_NAMES[i]}" "${OTHER_URLS[i]}" ""; done

FILLER=$(printf 'The quick brown fox jumps over the lazy dog. %.0s' {1..20})
MOCK_LAT=""
((LATENCY_MS == 0)) || MOCK_LAT="\"latency_ms\":$LATENCY_MS"
CHAT_MOCK=""
[[ -z $MOCK_LAT ]] || CHAT_MOCK=",\"mock\":{$MOCK_LAT}"
printf '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"%s"}],"max_tokens":64,"temperature":0.2%s}' \
    "$FILLER" "$CHAT_MOCK" >"$TMP/chat.json"
# Usage is asked for explicitly: gateways that count tokens force it on, and the mock then sends one
# more event (20 ms later), so every target gets the same upstream stream.
printf '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"%s"}],"mock":{"chunks":64,"interval_ms":20%s}}' \
    "$FILLER" "${MOCK_LAT:+,$MOCK_LAT}" >"$TMP/stream.json"
CHAT_BYTES=$(wc -c <"$TMP/chat.json")

RUN_LIMIT=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { printf "%d", w + d + 30 }')
# loadgen NAME URL BODY ARGS...: sets J to its JSON line (empty on failure). It runs in the
# background so that a signal interrupts the `wait` and the trap stops it at once.
loadgen() {
    local name=$1 url=$2 body=$3
    shift 3
    timeout "$RUN_LIMIT" taskset -c "$LOAD_CPUS" "$BIN/loadgen" --url "$url" --body-file "$body" \
        --label "$name" --json --cpus "$LOAD_CPU_FIRST" "$@" >"$TMP/loadgen.json" 2>"$TMP/loadgen.err" &
    LOADGEN_PID=$!
    if wait "$LOADGEN_PID"; then
        J=$(<"$TMP/loadgen.json")
    else
        say "loadgen against $name failed: $(tail -n 3 "$TMP/loadgen.err")"
        J=""
    fi
    LOADGEN_PID=""
}

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
# Integer difference "a - b" with a sign, or "-".
delta() { [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && printf '%+d' $(($1 - $2)) || echo "-"; }
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

say "probing targets..."
for i in "${!T_NAMES[@]}"; do
    loadgen "${T_NAMES[i]}" "${T_URLS[i]}" "$TMP/chat.json" --concurrency 1 --duration 0.3 --warmup 0
    j=$J
    if [[ $(jget "$j" requests) == "-" || $(jget "$j" requests) == 0 || $(jget "$j" errors) != 0 ]]; then
        say "  warning: ${T_NAMES[i]} (${T_URLS[i]}) does not answer cleanly: $j"
    else
        say "  ${T_NAMES[i]}: ok"
    fi
done

# ---------------------------------------------------------------- report header
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=false
[[ -z $(git status --porcelain 2>/dev/null) ]] || DIRTY=true
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
KERNEL=$(uname -r)
MD="$TMP/report.md"
{
    echo "# shardgate comparison, $DATE"
    echo
    echo "- commit: $COMMIT$([[ $DIRTY == true ]] && echo ' (with uncommitted changes)')"
    echo "- machine: nproc $NPROC, kernel $KERNEL, CPU ${CPU_MODEL:-unknown}"
    echo "- pinning: gateway CPU $GATEWAY_CPUS; loadgen + mock upstream CPU $LOAD_CPUS"
    echo "- load: $DURATION s measured after $WARMUP s warm-up per run; chat body $CHAT_BYTES B;" \
        "upstream latency $LATENCY_MS ms; open loop latency is measured from each request's scheduled time"
    echo "- targets: direct = mock upstream without a proxy${NGINX_PID:+; nginx = $NGINX_NOTE, 1 worker, keep-alive proxy}; shardgate = 1 shard${OTHER_NAMES[*]+; others: ${OTHER_NAMES[*]}}"
    echo "- CPU µs/req = (utime+stime of the target's processes over the run, ${CLK_TCK} Hz ticks) / responses incl. warm-up; RSS in KiB"
} >"$MD"
cat "$MD"
RUNS_JSON=""

# ---------------------------------------------------------------- scenarios
S_NAMES=("chat, open loop $RATE req/s, $CONNECTIONS connections" "chat, closed loop, 1 connection"
    "chat, closed loop, 64 connections" "stream (64 chunks 20 ms apart, with usage), open loop $STREAM_RATE streams/s")
S_IDS=("chat-open" "chat-closed-1" "chat-closed-64" "stream-open")
S_BODIES=("$TMP/chat.json" "$TMP/chat.json" "$TMP/chat.json" "$TMP/stream.json")
S_ARGS=("--rate $RATE --connections $CONNECTIONS" "--concurrency 1" "--concurrency 64"
    "--rate $STREAM_RATE --connections $STREAM_CONNECTIONS --stream")

for s in "${!S_NAMES[@]}"; do
    stream=false
    [[ ${S_ARGS[s]} == *--stream* ]] && stream=true
    say "scenario: ${S_NAMES[s]}"
    {
        echo
        echo "## ${S_NAMES[s]}"
        echo
        if $stream; then
            echo "| target | streams/s | p50 µs | p90 | p99 | p99.9 | +p50 | +p99 | TTFB p50 | TTFB p99 | +TTFB p50 | gap p50 | gap p99 | CPU µs/req | RSS after | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        else
            echo "| target | req/s | p50 µs | p90 | p99 | p99.9 | +p50 | +p99 | CPU µs/req | RSS after | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        fi
    } >>"$MD.part"
    base_p50="" base_p99="" base_ttfb=""
    for i in "${!T_NAMES[@]}"; do
        name=${T_NAMES[i]} pid=${T_PIDS[i]}
        before=""
        [[ -z $pid ]] || before=$(cpu_ticks "$pid")
        # shellcheck disable=SC2086 # S_ARGS holds several arguments
        loadgen "$name" "${T_URLS[i]}" "${S_BODIES[s]}" ${S_ARGS[s]} --duration "$DURATION" --warmup "$WARMUP"
        j=$J
        cpu="-" rss="-"
        if [[ -n $pid ]]; then
            after=$(cpu_ticks "$pid")
            rss=$(rss_kb "$pid")
            cpu=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v n="$(jget "$j" responses_total)" \
                'BEGIN { if (n + 0 > 0) printf "%.1f", d * 1e6 / hz / n; else print "-" }')
        fi
        p50=$(jget "$j" latency_us.p50) p99=$(jget "$j" latency_us.p99)
        ttfb=$(jget "$j" ttfb_us.p50)
        if [[ $name == direct ]]; then
            base_p50=$p50 base_p99=$p99 base_ttfb=$ttfb
            d50="-" d99="-" dttfb="-"
        else
            d50=$(delta "$p50" "$base_p50") d99=$(delta "$p99" "$base_p99") dttfb=$(delta "$ttfb" "$base_ttfb")
        fi
        row="| $name | $(jget "$j" rps) | $p50 | $(jget "$j" latency_us.p90) | $p99 | $(jget "$j" latency_us.p999) | $d50 | $d99"
        if $stream; then
            row+=" | $ttfb | $(jget "$j" ttfb_us.p99) | $dttfb | $(jget "$j" event_gap_us.p50) | $(jget "$j" event_gap_us.p99)"
        fi
        row+=" | $cpu | $rss | $(jget "$j" errors) |"
        echo "$row" >>"$MD.part"
        [[ -z $RUNS_JSON ]] || RUNS_JSON+=","
        RUNS_JSON+="{\"scenario\":$(json_str "${S_IDS[s]}"),\"target\":$(json_str "$name"),\"url\":$(json_str "${T_URLS[i]}"),"
        RUNS_JSON+="\"cpu_us_per_request\":$([[ $cpu == - ]] && echo null || echo "$cpu"),"
        RUNS_JSON+="\"rss_kb_idle\":${T_RSS_IDLE[i]:-null},\"rss_kb_after\":$([[ $rss == - ]] && echo null || echo "$rss"),"
        RUNS_JSON+="\"loadgen\":${j:-null}}"
    done
    tee -a "$MD" <"$MD.part"
    rm -f "$MD.part"
done

{
    echo
    echo "## Memory (RSS, KiB)"
    echo
    echo "| target | idle, before load | after all runs |"
    echo "|---|---:|---:|"
    for i in "${!T_NAMES[@]}"; do
        [[ -n ${T_PIDS[i]} ]] || continue
        echo "| ${T_NAMES[i]} | ${T_RSS_IDLE[i]} | $(rss_kb "${T_PIDS[i]}") |"
    done
} | tee -a "$MD"

# ---------------------------------------------------------------- results files
OUT="$ROOT/loadtest/results"
mkdir -p "$OUT"
STAMP="$(date -u +%Y-%m-%d-%H%M%S)-$COMMIT"
cp "$MD" "$OUT/$STAMP.md"
{
    printf '{"date":%s,"commit":%s,"dirty":%s,' "$(json_str "$DATE")" "$(json_str "$COMMIT")" "$DIRTY"
    printf '"machine":{"nproc":%s,"kernel":%s,"cpu":%s},' "$NPROC" "$(json_str "$KERNEL")" "$(json_str "${CPU_MODEL:-unknown}")"
    printf '"config":{"duration_s":%s,"warmup_s":%s,"rate":%s,"stream_rate":%s,"connections":%s,' \
        "$DURATION" "$WARMUP" "$RATE" "$STREAM_RATE" "$CONNECTIONS"
    printf '"stream_connections":%s,"latency_ms":%s,"chat_body_bytes":%s,"gateway_cpus":%s,"load_cpus":%s,"nginx":%s},' \
        "$STREAM_CONNECTIONS" "$LATENCY_MS" "$CHAT_BYTES" "$(json_str "$GATEWAY_CPUS")" "$(json_str "$LOAD_CPUS")" \
        "$(if [[ -n $NGINX_PID ]]; then json_str "$NGINX_NOTE"; else echo null; fi)"
    printf '"runs":[%s]}\n' "$RUNS_JSON"
} >"$OUT/$STAMP.json"
say "results: $OUT/$STAMP.md and $OUT/$STAMP.json"
