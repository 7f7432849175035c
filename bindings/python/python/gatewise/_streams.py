"""Streamed answers. Pull-based: each item is read from the upstream when asked for, and
closing (or dropping) the stream cancels the upstream request."""

from __future__ import annotations

import json
from typing import Any

from ._objects import GatewayObject


class _Routed:
    """What both streams share: the native stream, which knows its route."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def route(self) -> GatewayObject:
        """How the stream was routed; ``usage`` and ``cost`` are filled in once it has ended."""
        return GatewayObject(json.loads(self._native.route_json()))


class Stream(_Routed):
    """Iterator of chat.completion.chunk objects (``for chunk in stream``)."""

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> GatewayObject:
        item = self._native.next_value()
        if item is None:
            raise StopIteration
        return GatewayObject(item)

    def close(self) -> None:
        """Stop reading and cancel the upstream request."""
        self._native.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream(_Routed):
    """Async iterator of chunk objects (``async for chunk in stream``)."""

    def __aiter__(self) -> "AsyncStream":
        return self

    async def __anext__(self) -> GatewayObject:
        item = await self._native.anext_value()
        if item is None:
            raise StopAsyncIteration
        return GatewayObject(item)

    async def aclose(self) -> None:
        """Stop reading and cancel the upstream request."""
        self._native.close()

    async def __aenter__(self) -> "AsyncStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
