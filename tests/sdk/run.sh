#!/usr/bin/env bash
# The official `openai` Python SDK against the real gateway binary (and the mock upstream).
# Works on a fresh machine with python3 and cargo: makes .venv/ at the repo root if missing,
# installs tests/sdk/requirements.txt into it, builds the binaries, runs pytest.
# Extra arguments go to pytest, e.g. `tests/sdk/run.sh -k stream -v`.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv =="
  python3 -m venv .venv
fi

# Already-satisfied requirements are not fetched again, so this is quick after the first run.
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/sdk/requirements.txt

cargo build --workspace --bins

exec .venv/bin/python -m pytest tests/sdk -q -p no:cacheprovider "$@"
