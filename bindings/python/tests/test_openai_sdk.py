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


def test_a_route_outside_v1_through_the_transport_is_a_404(mock):
    gw = gatewise.Gateway(target(mock()))
    with httpx.Client(transport=gw.httpx_transport()) as http:
        r = http.post(BASE.removesuffix("/v1") + "/nope", json={})
    assert r.status_code == 404
    assert json.loads(r.content)["error"]["code"] == "invalid_request"


def test_the_rest_of_the_openai_api_passes_through_in_process(mock):
    m = mock({"body": {"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "openai"}},
             {"body": {"id": "vs_1", "object": "vector_store.deleted", "deleted": True}})
    gw = gatewise.Gateway(target(m))
    client = openai.OpenAI(base_url=BASE, api_key="unused", http_client=httpx.Client(transport=gw.httpx_transport()))
    assert client.models.retrieve("gpt-4o").owned_by == "openai"
    assert client.vector_stores.delete("vs_1").deleted
    assert [(r["method"], r["path"]) for r in m.received] == [("GET", "/v1/models/gpt-4o"), ("DELETE", "/v1/vector_stores/vs_1")]


def test_async_httpx_transport_of_a_sync_client_serves_async_openai(mock):
    m = mock({"body": chat_answer("from a sync client")})
    gw = gatewise.Gateway(target(m))

    async def main() -> str:
        http = httpx.AsyncClient(transport=gw.async_httpx_transport())
        client = openai.AsyncOpenAI(base_url=BASE, api_key="unused", http_client=http)
        r = await client.chat.completions.create(**HELLO)
        await http.aclose()
        return r.choices[0].message.content or ""

    assert asyncio.run(main()) == "from a sync client"


def test_portkey_headers_through_the_transport_override_every_client_option(mock):
    client_side = mock()
    pro = mock({"body": chat_answer("pro")}, {"body": chat_answer("pro again")})
    free = mock({"body": chat_answer("free")})
    conditional = {
        "strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.plan": "pro"}, "then": "pro"}], "default": "free"},
        "targets": [target(free, name="free"), target(pro, name="pro")],
    }
    gw = gatewise.Gateway(target(client_side), metadata={"plan": "free"}, cache_namespace="client")
    client = openai.OpenAI(base_url=BASE, api_key="unused", http_client=httpx.Client(transport=gw.httpx_transport()))
    # A config header replaces the client's config, a metadata header its metadata.
    headers = {"x-portkey-config": json.dumps(conditional), "x-portkey-metadata": json.dumps({"plan": "pro"})}
    r = client.chat.completions.with_raw_response.create(**HELLO, extra_headers=headers)
    assert r.parse().choices[0].message.content == "pro"
    assert r.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    # Without the metadata header the client's own metadata applies to the header's config.
    r = client.chat.completions.create(**HELLO, extra_headers={"x-portkey-config": json.dumps(conditional)})
    assert r.choices[0].message.content == "free"
    # A request timeout header bounds the attempt whatever the client said.
    slow = mock({"delay": 3, "body": chat_answer()})
    with pytest.raises(openai.APIStatusError) as info:
        client.with_options(max_retries=0).chat.completions.create(
            **HELLO, extra_headers={"x-portkey-config": json.dumps(target(slow)), "x-portkey-request-timeout": "200"}
        )
    assert info.value.status_code == 408
    # Provider, key and host by header win over the client's own provider, key and host.
    by_provider = gatewise.Gateway(provider="openai", api_key="sk-client", custom_host=client_side.v1)
    client = openai.OpenAI(base_url=BASE, api_key="unused", http_client=httpx.Client(transport=by_provider.httpx_transport()))
    r = client.chat.completions.create(
        **HELLO, extra_headers={"x-portkey-provider": "openai", "x-portkey-custom-host": pro.v1, "authorization": "Bearer sk-header"}
    )
    assert r.choices[0].message.content == "pro again"
    assert pro.received[-1]["headers"]["authorization"] == "Bearer sk-header"
    assert client_side.received == [], "the client's own target was never called"


def test_the_openai_sdk_names_a_registry_entry_by_model(mock):
    m = mock({"body": chat_answer("via the registry")})
    registry = {"providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": m.v1}}}
    gw = gatewise.Gateway(registry=registry)
    client = openai.OpenAI(base_url=BASE, api_key="unused", http_client=httpx.Client(transport=gw.httpx_transport()))
    r = client.chat.completions.create(model="@openai-prod/gpt-4o", messages=HELLO["messages"])
    assert r.choices[0].message.content == "via the registry"
    assert m.received[0]["headers"]["authorization"] == "Bearer sk-prod"
    assert json.loads(m.received[0]["body"])["model"] == "gpt-4o"


RESPONSE = {
    "id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-4.1",
    "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": "native", "annotations": []}]}],
    "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
}


def test_responses_through_the_openai_sdk_passed_to_openai_and_translated_for_others(mock):
    m = mock({"body": RESPONSE})
    gw = gatewise.Gateway(target(m))
    client = openai.OpenAI(base_url=BASE, api_key="unused", http_client=httpx.Client(transport=gw.httpx_transport()))
    assert client.responses.create(model="gpt-4.1", input="Hi", store=True).output_text == "native"
    assert (m.received[0]["path"], json.loads(m.received[0]["body"])["store"]) == ("/v1/responses", True)

    # A chat-only provider: a stateless response through its chat translation, streamed too.
    chat = mock({"body": chat_answer("translated")}, {"sse": sse_events(["str", "eam"])})
    groq = gatewise.Gateway(target(chat, provider="groq"))
    client = openai.OpenAI(base_url=BASE, api_key="unused", http_client=httpx.Client(transport=groq.httpx_transport()))
    r = client.responses.create(model="llama-3.3-70b", instructions="Be brief.", input="Hi")
    assert (r.output_text, r.status, r.usage.input_tokens) == ("translated", "completed", 3)
    events = list(client.responses.create(model="llama-3.3-70b", input="Hi", stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "stream"
    assert events[-1].type == "response.completed" and events[-1].response.output_text == "stream"
    assert json.loads(chat.received[0]["body"])["messages"][0] == {"role": "system", "content": "Be brief."}
    with pytest.raises(openai.BadRequestError, match="previous_response_id|stored response"):
        client.responses.create(model="llama-3.3-70b", input="And?", previous_response_id="resp_1")


def test_responses_create_on_the_client(mock):
    m = mock({"body": chat_answer("hi there")}, {"sse": sse_events(["a", "b"])})
    gw = gatewise.Gateway(target(m, provider="groq"))
    r = gw.responses.create(model="llama-3.3-70b", input="Hi")
    assert (r.object, r.output[0].content[0].text) == ("response", "hi there")
    kinds = [e.type for e in gw.responses.create(model="llama-3.3-70b", input="Hi", stream=True)]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
