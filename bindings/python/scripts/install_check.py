"""What a user of the wheel gets, without Rust: run by an interpreter whose venv has only
the wheel installed and whose PATH has no cargo or rustc. Imports gatewise and routes a
call to a mock upstream on loopback, sync and async."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

for tool in ("cargo", "rustc"):
    assert shutil.which(tool) is None, f"{tool} is on the PATH of the install check"

import gatewise  # noqa: E402


class Upstream(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        ask = json.loads(self.rfile.read(int(self.headers["content-length"])))["messages"][0]["content"]
        body = json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo:{ask}"},
                                        "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
threading.Thread(target=server.serve_forever, daemon=True).start()
config = {"provider": "openai", "api_key": "sk-x", "custom_host": f"http://127.0.0.1:{server.server_port}/v1"}
ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

r = gatewise.Gateway(config).chat.completions.create(**ask)
assert r.choices[0].message.content == "echo:hi", r
assert r.route.provider == "openai"


async def main() -> str:
    r = await gatewise.AsyncGateway(config).chat.completions.create(**ask)
    return r.choices[0].message.content


assert asyncio.run(main()) == "echo:hi"
server.shutdown()
print(f"installed from the wheel without Rust: routed a call with gatewise {gatewise.__version__} from {gatewise.__file__}")
