"""The Python binding against mock providers: every method, sync and async."""

from __future__ import annotations

import asyncio
import enum
import json
import threading
import time

import pytest

import gatewise
from conftest import HELLO, chat_answer, sse_events, target


def test_chat_completion_with_attribute_access_and_route_info(mock):
    m = mock({"body": chat_answer("Paris")})
    gw = gatewise.Gateway(target(m), trace_id="t-1")
    r = gw.chat.completions.create(**HELLO)
    assert r.choices[0].message.content == "Paris"
    assert r.usage.total_tokens == 4
    assert r.choices[0].message.tool_calls is None, "absent optional fields read as None"
    assert r.to_dict() == chat_answer("Paris")
    assert json.loads(r.to_json()) == chat_answer("Paris")
    assert (r.route.provider, r.route.option_index, r.route.retry_count) == ("openai", "config", 0)
    assert r.route.cache_status == "DISABLED"
    assert r.route.trace_id == "t-1"
    sent = m.received[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-mock"
    assert json.loads(sent["body"]) == HELLO
    # Compact, as the OpenAI SDKs send it: a response cache shared with the server keys
    # the same request alike from either surface.
    assert sent["body"] == json.dumps(HELLO, separators=(",", ":")).encode()


def test_params_of_every_kind_cross_as_the_json_body_and_what_only_json_knows_is_left_to_it(mock):
    class Size(enum.IntEnum):
        BIG = 3

    class Tone(str, enum.Enum):
        CALM = "calm"

    m = mock(*[{"body": chat_answer()} for _ in range(2)])
    gw = gatewise.Gateway(target(m))
    params = {
        "model": "gpt-4o-mini",
        "messages": ({"role": "user", "content": 'h\u00e9llo "q" \\ \n\t\x01\x7f \u2603 \U0001d11e'},),
        "temperature": 0.2,
        "top_p": 1.0,
        "n": Size.BIG,
        "user": Tone.CALM,
        "seed": -(2**63),
        "stream": False,
        "stop": None,
        "metadata": {"big": 1e16, "small": 1e-7, "empty": {}, "none": [], "deep": [[[[{"a": [True]}]]]]},
    }
    gw.chat.completions.create(**params)
    assert json.loads(m.received[0]["body"]) == json.loads(json.dumps(params))
    assert "h\u00e9llo".encode() in m.received[0]["body"], "written natively: UTF-8, not json.dumps' \\u escapes"
    # A key that is not a string and an int past 64 bits: json.dumps writes them, as before.
    gw.chat.completions.create(**HELLO, logit_bias={50256: -100}, seed=2**70)
    assert json.loads(m.received[1]["body"]) == {**HELLO, "logit_bias": {"50256": -100}, "seed": 2**70}
    # What json refuses is refused with its own errors, before anything is sent.
    with pytest.raises(TypeError, match="not JSON serializable"):
        gw.chat.completions.create(**HELLO, user=object())
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(ValueError, match="[Cc]ircular reference"):
        gw.chat.completions.create(**HELLO, metadata=loop)
    # NaN is written as json.dumps writes it, which is not JSON: the engine says so.
    with pytest.raises(gatewise.BadRequestError, match="not valid JSON"):
        gw.chat.completions.create(**HELLO, temperature=float("nan"))
    assert len(m.received) == 2


def test_answers_read_as_json_loads_reads_them_down_to_the_odd_corners(mock):
    odd = [
        # Integers past 64 bits stay exact; big floats stay floats; -0 is an int.
        b'{"id":"a","n":123456789012345678901234567890,"f":1e19,"g":1.7976931348623157e308,"z":-0,"u":18446744073709551615}',
        # Floats correctly rounded, as Python reads them.
        b'{"id":"b","x":0.1,"y":2.2250738585072011e-308,"w":9007199254740993.0,"v":[1.0,-2.5e-7,3]}',
        # A repeated key keeps its first place and its last value; escapes; a surrogate pair.
        rb'{"id":"c","k":1,"j":2,"k":3,"s":"\u00e9\n\t\"\\\/\ud834\udd1e \u2603 ' + "caf\u00e9".encode() + b'"}',
        # What only json.loads reads: NaN and Infinity, a lone surrogate, deep nesting.
        rb'{"id":"d","nan":NaN,"inf":-Infinity,"lone":"\ud800","deep":' + b"[" * 200 + b"]" * 200 + b"}",
    ]
    m = mock({"body": chat_answer("caf\u00e9")}, *[{"raw": raw} for raw in odd])
    gw = gatewise.Gateway(target(m))
    assert gw.chat.completions.create(**HELLO).choices[0].message.content == "caf\u00e9"
    for raw in odd:
        got = gw.chat.completions.create(**HELLO)._data
        # repr tells 1 from 1.0 and shows order, and NaN (never equal to itself) as nan.
        assert repr(got) == repr(json.loads(raw))


def test_object_keys_read_alike_however_many_and_however_long():
    # Keys come from a small cache of the ones met before: many distinct keys (more than
    # its slots), long ones, escaped and non-ASCII ones read the same, again and again.
    from gatewise import _native

    keys = [f"key{i}" for i in range(300)] + ["k" * 40, "caf\u00e9", "\u2603", "a\"b", ""]
    texts = [json.dumps({k: i for i, k in enumerate(keys)}).encode(), rb'{"caf\u00e9":1,"\u00e9t\u00e9":{"id":[]}}']
    for _ in range(3):
        for text in texts:
            assert repr(_native.loads(text)) == repr(json.loads(text))


def test_config_as_json_text_or_file_and_provider_without_config(mock, tmp_path):
    m = mock({"body": chat_answer("a")}, {"body": chat_answer("b")}, {"body": chat_answer("c")})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(target(m)))
    assert gatewise.Gateway(json.dumps(target(m))).chat.completions.create(**HELLO).choices[0].message.content == "a"
    assert gatewise.Gateway(path).chat.completions.create(**HELLO).choices[0].message.content == "b"
    gw = gatewise.Gateway(provider="groq", api_key="gsk", custom_host=m.v1)
    r = gw.chat.completions.create(**HELLO)
    assert (r.choices[0].message.content, r.route.provider) == ("c", "groq")


