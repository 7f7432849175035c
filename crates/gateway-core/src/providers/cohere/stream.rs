//! Cohere v2 chat SSE → OpenAI `chat.completion.chunk` payloads.
//!
//! Events: `message-start` (id), `content-start`/`content-delta`/`content-end` (text),
//! `tool-plan-delta`, `tool-call-start`/`tool-call-delta`/`tool-call-end`,
//! `citation-start`/`citation-end`, and the terminal `message-end` (finish reason and
//! usage). Only the ones that carry answer text, tool calls or the end matter here.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Value, json};

use super::SLUG;
use super::response::{finish_reason, usage};
use crate::error::GatewayError;
use crate::providers::ResponseContext;
use crate::providers::sse_stream::{ChunkWriter, SseEventHandler, stream_error};
use crate::sse::SseEvent;

/// The per-request event handler.
#[derive(Debug)]
pub(crate) struct CohereEvents {
    chunks: ChunkWriter,
    strict: bool,
    include_usage: bool,
    /// Cohere's tool-call index → ours (in order of appearance).
    tool_index: HashMap<u64, usize>,
    done: bool,
}

impl CohereEvents {
    /// A handler for one answer to the request in `cx`.
    pub(crate) fn new(cx: &ResponseContext<'_>) -> Self {
        Self {
            chunks: ChunkWriter::new(cx),
            strict: cx.strict(),
            include_usage: cx.include_usage(),
            tool_index: HashMap::new(),
            done: false,
        }
    }

    fn handle(&mut self, event: &SseEvent, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        if self.done || event.data.trim().is_empty() {
            return Ok(());
        }
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| stream_error(SLUG, format!("unreadable stream event ({e}): {}", event.data)))?;
        let kind = data.get("type").and_then(Value::as_str).unwrap_or(event.event.as_str());
        let message = data.get("delta").and_then(|d| d.get("message"));
        match kind {
            "message-start" => {
                if !self.chunks.started
                    && let Some(id) = data.get("id").and_then(Value::as_str)
                {
                    self.chunks.id = id.to_owned();
                }
                self.chunks.start(out);
            }
            "content-start" | "content-delta" => {
                let text = message.and_then(|m| m.get("content")).and_then(|c| c.get("text")).and_then(Value::as_str);
                if let Some(text) = text.filter(|t| !t.is_empty()) {
                    self.chunks.delta(out, json!({ "content": text }));
                }
            }
            "tool-call-start" => {
                let call = tool_call_of(message);
                let index = self.tool_index.len();
                if let Some(cohere_index) = data.get("index").and_then(Value::as_u64) {
                    self.tool_index.insert(cohere_index, index);
                }
                let function = call.and_then(|c| c.get("function"));
                let first = json!({
                    "index": index,
                    "id": call.and_then(|c| c.get("id")).cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {
                        "name": function.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null),
                        "arguments": "",
                    },
                });
                self.chunks.delta(out, json!({ "tool_calls": [first] }));
                // Arguments on the start event (not seen in practice) follow as a delta, so
                // the first delta's shape stays the documented one.
                self.arguments(out, index, function);
            }
            "tool-call-delta" => {
                let cohere_index = data.get("index").and_then(Value::as_u64);
                if let Some(&index) = cohere_index.and_then(|i| self.tool_index.get(&i)) {
                    let function = tool_call_of(message).and_then(|c| c.get("function"));
                    self.arguments(out, index, function);
                }
            }
            "message-end" => {
                let delta = data.get("delta");
                let reason = delta.and_then(|d| d.get("finish_reason")).and_then(Value::as_str);
                // ERROR means the generation failed part-way: never make it look complete.
                if reason == Some("ERROR") {
                    return Err(stream_error(SLUG, "the generation failed (finish_reason ERROR)"));
                }
                self.chunks.start(out);
                out.push(self.chunks.chunk(json!({}), finish_reason(reason, self.strict)));
                if self.include_usage {
                    let mut chunk = self.chunks.envelope();
                    chunk["choices"] = json!([]);
                    chunk["usage"] = usage(delta.and_then(|d| d.get("usage")));
                    out.push(Bytes::from(chunk.to_string()));
                }
                self.done = true;
            }
            "error" => {
                let msg = data.get("message").and_then(Value::as_str).unwrap_or("stream error");
                return Err(stream_error(SLUG, msg));
            }
            // content-end, tool-plan-delta, tool-call-end, citations, debug, newer events.
            _ => {}
        }
        Ok(())
    }

    fn arguments(&mut self, out: &mut Vec<Bytes>, index: usize, function: Option<&Value>) {
        let args = function.and_then(|f| f.get("arguments")).and_then(Value::as_str).unwrap_or_default();
        if !args.is_empty() {
            self.chunks.delta(out, json!({ "tool_calls": [{ "index": index, "function": { "arguments": args } }] }));
        }
    }
}

/// `delta.message.tool_calls` is documented as one object; accept a one-element array too.
fn tool_call_of(message: Option<&Value>) -> Option<&Value> {
    match message.and_then(|m| m.get("tool_calls")) {
        Some(Value::Array(calls)) => calls.first(),
        other => other,
    }
}

impl SseEventHandler for CohereEvents {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        self.handle(&event, out)
    }

    fn is_complete(&self) -> bool {
        self.done
    }

    fn cut_short(&self) -> GatewayError {
        stream_error(SLUG, "the stream ended before `message-end`")
    }
}
