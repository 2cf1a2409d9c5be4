#!/usr/bin/env bash
# Soak: shardgate (release build, SHARDS shards) under open-loop load at a fixed rate for
# SOAK_SECONDS while its RSS is sampled every SAMPLE_SECONDS; then idle for SETTLE_SECONDS and
# the RSS once more. Answers: does memory grow under steady load (second minute against the last),
# and does it come back down after the load (post-load RSS against pre-load RSS)?
#
# usage: loadtest/soak.sh                      (10 minutes at 2000 req/s)
#        SOAK_SECONDS=20 loadtest/soak.sh      (a short check of the script itself)
#
# Environment: SOAK_SECONDS (600), RATE (2000 req/s), CONNECTIONS (64), SHARDS (2),
# SAMPLE_SECONDS (10), SETTLE_SECONDS (10), LATENCY_MS (0: instant upstream), GATEWAY_CPUS /
# LOAD_CPUS (taskset lists as in compare.sh: by default every shard on CPU 1, loadgen and the
# mock upstream on CPU 0).
#
# Results: a table on stdout and loadtest/results/<date>-<commit>-soak.{md,json} with the RSS
# series, the growth from the second minute to the last (the first and last third for runs
# shorter than 3 minutes), post-load / pre-load RSS, and the latency percentiles of the soak.
# Only 127.0.0.1 is contacted; every process started here is stopped on exit (by its PID).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCRIPT=soak.sh
# shellcheck source=loadtest/common.sh
. "$ROOT/loadtest/common.sh"

SOAK_SECONDS=${SOAK_SECONDS:-600}
RATE=${RATE:-2000}
CONNECTIONS=${CONNECTIONS:-64}
SHARDS=${SHARDS:-2}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-10}
SETTLE_SECONDS=${SETTLE_SECONDS:-10}
LATENCY_MS=${LATENCY_MS:-0}

case ${1:-} in
    -h | --help)
        awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
        exit 0
        ;;
    "") ;;
    *) die "unknown argument $1 (try --help)" ;;