def test_completions_embeddings_moderations_and_speech(mock):
    m = mock(
        {"body": {"object": "text_completion", "choices": [{"text": "ok", "index": 0}]}},
        {"body": {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]}},
        {"body": {"id": "modr", "results": [{"flagged": False}]}},
        {"raw": b"ID3audio", "content_type": "audio/mpeg"},
    )
    gw = gatewise.Gateway(target(m))
    assert gw.completions.create(model="m", prompt="x").choices[0].text == "ok"
    assert gw.embeddings.create(model="e", input="x").data[0].embedding == [0.5, 0.25]
    assert gw.moderations.create(input="x").results[0].flagged is False
    speech = gw.audio.speech.create(model="tts-1", input="hi", voice="alloy")
    assert (speech.content, speech.content_type) == (b"ID3audio", "audio/mpeg")
    assert [r["path"] for r in m.received] == ["/v1/completions", "/v1/embeddings", "/v1/moderations", "/v1/audio/speech"]


def test_streaming_yields_chunk_objects(mock):
    m = mock({"sse": sse_events(["Hel", "lo"])})
    stream = gatewise.Gateway(target(m)).chat.completions.create(**HELLO, stream=True)
    assert isinstance(stream, gatewise.Stream)
    assert stream.route.provider == "openai"
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_closing_a_stream_cancels_the_upstream_request(mock):
    m = mock({"sse": sse_events(["first"])[:1], "forever": True})
    stream = gatewise.Gateway(target(m)).chat.completions.create(**HELLO, stream=True)
    assert next(stream).choices[0].delta.content == "first"
    stream.close()
    assert m.wait_disconnects(1), "the upstream saw the connection close"


