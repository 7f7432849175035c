"""Run inside a network namespace the test made (only `lo`, with 10.9.9.9 added to it)
and a mount namespace whose /etc/hosts maps upstream.example.test to 127.0.0.1: nothing
here can reach, or resolve through, anything outside this machine.

A fixed-answer upstream listens on 127.0.0.1. `gatewise serve` binds the non-loopback
10.9.9.9 twice: once with the default rules, once with --allow-host for the upstream's
name. A request naming the upstream by its name must be refused by the first (the name
only turns out private after resolution) and served by the second. Prints one JSON line.
"""

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GATEWISE = sys.argv[1]
received = []


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        received.append(self.path)
        body = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "reached"},
                                        "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def wait_for(host, port):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {host}:{port}")


def post(port, config):
    conn = http.client.HTTPConnection("10.9.9.9", port, timeout=20)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json", "x-portkey-config": json.dumps(config)})
    r = conn.getresponse()
    return r.status, json.loads(r.read())


upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
threading.Thread(target=upstream.serve_forever, daemon=True).start()
name = f"http://upstream.example.test:{upstream.server_address[1]}/v1"
config = {"provider": "openai", "api_key": "k", "custom_host": name}

servers = []
try:
    servers.append(subprocess.Popen([GATEWISE, "serve", "--host", "10.9.9.9", "--port", "8787", "--log-level", "warn"], stdout=subprocess.DEVNULL))
    servers.append(subprocess.Popen([GATEWISE, "serve", "--host", "10.9.9.9", "--port", "8788", "--log-level", "warn",
                                     "--allow-host", "upstream.example.test"], stdout=subprocess.DEVNULL))
    wait_for("10.9.9.9", 8787)
    wait_for("10.9.9.9", 8788)
    refused_status, refused = post(8787, config)
    reached_before_allow = list(received)
    allowed_status, allowed = post(8788, config)
    print(json.dumps({"refused_status": refused_status, "refused": refused, "reached_before_allow": reached_before_allow,
                      "allowed_status": allowed_status, "allowed": allowed}))
finally:
    for s in servers:
        s.kill()
