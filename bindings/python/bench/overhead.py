"""In-process cost per non-streaming call: gatewise against direct calls to the same
fixed-answer upstream, which runs in a process of its own (so it shares no GIL with the
clients measured). Sequential calls after warm-up, p50 and p99, interleaved in rounds so
drift on a busy machine hits every client alike.

Baselines: the plainest direct call Python has (the standard library's http.client on a
kept-alive connection, parsing the JSON answer), and httpx.

    python bindings/python/bench/overhead.py [calls]      (default 4000 per client)
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import time

import httpx

import gatewise

REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France? Answer in one word."},
    ],
    "temperature": 0.2,
}

# The upstream: a keep-alive HTTP/1.1 server with a fixed answer, in its own process.
UPSTREAM = r'''
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
ANSWER = json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}}).encode()
class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *args): pass
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)
server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
print(server.server_address[1], flush=True)
server.serve_forever()
'''


def measure(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1e6)
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM], stdout=subprocess.PIPE, text=True)
    try:
        port = int(upstream.stdout.readline())  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}/v1"
        body = json.dumps(REQUEST).encode()

        conn = http.client.HTTPConnection("127.0.0.1", port)

        def stdlib() -> object:
            conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
            return json.loads(conn.getresponse().read())

        client = httpx.Client()
        gw = gatewise.Gateway({"provider": "openai", "api_key": "sk-bench", "custom_host": base})
        clients = {
            "http.client (stdlib, keep-alive)": stdlib,
            "httpx": lambda: json.loads(client.post(base + "/chat/completions", content=body).content),
            "gatewise": lambda: gw.chat.completions.create(**REQUEST),
        }
        for call in clients.values():  # warm connections and caches
            measure(call, 300)
        samples: dict[str, list[float]] = {name: [] for name in clients}
        rounds = 8
        for _ in range(rounds):
            for name, call in clients.items():
                samples[name] += measure(call, n // rounds)

        def pct(xs: list[float], q: float) -> float:
            return sorted(xs)[int(q * (len(xs) - 1))]

        print(f"{n} sequential non-streaming chat calls per client, µs per call (upstream in its own process)")
        print(f"{'client':34} {'mean':>7} {'p50':>7} {'p99':>7}")
        for name, xs in samples.items():
            print(f"{name:34} {statistics.mean(xs):7.0f} {pct(xs, 0.5):7.0f} {pct(xs, 0.99):7.0f}")
        g, s = samples["gatewise"], samples["http.client (stdlib, keep-alive)"]
        print(
            f"gatewise vs http.client: p50 {pct(g, 0.5) - pct(s, 0.5):+.0f} µs, "
            f"p99 {pct(g, 0.99) - pct(s, 0.99):+.0f} µs (negative: gatewise is faster)"
        )
    finally:
        upstream.kill()


if __name__ == "__main__":
    main()
