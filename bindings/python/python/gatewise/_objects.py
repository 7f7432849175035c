"""Results with attribute access, like the OpenAI SDK's models, over plain JSON."""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return GatewayObject(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class GatewayObject:
    """A JSON object with attribute access: ``r.choices[0].message.content``.

    Absent fields read as ``None`` (as optional fields do on the OpenAI SDK's models);
    ``to_dict()`` / ``to_json()`` give the data back exactly as received. Results of
    ``create`` also carry ``route``: provider, option_index, retry_count, cache_status,
    trace_id, attempts, dropped_params.
    """

    __slots__ = ("_data", "_route")

    def __init__(self, data: dict, route: Optional[dict] = None) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_route", route)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "route" and self._route is not None:
            return GatewayObject(self._route)
        return _wrap(self._data.get(name))

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
        return sorted(set(self._data) | {"to_dict", "to_json", "route"})

    def get(self, key: str, default: Any = None) -> Any:
        return _wrap(self._data.get(key, default))

    def to_dict(self) -> dict:
        """A deep copy of the data."""
        return json.loads(json.dumps(self._data))

    def to_json(self, indent: Optional[int] = None) -> str:
        return json.dumps(self._data, indent=indent, ensure_ascii=False)


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
