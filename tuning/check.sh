#!/usr/bin/env bash
# Health check of a host (and optionally a running shardgate) for shard-per-core serving:
# io_uring availability (kernel version, kernel.io_uring_disabled, seccomp, and a real
# io_uring_setup probe), memlock and open-file limits, listen backlog cap, transparent huge
# pages, CPU frequency governor, and for a running shardgate each shard-N thread's CPU pinning
# against server.cpus, its io_uring rings and NIC IRQs landing on shard CPUs. Each finding is
# OK, WARN or FAIL with one line of advice. Read-only: it never signals or changes anything.
# Exit status: 0 when nothing FAILed, 1 otherwise (2 for bad usage).
set -euo pipefail

SCRIPT_DIR=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
  cat <<EOF
Usage: $PROG [--pid PID | --admin HOST:PORT] [--config FILE]

Checks this host for shardgate and, when a shardgate process is given or found, how its
shards are pinned. Without --pid/--admin it looks for a process named shardgate (pgrep -x);
with --admin it asks /ready and /metrics and finds the process listening on that port.
Without --config it reads the --config path from the process's command line, if any.

  --pid PID          inspect this shardgate process (read-only)
  --admin HOST:PORT  shardgate's admin listener, e.g. 127.0.0.1:9090
  --config FILE      the config the process runs (for server.cpus, pin, io_uring_entries)
  -h, --help         this text

Exit status: 0 if no check FAILed, 1 otherwise.
EOF
}

pid="" admin="" config=""
while [ $# -gt 0 ]; do
  case $1 in
    --pid) [ $# -ge 2 ] || { usage >&2; exit 2; }; pid=$2; shift 2 ;;
    --admin) [ $# -ge 2 ] || { usage >&2; exit 2; }; admin=$2; shift 2 ;;
    --config) [ $# -ge 2 ] || { usage >&2; exit 2; }; config=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; echo "$PROG: unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [ -n "$pid" ] && [ -n "$admin" ]; then
  echo "$PROG: give --pid or --admin, not both" >&2
  exit 2
fi
[ -z "$pid" ] || [[ $pid =~ ^[0-9]+$ ]] || { echo "$PROG: --pid: not a number: $pid" >&2; exit 2; }

# ---- reporting -----------------------------------------------------------------------------
n_ok=0 n_warn=0 n_fail=0
if [ -t 1 ]; then
  C_OK=$'\e[32m' C_WARN=$'\e[33m' C_FAIL=$'\e[31m' C_DIM=$'\e[2m' C_OFF=$'\e[0m'
else
  C_OK="" C_WARN="" C_FAIL="" C_DIM="" C_OFF=""
fi
# report LEVEL TOPIC FINDING [ADVICE]; LEVEL is OK, WARN, FAIL or SKIP (not counted).
report() {
  local level=$1 topic=$2 finding=$3 advice=${4-} color
  case $level in
    OK) color=$C_OK; n_ok=$((n_ok + 1)) ;;
    WARN) color=$C_WARN; n_warn=$((n_warn + 1)) ;;
    FAIL) color=$C_FAIL; n_fail=$((n_fail + 1)) ;;
    *) color=$C_DIM ;;
  esac
  printf '%s%-4s%s  %-18s %s\n' "$color" "$level" "$C_OFF" "$topic" "$finding"
  [ -z "$advice" ] || printf '      %-18s -> %s\n' "" "$advice"
}
section() { printf '\n== %s ==\n' "$1"; }

kver=$(uname -r)
knum=$(kernel_version_num "$kver")

