//! A provider's own events for a caller of the same API (Anthropic's Messages from a
//! Claude provider, OpenAI's Responses from OpenAI or Azure), passed on untouched: the
//! caller reads them with that API's SDK. The stream is complete at the API's terminal
//! event; an `error` event ends it as an error, rendered in the caller's shape at the edge.

use bytes::Bytes;
use serde_json::Value;

use super::event_type;
use super::sse_stream::{SseEventHandler, stream_error};
use crate::error::GatewayError;
use crate::sse::SseEvent;

/// Passes one answer's events on.
#[derive(Debug)]
pub(crate) struct OwnEvents {
    provider: &'static str,
    /// The event types that end a complete stream.
    terminal: &'static [&'static str],
    done: bool,
}

impl OwnEvents {
    /// Anthropic's Messages events (`ping`s stay: they keep idle connections open).
    pub(crate) fn messages(provider: &'static str) -> Self {
        Self { provider, terminal: &["message_stop"], done: false }
    }

    /// OpenAI's Responses events.
    pub(crate) fn responses(provider: &'static str) -> Self {
        Self { provider, terminal: &["response.completed", "response.incomplete", "response.failed"], done: false }
    }
}

impl SseEventHandler for OwnEvents {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        let data = event.data.trim();
        if self.done || data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let kind = if event.event.is_empty() { event_type(&event.data) } else { Some(event.event.clone()) };
        match kind.as_deref() {
            Some("error") => {
                // Anthropic nests the message (`error.message`), the Responses API does not.
                let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
                let message = data
                    .pointer("/error/message")
                    .or_else(|| data.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or(&event.data);
                return Err(stream_error(self.provider, message));
            }
            Some(kind) if self.terminal.contains(&kind) => self.done = true,
            _ => {}
        }
        out.push(Bytes::from(event.data));
        Ok(())
    }

    fn is_complete(&self) -> bool {
        self.done
    }

    fn cut_short(&self) -> GatewayError {
        stream_error(self.provider, format!("the stream ended before `{}`", self.terminal[0]))
    }
}
