//! Anthropic's Messages API as the caller's API (`POST /v1/messages`).
//!
//! A Claude provider (Anthropic, Claude on Vertex) takes the request as it came and its
//! answer goes back untouched: `cache_control`, `thinking`, documents and betas intact.
//! Every other provider gets it through chat: [`ViaChat`] turns the request into chat
//! parameters, lets the provider's own chat translation do the rest, and turns the chat
//! answer (or its chunks) back into a Messages answer (or its events). So one
//! translation, Messages ↔ chat, serves every provider, and each provider keeps exactly
//! one translation of its own.

mod from_chat;
mod stream;
mod to_chat;

use bytes::Bytes;

pub(crate) use stream::AnthropicEvents;
pub use stream::event_type;

use super::{BuildInput, HttpRequest, Provider, ResponseContext, StreamTranslator, StreamUsage, speaks_openai};
use crate::error::GatewayError;
use crate::request::{Endpoint, GatewayRequest, RequestBody};
use crate::settings::TargetSettings;

/// A provider that serves a Messages request through its chat translation.
pub struct ViaChat {
    inner: &'static dyn Provider,
    /// The request as chat.
    chat: GatewayRequest,
    /// Messages parameters the chat request has no place for.
    dropped: Vec<String>,
    /// The leaf's settings without `override_params`, which `chat` already has.
    settings: TargetSettings,
}

impl ViaChat {
    /// Translate `request` (a Messages request, `override_params` applied) for `inner`.
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
        let dialect = to_chat::ChatDialect { openai_family, max_completion_tokens };
        let to_chat::ChatParams { body, dropped } = to_chat::chat_params(&params, dialect)?;
        let chat = GatewayRequest {
            endpoint: Endpoint::ChatCompletions,
            method: http::Method::POST,
            path: "/v1/chat/completions".to_owned(),
            query: None,
            body: RequestBody::from_value(body)?,
            headers: request.headers.clone(),
        };
        let settings = TargetSettings { override_params: Default::default(), ..settings.clone() };
        Ok(Self { inner, chat, dropped, settings })
    }
}

impl Provider for ViaChat {
    fn slug(&self) -> &'static str {
        self.inner.slug()
    }

    fn supports(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::Messages
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
        from_chat::message(self.inner.slug(), &chat)
    }

    fn upstream_error(&self, status: u16, body: &[u8]) -> GatewayError {
        self.inner.upstream_error(status, body)
    }

    fn stream_translator(&self, cx: &ResponseContext<'_>) -> Box<dyn StreamTranslator> {
        let chat_cx = ResponseContext { request: &self.chat, settings: &self.settings, usage_chunk: true, ..*cx };
        let inner = self.inner.stream_translator(&chat_cx);
        Box::new(stream::ChatToEvents::new(inner, self.inner.slug(), chat_cx.model()))
    }

    fn stream_usage(&self) -> StreamUsage {
        // The usage is in `message_delta`, which every Messages caller gets.
        StreamUsage::Always
    }
}
