"""In-process cost per non-streaming call: gatewise against direct calls to the same
fixed-answer upstream, which runs in a process of its own (so it shares no GIL with the
clients measured). Sequential calls after warm-up, p50 and p99, interleaved in rounds so
drift on a busy machine hits every client alike.

Baselines: the plainest direct call Python has (the standard library's http.client on a
kept-alive connection, parsing the JSON answer), and httpx. The floor: the Rust API's
call (`Engine::handle` over the hyper transport, benches/src/bin/inprocess_floor.rs) on
the same upstream, run in rounds beside the others when its binary is built
(`cargo build --release -p gateway-benches --bin inprocess_floor`; GATEWISE_FLOOR names
another path). Goals: gatewise faster than http.client, and within 40 µs of the floor.

Streaming: the upstream streams `max_tokens` chunks, so the cost of one chunk is the
slope between a stream of CHUNKS chunks and one of none, for gatewise and for http.client
reading the SSE lines itself; gatewise's slope minus http.client's is what a chunk adds
(goal <= 3 µs).

    python bindings/python/bench/overhead.py [calls]      (default 4000 per client)
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
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
def chunk(delta, finish=None):
    return b"data: " + json.dumps({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).encode() + b"\n\n"
def stream(n):  # max_tokens chunks of text, then the finish chunk and [DONE]
    return b"".join([chunk({"role": "assistant", "content": ""})] + [chunk({"content": f"tok{i} "}) for i in range(n)]
        + [chunk({}, "stop"), b"data: [DONE]\n\n"])
class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *args): pass
    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        body, kind = (stream(request.get("max_tokens", 0)), "text/event-stream") if request.get("stream") else (ANSWER, "application/json")
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
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


CHUNKS = 40


def floor_binary() -> pathlib.Path | None:
    path = os.environ.get("GATEWISE_FLOOR") or pathlib.Path(__file__).resolve().parents[3] / "target/release/inprocess_floor"
    path = pathlib.Path(path)
    return path if path.exists() else None


def floor_round(binary: pathlib.Path, base: str, calls: int) -> tuple[float, float]:
    """p50 and p99 of `calls` Rust API calls, driven as the sync API drives them (on the
    calling thread)."""
    out = subprocess.run([str(binary), base, str(calls), "caller"], check=True, capture_output=True, text=True).stdout
    figures = json.loads(out)
    return figures["p50_us"], figures["p99_us"]


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
        floor = floor_binary()
        floor_figures: list[tuple[float, float]] = []
        rounds = 8
        for _ in range(rounds):
            for name, call in clients.items():
                samples[name] += measure(call, n // rounds)
            if floor is not None:
                floor_figures.append(floor_round(floor, base, n // rounds))

        def pct(xs: list[float], q: float) -> float:
            return sorted(xs)[int(q * (len(xs) - 1))]

        print(f"{n} sequential non-streaming chat calls per client, µs per call (upstream in its own process)")
        print(f"{'client':34} {'mean':>7} {'p50':>7} {'p99':>7}")
        for name, xs in samples.items():
            print(f"{name:34} {statistics.mean(xs):7.0f} {pct(xs, 0.5):7.0f} {pct(xs, 0.99):7.0f}")
        g, s = samples["gatewise"], samples["http.client (stdlib, keep-alive)"]
        print(
            f"gatewise vs http.client: p50 {pct(g, 0.5) - pct(s, 0.5):+.0f} µs, "
            f"p99 {pct(g, 0.99) - pct(s, 0.99):+.0f} µs (goal: negative, gatewise faster)"
        )
        if floor_figures:
            f50 = statistics.median(f[0] for f in floor_figures)
            f99 = statistics.median(f[1] for f in floor_figures)
            print(f"{'floor: Rust Engine::handle (median of rounds)':34} {'':>7} {f50:7.0f} {f99:7.0f}")
            print(f"gatewise vs the Rust floor: p50 {pct(g, 0.5) - f50:+.0f} µs, p99 {pct(g, 0.99) - f99:+.0f} µs (goal <= +40)")
        else:
            print("(the Rust floor is not built: cargo build --release -p gateway-benches --bin inprocess_floor)")

        # Streaming: the slope per chunk, gatewise against http.client reading SSE itself.
        def stdlib_stream(chunks: int):
            def call() -> None:
                payload = json.dumps({**REQUEST, "stream": True, "max_tokens": chunks}).encode()
                conn.request("POST", "/v1/chat/completions", payload, {"content-type": "application/json"})
                answer = conn.getresponse()
                for line in answer.read().split(b"\n\n"):
                    if line.startswith(b"data: {"):
                        json.loads(line[6:])
            return call

        def gatewise_stream(chunks: int):
            def call() -> None:
                for _ in gw.chat.completions.create(**REQUEST, stream=True, max_tokens=chunks):
                    pass
            return call

        streams = {
            ("http.client", 0): stdlib_stream(0), ("http.client", CHUNKS): stdlib_stream(CHUNKS),
            ("gatewise", 0): gatewise_stream(0), ("gatewise", CHUNKS): gatewise_stream(CHUNKS),
        }
        for call in streams.values():
            measure(call, 100)
        stream_samples: dict = {key: [] for key in streams}
        for _ in range(rounds):
            for key, call in streams.items():
                stream_samples[key] += measure(call, n // rounds // 4)
        slope = {
            who: (pct(stream_samples[(who, CHUNKS)], 0.5) - pct(stream_samples[(who, 0)], 0.5)) / CHUNKS
            for who in ("http.client", "gatewise")
        }
        print(
            f"streaming, µs per chunk (p50 slope over {CHUNKS} chunks): gatewise {slope['gatewise']:.1f}, "
            f"http.client + json.loads {slope['http.client']:.1f}; "
            f"added by gatewise {slope['gatewise'] - slope['http.client']:+.1f} (goal <= 3)"
        )
    finally:
        upstream.kill()


if __name__ == "__main__":
    main()
