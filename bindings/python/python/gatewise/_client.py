"""``Gateway`` and ``AsyncGateway``: clients shaped like ``openai.OpenAI``.

Everything here converts arguments and results; routing, retries, fallbacks, provider
translation and the option and resource vocabulary all live in the native engine. The
resources (``chat.completions.create``, ``audio.transcriptions.create``, ...) are built
from the engine's resource list, the keyword options from its option list.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _native
from ._objects import BinaryResponse, GatewayObject
from ._streams import AsyncStream, Stream

#: Option names, as the engine declares them (``gatewise._native.OPTIONS``).
OPTION_NAMES: Tuple[str, ...] = tuple(spec[0] for spec in _native.OPTIONS)


def _options_json(options: Dict[str, Any]) -> str:
    out = {}
    for name, value in options.items():
        if value is None:
            continue
        if name in ("config", "registry") and isinstance(value, os.PathLike):
            value = os.fspath(value)
        out[name] = value
    return json.dumps(out)


def _is_file(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview, os.PathLike)) or hasattr(value, "read")


def _file_part(field: str, value: Any) -> Tuple[str, str, Optional[str], bytes]:
    """A file argument as the OpenAI SDK takes it: bytes, a path, a file object, or a
    ``(filename, content[, content_type])`` tuple."""
    content_type = None
    if isinstance(value, tuple):
        filename, value, *rest = value
        content_type = rest[0] if rest else None
    elif isinstance(value, os.PathLike):
        filename = os.path.basename(os.fspath(value))
    else:
        filename = os.path.basename(str(getattr(value, "name", "") or field))
    if isinstance(value, os.PathLike):
        with open(value, "rb") as f:
            data = f.read()
    elif hasattr(value, "read"):
        data = value.read()
    else:
        data = bytes(value)
    if isinstance(data, str):
        data = data.encode()
    return field, str(filename), content_type, data


def _split_files(params: Dict[str, Any]) -> List[Tuple[str, str, Optional[str], bytes]]:
    files = []
    for name in [k for k, v in params.items() if _is_file(v) or isinstance(v, tuple)]:
        files.append(_file_part(name, params.pop(name)))
    for name in [k for k, v in params.items() if isinstance(v, list) and v and all(_is_file(x) for x in v)]:
        files.extend(_file_part(f"{name}[]", item) for item in params.pop(name))
    return files


def _call(params: Dict[str, Any], multipart: bool) -> Tuple[Dict[str, Any], list, str]:
    """Split OpenAI-SDK call options from the request: ``extra_body`` is merged into the
    body, ``extra_headers`` become this call's headers (``x-portkey-*`` ones override
    every option), ``timeout`` (seconds) bounds each attempt of this call."""
    if params.pop("extra_query", None) is not None:
        raise TypeError("extra_query has no meaning in-process")
    params.update(params.pop("extra_body", None) or {})
    call: Dict[str, Any] = {}
    headers = params.pop("extra_headers", None)
    if headers:
        call["headers"] = {str(k): str(v) for k, v in dict(headers).items()}
    timeout = params.pop("timeout", None)
    if timeout is not None:
        call["request_timeout"] = int(float(timeout) * 1000)
    files = _split_files(params) if multipart else []
    # The params cross as they are: the native half writes them as the compact JSON body
    # (cheaper than json.dumps, which falls back there for what it alone knows). Most calls
    # bring no call options: "{}" without a trip through json.dumps.
    return params, files, json.dumps(call) if call else "{}"


def _log_callback(on_log: Optional[Callable[[dict], Any]]) -> Optional[Callable[[str], None]]:
    """The native half hands over each record as JSON text."""
    if on_log is None:
        return None
    if not callable(on_log):
        raise TypeError("on_log must be callable")
    return lambda line: on_log(json.loads(line))


def _result(created: tuple, stream_cls: type) -> Any:
    if created[0] == "stream":
        return stream_cls(created[1])
    _, _status, content_type, body, route = created
    if content_type is None or "json" in content_type:
        return GatewayObject(_native.loads(body), route)
    return BinaryResponse(body, content_type, json.loads(route.json()))


class _Resource:
    """One resource method (``client.chat.completions.create``)."""

    def __init__(self, client: "_Base", method: str, kind: str) -> None:
        self._client = client
        self._method = method
        self._multipart = kind == "multipart"


class _SyncMethod(_Resource):
    def __call__(self, **params: Any) -> Any:
        body, files, call = _call(params, self._multipart)
        return _result(self._client._native.create(self._method, body, files, call), Stream)


class _AsyncMethod(_Resource):
    async def __call__(self, **params: Any) -> Any:
        body, files, call = _call(params, self._multipart)
        return _result(await self._client._native.acreate(self._method, body, files, call), AsyncStream)


class _Namespace:
    """``client.chat``, ``client.audio.transcriptions``, ..."""

    def __repr__(self) -> str:
        return f"<gatewise {', '.join(sorted(vars(self)))}>"


class _Base:
    _native: Any
    _method_cls: type = _SyncMethod

    def __init__(
        self,
        config: Any = None,
        *,
        registry: Any = None,
        on_log: Optional[Callable[[dict], Any]] = None,
        redis: Optional[str] = None,
        redis_down: Optional[str] = None,
        **options: Any,
    ) -> None:
        """Create a client.

        Args:
            config: a gateway config as a dict, a JSON string, a registry config id, or a
                path to a JSON file.
            registry: the registry: a path to its file (JSON or YAML, re-read when it
                changes) or the registry as a dict; configs and options may then name its
                providers (``"@slug"``, ``virtual_key``, ``model="@slug/name"``) and configs.
            on_log: called with each request's record (a dict: ``trace_id``, ``provider``,
                ``model``, ``status``, ``usage``, ``cost_usd``, ``attempts``, ... — the
                fields of the server's request log) when the request is finished; for a
                stream, when it ends. Exceptions it raises are reported, never raised.
            redis: a Redis or Valkey URL (``redis://host:6379/0``, ``rediss://`` for TLS):
                rate limits, budgets, the response cache and circuit state are then
                shared with every gateway (server or client) using it.
            redis_down: ``"allow"`` (the default: requests pass uncounted while Redis is
                unreachable) or ``"refuse"`` (they fail with ``limits_unavailable``).
            **options: ``provider``, ``virtual_key``, ``api_key``, ``provider_options``, ``custom_host``,
                ``metadata``, ``trace_id``, ``request_timeout`` (ms), ``forward_headers``,
                ``cache_force_refresh``, ``cache_namespace`` — see ``gatewise._native.OPTIONS``.

        Raises:
            ConfigError: the config is invalid; ``param`` names the field.
            TypeError: an unknown option.
        """
        self._check(options)
        self._native = _native.NativeGateway(
            _options_json({"config": config, "registry": registry, "redis": redis, "redis_down": redis_down, **options}),
            _log_callback(on_log),
        )
        self._init_resources()

    @staticmethod
    def _check(options: Dict[str, Any]) -> None:
        unknown = set(options) - set(OPTION_NAMES)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))} (known: {', '.join(OPTION_NAMES)})")

    @classmethod
    def _from_native(cls, native: Any) -> Any:
        client = cls.__new__(cls)
        client._native = native
        client._init_resources()
        return client

    def _init_resources(self) -> None:
        for method, kind in _native.RESOURCES:
            *path, leaf = method.split(".")
            owner: Any = self
            for part in path:
                if not isinstance(getattr(owner, part, None), _Namespace):
                    setattr(owner, part, _Namespace())
                owner = getattr(owner, part)
            setattr(owner, leaf, self._method_cls(self, method, kind))

    def with_options(self, **options: Any) -> Any:
        """A client with these options laid over this one's (``config``, ``metadata``,
        ``trace_id``, ``cache_force_refresh``, ``request_timeout``, ...)."""
        self._check(options)
        return self._from_native(self._native.with_options(_options_json(options)))

    def route(
        self,
        params: Dict[str, Any],
        metadata: Optional[Dict[str, Any]] = None,
        seed: Optional[int] = None,
        endpoint: str = "chat.completions.create",
    ) -> Dict[str, Any]:
        """The dry-run plan: ``{"targets": [...]}`` in the order they would be tried, with
        the upstream URL and translated body each would receive. Nothing is sent."""
        meta = None if metadata is None else json.dumps(metadata)
        return json.loads(self._native.route(endpoint, json.dumps(params), meta, seed))


class Gateway(_Base):
    """A synchronous client. Calls block with the GIL released, so threads run in parallel."""

    def httpx_transport(self, package: str = "httpx") -> Any:
        """A transport that routes through this client in-process:
        ``openai.OpenAI(base_url="http://gatewise.local/v1", api_key="unused",
        http_client=httpx.Client(transport=gw.httpx_transport()))``. The ``anthropic`` SDK
        uses ``httpx2``: ``anthropic.Anthropic(base_url="http://gatewise.local",
        api_key="unused", http_client=anthropic.DefaultHttpxClient(transport=gw.httpx_transport("httpx2")))``."""
        from ._httpx import transport

        return transport(self._native, package, is_async=False)

    def async_httpx_transport(self, package: str = "httpx") -> Any:
        """The async counterpart, for ``openai.AsyncOpenAI`` and ``anthropic.AsyncAnthropic``."""
        from ._httpx import transport

        return transport(self._native, package, is_async=True)


class AsyncGateway(_Base):
    """An asyncio client: ``await``, ``async for``; cancelling a task cancels the call."""

    _method_cls = _AsyncMethod

    def httpx_transport(self, package: str = "httpx") -> Any:
        """An async transport (``httpx`` or ``httpx2``) for ``openai.AsyncOpenAI`` and ``anthropic.AsyncAnthropic``."""
        from ._httpx import transport

        return transport(self._native, package, is_async=True)

    async_httpx_transport = httpx_transport
