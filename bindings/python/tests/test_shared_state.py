"""Two in-process clients sharing one real redis-server (started here on a free loopback
port) hold one rate limit between them: the `redis` option of the client."""

import shutil
import socket
import subprocess
import time

import pytest

import gatewise

from conftest import HELLO, chat_answer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url():
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed (scripts/redis.sh installs Debian's package)")
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    server.kill()
    server.wait()


def test_two_clients_sharing_redis_hold_one_provider_limit(mock, redis_url):
    upstream = mock(*[{"body": chat_answer()} for _ in range(3)])
    registry = {
        "providers": {
            "capped": {
                "provider": "openai",
                "api_key": "sk-mock",
                "custom_host": upstream.v1,
                "limits": {"requests_per_minute": 2},
            }
        }
    }
    first = gatewise.Gateway(registry=registry, virtual_key="capped", redis=redis_url)
    second = gatewise.Gateway(registry=registry, virtual_key="capped", redis=redis_url)
    first.chat.completions.create(**HELLO)
    second.chat.completions.create(**HELLO)
    with pytest.raises(gatewise.RateLimitError) as info:
        first.chat.completions.create(**HELLO)
    assert info.value.code == "rate_limited"
    assert info.value.route.limit == "provider capped: requests_per_minute"
    assert len(upstream.received) == 2


def test_redis_options_are_checked(redis_url):
    with pytest.raises(gatewise.ConfigError) as info:
        gatewise.Gateway(provider="openai", api_key="k", redis=redis_url, redis_down="sometimes")
    assert info.value.param == "redis_down"
    with pytest.raises(gatewise.ConfigError) as info:
        gatewise.Gateway(provider="openai", api_key="k", redis="not a url")
    assert info.value.param == "redis"
