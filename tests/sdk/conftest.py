"""Starts the mock upstream and the real gateway once per test session.

The binaries come from `cargo build --workspace --bins` (tests/sdk/run.sh does it). Both listen
on port 0; the addresses are read from what they print. Teardown sends SIGTERM to exactly the
two processes started here and waits for them (SIGKILL after 10 s).
"""

from __future__ import annotations

import dataclasses
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Callable, List, Optional

import anthropic
import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
if not TARGET_DIR.is_absolute():
    TARGET_DIR = ROOT / TARGET_DIR
BIN_DIR = TARGET_DIR / "debug"

UPSTREAM_KEY = "sk-upstream-secret"
TEAM_A_KEY = "sg-team-a"
MASTER_KEY = "sg-sdk-master-key-0123456789"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

# Everything here talks to loopback only: never let a proxy from the environment in between.
for _var in ("NO_PROXY", "no_proxy"):
    _hosts = [h for h in os.environ.get(_var, "").split(",") if h]
    os.environ[_var] = ",".join(_hosts + ["127.0.0.1", "localhost"])

CONFIG_TEMPLATE = """\
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shards: 1
  access_log: off
  drain_timeout_ms: 2000
  master_key: {{ env: MASTER_KEY }}
providers:
  up:
    protocol: openai
    base_url: http://{mock}/v1
    api_key: {{ env: UPSTREAM_KEY }}
    timeouts: {{ connect_ms: 1000, first_byte_ms: 2000, total_ms: 10000 }}
  # The mock reads directives from a `/mock/k=v/` path prefix: these providers always answer
  # with two tool calls.
  up-tools:
    protocol: openai
    base_url: http://{mock}/mock/tools=2/v1
    api_key: {{ env: UPSTREAM_KEY }}
  # Targets the 429 tests make rate-limited: the gateway then cools them down for the
  # provider's Retry-After, so each such test has its own.
  up-limited-a:
    protocol: openai
    base_url: http://{mock}/v1
    api_key: {{ env: UPSTREAM_KEY }}
  up-limited-b:
    protocol: openai
    base_url: http://{mock}/v1
    api_key: {{ env: UPSTREAM_KEY }}
  claude:
    protocol: anthropic
    base_url: http://{mock}
    api_key: {{ env: UPSTREAM_KEY }}
    timeouts: {{ connect_ms: 1000, first_byte_ms: 2000, total_ms: 10000 }}
  claude-tools:
    protocol: anthropic
    base_url: http://{mock}/mock/tools=2
    api_key: {{ env: UPSTREAM_KEY }}
  # Always rate-limited, asking for 3 s.
  claude-busy:
    protocol: anthropic
    base_url: http://{mock}/mock/status=429,retry_after=3
    api_key: {{ env: UPSTREAM_KEY }}
  up-busy:
    protocol: openai
    base_url: http://{mock}/mock/status=429,retry_after=3/v1
    api_key: {{ env: UPSTREAM_KEY }}
  # The Responses API as an upstream.
  up-resp:
    protocol: openai-responses
    base_url: http://{mock}/v1
    api_key: {{ env: UPSTREAM_KEY }}
models:
  gpt-resp:
    targets:
      - {{ provider: up-resp, model: upstream-resp }}
  gpt-4o-mini:
    targets:
      - {{ provider: up, model: upstream-mini }}
    # The suite makes this target fail on purpose (mock directives): its breaker must not open.
    breaker: {{ failures: 1000, failure_rate: 1.0, window: 64 }}
  text-embedding-3-small:
    targets:
      - {{ provider: up, model: upstream-embed }}
  restricted:
    targets:
      - {{ provider: up, model: upstream-restricted }}
  gpt-tools:
    targets:
      - {{ provider: up-tools, model: upstream-tools }}
  claude:
    targets:
      - {{ provider: claude, model: claude-sonnet-4-5 }}
  claude-tools:
    targets:
      - {{ provider: claude-tools, model: claude-sonnet-4-5 }}
  gpt-limited-a:
    targets:
      - {{ provider: up-limited-a, model: upstream-mini }}
  gpt-limited-b:
    targets:
      - {{ provider: up-limited-b, model: upstream-mini }}
  claude-busy:
    targets:
      - {{ provider: claude-busy, model: claude-sonnet-4-5 }}
  # Its own limit: two requests a second (the limits tests use it).
  gpt-rps:
    limits: {{ rps: 2 }}
    targets:
      - {{ provider: up, model: upstream-mini }}
  claude-rps:
    limits: {{ rps: 2 }}
    targets:
      - {{ provider: claude, model: claude-sonnet-4-5 }}
  gpt-busy:
    targets:
      - {{ provider: up-busy, model: upstream-mini }}
  # The response cache (test_cache.py): answers with two tool calls, and Anthropic's own.
  gpt-cached:
    targets:
      - {{ provider: up-tools, model: upstream-tools }}
    cache: {{ ttl_s: 600 }}
  claude-cached:
    targets:
      - {{ provider: claude-tools, model: claude-sonnet-4-5 }}
    cache: {{ ttl_s: 600 }}
keys:
  - name: team-a
    key: {{ env: TEAM_A_KEY }}
    models: [gpt-4o-mini, text-embedding-3-small, gpt-tools, claude, claude-tools, claude-busy,
             gpt-busy, gpt-limited-a, gpt-limited-b, gpt-rps, claude-rps, gpt-resp,
             gpt-cached, claude-cached]
"""


