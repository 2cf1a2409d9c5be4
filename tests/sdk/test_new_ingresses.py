"""The two newer ingresses through the real binary, driven by their official SDKs.

- The `openai` SDK's Responses API (`client.responses.create`, whole and streamed, and the
  `client.responses.stream` helper) in front of an OpenAI Chat upstream (`gpt-4o-mini`,
  `gpt-tools`), an Anthropic upstream (`claude`) and a Responses-API upstream (`gpt-resp`,
  where server-side state passes through).
- The `google-genai` SDK (`models.generate_content`, `generate_content_stream`) in front of
  the same upstreams.

The mock answers `tok0 … tok7` unless told otherwise; the `*-tools` aliases answer two tool
calls named after the request's first tool.
"""

from __future__ import annotations

import json

import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from conftest import TEAM_A_KEY

TEXT = "".join(f"tok{i} " for i in range(8))
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@pytest.fixture(scope="session")
def gemini(stack) -> genai.Client:
    """The official google-genai SDK pointed at the gateway (no retries)."""
    return genai.Client(
        api_key=TEAM_A_KEY,
        http_options=types.HttpOptions(
            base_url=f"http://{stack.api}",
            api_version="v1beta",
            timeout=15_000,
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )


# ----------------------------------------------------------------------- openai Responses API


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude", "gpt-resp"])
def test_responses_create_whole(client: openai.OpenAI, model: str):
    r = client.responses.create(
        model=model, input="Say hello", instructions="Be brief.", max_output_tokens=64
    )
    assert r.object == "response" and r.status == "completed"
    assert r.output_text == TEXT
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude", "gpt-resp"])
def test_responses_create_streamed(client: openai.OpenAI, model: str):
    events = list(client.responses.create(model=model, input="Say hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == TEXT
    done = events[-1].response
    assert done.output_text == TEXT and done.usage.output_tokens > 0
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_responses_stream_helper_accumulates(client: openai.OpenAI):
    with client.responses.stream(model="claude", input="Say hello") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == TEXT


def test_responses_tool_calls_whole_and_streamed(client: openai.OpenAI):
    tools = [
        {"type": "function", "name": "get_weather", "description": "Weather", "parameters": WEATHER}
    ]
    r = client.responses.create(model="gpt-tools", input="Weather in Paris?", tools=tools)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 2 and all(c.name == "get_weather" for c in calls)
    assert all(isinstance(json.loads(c.arguments), dict) for c in calls)
    assert len({c.call_id for c in calls}) == 2
    events = list(
        client.responses.create(model="gpt-tools", input="Weather?", tools=tools, stream=True)
    )
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.item.type for e in added].count("function_call") == 2
    args = {}
    for e in events:
        if e.type == "response.function_call_arguments.delta":
            args[e.output_index] = args.get(e.output_index, "") + e.delta
    assert len(args) == 2 and all(isinstance(json.loads(a), dict) for a in args.values())
    final = events[-1].response
    assert [o.type for o in final.output].count("function_call") == 2


def test_state_needs_a_responses_upstream(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="gpt-4o-mini", input="more", previous_response_id="resp_1")
    assert "previous_response_id" in str(e.value)
    # A Responses-API upstream keeps the conversation: the request passes through.
    r = client.responses.create(model="gpt-resp", input="more", previous_response_id="resp_1")
    assert r.output_text == TEXT


def test_responses_errors_in_openai_shape(client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="gpt-busy", input="hi")


# --------------------------------------------------------------------------------- google-genai


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude"])
def test_genai_generate_content(gemini: genai.Client, model: str):
    r = gemini.models.generate_content(
        model=model,
        contents="Say hello",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=64),
    )
    assert r.text == TEXT
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    u = r.usage_metadata
    assert u.prompt_token_count > 0 and u.candidates_token_count > 0
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude"])
def test_genai_generate_content_stream(gemini: genai.Client, model: str):
    chunks = list(gemini.models.generate_content_stream(model=model, contents="Say hello"))
    assert "".join(c.text or "" for c in chunks) == TEXT
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count > 0


def test_genai_function_calls(gemini: genai.Client):
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather", description="Weather", parameters_json_schema=WEATHER
            )
        ]
    )
    config = types.GenerateContentConfig(
        tools=[tool],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    r = gemini.models.generate_content(model="gpt-tools", contents="Weather?", config=config)
    calls = r.function_calls
    assert len(calls) == 2 and all(c.name == "get_weather" for c in calls)
    assert all(isinstance(c.args, dict) for c in calls)
    streamed = [
        fc
        for chunk in gemini.models.generate_content_stream(
            model="gpt-tools", contents="Weather?", config=config
        )
        for fc in (chunk.function_calls or [])
    ]
    assert len(streamed) == 2


def test_genai_errors_in_google_shape(gemini: genai.Client):
    with pytest.raises(genai_errors.ClientError) as e:
        gemini.models.generate_content(model="no-such-model", contents="hi")
    assert e.value.code == 404
    with pytest.raises(genai_errors.ClientError) as e:
        gemini.models.generate_content(model="gpt-busy", contents="hi")
    assert e.value.code == 429 and e.value.status == "RESOURCE_EXHAUSTED"
