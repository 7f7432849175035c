//! Anthropic Messages SSE → OpenAI `chat.completion.chunk` payloads.
//!
//! Event flow: `message_start`, then per content block `content_block_start`,
//! `content_block_delta`* and `content_block_stop`, then `message_delta` (stop reason,
//! final usage) and the terminal `message_stop`. `ping` and unknown events are skipped;
//! an `error` event is a stream error.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::response::{Usage, finish_reason};
use crate::error::GatewayError;
use crate::providers::ResponseContext;
use crate::providers::sse_stream::{ChunkWriter, SseEventHandler, stream_error};
use crate::providers::structured_output::{ANSWER_TOOL, answers_through_tool};
use crate::sse::SseEvent;

/// The per-request event handler. The provider name only appears in error messages, so
/// the same handler serves Anthropic on Vertex (`streamRawPredict` speaks the same SSE).
#[derive(Debug)]
pub(crate) struct MessagesEvents {
    provider: &'static str,
    chunks: ChunkWriter,
    strict: bool,
    include_usage: bool,
    /// Anthropic content-block index → OpenAI tool-call index.
    tool_index: HashMap<u64, usize>,
    /// The request asked for JSON: a call of the answer tool is the content.
    through_tool: bool,
    /// The content-block index of the answer tool's call, once it started.
    answer_block: Option<u64>,
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
            chunks: ChunkWriter::new(cx),
            strict: cx.strict(),
            include_usage: cx.include_usage(),
            tool_index: HashMap::new(),
            through_tool: answers_through_tool(cx),
            answer_block: None,
            stop_reason: None,
            usage: Usage::default(),
            done: false,
        }
    }

    fn handle(&mut self, event: &SseEvent, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        if self.done || event.data.trim().is_empty() {
            return Ok(());
        }
        // Tried only on events named so (Anthropic names every event): a failed read makes
        // an error, which costs more than the read.
        if event.event == "content_block_delta"
            && let Ok(TextDeltaEvent { kind, delta }) = serde_json::from_str::<TextDeltaEvent<'_>>(&event.data)
            && kind == "content_block_delta"
            && delta.kind == "text_delta"
        {
            if !delta.text.is_empty() {
                self.chunks.delta(out, Content { content: &delta.text });
            }
            return Ok(());
        }
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| stream_error(self.provider, format!("unreadable stream event ({e}): {}", event.data)))?;
        let kind = data.get("type").and_then(Value::as_str).unwrap_or(event.event.as_str());
        match kind {
            "message_start" => {
                let message = data.get("message");
                if !self.chunks.started {
                    if let Some(id) = message.and_then(|m| m.get("id")).and_then(Value::as_str) {
                        self.chunks.id = id.to_owned();
                    }
                    if let Some(model) = message.and_then(|m| m.get("model")).and_then(Value::as_str) {
                        self.chunks.model = model.to_owned();
                    }
                }
                if let Some(usage) = message.and_then(|m| m.get("usage")) {
                    self.usage.merge(usage);
                }
                self.chunks.start(out);
            }
            "content_block_start" => {
                let block = data.get("content_block");
                let name = block.and_then(|b| b.get("name")).and_then(Value::as_str);
                match block.and_then(|b| b.get("type")).and_then(Value::as_str) {
                    Some("tool_use") if self.through_tool && name == Some(ANSWER_TOOL) => {
                        self.answer_block = data.get("index").and_then(Value::as_u64);
                        self.chunks.start(out);
                    }
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
                        self.chunks.delta(out, json!({ "tool_calls": [call] }));
                    }
                    Some("text") => {
                        let text = block.and_then(|b| b.get("text")).and_then(Value::as_str).unwrap_or_default();
                        if !text.is_empty() {
                            self.chunks.delta(out, json!({ "content": text }));
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
                        self.chunks.delta(out, json!({ "content": field("text") }));
                    }
                    Some("input_json_delta") if !field("partial_json").is_empty() => {
                        let block_index = data.get("index").and_then(Value::as_u64);
                        if block_index.is_some() && block_index == self.answer_block {
                            self.chunks.delta(out, json!({ "content": field("partial_json") }));
                        } else if let Some(&index) = block_index.and_then(|i| self.tool_index.get(&i)) {
                            let call = json!({ "index": index, "function": { "arguments": field("partial_json") } });
                            self.chunks.delta(out, json!({ "tool_calls": [call] }));
                        }
                    }
                    // Thinking is a provider extra: only outside strict mode.
                    Some(kind @ ("thinking_delta" | "signature_delta")) if !self.strict => {
                        let key = if kind == "thinking_delta" { "thinking" } else { "signature" };
                        let block = json!({ "index": data.get("index").cloned().unwrap_or(Value::Null),
                            "delta": { key: field(key) } });
                        self.chunks.delta(out, json!({ "content_blocks": [block] }));
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
                self.chunks.start(out);
                // Calling the answer tool was answering, not asking for a tool.
                if self.answer_block.is_some()
                    && self.tool_index.is_empty()
                    && self.stop_reason.as_deref() == Some("tool_use")
                {
                    self.stop_reason = Some("end_turn".to_owned());
                }
                let reason = finish_reason(self.stop_reason.as_deref(), self.strict);
                out.push(self.chunks.chunk(json!({}), reason));
                if self.include_usage {
                    let mut usage = self.chunks.envelope();
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
}

/// `content_block_delta` with a `text_delta`, the event most of a streamed answer is made
/// of, read as borrowed fields: as a `Value` (a map per object, every key hashed on insert
/// and lookup) it was about half of what a translated chunk cost. Any other event, or a
/// field of an unexpected type, fails this read and takes the general one.
#[derive(Deserialize)]
struct TextDeltaEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    delta: TextDelta<'a>,
}

#[derive(Deserialize)]
struct TextDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// The delta of a text chunk: `{"content": ...}`.
#[derive(Serialize)]
struct Content<'a> {
    content: &'a str,
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