class _LineReader:
    """Drains a pipe in a daemon thread (so it never fills), keeping every line and handing
    them out through a queue to whoever waits for a particular one."""

    def __init__(self, pipe: IO[bytes], name: str, copy_to: Optional[Path] = None):
        self.lines: List[str] = []
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._copy = open(copy_to, "w", encoding="utf-8") if copy_to else None
        self._thread = threading.Thread(target=self._run, args=(pipe,), name=name, daemon=True)
        self._thread.start()

    def _run(self, pipe: IO[bytes]) -> None:
        try:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.lines.append(line)
                self._queue.put(line)
                if self._copy:
                    self._copy.write(line + "\n")
                    self._copy.flush()
        finally:
            self._queue.put(None)  # end of stream
            if self._copy:
                self._copy.close()

    def wait_for(self, pattern: "re.Pattern[str]", timeout: float) -> Optional["re.Match[str]"]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            m = pattern.search(line)
            if m:
                return m

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _binary(name: str) -> Path:
    path = BIN_DIR / name
    if not path.is_file():
        pytest.exit(
            f"{path} is missing: run `cargo build --workspace --bins` (tests/sdk/run.sh does)",
            returncode=2,
        )
    return path


def _stop(proc: subprocess.Popen, name: str) -> Optional[int]:
    """SIGTERM this one process, wait up to STOP_TIMEOUT_S, then SIGKILL it."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"\n{name} (pid {proc.pid}) ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s: killing it",
              file=sys.stderr)
        proc.kill()
        return proc.wait(timeout=STOP_TIMEOUT_S)


@dataclasses.dataclass(frozen=True)
class Stack:
    api: str  # host:port of the gateway's API listener
    admin: str  # host:port of the gateway's admin listener
    mock: str  # host:port of the mock upstream
    logs: Path  # directory with the processes' output

    @property
    def base_url(self) -> str:
        return f"http://{self.api}/v1"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.admin}/metrics"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("shardgate-sdk")
    mock_bin = _binary("mock-upstream")
    gate_bin = _binary("shardgate")
    started: List[tuple] = []

    def teardown() -> None:
        # Gateway first (it holds connections to the mock), then the mock.
        for proc, name in reversed(started):
            code = _stop(proc, name)
            if code != 0:
                print(f"\nwarning: {name} exited with {code} after SIGTERM (logs in {tmp})",
                      file=sys.stderr)

    try:
        # --- mock upstream -------------------------------------------------------------------
        with open(tmp / "mock.stderr", "wb") as mock_stderr:
            mock_proc = subprocess.Popen(
                [str(mock_bin), "--listen", "127.0.0.1:0"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=mock_stderr,
                cwd=tmp,
            )
        started.append((mock_proc, "mock-upstream"))
        mock_out = _LineReader(mock_proc.stdout, "mock-stdout", tmp / "mock.stdout")
        m = mock_out.wait_for(re.compile(r"listening on (\S+:\d+)"), START_TIMEOUT_S)
        if not m:
            raise RuntimeError(
                f"mock-upstream did not report its address within {START_TIMEOUT_S} s "
                f"(exit code {mock_proc.poll()}); stdout: {mock_out.lines!r}; "
                f"stderr: {(tmp / 'mock.stderr').read_text(errors='replace')[-2000:]!r}"
            )
        mock_addr = m.group(1)

        # --- gateway -------------------------------------------------------------------------
        config = tmp / "shardgate.yaml"
        config.write_text(CONFIG_TEMPLATE.format(mock=mock_addr), encoding="utf-8")
        env = dict(os.environ)
        env.update(UPSTREAM_KEY=UPSTREAM_KEY, TEAM_A_KEY=TEAM_A_KEY, MASTER_KEY=MASTER_KEY)
        env.setdefault("RUST_BACKTRACE", "1")
        with open(tmp / "gateway.stdout", "wb") as gate_stdout:
            gate_proc = subprocess.Popen(
                [str(gate_bin), "serve", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=gate_stdout,
                stderr=subprocess.PIPE,
                cwd=tmp,
                env=env,
            )
        started.append((gate_proc, "shardgate"))
        gate_err = _LineReader(gate_proc.stderr, "gateway-stderr", tmp / "gateway.stderr")
        m = gate_err.wait_for(
            re.compile(r"ready: api=(\S+:\d+) admin=(\S+:\d+) shards=(\d+)"), START_TIMEOUT_S
        )
        if not m:
            raise RuntimeError(
                f"shardgate did not log `ready:` within {START_TIMEOUT_S} s "
                f"(exit code {gate_proc.poll()}); stderr:\n" + "\n".join(gate_err.lines[-50:])
            )
        api, admin = m.group(1), m.group(2)
    except BaseException:
        teardown()
        raise

    try:
        yield Stack(api=api, admin=admin, mock=mock_addr, logs=tmp)
    finally:
        teardown()


@pytest.fixture(scope="session")
def make_client(stack: Stack) -> Callable[..., openai.OpenAI]:
    """Builds SDK clients pointed at the gateway; no retries, so each error is seen as sent."""
    clients: List[openai.OpenAI] = []

    def make(api_key: str = TEAM_A_KEY, timeout: float = 15.0) -> openai.OpenAI:
        c = openai.OpenAI(base_url=stack.base_url, api_key=api_key, max_retries=0, timeout=timeout)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="session")
def client(make_client) -> openai.OpenAI:
    return make_client()


@pytest.fixture(scope="session")
def claude(stack: Stack) -> anthropic.Anthropic:
    """The official Anthropic SDK pointed at the gateway's `/v1/messages`; no retries."""
    c = anthropic.Anthropic(
        base_url=f"http://{stack.api}", api_key=TEAM_A_KEY, max_retries=0, timeout=15.0
    )
    yield c
    c.close()
