# Types for the clients. The runtime builds the resources from the engine's resource list
# and takes the engine's option names; tests/test_surface.py checks this stub against both.

import os
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Tuple, TypeVar, Union, overload

from ._objects import BinaryResponse, GatewayObject
from ._streams import AsyncStream, Stream

OPTION_NAMES: Tuple[str, ...]

FileTypes = Union[bytes, os.PathLike[str], Any, Tuple[str, Any], Tuple[str, Any, str]]
Headers = Mapping[str, str]
_Client = TypeVar("_Client", bound="_Base")

class _ChatCompletions:
    @overload
    def create(
        self,
        *,
        model: str,
        messages: List[Dict[str, Any]],
        stream: Literal[True],
        extra_headers: Optional[Headers] = ...,
        extra_body: Optional[Dict[str, Any]] = ...,
        timeout: Optional[float] = ...,
        **params: Any,
    ) -> Stream: ...
    @overload
    def create(
        self,
        *,
        model: str,
        messages: List[Dict[str, Any]],
        stream: Literal[False] = ...,
        extra_headers: Optional[Headers] = ...,
        extra_body: Optional[Dict[str, Any]] = ...,
        timeout: Optional[float] = ...,
        **params: Any,
    ) -> GatewayObject: ...

class _AsyncChatCompletions:
    @overload
    async def create(
        self,
        *,
        model: str,
        messages: List[Dict[str, Any]],
        stream: Literal[True],
        extra_headers: Optional[Headers] = ...,
        extra_body: Optional[Dict[str, Any]] = ...,
        timeout: Optional[float] = ...,
        **params: Any,
    ) -> AsyncStream: ...
    @overload
    async def create(
        self,
        *,
        model: str,
        messages: List[Dict[str, Any]],
        stream: Literal[False] = ...,
        extra_headers: Optional[Headers] = ...,
        extra_body: Optional[Dict[str, Any]] = ...,
        timeout: Optional[float] = ...,
        **params: Any,
    ) -> GatewayObject: ...

class _Chat:
    completions: _ChatCompletions

class _AsyncChat:
    completions: _AsyncChatCompletions

class _Completions:
    @overload
    def create(self, *, model: str, prompt: Any, stream: Literal[True], **params: Any) -> Stream: ...
    @overload
    def create(self, *, model: str, prompt: Any, stream: Literal[False] = ..., **params: Any) -> GatewayObject: ...

class _AsyncCompletions:
    @overload
    async def create(self, *, model: str, prompt: Any, stream: Literal[True], **params: Any) -> AsyncStream: ...
    @overload
    async def create(self, *, model: str, prompt: Any, stream: Literal[False] = ..., **params: Any) -> GatewayObject: ...

class _Create:
    def create(self, **params: Any) -> GatewayObject: ...

class _AsyncCreate:
    async def create(self, **params: Any) -> GatewayObject: ...

class _Upload:
    def create(self, *, file: FileTypes, model: str, **params: Any) -> GatewayObject: ...

class _AsyncUpload:
    async def create(self, *, file: FileTypes, model: str, **params: Any) -> GatewayObject: ...

class _Speech:
    def create(self, *, model: str, input: str, voice: str, **params: Any) -> BinaryResponse: ...

class _AsyncSpeech:
    async def create(self, *, model: str, input: str, voice: str, **params: Any) -> BinaryResponse: ...

class _Audio:
    speech: _Speech
    transcriptions: _Upload
    translations: _Upload

class _AsyncAudio:
    speech: _AsyncSpeech
    transcriptions: _AsyncUpload
    translations: _AsyncUpload

class _Images:
    def generate(self, *, prompt: str, **params: Any) -> GatewayObject: ...
    def edit(self, *, image: Union[FileTypes, List[FileTypes]], prompt: str, **params: Any) -> GatewayObject: ...
    def create_variation(self, *, image: FileTypes, **params: Any) -> GatewayObject: ...

class _AsyncImages:
    async def generate(self, *, prompt: str, **params: Any) -> GatewayObject: ...
    async def edit(self, *, image: Union[FileTypes, List[FileTypes]], prompt: str, **params: Any) -> GatewayObject: ...
    async def create_variation(self, *, image: FileTypes, **params: Any) -> GatewayObject: ...

class _Models:
    def list(self, **params: Any) -> GatewayObject: ...

class _AsyncModels:
    async def list(self, **params: Any) -> GatewayObject: ...

class _Messages:
    """Anthropic's Messages API: answers and stream events in Anthropic's shapes."""
    @overload
    def create(
        self, *, model: str, max_tokens: int, messages: List[Dict[str, Any]], stream: Literal[True], **params: Any
    ) -> Stream: ...
    @overload
    def create(
        self,
        *,
        model: str,
        max_tokens: int,
        messages: List[Dict[str, Any]],
        stream: Literal[False] = ...,
        **params: Any,
    ) -> GatewayObject: ...
    def count_tokens(self, *, model: str, messages: List[Dict[str, Any]], **params: Any) -> GatewayObject: ...

class _AsyncMessages:
    @overload
    async def create(
        self, *, model: str, max_tokens: int, messages: List[Dict[str, Any]], stream: Literal[True], **params: Any
    ) -> AsyncStream: ...
    @overload
    async def create(
        self,
        *,
        model: str,
        max_tokens: int,
        messages: List[Dict[str, Any]],
        stream: Literal[False] = ...,
        **params: Any,
    ) -> GatewayObject: ...
    async def count_tokens(self, *, model: str, messages: List[Dict[str, Any]], **params: Any) -> GatewayObject: ...

