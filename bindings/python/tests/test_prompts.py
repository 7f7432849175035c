"""The prompt library in-process: a registry's prompts rendered and run through the
client, sync and async, against a mock provider."""

from __future__ import annotations

import asyncio
import json

import pytest

import gatewise
from conftest import chat_answer, sse_events


def _registry(m) -> dict:
    return {
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": m.v1}},
        "prompts": {"support-reply": {"virtual_key": "openai-prod", "version": "7", "model": "gpt-4o-mini", "max_tokens": 256,
                                      "messages": [{"role": "system", "content": "You help {{product}} users. {{>sig}}"},
                                                   {"role": "user", "content": "{{question}}"}]}},
        "partials": {"sig": "Be brief."},
    }


VARIABLES = {"product": "Gatewise", "question": "Is {{product}} fast?"}


def test_render_answers_the_request_the_prompt_stands_for(mock):
    m = mock()
    r = gatewise.Gateway(registry=_registry(m)).prompts.render(prompt_id="support-reply", variables=VARIABLES, temperature=0.2)
    assert r.to_dict() == {"success": True, "data": {
        "model": "gpt-4o-mini", "max_tokens": 256, "temperature": 0.2,
        "messages": [{"role": "system", "content": "You help Gatewise users. Be brief."},
                     {"role": "user", "content": "Is {{product}} fast?"}]}}
    assert m.received == [], "rendering sends nothing"


def test_completions_run_on_the_prompts_entry_with_overrides_sync_and_async(mock):
    m = mock({"body": chat_answer("Yes.")}, {"sse": sse_events(["Ye", "s."])}, {"body": chat_answer("Async.")})
    gw = gatewise.Gateway(registry=_registry(m))
    r = gw.prompts.completions.create(prompt_id="support-reply", variables=VARIABLES, max_tokens=32)
    assert r.choices[0].message.content == "Yes."
    assert r.route.prompt.to_dict() == {"id": "support-reply", "version": "7"}
    sent = json.loads(m.received[0]["body"])
    assert (sent["max_tokens"], sent["model"]) == (32, "gpt-4o-mini"), "the call's override wins"
    assert sent["messages"][0]["content"] == "You help Gatewise users. Be brief."
    assert m.received[0]["headers"]["authorization"] == "Bearer sk-prod"

    stream = gw.prompts.completions.create(prompt_id="support-reply", variables=VARIABLES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "Yes."

    async def run() -> str:
        agw = gatewise.AsyncGateway(registry=_registry(m))
        r = await agw.prompts.completions.create(prompt_id="support-reply", variables=VARIABLES)
        return r.choices[0].message.content

    assert asyncio.run(run()) == "Async."


def test_missing_variables_and_unknown_prompts_are_bad_requests_naming_them(mock):
    m = mock()
    gw = gatewise.Gateway(registry=_registry(m))
    with pytest.raises(gatewise.BadRequestError) as info:
        gw.prompts.completions.create(prompt_id="support-reply", variables={"product": "G"})
    assert info.value.param == "variables.question"
    with pytest.raises(gatewise.BadRequestError) as info:
        gw.prompts.render(prompt_id="nope", variables={})
    assert "nope" in str(info.value)
    with pytest.raises(gatewise.BadRequestError) as info:
        gw.prompts.render(variables={})
    assert info.value.param == "prompt_id"
    assert m.received == []
