"""What one hostile request costs a running `gatewise serve` (issue 11's figures).

Starts the given gatewise binary on loopback next to an upstream that misbehaves on
purpose, and reports:

- RSS of the gateway before and after one request whose upstream answers 1 GiB
  (current and peak), and what the caller got;
- upstream attempts and wall time for the worst-case nested config: a fallback tree
  5 x 5 x 5 deep whose every leaf fails (without retries, and with 5 retries each under
  a 10 s deadline, when the binary knows --deadline-s).

    python3 benches/hostile/figures.py target/release/gatewise
    python3 benches/hostile/figures.py /tmp/gatewise-before   # an older build, to compare

Only loopback is used. Standard library only.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GIB = 1 << 30
PIECE = b" " * (1 << 20)


class Upstream:
    """`/big/...` answers 1 GiB of JSON-typed bytes (`/big-undeclared/...` the same with no
    content-length, the end marked by closing); `/fail/...` answers 500."""

    def __init__(self) -> None:
        self.failures = 0
        self.big_bytes_sent = 0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path.startswith("/big"):
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    if self.path.startswith("/big/"):
                        self.send_header("content-length", str(GIB))
                    else:
                        self.send_header("connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    try:
                        for _ in range(GIB // len(PIECE)):
                            self.wfile.write(PIECE)
                            upstream.big_bytes_sent += len(PIECE)
                    except OSError:
                        pass
                    return
                upstream.failures += 1
                body = b'{"error":{"message":"boom","type":"server_error"}}'
                self.send_response(500)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    kib = lambda k: int(fields[k].split()[0]) / 1024  # noqa: E731
    return kib("VmRSS"), kib("VmHWM")


def post(port: int, config: dict, timeout: float) -> tuple[int, str, float]:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json", "x-portkey-config": json.dumps(config)})
        r = conn.getresponse()
        data = r.read(4096)
        code = ""
        try:
            code = json.loads(data)["error"]["code"] or ""
        except (ValueError, KeyError, TypeError):
            pass
        return r.status, code, time.monotonic() - started
    except (TimeoutError, OSError) as e:
        return 0, f"no answer within {timeout:.0f} s ({type(e).__name__})", time.monotonic() - started
    finally:
        conn.close()


def fan_out(depth: int, width: int, leaf: dict) -> dict:
    if depth == 0:
        return leaf
    return {"strategy": {"mode": "fallback"}, "targets": [fan_out(depth - 1, width, leaf) for _ in range(width)]}


def main() -> None:
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/gatewise"
    upstream = Upstream()
    port = free_port()
    flags = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
    knows_deadline = "--deadline-s" in flags
    args = [binary, "serve", "--port", str(port), "--log-level", "error"]
    if knows_deadline:
        args += ["--deadline-s", "10"]
    gw = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        host = f"http://127.0.0.1:{upstream.port}"
        print(f"binary: {binary}")

        for path in ["big", "big-undeclared"]:
            idle, _ = rss_mib(gw.pid)
            upstream.big_bytes_sent = 0
            big = {"provider": "openai", "api_key": "k", "custom_host": f"{host}/{path}/v1"}
            status, code, took = post(port, big, timeout=120)
            time.sleep(0.5)
            after, peak = rss_mib(gw.pid)
            time.sleep(5)
            later, _ = rss_mib(gw.pid)
            print(f"1 GiB answer ({path}): status {status} {code}, {took:.2f} s, upstream sent {upstream.big_bytes_sent >> 20} MiB")
            print(f"  RSS before {idle:.0f} MiB, after {after:.0f} MiB (5 s later {later:.0f} MiB), peak so far {peak:.0f} MiB")

        leaf = {"provider": "openai", "api_key": "k", "custom_host": f"{host}/fail/v1"}
        upstream.failures = 0
        status, code, took = post(port, fan_out(3, 5, leaf), timeout=120)
        print(f"5x5x5 fallback tree, no retries: {upstream.failures} upstream attempts, {took * 1000:.0f} ms, status {status} {code}")

        retried = dict(leaf, retry={"attempts": 5, "on_status_codes": [500]})
        upstream.failures = 0
        budget = 30 if knows_deadline else 60
        status, code, took = post(port, fan_out(3, 5, retried), timeout=budget)
        print(
            f"5x5x5 fallback tree, 5 retries a leaf: {upstream.failures} upstream attempts, {took:.1f} s, "
            f"status {status} {code}" + (" (deadline 10 s)" if knows_deadline else f" (given up after {budget} s)")
        )
    finally:
        gw.terminate()
        gw.wait(timeout=10)


if __name__ == "__main__":
    main()
