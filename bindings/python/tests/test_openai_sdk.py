"""The official openai SDK routed through the engine in-process via the httpx transports."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

import gatewise
from conftest import HELLO, chat_answer, sse_events, target

BASE = "http://gatewise.local/v1"


def test_openai_sdk_sync_with_streaming(mock):
    m = mock({"body": chat_answer("via sdk")}, {"sse": sse_events(["str", "eam"])})
    gw = gatewise.Gateway(target(m))
    client = openai.OpenAI(base_url=BASE, api_key="unused", http_client=httpx.Client(transport=gw.httpx_transport()))
    r = client.chat.completions.create(**HELLO)
    assert r.choices[0].message.content == "via sdk"
    stream = client.chat.completions.create(**HELLO, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "stream"
    assert m.received[0]["headers"]["authorization"] == "Bearer sk-mock", "the config's key, not the SDK's"


def test_openai_sdk_errors_and_portkey_headers(mock):
    m = mock({"status": 429, "body": {"error": {"message": "slow down"}}}, {"body": chat_answer("routed")})
    gw = gatewise.Gateway(target(m))
    client = openai.OpenAI(base_url=BASE, api_key="unused", max_retries=0, http_client=httpx.Client(transport=gw.httpx_transport()))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(**HELLO)
    raw = client.chat.completions.with_raw_response.create(**HELLO, extra_headers={"x-portkey-trace-id": "sdk-trace"})
    assert raw.headers["x-portkey-trace-id"] == "sdk-trace"
    assert raw.headers["x-portkey-provider"] == "openai"
    assert raw.parse().choices[0].message.content == "routed"


def test_openai_async_sdk(mock):
    m = mock({"body": chat_answer("async sdk")}, {"sse": sse_events(["x", "y"])})
    gw = gatewise.AsyncGateway(target(m))

    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=BASE, api_key="unused", http_client=httpx.AsyncClient(transport=gw.httpx_transport()))
        r = await client.chat.completions.create(**HELLO)
        assert r.choices[0].message.content == "async sdk"
        stream = await client.chat.completions.create(**HELLO, stream=True)
        assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "xy"

    asyncio.run(main())


def test_unknown_route_through_the_transport_is_a_404(mock):
    gw = gatewise.Gateway(target(mock()))
    with httpx.Client(transport=gw.httpx_transport()) as http:
        r = http.post(BASE + "/nope", json={})
    assert r.status_code == 404
    assert json.loads(r.content)["error"]["code"] == "invalid_request"
