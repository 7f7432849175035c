//! Anthropic's Messages API as the caller's API (`POST /v1/messages`).
//!
//! A Claude provider (Anthropic, Claude on Vertex) takes the request as it came and its
//! answer goes back untouched: `cache_control`, `thinking`, documents and betas intact
//! ([`super::own_events`] passes its stream on). Every other provider gets it through chat
//! ([`super::via_chat`]): Messages → chat here, and the chat answer or chunks back.

mod from_chat;
mod stream;
mod to_chat;

use bytes::Bytes;
use serde_json::Value;

pub use stream::event_type;

use super::via_chat::{Bridged, ChatBridge, ChatChunkEvents, ChatDialect};
use crate::error::GatewayError;

/// A Messages request as chat, and the way back.
pub(crate) fn bridge(params: &Value, dialect: ChatDialect) -> Result<Bridged, GatewayError> {
    Ok(Bridged { chat: to_chat::chat_params(params, dialect)?, back: Box::new(ToMessages) })
}

/// Chat answers → Messages answers.
struct ToMessages;

impl ChatBridge for ToMessages {
    fn answer(&self, provider: &str, chat: &[u8]) -> Result<Bytes, GatewayError> {
        from_chat::message(provider, chat)
    }

    fn events(&self, model: Option<&str>) -> Box<dyn ChatChunkEvents> {
        Box::new(stream::ChatToEvents::new(model))
    }
}
