//! Anthropic Messages SSE → OpenAI `chat.completion.chunk` payloads.
//!
//! Event flow: `message_start`, then per content block `content_block_start`,
//! `content_block_delta`* and `content_block_stop`, then `message_delta` (stop reason,
//! final usage) and the terminal `message_stop`. `ping` and unknown events are skipped;
//! an `error` event is a stream error.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{Value, json};

use super::response::{Usage, finish_reason};
use crate::error::GatewayError;
use crate::providers::ResponseContext;
use crate::providers::sse_stream::{SseEventHandler, stream_error};
use crate::sse::SseEvent;

/// The per-request event handler. The provider name only appears in error messages, so
/// the same handler serves Anthropic on Vertex (`streamRawPredict` speaks the same SSE).
#[derive(Debug)]
pub(crate) struct MessagesEvents {
    provider: &'static str,
    id: String,
    model: String,
    created: u64,
    strict: bool,
    include_usage: bool,
    /// The role chunk went out (every later chunk must follow it).
    started: bool,
    /// Anthropic content-block index → OpenAI tool-call index.
    tool_index: HashMap<u64, usize>,
    stop_reason: Option<String>,
    usage: Usage,
    /// `message_stop` arrived; anything after it is ignored.
    done: bool,
}

impl MessagesEvents {
    /// A handler for one answer to the request in `cx`.
    pub(crate) fn new(provider: &'static str, cx: &ResponseContext<'_>) -> Self {
        Self {
            provider,
            id: cx.fallback_id.to_owned(),
            model: cx.model().unwrap_or_default().to_owned(),
            created: cx.created(),
            strict: cx.strict(),
            include_usage: cx.include_usage(),
            started: false,
            tool_index: HashMap::new(),
            stop_reason: None,
            usage: Usage::default(),
            done: false,
        }
    }

    fn handle(&mut self, event: &SseEvent, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        if self.done || event.data.trim().is_empty() {
            return Ok(());
        }
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| stream_error(self.provider, format!("unreadable stream event ({e}): {}", event.data)))?;
        let kind = data.get("type").and_then(Value::as_str).unwrap_or(event.event.as_str());
        match kind {
            "message_start" => {
                let message = data.get("message");
                if !self.started {
                    if let Some(id) = message.and_then(|m| m.get("id")).and_then(Value::as_str) {
                        self.id = id.to_owned();
                    }
                    if let Some(model) = message.and_then(|m| m.get("model")).and_then(Value::as_str) {
                        self.model = model.to_owned();
                    }
                }
                if let Some(usage) = message.and_then(|m| m.get("usage")) {
                    self.usage.merge(usage);
                }
                self.start(out);
            }
            "content_block_start" => {
                let block = data.get("content_block");
                match block.and_then(|b| b.get("type")).and_then(Value::as_str) {
                    Some("tool_use") => {
                        let index = self.tool_index.len();
                        if let Some(block_index) = data.get("index").and_then(Value::as_u64) {
                            self.tool_index.insert(block_index, index);
                        }
                        let call = json!({
                            "index": index,
                            "id": block.and_then(|b| b.get("id")).cloned().unwrap_or(Value::Null),
                            "type": "function",
                            "function": {
                                "name": block.and_then(|b| b.get("name")).cloned().unwrap_or(Value::Null),
                                "arguments": "",
                            },
                        });
                        self.emit(out, json!({ "tool_calls": [call] }));
                    }
                    Some("text") => {
                        let text = block.and_then(|b| b.get("text")).and_then(Value::as_str).unwrap_or_default();
                        if !text.is_empty() {
                            self.emit(out, json!({ "content": text }));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta");
                let field = |k: &str| delta.and_then(|d| d.get(k)).and_then(Value::as_str).unwrap_or_default();
                match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
                    Some("text_delta") if !field("text").is_empty() => {
                        self.emit(out, json!({ "content": field("text") }));
                    }
                    Some("input_json_delta") if !field("partial_json").is_empty() => {
                        let block_index = data.get("index").and_then(Value::as_u64);
                        if let Some(&index) = block_index.and_then(|i| self.tool_index.get(&i)) {
                            let call = json!({ "index": index, "function": { "arguments": field("partial_json") } });
                            self.emit(out, json!({ "tool_calls": [call] }));
                        }
                    }
                    // Thinking is a provider extra: only outside strict mode.
                    Some(kind @ ("thinking_delta" | "signature_delta")) if !self.strict => {
                        let key = if kind == "thinking_delta" { "thinking" } else { "signature" };
                        let block = json!({ "index": data.get("index").cloned().unwrap_or(Value::Null),
                            "delta": { key: field(key) } });
                        self.emit(out, json!({ "content_blocks": [block] }));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data.get("delta").and_then(|d| d.get("stop_reason")).and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_owned());
                }
                if let Some(usage) = data.get("usage") {
                    self.usage.merge(usage);
                }
            }
            "message_stop" => {
                self.start(out);
                let reason = finish_reason(self.stop_reason.as_deref(), self.strict);
                out.push(self.chunk(json!({}), reason));
                if self.include_usage {
                    let mut usage = self.envelope();
                    usage["choices"] = json!([]);
                    usage["usage"] = self.usage.to_openai();
                    out.push(Bytes::from(usage.to_string()));
                }
                self.done = true;
            }
            "error" => {
                let error = data.get("error");
                let message = error.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("stream error");
                return Err(stream_error(self.provider, message));
            }
            // ping, content_block_stop and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    /// The role chunk, once, before anything else.
    fn start(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({ "role": "assistant", "content": "" }), Value::Null));
        }
    }

    fn emit(&mut self, out: &mut Vec<Bytes>, delta: Value) {
        self.start(out);
        out.push(self.chunk(delta, Value::Null));
    }

    fn envelope(&self) -> Value {
        json!({ "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model })
    }

    fn chunk(&self, delta: Value, finish_reason: Value) -> Bytes {
        let mut chunk = self.envelope();
        chunk["choices"] = json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }]);
        Bytes::from(chunk.to_string())
    }
}

impl SseEventHandler for MessagesEvents {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        self.handle(&event, out)
    }

    fn is_complete(&self) -> bool {
        self.done
    }

    fn cut_short(&self) -> GatewayError {
        stream_error(self.provider, "the stream ended before `message_stop`")
    }
}
