//! Streams for Responses callers of a translated provider: its chat chunks → Responses
//! events. (OpenAI's and Azure's own events are passed on by `own_events`.)
//!
//! The event flow OpenAI's SDKs read: `response.created`, `response.in_progress`; per
//! output item `response.output_item.added`, then for a message
//! `response.content_part.added`, `response.output_text.delta`*, `response.output_text.done`,
//! `response.content_part.done`, or for a function call
//! `response.function_call_arguments.delta`*, `response.function_call_arguments.done`;
//! `response.output_item.done`; and last `response.completed` (or `response.incomplete`)
//! with the whole response and its usage. Every event has a `sequence_number`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::from_chat::{Status, function_call_item, message_id, message_item, response, text_part, usage};
use crate::providers::via_chat::ChatChunkEvents;

/// The output item being streamed.
#[derive(Debug)]
enum Open {
    None,
    Text {
        output_index: usize,
        id: String,
        text: String,
    },
    /// A function call, by its chat `tool_calls[].index`.
    Call {
        chat_index: u64,
        output_index: usize,
        call_id: Value,
        name: Value,
        arguments: String,
    },
}

/// Chat chunks (from the provider's own translator) → Responses events.
pub(super) struct ChatToResponseEvents {
    echo: Arc<Map<String, Value>>,
    started: bool,
    sequence: u64,
    id: String,
    created_at: Value,
    model: Value,
    /// Finished output items.
    output: Vec<Value>,
    open: Open,
    finish: Option<String>,
    usage: Option<Value>,
}

impl ChatToResponseEvents {
    /// Events for one answer; `model` is the one asked for, until the first chunk names
    /// one. `echo`: the request fields every `response` repeats.
    pub(super) fn new(model: Option<&str>, echo: Arc<Map<String, Value>>) -> Self {
        Self {
            echo,
            started: false,
            sequence: 0,
            id: "gatewise".to_owned(),
            created_at: Value::Null,
            model: model.map_or(Value::Null, Value::from),
            output: Vec::new(),
            open: Open::None,
            finish: None,
            usage: None,
        }
    }

    fn emit(&mut self, kind: &str, mut event: Value, out: &mut Vec<Bytes>) {
        event["type"] = kind.into();
        event["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        out.push(Bytes::from(event.to_string()));
    }

    fn snapshot(&self, status: Status, usage: Value) -> Value {
        response(&self.id, &self.created_at, &self.model, status, self.output.clone(), usage, &self.echo)
    }

    fn start(&mut self, chunk: Option<&Value>, out: &mut Vec<Bytes>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        if let Some(chunk) = chunk {
            if let Some(id) = chunk.get("id").and_then(Value::as_str) {
                self.id = id.to_owned();
            }
            self.created_at = chunk.get("created").cloned().unwrap_or(Value::Null);
            if let Some(model) = chunk.get("model").filter(|m| m.is_string()) {
                self.model = model.clone();
            }
        }
        let snapshot = self.snapshot(Status::InProgress, Value::Null);
        self.emit("response.created", json!({"response": snapshot}), out);
        self.emit("response.in_progress", json!({"response": snapshot}), out);
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Text { output_index, id, text } => {
                let at = json!({"item_id": id, "output_index": output_index, "content_index": 0});
                let mut done = at.clone();
                done["text"] = text.as_str().into();
                done["logprobs"] = json!([]);
                self.emit("response.output_text.done", done, out);
                let mut part_done = at;
                part_done["part"] = text_part(&text);
                self.emit("response.content_part.done", part_done, out);
                let item = message_item(&id, "completed", Some(text_part(&text)));
                self.emit("response.output_item.done", json!({"output_index": output_index, "item": item}), out);
                self.output.push(item);
            }
            Open::Call { output_index, call_id, name, arguments, .. } => {
                let item = function_call_item(&call_id, &name, &arguments, "completed");
                let done = json!({"item_id": item["id"], "output_index": output_index, "arguments": arguments});
                self.emit("response.function_call_arguments.done", done, out);
                self.emit("response.output_item.done", json!({"output_index": output_index, "item": item}), out);
                self.output.push(item);
            }
        }
    }

    fn on_text(&mut self, delta: &str, out: &mut Vec<Bytes>) {
        if !matches!(self.open, Open::Text { .. }) {
            self.close(out);
            let output_index = self.output.len();
            let id = message_id(&self.id, output_index);
            let item = message_item(&id, "in_progress", None);
            self.emit("response.output_item.added", json!({"output_index": output_index, "item": item}), out);
            let part = json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": text_part("")});
            self.emit("response.content_part.added", part, out);
            self.open = Open::Text { output_index, id, text: String::new() };
        }
        if let Open::Text { output_index, id, text } = &mut self.open {
            text.push_str(delta);
            let event = json!({"item_id": id, "output_index": output_index, "content_index": 0, "delta": delta,
                "logprobs": []});
            self.emit("response.output_text.delta", event, out);
        }
    }

    fn on_call(&mut self, call: &Value, out: &mut Vec<Bytes>) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        let same = matches!(&self.open, Open::Call { chat_index: open, .. } if *open == chat_index);
        if !same || call.get("id").is_some_and(Value::is_string) {
            self.close(out);
            let output_index = self.output.len();
            let call_id = call.get("id").cloned().unwrap_or(Value::Null);
            let name = function.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null);
            let item = function_call_item(&call_id, &name, "", "in_progress");
            self.emit("response.output_item.added", json!({"output_index": output_index, "item": item}), out);
            self.open = Open::Call { chat_index, output_index, call_id, name, arguments: String::new() };
        }
        let delta = function.and_then(|f| f.get("arguments")).and_then(Value::as_str).unwrap_or_default();
        if let (false, Open::Call { output_index, call_id, arguments, .. }) = (delta.is_empty(), &mut self.open) {
            arguments.push_str(delta);
            let item_id = format!("fc_{}", call_id.as_str().unwrap_or_default());
            let event = json!({"item_id": item_id, "output_index": output_index, "delta": delta});
            self.emit("response.function_call_arguments.delta", event, out);
        }
    }
}

impl ChatChunkEvents for ChatToResponseEvents {
    fn on_chunk(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        self.start(Some(chunk), out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.pointer("/choices/0") else { return };
        let delta = choice.get("delta");
        if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str).filter(|t| !t.is_empty()) {
            self.on_text(text, out);
        }
        for call in delta.and_then(|d| d.get("tool_calls")).and_then(Value::as_array).into_iter().flatten() {
            self.on_call(call, out);
        }
        if let Some(finish) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(finish.to_owned());
        }
    }

    fn on_end(&mut self, out: &mut Vec<Bytes>) {
        self.start(None, out);
        self.close(out);
        let status = Status::of(self.finish.as_deref());
        let last = if status == Status::Completed { "response.completed" } else { "response.incomplete" };
        let snapshot = self.snapshot(status, usage(self.usage.as_ref()));
        self.emit(last, json!({"response": snapshot}), out);
    }
}
