#!/usr/bin/env bash
# Pins NIC interrupts to a CPU list so they stay off shardgate's shard CPUs: writes the list to
# /proc/irq/N/smp_affinity_list for every IRQ of the chosen NIC(s) (all device-backed
# interfaces by default, never lo), after saving each IRQ's previous list to a state file
# ($STATE_DIR/irq.saved, default /var/lib/shardgate-tuning) so --revert puts them back.
# Warns when irqbalance runs (it would undo the pinning) but never stops it.
set -euo pipefail

SCRIPT_DIR=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
  cat <<EOF
Usage: $PROG --cpus LIST [--iface IFACE]... [--dry-run]
       $PROG --revert [--iface IFACE]... [--dry-run]

Pins the IRQs of the given NIC(s) (default: every device-backed interface; lo and other
virtual interfaces have none) to the CPUs in LIST, e.g. --cpus 0,8 or --cpus 0-1.
Previous affinities are saved in \$STATE_DIR/irq.saved (default
/var/lib/shardgate-tuning/irq.saved); running again keeps the first saved values.

  --cpus LIST     CPUs that take the NIC interrupts (topology.sh proposes a list)
  --iface IFACE   only this interface (repeatable)
  --dry-run       print what would be written; changes nothing (no root needed)
  --revert        restore the saved affinities and remove the state file
  -h, --help      this text

Needs root and a writable /proc/irq (not the case in most containers).
EOF
}

cpus="" dry=0 revert=0
ifaces=()
while [ $# -gt 0 ]; do
  case $1 in
    --cpus)
      [ $# -ge 2 ] || die "--cpus needs a CPU list, e.g. --cpus 0,8"
      cpus=$2
      shift 2
      ;;
    --cpus=*) cpus=${1#--cpus=}; shift ;;
    --iface)
      [ $# -ge 2 ] || die "--iface needs an interface name"
      ifaces+=("$2")
      shift 2
      ;;
    --iface=*) ifaces+=("${1#--iface=}"); shift ;;
    --dry-run) dry=1; shift ;;
    --revert) revert=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

state=$(state_dir)/irq.saved

# Refuse early and clearly when nothing could be written.
require_writable() {
  local irq=$1
  is_root || die "must run as root to change IRQ affinity (try: sudo $0 ${*:2}; or --dry-run to preview)"
  [ -w "/proc/irq/$irq/smp_affinity_list" ] ||
    die "/proc/irq is not writable here (read-only /proc in a container, or no such IRQ $irq); run on the host as root"
}

irqbalance_note() {
  if [ -n "$(procs_named irqbalance)" ]; then
    warn "irqbalance is running and will move these IRQs again within seconds."
    warn "  stop it:  systemctl stop irqbalance && systemctl disable irqbalance"
    warn "  or keep it and ban the shard CPUs: IRQBALANCE_BANNED_CPULIST=<shard cpus> in /etc/default/irqbalance"
  fi
}

