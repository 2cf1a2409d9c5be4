#!/usr/bin/env bash
# Builds shardgate in release mode and runs it on the embedded default config (built-in mock
# provider, no network, no keys): http://127.0.0.1:8080 (API) and http://127.0.0.1:9090 (admin).
# Extra arguments go to `shardgate serve`, e.g. `scripts/serve.sh --config examples/openai.yaml`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "shardgate needs a Rust toolchain (cargo) on PATH" >&2; exit 1; }
cargo build --release --bin shardgate
exec ./target/release/shardgate serve "$@"
