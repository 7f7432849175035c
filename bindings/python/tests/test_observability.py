"""Usage, cost and the request record in the Python binding: ``route.usage`` and
``route.cost`` on answers and (once ended) streams, and ``on_log`` getting every record."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import pytest

import gatewise
from conftest import HELLO, chat_answer, target


def answer_with_usage(model: str, prompt: int, completion: int) -> dict:
    body = chat_answer("hi", model)
    body["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return body


def wait_for(records: list, n: int = 1) -> None:
    deadline = time.monotonic() + 5
    while len(records) < n:
        assert time.monotonic() < deadline, f"{len(records)} of {n} records"
        time.sleep(0.005)


def test_answers_carry_usage_and_cost_and_on_log_gets_the_record(mock):
    m = mock({"body": answer_with_usage("gpt-4o-mini-2024-07-18", 1000, 100)})
    records: list[dict] = []
    gw = gatewise.Gateway(target(m), metadata={"team": "search"}, trace_id="t-py", on_log=records.append)
    r = gw.chat.completions.create(**HELLO)
    assert r.route.usage.to_dict() == {
        "input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100,
        "cached_input_tokens": 0, "reasoning_tokens": 0, "cache_write_input_tokens": 0,
    }
    assert r.route.cost == pytest.approx((1000 * 0.15 + 100 * 0.6) / 1e6, abs=1e-12)
    assert r.route.model == "gpt-4o-mini-2024-07-18"
    wait_for(records)
    record = records[0]
    assert (record["trace_id"], record["status"], record["metadata"]) == ("t-py", 200, {"team": "search"})
    assert record["usage"]["input_tokens"] == 1000
    assert record["cost_usd"] == r.route.cost
    assert len(record["attempts"]) == 1
    assert "sk-mock" not in json.dumps(record), "no key in the record"


def test_an_unknown_model_has_no_cost(mock):
    m = mock({"body": answer_with_usage("my-fine-tune", 10, 1)})
    r = gatewise.Gateway(target(m)).chat.completions.create(**HELLO)
    assert r.route.usage.input_tokens == 10
    assert r.route.cost is None


def test_a_stream_reports_its_usage_once_ended_without_the_chunk_it_did_not_ask_for(mock):
    def chunk(delta: dict, finish: object) -> str:
        return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": None})

    usage = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}})
    m = mock({"sse": [chunk({"content": "hi"}, None), chunk({}, "stop"), usage, "[DONE]"]})
    records: list[dict] = []
    stream = gatewise.Gateway(target(m), on_log=records.append).chat.completions.create(**HELLO, stream=True)
    assert stream.route.usage is None, "not known before the end"
    chunks = [c.to_dict() for c in stream]
    assert len(chunks) == 2 and all("usage" not in c for c in chunks), chunks
    assert json.loads(m.received[0]["body"])["stream_options"] == {"include_usage": True}
    assert stream.route.usage.total_tokens == 12
    assert stream.route.cost == pytest.approx((10 * 2.5 + 2 * 10) / 1e6, abs=1e-12)
    wait_for(records)
    assert records[0]["stream"] is True and records[0]["ttft_ms"] > 0


def test_async_clients_log_too_and_a_failing_callback_never_fails_a_request(mock):  # noqa: C901
    m = mock({"body": answer_with_usage("gpt-4o-mini", 1, 1)}, {"body": answer_with_usage("gpt-4o-mini", 1, 1)})
    records: list[dict] = []

    async def main() -> None:
        gw = gatewise.AsyncGateway(target(m), on_log=records.append)
        r = await gw.chat.completions.create(**HELLO)
        assert r.route.usage.total_tokens == 2

    asyncio.run(main())
    wait_for(records)

    def boom(record: dict) -> None:
        raise RuntimeError("boom")

    reported: list = []
    hook, sys.unraisablehook = sys.unraisablehook, reported.append
    try:
        r = gatewise.Gateway(target(m), on_log=boom).chat.completions.create(**HELLO)
        assert r.choices[0].message.content == "hi"
        wait_for(reported)
    finally:
        sys.unraisablehook = hook
    assert isinstance(reported[0].exc_value, RuntimeError)
    with pytest.raises(TypeError):
        gatewise.Gateway(target(m), on_log=5)
