//! OpenAI's Responses API as the caller's API (`POST /v1/responses`).
//!
//! OpenAI and Azure take the request as it came, and their answer and events go back
//! untouched ([`super::own_events`] passes the stream on); retrieving, deleting and listing
//! stored responses (`/v1/responses/{id}...`) are pass-through routes. Every other provider
//! gets a stateless `responses.create` through chat ([`super::via_chat`]): Responses →
//! chat here, and the chat answer or chunks back as a `response` or its events.

mod from_chat;
mod stream;
mod to_chat;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::via_chat::{Bridged, ChatBridge, ChatChunkEvents, ChatDialect};
use crate::error::GatewayError;

/// A Responses request as chat, and the way back.
pub(crate) fn bridge(params: &Value, dialect: ChatDialect) -> Result<Bridged, GatewayError> {
    let chat = to_chat::chat_params(params, dialect)?;
    Ok(Bridged { chat, back: Box::new(ToResponses { echo: Arc::new(from_chat::echo(params)) }) })
}

/// Chat answers → Responses answers, repeating the request's fields as OpenAI does.
struct ToResponses {
    echo: Arc<Map<String, Value>>,
}

impl ChatBridge for ToResponses {
    fn answer(&self, provider: &str, chat: &[u8]) -> Result<Bytes, GatewayError> {
        from_chat::answer(provider, chat, &self.echo)
    }

    fn events(&self, model: Option<&str>) -> Box<dyn ChatChunkEvents> {
        Box::new(stream::ChatToResponseEvents::new(model, Arc::clone(&self.echo)))
    }
}
