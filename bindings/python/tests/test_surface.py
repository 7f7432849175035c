"""The binding's surface comes from the engine's one vocabulary: options, resources and
error classes. These tests fail when the stubs or the runtime drift from it, and exercise
what the vocabulary promises: per-call options, uploads, models.list, result objects,
stream close and provider keys from the environment."""

from __future__ import annotations

import ast
import asyncio
import email.parser
import email.policy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gatewise
from gatewise import _native
from conftest import HELLO, chat_answer, sse_events, target

PACKAGE = Path(gatewise.__file__).parent
STUB = ast.parse((PACKAGE / "_client.pyi").read_text())


def _stub_class(name: str) -> ast.ClassDef:
    return next(n for n in STUB.body if isinstance(n, ast.ClassDef) and n.name == name)


def _kwargs(cls: str, method: str) -> dict:
    fn = next(n for n in _stub_class(cls).body if isinstance(n, ast.FunctionDef) and n.name == method)
    args = fn.args.kwonlyargs + [a for a in fn.args.args if a.arg != "self"]
    return {a.arg: ast.unparse(a.annotation) for a in args}


def _resources(obj: object, prefix: str = "") -> list:
    out = []
    for name, value in vars(obj).items():
        if name.startswith("_"):
            continue
        if callable(value):
            out.append(prefix + name)
        else:
            out.extend(_resources(value, prefix + name + "."))
    return sorted(out)


def _stub_resources(cls: str, prefix: str = "") -> list:
    out = []
    for node in _stub_class(cls).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.annotation, ast.Name):
            out.extend(_stub_resources(node.annotation.id, prefix + node.target.id + "."))  # type: ignore[attr-defined]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and prefix:
            out.append(prefix + node.name)
    return sorted(set(out))


def test_the_clients_have_exactly_the_resources_the_engine_lists():
    listed = sorted(method for method, _ in _native.RESOURCES)
    for cls in (gatewise.Gateway, gatewise.AsyncGateway):
        assert _resources(cls(provider="openai", api_key="k")) == listed
        assert _stub_resources(cls.__name__) == listed, f"the {cls.__name__} stub"


def test_the_stub_declares_every_option_with_the_engine_type_and_no_other():
    names = [name for name, *_ in _native.OPTIONS]
    assert list(gatewise._client.OPTION_NAMES) == names
    # What only a client is made with, not an option of a call.
    client_only = {"__init__": ["registry", "on_log", "redis", "redis_down"], "with_options": []}
    for method in ("__init__", "with_options"):
        declared = _kwargs("_Base", method)
        assert sorted(declared) == sorted(names + client_only[method]), method
        for name, python_type, _header, _doc in _native.OPTIONS:
            assert python_type in declared[name], f"{method}({name}: {declared[name]}) vs {python_type}"


def test_the_exception_hierarchy_is_the_engines():
    for name, parent in _native.ERROR_CLASSES:
        cls, base = getattr(gatewise, name), getattr(gatewise, parent)
        assert cls.__bases__ == (base,), name
        assert issubclass(cls, gatewise.GatewayError)
    assert gatewise.TimeoutError is gatewise.APITimeoutError


USAGE = Path(__file__).parent / "typing" / "usage.py"


