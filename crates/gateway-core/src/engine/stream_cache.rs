//! Streams and the cache (SPEC.md "Cache"): a streamed answer is stored as the complete
//! `chat.completion` it adds up to, and a cached answer is replayed to a streaming caller
//! as chunks. Only an answer that ended cleanly is stored; a broken stream stores nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::stream::ChunkStream;
use crate::cache::{Cache, CachedResponse};

/// The chunks of a cached `chat.completion`: per choice a role chunk, the content, one
/// chunk per tool call, the finish chunk; then the usage chunk when asked for. `None`
/// when the body is not a chat completion (then the caller gets a miss).
pub(crate) fn replay(body: &Bytes, include_usage: bool) -> Option<ChunkStream> {
    let answer: Value = crate::json::from_slice(body).ok()?;
    if answer.get("object").and_then(Value::as_str) != Some("chat.completion") {
        return None;
    }
    let envelope = json!({
        "id": answer.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion.chunk",
        "created": answer.get("created").cloned().unwrap_or(Value::Null),
        "model": answer.get("model").cloned().unwrap_or(Value::Null),
    });
    let chunk = |choices: Value| -> Bytes {
        let mut c = envelope.clone();
        c["choices"] = choices;
        Bytes::from(c.to_string())
    };
    let mut out = Vec::new();
    for choice in answer.get("choices").and_then(Value::as_array)? {
        let index = choice.get("index").cloned().unwrap_or(json!(0));
        let message = choice.get("message").cloned().unwrap_or_else(|| json!({}));
        let one = |delta: Value, finish: Value| json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        out.push(chunk(one(json!({"role": "assistant", "content": ""}), Value::Null)));
        if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            out.push(chunk(one(json!({"content": text}), Value::Null)));
        }
        for (i, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let mut call = call.clone();
            call["index"] = json!(i);
            out.push(chunk(one(json!({"tool_calls": [call]}), Value::Null)));
        }
        out.push(chunk(one(json!({}), choice.get("finish_reason").cloned().unwrap_or(json!("stop")))));
    }
    if let Some(usage) = answer.get("usage").filter(|_| include_usage) {
        let mut c = envelope.clone();
        c["choices"] = json!([]);
        c["usage"] = usage.clone();
        out.push(Bytes::from(c.to_string()));
    }
    Some(Box::pin(futures::stream::iter(out.into_iter().map(Ok))))
}

/// Pass `events` through unchanged, and store the answer they add up to once the stream
/// has ended cleanly. A stream longer than `max_bytes` is passed through but not stored
/// (nor assembled past that point, so it holds no more memory than a non-streamed answer).
pub(crate) fn store_when_complete(
    events: ChunkStream,
    cache: Arc<dyn Cache>,
    key: String,
    ttl: Duration,
    max_bytes: usize,
) -> ChunkStream {
    struct State {
        events: ChunkStream,
        assembler: Option<Assembler>,
        cache: Arc<dyn Cache>,
        key: String,
        ttl: Duration,
        bytes_left: usize,
    }
    let state = State { events, assembler: Some(Assembler::default()), cache, key, ttl, bytes_left: max_bytes };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        match s.events.next().await {
            Some(Ok(chunk)) => {
                match s.bytes_left.checked_sub(chunk.len()) {
                    Some(left) => s.bytes_left = left,
                    None => s.assembler = None,
                }
                if let Some(a) = s.assembler.as_mut() {
                    a.push(&chunk);
                }
                Some((Ok(chunk), s))
            }
            Some(Err(e)) => {
                s.assembler = None; // a broken answer is never stored
                Some((Err(e), s))
            }
            None => {
                if let Some(body) = s.assembler.take().and_then(Assembler::finish) {
                    s.cache.put(&s.key, CachedResponse { body }, s.ttl).await;
                }
                None
            }
        }
    }))
}

/// Adds chunks up into the `chat.completion` they stream.
#[derive(Default)]
struct Assembler {
    envelope: Map<String, Value>,
    choices: BTreeMap<u64, Choice>,
    usage: Option<Value>,
    /// A chunk could not be read: don't store a guess.
    unreadable: bool,
}

#[derive(Default)]
struct Choice {
    content: Option<String>,
    /// Tool calls by their stream index: id, name, arguments so far.
    tool_calls: BTreeMap<u64, (Value, String, String)>,
    finish_reason: Value,
}

impl Assembler {
    fn push(&mut self, chunk: &[u8]) {
        let Ok(Value::Object(chunk)) = crate::json::from_slice::<Value>(chunk) else {
            self.unreadable = true;
            return;
        };
        for key in ["id", "created", "model", "system_fingerprint"] {
            if let Some(v) = chunk.get(key).filter(|v| !v.is_null()) {
                self.envelope.entry(key.to_owned()).or_insert_with(|| v.clone());
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage.clone());
        }
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            let slot = self.choices.entry(choice.get("index").and_then(Value::as_u64).unwrap_or(0)).or_default();
            let delta = choice.get("delta");
            if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) {
                slot.content.get_or_insert_with(String::new).push_str(text);
            }
            for call in delta.and_then(|d| d.get("tool_calls")).and_then(Value::as_array).into_iter().flatten() {
                let entry = slot.tool_calls.entry(call.get("index").and_then(Value::as_u64).unwrap_or(0)).or_default();
                if let Some(id) = call.get("id").filter(|v| !v.is_null()) {
                    entry.0 = id.clone();
                }
                let function = call.get("function");
                if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
                    entry.1.push_str(name);
                }
                if let Some(args) = function.and_then(|f| f.get("arguments")).and_then(Value::as_str) {
                    entry.2.push_str(args);
                }
            }
            if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
                slot.finish_reason = reason.clone();
            }
        }
    }

    fn finish(self) -> Option<Bytes> {
        if self.unreadable || self.choices.is_empty() {
            return None;
        }
        let mut answer = self.envelope;
        answer.insert("object".into(), "chat.completion".into());
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .map(|(index, c)| {
                let mut message = json!({"role": "assistant", "content": c.content});
                if !c.tool_calls.is_empty() {
                    let calls: Vec<Value> = c
                        .tool_calls
                        .into_values()
                        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
                        .collect();
                    message["tool_calls"] = calls.into();
                }
                json!({"index": index, "message": message, "logprobs": null, "finish_reason": c.finish_reason})
            })
            .collect();
        answer.insert("choices".into(), choices.into());
        if let Some(usage) = self.usage {
            answer.insert("usage".into(), usage);
        }
        Some(Bytes::from(Value::Object(answer).to_string()))
    }
}
