//! `streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk` payloads.
//!
//! Every SSE event is a whole `GenerateContentResponse` holding the new parts. The
//! answer is complete when each candidate seen has a `finishReason` (or the prompt was
//! blocked); an upstream that closes before that was cut short. Gemini sends
//! `usageMetadata` on many events, cumulatively, so the last one seen is reported once,
//! after the finish chunk, and only when the caller asked for it.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Value, json};

use super::response::{add_thought_signature, finish_reason, is_thought, pick_id_and_model, tool_call_id, usage};
use crate::error::GatewayError;
use crate::providers::ResponseContext;
use crate::providers::sse_stream::{SseEventHandler, single_choice_chunk, stream_error};
use crate::sse::SseEvent;

/// Per-candidate (per-choice) progress.
#[derive(Debug, Default)]
struct Choice {
    /// Tool calls emitted so far in this choice (the next call's `index`).
    calls: usize,
    finished: bool,
}

/// The event handler for one streamed Gemini answer.
#[derive(Debug)]
pub(crate) struct GeminiEvents {
    provider: &'static str,
    fallback_id: String,
    requested_model: String,
    created: u64,
    strict: bool,
    include_usage: bool,
    /// Fixed by the first event, so every chunk shares them.
    id_model: Option<(String, String)>,
    choices: BTreeMap<u64, Choice>,
    /// Tool calls emitted in the whole answer (for ids).
    total_calls: usize,
    usage: Option<Value>,
    done: bool,
}

impl GeminiEvents {
    /// A handler answering `cx`'s request for `provider`.
    pub(crate) fn new(provider: &'static str, cx: &ResponseContext<'_>) -> Self {
        Self {
            provider,
            fallback_id: cx.fallback_id.to_owned(),
            requested_model: cx.model().unwrap_or_default().to_owned(),
            created: cx.created(),
            strict: cx.strict(),
            include_usage: cx.include_usage(),
            id_model: None,
            choices: BTreeMap::new(),
            total_calls: 0,
            usage: None,
            done: false,
        }
    }

    /// The id and model every chunk carries: the first event's, or ours until it has come.
    fn id_and_model(&self) -> (&str, &str) {
        match &self.id_model {
            Some((id, model)) => (id, model),
            None => (&self.fallback_id, &self.requested_model),
        }
    }

    fn chunk(&self, choices: Value) -> Value {
        let (id, model) = self.id_and_model();
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
            "choices": choices,
        })
    }

    fn delta(&self, index: u64, delta: Value, finish: Value) -> Bytes {
        let (id, model) = self.id_and_model();
        single_choice_chunk(id, self.created, model, index, delta, finish)
    }

    fn event(&mut self, v: &Value, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        if let Some(meta) = v.get("usageMetadata").filter(|m| m.is_object()) {
            self.usage = Some(usage(meta));
        }
        if self.done {
            return Ok(());
        }
        if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("stream error");
            return Err(stream_error(self.provider, message));
        }
        let candidates = v.get("candidates").and_then(Value::as_array).filter(|c| !c.is_empty());
        let blocked = v.pointer("/promptFeedback/blockReason").and_then(Value::as_str);
        if candidates.is_none() && blocked.is_none() {
            // Usage-only or unknown events carry nothing to translate.
            return Ok(());
        }
        if self.id_model.is_none() {
            self.id_model = Some(pick_id_and_model(v, &self.fallback_id, &self.requested_model));
        }
        let Some(candidates) = candidates else {
            // The prompt was blocked before any output.
            let reason = match (self.strict, blocked) {
                (false, Some(b)) => Value::String(b.to_owned()),
                _ => "content_filter".into(),
            };
            self.start_choice(0, out);
            out.push(self.delta(0, json!({}), reason));
            if let Some(c) = self.choices.get_mut(&0) {
                c.finished = true;
            }
            self.done = true;
            return Ok(());
        };
        for (position, candidate) in candidates.iter().enumerate() {
            let index = candidate.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
            self.start_choice(index, out);
            if self.choices.get(&index).is_some_and(|c| c.finished) {
                continue;
            }
            let parts = candidate.pointer("/content/parts").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            for part in parts {
                if let Some(call) = part.get("functionCall") {
                    self.tool_call(index, part, call, out);
                } else if let Some(text) = part.get("text").and_then(Value::as_str)
                    && !text.is_empty()
                    && !is_thought(part)
                {
                    out.push(self.delta(index, json!({ "content": text }), Value::Null));
                }
            }
            if let Some(raw) = candidate.get("finishReason").and_then(Value::as_str) {
                let has_calls = self.choices.get(&index).is_some_and(|c| c.calls > 0);
                out.push(self.delta(index, json!({}), finish_reason(raw, has_calls, self.strict)));
                if let Some(c) = self.choices.get_mut(&index) {
                    c.finished = true;
                }
            }
        }
        self.done = self.choices.values().all(|c| c.finished);
        Ok(())
    }

    /// The first chunk of a choice announces the assistant role.
    fn start_choice(&mut self, index: u64, out: &mut Vec<Bytes>) {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.choices.entry(index) {
            slot.insert(Choice::default());
            out.push(self.delta(index, json!({ "role": "assistant", "content": "" }), Value::Null));
        }
    }

    /// Gemini sends each call whole. OpenAI clients expect the call's header first (id,
    /// name, empty arguments) and the arguments in later deltas, so it becomes two. The
    /// thought signature rides on the header, where clients assembling a call keep it.
    fn tool_call(&mut self, index: u64, part: &Value, call: &Value, out: &mut Vec<Bytes>) {
        let slot = self.choices.get(&index).map_or(0, |c| c.calls);
        let id = tool_call_id(&self.fallback_id, self.total_calls);
        self.total_calls += 1;
        if let Some(c) = self.choices.get_mut(&index) {
            c.calls += 1;
        }
        let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
        let args = call.get("args").cloned().unwrap_or_else(|| json!({})).to_string();
        let mut header_call =
            json!({ "index": slot, "id": id, "type": "function", "function": { "name": name, "arguments": "" } });
        add_thought_signature(&mut header_call, part);
        let header = json!({ "tool_calls": [header_call] });
        out.push(self.delta(index, header, Value::Null));
        let body = json!({ "tool_calls": [{ "index": slot, "function": { "arguments": args } }] });
        out.push(self.delta(index, body, Value::Null));
    }
}

impl SseEventHandler for GeminiEvents {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| stream_error(self.provider, format!("unreadable stream event ({e})")))?;
        // Vertex may wrap an event in a one-element array.
        let v = match v {
            Value::Array(mut items) if items.len() == 1 => items.swap_remove(0),
            v => v,
        };
        self.event(&v, out)
    }

    fn is_complete(&self) -> bool {
        self.done
    }

    fn cut_short(&self) -> GatewayError {
        stream_error(self.provider, "the stream ended before the answer was complete (no finishReason)")
    }

    /// Usage goes last, once: Gemini repeats it cumulatively and may revise it after the
    /// finish reason.
    fn on_complete(&mut self, out: &mut Vec<Bytes>) {
        if self.include_usage
            && let Some(usage) = self.usage.take()
        {
            let mut chunk = self.chunk(json!([]));
            if let Some(obj) = chunk.as_object_mut() {
                obj.insert("usage".into(), usage);
            }
            out.push(Bytes::from(chunk.to_string()));
        }
    }
}
