#!/usr/bin/env bash
# Kernel settings for a shardgate host: `show` compares current values with the proposed ones,
# `apply` writes them (saving what it replaces in $STATE_DIR/sysctl.saved, default
# /var/lib/shardgate-tuning), `revert` restores the saved values. Limits are only ever raised,
# never lowered; keys this kernel lacks are skipped with a note. Runtime only unless --persist.
# net.* keys are per network namespace: run this where shardgate's sockets live.
set -euo pipefail

SCRIPT_DIR=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

PERSIST_FILE=${PERSIST_FILE:-/etc/sysctl.d/90-shardgate-tuning.conf}

usage() {
  cat <<EOF
Usage: $PROG show|apply|revert [--dry-run] [--busy-poll USEC] [--persist]

  show              current vs proposed value of every key, with what it does
  apply             write the proposed values (root); previous values are saved once in
                    \$STATE_DIR/sysctl.saved (default /var/lib/shardgate-tuning/sysctl.saved)
  revert            restore the saved values (root) and remove the state file
                    (and $PERSIST_FILE if --persist created it)
  --dry-run         print what apply/revert would write; changes nothing (no root needed)
  --busy-poll USEC  also set socket busy polling (net.core.busy_poll/busy_read = USEC, e.g.
                    50; 0 = off); left as is without it, because spinning burns CPU
  --persist         with apply: also write $PERSIST_FILE so the values survive a reboot
  -h, --help        this text

Environment: STATE_DIR (where originals are saved), PERSIST_FILE (the sysctl.d file).
EOF
}

cmd="" dry=0 busy="" persist=0
while [ $# -gt 0 ]; do
  case $1 in
    show | apply | revert)
      [ -z "$cmd" ] || die "one command at a time (got '$cmd' and '$1')"
      cmd=$1
      shift
      ;;
    --dry-run) dry=1; shift ;;
    --persist) persist=1; shift ;;
    --busy-poll)
      [ $# -ge 2 ] || die "--busy-poll needs microseconds, e.g. --busy-poll 50"
      [[ $2 =~ ^[0-9]+$ ]] || die "--busy-poll: expected microseconds, got '$2'"
      busy=$2
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ -n "$cmd" ] || { usage >&2; die "missing command: show, apply or revert"; }

busy_mode=keep
[ -z "$busy" ] || busy_mode="set"

