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
# Scenarios (SCENARIOS=a,b,...; default all, run in this order):
#   open       chat, open loop at RATE req/s over CONNECTIONS connections
#   one        chat, closed loop, 1 connection
#   closed     chat, closed loop, 64 connections
#   stream     streams (role chunk + 64 deltas 20 ms apart + usage + [DONE]), open loop STREAM_RATE/s
#   shards     closed loop, 64 connections: shardgate --shards 1 pinned to one core, then
#              --shards 2 on all cores with the load generator and mock unpinned; req/s ratio
#   streams2k  STREAMS concurrent streams (closed loop, starts spread over one stream's length)
#   idle       open loop at RATE req/s while IDLE_CONNECTIONS idle keep-alive connections are held
#              (each asked GET /v1/models before and after); peak RSS with them held
# e.g. DURATION=2 SCENARIOS=idle loadtest/compare.sh
#
# Environment: DURATION (s, default 10), WARMUP (1), RATE (2000 req/s), STREAM_RATE (50 streams/s),
# STREAM_SAMPLES (2000: the stream scenario runs at least this many streams/STREAM_RATE seconds,
# so that its TTFB p99 rests on ~20 streams rather than on the 2 or 3 slowest),
# CONNECTIONS (64), STREAM_CONNECTIONS (256), IDLE_CONNECTIONS (10000), STREAMS (2000),
# LATENCY_MS (0: instant upstream), MOCK_PORT (0: any free port), GATEWAY_CPUS / LOAD_CPUS
# (taskset lists; default 1 and 0 on a machine with >= 2 CPUs).
#
# Results: markdown tables on stdout, and loadtest/results/<date>-<commit>.{md,json}.
# Only 127.0.0.1 is contacted; every process started here is stopped on exit (by its PID).
# The open-file limit is raised to the hard limit (and the hard limit too when run as root).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCRIPT=compare.sh
# shellcheck source=loadtest/common.sh
. "$ROOT/loadtest/common.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
RATE=${RATE:-2000}
STREAM_RATE=${STREAM_RATE:-50}
STREAM_SAMPLES=${STREAM_SAMPLES:-2000}
CONNECTIONS=${CONNECTIONS:-64}
STREAM_CONNECTIONS=${STREAM_CONNECTIONS:-256}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
STREAMS=${STREAMS:-2000}
LATENCY_MS=${LATENCY_MS:-0}
MOCK_PORT=${MOCK_PORT:-0}
SCENARIOS=${SCENARIOS:-all}
ALL_SCENARIOS=open,one,closed,stream,shards,streams2k,idle
# One stream of the streaming scenarios lasts about 66 events x 20 ms: the 2,000 streams start
# spread over that long, so they tick out of step, and the warm-up covers the spread.
STREAM_SPREAD=1.3

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
            awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
            exit 0
            ;;
        *) die "unknown argument $1 (try --help)" ;;
    esac
    shift
done

