"""The official SDKs against the gateway's own rate limits.

`gpt-rps` and `claude-rps` allow two requests a second. A third in the same second gets 429
with `retry-after` / `retry-after-ms` and the provider's own rate-limit headers; an SDK with
retries waits as told and then succeeds, with no help from the caller.
"""

from __future__ import annotations

import time

import anthropic
import openai
import pytest

from conftest import TEAM_A_KEY

MESSAGES = [{"role": "user", "content": "Say hello"}]


def _start_of_a_second() -> None:
    # Start just after a second begins, so the three calls fall in one window.
    time.sleep(1.0 - (time.time() % 1.0) + 0.02)


def test_openai_sdk_sees_the_limit_and_its_retry_succeeds(stack):
    no_retry = openai.OpenAI(base_url=stack.base_url, api_key=TEAM_A_KEY, max_retries=0)
    retrying = openai.OpenAI(base_url=stack.base_url, api_key=TEAM_A_KEY, max_retries=3)
    _start_of_a_second()
    for _ in range(2):
        raw = no_retry.chat.completions.with_raw_response.create(model="gpt-rps", messages=MESSAGES)
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(openai.RateLimitError) as e:
        no_retry.chat.completions.create(model="gpt-rps", messages=MESSAGES)
    assert e.value.status_code == 429
    assert e.value.code == "rate_limit_exceeded"
    assert int(e.value.response.headers["retry-after"]) >= 1
    assert "model rate limit" in e.value.message
    started = time.monotonic()
    reply = retrying.chat.completions.create(model="gpt-rps", messages=MESSAGES)
    assert reply.choices[0].message.content
    assert time.monotonic() - started < 3.0, "the SDK waited about as long as it was told"


def test_anthropic_sdk_sees_the_limit_and_its_retry_succeeds(stack):
    base = f"http://{stack.api}"
    no_retry = anthropic.Anthropic(base_url=base, api_key=TEAM_A_KEY, max_retries=0)
    retrying = anthropic.Anthropic(base_url=base, api_key=TEAM_A_KEY, max_retries=3)
    _start_of_a_second()
    for _ in range(2):
        raw = no_retry.messages.with_raw_response.create(
            model="claude-rps", max_tokens=16, messages=MESSAGES
        )
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "2"
        assert raw.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    with pytest.raises(anthropic.RateLimitError) as e:
        no_retry.messages.create(model="claude-rps", max_tokens=16, messages=MESSAGES)
    assert e.value.status_code == 429
    assert e.value.body["error"]["type"] == "rate_limit_error"
    reply = retrying.messages.create(model="claude-rps", max_tokens=16, messages=MESSAGES)
    assert reply.content[0].text