# ---- config (tiny reader for the server: block; block or flow style) ------------------------
# Prints key=value for the first-level keys of `server:`; lists come out as "1,2,3".
read_server_config() {
  awk '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
    function unquote(s) { s = trim(s); if (s ~ /^".*"$/ || s ~ /^\x27.*\x27$/) s = substr(s, 2, length(s) - 2); return s }
    function emit(k, v) {
      v = trim(v)
      if (v ~ /^\[/) { gsub(/[\[\] \t]/, "", v) } else v = unquote(v)
      print trim(k) "=" v
    }
    function pair(p,   i) { p = trim(p); i = index(p, ":"); if (i) emit(substr(p, 1, i - 1), substr(p, i + 1)) }
    function flow(body,   i, c, depth, cur) {
      depth = 0; cur = ""
      for (i = 1; i <= length(body); i++) {
        c = substr(body, i, 1)
        if (c == "[" || c == "{") depth++
        if (c == "]" || c == "}") depth--
        if (c == "," && depth == 0) { pair(cur); cur = "" } else cur = cur c
      }
      pair(cur)
    }
    function depthof(s,   t, o, cl) { t = s; o = gsub(/[\[{]/, "", t); t = s; cl = gsub(/[\]}]/, "", t); return o - cl }
    function finish() { if (pending != "") emit(pending, "[" list "]"); pending = ""; list = "" }
    {
      line = $0
      sub(/[ \t]+#.*$/, "", line); sub(/^#.*$/, "", line)
    }
    collecting {
      body = body " " line; d += depthof(line)
      if (d <= 0) { collecting = 0; sub(/}[ \t]*$/, "", body); flow(body) }
      next
    }
    arr != "" {
      arrv = arrv " " line
      if (line ~ /\]/) { emit(arr, arrv); arr = "" }
      next
    }
    /^server:[ \t]*\{/ {
      body = line; sub(/^server:[ \t]*\{/, "", body); d = 1 + depthof(body)
      if (d <= 0) { sub(/}[ \t]*$/, "", body); flow(body) } else collecting = 1
      next
    }
    /^server:[ \t]*$/ { insrv = 1; ind = -1; next }
    insrv && line ~ /^[^ \t]/ { finish(); insrv = 0 }
    insrv {
      if (line ~ /^[ \t]*$/) next
      match(line, /^[ \t]*/); this = RLENGTH
      if (ind < 0) ind = this
      if (this == ind && line !~ /^[ \t]*-/) {
        finish()
        i = index(line, ":"); k = trim(substr(line, 1, i - 1)); v = trim(substr(line, i + 1))
        if (v == "") pending = k
        else if (v ~ /^\[/ && v !~ /\]/) { arr = k; arrv = v }
        else emit(k, v)
      } else if (pending != "" && line ~ /^[ \t]*-/) {
        item = line; sub(/^[ \t]*-[ \t]*/, "", item)
        list = list (list == "" ? "" : ",") unquote(item)
      }
    }
    END { finish() }
  ' "$1"
}

declare -A CFG=()
cfg_source=""
load_config() {
  local file=$1 k v
  [ -r "$file" ] || { report FAIL config "cannot read $file" "pass the config the process runs with --config FILE"; return; }
  while IFS='=' read -r k v; do CFG[$k]=$v; done < <(read_server_config "$file")
  cfg_source=$file
}

# ---- process discovery ------------------------------------------------------------------------
# PID of the process listening on TCP port $1 (this network namespace; needs root for others').
pid_for_port() {
  local port_hex inode fd
  port_hex=$(printf '%04X' "$1")
  inode=$(awk -v p=":$port_hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10; exit }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)
  [ -n "$inode" ] || return 1
  for fd in /proc/[0-9]*/fd/*; do
    if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ]; then
      fd=${fd#/proc/}
      echo "${fd%%/*}"
      return 0
    fi
  done
  return 1
}

# GET http://$1$2 -> "STATUS BODY" on one line; empty when unreachable.
http_get() {
  local hostport=$1 path=$2 host port
  if command -v curl >/dev/null 2>&1; then
    curl -s -m 3 -o - -w '\n%{http_code}' "http://$hostport$path" 2>/dev/null |
      awk '{ lines[NR] = $0 } END { if (NR && lines[NR] != "000") { printf "%s ", lines[NR]; for (i = 1; i < NR; i++) print lines[i] } }'
    return 0
  fi
  host=${hostport%:*} port=${hostport##*:}
  host=${host#[} host=${host%]}
  # shellcheck disable=SC2016 # the inner script expands its own positional parameters
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$3" "$1" >&3
    cat <&3' _ "$host" "$port" "$path" 2>/dev/null |
    awk 'NR == 1 { status = $2; next } body { print; next } /^\r?$/ { body = 1; printf "%s ", status }' || true
}

# ============================================================================================
section "kernel and io_uring"

if ((knum >= 5010000)); then
  report OK kernel "$kver (io_uring is mature from 5.10)"
elif ((knum >= 5001000)); then
  report WARN kernel "$kver: io_uring present but early (before 5.10)" \
    "upgrade to a 5.10+ LTS kernel; older ones lack features and charge rings to memlock"
else
  report FAIL kernel "$kver: no io_uring (needs 5.1+, really 5.10+)" \
    "shardgate will run on the epoll fallback; upgrade the kernel for io_uring"
fi

disabled_file=/proc/sys/kernel/io_uring_disabled
if [ -r "$disabled_file" ]; then
  d=$(cat "$disabled_file")
  case $d in
    0) report OK io_uring_disabled "0 (io_uring allowed)" ;;
    1) report WARN io_uring_disabled "1: only CAP_SYS_ADMIN or kernel.io_uring_group members may create rings" \
      "run shardgate in that group (sysctl kernel.io_uring_group=GID) or set 0 (tuning/sysctl.sh apply)" ;;
    *) report FAIL io_uring_disabled "$d: io_uring disabled system-wide; shardgate will use epoll" \
      "sysctl -w kernel.io_uring_disabled=0 (tuning/sysctl.sh apply), if your security policy allows" ;;
  esac
else
  report OK io_uring_disabled "not present on this kernel (no system-wide switch; before 6.6)"
fi

# Ask the kernel for real: io_uring_setup(8 entries) is syscall 425 on x86_64 and aarch64.
probe=""
if command -v python3 >/dev/null 2>&1; then
  probe=$(python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
fd = libc.syscall(ctypes.c_long(425), ctypes.c_uint(8), params)
if fd >= 0:
    os.close(fd)
    print("ok")
else:
    print(ctypes.get_errno())
' 2>/dev/null || true)
  probe_tool=python3
fi
if [ -z "$probe" ] && command -v perl >/dev/null 2>&1; then
  probe=$(perl -MPOSIX -e 'my $p = "\0" x 120; my $fd = syscall(425, 8, $p);
    if ($fd >= 0) { POSIX::close($fd); print "ok\n" } else { print $! + 0, "\n" }' 2>/dev/null || true)
  probe_tool=perl
fi
seccomp_self=$(awk '/^Seccomp:/ { print $2 }' /proc/self/status 2>/dev/null || true)
case $(uname -m) in
  x86_64 | aarch64) arch_ok=1 ;;
  *) arch_ok=0 ;;
esac
if ((!arch_ok)); then
  report SKIP "io_uring probe" "syscall number 425 is only known for x86_64/aarch64 here ($(uname -m))"
elif [ -z "$probe" ]; then
  report WARN "io_uring probe" "not run: neither python3 (ctypes) nor perl is available" \
    "install python3, or check shardgate's log for 'io_uring driver' vs 'using epoll'"
else
  case $probe in
    ok) report OK "io_uring probe" "io_uring_setup succeeded ($probe_tool, this shell's user and seccomp context)" ;;
    1) report FAIL "io_uring probe" "io_uring_setup: EPERM (operation not permitted)" \
      "$(if [ "${seccomp_self:-0}" = 2 ]; then echo "a seccomp filter blocks it: allow io_uring_setup/enter/register (container profile, systemd SystemCallFilter=)"; else echo "io_uring_disabled/io_uring_group or an LSM denies it; see above"; fi)" ;;
    38) report FAIL "io_uring probe" "io_uring_setup: ENOSYS (not implemented)" \
      "kernel built without io_uring, or a seccomp profile answers ENOSYS (common container default): allow io_uring_* syscalls" ;;
    12) report WARN "io_uring probe" "io_uring_setup: ENOMEM" \
      "raise the memlock limit (ulimit -l / LimitMEMLOCK=) - older kernels charge rings to it" ;;
    *) report WARN "io_uring probe" "io_uring_setup failed with errno $probe" \
      "check dmesg and shardgate's startup log ('io_uring driver' or 'using epoll')" ;;
  esac
fi

case ${seccomp_self:-} in
  0) report OK seccomp "Seccomp: 0 in this shell (no filter)" ;;
  2)
    if [ "$probe" = ok ]; then
      report OK seccomp "Seccomp: 2 (a filter is active, but it lets io_uring through)"
    else
      report WARN seccomp "Seccomp: 2 (a filter is active in this shell)" \
        "if io_uring is blocked: allow io_uring_setup/io_uring_enter/io_uring_register in the profile"
    fi
    ;;
  1) report WARN seccomp "Seccomp: 1 (strict mode)" "unexpected for a shell; run the check outside that sandbox" ;;
  *) report SKIP seccomp "no Seccomp: line in /proc/self/status" ;;
esac

if [ -n "${MONOIO_FORCE_LEGACY_DRIVER:-}" ]; then
  report WARN environment "MONOIO_FORCE_LEGACY_DRIVER is set in this shell: shardgate started from it uses epoll" \
    "unset MONOIO_FORCE_LEGACY_DRIVER unless you want the epoll driver"
fi

# ============================================================================================
# Find the process before the limit checks so they can use its real limits.
section "shardgate process"
how=""
if [ -n "$admin" ]; then
  [[ $admin == *:* ]] || { echo "$PROG: --admin expects HOST:PORT" >&2; exit 2; }
  ready=$(http_get "$admin" /ready)
  if [ -z "$ready" ]; then
    report FAIL admin "nothing answers on http://$admin/ready" "is shardgate running with server.admin_listen: $admin?"
  elif [ "${ready%% *}" = 200 ]; then
    report OK admin "/ready: 200 ${ready#* }"
  else
    report WARN admin "/ready: ${ready%% *} ${ready#* }" "starting or draining; wait, then check again"
  fi
  if [ -n "$ready" ]; then
    metrics_shards=$(http_get "$admin" /metrics | awk '$1 == "shardgate_shards" { print $2; exit }')
  fi
  if pid=$(pid_for_port "${admin##*:}"); then
    how="listening on $admin"
  else
    pid=""
    report SKIP process "no local process found listening on port ${admin##*:} (other netns/host, or not root)"
  fi
elif [ -n "$pid" ]; then
  [ -d "/proc/$pid" ] || { report FAIL process "no process $pid"; pid=""; }
  how="--pid"
else
  mapfile -t found < <(procs_named shardgate)
  if [ ${#found[@]} -eq 1 ]; then
    pid=${found[0]}
    how="name (pgrep -x shardgate)"
  elif [ ${#found[@]} -gt 1 ]; then
    report WARN process "several shardgate processes: ${found[*]}" "pick one with --pid PID"
  else
    report SKIP process "no running shardgate found (pgrep -x shardgate); process checks skipped"
  fi
fi

if [ -n "$pid" ]; then
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")
  [ "$comm" = shardgate ] || warn "process $pid is named '$comm', not shardgate; checking it anyway"
  report OK process "pid $pid ($comm, found by $how)"
  # The config the process runs: --config FILE on its command line, relative to its cwd.
  if [ -z "$config" ]; then
    mapfile -d '' -t argv <"/proc/$pid/cmdline" 2>/dev/null || argv=()
    for i in "${!argv[@]}"; do
      case ${argv[i]} in
        --config | -c) config=${argv[i + 1]-} ;;
        --shards) cli_shards=${argv[i + 1]-} ;;
      esac
    done
    if [ -n "$config" ] && [[ $config != /* ]]; then
      if cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null); then
        config=$cwd/$config
      else
        report SKIP config "the process runs --config $config relative to a working directory this user cannot see; pass --config"
        config=""
      fi
    fi
    [ -n "$config" ] && echo "      (config from the process's command line: $config)"
  fi
fi
[ -z "$config" ] || load_config "$config"

# ============================================================================================
section "limits"
shards_expected=${cli_shards:-${CFG[shards]:-}}
[[ $shards_expected =~ ^[0-9]+$ ]] || shards_expected=""
if [ -z "$shards_expected" ] && [ -n "${CFG[cpus]:-}" ]; then
  shards_expected=$(tr ',' '\n' <<<"${CFG[cpus]}" | grep -c .)
fi
entries=${CFG[io_uring_entries]:-1024}
[[ $entries =~ ^[0-9]+$ ]] || entries=1024

# limit NAME -> soft limit of the process if known, else of this shell (in its unit).
limit_of() {
  local name=$1 v
  if [ -n "$pid" ] && [ -r "/proc/$pid/limits" ]; then
    v=$(awk -v n="$name" 'index($0, n) == 1 { sub(n, ""); print $1; exit }' "/proc/$pid/limits")
    printf '%s process\n' "$v"
    return
  fi
  case $name in
    "Max locked memory") v=$(ulimit -l); [ "$v" = unlimited ] || v=$((v * 1024)) ;;
    "Max open files") v=$(ulimit -n) ;;
  esac
  printf '%s shell\n' "$v"
}

read -r memlock whose < <(limit_of "Max locked memory")
memlock_desc=$([ "$memlock" = unlimited ] && echo unlimited || echo "$((memlock / 1024)) KiB")
if ((knum >= 5012000)); then
  report OK memlock "$memlock_desc ($whose); kernel $kver charges io_uring rings to the memory cgroup, not memlock"
else
  n=${shards_expected:-$(wc -w <<<"$(online_cpus)")}
  need_kib=$((n * (entries * 100 / 1024 + 8)))
  if [ "$memlock" = unlimited ] || ((memlock / 1024 >= need_kib * 2)); then
    report OK memlock "$memlock_desc ($whose); about $need_kib KiB needed for $n rings of $entries entries"
  else
    report WARN memlock "$memlock_desc ($whose): kernels before 5.12 charge rings to memlock (~$need_kib KiB for $n shards)" \
      "LimitMEMLOCK=infinity in the systemd unit, or ulimit -l unlimited before starting"
  fi
fi

read -r nofile whose < <(limit_of "Max open files")
if [ "$nofile" = unlimited ] || ((nofile >= 65536)); then
  report OK "open files" "ulimit -n = $nofile ($whose)"
else
  report WARN "open files" "ulimit -n = $nofile ($whose): each client and upstream connection is a file" \
    "raise to >= 65536: LimitNOFILE=1048576 in the systemd unit, or ulimit -n 1048576 before starting"
fi

if [ -r /proc/sys/net/core/somaxconn ]; then
  s=$(cat /proc/sys/net/core/somaxconn)
  if ((s >= 4096)); then
    report OK somaxconn "$s (shardgate's listen backlog of 4096 per shard is not trimmed)"
  else
    report WARN somaxconn "$s: the kernel trims shardgate's backlog of 4096 to this" \
      "tuning/sysctl.sh apply (sets net.core.somaxconn=4096 and related network limits)"
  fi
fi

# ============================================================================================
section "memory and CPU frequency"
thp_file=/sys/kernel/mm/transparent_hugepage/enabled
if [ -r "$thp_file" ]; then
  thp=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$thp_file")
  case $thp in
    always) report WARN "huge pages" "transparent_hugepage=always: compaction stalls and memory bloat hit tail latency" \
      "echo madvise > $thp_file (or transparent_hugepage=madvise on the kernel command line)" ;;
    *) report OK "huge pages" "transparent_hugepage=$thp" ;;
  esac
else
  report OK "huge pages" "transparent huge pages not available on this kernel"
fi

declare -A GOV=()
for g in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor; do
  [ -r "$g" ] || continue
  c=${g#/sys/devices/system/cpu/cpu}
  c=${c%%/*}
  GOV[$(cat "$g")]+="$c "
done
if [ ${#GOV[@]} -eq 0 ]; then
  report OK governor "not exposed (no cpufreq; typical in VMs, where the hypervisor sets frequency)"
else
  others=""
  for g in "${!GOV[@]}"; do
    [ "$g" = performance ] && continue
    # shellcheck disable=SC2086 # word-split the CPU numbers on purpose
    others+="${others:+; }$g on CPUs $(compress_cpulist ${GOV[$g]})"
  done
  if [ -z "$others" ]; then
    report OK governor "performance on all CPUs"
  else
    report WARN governor "$others" \
      "for steady latency: cpupower frequency-set -g performance (or write 'performance' to cpu*/cpufreq/scaling_governor)"
  fi
fi

# ============================================================================================
section "shard placement"
read -r -a ONLINE <<<"$(online_cpus)"
cfg_cpus=${CFG[cpus]:-}
cfg_pin=${CFG[pin]:-true}
[ -n "$cfg_source" ] && echo "      (config: $cfg_source: cpus=${cfg_cpus:-unset} pin=$cfg_pin shards=${CFG[shards]:-auto}${cli_shards:+ (command line: --shards $cli_shards)})"

# Config-only sanity: listed CPUs exist and are online.
if [ -n "$cfg_cpus" ]; then
  bad=() dups=()
  declare -A SEEN=()
  IFS=, read -r -a CFG_CPUS <<<"$cfg_cpus"
  for c in "${CFG_CPUS[@]}"; do
    [[ " ${ONLINE[*]} " == *" $c "* ]] || bad+=("$c")
    [ -z "${SEEN[$c]-}" ] || dups+=("$c")
    SEEN[$c]=1
  done
  if [ ${#bad[@]} -gt 0 ]; then
    report FAIL "server.cpus" "CPU(s) ${bad[*]} not online here (online: $(compress_cpulist "${ONLINE[@]}"))" \
      "fix server.cpus (tuning/topology.sh proposes a list)"
  elif [ ${#dups[@]} -gt 0 ]; then
    report WARN "server.cpus" "CPU(s) ${dups[*]} listed twice: those shards share a CPU" "list each CPU once"
  else
    report OK "server.cpus" "[$cfg_cpus] all online"
  fi
  if [ -n "${CFG[shards]:-}" ] && [[ ${CFG[shards]} =~ ^[0-9]+$ ]] && ((CFG[shards] > ${#CFG_CPUS[@]})); then
    report WARN "server.shards" "${CFG[shards]} shards on ${#CFG_CPUS[@]} listed CPUs: shards wrap around and share CPUs" \
      "use shards: auto (one per listed CPU) or list more CPUs"
  fi
fi

shard_cpus_all=()
if [ -z "$pid" ]; then
  report SKIP shards "no process to inspect (use --pid PID or --admin HOST:PORT)"
else
  proc_allowed=$(awk '/^Cpus_allowed_list:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
  read -r -a ALLOWED <<<"$(expand_cpulist "$proc_allowed")"
  [ ${#ALLOWED[@]} -gt 0 ] || read -r -a ALLOWED <<<"$(online_cpus)"
  declare -A SHARD_TIDS=()
  for t in /proc/"$pid"/task/*; do
    c=$(cat "$t/comm" 2>/dev/null || true)
    [[ $c =~ ^shard-([0-9]+)$ ]] || continue
    SHARD_TIDS[${BASH_REMATCH[1]}]+="${t##*/} "
  done
  nshards=${#SHARD_TIDS[@]}
  if ((nshards == 0)); then
    report FAIL shards "process $pid has no shard-N threads" "is it shardgate serve, and has it finished starting?"
  else
    mapping="" problems=()
    declare -A CPU_OWNER=()
    for i in $(printf '%s\n' "${!SHARD_TIDS[@]}" | sort -n); do
      # A shard's helper threads (its blocking pool) inherit its name and pinning.
      read -r -a tids <<<"${SHARD_TIDS[$i]}"
      allowed=$(awk '/^Cpus_allowed_list:/ { print $2 }' "/proc/$pid/task/${tids[0]}/status" 2>/dev/null || true)
      read -r -a set <<<"$(expand_cpulist "$allowed")"
      mapping+="shard-$i:$allowed "
      if [ "$cfg_pin" = false ]; then
        if [ ${#set[@]} -eq 1 ] && [ ${#ALLOWED[@]} -gt 1 ]; then
          problems+=("WARN|shard-$i is pinned to CPU $allowed although the config says pin: false|config changed since start, or the wrong --config")
        fi
        continue
      fi
      if [ -n "$cfg_cpus" ]; then
        expect=${CFG_CPUS[i % ${#CFG_CPUS[@]}]}
        expect_why="server.cpus[$((i % ${#CFG_CPUS[@]}))]"
      else
        expect=${ALLOWED[i % ${#ALLOWED[@]}]}
        expect_why="entry $((i % ${#ALLOWED[@]})) of the allowed CPUs $proc_allowed"
      fi
      if [ ${#set[@]} -ne 1 ]; then
        problems+=("FAIL|shard-$i is not pinned: may run on CPUs $allowed (expected $expect = $expect_why)|look for 'could not pin' in shardgate's log; the CPU may be outside its cpuset/taskset")
        continue
      fi
      shard_cpus_all+=("${set[0]}")
      if [ -n "${CPU_OWNER[${set[0]}]-}" ]; then
        problems+=("FAIL|shard-$i and shard-${CPU_OWNER[${set[0]}]} share CPU ${set[0]}|more shards than CPUs: set shards: auto, or list one CPU per shard in server.cpus")
      else
        CPU_OWNER[${set[0]}]=$i
      fi
      if [ "${set[0]}" != "$expect" ]; then
        problems+=("WARN|shard-$i runs on CPU ${set[0]}, expected $expect ($expect_why)|config changed since start, or the wrong --config: restart with the intended config")
      fi
    done
    if [ "$cfg_pin" = false ] && [ ${#problems[@]} -eq 0 ]; then
      report OK pinning "server.pin: false, shards float: ${mapping% }"
    elif [ ${#problems[@]} -eq 0 ]; then
      report OK pinning "$nshards shards, one CPU each as expected: ${mapping% }"
    else
      echo "      ${mapping% }"
      for p in "${problems[@]}"; do
        IFS='|' read -r lvl msg adv <<<"$p"
        report "$lvl" pinning "$msg" "$adv"
      done
    fi
    if [ -n "$shards_expected" ] && ((shards_expected != nshards)); then
      report WARN shards "$nshards shard threads, config says $shards_expected" "restart shardgate to pick up the config"
    fi
    if [ -n "${metrics_shards:-}" ] && [ "$metrics_shards" != "$nshards" ]; then
      report WARN shards "/metrics shardgate_shards=$metrics_shards but $nshards shard threads" "a shard may have died; check the log"
    fi

    # io_uring rings held by the process (one per shard on the io_uring driver).
    if [ -r "/proc/$pid/fd" ] && ls "/proc/$pid/fd" >/dev/null 2>&1; then
      rings=0
      for fd in /proc/"$pid"/fd/*; do
        [ "$(readlink "$fd" 2>/dev/null)" = "anon_inode:[io_uring]" ] && rings=$((rings + 1))
      done
      if ((rings >= nshards)); then
        report OK driver "$rings io_uring ring(s) for $nshards shard(s): shards run on io_uring"
      elif ((rings == 0)); then
        seccomp_p=$(awk '/^Seccomp:/ { print $2 }' "/proc/$pid/status")
        report FAIL driver "no io_uring rings: shards run on the epoll fallback (process Seccomp: ${seccomp_p:-?})" \
          "see the io_uring checks above and the log line 'io_uring unavailable'; MONOIO_FORCE_LEGACY_DRIVER also forces it"
      else
        report WARN driver "$rings io_uring ring(s) for $nshards shards: some shards fell back to epoll" \
          "see shardgate's startup log ('io_uring unavailable' / 'SQPOLL refused')"
      fi
    else
      report SKIP driver "cannot read /proc/$pid/fd (run as root or as the shardgate user)"
    fi
    if [ -r "/proc/$pid/environ" ] && tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -q '^MONOIO_FORCE_LEGACY_DRIVER='; then
      report WARN environment "process $pid has MONOIO_FORCE_LEGACY_DRIVER set (forces epoll)" \
        "remove it from the unit/environment unless the epoll driver is intended"
    fi
    # SQPOLL pollers (iou-sqp-*) are kernel threads of the process. Without a CPU of their own
    # they inherit the creating shard's pinning and then take turns with it on that one CPU.
    sqp=() sqp_shared=()
    for t in /proc/"$pid"/task/*; do
      c=$(cat "$t/comm" 2>/dev/null || true)
      [[ $c == iou-sqp-* ]] || continue
      a=$(awk '/^Cpus_allowed_list:/ { print $2 }' "$t/status" 2>/dev/null || true)
      sqp+=("$c:$a")
      if [ -n "${CPU_OWNER[$a]-}" ]; then sqp_shared+=("$c on CPU $a with shard-${CPU_OWNER[$a]}"); fi
    done
    if [ ${#sqp_shared[@]} -gt 0 ]; then
      report WARN sqpoll "${#sqp_shared[@]} SQPOLL poller(s) share their shard's CPU: $(IFS=";"; echo "${sqp_shared[*]}")" \
        "the poller spins sqpoll_idle_ms on the shard's own CPU; drop server.sqpoll_idle_ms unless measurements favour it"
    elif [ ${#sqp[@]} -gt 0 ]; then
      report OK sqpoll "${#sqp[@]} SQPOLL poller(s): ${sqp[*]}"
    fi
  fi
fi

# NIC IRQs delivered to shard CPUs (from the running process, else from server.cpus).
if [ ${#shard_cpus_all[@]} -eq 0 ] && [ -n "$cfg_cpus" ]; then
  shard_cpus_all=("${CFG_CPUS[@]}")
fi
if [ ${#shard_cpus_all[@]} -gt 0 ]; then
  spare=()
  for c in "${ONLINE[@]}"; do
    [[ " ${shard_cpus_all[*]} " == *" $c "* ]] || spare+=("$c")
  done
  hits=()
  while read -r ifc; do
    while read -r irq; do
      [ -n "$irq" ] || continue
      for c in $(expand_cpulist "$(irq_effective "$irq")" 2>/dev/null || true); do
        if [[ " ${shard_cpus_all[*]} " == *" $c "* ]]; then
          hits+=("$irq($ifc $(irq_name "$irq"))->$c")
          break
        fi
      done
    done < <(nic_irqs "$ifc")
  done < <(nic_list)
  if [ ${#hits[@]} -eq 0 ]; then
    report OK "NIC IRQs" "none delivered to shard CPUs $(compress_cpulist "${shard_cpus_all[@]}")"
  elif [ ${#spare[@]} -eq 0 ]; then
    report OK "NIC IRQs" "shards use every CPU, so NIC IRQs share them (${#hits[@]} IRQ(s)); no split possible"
  else
    report WARN "NIC IRQs" "${#hits[@]} IRQ(s) land on shard CPUs: ${hits[*]}" \
      "$SCRIPT_DIR/irq-affinity.sh --cpus $(compress_cpulist "${spare[@]}")$([ -n "$(procs_named irqbalance)" ] && echo " (and stop irqbalance, which is running)")"
  fi
fi

# ============================================================================================
printf '\n%d OK, %d WARN, %d FAIL\n' "$n_ok" "$n_warn" "$n_fail"
((n_fail == 0))
