//! A caller's API served through a provider's chat translation.
//!
//! Anthropic's Messages API and OpenAI's Responses API are served natively by the
//! providers that have them (Claude providers, OpenAI and Azure). Every other provider
//! gets them through chat: the caller's API module turns the request into chat parameters,
//! the provider's own chat translation does the rest, and a [`ChatBridge`] turns the chat
//! answer (or its chunks) back into the caller's answer (or events). So one translation
//! per caller API, X ↔ chat, serves every provider, and each provider keeps exactly one
//! translation of its own.

use bytes::Bytes;
use serde_json::Value;

use super::{BuildInput, HttpRequest, Provider, ResponseContext, StreamTranslator, StreamUsage, speaks_openai};
use crate::error::{ErrorCode, GatewayError};
use crate::request::{Endpoint, GatewayRequest, RequestBody};
use crate::settings::TargetSettings;

/// Chat parameters and the caller's parameters left out of them.
#[derive(Debug)]
pub(crate) struct ChatParams {
    /// The chat request body.
    pub(crate) body: Value,
    /// Names of the caller's parameters with no chat equivalent for this provider.
    pub(crate) dropped: Vec<String>,
}

/// How the chat request is spelled for the provider it goes to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChatDialect {
    /// An OpenAI-compatible upstream (it takes the body as is, so only OpenAI's own
    /// parameters may be in it).
    pub(crate) openai_family: bool,
    /// The upstream wants `max_completion_tokens` (OpenAI's reasoning models refuse
    /// `max_tokens`; every translating provider reads both).
    pub(crate) max_completion_tokens: bool,
}

/// The way back from chat to the caller's API, for one request.
pub(crate) trait ChatBridge: Send + Sync {
    /// A complete chat answer as the caller's answer.
    fn answer(&self, provider: &str, chat: &[u8]) -> Result<Bytes, GatewayError>;

    /// The caller's events for one streamed answer; `model` is the one asked for, until
    /// the first chunk names one.
    fn events(&self, model: Option<&str>) -> Box<dyn ChatChunkEvents>;
}

/// A caller's request as chat, and the bridge back.
pub(crate) struct Bridged {
    /// The chat request and what it left out.
    pub(crate) chat: ChatParams,
    /// The way back.
    pub(crate) back: Box<dyn ChatBridge>,
}

/// The caller's API module for `endpoint`.
fn bridge(endpoint: Endpoint, params: &Value, dialect: ChatDialect) -> Result<Bridged, GatewayError> {
    match endpoint {
        Endpoint::Messages => super::messages::bridge(params, dialect),
        Endpoint::Responses => super::responses::bridge(params, dialect),
        other => Err(GatewayError::new(
            ErrorCode::UnsupportedEndpoint,
            format!("{} is not served through chat", other.openai_path()),
        )),
    }
}

/// A translated chat answer that cannot be read: the provider's fault, a 502.
pub(crate) fn unreadable_answer(provider: &str, why: &str) -> GatewayError {
    GatewayError::new(
        ErrorCode::UpstreamError,
        format!("{provider} error: the answer cannot be read as a chat completion: {why}"),
    )
    .with_provider(provider)
    .with_status(502)
}

/// A caller API's events, made from chat chunks one at a time.
pub(crate) trait ChatChunkEvents: Send {
    /// One chat chunk, parsed.
    fn on_chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>);

    /// The chat stream ended cleanly: close what is open and send the last events.
    fn on_end(&mut self, out: &mut Vec<Bytes>);
}

/// The provider's chat translator, with its chunks handed to `events` as they come.
struct FromChatChunks {
    inner: Box<dyn StreamTranslator>,
    provider: &'static str,
    /// Chunks of the current read, kept to reuse the allocation.
    chunks: Vec<Bytes>,
    events: Box<dyn ChatChunkEvents>,
}

