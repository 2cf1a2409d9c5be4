#!/usr/bin/env bash
# A throwaway PostgreSQL server on a loopback port, for tests and for trying cluster mode.
#
#   postgres.sh start DIR [PORT] [OWNER_PID]  initdb a cluster in DIR (if new) and start it on
#                                             127.0.0.1:PORT (a free one if not given); prints
#                                             its URL. With OWNER_PID, the server is stopped
#                                             once that process is gone,
#                                             and DIR removed.
#   postgres.sh stop DIR                      stops it (by the postmaster's PID), waits for it
#   postgres.sh url DIR                       prints the URL again
#   postgres.sh install                       only installs the server, if missing
#
# Installs Debian's postgresql package when the server binaries are missing (apt-get update
# once, under a lock, so parallel callers install once). PostgreSQL refuses to run as root:
# as root, the server runs as the `postgres` user the package creates. Trust authentication,
# no fsync: for tests only.
set -euo pipefail
# shellcheck source=scripts/services/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

has_server() {
  [ -n "$(bindir)" ] && [ -x "$(bindir)/initdb" ]
}

install() {
  has_server && return 0
  # The package would create and start a default cluster on port 5432: these tests run their own.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  fi
  apt_install has_server postgresql
}

# Runs a server binary as a user PostgreSQL accepts.
as_db_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}


url() {
  echo "postgres://shardgate@127.0.0.1:$(cat "$1/port")/postgres"
}

start() {
  local dir=$1 port=${2:-} owner=${3:-}
  install
  local bin
  bin=$(bindir)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"
    chmod 700 "$dir"
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_db_user "$bin/initdb" -D "$dir/data" -U shardgate --auth=trust -E UTF8 --no-sync \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  local fixed=$port
  [ -n "$fixed" ] || fixed=$(cat "$dir/port" 2>/dev/null || true)
  for try in 1 2 3 4 5; do
    port=${fixed:-$(free_port)}
    echo "$port" >"$dir/port"
    if as_db_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
      "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
       -c full_page_writes=off -c max_connections=200" >/dev/null; then
      break
    fi
    # A port taken meanwhile: another one, unless the caller chose it (or it is a restart).
    if [ -n "$fixed" ] || [ "$try" = 5 ]; then
      tail -n 20 "$dir/server.log" >&2
      exit 1
    fi
  done
  if [ -n "$owner" ]; then
    # Stops the server once its owner (a test binary) is gone, however that ended.
    setsid bash -c "while kill -0 $owner 2>/dev/null; do sleep 1; done
      '$0' stop '$dir'; rm -rf '$dir'" \
      </dev/null >/dev/null 2>&1 &
  fi
  url "$dir"
}

stop() {
  local dir=$1 pid
  [ -f "$dir/data/postmaster.pid" ] || return 0
  pid=$(head -n 1 "$dir/data/postmaster.pid")
  kill -INT "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "postgres.sh: server $pid did not stop" >&2
  return 1
}

case "${1:-}" in
  start) start "${2:?dir}" "${3:-}" "${4:-}" ;;
  stop) stop "${2:?dir}" ;;
  url) url "${2:?dir}" ;;
  install) install ;;
  *) echo "usage: $0 start DIR [PORT] [OWNER_PID] | stop DIR | url DIR | install" >&2; exit 2 ;;
esac
