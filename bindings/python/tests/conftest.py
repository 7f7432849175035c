"""A mock provider on 127.0.0.1:0: answers from a script, records requests, and notices
when the client goes away (so cancellation is observable)."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import select
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"


def chat_answer(content: str = "hi", model: str = "gpt-4o-mini") -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def sse_events(parts: list[str]) -> list[str]:
    chunk = lambda delta, finish: {  # noqa: E731
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    events = [json.dumps(chunk({"content": p}, None)) for p in parts]
    events.append(json.dumps(chunk({}, "stop")))
    events.append("[DONE]")
    return events


class Mock:
    def __init__(self, replies: list[dict]) -> None:
        self.replies = collections.deque(replies)
        self.received: list[dict] = []
        self.disconnects = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with mock.lock:
                    mock.received.append(
                        {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                    reply = mock.replies.popleft() if mock.replies else {"status": 500, "body": {"error": {"message": "no reply left"}}}
                    mock.in_flight += 1
                    mock.max_in_flight = max(mock.max_in_flight, mock.in_flight)
                try:
                    mock.serve(self, reply)
                finally:
                    with mock.lock:
                        mock.in_flight -= 1

            do_GET = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.v1 = self.url + "/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def push(self, reply: dict) -> None:
        with self.lock:
            self.replies.append(reply)

    def _gone(self, handler: BaseHTTPRequestHandler) -> bool:
        sock = handler.connection
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _disconnected(self) -> None:
        with self.lock:
            self.disconnects += 1

    def serve(self, handler: BaseHTTPRequestHandler, reply: dict) -> None:
        deadline = time.monotonic() + reply.get("delay", 0)
        while time.monotonic() < deadline:
            if self._gone(handler):
                self._disconnected()
                return
            time.sleep(0.02)
        try:
            if "sse" in reply:
                handler.send_response(200)
                handler.send_header("content-type", "text/event-stream")
                handler.end_headers()
                for event in reply["sse"]:
                    handler.wfile.write(f"data: {event}\n\n".encode())
                    handler.wfile.flush()
                    time.sleep(reply.get("gap", 0))
                while reply.get("forever"):
                    handler.wfile.write(b": still here\n\n")
                    handler.wfile.flush()
                    time.sleep(0.05)
                return
            body = reply.get("raw")
            if body is None:
                body = json.dumps(reply.get("body", {})).encode()
            handler.send_response(reply.get("status", 200))
            handler.send_header("content-type", reply.get("content_type", "application/json"))
            handler.send_header("content-length", str(len(body)))
            for k, v in reply.get("headers", {}).items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self._disconnected()

    def wait_disconnects(self, n: int = 1, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.disconnects >= n:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mock():
    mocks: list[Mock] = []

    def make(*replies: dict) -> Mock:
        m = Mock(list(replies))
        mocks.append(m)
        return m

    yield make
    for m in mocks:
        m.close()


def target(m: Mock, **extra: object) -> dict:
    return {"provider": "openai", "api_key": "sk-mock", "custom_host": m.v1, **extra}


HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def _binary() -> str:
    path = os.environ.get("GATEWISE_BIN") or str(FIXTURES.parents[1] / "target" / "debug" / "gatewise")
    if not os.path.exists(path):
        pytest.skip("no gatewise binary (scripts/test.sh sets GATEWISE_BIN after cargo test builds it)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """Start `gatewise serve` with a registry; answers its `/v1` base URL."""
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


def key_hash(key: str) -> str:
    """A gateway key's `hash` as a registry holds it."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
