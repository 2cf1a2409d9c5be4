"""Keys minted through the admin API, used with the official `openai` SDK.

A key made with `POST /key/generate` works at once for chat, streaming and the models list
(only the models it may use); blocking or letting it expire turns the SDK's next call into an
`AuthenticationError` whose message says why.
"""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from conftest import MASTER_KEY

MESSAGES = [{"role": "user", "content": "Say hello"}]


def admin(stack, path: str, body: dict) -> dict:
    r = httpx.post(
        f"http://{stack.admin}{path}",
        json=body,
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_a_minted_key_works_with_the_sdk(stack, make_client):
    made = admin(stack, "/key/generate", {"key_alias": "sdk-user", "models": ["gpt-4o-mini"]})
    client = make_client(api_key=made["key"])
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        if c.choices
    )
    assert text
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini"]
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="restricted", messages=MESSAGES)


def test_blocked_and_expired_keys_are_refused_with_a_reason(stack, make_client):
    made = admin(stack, "/key/generate", {"key_alias": "sdk-blocked"})
    client = make_client(api_key=made["key"])
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    admin(stack, "/key/block", {"key": made["key_id"]})
    with pytest.raises(openai.AuthenticationError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "blocked" in str(e.value)

    short = admin(stack, "/key/generate", {"duration": "1s"})
    client = make_client(api_key=short["key"])
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    time.sleep(1.1)
    with pytest.raises(openai.AuthenticationError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "expired" in str(e.value)


def test_a_rotated_key_keeps_working_through_its_grace_period(stack, make_client):
    made = admin(stack, "/key/generate", {})
    rotated = admin(stack, "/key/regenerate", {"key": made["key_id"], "grace_period": "1h"})
    assert rotated["key"] != made["key"]
    for secret in (made["key"], rotated["key"]):
        make_client(api_key=secret).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
