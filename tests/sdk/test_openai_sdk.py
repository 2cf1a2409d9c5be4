"""The official `openai` Python SDK against the real shardgate binary.

The gateway (see conftest.py) routes the aliases `gpt-4o-mini` -> `upstream-mini`,
`text-embedding-3-small` -> `upstream-embed` and `restricted` -> `upstream-restricted`, all on the
provider `up` (the mock upstream); the key `sg-team-a` may use the first two only. The mock is
programmed per request with `extra_body={"mock": {...}}`, which the gateway passes through.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Optional, Tuple

import httpx
import openai
import pytest

from conftest import TEAM_A_KEY, UPSTREAM_KEY

CHAT = "gpt-4o-mini"
EMBED = "text-embedding-3-small"
MESSAGES = [{"role": "user", "content": "Say hello"}]
DEFAULT_CHUNKS = 8  # the mock's default number of content deltas


def expected_text(chunks: int = DEFAULT_CHUNKS) -> str:
    return "".join(f"tok{i} " for i in range(chunks))


def mock(**directives) -> dict:
    return {"mock": directives}


def error_code(e: openai.APIStatusError) -> Optional[str]:
    """`error.code` of an SDK error, whether the SDK kept the whole body or only `error`."""
    if getattr(e, "code", None):
        return e.code
    body = e.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("code")
    return None


def error_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
    return e.message


# ---------------------------------------------------------------------------------------------
# Chat completions
# ---------------------------------------------------------------------------------------------


def test_chat_non_stream(client):
    resp = client.chat.completions.create(model=CHAT, messages=MESSAGES)
    assert resp.object == "chat.completion"
    assert resp.model == "upstream-mini"
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == expected_text()
    assert choice.finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens == DEFAULT_CHUNKS
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_chat_non_stream_mock_chunks(client):
    resp = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, extra_body=mock(chunks=3)
    )
    assert resp.choices[0].message.content == expected_text(3)
    assert resp.usage.completion_tokens == 3


def test_chat_stream(client):
    stream = client.chat.completions.create(model=CHAT, messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert chunks, "no chunk received"
    for c in chunks:
        assert c.object == "chat.completion.chunk"
        assert c.model == "upstream-mini"
    content = "".join(
        c.choices[0].delta.content or "" for c in chunks if c.choices
    )
    assert content == expected_text()
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    # The gateway asks the upstream for usage to count tokens, but the client did not ask: it
    # must see neither the usage chunk nor a usage object on any chunk.
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [], f"usage chunk(s) leaked to a client that did not ask: {with_usage}"
    assert all(c.choices for c in chunks), "a chunk without choices (the usage chunk) leaked"


def test_chat_stream_include_usage(client):
    n = 5
    stream = client.chat.completions.create(
        model=CHAT,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=mock(chunks=n),
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == expected_text(n)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens > 0
    assert last.usage.completion_tokens == n
    assert last.usage.total_tokens == last.usage.prompt_tokens + n
    assert [c for c in chunks[:-1] if c.usage is not None] == [], "usage only on the last chunk"


def test_chat_stream_context_manager_and_response_headers(client):
    with client.chat.completions.with_streaming_response.create(
        model=CHAT, messages=MESSAGES, stream=True, extra_body=mock(chunks=2)
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = "".join(
            c.choices[0].delta.content or "" for c in resp.parse() if c.choices
        )
    assert text == expected_text(2)


def test_chat_streams_concurrently(client):
    """Several streams at once through one shard: each gets exactly its own deltas."""

    def one(n: int) -> Tuple[int, str]:
        stream = client.chat.completions.create(
            model=CHAT,
            messages=MESSAGES,
            stream=True,
            extra_body=mock(chunks=n, interval_ms=5),
        )
        return n, "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(1, 9)))
    for n, text in results:
        assert text == expected_text(n)


def test_async_client_stream(stack):
    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=stack.base_url, api_key=TEAM_A_KEY, max_retries=0, timeout=15.0
        ) as aclient:
            stream = await aclient.chat.completions.create(
                model=CHAT, messages=MESSAGES, stream=True, extra_body=mock(chunks=4)
            )
            parts = []
            async for c in stream:
                if c.choices:
                    parts.append(c.choices[0].delta.content or "")
            return "".join(parts)

    assert asyncio.run(run()) == expected_text(4)


# ---------------------------------------------------------------------------------------------
# Completions, embeddings, models
# ---------------------------------------------------------------------------------------------


def test_completions_non_stream(client):
    resp = client.completions.create(model=CHAT, prompt="Say hello")
    assert resp.object == "text_completion"
    assert resp.model == "upstream-mini"
    assert resp.choices[0].text == expected_text()
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens == DEFAULT_CHUNKS


def test_completions_stream(client):
    stream = client.completions.create(
        model=CHAT, prompt="Say hello", stream=True, extra_body=mock(chunks=6)
    )
    chunks = list(stream)
    assert all(c.model == "upstream-mini" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == expected_text(6)
    assert [c for c in chunks if c.usage is not None] == []


def test_completions_stream_include_usage(client):
    stream = client.completions.create(
        model=CHAT,
        prompt="Say hello",
        stream=True,
        stream_options={"include_usage": True},
        extra_body=mock(chunks=3),
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == expected_text(3)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_embeddings_single_input(client):
    resp = client.embeddings.create(model=EMBED, input="hello world")
    assert resp.object == "list"
    assert resp.model == "upstream-embed"
    assert len(resp.data) == 1
    assert resp.data[0].index == 0
    vec = resp.data[0].embedding
    assert len(vec) > 0
    assert all(isinstance(x, float) for x in vec)
    assert resp.usage.prompt_tokens > 0


def test_embeddings_list_input(client):
    inputs = ["one", "two", "three"]
    resp = client.embeddings.create(
        model=EMBED, input=inputs, encoding_format="float", dimensions=16
    )
    assert resp.model == "upstream-embed"
    assert len(resp.data) == len(inputs)
    assert [d.index for d in resp.data] == [0, 1, 2]
    for d in resp.data:
        assert len(d.embedding) == 16
        assert all(isinstance(x, float) for x in d.embedding)


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    # Exactly the aliases the key may use (test_translation.py adds the cross-protocol ones).
    allowed = [CHAT, EMBED, "gpt-tools", "claude", "claude-tools", "claude-busy", "gpt-busy",
               "gpt-limited-a", "gpt-limited-b", "gpt-rps", "claude-rps", "gpt-resp",
               "gpt-cached", "claude-cached"]
    assert sorted(ids) == sorted(allowed), ids
    assert "restricted" not in ids


def test_models_retrieve(client):
    m = client.models.retrieve(CHAT)
    assert m.id == CHAT
    assert m.object == "model"


@pytest.mark.parametrize("model_id", ["restricted", "no-such-model"])
def test_models_retrieve_not_visible(client, model_id):
    with pytest.raises(openai.NotFoundError) as ei:
        client.models.retrieve(model_id)
    assert ei.value.status_code == 404


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_bad_key_is_authentication_error(make_client):
    bad = make_client(api_key="sg-not-a-key")
    with pytest.raises(openai.AuthenticationError) as ei:
        bad.chat.completions.create(model=CHAT, messages=MESSAGES)
    assert ei.value.status_code == 401
    assert error_code(ei.value) == "invalid_api_key"


def test_bad_key_on_models_list(make_client):
    bad = make_client(api_key="sg-not-a-key")
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_missing_key_is_401(stack):
    r = httpx.post(
        f"{stack.base_url}/chat/completions",
        json={"model": CHAT, "messages": MESSAGES},
        timeout=10,
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"


def test_restricted_model_is_permission_denied(client):
    with pytest.raises(openai.PermissionDeniedError) as ei:
        client.chat.completions.create(model="restricted", messages=MESSAGES)
    assert ei.value.status_code == 403
    assert error_code(ei.value) == "model_not_allowed"


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert ei.value.status_code == 404
    assert error_code(ei.value) == "model_not_found"


def test_malformed_json_is_bad_request(stack):
    r = httpx.post(
        f"{stack.base_url}/chat/completions",
        content=b'{"model": "gpt-4o-mini", "messages": [',
        headers={"authorization": f"Bearer {TEAM_A_KEY}", "content-type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_request"
    assert err["type"] == "invalid_request_error"
    assert isinstance(err["message"], str) and err["message"]


def test_missing_model_is_bad_request_error(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.post("/chat/completions", body={"messages": MESSAGES}, cast_to=httpx.Response)
    assert ei.value.status_code == 400
    assert error_code(ei.value) == "invalid_request"


def test_upstream_429_is_rate_limit_error(client):
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(
            model="gpt-limited-a", messages=MESSAGES, extra_body=mock(status=429, retry_after="7")
        )
    e = ei.value
    assert e.status_code == 429
    assert e.response.headers["retry-after"] == "7"


def test_upstream_429_on_stream_request(client):
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(
            model="gpt-limited-b",
            messages=MESSAGES,
            stream=True,
            extra_body=mock(status=429, retry_after="3"),
        )
    assert ei.value.response.headers["retry-after"] == "3"


def test_upstream_500_is_502(client):
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model=CHAT, messages=MESSAGES, extra_body=mock(status=500))
    e = ei.value
    assert e.status_code == 502
    assert error_code(e) == "upstream_server_error"
    msg = error_message(e)
    assert re.search(r"\bup\b", msg), f"message does not name the provider `up`: {msg!r}"
    assert UPSTREAM_KEY not in msg
    assert UPSTREAM_KEY not in e.response.text


def test_upstream_first_byte_timeout_is_504(client):
    start = time.monotonic()
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(
            model=CHAT, messages=MESSAGES, extra_body=mock(latency_ms=3000)
        )
    elapsed = time.monotonic() - start
    assert ei.value.status_code == 504
    assert error_code(ei.value) == "upstream_timeout"
    # first_byte_ms is 2000: the gateway gives up then (a 504 at all means it did not wait for
    # the upstream's answer at 3 s), and not much earlier.
    assert elapsed >= 1.5, f"504 after only {elapsed:.2f} s"


def test_stream_broken_mid_way_raises_api_error(client):
    stream = client.chat.completions.create(
        model=CHAT,
        messages=MESSAGES,
        stream=True,
        extra_body=mock(drop_after=3, interval_ms=10),
    )
    received = []
    with pytest.raises(openai.APIError):
        for c in stream:
            received.append(c)
    # The mock sent the role chunk, tok0 and tok1 before it dropped the connection.
    assert received, "the error came before any chunk"
    text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert text == expected_text(2)


def test_stream_broken_mid_way_ends_cleanly_on_the_wire(stack):
    """Raw view of the same: the last event is an OpenAI-shaped error and the HTTP response
    itself ends cleanly (complete chunked encoding, no protocol error)."""
    body = {
        "model": CHAT,
        "messages": MESSAGES,
        "stream": True,
        "mock": {"drop_after": 3, "interval_ms": 10},
    }
    events = []
    with httpx.stream(
        "POST",
        f"{stack.base_url}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {TEAM_A_KEY}"},
        timeout=10,
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():  # raises on a truncated response
            if line.startswith("data:"):
                events.append(line[5:].strip())
    data = [e for e in events if e != "[DONE]"]
    assert len(data) >= 2
    last = json.loads(data[-1])
    assert "error" in last and isinstance(last["error"], dict), last
    assert isinstance(last["error"].get("message"), str)
    assert UPSTREAM_KEY not in "\n".join(events)


# ---------------------------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------------------------


def test_request_id_echoed(client):
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT, messages=MESSAGES, extra_headers={"x-request-id": "my-id-1"}
    )
    assert raw.headers.get("x-request-id") == "my-id-1"
    assert raw.headers.get("server-timing"), "no server-timing header"
    completion = raw.parse()
    assert completion.choices[0].message.content == expected_text()


def test_request_id_echoed_on_error(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(
            model="no-such-model", messages=MESSAGES, extra_headers={"x-request-id": "my-id-2"}
        )
    assert ei.value.response.headers.get("x-request-id") == "my-id-2"


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^shardgate_tokens_total\{([^}]*)\}\s+(\S+)\s*$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def token_counters(stack) -> Dict[Tuple[str, str], float]:
    text = httpx.get(stack.metrics_url, timeout=5).text
    out: Dict[Tuple[str, str], float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(1)))
        key = (labels.get("model", ""), labels.get("direction", ""))
        out[key] = out.get(key, 0.0) + float(m.group(2))
    return out


def settled_counters(stack) -> Dict[Tuple[str, str], float]:
    """The counters once earlier requests have finished being accounted (two equal reads)."""
    prev = token_counters(stack)
    for _ in range(20):
        time.sleep(0.1)
        cur = token_counters(stack)
        if cur == prev:
            return cur
        prev = cur
    return prev


def wait_for_delta(stack, before, model, want_in, want_out, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        now = token_counters(stack)
        d_in = now.get((model, "input"), 0.0) - before.get((model, "input"), 0.0)
        d_out = now.get((model, "output"), 0.0) - before.get((model, "output"), 0.0)
        if (d_in >= want_in and d_out >= want_out) or time.monotonic() > deadline:
            return d_in, d_out
        time.sleep(0.05)


def test_metrics_count_chat_tokens(client, stack):
    before = settled_counters(stack)
    resp = client.chat.completions.create(model=CHAT, messages=MESSAGES, extra_body=mock(chunks=4))
    u = resp.usage
    d_in, d_out = wait_for_delta(stack, before, CHAT, u.prompt_tokens, u.completion_tokens)
    assert d_in == u.prompt_tokens, (d_in, u)
    assert d_out == u.completion_tokens, (d_out, u)


def test_metrics_count_stream_tokens_without_include_usage(client, stack):
    before = settled_counters(stack)
    stream = client.chat.completions.create(
        model=CHAT, messages=MESSAGES, stream=True, extra_body=mock(chunks=7)
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == expected_text(7)
    d_in, d_out = wait_for_delta(stack, before, CHAT, 1, 7)
    assert d_out == 7
    assert d_in > 0


def test_metrics_count_embedding_tokens(client, stack):
    before = settled_counters(stack)
    resp = client.embeddings.create(model=EMBED, input=["a", "b"])
    d_in, _ = wait_for_delta(stack, before, EMBED, resp.usage.prompt_tokens, 0)
    assert d_in == resp.usage.prompt_tokens
