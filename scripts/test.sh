#!/usr/bin/env bash
# The whole test suite: Rust unit, property and black-box tests (both monoio drivers), then the
# official OpenAI Python SDK against the real binary. Installs what it needs (a Python venv with
# the SDK and pytest) so it works on a fresh machine; CI runs exactly this. The cluster-mode
# tests start their own Redis and PostgreSQL servers on loopback ports (scripts/services/);
# the servers are installed from Debian's packages first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== services (Redis and PostgreSQL server binaries, for the cluster tests) =="
scripts/services/redis.sh install
scripts/services/postgres.sh install

echo "== cargo build (debug) =="
cargo build --workspace --bins

echo "== cargo test (workspace) =="
cargo test --workspace -- --test-threads 4

if [ -x tests/sdk/run.sh ]; then
  echo "== python SDK suite =="
  tests/sdk/run.sh
fi
