#!/usr/bin/env bash
# The whole test suite: Rust unit, property and black-box tests (both monoio drivers), then the
# official OpenAI Python SDK against the real binary. Installs what it needs (a Python venv with
# the SDK and pytest; Debian's redis-server for the cluster tests) so it works on a fresh
# machine; CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo build (debug) =="
cargo build --workspace --bins

echo "== services (Redis for the cluster tests) =="
scripts/services/redis.sh install

echo "== cargo test (workspace) =="
cargo test --workspace -- --test-threads 4

if [ -x tests/sdk/run.sh ]; then
  echo "== python SDK suite =="
  tests/sdk/run.sh
fi
