"""Gatewise: Portkey-style AI gateway routing, in-process.

    >>> gw = gatewise.Gateway({"provider": "openai", "api_key": "sk-..."})
    >>> gw.chat.completions.create(model="gpt-4o-mini", messages=[...]).choices[0].message.content
"""

from ._client import AsyncGateway, Gateway
from ._errors import (
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
    TimeoutError,
    UnprocessableEntityError,
)
from ._native import __version__
from ._objects import BinaryResponse, GatewayObject
from ._streams import AsyncStream, Stream

__all__ = [
    "Gateway",
    "AsyncGateway",
    "GatewayObject",
    "BinaryResponse",
    "Stream",
    "AsyncStream",
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
    "__version__",
]
