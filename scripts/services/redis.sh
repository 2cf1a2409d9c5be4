#!/usr/bin/env bash
# Starts a throwaway Redis for tests and local clusters: on 127.0.0.1 only, a free port (or
# PORT=N), no persistence, its own temp dir. Installs Debian's redis-server package first when
# it is missing (apt-get update once, then apt-get install). Prints, one per line:
#   REDIS_URL=redis://127.0.0.1:PORT
#   REDIS_PID=PID
#   REDIS_DIR=DIR
# `redis.sh install` only installs. Stop a server by its PID (kill PID). OWNER=PID: it also stops by itself once that process is gone
# (a test binary that exits without cleaning up).
set -euo pipefail
# shellcheck source=scripts/services/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

apt_install "command -v redis-server >/dev/null" redis-server
[[ ${1:-} == install ]] && exit 0

DIR=$(mktemp -d "${TMPDIR:-/tmp}/shardgate-redis.XXXXXX")
for attempt in 1 2 3 4 5; do
    port=${PORT:-$(free_port)}
    redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes \
        --save '' --appendonly no --dir "$DIR" \
        --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" >/dev/null
    for _ in $(seq 1 100); do
        if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && [[ -s $DIR/redis.pid ]]; then
            pid=$(cat "$DIR/redis.pid")
            if [[ -n ${OWNER:-} ]]; then
                # Stops the server once its owner is gone (or the server itself is); in its own
                # session, so it outlives the shell that ran this script.
                setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
                    kill "$2" 2>/dev/null; rm -rf "$3"' watch "$OWNER" "$pid" "$DIR" </dev/null >/dev/null 2>&1 &
            fi
            echo "REDIS_URL=redis://127.0.0.1:$port"
            echo "REDIS_PID=$pid"
            echo "REDIS_DIR=$DIR"
            exit 0
        fi
        sleep 0.05
    done
    # It did not come up (most likely the port was taken meanwhile): try another.
    [[ -s $DIR/redis.pid ]] && kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true
    [[ -n ${PORT:-} ]] && break
done
echo "redis.sh: redis-server did not start; its log:" >&2
cat "$DIR/redis.log" >&2 || true
exit 1