for v in DURATION WARMUP RATE STREAM_RATE; do
    [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v=${!v} is not a number"
done
for v in CONNECTIONS STREAM_CONNECTIONS IDLE_CONNECTIONS STREAMS LATENCY_MS MOCK_PORT STREAM_SAMPLES; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not an integer"
done
STREAM_DURATION=$(awk -v d="$DURATION" -v n="$STREAM_SAMPLES" -v r="$STREAM_RATE" \
    'BEGIN { s = r > 0 ? n / r : d; s = s > d ? s : d; printf "%d", (s == int(s)) ? s : int(s) + 1 }')
((STREAMS > 0)) || die "STREAMS must be at least 1"
[[ $SCENARIOS != all ]] || SCENARIOS=$ALL_SCENARIOS
for s in ${SCENARIOS//,/ }; do
    [[ ,$ALL_SCENARIOS, == *,"$s",* ]] || die "SCENARIOS: unknown scenario '$s' (known: $ALL_SCENARIOS)"
done
want() { [[ ,$SCENARIOS, == *,"$1",* ]]; }
# Scenarios that run against every target (all but `shards`).
TARGET_SCENARIOS=false
for s in open one closed stream idle streams2k; do want "$s" && TARGET_SCENARIOS=true; done
command -v taskset >/dev/null || die "taskset (util-linux) is needed"

# Sockets per process: loadgen holds IDLE_CONNECTIONS (or STREAMS) plus its load; a proxy as many
# client connections and, for streams, as many upstream ones again.
FD_NEED=$((IDLE_CONNECTIONS > 2 * STREAMS ? IDLE_CONNECTIONS : 2 * STREAMS))
FD_NEED=$((FD_NEED + 4096))
raise_nofile "$FD_NEED"
[[ $FD_LIMIT == unlimited ]] || ((FD_LIMIT >= FD_NEED)) ||
    say "warning: open-file limit $FD_LIMIT is below the ~$FD_NEED the idle and streams2k scenarios need"

build_release
pinning_plan
say "pinning plan (nproc=$NPROC):"
say "  gateway under test (shardgate, nginx): CPU $GATEWAY_CPUS"
say "  loadgen + mock upstream:               CPU $LOAD_CPUS"
want shards && say "  shards scenario, 2 shards:             shardgate, loadgen and mock on CPUs $ALL_CPUS"
((NPROC >= 2)) || say "  warning: one CPU only, so the gateway shares it with the load generator"
say "scenarios: $SCENARIOS; open files: $FD_LIMIT"

setup_tmp shardgate-compare

# ---------------------------------------------------------------- mock upstream and shardgate
start_mock "$LOAD_CPUS"
# Idle upstream connections kept per shard: enough for every stream of `streams2k` to return
# its connection (nginx's upstream `keepalive` is raised likewise for that scenario).
POOL_IDLE=$((STREAMS > 256 ? STREAMS : 256))
gateway_config "$TMP/gateway.yaml" 1 false "$POOL_IDLE"
start_gateway gateway "$TMP/gateway.yaml" "$GATEWAY_CPUS"
GW_PID=$GW_STARTED_PID GW_API=$GW_STARTED_API
GW_RSS_IDLE=$(rss_kb "$GW_PID")
say "shardgate: pid $GW_PID on $GW_API"

# ---------------------------------------------------------------- nginx (optional)
NGINX_BIN=""
NGINX_NOTE=""
find_nginx() { NGINX_BIN=$(command -v nginx || true); [[ -n $NGINX_BIN || ! -x /usr/sbin/nginx ]] || NGINX_BIN=/usr/sbin/nginx; }
if ! $TARGET_SCENARIOS; then
    WITH_NGINX=no
elif [[ $WITH_NGINX != no ]]; then
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
# nginx_conf WORKER_CONNECTIONS UPSTREAM_KEEPALIVE: writes $NGX/nginx.conf.
nginx_conf() {
    local nofile=$(($1 + 1024))
    [[ $FD_LIMIT == unlimited ]] || ((nofile <= FD_LIMIT)) || nofile=$FD_LIMIT
    cat >"$NGX/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $nofile;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections $1; }
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
        keepalive $2;
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
}
NGINX_PID=""
NGINX_BIG=false
if [[ -n $NGINX_BIN ]]; then
    NGINX_PORT=$(free_port) || die "no free port for nginx"
    NGX="$TMP/nginx"
    mkdir -p "$NGX"
    chmod 711 "$TMP" && chmod 755 "$NGX" # the worker runs as an unprivileged user when we are root
    nginx_conf 4096 64
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
    $TARGET_SCENARIOS && say "nginx: skipped (--no-nginx)"
else
    say "nginx: not available, skipped (--with-nginx installs it with apt-get)"
fi

# nginx_fresh: before the idle and streams2k scenarios, room for their connections and a new
# worker process (so its peak RSS is its own). The classic scenarios keep worker_connections 4096
# (a bigger table costs the worker ~0.4 KiB of RSS per slot whether used or not); nginx reloads
# (SIGHUP) and its new worker takes over.
nginx_fresh() {
    [[ -n $NGINX_PID ]] || return 0
    local wc old i now p alive
    # Client connections, plus the upstream ones it keeps (up to STREAMS after streams2k): a
    # worker short of connections closes idle keep-alive ones to make room.
    wc=$((IDLE_CONNECTIONS + CONNECTIONS + STREAMS + 1024))
    ((wc >= 2 * STREAMS + 1024)) || wc=$((2 * STREAMS + 1024))
    ((wc >= 4096)) || wc=4096
    old=$(proc_tree "$NGINX_PID" | tail -n +2)
    nginx_conf "$wc" "$((STREAMS > 64 ? STREAMS : 64))"
    kill -HUP "$NGINX_PID"
    # Done when the old workers have gone and a new one is there.
    for ((i = 0; i < 200; i++)); do
        sleep 0.05
        alive=false
        for p in $old; do kill -0 "$p" 2>/dev/null && alive=true; done
        now=$(proc_tree "$NGINX_PID" | tail -n +2 | tr '\n' ' ')
        [[ $alive == true || -z $now ]] || break
    done
    [[ $alive == false ]] || say "nginx: an old worker is still running after the reload"
    [[ $NGINX_BIG == true ]] || NGINX_NOTE+=" (worker_connections $wc for idle/streams2k)"
    NGINX_BIG=true
    say "nginx: reloaded with worker_connections $wc, upstream keepalive $((STREAMS > 64 ? STREAMS : 64)) (workers: ${now:-?})"
}

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

STREAMS_WARMUP=$(awk -v w="$WARMUP" -v s="$STREAM_SPREAD" 'BEGIN { m = s + 0.7; print (w > m ? w : m) }')
RUN_LIMIT=$(awk -v w="$STREAMS_WARMUP" -v d="$DURATION" 'BEGIN { printf "%d", w + d + 60 }')
# Where loadgen runs: pinned with the mock (LOAD_CPUS), or (shards scenario) anywhere.
LG_CPUS=$LOAD_CPUS
LG_PIN=(--cpus "$LOAD_CPU_FIRST")
# loadgen NAME URL BODY ARGS...: sets J to its JSON line (empty on failure) and LG_WALL to its
# wall time in seconds. It runs in the background so that a signal interrupts the `wait` and the
# trap stops it at once.
loadgen() {
    local name=$1 url=$2 body=$3 t0
    shift 3
    t0=$EPOCHREALTIME
    timeout "$RUN_LIMIT" taskset -c "$LG_CPUS" "$BIN/loadgen" --url "$url" --body-file "$body" \
        --label "$name" --json ${LG_PIN[@]+"${LG_PIN[@]}"} "$@" >"$TMP/loadgen.json" 2>"$TMP/loadgen.err" &
    LOADGEN_PID=$!
    if wait "$LOADGEN_PID"; then
        J=$(<"$TMP/loadgen.json")
    else
        say "loadgen against $name failed: $(tail -n 3 "$TMP/loadgen.err")"
        J=""
    fi
    LOADGEN_PID=""
    LG_WALL=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
}

if $TARGET_SCENARIOS; then
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
fi

# ---------------------------------------------------------------- report header
machine_info
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
    echo "- CPU µs/req = (utime+stime of the target's processes over the run, ${CLK_TCK} Hz ticks) / responses incl. warm-up" \
        "(and the idle connections' opening and closing requests); RSS in KiB; RSS peak = VmHWM over the run"
    echo "- scenarios: $SCENARIOS; open-file limit $FD_LIMIT"
    if want idle || want streams2k; then
        echo "- idle and streams2k: each against a freshly started shardgate (same config) and a freshly reloaded" \
            "nginx worker, so that their peak RSS is theirs"
    fi
} >"$MD"
cat "$MD"
RUNS_JSON=""
# add_run SCENARIO TARGET URL CPU RSS_IDLE RSS_AFTER RSS_PEAK EXTRA_JSON: one entry of "runs".
add_run() {
    [[ -z $RUNS_JSON ]] || RUNS_JSON+=","
    RUNS_JSON+="{\"scenario\":$(json_str "$1"),\"target\":$(json_str "$2"),\"url\":$(json_str "$3"),"
    RUNS_JSON+="\"cpu_us_per_request\":$(json_num "$4"),"
    RUNS_JSON+="\"rss_kb_idle\":$(json_num "$5"),\"rss_kb_after\":$(json_num "$6"),\"rss_kb_peak\":$(json_num "$7"),"
    RUNS_JSON+="$8\"loadgen\":${J:-null}}"
}

# ---------------------------------------------------------------- scenarios against every target
S_KEYS=() S_NAMES=() S_IDS=() S_KINDS=() S_BODIES=() S_ARGS=() S_WARMUPS=() S_DURATIONS=()
# scenario KEY ID KIND TITLE BODY LOADGEN_ARGS WARMUP [DURATION]
scenario() {
    S_KEYS+=("$1") S_IDS+=("$2") S_KINDS+=("$3") S_NAMES+=("$4") S_BODIES+=("$5") S_ARGS+=("$6") S_WARMUPS+=("$7")
    S_DURATIONS+=("${8:-$DURATION}")
}
scenario open chat-open chat "chat, open loop $RATE req/s, $CONNECTIONS connections" \
    "$TMP/chat.json" "--rate $RATE --connections $CONNECTIONS" "$WARMUP"
scenario one chat-closed-1 chat "chat, closed loop, 1 connection" "$TMP/chat.json" "--concurrency 1" "$WARMUP"
scenario closed chat-closed-64 chat "chat, closed loop, 64 connections" "$TMP/chat.json" "--concurrency 64" "$WARMUP"
scenario stream stream-open stream \
    "stream (64 chunks 20 ms apart, with usage), open loop $STREAM_RATE streams/s for $STREAM_DURATION s" \
    "$TMP/stream.json" "--rate $STREAM_RATE --connections $STREAM_CONNECTIONS --stream" "$WARMUP" "$STREAM_DURATION"
scenario idle chat-open-idle idle \
    "chat, open loop $RATE req/s, $CONNECTIONS connections, with $IDLE_CONNECTIONS idle keep-alive connections held" \
    "$TMP/chat.json" "--rate $RATE --connections $CONNECTIONS --idle $IDLE_CONNECTIONS" "$WARMUP"
scenario streams2k "streams-$STREAMS" streams \
    "$STREAMS concurrent streams (closed loop; 64 chunks 20 ms apart, with usage; starts spread over $STREAM_SPREAD s)" \
    "$TMP/stream.json" "--concurrency $STREAMS --stream --ramp $STREAM_SPREAD" "$STREAMS_WARMUP"

table_head() {
    case $1 in
        chat)
            echo "| target | req/s | p50 µs | p90 | p99 | p99.9 | +p50 | +p99 | CPU µs/req | RSS after | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            ;;
        stream)
            echo "| target | streams/s | p50 µs | p90 | p99 | p99.9 | +p50 | +p99 | TTFB p50 | TTFB p99 | +TTFB p50 | +TTFB p99 | gap p50 | gap p99 | CPU µs/req | RSS after | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            ;;
        idle)
            echo "| target | req/s | p50 µs | p90 | p99 | p99.9 | +p50 | +p99 | idle open | idle failed | CPU µs/req | RSS peak | RSS after | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            ;;
        streams)
            echo "| target | streams done | streams/s | TTFB p50 µs | TTFB p99 | +TTFB p50 | +TTFB p99 | gap p50 | gap p99 | gap max | stream p50 | CPU µs/stream | CPU % | RSS peak | RSS after | errors |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            ;;
    esac
}