# ---- The settings --------------------------------------------------------------------------
# key | mode | proposed value | what it does
#   raise: write only if it raises the current value (multi-value keys: per field)
#   range: widen a "low high" range, never narrow it
#   set:   write exactly this value
#   keep:  listed for reference only, never written
SETTINGS=(
  # Cap on a listening socket's accept backlog. shardgate asks for 4096 per shard listener;
  # the kernel silently trims it to this (128 before kernel 5.4), dropping SYNs under bursts.
  "net.core.somaxconn|raise|4096|accept-queue cap; shardgate listens with backlog 4096 per shard"
  # Half-open (SYN_RECV) connections kept per listener before SYN cookies kick in.
  "net.ipv4.tcp_max_syn_backlog|raise|8192|half-open connection queue per listener (SYN floods, connect bursts)"
  # Source ports for outgoing connections. Every upstream connection (shardgate -> provider)
  # takes one per destination ip:port; a wider range means more concurrent upstream sockets.
  # If a service on this host listens on a port inside the range, list that port in
  # net.ipv4.ip_local_reserved_ports so an outgoing connection cannot take it first.
  "net.ipv4.ip_local_port_range|range|10240 65535|source ports for upstream connections; keep local listeners out via ip_local_reserved_ports"
  # 1 = reuse a TIME_WAIT socket for a new outgoing connection when TCP timestamps prove it
  # safe. Helps when upstream connections churn; affects outgoing connections only (2 = loopback only).
  "net.ipv4.tcp_tw_reuse|set|1|reuse TIME_WAIT ports for new upstream connections (outgoing only)"
  # Largest buffer an application may request with SO_RCVBUF / SO_SNDBUF.
  "net.core.rmem_max|raise|16777216|max receive buffer a socket may request (16 MiB)"
  "net.core.wmem_max|raise|16777216|max send buffer a socket may request (16 MiB)"
  # TCP autotuning: min, default, max bytes per socket. A higher max lets long-haul upstream
  # links (high bandwidth x RTT) fill; the kernel still only grows buffers that need it.
  "net.ipv4.tcp_rmem|raise|4096 131072 16777216|TCP receive buffer autotuning: min default max"
  "net.ipv4.tcp_wmem|raise|4096 16384 16777216|TCP send buffer autotuning: min default max"
  # Packets queued per CPU between the NIC driver and the stack when softirq falls behind;
  # overflow shows up as drops in /proc/net/softnet_stat column 2.
  "net.core.netdev_max_backlog|raise|16384|per-CPU input queue before drops (softnet_stat)"
  # Busy polling: a socket read (busy_read) or poll/epoll wait (busy_poll) spins on the NIC
  # queue for up to this many microseconds instead of sleeping for the interrupt. Cuts a few
  # to tens of microseconds of latency, at the price of CPUs spinning at 100% while waiting,
  # so only worth it with shards pinned on dedicated cores (not on 2-CPU boxes, and never when
  # shards share CPUs with other work). It mostly helps the epoll fallback (epoll_wait spins);
  # io_uring receives get at most one polling pass, and shardgate does not register io_uring's
  # own NAPI polling. Needs a NIC driver with NAPI ids. Left alone unless --busy-poll USEC
  # is given (--busy-poll 0 turns it back off).
  "net.core.busy_poll|$busy_mode|${busy:-0}|busy polling in poll/epoll, µs (opt-in: --busy-poll USEC; spins CPU for latency)"
  "net.core.busy_read|$busy_mode|${busy:-0}|busy polling in socket reads, µs (opt-in: --busy-poll USEC; same trade-off)"
  # System-wide cap on open files; each client connection and each upstream connection is one.
  "fs.file-max|raise|2097152|system-wide open file cap (each connection is a file)"
  # Highest RLIMIT_NOFILE a process may be given (ulimit -n / LimitNOFILE= cannot exceed it).
  "fs.nr_open|raise|1048576|ceiling for a process's ulimit -n"
  # Memory mappings per process. shardgate maps little (thread stacks, a few io_uring rings
  # per shard), so the default 65530 is plenty; listed so nobody raises it for nothing.
  "vm.max_map_count|keep|65530|not needed: shardgate maps only stacks and a few rings per shard"
  # 0 = io_uring allowed for everyone, 1 = only CAP_SYS_ADMIN or kernel.io_uring_group members,
  # 2 = disabled (shardgate falls back to epoll). Exists on kernel 6.6+; skipped elsewhere.
  # Some distributions set 2 on purpose to shrink kernel attack surface: decide deliberately.
  "kernel.io_uring_disabled|set|0|0 lets shardgate create io_uring rings (2 forces the epoll fallback)"
)

sysctl_path() { printf '/proc/sys/%s\n' "${1//.//}"; }

# Current value with tabs/runs of spaces collapsed to single spaces.
read_key() {
  local v
  v=$(cat "$(sysctl_path "$1")" 2>/dev/null) || return 1
  printf '%s\n' "$v" | tr -s ' \t' '  '
}

# The value apply would write for mode $1, proposed $2, current $3.
target_value() {
  local mode=$1 prop=$2 cur=$3
  case $mode in
    set) printf '%s\n' "$prop" ;;
    keep) printf '%s\n' "$cur" ;;
    range)
      local plo phi clo chi
      read -r plo phi <<<"$prop"
      read -r clo chi <<<"$cur"
      printf '%s %s\n' "$((clo < plo ? clo : plo))" "$((chi > phi ? chi : phi))"
      ;;
    raise)
      local -a p=() c=() out=()
      read -r -a p <<<"$prop"
      read -r -a c <<<"$cur"
      local i
      for i in "${!p[@]}"; do
        if [ -n "${c[i]-}" ] && ((c[i] > p[i])); then out+=("${c[i]}"); else out+=("${p[i]}"); fi
      done
      printf '%s\n' "${out[*]}"
      ;;
  esac
}

write_key() {
  printf '%s\n' "$2" >"$(sysctl_path "$1")"
}

need_root() {
  is_root || die "$cmd changes kernel settings and must run as root (try: sudo $0 $cmd; or $0 $cmd --dry-run / $0 show)"
}

state=$(state_dir)/sysctl.saved

# ---- show ------------------------------------------------------------------------------------
if [ "$cmd" = show ]; then
  printf '%-30s %-26s %-26s %s\n' KEY CURRENT PROPOSED ""
  for entry in "${SETTINGS[@]}"; do
    IFS='|' read -r key mode prop what <<<"$entry"
    if ! cur=$(read_key "$key"); then
      printf '%-30s %-26s %-26s %s\n' "$key" "(absent)" "-" "skipped: not on this kernel"
      printf '    %s\n' "$what"
      continue
    fi
    tgt=$(target_value "$mode" "$prop" "$cur")
    if [ "$mode" = keep ]; then
      tgt="-"
      status="not changed"
    elif [ "$tgt" = "$cur" ]; then
      status="ok"
      if [ "$mode" != set ] && [ "$(target_value set "$prop" "$cur")" != "$cur" ]; then status="ok (already higher)"; fi
    else
      status="would change"
    fi
    printf '%-30s %-26s %-26s %s\n' "$key" "$cur" "$tgt" "$status"
    printf '    %s\n' "$what"
  done
  if [ -s "$state" ]; then
    echo
    echo "saved originals from an earlier apply: $state ($(wc -l <"$state") keys; '$PROG revert' restores them)"
  fi
  exit 0
