"""httpx transports: the official SDKs route through the engine in-process.

The ``openai`` SDK uses ``httpx``; newer ``anthropic`` SDKs use ``httpx2``, its fork with the
same transport interface, and refuse a transport of the other package. So the transport
classes are made for the package asked for, once each.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, AsyncIterator, Iterator, Tuple


def _headers(request: Any) -> list:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]


@functools.lru_cache(maxsize=None)
def _classes(package: str) -> Tuple[type, type]:
    """The sync and async transport classes for ``package`` (``httpx`` or ``httpx2``)."""
    http = importlib.import_module(package)

    class SyncBody(http.SyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, native: Any) -> None:
            self._native = native

        def __iter__(self) -> Iterator[bytes]:
            while (item := self._native.next()) is not None:
                yield item

        def close(self) -> None:
            self._native.close()

    class AsyncBody(http.AsyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, native: Any) -> None:
            self._native = native

        async def __aiter__(self) -> AsyncIterator[bytes]:
            while (item := await self._native.anext()) is not None:
                yield item

        async def aclose(self) -> None:
            self._native.close()

    def response(request: Any, status: int, headers: list, body: Any, stream_cls: type) -> Any:
        if isinstance(body, bytes):
            return http.Response(status, headers=headers, content=body, request=request)
        return http.Response(status, headers=headers, stream=stream_cls(body), request=request)

    class GatewiseTransport(http.BaseTransport):  # type: ignore[name-defined,misc]
        """Sync transport. ``x-portkey-*`` request headers override the client's options."""

        def __init__(self, native: Any) -> None:
            self._native = native

        def handle_request(self, request: Any) -> Any:
            status, headers, body = self._native.http(request.method, str(request.url), _headers(request), request.read())
            return response(request, status, headers, body, SyncBody)

    class AsyncGatewiseTransport(http.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        """Async transport."""

        def __init__(self, native: Any) -> None:
            self._native = native

        async def handle_async_request(self, request: Any) -> Any:
            content = await request.aread()
            status, headers, body = await self._native.ahttp(request.method, str(request.url), _headers(request), content)
            return response(request, status, headers, body, AsyncBody)

    return GatewiseTransport, AsyncGatewiseTransport


def transport(native: Any, package: str, is_async: bool) -> Any:
    """A transport of ``package`` over ``native``; a clear error for any other package."""
    if package not in ("httpx", "httpx2"):
        raise ValueError(f"package must be 'httpx' or 'httpx2', not {package!r}")
    sync_cls, async_cls = _classes(package)
    return (async_cls if is_async else sync_cls)(native)
