"""The exception hierarchy, with the OpenAI SDKs' names and statuses.

The classes are created by the native extension, which also picks the class for each
error (an exhaustive match on the error code in Rust); this module only documents them
and fills in their fields.

Every error is a ``GatewayError`` with:
    code: stable snake_case code (``invalid_config``, ``rate_limited``, ``timeout``, ...).
    status_code (and ``status``): HTTP status (the upstream's for provider errors).
    param: JSON path of the bad field, or the header/option that was bad.
    provider: provider slug, for errors that came from an upstream.
    errors: every bad field (``[{"path", "message"}]``) when validation found several.
    retryable: whether trying again may help.
    body: the OpenAI-shaped error body.
    route: how the request was routed before it failed (a ``GatewayObject``).

``GatewayError`` > ``APIStatusError`` > ``BadRequestError`` (> ``ConfigError``),
``AuthenticationError``, ``PermissionDeniedError``, ``NotFoundError``, ``ConflictError``,
``UnprocessableEntityError``, ``RateLimitError``, ``InternalServerError``;
``GatewayError`` > ``APIConnectionError`` > ``APITimeoutError``.
"""

from __future__ import annotations

import json
from typing import Any

from ._native import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    GatewayError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

#: The name earlier releases used for ``APITimeoutError``.
TimeoutError = APITimeoutError  # noqa: A001

__all__ = [
    "GatewayError",
    "APIStatusError",
    "APIConnectionError",
    "APITimeoutError",
    "BadRequestError",
    "ConfigError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "TimeoutError",
]


def _fill(exc: BaseException, fields: str) -> None:
    """Set an error's fields (called by the extension as it raises)."""
    from ._objects import GatewayObject

    data = json.loads(fields)
    attrs: Any = exc
    attrs.message = data["message"]
    attrs.code = data["code"]
    attrs.status_code = data["status"]
    attrs.status = data["status"]
    attrs.param = data.get("param")
    attrs.provider = data.get("provider")
    attrs.errors = data.get("errors") or []
    attrs.retryable = bool(data.get("retryable"))
    attrs.body = data.get("body")
    attrs.route = GatewayObject(data.get("route") or {})