def test_a_stream_that_breaks_midway_raises_instead_of_ending_cleanly(mock):
    m = mock({"sse": sse_events(["partial"])[:1]})  # ends with no finish_reason and no [DONE]
    stream = gatewise.Gateway(target(m)).chat.completions.create(**HELLO, stream=True)
    assert next(stream).choices[0].delta.content == "partial"
    with pytest.raises(gatewise.APIStatusError) as info:
        next(stream)
    assert info.value.code == "stream_error"


def test_fallback_and_conditional_routing_with_per_request_metadata(mock):
    down = mock({"status": 503, "body": {"error": {"message": "busy"}}})
    up = mock({"body": chat_answer("from backup")})
    gw = gatewise.Gateway({"strategy": {"mode": "fallback"}, "targets": [target(down), target(up)]})
    r = gw.chat.completions.create(**HELLO)
    assert (r.choices[0].message.content, r.route.option_index) == ("from backup", "config.targets[1]")
    assert [a.status for a in r.route.attempts] == [503, 200]

    pro = mock({"body": chat_answer("pro")})
    free = mock({"body": chat_answer("free")})
    config = {
        "strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.plan": "pro"}, "then": "pro"}], "default": "free"},
        "targets": [target(free, name="free"), target(pro, name="pro")],
    }
    gw = gatewise.Gateway(config)
    assert gw.with_options(metadata={"plan": "pro"}).chat.completions.create(**HELLO).choices[0].message.content == "pro"
    assert gw.chat.completions.create(**HELLO).choices[0].message.content == "free"


def test_errors_are_typed_with_code_status_provider_and_param(mock):
    with pytest.raises(gatewise.ConfigError) as info:
        gatewise.Gateway({"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai", "api_key": "k", "retry": {"attempts": 9}}]})
    assert info.value.param == "targets[0].retry.attempts"
    assert info.value.code == "invalid_config" and info.value.status_code == 400

    m = mock(
        {"status": 429, "body": {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}},
        {"status": 401, "body": {"error": {"message": "bad key"}}},
        {"status": 500, "body": {"error": {"message": "boom"}}},
    )
    gw = gatewise.Gateway(target(m))
    with pytest.raises(gatewise.RateLimitError) as info:
        gw.chat.completions.create(**HELLO)
    e = info.value
    assert (e.status_code, e.provider, e.code) == (429, "openai", "rate_limited")
    assert e.message == "openai error: slow down"
    assert e.body["error"]["code"] == "rate_limit_exceeded"
    assert isinstance(e, gatewise.APIStatusError)
    with pytest.raises(gatewise.AuthenticationError):
        gw.chat.completions.create(**HELLO)
    with pytest.raises(gatewise.InternalServerError) as info:
        gw.chat.completions.create(**HELLO)
    assert info.value.status_code == 500 and isinstance(info.value, gatewise.APIStatusError)

    slow = mock({"delay": 3, "body": chat_answer()})
    with pytest.raises(gatewise.APITimeoutError) as info:
        gatewise.Gateway(target(slow), request_timeout=200).chat.completions.create(**HELLO)
    assert isinstance(info.value, gatewise.APIConnectionError) and info.value.status_code == 408

    dead = {"provider": "openai", "api_key": "k", "custom_host": "http://127.0.0.1:9/v1"}
    with pytest.raises(gatewise.APIConnectionError):
        gatewise.Gateway(dead).chat.completions.create(**HELLO)

    with pytest.raises(gatewise.BadRequestError) as info:
        gatewise.Gateway(target(m)).chat.completions.create(model="m", messages=[])
    assert (info.value.code, info.value.param, info.value.status_code) == ("invalid_request", "messages", 400)

    with pytest.raises(gatewise.ConfigError):
        gatewise.Gateway()
    with pytest.raises(TypeError):
        gatewise.Gateway(target(m)).with_options(not_an_option=1)