esac
[[ $RATE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "RATE=$RATE is not a number"
for v in SOAK_SECONDS CONNECTIONS SHARDS SAMPLE_SECONDS SETTLE_SECONDS LATENCY_MS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not an integer"
done
((SOAK_SECONDS >= 1 && SHARDS >= 1 && SAMPLE_SECONDS >= 1)) || die "SOAK_SECONDS, SHARDS and SAMPLE_SECONDS must be at least 1"
command -v taskset >/dev/null || die "taskset (util-linux) is needed"

raise_nofile 4096
build_release
pinning_plan
say "pinning plan (nproc=$NPROC): shardgate ($SHARDS shards) on CPU $GATEWAY_CPUS; loadgen + mock upstream on CPU $LOAD_CPUS"
setup_tmp shardgate-soak

start_mock "$LOAD_CPUS"
gateway_config "$TMP/gateway.yaml" "$SHARDS" false 256
start_gateway gateway "$TMP/gateway.yaml" "$GATEWAY_CPUS"
GW_PID=$GW_STARTED_PID
URL="http://$GW_STARTED_API/v1/chat/completions"
say "shardgate: pid $GW_PID on $GW_STARTED_API"

FILLER=$(printf 'The quick brown fox jumps over the lazy dog. %.0s' {1..20})
CHAT_MOCK=""
((LATENCY_MS == 0)) || CHAT_MOCK=",\"mock\":{\"latency_ms\":$LATENCY_MS}"
printf '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"%s"}],"max_tokens":64,"temperature":0.2%s}' \
    "$FILLER" "$CHAT_MOCK" >"$TMP/chat.json"

# ---------------------------------------------------------------- pre-load, load, post-load
sleep 1
RSS_PRE=$(rss_kb "$GW_PID")
say "idle RSS before the load: $RSS_PRE KiB"
CPU_BEFORE=$(cpu_ticks "$GW_PID")
say "soak: $RATE req/s for $SOAK_SECONDS s, RSS every $SAMPLE_SECONDS s..."
T0=$EPOCHREALTIME
timeout $((SOAK_SECONDS + 60)) taskset -c "$LOAD_CPUS" "$BIN/loadgen" --url "$URL" --body-file "$TMP/chat.json" \
    --label shardgate --json --cpus "$LOAD_CPU_FIRST" --rate "$RATE" --connections "$CONNECTIONS" \
    --duration "$SOAK_SECONDS" --warmup 0 >"$TMP/loadgen.json" 2>"$TMP/loadgen.err" &
LOADGEN_PID=$!

# Samples: "seconds-since-start rss-kib" lines, the first at the start of the load.
SAMPLES="$TMP/samples"
: >"$SAMPLES"
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
sample() { printf '%s %s\n' "$1" "$(rss_kb "$GW_PID")" >>"$SAMPLES"; }
sample 0
for ((k = SAMPLE_SECONDS; k <= SOAK_SECONDS; k += SAMPLE_SECONDS)); do
    left=$(awk -v k="$k" -v e="$(elapsed)" 'BEGIN { d = k - e; printf "%.3f", (d > 0 ? d : 0) }')
    sleep "$left" &
    wait $! || true
    kill -0 "$LOADGEN_PID" 2>/dev/null || { say "loadgen ended early at $(elapsed) s"; break; }
    sample "$k"
    say "  t=${k}s RSS $(tail -n 1 "$SAMPLES" | cut -d' ' -f2) KiB"
done
if wait "$LOADGEN_PID"; then
    J=$(<"$TMP/loadgen.json")
else
    say "loadgen failed: $(tail -n 3 "$TMP/loadgen.err")"
    J=""
fi
LOADGEN_PID=""
CPU_AFTER=$(cpu_ticks "$GW_PID")
RSS_LOADED=$(rss_kb "$GW_PID")
say "load over; idle for $SETTLE_SECONDS s..."
sleep "$SETTLE_SECONDS" &
wait $! || true
RSS_POST=$(rss_kb "$GW_PID")

# ---------------------------------------------------------------- figures
# The windows compared: the second minute (the first is warm-up: pools and buffers fill) and the
# last minute; or, in a run under 3 minutes, the first and the last third.
WINDOW=$((SOAK_SECONDS >= 180 ? 60 : SOAK_SECONDS / 3))
((WINDOW >= SAMPLE_SECONDS)) || WINDOW=$SAMPLE_SECONDS
WARM=$((SOAK_SECONDS >= 180 ? WINDOW : 0))
# Mean RSS of the samples in (WARM, WARM + WINDOW] and in [end - WINDOW, end]; least-squares
# slope over the samples after the warm-up, in KiB per minute.
read -r FIRST LAST SLOPE MAX N < <(awk -v w="$WINDOW" -v warm="$WARM" -v end="$SOAK_SECONDS" '
    $1 > warm { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2; if ($2 > max) max = $2
             if ($1 <= warm + w) { fs += $2; fn++ }
             if ($1 >= end - w) { ls += $2; ln++ } }
    END {
        first = fn ? fs / fn : 0; last = ln ? ls / ln : 0
        d = n * sxx - sx * sx; slope = (n > 1 && d != 0) ? (n * sxy - sx * sy) / d * 60 : 0
        printf "%.0f %.0f %.1f %d %d\n", first, last, slope, max, n
    }' "$SAMPLES")
GROWTH=$((LAST - FIRST))
GROWTH_PCT=$(awk -v g="$GROWTH" -v f="$FIRST" 'BEGIN { if (f > 0) printf "%.1f", g * 100 / f; else print "-" }')
POST_RATIO=$(awk -v a="$RSS_POST" -v b="$RSS_PRE" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
CPU_PER_REQ=$(awk -v d=$((CPU_AFTER - CPU_BEFORE)) -v hz="$CLK_TCK" -v n="$(jget "$J" responses_total)" \
    'BEGIN { if (n + 0 > 0) printf "%.1f", d * 1e6 / hz / n; else print "-" }')
# Verdicts against issue 3's targets. "No growth": the last window's mean within 2% of the first's.
# verdict VALUE CONDITION: met / missed, or "-" without a value (awk compares numbers).
verdict() {
    if [[ $1 == - ]]; then echo -; elif awk -v x="$1" "BEGIN { exit !(x $2) }"; then echo met; else echo missed; fi
}
V_GROWTH=$(verdict "$GROWTH_PCT" "<= 2")
V_POST=$(verdict "$POST_RATIO" "<= 1.25")
V_IDLE=$(verdict "$RSS_PRE" "< 12288")

# ---------------------------------------------------------------- results
machine_info
MD="$TMP/soak.md"
{
    echo "# shardgate soak, $DATE"
    echo
    echo "- commit: $COMMIT$([[ $DIRTY == true ]] && echo ' (with uncommitted changes)')"
    echo "- machine: nproc $NPROC, kernel $KERNEL, CPU ${CPU_MODEL:-unknown}"
    echo "- pinning: shardgate ($SHARDS shards) on CPU $GATEWAY_CPUS; loadgen + mock upstream on CPU $LOAD_CPUS"
    echo "- load: open loop $RATE req/s over $CONNECTIONS connections for $SOAK_SECONDS s (no warm-up: the whole soak is measured);" \
        "chat body $(wc -c <"$TMP/chat.json") B; upstream latency $LATENCY_MS ms"
    echo "- RSS (KiB) sampled every $SAMPLE_SECONDS s; growth compares the mean over $WARM–$((WARM + WINDOW)) s (after $WARM s of warm-up) with the last $WINDOW s"
    echo
    echo "| requests | req/s | p50 µs | p90 | p99 | p99.9 | max | errors | CPU µs/req |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    echo "| $(jget "$J" requests) | $(jget "$J" rps) | $(jget "$J" latency_us.p50) | $(jget "$J" latency_us.p90) |" \
        "$(jget "$J" latency_us.p99) | $(jget "$J" latency_us.p999) | $(jget "$J" latency_us.max) | $(jget "$J" errors) | $CPU_PER_REQ |"
    echo
    echo "| memory | KiB | target | |"
    echo "|---|---:|---|---|"
    echo "| idle, before the load ($SHARDS shards) | $RSS_PRE | < 12288 (12 MiB) with 2 shards | $V_IDLE |"
    echo "| mean over $WARM–$((WARM + WINDOW)) s of load | $FIRST | | |"
    echo "| mean over the last $WINDOW s of load | $LAST | | |"
    echo "| growth, last − first | $GROWTH ($GROWTH_PCT %) | no growth (≤ 2 %) | $V_GROWTH |"
    echo "| trend over the soak (least squares) | $SLOPE KiB/min | | |"
    echo "| peak sample | $MAX | | |"
    echo "| at the end of the load | $RSS_LOADED | | |"
    echo "| after $SETTLE_SECONDS s idle | $RSS_POST | | |"
    echo "| after / before the load | ${POST_RATIO}x | ≤ 1.25x | $V_POST |"
    echo
    echo "RSS series (s: KiB): $(awk '{ printf "%s%s: %s", (NR > 1 ? ", " : ""), $1, $2 }' "$SAMPLES")"
} >"$MD"
cat "$MD"

OUT="$ROOT/loadtest/results"
mkdir -p "$OUT"
cp "$MD" "$OUT/$STAMP-soak.md"
{
    printf '{"date":%s,"commit":%s,"dirty":%s,' "$(json_str "$DATE")" "$(json_str "$COMMIT")" "$DIRTY"
    printf '"machine":{"nproc":%s,"kernel":%s,"cpu":%s},' "$NPROC" "$(json_str "$KERNEL")" "$(json_str "${CPU_MODEL:-unknown}")"
    printf '"config":{"soak_s":%s,"rate":%s,"connections":%s,"shards":%s,"sample_s":%s,"settle_s":%s,"latency_ms":%s,"gateway_cpus":%s,"load_cpus":%s},' \
        "$SOAK_SECONDS" "$RATE" "$CONNECTIONS" "$SHARDS" "$SAMPLE_SECONDS" "$SETTLE_SECONDS" "$LATENCY_MS" \
        "$(json_str "$GATEWAY_CPUS")" "$(json_str "$LOAD_CPUS")"
    printf '"rss_kb":{"pre_load":%s,"first_window_mean":%s,"last_window_mean":%s,"window_s":%s,"growth":%s,"growth_percent":%s,' \
        "$RSS_PRE" "$FIRST" "$LAST" "$WINDOW" "$GROWTH" "$(json_num "$GROWTH_PCT")"
    printf '"trend_kb_per_min":%s,"peak_sample":%s,"end_of_load":%s,"post_load":%s,"post_over_pre":%s,"series":[%s]},' \
        "$(json_num "$SLOPE")" "$MAX" "$RSS_LOADED" "$RSS_POST" "$(json_num "$POST_RATIO")" \
        "$(awk '{ printf "%s{\"t_s\":%s,\"rss_kb\":%s}", (NR > 1 ? "," : ""), $1, $2 }' "$SAMPLES")"
    printf '"targets":{"idle_rss_under_12mib":%s,"no_growth":%s,"post_within_25_percent":%s},' \
        "$(json_str "$V_IDLE")" "$(json_str "$V_GROWTH")" "$(json_str "$V_POST")"
    printf '"cpu_us_per_request":%s,"samples":%s,"loadgen":%s}\n' "$(json_num "$CPU_PER_REQ")" "$N" "${J:-null}"
} >"$OUT/$STAMP-soak.json"
say "results: $OUT/$STAMP-soak.md and $OUT/$STAMP-soak.json"
