#!/usr/bin/env bash
# Runs the fuzz targets (all, or those named as arguments) on nightly, one after another, each for
# RUNS executions or MAX_TIME seconds, whichever comes first (MAX_TIME=0: no time bound). New
# crash inputs are copied into fuzz/regressions/<target>/, where `cargo test --test fuzz_corpus`
# replays them on stable; rename each after what it found once you know. CMIN=1 minimises each
# target's corpus after its run with `cargo fuzz cmin` and CMIN_ARGS (default: the smallest set
# of inputs covering every edge; the corpus is kept in git), keeping the hand-written seeds under
# their names. The fuzzer runs under `nice` (NICE, default 10): builds share the machine.
#
#   fuzz/run.sh                          # every target, 10M executions each
#   MAX_TIME=60 fuzz/run.sh sse_splitter # one target, a minute
#   RUNS=0 CMIN=1 fuzz/run.sh            # only replay and minimise the corpus
set -euo pipefail
export LC_ALL=C

FUZZ="$(cd "$(dirname "$0")" && pwd)"
RUNS="${RUNS:-10000000}"
MAX_TIME="${MAX_TIME:-0}"
NICE="${NICE:-10}"
CMIN="${CMIN:-0}"
CMIN_ARGS="${CMIN_ARGS:--set_cover_merge=1 -use_counters=0}"
TOOLCHAIN="${TOOLCHAIN:-nightly}"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(find "$FUZZ/fuzz_targets" -name '*.rs' -printf '%f\n' | sed 's/\.rs$//' | sort)
fi

for t in "${targets[@]}"; do
  if [ ! -f "$FUZZ/fuzz_targets/$t.rs" ]; then
    echo "no such target: $t (see $FUZZ/fuzz_targets/)" >&2
    exit 2
  fi
done

# One build for every target first, so the times below are fuzzing only.
nice -n "$NICE" cargo "+$TOOLCHAIN" fuzz build --fuzz-dir "$FUZZ"

# The last value of `field: N` in libFuzzer's log (a status line or a final stat).
last_field() {
  grep -oE "$1[: ]+[0-9]+" "$2" | tail -n 1 | grep -oE '[0-9]+$' || echo "?"
}

# Minimises corpus/$1 into fresh SHA-1-named files, then puts the named seeds back (and drops
# their SHA-1-named copies): libFuzzer names what it finds by its SHA-1, people name seeds.
minimise() {
  local dir="$FUZZ/corpus/$1" keep="$FUZZ/target/logs/$1/seeds"
  rm -rf "$keep"
  mkdir -p "$keep"
  for f in "$dir"/*; do
    [[ "$(basename "$f")" =~ ^[0-9a-f]{40}$ ]] || cp "$f" "$keep/"
  done
  # shellcheck disable=SC2086 # CMIN_ARGS is a list of flags
  nice -n "$NICE" cargo "+$TOOLCHAIN" fuzz cmin --fuzz-dir "$FUZZ" "$1" -- $CMIN_ARGS \
    >"$FUZZ/target/logs/$1/cmin.log" 2>&1 || { echo "    cmin failed: see $FUZZ/target/logs/$1/cmin.log"; }
  for s in "$keep"/*; do
    [ -f "$s" ] || continue
    rm -f "$dir/$(sha1sum "$s" | cut -c1-40)"
    cp "$s" "$dir/"
  done
  echo "    corpus: $(find "$dir" -type f | wc -l) files, $(du -sh --apparent-size "$dir" | cut -f1)"
}

summary=()
status=0
for t in "${targets[@]}"; do
  logs="$FUZZ/target/logs/$t"
  artifacts="$FUZZ/artifacts/$t"
  rm -rf "$logs"
  mkdir -p "$logs" "$artifacts" "$FUZZ/regressions/$t"
  before="$(ls "$artifacts")"
  start=$(date +%s)
  echo "=== $t: up to $RUNS runs, ${MAX_TIME}s (0: unbounded); log: $logs/fuzz-0.log"
  # With -jobs=1 libFuzzer runs one worker and writes its output to ./fuzz-0.log.
  (cd "$logs" && nice -n "$NICE" cargo "+$TOOLCHAIN" fuzz run --fuzz-dir "$FUZZ" "$t" -- \
    -jobs=1 -runs="$RUNS" -max_total_time="$MAX_TIME" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$logs/driver.log" 2>&1) || true
  seconds=$(($(date +%s) - start))
  log="$logs/fuzz-0.log"
  [ -f "$log" ] || log="$logs/driver.log"
  execs=$(last_field 'stat::number_of_executed_units' "$log")
  [ "$execs" = "?" ] && execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || echo "?")
  cov=$(last_field 'cov' "$log")
  rate=$(last_field 'stat::average_exec_per_sec' "$log")
  # libFuzzer reports 0/s for a run under a second (or one cut short by a crash).
  if [[ ("$rate" == "?" || "$rate" == 0) && "$execs" =~ ^[0-9]+$ && "$seconds" -gt 0 ]]; then
    rate=$((execs / seconds))
  fi
  crashes=0
  for a in $(comm -13 <(echo "$before") <(ls "$artifacts")); do
    # Named by where it panicked when the log says so, else by libFuzzer's kind and hash.
    where=$(grep -oE 'panicked at [^:]+:[0-9]+' "$log" | head -n 1 | sed 's/panicked at //; s#.*/##; s/[^A-Za-z0-9_.]/-/g')
    name="${a%%-*}${where:+-$where}-$(sha1sum "$artifacts/$a" | cut -c1-8)"
    cp "$artifacts/$a" "$FUZZ/regressions/$t/$name"
    echo "    crash input -> fuzz/regressions/$t/$name"
    crashes=$((crashes + 1))
  done
  if [ "$crashes" -gt 0 ]; then
    status=1
    grep -m 1 -A 3 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)' "$log" | sed 's/^/    /' || true
  fi
  echo "    executions: $execs ($rate/s), coverage: $cov, seconds: $seconds, crashes: $crashes"
  if [ "$CMIN" = 1 ]; then
    minimise "$t"
  fi
  summary+=("$(printf '%-24s %12s %8s %8s %8s' "$t" "$execs" "$rate" "$seconds" "$crashes")")
done

echo
printf '%-24s %12s %8s %8s %8s\n' target executions exec/s seconds crashes
printf '%s\n' "${summary[@]}"
exit "$status"
