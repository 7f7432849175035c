"""Guardrail hooks in-process (sync, async, the openai SDK over the httpx transport) and
through `gatewise serve`: refusals as typed errors carrying `hook_results`, failures that
let the answer through with its results, registry guardrails, PII redaction, held streams."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

import gatewise
from conftest import HELLO, chat_answer, sse_events, target

NO_SECRETS = {"checks": [{"id": "default.regexMatch", "parameters": {"rule": "sk-[A-Za-z0-9]+", "not": True}}], "deny": True}


def ask(text: str) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


def test_a_denying_hook_raises_446_with_the_hook_results_and_never_calls_the_provider(mock):
    m = mock({"body": chat_answer("fine")})
    gw = gatewise.Gateway(target(m, before_request_hooks=[{"id": "no-secrets", **NO_SECRETS}]))
    with pytest.raises(gatewise.APIStatusError) as info:
        gw.chat.completions.create(**ask("my key is sk-abc123"))
    e = info.value
    assert (e.status_code, e.code) == (446, "hooks_failed")
    hook = e.body["hook_results"]["before_request_hooks"][0]
    assert (hook["id"], hook["verdict"], hook["deny"]) == ("no-secrets", False, True)
    assert e.route.hook_results.before_request_hooks[0].checks[0].data.match == "sk-abc123"
    assert m.received == []

    r = gw.chat.completions.create(**ask("nothing secret"))
    assert r.choices[0].message.content == "fine"
    assert r.hook_results.before_request_hooks[0].verdict is True
    assert r.route.hook_results.after_request_hooks == []


def test_a_failed_hook_without_deny_answers_with_its_results_sync_and_async(mock):
    m = mock({"body": chat_answer("Sure")}, {"body": chat_answer("Sure")})
    config = target(m, input_guardrails=[{"default.wordCount": {"maxWords": 3}}], output_guardrails=[{"endsWith": {"suffix": "Thanks"}}])
    r = gatewise.Gateway(config).chat.completions.create(**ask("one two three four five"))
    assert r.choices[0].message.content == "Sure"
    assert r.hook_results.before_request_hooks[0].checks[0].data.wordCount == 5
    assert r.hook_results.after_request_hooks[0].verdict is False

    async def run():
        return await gatewise.AsyncGateway(config).chat.completions.create(**ask("one two three four five"))

    r = asyncio.run(run())
    assert r.route.hook_results.after_request_hooks[0].checks[0].id == "default.endsWith"


def test_registry_guardrails_pii_redaction_and_config_errors(mock):
    m = mock({"body": chat_answer("noted")})
    registry = {
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": m.v1}},
        "guardrails": {"no-secrets": NO_SECRETS, "redact": {"checks": [{"id": "default.pii", "parameters": {"redact": True}}]}},
    }
    gw = gatewise.Gateway(registry=registry)
    guarded = {"virtual_key": "openai-prod", "input_guardrails": ["no-secrets", "redact"]}
    with pytest.raises(gatewise.APIStatusError) as info:
        gw.with_options(config=guarded).chat.completions.create(**ask("sk-live1234"))
    assert info.value.status_code == 446
    r = gw.with_options(config=guarded).chat.completions.create(**ask("mail jane@example.com"))
    assert r.choices[0].message.content == "noted"
    assert json.loads(m.received[0]["body"])["messages"][0]["content"] == "mail [REDACTED_EMAIL]"

    with pytest.raises(gatewise.ConfigError) as info:
        gw.with_options(config={"virtual_key": "openai-prod", "before_request_hooks": [{"id": "nope"}]}).chat.completions.create(**HELLO)
    assert info.value.param == "before_request_hooks[0].id"


def test_a_held_stream_is_refused_whole_and_a_passing_one_streams(mock):
    m = mock({"sse": sse_events(["the password ", "is hunter2"])}, {"sse": sse_events(["all ", "good"])})
    gw = gatewise.Gateway(target(m, output_guardrails=[{"default.contains": {"words": ["password"], "operator": "none"}, "deny": True}]))
    with pytest.raises(gatewise.APIStatusError) as info:
        gw.chat.completions.create(**ask("x"), stream=True)
    assert info.value.status_code == 446
    stream = gw.chat.completions.create(**ask("x"), stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "all good"


def test_the_openai_sdk_sees_446_as_an_api_status_error(mock):
    gw = gatewise.Gateway(target(mock(), before_request_hooks=[NO_SECRETS]))
    client = openai.OpenAI(base_url="http://gatewise.local/v1", api_key="unused", max_retries=0,
                           http_client=httpx.Client(transport=gw.httpx_transport()))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(**ask("sk-abc123"))
    assert info.value.status_code == 446
    assert info.value.response.json()["hook_results"]["before_request_hooks"][0]["verdict"] is False


def test_the_server_answers_246_and_446_to_the_openai_sdk(mock, serve):
    m = mock({"body": chat_answer("Sure")})
    base = serve({
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": m.v1}},
        "guardrails": {"no-secrets": NO_SECRETS, "short": {"checks": [{"id": "default.wordCount", "parameters": {"maxWords": 2}}]}},
        "configs": {"guarded": {"virtual_key": "openai-prod", "input_guardrails": ["no-secrets", "short"]}},
    })
    client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0, default_headers={"x-portkey-config": "guarded"})
    raw = client.chat.completions.with_raw_response.create(**ask("three words here"))
    assert raw.status_code == 246
    body = json.loads(raw.content)
    assert [h["verdict"] for h in body["hook_results"]["before_request_hooks"]] == [True, False]
    assert raw.parse().choices[0].message.content == "Sure"
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(**ask("sk-abc123"))
    assert info.value.status_code == 446
    assert len(m.received) == 1