def test_a_translated_providers_garbage_200_is_invalid_upstream_response(mock):
    garbage = mock({"raw": b"<html>proxy error</html>"})
    with pytest.raises(gatewise.InternalServerError) as info:
        gatewise.Gateway(target(garbage, provider="anthropic")).chat.completions.create(**HELLO)
    e = info.value
    assert (e.code, e.status_code, e.provider) == ("invalid_upstream_response", 502, "anthropic")


def test_with_options_replaces_only_what_it_sets(mock):
    m = mock({"body": chat_answer("x")}, {"body": chat_answer("y")})
    base = gatewise.Gateway(target(m), trace_id="base")
    assert base.with_options(trace_id="override").chat.completions.create(**HELLO).route.trace_id == "override"
    assert base.chat.completions.create(**HELLO).route.trace_id == "base"


def test_cache_force_refresh_and_status(mock):
    m = mock({"body": chat_answer("1")}, {"body": chat_answer("2")})
    gw = gatewise.Gateway(target(m, cache={"mode": "simple", "max_age": 60}))
    assert gw.chat.completions.create(**HELLO).route.cache_status == "MISS"
    hit = gw.chat.completions.create(**HELLO)
    assert (hit.route.cache_status, hit.choices[0].message.content) == ("HIT", "1")
    assert gw.with_options(cache_force_refresh=True).chat.completions.create(**HELLO).route.cache_status == "REFRESH"
    assert len(m.received) == 2


def test_route_is_a_dry_run(mock):
    m = mock()
    gw = gatewise.Gateway({"strategy": {"mode": "loadbalance"}, "targets": [target(m, weight=1), target(m, weight=1, override_params={"model": "b"})]})
    a = gw.route(HELLO, seed=3)
    assert a == gw.route(HELLO, seed=3), "a seed makes the draw reproducible"
    plan = a["targets"]
    assert len(plan) == 1 and plan[0]["url"] == m.v1 + "/chat/completions"
    assert plan[0]["headers"]["authorization"] == "[redacted]"
    assert m.received == [], "nothing was sent"


def test_the_gil_is_released_while_waiting(mock):
    n = 8
    m = mock(*[{"delay": 0.5, "body": chat_answer()} for _ in range(n)])
    gw = gatewise.Gateway(target(m))
    errors: list[Exception] = []

    def call() -> None:
        try:
            gw.chat.completions.create(**HELLO)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # Shown by what overlapped at the upstream, not by how long it took: with the GIL
    # held while waiting, the calls would reach it one at a time.
    assert m.max_in_flight >= n // 2, f"only {m.max_in_flight} of {n} calls overlapped: they ran one at a time"


def test_async_gateway_calls_streams_and_concurrency(mock):
    m = mock(*[{"body": chat_answer(str(i))} for i in range(50)], {"sse": sse_events(["a", "b"])})

    async def main() -> None:
        gw = gatewise.AsyncGateway(target(m))
        results = await asyncio.gather(*[gw.chat.completions.create(**HELLO) for _ in range(50)])
        assert sorted(int(r.choices[0].message.content) for r in results) == list(range(50))
        stream = await gw.chat.completions.create(**HELLO, stream=True)
        assert isinstance(stream, gatewise.AsyncStream)
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        assert text == "ab"

    asyncio.run(main())


def test_async_cancellation_drops_the_upstream_call(mock):
    m = mock({"delay": 10, "body": chat_answer()})

    async def main() -> None:
        gw = gatewise.AsyncGateway(target(m))
        task = asyncio.ensure_future(gw.chat.completions.create(**HELLO))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 3
    assert m.wait_disconnects(1), "the upstream saw the request go away"


def test_async_errors_are_typed(mock):
    m = mock({"status": 429, "body": {"error": {"message": "slow"}}})

    async def main() -> None:
        with pytest.raises(gatewise.RateLimitError):
            await gatewise.AsyncGateway(target(m)).chat.completions.create(**HELLO)

    asyncio.run(main())


