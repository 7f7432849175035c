"""The official `openai` SDK against a real `gatewise serve` with a registry: the SDK's
api_key is a gateway key, and the model names a registry entry (`@slug/model`)."""

from __future__ import annotations

import json

import openai
import pytest

from conftest import HELLO, chat_answer, key_hash, sse_events

def test_openai_sdk_with_a_gateway_key_and_a_registry_model(mock, serve):
    m = mock({"body": chat_answer("served")}, {"sse": sse_events(["str", "eam"])})
    base = serve({
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": m.v1},
                      "claude": {"provider": "anthropic", "api_key": "sk-ant", "custom_host": m.v1}},
        "keys": {"team-a": {"hash": key_hash("gw-team-a"), "providers": ["openai-prod"]}},
    })
    client = openai.OpenAI(base_url=base, api_key="gw-team-a")
    r = client.chat.completions.create(model="@openai-prod/gpt-4o", messages=HELLO["messages"])
    assert r.choices[0].message.content == "served"
    stream = client.chat.completions.create(model="@openai-prod/gpt-4o", messages=HELLO["messages"], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "stream"
    assert [r["headers"]["authorization"] for r in m.received] == ["Bearer sk-prod"] * 2, "the entry's key, not the gateway key"
    assert json.loads(m.received[0]["body"])["model"] == "gpt-4o"

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base, api_key="gw-wrong").chat.completions.create(model="@openai-prod/gpt-4o", messages=HELLO["messages"])
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="@claude/claude-sonnet-4-5", messages=HELLO["messages"])
    assert "claude" in str(info.value)
    assert len(m.received) == 2


def test_openai_sdk_responses_through_the_server_translated_to_a_chat_only_provider(mock, serve):
    m = mock({"body": chat_answer("translated")}, {"sse": sse_events(["tr", "ans"])})
    base = serve({"providers": {"groq-prod": {"provider": "groq", "api_key": "gsk-prod", "custom_host": m.v1}}})
    client = openai.OpenAI(base_url=base, api_key="unused")
    r = client.responses.create(model="@groq-prod/llama-3.3-70b", instructions="Be brief.", input="Hi")
    assert r.output_text == "translated"
    events = list(client.responses.create(model="@groq-prod/llama-3.3-70b", input="Hi", stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "trans"
    assert events[-1].type == "response.completed"
    sent = json.loads(m.received[0]["body"])
    assert m.received[0]["path"].endswith("/chat/completions")
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["model"] == "llama-3.3-70b"
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="@groq-prod/llama-3.3-70b", input="And?", previous_response_id="resp_1")
    assert info.value.param == "previous_response_id"

