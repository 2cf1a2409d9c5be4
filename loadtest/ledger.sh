#!/usr/bin/env bash
# Ledger soak: does the spend ledger keep up with the gateway's own maximum request rate?
# shardgate (release, SHARDS shards) with a key carrying limits and a budget, a priced target,
# the access log on and a store file (so the ledger is written), under closed-loop load at
# CONCURRENCY connections (as fast as the machine goes) for SECONDS; RSS sampled every
# SAMPLE_SECONDS. Then: requests served (the gateway's own count), ledger rows written and
# dropped, rows in the store, and RSS at the second sample against the last.
#
# usage: loadtest/ledger.sh                  (10 minutes)
#        SECONDS_TOTAL=20 loadtest/ledger.sh (a short check of the script itself)
# Environment: SECONDS_TOTAL (600), CONCURRENCY (64), SHARDS (1), SAMPLE_SECONDS (30), and the
# pinning of compare.sh (GATEWAY_CPUS, LOAD_CPUS).
# Only 127.0.0.1 is contacted; every process started here is stopped on exit (by its PID).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCRIPT=ledger.sh
# shellcheck source=loadtest/common.sh
. "$ROOT/loadtest/common.sh"

TOTAL=${SECONDS_TOTAL:-600} CONCURRENCY=${CONCURRENCY:-64} SHARDS=${SHARDS:-1}
SAMPLE=${SAMPLE_SECONDS:-30}
raise_nofile 4096
build_release
pinning_plan
setup_tmp shardgate-ledger
start_mock "$LOAD_CPUS"
gateway_config "$TMP/gw.yaml" "$SHARDS" false 256
sed -i -e "s|access_log: off|access_log: { file: $TMP/access.log }, master_key: { env: LEDGER_MASTER }|" \
    -e "s|model: gpt-4o-mini } ] }|model: gpt-4o-mini, price: { input: 0.15, output: 0.6 } } ] }|" "$TMP/gw.yaml"
printf 'store: { path: %s }\nkeys:\n  - { name: soak, key: { env: LEDGER_KEY }, rpm_limit: 1000000000, tpm_limit: 1000000000000, max_budget: 1000000000, budget_duration: 30d }\n' \
    "$TMP/store.db" >>"$TMP/gw.yaml"
export LEDGER_KEY=sg-ledger-soak-key LEDGER_MASTER=sg-ledger-soak-master-key
start_gateway gateway "$TMP/gw.yaml" "$GATEWAY_CPUS"
GW_PID=$GW_STARTED_PID
ADMIN=$(grep -o 'admin=[^ ]*' "$TMP/gateway.log" | head -1 | cut -d= -f2)
say "shardgate: pid $GW_PID, api $GW_STARTED_API, admin $ADMIN"
printf '{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"user","content":"%s"}]}' \
    "$(printf 'The quick brown fox jumps over the lazy dog. %.0s' {1..20})" >"$TMP/body.json"

metric() { curl -s "http://$ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
served() { curl -s "http://$ADMIN/metrics" | awk '/^shardgate_requests_total/ {s += $2} END {print s + 0}'; }

taskset -c "$LOAD_CPUS" "$BIN/loadgen" --url "http://$GW_STARTED_API/v1/chat/completions" \
    --concurrency "$CONCURRENCY" --body-file "$TMP/body.json" --json --warmup 0 \
    --header "authorization: Bearer $LEDGER_KEY" --duration "$TOTAL" >"$TMP/load.json" 2>"$TMP/load.err" &
LOADGEN_PID=$!
printf '%8s %12s %12s %10s\n' t_s served ledger_rows rss_kib
for ((t = SAMPLE; t <= TOTAL; t += SAMPLE)); do
    sleep "$SAMPLE"
    printf '%8d %12s %12s %10s\n' "$t" "$(served)" "$(metric shardgate_ledger_rows_written_total)" "$(rss_kb "$GW_PID")" | tee -a "$TMP/samples"
done
wait "$LOADGEN_PID" || die "loadgen failed: $(tail -3 "$TMP/load.err")"
LOADGEN_PID=""
sleep 2 # the last rows: control drains every 200 ms
SERVED=$(served)
WRITTEN=$(metric shardgate_ledger_rows_written_total)
DROPPED=$(metric shardgate_ledger_rows_dropped_total)
REQS=$(jget "$(<"$TMP/load.json")" requests)
stop_pid "$GW_PID"
ROWS=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select coalesce(sum(rows), 0) from spend_logs').fetchone()[0])" "$TMP/store.db")
RSS2=$(awk 'NR == 2 {print $4}' "$TMP/samples")
RSSN=$(awk 'END {print $4}' "$TMP/samples")
say ""
say "loadgen: $REQS requests in $TOTAL s ($(awk -v n="$REQS" -v d="$TOTAL" 'BEGIN {printf "%.0f", n / d}') req/s)"
say "served (gateway count): $SERVED; ledger rows written: $WRITTEN, dropped: $DROPPED; rows in the store: $ROWS"
say "RSS: $RSS2 KiB at the second sample, $RSSN KiB at the last"
((ROWS == SERVED && DROPPED == 0)) && say "the ledger kept up: one row per request served" || say "THE LEDGER DID NOT KEEP UP"
