"""The official `anthropic` SDK against the gateway's Messages API: in-process through the
httpx transport, and against a real `gatewise serve` with a registry and a gateway key sent
as the SDK's api_key. Claude targets get the request as sent; others get it translated."""

from __future__ import annotations

import asyncio
import json

import anthropic
import pytest

import gatewise
from conftest import chat_answer, key_hash, sse_events, target

BASE = "http://gatewise.local"
MESSAGES = [{"role": "user", "content": "Hi"}]


def claude_answer(text: str) -> dict:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 4, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 9},
    }


def claude_target(m, **extra: object) -> dict:
    return {"provider": "anthropic", "api_key": "sk-ant-mock", "custom_host": m.v1, **extra}


def test_anthropic_sdk_in_process_passthrough_keeps_cache_control_and_betas(mock):
    m = mock({"body": claude_answer("cached")})
    gw = gatewise.Gateway(claude_target(m))
    client = anthropic.Anthropic(base_url=BASE, api_key="unused", http_client=anthropic.DefaultHttpxClient(transport=gw.httpx_transport("httpx2")))
    system = [{"type": "text", "text": "The manual.", "cache_control": {"type": "ephemeral"}}]
    r = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=32,
        system=system,
        messages=MESSAGES,
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    assert r.content[0].text == "cached"
    assert r.usage.cache_read_input_tokens == 9
    sent = m.received[0]
    assert sent["path"] == "/v1/messages"
    assert json.loads(sent["body"])["system"] == system
    assert sent["headers"]["x-api-key"] == "sk-ant-mock", "the config's key, not the SDK's"
    assert sent["headers"]["anthropic-beta"] == "context-1m-2025-08-07"
    assert sent["headers"]["anthropic-version"] == client.default_headers["anthropic-version"], "the SDK's version"


def test_anthropic_sdk_in_process_translated_to_openai_with_a_stream(mock):
    m = mock({"body": chat_answer("from gpt")}, {"sse": sse_events(["str", "eam"])})
    gw = gatewise.Gateway(target(m))
    client = anthropic.Anthropic(base_url=BASE, api_key="unused", http_client=anthropic.DefaultHttpxClient(transport=gw.httpx_transport("httpx2")))
    r = client.messages.create(model="gpt-4o-mini", max_tokens=32, messages=MESSAGES)
    assert r.content[0].text == "from gpt"
    assert r.stop_reason == "end_turn"
    with client.messages.stream(model="gpt-4o-mini", max_tokens=32, messages=MESSAGES) as stream:
        assert "".join(stream.text_stream) == "stream"
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert json.loads(m.received[1]["body"])["max_completion_tokens"] == 32


def test_anthropic_sdk_errors_are_its_own_classes(mock):
    m = mock({"status": 429, "body": {"error": {"message": "slow down"}}})
    gw = gatewise.Gateway(target(m))
    client = anthropic.Anthropic(
        base_url=BASE, api_key="unused", max_retries=0, http_client=anthropic.DefaultHttpxClient(transport=gw.httpx_transport("httpx2"))
    )
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="gpt-4o-mini", max_tokens=8, messages=MESSAGES)
    assert info.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="gpt-4o-mini", max_tokens=8, messages=[{"role": "user", "content": [{"type": "mystery"}]}])


def test_the_client_resource_and_the_async_sdk(mock):
    m = mock({"body": chat_answer("resource")}, {"body": claude_answer("async")})
    r = gatewise.Gateway(target(m)).messages.create(model="gpt-4o-mini", max_tokens=8, messages=MESSAGES)
    assert r.type == "message" and r.content[0].text == "resource"

    async def main() -> None:
        gw = gatewise.AsyncGateway(claude_target(m))
        client = anthropic.AsyncAnthropic(base_url=BASE, api_key="unused", http_client=anthropic.DefaultAsyncHttpxClient(transport=gw.httpx_transport("httpx2")))
        r = await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=MESSAGES)
        assert r.content[0].text == "async"

    asyncio.run(main())


def test_anthropic_sdk_against_the_server_with_a_gateway_key(mock, serve):  # noqa: F811
    m = mock({"body": claude_answer("from claude")}, {"body": chat_answer("from gpt")})
    base = serve({
        "providers": {"claude": {"provider": "anthropic", "api_key": "sk-ant-prod", "custom_host": m.v1},
                      "openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": m.v1}},
        "keys": {"team-a": {"hash": key_hash("gw-team-a")}},
    })
    client = anthropic.Anthropic(base_url=base.removesuffix("/v1"), api_key="gw-team-a", max_retries=0)
    r = client.messages.create(model="@claude/claude-sonnet-4-5", max_tokens=8, messages=MESSAGES)
    assert r.content[0].text == "from claude"
    r = client.messages.create(model="@openai-prod/gpt-4o", max_tokens=8, messages=MESSAGES)
    assert r.content[0].text == "from gpt"
    assert m.received[0]["headers"]["x-api-key"] == "sk-ant-prod", "the entry's key, not the gateway key"
    assert json.loads(m.received[0]["body"])["model"] == "claude-sonnet-4-5"
    assert m.received[1]["headers"]["authorization"] == "Bearer sk-prod"
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=base.removesuffix("/v1"), api_key="gw-wrong", max_retries=0).messages.create(
            model="@claude/claude-sonnet-4-5", max_tokens=8, messages=MESSAGES
        )
    assert len(m.received) == 2