# run_scenario S: scenario S (an index into S_*) against every target.
run_scenario() {
    local s=$1 kind i name pid url rss_idle before after peak_ok j cpu rss peak cpu_pct p50 p99 ttfb ttfb99
    local base_p50 base_p99 base_ttfb base_ttfb99 notes T_DIRECT_J d50 d99 dttfb dttfb99 errors row verdict extra
    kind=${S_KINDS[s]}
    # The scenarios that make a proxy hold thousands of connections get fresh processes: a peak
    # RSS counts from the RSS at the start of the run, and memory an earlier scenario left
    # behind (allocators give it back slowly, if at all) would be counted as this one's.
    local fresh=false fresh_pid="" fresh_url=""
    [[ $kind != idle && $kind != streams ]] || fresh=true
    ! $fresh || nginx_fresh
    say "scenario: ${S_NAMES[s]}"
    { echo; echo "## ${S_NAMES[s]}"; echo; table_head "$kind"; } >>"$MD.part"
    base_p50="" base_p99="" base_ttfb="" base_ttfb99="" notes="" T_DIRECT_J=""
    for i in "${!T_NAMES[@]}"; do
        name=${T_NAMES[i]} pid=${T_PIDS[i]} url=${T_URLS[i]} rss_idle=${T_RSS_IDLE[i]}
        if $fresh && [[ $name == shardgate ]]; then
            start_gateway "gateway-${S_IDS[s]}" "$TMP/gateway.yaml" "$GATEWAY_CPUS"
            fresh_pid=$GW_STARTED_PID fresh_url="http://$GW_STARTED_API/v1/chat/completions"
            say "shardgate (fresh for this scenario): pid $fresh_pid on $GW_STARTED_API"
            sleep 0.5
            pid=$fresh_pid url=$fresh_url rss_idle=$(rss_kb "$fresh_pid")
        fi
        before="" peak_ok=false
        if [[ -n $pid ]]; then
            before=$(cpu_ticks "$pid")
            rss_peak_reset "$pid" && peak_ok=true
        fi
        # shellcheck disable=SC2086 # S_ARGS holds several arguments
        loadgen "$name" "$url" "${S_BODIES[s]}" ${S_ARGS[s]} --duration "${S_DURATIONS[s]}" --warmup "${S_WARMUPS[s]}"
        j=$J
        cpu="-" rss="-" peak="-" cpu_pct="-"
        if [[ -n $pid ]]; then
            after=$(cpu_ticks "$pid")
            rss=$(rss_kb "$pid")
            ! $peak_ok || peak=$(rss_peak_kb "$pid")
            # The idle connections' two requests each count as requests too.
            cpu=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v n="$(jget "$j" responses_total)" \
                -v a="$(jget "$j" idle_opened)" -v b="$(jget "$j" idle_open)" \
                'BEGIN { n += a + b; if (n > 0) printf "%.1f", d * 1e6 / hz / n; else print "-" }')
            cpu_pct=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v w="$LG_WALL" \
                'BEGIN { if (w + 0 > 0) printf "%.0f", d * 100 / hz / w; else print "-" }')
        fi
        p50=$(jget "$j" latency_us.p50) p99=$(jget "$j" latency_us.p99)
        ttfb=$(jget "$j" ttfb_us.p50) ttfb99=$(jget "$j" ttfb_us.p99)
        if [[ $name == direct ]]; then
            base_p50=$p50 base_p99=$p99 base_ttfb=$ttfb base_ttfb99=$ttfb99
            d50="-" d99="-" dttfb="-" dttfb99="-"
        else
            d50=$(delta "$p50" "$base_p50") d99=$(delta "$p99" "$base_p99")
            dttfb=$(delta "$ttfb" "$base_ttfb") dttfb99=$(delta "$ttfb99" "$base_ttfb99")
        fi
        errors=$(jget "$j" errors)
        case $kind in
            chat | stream | idle)
                row="| $name | $(jget "$j" rps) | $p50 | $(jget "$j" latency_us.p90) | $p99 | $(jget "$j" latency_us.p999) | $d50 | $d99"
                [[ $kind != stream ]] ||
                    row+=" | $ttfb | $ttfb99 | $dttfb | $dttfb99 | $(jget "$j" event_gap_us.p50) | $(jget "$j" event_gap_us.p99)"
                [[ $kind != idle ]] || row+=" | $(jget "$j" idle_open) | $(jget "$j" idle_failed)"
                row+=" | $cpu"
                [[ $kind != idle ]] || row+=" | $peak"
                row+=" | $rss | $errors |"
                ;;
            streams)
                row="| $name | $(jget "$j" requests) | $(jget "$j" rps) | $ttfb | $ttfb99 | $dttfb | $dttfb99"
                row+=" | $(jget "$j" event_gap_us.p50) | $(jget "$j" event_gap_us.p99) | $(jget "$j" event_gap_us.max) | $p50"
                row+=" | $cpu | $cpu_pct | $peak | $rss | $errors |"
                ;;
        esac
        echo "$row" >>"$MD.part"
        if [[ $kind == idle ]]; then
            notes+="- $name: $(jget "$j" idle_open) of $IDLE_CONNECTIONS idle connections still answered on the same socket after the run"
            [[ $(jget "$j" idle_failed) == 0 ]] || notes+=" (first failure: $(jstr "$j" idle_first_error))"
            [[ $peak == - ]] || notes+="; peak RSS with them held $peak KiB"
            notes+=$'\n'
        elif [[ $kind == streams && $name != direct ]]; then
            verdict=missed
            [[ $errors == 0 && $(jget "$j" requests) != - && $(jget "$j" requests) != 0 ]] && verdict=met
            notes+="- $name: $STREAMS concurrent streams, $errors errors (zero errors target: $verdict)"
            notes+="; gap p99 $(jget "$j" event_gap_us.p99) µs against direct's $(jget "$T_DIRECT_J" event_gap_us.p99) µs"
            notes+="; CPU ${cpu_pct}% of a core"$'\n'
        fi
        [[ $name != direct ]] || T_DIRECT_J=$j
        extra=""
        [[ $kind != streams ]] || extra="\"cpu_percent\":$(json_num "$cpu_pct"),\"wall_s\":$(json_num "$LG_WALL"),"
        add_run "${S_IDS[s]}" "$name" "$url" "$cpu" "$rss_idle" "$rss" "$peak" "$extra"
        [[ -z $fresh_pid || $pid != "$fresh_pid" ]] || stop_pid "$fresh_pid"
    done
    [[ -z $notes ]] || printf '\n%s' "$notes" >>"$MD.part"
    tee -a "$MD" <"$MD.part"
    rm -f "$MD.part"
}

