"""The exception hierarchy. The native module builds these from its error JSON."""

from __future__ import annotations

import builtins
import json
from typing import Any, Optional


class GatewayError(Exception):
    """Base of every Gatewise error.

    Attributes:
        code: stable snake_case code (``invalid_config``, ``rate_limited``, ``timeout``, ...).
        status_code: HTTP status (the upstream's for provider errors).
        provider: provider slug, for errors that came from an upstream.
        param: JSON path of the bad field, when there is one (``targets[1].strategy.mode``).
        errors: every bad field (``[{"path", "message"}]``) when validation found several.
        body: the OpenAI-shaped error body.
        route: how the request was routed before it failed (a ``GatewayObject``).
    """

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status_code: Optional[int] = None,
        provider: Optional[str] = None,
        param: Optional[str] = None,
        errors: Optional[list] = None,
        body: Optional[dict] = None,
        route: Any = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.provider = provider
        self.param = param
        self.errors = errors or []
        self.body = body
        self.route = route
        self.retryable = retryable


class ConfigError(GatewayError):
    """The config (or a client option) is invalid; ``param`` names the field."""


class APIStatusError(GatewayError):
    """The request failed with an HTTP status (upstream or gateway-made)."""


class AuthenticationError(APIStatusError):
    """The upstream rejected the credentials (401/403)."""


class RateLimitError(APIStatusError):
    """The upstream rate-limited the request (429)."""


class TimeoutError(GatewayError, builtins.TimeoutError):  # noqa: A001 - mirrors the OpenAI SDK's name
    """An attempt exceeded ``request_timeout`` (408)."""


class APIConnectionError(GatewayError, ConnectionError):
    """The upstream could not be reached (refused, reset, DNS, TLS)."""


def _class_for(code: str, status: int) -> type:
    if code in ("invalid_config", "unknown_virtual_key"):
        return ConfigError
    if code == "timeout":
        return TimeoutError
    if code == "upstream_connection_error":
        return APIConnectionError
    if code == "rate_limited" or status == 429:
        return RateLimitError
    if status in (401, 403):
        return AuthenticationError
    return APIStatusError


def from_native(payload: str) -> GatewayError:
    """Build the exception for the native module's error JSON."""
    from ._objects import GatewayObject

    data = json.loads(payload)
    cls = _class_for(data["code"], data["status"])
    return cls(
        data["message"],
        code=data["code"],
        status_code=data["status"],
        provider=data.get("provider"),
        param=data.get("param"),
        errors=data.get("errors"),
        body=data.get("body"),
        route=GatewayObject(data.get("route") or {}),
        retryable=bool(data.get("retryable")),
    )
