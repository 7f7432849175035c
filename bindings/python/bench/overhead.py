"""In-process overhead per non-streaming call: gatewise vs httpx straight to the same
mock upstream, in one run. Goal: <= 50 us added per call.

    python bindings/python/bench/overhead.py [calls]
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

import gatewise

ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
    }
).encode()
REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France? Answer in one word."},
    ],
    "temperature": 0.2,
}


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real provider
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


def measure(call, n: int) -> list[float]:
    for _ in range(200):  # warm connections and caches
        call()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1e6)
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"

    client = httpx.Client()
    direct = lambda: json.loads(client.post(base + "/chat/completions", json=REQUEST).content)  # noqa: E731
    gw = gatewise.Gateway({"provider": "openai", "api_key": "sk-bench", "custom_host": base})
    routed = lambda: gw.chat.completions.create(**REQUEST)  # noqa: E731

    # Interleave the two in blocks so drift on a busy machine affects both alike.
    d, g = [], []
    for _ in range(5):
        d += measure(direct, n // 5)
        g += measure(routed, n // 5)
    dm, gm = statistics.mean(d), statistics.mean(g)
    d50, g50 = statistics.median(d), statistics.median(g)
    print(f"calls per path: {len(d)}")
    print(f"httpx direct : mean {dm:8.1f} us   p50 {d50:8.1f} us")
    print(f"gatewise     : mean {gm:8.1f} us   p50 {g50:8.1f} us")
    print(f"added per call: mean {gm - dm:+.1f} us, p50 {g50 - d50:+.1f} us  (goal <= 50 us)")
    server.shutdown()


if __name__ == "__main__":
    main()
