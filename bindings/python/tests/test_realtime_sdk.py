"""The official `openai` SDK's realtime client against a real `gatewise serve`: the session
is routed by the registry (`@slug/model` in `?model=`, a gateway key as the SDK's key) to a
mock realtime provider over loopback, and relayed both ways."""

from __future__ import annotations

import json
import threading
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import openai
import pytest
from websockets.sync.server import ServerConnection, serve as ws_serve

from conftest import key_hash

USAGE = {"total_tokens": 9, "input_tokens": 6, "output_tokens": 3}


class MockRealtime:
    """Records each handshake, sends `session.created` naming the `?model=`, answers
    `response.create` with a `response.done` carrying usage, and echoes the rest."""

    def __init__(self) -> None:
        self.handshakes: list[dict] = []

        def process_request(connection: ServerConnection, request) -> None:  # type: ignore[no-untyped-def]
            self.handshakes.append({"path": request.path, "headers": {k.lower(): v for k, v in request.headers.raw_items()}})

        def session(ws: ServerConnection) -> None:
            model = parse_qs(urlsplit(ws.request.path).query).get("model", [""])[0]  # type: ignore[union-attr]
            ws.send(json.dumps({"type": "session.created", "event_id": "event_1", "session": {"model": model}}))
            for message in ws:
                event = json.loads(message)
                if event.get("type") == "response.create":
                    reply = {"type": "response.done", "event_id": "event_2",
                             "response": {"id": "resp_1", "status": "completed", "usage": USAGE}}
                else:
                    reply = {"type": "echo", "received": event}
                ws.send(json.dumps(reply))

        self.server = ws_serve(session, "127.0.0.1", 0, process_request=process_request)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.v1 = f"http://127.0.0.1:{self.server.socket.getsockname()[1]}/v1"


@pytest.fixture
def realtime_mock() -> Iterator[MockRealtime]:
    mock = MockRealtime()
    yield mock
    mock.server.shutdown()


def test_openai_sdk_realtime_session_routed_by_the_registry(realtime_mock, serve):
    base = serve({
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": realtime_mock.v1}},
        "keys": {"team-a": {"hash": key_hash("gw-team-a"), "providers": ["openai-prod"]}},
    })
    client = openai.OpenAI(base_url=base, api_key="gw-team-a")
    with client.realtime.connect(model="@openai-prod/gpt-realtime") as connection:
        created = connection.recv()
        assert created.type == "session.created"
        assert created.session.model == "gpt-realtime", "the registry name is taken off the model"
        connection.send({"type": "response.create"})
        done = connection.recv()
        assert done.type == "response.done"
        assert done.response.usage.total_tokens == 9
        connection.send({"type": "session.update", "session": {"type": "realtime", "instructions": "be brief"}})
        echoed = json.loads(connection.recv_bytes())
        assert echoed["received"]["session"]["instructions"] == "be brief"
    [handshake] = realtime_mock.handshakes
    assert handshake["path"] == "/v1/realtime?model=gpt-realtime"
    assert handshake["headers"]["authorization"] == "Bearer sk-prod", "the entry's key, not the gateway key"
    assert handshake["headers"].get("user-agent"), "the SDK's own headers pass"


def test_a_key_the_registry_does_not_know_is_refused_at_the_handshake(realtime_mock, serve):
    base = serve({
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": realtime_mock.v1}},
        "keys": {"team-a": {"hash": key_hash("gw-team-a"), "providers": ["openai-prod"]}},
    })
    client = openai.OpenAI(base_url=base, api_key="gw-wrong")
    with pytest.raises(Exception) as info:
        with client.realtime.connect(model="@openai-prod/gpt-realtime") as connection:
            connection.recv()
    assert "401" in str(info.value), info.value
    assert realtime_mock.handshakes == []