# ---------------------------------------------------------------- throughput with 1 and 2 shards
# run_shards: throughput of shardgate with 1 shard (pinned as everywhere) and with 2.
run_shards() {
    say "scenario: throughput with 1 and 2 shards"
    SH_ROWS=() SH_RPS=()
    # shard_run SHARDS PID URL GATEWAY_CPUS LOAD_DESCRIPTION RSS_IDLE THREADS
    shard_run() {
        local before after cpu rss peak="-" peak_ok=false j
        before=$(cpu_ticks "$2")
        rss_peak_reset "$2" && peak_ok=true
        loadgen "shardgate-$1" "$3" "$TMP/chat.json" --concurrency 64 --threads "$7" \
            --duration "$DURATION" --warmup "$WARMUP"
        j=$J
        after=$(cpu_ticks "$2")
        rss=$(rss_kb "$2")
        ! $peak_ok || peak=$(rss_peak_kb "$2")
        cpu=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v n="$(jget "$j" responses_total)" \
            'BEGIN { if (n + 0 > 0) printf "%.1f", d * 1e6 / hz / n; else print "-" }')
        SH_RPS+=("$(jget "$j" rps)")
        SH_ROWS+=("| $1 | $4 | $5 | $(jget "$j" rps) | $(jget "$j" latency_us.p50) | $(jget "$j" latency_us.p99) | $cpu | $6 | $peak | $rss | $(jget "$j" errors) |")
        add_run "shards-$1" shardgate "$3" "$cpu" "$6" "$rss" "$peak" \
            "\"shards\":$1,\"gateway_cpus\":$(json_str "$4"),\"load_cpus\":$(json_str "$5"),"
    }
    # 1 shard: the gateway already running, pinned as for every other scenario.
    shard_run 1 "$GW_PID" "http://$GW_API/v1/chat/completions" "$GATEWAY_CPUS" "$LOAD_CPUS (pinned)" \
        "$GW_RSS_IDLE" 1
    # 2 shards on every CPU (shard i pinned to CPU i by the gateway); loadgen and mock unpinned.
    gateway_config "$TMP/gateway2.yaml" 2 true "$POOL_IDLE"
    start_gateway gateway2 "$TMP/gateway2.yaml" "$ALL_CPUS"
    GW2_PID=$GW_STARTED_PID
    say "shardgate (2 shards): pid $GW2_PID on $GW_STARTED_API"
    sleep 0.5
    GW2_IDLE=$(rss_kb "$GW2_PID")
    taskset -a -p -c "$ALL_CPUS" "$MOCK_PID" >/dev/null
    LG_CPUS=$ALL_CPUS
    LG_PIN=()
    shard_run 2 "$GW2_PID" "http://$GW_STARTED_API/v1/chat/completions" "$ALL_CPUS (shard i on CPU i)" \
        "$ALL_CPUS (unpinned)" "$GW2_IDLE" 2
    LG_CPUS=$LOAD_CPUS
    LG_PIN=(--cpus "$LOAD_CPU_FIRST")
    taskset -a -p -c "$LOAD_CPUS" "$MOCK_PID" >/dev/null
    stop_pid "$GW2_PID"
    ratio=$(awk -v a="${SH_RPS[0]}" -v b="${SH_RPS[1]}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", b / a; else print "-" }')
    {
        echo
        echo "## throughput with 1 and 2 shards (chat, closed loop, 64 connections, instant upstream)"
        echo
        echo "| shards | gateway CPUs | loadgen + mock CPUs | req/s | p50 µs | p99 | CPU µs/req | RSS idle | RSS peak | RSS after | errors |"
        echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        printf '%s\n' "${SH_ROWS[@]}"
        echo
        echo "- 2 shards / 1 shard: ${ratio}x the requests per second. With 2 shards the gateway shares both"
        echo "  cores with the load generator (2 threads) and the mock, so the ceiling is the CPU per request"
        echo "  of all three together, not the gateway's alone."
    } | tee -a "$MD"
}

