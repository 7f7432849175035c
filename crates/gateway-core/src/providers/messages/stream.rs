//! Streams for Messages callers of a translated provider: its chat chunks → Anthropic's
//! events. (A Claude provider's own events are passed on by `own_events`.)
//!
//! Anthropic's event flow: `message_start`; per content block `content_block_start`,
//! `content_block_delta`* and `content_block_stop`; `message_delta` (stop reason and the
//! final usage); `message_stop`. A chat stream states its prompt tokens only at its end,
//! so `message_start` reports 0 input tokens and `message_delta` the real counts (as
//! Anthropic's SDKs read them: a later count replaces an earlier one).

use bytes::Bytes;
use serde_json::{Value, json};

use super::from_chat::{stop_reason, usage};
use crate::providers::via_chat::ChatChunkEvents;

/// The content block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    /// A tool call, by its chat `tool_calls[].index`.
    Tool(u64),
}

/// Chat chunks (from the provider's own translator) → Messages events.
pub(crate) struct ChatToEvents {
    started: bool,
    model: Value,
    open: Open,
    /// Index of the next content block.
    next_index: u64,
    finish: Option<String>,
    usage: Option<Value>,
}

impl ChatToEvents {
    /// Events for one answer; `model` is the one asked for, until the first chunk names
    /// one.
    pub(crate) fn new(model: Option<&str>) -> Self {
        Self {
            started: false,
            model: model.map_or(Value::Null, Value::from),
            open: Open::None,
            next_index: 0,
            finish: None,
            usage: None,
        }
    }

    fn start(&mut self, id: Option<&Value>, out: &mut Vec<Bytes>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let id = id.cloned().unwrap_or_else(|| Value::from("msg_gatewise"));
        push(
            out,
            &json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}),
        );
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        if self.open != Open::None {
            push(out, &json!({"type": "content_block_stop", "index": self.next_index - 1}));
            self.open = Open::None;
        }
    }

    fn open_block(&mut self, open: Open, block: Value, out: &mut Vec<Bytes>) {
        self.close_block(out);
        push(out, &json!({"type": "content_block_start", "index": self.next_index, "content_block": block}));
        self.next_index += 1;
        self.open = open;
    }

    fn delta(&self, delta: Value, out: &mut Vec<Bytes>) {
        push(out, &json!({"type": "content_block_delta", "index": self.next_index - 1, "delta": delta}));
    }
}

impl ChatChunkEvents for ChatToEvents {
    fn on_chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        if let Some(model) = chunk.get("model").filter(|m| m.is_string())
            && !self.started
        {
            self.model = model.clone();
        }
        self.start(chunk.get("id"), out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.pointer("/choices/0") else { return };
        let delta = choice.get("delta");
        if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str).filter(|t| !t.is_empty()) {
            if self.open != Open::Text {
                self.open_block(Open::Text, json!({"type": "text", "text": ""}), out);
            }
            self.delta(json!({"type": "text_delta", "text": text}), out);
        }
        for call in delta.and_then(|d| d.get("tool_calls")).and_then(Value::as_array).into_iter().flatten() {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let function = call.get("function");
            if self.open != Open::Tool(index) || call.get("id").is_some_and(|id| id.is_string()) {
                let block = json!({
                    "type": "tool_use",
                    "id": call.get("id").cloned().unwrap_or(Value::Null),
                    "name": function.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null),
                    "input": {},
                });
                self.open_block(Open::Tool(index), block, out);
            }
            let arguments = function.and_then(|f| f.get("arguments")).and_then(Value::as_str).unwrap_or_default();
            if !arguments.is_empty() {
                self.delta(json!({"type": "input_json_delta", "partial_json": arguments}), out);
            }
        }
        if let Some(finish) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(finish.to_owned());
        }
    }

    fn on_end(&mut self, out: &mut Vec<Bytes>) {
        self.start(None, out);
        self.close_block(out);
        push(
            out,
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
                "usage": usage(self.usage.as_ref()),
            }),
        );
        push(out, &json!({"type": "message_stop"}));
    }
}

/// The `type` of an event's JSON data.
pub fn event_type(data: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Typed>(data).ok().map(|t| t.kind)
}

fn push(out: &mut Vec<Bytes>, event: &Value) {
    out.push(Bytes::from(event.to_string()));
}