def test_openai_sdk_call_options_are_not_sent_to_the_provider(mock):
    m = mock({"body": chat_answer("ok")}, {"delay": 3, "body": chat_answer("late")})
    gw = gatewise.Gateway(target(m))
    r = gw.chat.completions.create(**HELLO, extra_body={"seed": 7})
    assert r.choices[0].message.content == "ok"
    assert json.loads(m.received[0]["body"]) == {**HELLO, "seed": 7}
    with pytest.raises(gatewise.TimeoutError):
        gw.chat.completions.create(**HELLO, timeout=0.2)
    assert "timeout" not in json.loads(m.received[1]["body"])
    with pytest.raises(TypeError):
        gw.chat.completions.create(**HELLO, extra_query={"x": "y"})


def test_parameters_a_provider_lacks_are_reported_in_dropped_params(mock):
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    m = mock({"body": message})
    gw = gatewise.Gateway(provider="anthropic", api_key="sk-ant", custom_host=m.v1)
    r = gw.chat.completions.create(model="claude-3-5-haiku-20241022", messages=HELLO["messages"], seed=7, n=1, max_tokens=5)
    assert r.choices[0].message.content == "hi"
    assert r.route.dropped_params == ["seed", "n"]
    sent = json.loads(m.received[0]["body"])
    assert "seed" not in sent and "n" not in sent


def test_a_registry_names_providers_and_configs(mock, tmp_path):
    m = mock(*[{"body": chat_answer("registry")} for _ in range(4)])
    registry = {
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": m.v1}},
        "configs": {"pc-support": {"virtual_key": "openai-prod"}},
    }
    path = tmp_path / "registry.yaml"
    path.write_text(
        "providers:\n  openai-prod:\n    provider: openai\n    api_key: sk-prod\n"
        f"    custom_host: {m.v1}\nconfigs:\n  pc-support:\n    virtual_key: openai-prod\n"
    )
    for gw in (
        gatewise.Gateway(registry=registry, provider="@openai-prod"),
        gatewise.Gateway(registry=registry, virtual_key="openai-prod"),
        gatewise.Gateway("pc-support", registry=path),
    ):
        assert gw.chat.completions.create(**HELLO).choices[0].message.content == "registry"
    gw = gatewise.Gateway(registry=registry)
    r = gw.chat.completions.create(model="@openai-prod/gpt-4o", messages=HELLO["messages"])
    assert r.route.provider == "openai"
    assert all(r["headers"]["authorization"] == "Bearer sk-prod" for r in m.received)

    with pytest.raises(gatewise.ConfigError) as info:
        gatewise.Gateway(registry=registry, virtual_key="nope")
    assert info.value.code == "unknown_virtual_key"
    with pytest.raises(gatewise.ConfigError) as info:
        gatewise.Gateway(registry={"providers": {"p": {"provider": "nope"}}})
    assert info.value.param == "registry.providers.p.provider"


def test_rerank_in_cohere_shape_from_voyage_sync_and_async(mock):
    voyage = {"object": "list", "data": [{"relevance_score": 0.9, "index": 1}], "model": "rerank-2.5",
              "usage": {"total_tokens": 12}}
    m = mock({"body": voyage}, {"body": voyage})
    config = target(m, provider="voyage")
    r = gatewise.Gateway(config).rerank.create(model="rerank-2.5", query="capital?", documents=["Paris", "Rome"],
                                               top_n=1, return_documents=True)
    assert r.to_dict()["results"] == [{"relevance_score": 0.9, "index": 1, "document": {"text": "Rome"}}]
    assert json.loads(m.received[0]["body"])["top_k"] == 1
    assert m.received[0]["path"] == "/v1/rerank"

    async def main() -> float:
        r = await gatewise.AsyncGateway(config).rerank.create(model="rerank-2.5", query="q", documents=["a", "b"])
        return r.results[0].relevance_score

    assert asyncio.run(main()) == 0.9
    with pytest.raises(gatewise.GatewayError) as e:
        gatewise.Gateway(target(m)).rerank.create(model="m", query="q", documents=["a"])
    assert e.value.code == "unsupported_endpoint"
