"""Results with attribute access, like the OpenAI SDK's models, over plain JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

if TYPE_CHECKING:
    from . import _native


#: Fields the OpenAI SDK's models declare as optional: absent, they read as ``None`` (as on
#: those models); any other absent name is a typo and raises ``AttributeError``.
OPTIONAL_FIELDS = frozenset(
    {
        "audio", "b64_json", "cached_tokens", "choices", "completion_tokens_details", "content", "created",
        "data", "delta", "embedding", "error", "finish_reason", "function", "function_call", "id", "index",
        "logprobs", "message", "model", "name", "object", "prompt_tokens_details", "reasoning_content",
        "reasoning_tokens", "refusal", "revised_prompt", "role", "service_tier", "system_fingerprint", "text",
        "tool_call_id", "tool_calls", "type", "url", "usage", "annotations", "results", "flagged",
        "categories", "category_scores", "arguments", "prompt_tokens", "completion_tokens", "total_tokens",
    }
)


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return GatewayObject(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class GatewayObject:
    """A JSON object with attribute access: ``r.choices[0].message.content``.

    Absent fields the OpenAI SDK's models declare as optional read as ``None``, as they do
    there; any other absent name raises ``AttributeError`` (a typo must not read as
    ``None``). ``to_dict()`` / ``model_dump()`` and ``to_json()`` / ``model_dump_json()``
    give the data back exactly as received. Results of
    ``create`` also carry ``route``: provider, option_index, retry_count, cache_status,
    trace_id, attempts, dropped_params.
    """

    __slots__ = ("_data", "_route")

    def __init__(self, data: dict, route: Optional[Union[dict, _native.NativeRoute]] = None) -> None:
        # ``route`` may come as the native route, rendered and parsed on first read: most
        # callers never look at it, and doing both on every call was a fifth of a call.
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_route", route)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "route" and self._route is not None:
            if not isinstance(self._route, dict):
                object.__setattr__(self, "_route", json.loads(self._route.json()))
            return GatewayObject(self._route)
        if name in self._data:
            return _wrap(self._data[name])
        if name in OPTIONAL_FIELDS:
            return None
        raise AttributeError(f"{type(self).__name__} has no field {name!r} (fields: {', '.join(self._data)})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("GatewayObject is read-only; use to_dict() for a mutable copy")

    def __getitem__(self, key: str) -> Any:
        return _wrap(self._data[key])

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GatewayObject):
            return self._data == other._data
        return self._data == other

    def __hash__(self) -> int:  # read-only, but holds dicts: not hashable
        raise TypeError("GatewayObject is not hashable")

    def __repr__(self) -> str:
        return f"GatewayObject({json.dumps(self._data, ensure_ascii=False)[:500]})"

    def __dir__(self) -> list:
        return sorted(set(self._data) | {"to_dict", "to_json", "model_dump", "model_dump_json", "route"})

    def get(self, key: str, default: Any = None) -> Any:
        return _wrap(self._data.get(key, default))

    def to_dict(self) -> dict:
        """A deep copy of the data."""
        return json.loads(json.dumps(self._data))

    def to_json(self, indent: Optional[int] = None) -> str:
        return json.dumps(self._data, indent=indent, ensure_ascii=False)

    def model_dump(self) -> dict:
        """The data as a dict (pydantic's name, as on the OpenAI SDK's models)."""
        return self.to_dict()

    def model_dump_json(self, indent: Optional[int] = None) -> str:
        """The data as JSON text (pydantic's name)."""
        return self.to_json(indent)


class BinaryResponse:
    """A binary answer (``audio.speech``)."""

    def __init__(self, content: bytes, content_type: Optional[str], route: dict) -> None:
        self.content = content
        self.content_type = content_type
        self.route = GatewayObject(route)

    def read(self) -> bytes:
        return self.content

    def write_to_file(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(self.content)
