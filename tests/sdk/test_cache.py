"""The response cache seen by the official SDKs: a stored answer replayed as a stream the SDK
parses like any other (OpenAI chunks ending in [DONE], Anthropic's event sequence), tool-call
deltas and usage included, and whole answers the same as the first.

`gpt-cached` and `claude-cached` answer with two tool calls (the mock's `tools=2`) and cache
for ten minutes; each test asks its own question, so it starts with a miss.
"""

from __future__ import annotations

import json

import anthropic
import openai

from conftest import TEAM_A_KEY  # noqa: F401  (the fixtures authenticate as team-a)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def _ask(text: str):
    return [{"role": "user", "content": text}]


def test_openai_sdk_gets_a_cached_answer_as_a_stream(client: openai.OpenAI):
    messages = _ask("cache: weather in Paris and Rome?")
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-cached", messages=messages, tools=TOOLS
    )
    assert raw.headers["x-shardgate-cache"] == "MISS"
    first = raw.parse()
    calls = first.choices[0].message.tool_calls
    assert len(calls) == 2 and first.usage.completion_tokens > 0

    raw = client.chat.completions.with_raw_response.create(
        model="gpt-cached",
        messages=messages,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw.headers["x-shardgate-cache"] == "HIT"
    chunks = list(raw.parse())
    assert len(chunks) > 4
    assert len({c.id for c in chunks}) == 1 and chunks[0].id != first.id
    names, args = ["", ""], ["", ""]
    finish = []
    for c in chunks:
        if not c.choices:
            continue
        for tc in c.choices[0].delta.tool_calls or []:
            names[tc.index] += tc.function.name or ""
            args[tc.index] += tc.function.arguments or ""
        if c.choices[0].finish_reason:
            finish.append(c.choices[0].finish_reason)
    assert names == [c.function.name for c in calls]
    assert args == [c.function.arguments for c in calls]
    for a in args:
        json.loads(a)
    assert finish == ["tool_calls"]
    assert chunks[-1].usage.total_tokens == 0

    again = client.chat.completions.create(model="gpt-cached", messages=messages, tools=TOOLS)
    assert [c.function.arguments for c in again.choices[0].message.tool_calls] == args
    assert again.usage.total_tokens == 0


def test_anthropic_sdk_gets_a_cached_answer_as_a_stream(claude: anthropic.Anthropic):
    kwargs = dict(
        model="claude-cached",
        max_tokens=256,
        messages=_ask("cache: weather in Oslo and Lima?"),
        tools=[
            {
                "name": "get_weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    )
    raw = claude.messages.with_raw_response.create(**kwargs)
    assert raw.headers["x-shardgate-cache"] == "MISS"
    first = raw.parse()
    assert [b.type for b in first.content if b.type == "tool_use"] == ["tool_use", "tool_use"]

    with claude.messages.stream(**kwargs) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.id != first.id
    assert final.stop_reason == first.stop_reason == "tool_use"
    assert [(b.type, getattr(b, "name", None), getattr(b, "input", None)) for b in final.content] == [
        (b.type, getattr(b, "name", None), getattr(b, "input", None)) for b in first.content
    ]
    assert final.usage.output_tokens == 0 and final.usage.input_tokens == 0