# ---- revert ---------------------------------------------------------------------------------
if ((revert)); then
  [ -z "$cpus" ] || die "--revert restores saved values; it takes no --cpus"
  if [ ! -s "$state" ]; then
    echo "nothing to revert: no saved IRQ affinities in $state"
    exit 0
  fi
  sel=" ${ifaces[*]-} "
  keep=() failed=0 restored=0
  while IFS=$'\t' read -r irq ifc old; do
    [[ $irq =~ ^[0-9]+$ ]] || continue
    if [ ${#ifaces[@]} -gt 0 ] && [[ $sel != *" $ifc "* ]]; then
      keep+=("$irq"$'\t'"$ifc"$'\t'"$old")
      continue
    fi
    if [ ! -e "/proc/irq/$irq" ]; then
      echo "IRQ $irq ($ifc): gone (device removed or driver reloaded); dropping its saved value"
      continue
    fi
    if ((dry)); then
      echo "would restore IRQ $irq ($ifc, $(irq_name "$irq")): $(irq_affinity "$irq") -> $old"
      keep+=("$irq"$'\t'"$ifc"$'\t'"$old")
      continue
    fi
    require_writable "$irq" --revert
    if printf '%s\n' "$old" >"/proc/irq/$irq/smp_affinity_list" 2>/dev/null; then
      echo "restored IRQ $irq ($ifc, $(irq_name "$irq")): now $(irq_affinity "$irq")"
      restored=$((restored + 1))
    else
      echo "IRQ $irq ($ifc): could not restore '$old' (kernel refused); keeping it in $state" >&2
      keep+=("$irq"$'\t'"$ifc"$'\t'"$old")
      failed=$((failed + 1))
    fi
  done <"$state"
  if ((dry)); then
    echo "dry run: nothing changed ($state kept)"
    exit 0
  fi
  if [ ${#keep[@]} -eq 0 ]; then
    rm -f "$state"
    rmdir "$(dirname "$state")" 2>/dev/null || true
    echo "all saved IRQ affinities restored ($restored); removed $state"
  else
    printf '%s\n' "${keep[@]}" >"$state.tmp" && mv "$state.tmp" "$state"
    echo "restored $restored; $((${#keep[@]})) entr$([ ${#keep[@]} -eq 1 ] && echo y || echo ies) left in $state"
  fi
  ((failed == 0)) || exit 1
  exit 0
fi

# ---- pin ------------------------------------------------------------------------------------
[ -n "$cpus" ] || { usage >&2; die "--cpus LIST is required (or --revert)"; }
cpu_words=$(expand_cpulist "$cpus") || die "--cpus: cannot parse '$cpus' (expected e.g. 0,8 or 0-3,8)"
[ -n "$cpu_words" ] || die "--cpus: empty list"
read -r -a online <<<"$(online_cpus)"
for c in $cpu_words; do
  [[ " ${online[*]} " == *" $c "* ]] || die "--cpus: CPU $c is not online (online: $(compress_cpulist "${online[@]}"))"
done
want=$(compress_cpulist "$cpu_words")

if [ ${#ifaces[@]} -eq 0 ]; then
  mapfile -t ifaces < <(nic_list)
  [ ${#ifaces[@]} -gt 0 ] || die "no device-backed network interfaces found"
else
  for ifc in "${ifaces[@]}"; do
    [ "$ifc" != lo ] || die "lo has no IRQs"
    [ -e "/sys/class/net/$ifc" ] || die "no such interface: $ifc"
  done
fi

plan=()
for ifc in "${ifaces[@]}"; do
  mapfile -t irqs < <(nic_irqs "$ifc")
  if [ ${#irqs[@]} -eq 0 ]; then
    echo "$ifc: no IRQs found (virtual interface?); skipped"
    continue
  fi
  for irq in "${irqs[@]}"; do plan+=("$irq"$'\t'"$ifc"); done
done
[ ${#plan[@]} -gt 0 ] || die "no NIC IRQs found for: ${ifaces[*]}"

if ((dry)); then
  echo "dry run: would pin ${#plan[@]} IRQ(s) to CPUs $want (saving old values in $state)"
  for p in "${plan[@]}"; do
    IFS=$'\t' read -r irq ifc <<<"$p"
    printf '  IRQ %-5s %-8s %-24s %s -> %s\n' "$irq" "$ifc" "$(irq_name "$irq")" "$(irq_affinity "$irq")" "$want"
  done
  is_root || echo "note: a real run needs root"
  [ -w "/proc/irq/${plan[0]%%$'\t'*}/smp_affinity_list" ] || echo "note: /proc/irq is not writable here; a real run would refuse"
  irqbalance_note
  exit 0
fi

require_writable "${plan[0]%%$'\t'*}" --cpus "$cpus"
mkdir -p "$(dirname "$state")" || die "cannot create $(dirname "$state") (set STATE_DIR)"

# Keep the first saved value of an IRQ: a second run must not record our own pinning as "old".
declare -A SAVED=()
if [ -s "$state" ]; then
  while IFS=$'\t' read -r irq _ old; do SAVED[$irq]=$old; done <"$state"
fi
pinned=0 failed=0
for p in "${plan[@]}"; do
  IFS=$'\t' read -r irq ifc <<<"$p"
  old=$(irq_affinity "$irq")
  if [ -z "${SAVED[$irq]-}" ]; then
    printf '%s\t%s\t%s\n' "$irq" "$ifc" "$old" >>"$state"
    SAVED[$irq]=$old
  fi
  if printf '%s\n' "$want" >"/proc/irq/$irq/smp_affinity_list" 2>/dev/null; then
    printf 'IRQ %-5s %-8s %-24s %s -> %s (effective %s)\n' "$irq" "$ifc" "$(irq_name "$irq")" "$old" \
      "$(irq_affinity "$irq")" "$(irq_effective "$irq")"
    pinned=$((pinned + 1))
  else
    printf 'IRQ %-5s %-8s %-24s refused by the kernel (managed IRQ, or CPUs %s not allowed); left at %s\n' \
      "$irq" "$ifc" "$(irq_name "$irq")" "$want" "$old" >&2
    failed=$((failed + 1))
  fi
done
echo "pinned $pinned IRQ(s) to CPUs $want; previous values saved in $state (undo: $0 --revert)"
irqbalance_note
if ((failed)); then
  echo "$failed IRQ(s) could not be moved; the rest are pinned" >&2
  exit 1
fi
