"""httpx transports: the official ``openai`` SDK routes through the engine in-process."""

from __future__ import annotations

from typing import Any, AsyncIterator, Iterator

import httpx


def _headers(request: httpx.Request) -> list:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, native: Any) -> None:
        self._native = native

    def __iter__(self) -> Iterator[bytes]:
        while (item := self._native.next()) is not None:
            yield item

    def close(self) -> None:
        self._native.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, native: Any) -> None:
        self._native = native

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (item := await self._native.anext()) is not None:
            yield item

    async def aclose(self) -> None:
        self._native.close()


def _response(request: httpx.Request, status: int, headers: list, body: Any, stream_cls: type) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(status, headers=headers, content=body, request=request)
    return httpx.Response(status, headers=headers, stream=stream_cls(body), request=request)


class GatewiseTransport(httpx.BaseTransport):
    """Sync transport. ``x-portkey-*`` request headers override the client's options."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, body = self._native.http(request.method, str(request.url), _headers(request), request.read())
        return _response(request, status, headers, body, _SyncBody)


class AsyncGatewiseTransport(httpx.AsyncBaseTransport):
    """Async transport."""

    def __init__(self, native: Any) -> None:
        self._native = native

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        status, headers, body = await self._native.ahttp(request.method, str(request.url), _headers(request), content)
        return _response(request, status, headers, body, _AsyncBody)