class _Rerank:
    """Reranking in Cohere's shape (Cohere, Voyage, Jina, Together)."""
    def create(self, *, model: str, query: str, documents: List[Union[str, Dict[str, Any]]], **params: Any) -> GatewayObject: ...

class _AsyncRerank:
    async def create(
        self, *, model: str, query: str, documents: List[Union[str, Dict[str, Any]]], **params: Any
    ) -> GatewayObject: ...

class _PromptCompletions:
    @overload
    def create(self, *, prompt_id: str, variables: Optional[Dict[str, Any]] = ..., stream: Literal[True], **overrides: Any) -> Stream: ...
    @overload
    def create(
        self, *, prompt_id: str, variables: Optional[Dict[str, Any]] = ..., stream: Literal[False] = ..., **overrides: Any
    ) -> GatewayObject: ...

class _Prompts:
    """The registry's prompt library: `render` answers `{"success": True, "data": <the chat
    request>}`; `completions.create` runs it. Fields beside `variables` override the prompt's."""
    completions: _PromptCompletions
    def render(self, *, prompt_id: str, variables: Optional[Dict[str, Any]] = ..., **overrides: Any) -> GatewayObject: ...

class _AsyncPromptCompletions:
    @overload
    async def create(
        self, *, prompt_id: str, variables: Optional[Dict[str, Any]] = ..., stream: Literal[True], **overrides: Any
    ) -> AsyncStream: ...
    @overload
    async def create(
        self, *, prompt_id: str, variables: Optional[Dict[str, Any]] = ..., stream: Literal[False] = ..., **overrides: Any
    ) -> GatewayObject: ...

class _AsyncPrompts:
    completions: _AsyncPromptCompletions
    async def render(self, *, prompt_id: str, variables: Optional[Dict[str, Any]] = ..., **overrides: Any) -> GatewayObject: ...

class _Responses:
    """OpenAI's Responses API: OpenAI and Azure serve it; other providers a stateless
    `create` through their chat translation."""
    @overload
    def create(self, *, model: str, input: Union[str, List[Dict[str, Any]]], stream: Literal[True], **params: Any) -> Stream: ...
    @overload
    def create(
        self, *, model: str, input: Union[str, List[Dict[str, Any]]], stream: Literal[False] = ..., **params: Any
    ) -> GatewayObject: ...

class _AsyncResponses:
    @overload
    async def create(
        self, *, model: str, input: Union[str, List[Dict[str, Any]]], stream: Literal[True], **params: Any
    ) -> AsyncStream: ...
    @overload
    async def create(
        self, *, model: str, input: Union[str, List[Dict[str, Any]]], stream: Literal[False] = ..., **params: Any
    ) -> GatewayObject: ...

class _Base:
    def __init__(
        self,
        config: Optional[Union[Dict[str, Any], str, os.PathLike[str]]] = None,
        *,
        registry: Optional[Union[Dict[str, Any], str, os.PathLike[str]]] = None,
        on_log: Optional[Callable[[Dict[str, Any]], Any]] = None,
        redis: Optional[str] = None,
        redis_down: Optional[Literal["allow", "refuse"]] = None,
        provider: Optional[str] = None,
        virtual_key: Optional[str] = None,
        api_key: Optional[str] = None,
        provider_options: Optional[Dict[str, Any]] = None,
        custom_host: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        trace_id: Optional[str] = None,
        request_timeout: Optional[int] = None,
        forward_headers: Optional[List[str]] = None,
        cache_force_refresh: Optional[bool] = None,
        cache_namespace: Optional[str] = None,
    ) -> None: ...
    def with_options(
        self: _Client,
        *,
        config: Optional[Union[Dict[str, Any], str, os.PathLike[str]]] = None,
        provider: Optional[str] = None,
        virtual_key: Optional[str] = None,
        api_key: Optional[str] = None,
        provider_options: Optional[Dict[str, Any]] = None,
        custom_host: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        trace_id: Optional[str] = None,
        request_timeout: Optional[int] = None,
        forward_headers: Optional[List[str]] = None,
        cache_force_refresh: Optional[bool] = None,
        cache_namespace: Optional[str] = None,
    ) -> _Client: ...
    def route(
        self,
        params: Dict[str, Any],
        metadata: Optional[Dict[str, Any]] = None,
        seed: Optional[int] = None,
        endpoint: str = "chat.completions.create",
    ) -> Dict[str, Any]: ...

class Gateway(_Base):
    chat: _Chat
    completions: _Completions
    embeddings: _Create
    moderations: _Create
    images: _Images
    audio: _Audio
    models: _Models
    messages: _Messages
    responses: _Responses
    rerank: _Rerank
    prompts: _Prompts
    def httpx_transport(self, package: Literal["httpx", "httpx2"] = "httpx") -> Any: ...
    def async_httpx_transport(self, package: Literal["httpx", "httpx2"] = "httpx") -> Any: ...

class AsyncGateway(_Base):
    chat: _AsyncChat
    completions: _AsyncCompletions
    embeddings: _AsyncCreate
    moderations: _AsyncCreate
    images: _AsyncImages
    audio: _AsyncAudio
    models: _AsyncModels
    messages: _AsyncMessages
    responses: _AsyncResponses
    rerank: _AsyncRerank
    prompts: _AsyncPrompts
    def httpx_transport(self, package: Literal["httpx", "httpx2"] = "httpx") -> Any: ...
    async_httpx_transport = httpx_transport
