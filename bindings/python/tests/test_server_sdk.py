"""The official `openai` SDK against a real `gatewise serve` with a registry: the SDK's
api_key is a gateway key, and the model names a registry entry (`@slug/model`)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import openai
import pytest

from conftest import HELLO, chat_answer, sse_events

ROOT = Path(__file__).resolve().parents[3]


def _binary() -> str:
    path = os.environ.get("GATEWISE_BIN") or str(ROOT / "target" / "debug" / "gatewise")
    if not os.path.exists(path):
        pytest.skip("no gatewise binary (scripts/test.sh sets GATEWISE_BIN after cargo test builds it)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    servers: list[subprocess.Popen] = []

    def start(registry: dict) -> str:
        path = tmp_path / "registry.json"
        path.write_text(json.dumps(registry))
        port = _free_port()
        servers.append(subprocess.Popen([_binary(), "serve", "--port", str(port), "--registry", str(path), "--log-level", "warn"]))
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                return f"http://127.0.0.1:{port}/v1"
            except OSError:
                time.sleep(0.025)
        raise RuntimeError("gatewise serve did not start")

    yield start
    for server in servers:
        server.terminate()
        server.wait(timeout=10)


def _hash(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def test_openai_sdk_with_a_gateway_key_and_a_registry_model(mock, serve):
    m = mock({"body": chat_answer("served")}, {"sse": sse_events(["str", "eam"])})
    base = serve({
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": m.v1},
                      "claude": {"provider": "anthropic", "api_key": "sk-ant", "custom_host": m.v1}},
        "keys": {"team-a": {"hash": _hash("gw-team-a"), "providers": ["openai-prod"]}},
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
