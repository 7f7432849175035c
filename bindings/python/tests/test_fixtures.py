"""The shared JSON fixtures give the same results through the binding as in the Rust tests."""

from __future__ import annotations

import json

import pytest

import gatewise
from conftest import FIXTURES


ENDPOINTS = {"/v1/chat/completions": "chat.completions", "/v1/completions": "completions", "/v1/embeddings": "embeddings"}


def _cases(folder: str) -> list:
    return [(p.stem, json.loads(p.read_text())) for p in sorted((FIXTURES / folder).glob("*.json"))]


@pytest.mark.parametrize("name,case", _cases("config"), ids=lambda v: v if isinstance(v, str) else "")
def test_config_fixture(name, case):
    if case["valid"]:
        gatewise.Gateway(case["config"])
        return
    with pytest.raises(gatewise.GatewayError) as info:
        gatewise.Gateway(case["config"])
    got = sorted(e["path"] for e in info.value.errors) or [info.value.param]
    assert got == sorted(case["errors"])


@pytest.mark.parametrize("name,case", _cases("router"), ids=lambda v: v if isinstance(v, str) else "")
def test_router_fixture(name, case):
    gw = gatewise.Gateway(case["config"])
    request = case["request"]
    endpoint = ENDPOINTS[request["path"]]
    if "error" in case:
        with pytest.raises(gatewise.GatewayError) as info:
            gw.route(request["params"], metadata=request["metadata"], seed=case.get("seed", 7), endpoint=endpoint)
        assert info.value.code == case["error"]
        return
    plan = gw.route(request["params"], metadata=request["metadata"], seed=case.get("seed", 7), endpoint=endpoint)
    assert [t["option_index"] for t in plan["targets"]] == case["plan"]


def _transform_cases() -> list:
    out = []
    for path in sorted((FIXTURES / "transforms" / "openai").glob("*/case.json")):
        case = json.loads(path.read_text())
        if case.get("upstream_response", {}).get("status") == 200:
            out.append((path.parent.name, case))
    return out


@pytest.mark.parametrize("name,case", _transform_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_openai_transform_fixture_end_to_end(name, case, mock):
    m = mock({"body": case["upstream_response"]["body"]})
    target = dict(case["target"], custom_host=m.v1)
    gw = gatewise.Gateway(target)
    # The resource of the case's endpoint: a Messages case is answered in Anthropic's shape.
    resource = {"chat_completions": gw.chat.completions, "messages": gw.messages, "responses": gw.responses}[case.get("endpoint", "chat_completions")]
    r = resource.create(**case["request"])
    assert r.to_dict() == case["response"]["body"]
    assert json.loads(m.received[0]["body"]) == case["upstream_request"]["body"]
