# shellcheck shell=bash
# Helpers shared by the shardgate tuning scripts (sourced, not run): messages, CPU-list
# arithmetic, NIC -> IRQ discovery from sysfs and /proc/interrupts, and the state directory
# where apply/pin steps save the values they replace. Reads only; nothing here writes.

PROG=$(basename "$0")

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

warn() {
  printf '%s: warning: %s\n' "$PROG" "$*" >&2
}

is_root() {
  [ "$(id -u)" -eq 0 ]
}

# Where saved values live; STATE_DIR overrides (tests, read-only /var).
state_dir() {
  printf '%s\n' "${STATE_DIR:-/var/lib/shardgate-tuning}"
}

# "0-3,8,10-11" -> "0 1 2 3 8 10 11" (one line, space separated, input order kept).
expand_cpulist() {
  local list=${1//[[:space:]]/} part lo hi out=() i
  [ -n "$list" ] || { echo; return 0; }
  local IFS=,
  for part in $list; do
    [ -n "$part" ] || continue
    if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
      lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[2]}
      ((lo <= hi)) || return 1
      for ((i = lo; i <= hi; i++)); do out+=("$i"); done
    elif [[ $part =~ ^[0-9]+$ ]]; then
      out+=("$part")
    else
      return 1
    fi
  done
  IFS=' '
  printf '%s\n' "${out[*]-}"
}

# "0 1 2 3 8" (any order, duplicates allowed) -> "0-3,8".
compress_cpulist() {
  local sorted c start=-1 prev=-1 ranges=""
  sorted=$(printf '%s\n' "$@" | tr ' ' '\n' | sed '/^$/d' | sort -n -u)
  for c in $sorted; do
    if ((start < 0)); then
      start=$c prev=$c
    elif ((c == prev + 1)); then
      prev=$c
    else
      ranges+="${ranges:+,}$([ "$start" -eq "$prev" ] && echo "$start" || echo "$start-$prev")"
      start=$c prev=$c
    fi
  done
  if ((start >= 0)); then
    ranges+="${ranges:+,}$([ "$start" -eq "$prev" ] && echo "$start" || echo "$start-$prev")"
  fi
  printf '%s\n' "$ranges"
}

online_cpus() {
  if [ -r /sys/devices/system/cpu/online ]; then
    expand_cpulist "$(cat /sys/devices/system/cpu/online)"
  else
    seq -s ' ' 0 $(($(getconf _NPROCESSORS_ONLN) - 1))
  fi
}

# Logical CPUs sharing a physical core with CPU $1 (itself included).
cpu_siblings() {
  local f=/sys/devices/system/cpu/cpu$1/topology/thread_siblings_list
  if [ -r "$f" ]; then
    expand_cpulist "$(cat "$f")"
  else
    echo "$1"
  fi
}

# Interfaces backed by a device (NICs): skips lo, bridges, veth, tun, ifb and other virtual ones.
nic_list() {
  local d
  for d in /sys/class/net/*; do
    [ -e "$d/device" ] || continue
    basename "$d"
  done
}

# IRQ numbers of NIC $1, one per line, sorted. Sources, in order: the device's MSI/MSI-X
# vectors (for virtio NICs they sit on the parent PCI function), /proc/interrupts lines that
# name the interface (eth0-TxRx-0, eth0-rx-1, ...), and a legacy INTx line.
nic_irqs() {
  local ifc=$1 dev real
  dev=/sys/class/net/$ifc/device
  [ -e "$dev" ] || return 0
  real=$(readlink -f "$dev")
  {
    if [ -d "$dev/msi_irqs" ]; then
      ls "$dev/msi_irqs"
    elif [[ $(basename "$real") == virtio* ]] && [ -d "$real/../msi_irqs" ]; then
      ls "$real/../msi_irqs"
    fi
    if [ -r /proc/interrupts ]; then
      awk -v ifc="$ifc" '
        $1 ~ /^[0-9]+:$/ {
          for (i = 2; i <= NF; i++)
            if ($i == ifc || index($i, ifc "-") == 1 || index($i, ifc "@") == 1 || index($i, ifc ":") == 1) {
              sub(":", "", $1); print $1; break
            }
        }' /proc/interrupts
    fi
    if [ -r "$dev/irq" ]; then
      local legacy
      legacy=$(cat "$dev/irq")
      if [ "${legacy:-0}" != 0 ] && [ -d "/proc/irq/$legacy" ]; then echo "$legacy"; fi
    fi
  } | sort -n -u
}

# The action name of IRQ $1 as /proc/interrupts shows it (last column), or "?".
irq_name() {
  local name=""
  if [ -r /proc/interrupts ]; then
    name=$(awk -v n="$1:" '$1 == n { print $NF; exit }' /proc/interrupts)
  fi
  printf '%s\n' "${name:-?}"
}

# Where IRQ $1 may go (smp_affinity_list) and where it is delivered now (effective).
irq_affinity() {
  cat "/proc/irq/$1/smp_affinity_list" 2>/dev/null || echo "?"
}

irq_effective() {
  local v=""
  v=$(cat "/proc/irq/$1/effective_affinity_list" 2>/dev/null || true)
  printf '%s\n' "${v:-$(irq_affinity "$1")}"
}

# Kernel version as a comparable integer: 5.10.3 -> 5010003.
kernel_version_num() {
  local r=${1:-$(uname -r)} a b c
  IFS=.- read -r a b c _ <<<"$r"
  c=${c%%[!0-9]*}
  printf '%d\n' "$((${a:-0} * 1000000 + ${b:-0} * 1000 + ${c:-0}))"
}

# PIDs of processes whose name (comm) is exactly $1: pgrep -x when installed, /proc otherwise.
procs_named() {
  if command -v pgrep >/dev/null 2>&1; then
    pgrep -x "$1" || true
    return 0
  fi
  local d
  for d in /proc/[0-9]*; do
    [ "$(cat "$d/comm" 2>/dev/null)" = "$1" ] && echo "${d#/proc/}"
  done
  return 0
}