fi

# ---- apply -----------------------------------------------------------------------------------
if [ "$cmd" = apply ]; then
  ((dry)) || need_root
  declare -A SAVED=()
  if [ -s "$state" ]; then
    while IFS=$'\t' read -r k v; do SAVED[$k]=$v; done <"$state"
  fi
  ((dry)) || mkdir -p "$(dirname "$state")" || die "cannot create $(dirname "$state") (set STATE_DIR)"
  changed=0 failed=0 persist_lines=()
  for entry in "${SETTINGS[@]}"; do
    IFS='|' read -r key mode prop _ <<<"$entry"
    [ "$mode" = keep ] && continue
    if ! cur=$(read_key "$key"); then
      echo "skip   $key: not present on this kernel ($(uname -r))"
      continue
    fi
    tgt=$(target_value "$mode" "$prop" "$cur")
    persist_lines+=("$key = $tgt")
    if [ "$tgt" = "$cur" ]; then
      echo "ok     $key = $cur"
      continue
    fi
    if ((dry)); then
      echo "would  $key: $cur -> $tgt"
      continue
    fi
    [ -w "$(sysctl_path "$key")" ] || {
      echo "FAILED $key: $(sysctl_path "$key") is read-only here (container? set it on the host)" >&2
      failed=$((failed + 1))
      continue
    }
    # Save the original once; a second apply must not record our own values as "previous".
    if [ -z "${SAVED[$key]+x}" ]; then
      printf '%s\t%s\n' "$key" "$cur" >>"$state"
      SAVED[$key]=$cur
    fi
    if write_key "$key" "$tgt" 2>/dev/null; then
      echo "set    $key: $cur -> $(read_key "$key")"
      changed=$((changed + 1))
    else
      echo "FAILED $key: kernel refused '$tgt' (left at $cur)" >&2
      failed=$((failed + 1))
    fi
  done
  if ((dry)); then
    echo "dry run: nothing changed$( ((persist)) && echo "; --persist would write $PERSIST_FILE")"
    exit 0
  fi
  echo "changed $changed key(s); originals saved in $state (undo: $0 revert)"
  if ((persist)); then
    {
      echo "# Written by shardgate tuning/sysctl.sh apply --persist; removed by 'sysctl.sh revert'."
      printf '%s\n' "${persist_lines[@]}"
    } >"$PERSIST_FILE"
    echo "wrote $PERSIST_FILE (applied at boot by systemd-sysctl)"
  fi
  ((failed == 0)) || exit 1
  exit 0
fi

# ---- revert ----------------------------------------------------------------------------------
((dry)) || need_root
if [ ! -s "$state" ]; then
  echo "nothing to revert: no saved values in $state"
else
  keep=() failed=0 restored=0
  while IFS=$'\t' read -r key old; do
    [ -n "$key" ] || continue
    if ! cur=$(read_key "$key"); then
      echo "skip   $key: no longer present; dropping its saved value"
      continue
    fi
    if ((dry)); then
      echo "would  $key: $cur -> $old"
      continue
    fi
    if write_key "$key" "$old" 2>/dev/null; then
      echo "restored $key: $cur -> $(read_key "$key")"
      restored=$((restored + 1))
    else
      echo "FAILED $key: could not write '$old'; kept in $state" >&2
      keep+=("$key"$'\t'"$old")
      failed=$((failed + 1))
    fi
  done <"$state"
  if ((!dry)); then
    if [ ${#keep[@]} -eq 0 ]; then
      rm -f "$state"
      rmdir "$(dirname "$state")" 2>/dev/null || true
      echo "restored $restored key(s); removed $state"
    else
      printf '%s\n' "${keep[@]}" >"$state.tmp" && mv "$state.tmp" "$state"
    fi
  fi
fi
if [ -e "$PERSIST_FILE" ]; then
  if ((dry)); then
    echo "would remove $PERSIST_FILE"
  else
    rm -f "$PERSIST_FILE" && echo "removed $PERSIST_FILE"
  fi
fi
((dry)) && echo "dry run: nothing changed"
((${failed:-0} == 0)) || exit 1
exit 0