impl FromChatChunks {
    fn translate(&mut self, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        for chunk in self.chunks.drain(..) {
            let chunk: Value = crate::json::from_slice(&chunk)
                .map_err(|e| super::sse_stream::stream_error(self.provider, format!("unreadable chunk ({e})")))?;
            self.events.on_chunk(&chunk, out);
        }
        Ok(())
    }
}

impl StreamTranslator for FromChatChunks {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        self.inner.feed(bytes, &mut self.chunks)?;
        self.translate(out)
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        self.inner.finish(&mut self.chunks)?;
        self.translate(out)?;
        self.events.on_end(out);
        Ok(())
    }
}

/// A provider that serves a Messages or Responses request through its chat translation.
pub struct ViaChat {
    inner: &'static dyn Provider,
    /// The caller's endpoint.
    endpoint: Endpoint,
    /// The request as chat.
    chat: GatewayRequest,
    /// The caller's parameters the chat request has no place for.
    dropped: Vec<String>,
    /// The leaf's settings without `override_params`, which `chat` already has.
    settings: TargetSettings,
    back: Box<dyn ChatBridge>,
}

impl ViaChat {
    /// Translate `request` (`override_params` applied) for `inner`.
    pub fn new(
        inner: &'static dyn Provider,
        request: &GatewayRequest,
        settings: &TargetSettings,
    ) -> Result<Self, GatewayError> {
        let params = super::effective_params(&request.body, settings)?;
        let slug = inner.slug();
        let openai_family = speaks_openai(slug);
        // OpenAI's reasoning models refuse `max_tokens`; the rest of the family may not
        // know `max_completion_tokens`.
        let max_completion_tokens = !openai_family || matches!(slug, "openai" | "azure-openai");
        let dialect = ChatDialect { openai_family, max_completion_tokens };
        let Bridged { chat: ChatParams { body, dropped }, back } = bridge(request.endpoint, &params, dialect)?;
        let chat = GatewayRequest {
            endpoint: Endpoint::ChatCompletions,
            method: http::Method::POST,
            path: "/v1/chat/completions".to_owned(),
            query: None,
            body: RequestBody::from_value(body)?,
            headers: request.headers.clone(),
        };
        let settings = TargetSettings { override_params: Default::default(), ..settings.clone() };
        Ok(Self { inner, endpoint: request.endpoint, chat, dropped, settings, back })
    }
}

impl Provider for ViaChat {
    fn slug(&self) -> &'static str {
        self.inner.slug()
    }

    fn supports(&self, endpoint: Endpoint) -> bool {
        endpoint == self.endpoint
    }

    fn build_request(&self, input: &BuildInput<'_>) -> Result<HttpRequest, GatewayError> {
        let mut built =
            self.inner.build_request(&BuildInput { request: &self.chat, settings: &self.settings, ..*input })?;
        let mut dropped = self.dropped.clone();
        dropped.append(&mut built.dropped_params);
        built.dropped_params = dropped;
        Ok(built)
    }

    fn transform_response(&self, cx: &ResponseContext<'_>, body: Bytes) -> Result<Bytes, GatewayError> {
        let cx = ResponseContext { request: &self.chat, settings: &self.settings, ..*cx };
        let chat = self.inner.transform_response(&cx, body)?;
        self.back.answer(self.inner.slug(), &chat)
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> GatewayError {
        self.inner.upstream_error(status, body)
    }

    fn stream_translator(&self, cx: &ResponseContext<'_>) -> Box<dyn StreamTranslator> {
        let chat_cx = ResponseContext { request: &self.chat, settings: &self.settings, usage_chunk: true, ..*cx };
        Box::new(FromChatChunks {
            inner: self.inner.stream_translator(&chat_cx),
            provider: self.inner.slug(),
            chunks: Vec::new(),
            events: self.back.events(chat_cx.model()),
        })
    }

    fn stream_usage(&self) -> StreamUsage {
        // The caller's API always carries the usage (`message_delta`, `response.completed`).
        StreamUsage::Always
    }
}
