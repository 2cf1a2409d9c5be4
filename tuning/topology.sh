#!/usr/bin/env bash
# Shows this machine's CPU topology (sockets, physical cores, SMT siblings, NUMA nodes) and its
# NICs with their IRQs and queue counts, then proposes a split for shardgate: which CPUs run
# shards (`server.cpus`) and which take NIC interrupts (`irq-affinity.sh --cpus`). NIC IRQ CPUs
# are whole physical cores, so no shard shares a core with interrupt work. Read-only: it
# changes nothing. Uses lscpu when present, sysfs otherwise; ethtool only if installed.
set -euo pipefail

SCRIPT_DIR=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
  cat <<EOF
Usage: $PROG [--irq-cores K] [--help]

Prints CPU topology, NICs with their IRQs and queues, and a proposed split of CPUs between
shardgate shards and NIC interrupts, with a ready-to-paste server.cpus line and the
irq-affinity.sh command. Changes nothing.

  --irq-cores K   physical cores to reserve for NIC IRQs (default: 1 per 8 cores, at least 1,
                  at most the largest NIC queue count)
  -h, --help      this text
EOF
}

irq_cores_wanted=""
while [ $# -gt 0 ]; do
  case $1 in
    --irq-cores)
      [ $# -ge 2 ] || die "--irq-cores needs a number"
      [[ $2 =~ ^[1-9][0-9]*$ ]] || die "--irq-cores: expected a positive number, got '$2'"
      irq_cores_wanted=$2
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# ---- CPUs: cpu -> socket, core key, NUMA node ---------------------------------------------
declare -A SOCKET=() CORE=() NODE=()
CPUS=()
source_desc=sysfs
# lscpu -p lists online CPUs only; its CORE column is a machine-wide physical core id.
if command -v lscpu >/dev/null 2>&1 && lscpu -p=CPU,CORE,SOCKET,NODE >/dev/null 2>&1; then
  source_desc="lscpu -p"
  while IFS=, read -r cpu core sock node; do
    [[ $cpu =~ ^[0-9]+$ ]] || continue
    CPUS+=("$cpu")
    SOCKET[$cpu]=${sock:-0}
    CORE[$cpu]="${sock:-0}:${core:-$cpu}"
    NODE[$cpu]=${node:-0}
  done < <(lscpu -p=CPU,CORE,SOCKET,NODE 2>/dev/null | grep -v '^#')
fi
if [ ${#CPUS[@]} -eq 0 ]; then
  source_desc=sysfs
  read -r -a CPUS <<<"$(online_cpus)"
fi
for cpu in "${CPUS[@]}"; do
  [ -n "${CORE[$cpu]-}" ] && continue
  t=/sys/devices/system/cpu/cpu$cpu/topology
  sock=$(cat "$t/physical_package_id" 2>/dev/null || echo 0)
  [ "$sock" = -1 ] && sock=0
  core=$(cat "$t/core_id" 2>/dev/null || echo "$cpu")
  node=0
  for n in /sys/devices/system/cpu/cpu"$cpu"/node[0-9]*; do
    [ -e "$n" ] && node=${n##*node}
  done
  SOCKET[$cpu]=$sock
  CORE[$cpu]="$sock:$core"
  NODE[$cpu]=$node
done

# Physical cores in order of their first CPU; each with its logical CPUs (SMT siblings).
declare -A CORE_CPUS=()
CORE_ORDER=()
for cpu in "${CPUS[@]}"; do
  k=${CORE[$cpu]}
  if [ -z "${CORE_CPUS[$k]-}" ]; then
    CORE_ORDER+=("$k")
    CORE_CPUS[$k]=$cpu
  else
    CORE_CPUS[$k]+=" $cpu"
  fi
done
# Say so when sysfs sibling lists and the core column disagree (some VMs report odd ids).
for cpu in "${CPUS[@]}"; do
  sib=$(cpu_siblings "$cpu")
  if [ "$(wc -w <<<"$sib")" -gt "$(wc -w <<<"${CORE_CPUS[${CORE[$cpu]}]}")" ]; then
    warn "CPU $cpu: sysfs lists SMT siblings '$sib', $source_desc groups it with '${CORE_CPUS[${CORE[$cpu]}]}'; using $source_desc"
  fi
done

nsock=$(printf '%s\n' "${SOCKET[@]}" | sort -u | wc -l)
nnode=$(printf '%s\n' "${NODE[@]}" | sort -u | wc -l)
ncores=${#CORE_ORDER[@]}
ncpu=${#CPUS[@]}
threads_per_core=$(((ncpu + ncores - 1) / ncores))

echo "== CPU topology (from $source_desc) =="
printf 'online CPUs: %s (%d)   sockets: %d   physical cores: %d   threads/core: %d   NUMA nodes: %d\n' \
  "$(compress_cpulist "${CPUS[@]}")" "$ncpu" "$nsock" "$ncores" "$threads_per_core" "$nnode"
self_allowed=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
isolated=$(cat /sys/devices/system/cpu/isolated 2>/dev/null || true)
echo "this shell may run on: $self_allowed${isolated:+   isolated (isolcpus): $isolated}"
if [ -d /sys/devices/system/node ]; then
  for n in /sys/devices/system/node/node[0-9]*; do
    [ -e "$n/cpulist" ] || continue
    printf 'NUMA %s: CPUs %s\n' "${n##*/}" "$(cat "$n/cpulist")"
  done
fi

# CPU -> NIC IRQs currently delivered there (effective affinity), for the table.
declare -A CPU_IRQS=()
mapfile -t NICS < <(nic_list)
for ifc in "${NICS[@]}"; do
  while read -r irq; do
    [ -n "$irq" ] || continue
    for c in $(expand_cpulist "$(irq_effective "$irq")" 2>/dev/null || true); do
      CPU_IRQS[$c]+="${CPU_IRQS[$c]:+,}$irq"
    done
  done < <(nic_irqs "$ifc")
done

echo
printf '%-5s %-7s %-6s %-5s %-14s %s\n' CPU SOCKET CORE NODE SMT-SIBLINGS "NIC IRQs now delivered here"
for cpu in "${CPUS[@]}"; do
  printf '%-5s %-7s %-6s %-5s %-14s %s\n' "$cpu" "${SOCKET[$cpu]}" "${CORE[$cpu]#*:}" "${NODE[$cpu]}" \
    "$(compress_cpulist "${CORE_CPUS[${CORE[$cpu]}]}")" "${CPU_IRQS[$cpu]:--}"
done

# ---- NICs -----------------------------------------------------------------------------------
echo
echo "== NICs =="
max_queues=0
nic_node=""
nic_with_irqs=()
if [ ${#NICS[@]} -eq 0 ]; then
  echo "no device-backed network interfaces found (only virtual ones such as lo)"
fi
for ifc in "${NICS[@]}"; do
  d=/sys/class/net/$ifc
  driver=$(basename "$(readlink -f "$d/device/driver" 2>/dev/null || echo ?)")
  state=$(cat "$d/operstate" 2>/dev/null || echo ?)
  speed=$(cat "$d/speed" 2>/dev/null || true)
  [[ $speed =~ ^[0-9]+$ ]] && [ "$speed" -gt 0 ] && speed="${speed}Mb/s" || speed="speed n/a"
  numa=$(cat "$d/device/numa_node" 2>/dev/null || echo -1)
  rxq=$(find "$d/queues" -maxdepth 1 -name 'rx-*' 2>/dev/null | wc -l)
  txq=$(find "$d/queues" -maxdepth 1 -name 'tx-*' 2>/dev/null | wc -l)
  printf '%s: driver %s, %s, %s, NUMA node %s, queues rx %s / tx %s\n' \
    "$ifc" "$driver" "$state" "$speed" "$([ "$numa" = -1 ] && echo "n/a" || echo "$numa")" "$rxq" "$txq"
  if command -v ethtool >/dev/null 2>&1; then
    if ch=$(ethtool -l "$ifc" 2>/dev/null); then
      # "Pre-set maximums" block first, then "Current hardware settings".
      summary=$(awk -F: '
        /maximums/ { blk = "max" } /Current/ { blk = "cur" }
        /^(RX|TX|Other|Combined):/ { gsub(/[ \t]/, "", $2); v[blk "," $1] = $2 }
        END { printf "combined %s (max %s), rx %s, tx %s", v["cur,Combined"], v["max,Combined"], v["cur,RX"], v["cur,TX"] }' <<<"$ch")
      echo "  ethtool -l: $summary"
    else
      echo "  ethtool -l: not supported by this driver"
    fi
  else
    echo "  ethtool: not installed (channel counts above come from sysfs queues)"
  fi
  mapfile -t irqs < <(nic_irqs "$ifc")
  if [ ${#irqs[@]} -eq 0 ]; then
    echo "  IRQs: none found"
    continue
  fi
  nic_with_irqs+=("$ifc")
  [ -z "$nic_node" ] && [ "$numa" != -1 ] && nic_node=$numa
  q=$((rxq > txq ? rxq : txq))
  ((q > max_queues)) && max_queues=$q
  echo "  IRQs (${#irqs[@]}):"
  for irq in "${irqs[@]}"; do
    total=$(awk -v n="$irq:" '$1 == n { s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; print s; exit }' /proc/interrupts)
    printf '    %-5s %-24s allowed CPUs %-8s effective %-6s count %s\n' "$irq" "$(irq_name "$irq")" \
      "$(irq_affinity "$irq")" "$(irq_effective "$irq")" "${total:-?}"
  done
done
if [ -n "$(procs_named irqbalance)" ]; then
  echo "irqbalance: running (it moves IRQs around; irq-affinity.sh explains how to stop it)"
else
  echo "irqbalance: not running"
fi

# ---- Proposal -------------------------------------------------------------------------------
echo
echo "== Proposed split =="
as_yaml() { local joined="" c; for c in "$@"; do joined+="${joined:+, }$c"; done; printf '[%s]' "$joined"; }

if ((ncpu <= 2 || ncores < 2)); then
  if ((ncpu <= 2)); then
    echo "Only $ncpu CPU(s): a split between shards and NIC IRQs is not possible here."
  else
    echo "All $ncpu CPUs are SMT threads of one physical core: IRQs would share that core with every"
    echo "shard, so a split is not possible."
  fi
  echo "Run shards on all CPUs and leave NIC IRQs where the kernel put them:"
  echo
  echo "  server:"
  echo "    cpus: $(as_yaml "${CPUS[@]}")"
  echo
  echo "No irq-affinity.sh step is proposed (every CPU runs a shard)."
  exit 0
fi

# NIC IRQ cores: 1 per 8 physical cores (at least 1), no more than the NIC has queues, and
# never more than half the cores. Picked from the NIC's NUMA node, lowest-numbered first: CPU 0
# usually carries housekeeping (timers, other devices) already.
k=${irq_cores_wanted:-$(((ncores + 7) / 8))}
if [ -z "$irq_cores_wanted" ] && ((max_queues > 0 && k > max_queues)); then k=$max_queues; fi
((k < 1)) && k=1
if ((k > ncores / 2)); then
  k=$((ncores / 2))
  ((k < 1)) && k=1
fi
[ -n "$irq_cores_wanted" ] && [ "$k" != "$irq_cores_wanted" ] &&
  warn "--irq-cores $irq_cores_wanted leaves too few cores for shards; using $k"
want_node=${nic_node:-${NODE[${CPUS[0]}]}}

irq_core_keys=()
for pass in node other; do
  for key in "${CORE_ORDER[@]}"; do
    ((${#irq_core_keys[@]} < k)) || break
    first=${CORE_CPUS[$key]%% *}
    if [ "$pass" = node ] && [ "${NODE[$first]}" != "$want_node" ]; then continue; fi
    if [ "$pass" = other ] && [ "${NODE[$first]}" = "$want_node" ]; then continue; fi
    irq_core_keys+=("$key")
  done
done
declare -A IS_IRQ_CORE=()
for key in "${irq_core_keys[@]}"; do IS_IRQ_CORE[$key]=1; done
irq_cpus=() shard_cpus=() shard_one_per_core=()
for key in "${CORE_ORDER[@]}"; do
  read -r -a members <<<"${CORE_CPUS[$key]}"
  if [ -n "${IS_IRQ_CORE[$key]-}" ]; then
    irq_cpus+=("${members[@]}")
  else
    shard_one_per_core+=("${members[0]}")
  fi
done
for cpu in "${CPUS[@]}"; do
  [ -n "${IS_IRQ_CORE[${CORE[$cpu]}]-}" ] || shard_cpus+=("$cpu")
done
mapfile -t shard_cpus < <(printf '%s\n' "${shard_cpus[@]}" | sort -n)
irq_list=$(compress_cpulist "${irq_cpus[@]}")

printf 'NIC IRQ CPUs : %-12s (%d physical core(s)%s%s)\n' "$irq_list" "${#irq_core_keys[@]}" \
  "$([ "$threads_per_core" -gt 1 ] && echo ", with their SMT siblings")" \
  "$([ "$nnode" -gt 1 ] && echo ", NUMA node $want_node")"
printf 'Shard CPUs   : %-12s (%d shards)\n' "$(compress_cpulist "${shard_cpus[@]}")" "${#shard_cpus[@]}"
if [ ${#nic_with_irqs[@]} -eq 0 ]; then
  echo "(no NIC IRQs were found, so the IRQ step below has nothing to move on this machine)"
fi
echo
echo "Paste into the shardgate config (shards: auto then starts one shard per listed CPU):"
echo
echo "  server:"
echo "    cpus: $(as_yaml "${shard_cpus[@]}")"
echo
echo "Then pin the NIC interrupts (root; --dry-run first to see the plan):"
echo
echo "  $SCRIPT_DIR/irq-affinity.sh --cpus $irq_list"
if ((threads_per_core > 1)); then
  echo
  echo "Alternative with one shard per physical core (no two shards on SMT siblings; fewer shards,"
  echo "steadier latency):  cpus: $(as_yaml "${shard_one_per_core[@]}")"
fi
if ((nnode > 1)); then
  echo
  echo "Note: shards on a NUMA node other than the NIC's ($want_node) reach it across the interconnect;"
  echo "with several NICs on different nodes, run irq-affinity.sh once per NIC (--iface) with CPUs of its node."
fi