# In the order of ALL_SCENARIOS. The two scenarios that leave the gateway holding the most memory
# come last, `idle` the very last: a peak RSS is measured from the RSS at the start of a run, and
# a gateway still giving back the memory of 10,000 connections would inflate the next one's.
for key in ${ALL_SCENARIOS//,/ }; do
    want "$key" || continue
    if [[ $key == shards ]]; then
        run_shards
    else
        for s in "${!S_KEYS[@]}"; do [[ ${S_KEYS[s]} != "$key" ]] || run_scenario "$s"; done
    fi
done

if $TARGET_SCENARIOS; then
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
fi

# ---------------------------------------------------------------- results files
OUT="$ROOT/loadtest/results"
mkdir -p "$OUT"
cp "$MD" "$OUT/$STAMP.md"
{
    printf '{"date":%s,"commit":%s,"dirty":%s,' "$(json_str "$DATE")" "$(json_str "$COMMIT")" "$DIRTY"
    printf '"machine":{"nproc":%s,"kernel":%s,"cpu":%s},' "$NPROC" "$(json_str "$KERNEL")" "$(json_str "${CPU_MODEL:-unknown}")"
    printf '"config":{"duration_s":%s,"warmup_s":%s,"rate":%s,"stream_rate":%s,"stream_duration_s":%s,"connections":%s,' \
        "$DURATION" "$WARMUP" "$RATE" "$STREAM_RATE" "$STREAM_DURATION" "$CONNECTIONS"
    printf '"stream_connections":%s,"latency_ms":%s,"chat_body_bytes":%s,"gateway_cpus":%s,"load_cpus":%s,"nginx":%s,' \
        "$STREAM_CONNECTIONS" "$LATENCY_MS" "$CHAT_BYTES" "$(json_str "$GATEWAY_CPUS")" "$(json_str "$LOAD_CPUS")" \
        "$(if [[ -n $NGINX_PID ]]; then json_str "$NGINX_NOTE"; else echo null; fi)"
    printf '"scenarios":%s,"idle_connections":%s,"streams":%s,"streams_warmup_s":%s,"open_files":%s},' \
        "$(json_str "$SCENARIOS")" "$IDLE_CONNECTIONS" "$STREAMS" "$STREAMS_WARMUP" "$(json_str "$FD_LIMIT")"
    printf '"runs":[%s]}\n' "$RUNS_JSON"
} >"$OUT/$STAMP.json"
say "results: $OUT/$STAMP.md and $OUT/$STAMP.json"