def test_types_resolve_under_mypy_strict():
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", str(USAGE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_types_resolve_under_pyright_strict():
    # usage.py opts into strict mode with a `# pyright: strict` comment.
    pyright = Path(sys.executable).parent / "pyright"
    r = subprocess.run([str(pyright), "--pythonpath", sys.executable, str(USAGE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 errors" in r.stdout


def test_result_objects_raise_on_typos_and_dump_like_pydantic(mock):
    m = mock({"body": chat_answer("Paris")})
    r = gatewise.Gateway(target(m)).chat.completions.create(**HELLO)
    assert r.choices[0].message.refusal is None, "optional OpenAI fields read as None"
    with pytest.raises(AttributeError, match="choises"):
        r.choises  # noqa: B018
    assert r.model_dump() == chat_answer("Paris")
    assert json.loads(r.model_dump_json()) == chat_answer("Paris")


def test_per_call_headers_win_over_client_options_and_timeout_bounds_the_call(mock):
    m = mock({"body": chat_answer()}, {"body": chat_answer()}, {"delay": 3, "body": chat_answer()})
    gw = gatewise.Gateway(target(m), trace_id="client")
    r = gw.chat.completions.create(**HELLO, extra_headers={"x-portkey-trace-id": "call"})
    assert r.route.trace_id == "call"
    assert gw.chat.completions.create(**HELLO).route.trace_id == "client"
    with pytest.raises(gatewise.APITimeoutError):
        gw.chat.completions.create(**HELLO, timeout=0.2)
    with pytest.raises(gatewise.BadRequestError) as info:
        gw.chat.completions.create(**HELLO, extra_headers={"x-portkey-metadata": "[1]"})
    assert info.value.param == "x-portkey-metadata"


def _form(received: dict) -> dict:
    raw = b"Content-Type: " + received["headers"]["content-type"].encode() + b"\r\n\r\n" + received["body"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
    return parts


def test_uploads_are_multipart_from_bytes_files_and_tuples(mock, tmp_path):
    m = mock({"body": {"text": "hi"}}, {"body": {"text": "hi"}}, {"body": {"created": 1, "data": []}})
    gw = gatewise.Gateway(target(m))
    assert gw.audio.transcriptions.create(file=b"RIFF-audio", model="whisper-1", temperature=0).text == "hi"
    form = _form(m.received[0])
    assert m.received[0]["path"] == "/v1/audio/transcriptions"
    assert form["file"][2] == b"RIFF-audio"
    assert form["model"][2] == b"whisper-1" and form["temperature"][2] == b"0"
    path = tmp_path / "talk.mp3"
    path.write_bytes(b"ID3")
    with open(path, "rb") as f:
        gw.audio.translations.create(file=f, model="whisper-1")
    assert _form(m.received[1])["file"][:1] == ("talk.mp3",)
    gw.images.edit(image=("cat.png", b"PNG", "image/png"), prompt="a hat")
    form = _form(m.received[2])
    assert form["image"] == ("cat.png", "image/png", b"PNG")
    assert form["prompt"][2] == b"a hat"


def test_models_list_is_a_get(mock):
    m = mock({"body": {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}})
    assert gatewise.Gateway(target(m)).models.list().data[0].id == "gpt-4o-mini"
    assert (m.received[0]["method"], m.received[0]["path"]) == ("GET", "/v1/models")


def test_a_provider_without_a_key_reads_its_environment_variable(mock, monkeypatch):
    m = mock({"body": chat_answer()}, {"body": chat_answer()})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    gatewise.Gateway(provider="openai", custom_host=m.v1).chat.completions.create(**HELLO)
    assert m.received[0]["headers"]["authorization"] == "Bearer sk-from-env"
    monkeypatch.setenv("GROQ_API_KEY", "gsk-env")
    gatewise.Gateway(provider="groq", api_key="explicit", custom_host=m.v1).chat.completions.create(**HELLO)
    assert m.received[1]["headers"]["authorization"] == "Bearer explicit", "an explicit key wins"


def test_closing_an_async_stream_with_a_pending_chunk_returns_at_once(mock):
    m = mock({"sse": sse_events(["first"])[:1], "forever": True})

    async def main() -> float:
        gw = gatewise.AsyncGateway(target(m))
        stream = await gw.chat.completions.create(**HELLO, stream=True)
        assert (await stream.__anext__()).choices[0].delta.content == "first"
        pending = asyncio.ensure_future(stream.__anext__())  # the upstream sends nothing more
        await asyncio.sleep(0.2)
        assert not pending.done()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        tick_task = asyncio.ensure_future(ticker())
        started = time.monotonic()
        await stream.aclose()
        closed_in = time.monotonic() - started
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(pending, 5)
        tick_task.cancel()
        assert ticks > 0, "the event loop kept running"
        return closed_in

    closed_in = asyncio.run(main())
    assert closed_in < 1.0, f"aclose() took {closed_in:.2f} s"
    assert m.wait_disconnects(1), "the upstream request was cancelled"
