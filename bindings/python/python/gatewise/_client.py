"""``Gateway`` and ``AsyncGateway``: clients shaped like ``openai.OpenAI``.

Everything here converts arguments and results; routing, retries, fallbacks and
provider translation all happen in the native engine.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Union

from . import _native
from ._objects import BinaryResponse, GatewayObject
from ._streams import AsyncStream, Stream

ConfigArg = Union[Dict[str, Any], str, "os.PathLike[str]", None]

_OPTION_NAMES = (
    "config",
    "provider",
    "api_key",
    "provider_options",
    "custom_host",
    "metadata",
    "trace_id",
    "request_timeout",
    "cache_force_refresh",
    "cache_namespace",
)


def _options_json(options: Dict[str, Any]) -> str:
    out = {}
    for name, value in options.items():
        if value is None:
            continue
        if name == "config" and isinstance(value, os.PathLike):
            value = os.fspath(value)
        out[name] = value
    return json.dumps(out)


def _call(client: Any, params: Dict[str, Any]) -> tuple:
    """Split OpenAI-SDK call options from the request body: ``extra_body`` is merged into
    the body, ``timeout`` (seconds) becomes this call's ``request_timeout``; SDK options
    with no in-process meaning are refused rather than sent to the provider."""
    for name in ("extra_headers", "extra_query"):
        if params.pop(name, None) is not None:
            raise TypeError(f"{name} has no meaning in-process; use with_options(...) for per-request options")
    params.update(params.pop("extra_body", None) or {})
    timeout = params.pop("timeout", None)
    if timeout is not None:
        client = client.with_options(request_timeout=int(float(timeout) * 1000))
    return client._native, json.dumps(params)


def _result(created: tuple, stream_cls: type) -> Any:
    if created[0] == "stream":
        _, native, route = created
        return stream_cls(native, json.loads(route))
    _, _status, content_type, body, route = created
    route = json.loads(route)
    if content_type is None or "json" in content_type:
        return GatewayObject(json.loads(body), route)
    return BinaryResponse(body, content_type, route)


class _Base:
    _native: Any

    def __init__(
        self,
        config: ConfigArg = None,
        *,
        provider: Optional[str] = None,
        api_key: Optional[str] = None,
        provider_options: Optional[Dict[str, Any]] = None,
        custom_host: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        trace_id: Optional[str] = None,
        request_timeout: Optional[int] = None,
        cache_force_refresh: Optional[bool] = None,
        cache_namespace: Optional[str] = None,
    ) -> None:
        """Create a client.

        Args:
            config: a gateway config as a dict, a JSON string, or a path to a JSON file.
            provider / api_key / provider_options: route to one provider without a config
                (with a config: the provider for leaves that have none).
            custom_host: overrides every target's base URL.
            metadata: request metadata for conditional routing.
            trace_id: reported in route info.
            request_timeout: per-attempt timeout in milliseconds.
            cache_force_refresh / cache_namespace: cache controls.

        Raises:
            ConfigError: the config is invalid; ``param`` names the field.
        """
        options = {name: value for name, value in locals().items() if name in _OPTION_NAMES}
        self._native = _native.NativeGateway(_options_json(options))
        self._init_resources()

    @classmethod
    def _from_native(cls, native: Any) -> Any:
        client = cls.__new__(cls)
        client._native = native
        client._init_resources()
        return client

    def _init_resources(self) -> None:
        raise NotImplementedError

    def with_options(self, **options: Any) -> Any:
        """A client with these options replacing this one's (``config``, ``metadata``,
        ``trace_id``, ``cache_force_refresh``, ``request_timeout``, ...)."""
        unknown = set(options) - set(_OPTION_NAMES)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return self._from_native(self._native.with_options(_options_json(options)))

    def route(
        self,
        params: Dict[str, Any],
        metadata: Optional[Dict[str, Any]] = None,
        seed: Optional[int] = None,
        endpoint: str = "chat.completions",
    ) -> Dict[str, Any]:
        """The dry-run plan: ``{"targets": [...]}`` in the order they would be tried, with
        the upstream URL and translated body each would receive. Nothing is sent."""
        meta = None if metadata is None else json.dumps(metadata)
        return json.loads(self._native.route(endpoint, json.dumps(params), meta, seed))


class _SyncResource:
    def __init__(self, client: "Gateway", endpoint: str) -> None:
        self._client = client
        self._endpoint = endpoint

    def create(self, **params: Any) -> Any:
        """Call the endpoint. ``stream=True`` returns a ``Stream`` of chunk objects;
        ``timeout=`` (seconds) bounds each attempt of this call."""
        native, body = _call(self._client, params)
        return _result(native.create(self._endpoint, body), Stream)


class _AsyncResource:
    def __init__(self, client: "AsyncGateway", endpoint: str) -> None:
        self._client = client
        self._endpoint = endpoint

    async def create(self, **params: Any) -> Any:
        """Call the endpoint. ``stream=True`` returns an ``AsyncStream`` of chunk objects;
        ``timeout=`` (seconds) bounds each attempt of this call."""
        native, body = _call(self._client, params)
        return _result(await native.acreate(self._endpoint, body), AsyncStream)


class _Namespace:
    def __init__(self, **members: Any) -> None:
        self.__dict__.update(members)


class _ImagesSync(_SyncResource):
    def generate(self, **params: Any) -> Any:
        return self.create(**params)


class _ImagesAsync(_AsyncResource):
    async def generate(self, **params: Any) -> Any:
        return await self.create(**params)


class Gateway(_Base):
    """A synchronous client. Calls block with the GIL released, so threads run in parallel."""

    def _init_resources(self) -> None:
        self.chat = _Namespace(completions=_SyncResource(self, "chat.completions"))
        self.completions = _SyncResource(self, "completions")
        self.embeddings = _SyncResource(self, "embeddings")
        self.moderations = _SyncResource(self, "moderations")
        self.images = _ImagesSync(self, "images.generations")
        self.audio = _Namespace(speech=_SyncResource(self, "audio.speech"))

    def httpx_transport(self) -> Any:
        """An ``httpx.BaseTransport`` that routes through this client in-process:
        ``openai.OpenAI(base_url="http://gatewise.local/v1", api_key="unused",
        http_client=httpx.Client(transport=gw.httpx_transport()))``."""
        from ._httpx import GatewiseTransport

        return GatewiseTransport(self._native)

    def async_httpx_transport(self) -> Any:
        """The ``httpx.AsyncBaseTransport`` counterpart, for ``openai.AsyncOpenAI``."""
        from ._httpx import AsyncGatewiseTransport

        return AsyncGatewiseTransport(self._native)


class AsyncGateway(_Base):
    """An asyncio client: ``await``, ``async for``; cancelling a task cancels the call."""

    def _init_resources(self) -> None:
        self.chat = _Namespace(completions=_AsyncResource(self, "chat.completions"))
        self.completions = _AsyncResource(self, "completions")
        self.embeddings = _AsyncResource(self, "embeddings")
        self.moderations = _AsyncResource(self, "moderations")
        self.images = _ImagesAsync(self, "images.generations")
        self.audio = _Namespace(speech=_AsyncResource(self, "audio.speech"))

    def httpx_transport(self) -> Any:
        """An ``httpx.AsyncBaseTransport`` for ``openai.AsyncOpenAI``."""
        from ._httpx import AsyncGatewiseTransport

        return AsyncGatewiseTransport(self._native)

    async_httpx_transport = httpx_transport
