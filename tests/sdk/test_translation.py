"""Wire-protocol translation through the real binary, seen by the official SDKs.

- The `anthropic` SDK against `/v1/messages`, with an OpenAI-protocol upstream (aliases
  `gpt-4o-mini`, `gpt-tools`) and with an Anthropic upstream (`claude`: byte passthrough).
- The `openai` SDK against `/v1/chat/completions` with an Anthropic upstream (`claude`,
  `claude-tools`).

The `*-tools` providers point at the mock with a `/mock/tools=2/` prefix, so every answer is two
tool calls named after the request's tools. Thinking is answered whenever the request enables it.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from conftest import TEAM_A_KEY

TEXT = "".join(f"tok{i} " for i in range(8))  # the mock's default answer
HELLO = [{"role": "user", "content": "Say hello"}]
WEATHER_OPENAI = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
WEATHER_ANTHROPIC = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


# --------------------------------------------------------------- anthropic SDK -> OpenAI upstream


def test_anthropic_sdk_text_from_openai_upstream(claude: anthropic.Anthropic):
    msg = claude.messages.create(
        model="gpt-4o-mini", max_tokens=64, system="Be brief.", messages=HELLO
    )
    assert msg.type == "message" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == TEXT
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


def test_anthropic_sdk_stream_from_openai_upstream(claude: anthropic.Anthropic):
    with claude.messages.stream(model="gpt-4o-mini", max_tokens=64, messages=HELLO) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == TEXT
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_anthropic_sdk_tool_calls_from_openai_upstream(claude: anthropic.Anthropic):
    msg = claude.messages.create(
        model="gpt-tools", max_tokens=64, messages=HELLO, tools=WEATHER_ANTHROPIC
    )
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert len(uses) == 2
    assert all(u.name == "get_weather" and isinstance(u.input, dict) for u in uses)
    assert len({u.id for u in uses}) == 2
    assert msg.stop_reason == "tool_use"

    # Send the results back: the next turn translates tool_result blocks to `tool` messages.
    follow = claude.messages.create(
        model="gpt-4o-mini",
        max_tokens=64,
        tools=WEATHER_ANTHROPIC,
        messages=HELLO
        + [
            {"role": "assistant", "content": [u.model_dump() for u in uses]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": u.id, "content": "sunny"} for u in uses
                ],
            },
        ],
    )
    assert follow.content[0].text == TEXT


def test_anthropic_sdk_streamed_tool_calls_from_openai_upstream(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="gpt-tools", max_tokens=64, messages=HELLO, tools=WEATHER_ANTHROPIC
    ) as s:
        final = s.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert len(uses) == 2
    assert all(isinstance(u.input, dict) and u.input for u in uses), uses
    assert final.stop_reason == "tool_use"


def test_anthropic_sdk_passthrough_to_anthropic_upstream(claude: anthropic.Anthropic):
    msg = claude.messages.create(model="claude", max_tokens=64, messages=HELLO)
    assert msg.content[0].text == TEXT
    assert msg.model == "claude-sonnet-4-5"
    with claude.messages.stream(model="claude", max_tokens=64, messages=HELLO) as s:
        assert "".join(s.text_stream) == TEXT


def test_anthropic_sdk_count_tokens(claude: anthropic.Anthropic, stack):
    # Anthropic upstream: passed through. OpenAI upstream: estimated, and the header says so.
    exact = claude.messages.count_tokens(model="claude", messages=HELLO)
    assert exact.input_tokens > 0
    raw = claude.messages.with_raw_response.count_tokens(model="gpt-4o-mini", messages=HELLO)
    assert raw.headers.get("x-shardgate-estimated") == "true"
    assert raw.parse().input_tokens > 0


def test_anthropic_sdk_errors_are_anthropic_shaped(claude: anthropic.Anthropic, stack):
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model="no-such-model", max_tokens=8, messages=HELLO)
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "not_found_error"
    bad = anthropic.Anthropic(
        base_url=f"http://{stack.api}", api_key="sg-wrong", max_retries=0, timeout=15.0
    )
    with pytest.raises(anthropic.AuthenticationError) as e:
        bad.messages.create(model="claude", max_tokens=8, messages=HELLO)
    assert e.value.body["error"]["type"] == "authentication_error"
    bad.close()
    # A body the OpenAI translation cannot read: 400 in Anthropic's shape, naming the field.
    r = httpx.post(
        f"http://{stack.api}/v1/messages",
        headers={"x-api-key": TEAM_A_KEY, "anthropic-version": "2023-06-01"},
        json={"model": "gpt-4o-mini", "messages": HELLO},
        timeout=15.0,
    )
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "error"
    assert "max_tokens" in r.json()["error"]["message"]


# --------------------------------------------------------------- openai SDK -> Anthropic upstream


def test_openai_sdk_text_from_anthropic_upstream(client: openai.OpenAI):
    r = client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}] + HELLO,
        max_tokens=64,
        temperature=0.5,
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.content == TEXT
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.id.startswith("msg_")


def test_openai_sdk_stream_from_anthropic_upstream(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="claude", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_openai_sdk_tool_calls_from_anthropic_upstream(client: openai.OpenAI):
    r = client.chat.completions.create(model="claude-tools", messages=HELLO, tools=WEATHER_OPENAI)
    calls = r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "tool_calls"
    assert len(calls) == 2
    for c in calls:
        assert c.type == "function" and c.function.name == "get_weather"
        assert isinstance(json.loads(c.function.arguments), dict)

    # The results go back as `tool` messages and arrive upstream as tool_result blocks.
    follow = client.chat.completions.create(
        model="claude",
        tools=WEATHER_OPENAI,
        messages=HELLO
        + [r.choices[0].message.model_dump(exclude_none=True)]
        + [{"role": "tool", "tool_call_id": c.id, "content": "sunny"} for c in calls],
    )
    assert follow.choices[0].message.content == TEXT


def test_openai_sdk_streamed_tool_calls_from_anthropic_upstream(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="claude-tools", messages=HELLO, tools=WEATHER_OPENAI, stream=True
    )
    calls: dict = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for tc in choice.delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "args": ""})
            if tc.id:
                slot["id"] = tc.id
            if tc.function and tc.function.name:
                slot["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                slot["args"] += tc.function.arguments
        finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    for slot in calls.values():
        assert slot["id"] and slot["name"] == "get_weather"
        assert isinstance(json.loads(slot["args"]), dict)


def test_openai_sdk_thinking_round_trip_through_anthropic(client: openai.OpenAI):
    r = client.chat.completions.create(
        model="claude", messages=HELLO, reasoning_effort="low", max_tokens=4096
    )
    message = r.choices[0].message.model_dump()
    assert message.get("reasoning_content"), message
    blocks = message.get("thinking_blocks") or []
    assert blocks and blocks[0]["signature"], message
    # The signed thinking goes back on the next turn, as Anthropic requires for multi-turn.
    again = client.chat.completions.create(
        model="claude",
        reasoning_effort="low",
        max_tokens=4096,
        messages=HELLO
        + [{"role": "assistant", "content": message["content"], "thinking_blocks": blocks}]
        + [{"role": "user", "content": "And again"}],
    )
    assert again.choices[0].message.content == TEXT


def test_openai_sdk_sees_dropped_fields(client: openai.OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model="claude", messages=HELLO, seed=7, logit_bias={"1": 1}
    )
    dropped = raw.headers.get("x-shardgate-dropped", "")
    assert "seed" in dropped and "logit_bias" in dropped, dropped
    assert raw.parse().choices[0].message.content == TEXT


def test_openai_sdk_upstream_errors_keep_their_class(client: openai.OpenAI):
    # The Anthropic provider's 429 reaches the OpenAI client as OpenAI's rate-limit error.
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="claude-busy", messages=HELLO)
    assert e.value.response.headers.get("retry-after") == "3"
    body = e.value.body
    body = body.get("error", body)  # SDK versions differ in what they keep
    assert body["type"] == "rate_limit_error" and body["code"] == "rate_limit_exceeded"


def test_anthropic_sdk_upstream_errors_keep_their_class(claude: anthropic.Anthropic):
    # The OpenAI provider's 429 reaches the Anthropic client as Anthropic's rate_limit_error.
    with pytest.raises(anthropic.RateLimitError) as e:
        claude.messages.create(model="gpt-busy", max_tokens=8, messages=HELLO)
    assert e.value.response.headers.get("retry-after") == "3"
    assert e.value.body["error"]["type"] == "rate_limit_error"


def test_the_body_cannot_steer_a_translated_upstream(stack):
    # Unknown fields (here the mock's own `mock` directive object) are not carried across a
    # translation, so a client cannot reach provider features the gateway does not know.
    r = httpx.post(
        f"http://{stack.api}/v1/chat/completions",
        headers={"authorization": f"Bearer {TEAM_A_KEY}"},
        json={"model": "claude", "messages": HELLO, "mock": {"status": 500}},
        timeout=15.0,
    )
    assert r.status_code == 200, r.text
