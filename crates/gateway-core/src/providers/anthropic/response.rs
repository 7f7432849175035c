//! Anthropic Messages answers → OpenAI `chat.completion`, plus the pieces the stream
//! translator shares (finish reasons, usage).

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::providers::ResponseContext;
use crate::providers::structured_output::{ANSWER_TOOL, answers_through_tool};

/// Translate a successful Messages answer. `provider` names the slug in errors
/// (`anthropic`, or `vertex-ai` when the same format comes through Vertex).
pub(crate) fn chat_completion(provider: &str, cx: &ResponseContext<'_>, body: &[u8]) -> Result<Bytes, GatewayError> {
    let answer: Value =
        crate::json::from_slice(body).map_err(|e| GatewayError::invalid_upstream_response(provider, e))?;
    let blocks = answer
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::invalid_upstream_response(provider, "no `content` array"))?;

    let through_tool = answers_through_tool(cx);
    let mut text = String::new();
    let mut answer_json = None;
    let mut tool_calls = Vec::new();
    let mut other_blocks = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default());
                other_blocks.push(block.clone());
            }
            // The JSON answer asked for through the answer tool is the message content.
            Some("tool_use") if through_tool && block.get("name").and_then(Value::as_str) == Some(ANSWER_TOOL) => {
                answer_json = Some(block.get("input").map_or_else(|| "{}".to_owned(), Value::to_string));
            }
            Some("tool_use") => tool_calls.push(json!({
                "id": block.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": block.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
                },
            })),
            _ => other_blocks.push(block.clone()),
        }
    }

    let mut stop_reason = answer.get("stop_reason").and_then(Value::as_str);
    if let Some(json) = answer_json {
        // Any text beside it would make the content unparseable; it stays in the blocks.
        text = json;
        if tool_calls.is_empty() && stop_reason == Some("tool_use") {
            stop_reason = Some("end_turn");
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    let content = if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { Value::String(text) };
    message.insert("content".into(), content);
    if !cx.strict() && !other_blocks.is_empty() {
        // Thinking blocks (with signatures) must be replayable by the caller.
        message.insert("content_blocks".into(), Value::Array(other_blocks));
    }
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }

    let mut usage = Usage::default();
    if let Some(u) = answer.get("usage") {
        usage.merge(u);
    }
    let out = json!({
        "id": answer.get("id").and_then(Value::as_str).unwrap_or(cx.fallback_id),
        "object": "chat.completion",
        "created": cx.created(),
        "model": answer.get("model").and_then(Value::as_str).or_else(|| cx.model()).unwrap_or_default(),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(stop_reason, cx.strict()),
        }],
        "usage": usage.to_openai(),
    });
    Ok(Bytes::from(out.to_string()))
}

/// `stop_reason` → `finish_reason`. Strict mode maps to OpenAI's set (reference 8.2, plus
/// `refusal` → `content_filter` and `model_context_window_exceeded` → `length`, which the
/// reference predates); otherwise the raw value. Missing or unknown → `stop`.
pub(crate) fn finish_reason(stop_reason: Option<&str>, strict: bool) -> Value {
    let Some(raw) = stop_reason else {
        return "stop".into();
    };
    if !strict {
        return raw.into();
    }
    match raw {
        "tool_use" => "tool_calls",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "refusal" => "content_filter",
        _ => "stop",
    }
    .into()
}

/// Token counts as Anthropic reports them. `input_tokens` excludes cached tokens, so
/// they are added back for OpenAI's `prompt_tokens` (which includes them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    input: u64,
    output: u64,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
}

impl Usage {
    /// Take the counts present in an Anthropic `usage` object (stream events carry
    /// cumulative values, so later ones replace earlier ones).
    pub(crate) fn merge(&mut self, usage: &Value) {
        let n = |k: &str| usage.get(k).and_then(Value::as_u64);
        if let Some(v) = n("input_tokens") {
            self.input = v;
        }
        if let Some(v) = n("output_tokens") {
            self.output = v;
        }
        if let Some(v) = n("cache_read_input_tokens") {
            self.cache_read = Some(v);
        }
        if let Some(v) = n("cache_creation_input_tokens") {
            self.cache_creation = Some(v);
        }
    }

    /// The OpenAI `usage` object.
    pub(crate) fn to_openai(self) -> Value {
        let read = self.cache_read.unwrap_or(0);
        let created = self.cache_creation.unwrap_or(0);
        let prompt = self.input + read + created;
        let mut usage =
            super::super::Usage { prompt, completion: self.output, total: None, cached: read, reasoning: None }
                .to_openai();
        // Cache writes cost more than plain input; keep both counts for cost accounting
        // (as Portkey does), only when there is something to report.
        if read > 0 || created > 0 {
            usage["cache_read_input_tokens"] = read.into();
            usage["cache_creation_input_tokens"] = created.into();
        }
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_tokens_count_into_the_prompt() {
        let mut u = Usage::default();
        u.merge(&json!({"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 50,
            "cache_creation_input_tokens": 10}));
        assert_eq!(
            u.to_openai(),
            json!({"prompt_tokens": 160, "completion_tokens": 20, "total_tokens": 180,
                "prompt_tokens_details": {"cached_tokens": 50},
                "cache_read_input_tokens": 50, "cache_creation_input_tokens": 10})
        );
        let mut plain = Usage::default();
        plain.merge(&json!({"input_tokens": 5, "output_tokens": 7}));
        assert_eq!(
            plain.to_openai(),
            json!({"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 0}})
        );
    }

    #[test]
    fn later_stream_usage_replaces_earlier_counts() {
        let mut u = Usage::default();
        u.merge(&json!({"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": null}));
        u.merge(&json!({"output_tokens": 15}));
        assert_eq!(
            u.to_openai(),
            json!({"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40,
                "prompt_tokens_details": {"cached_tokens": 0}})
        );
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("end_turn"), true), "stop");
        assert_eq!(finish_reason(Some("pause_turn"), true), "stop");
        assert_eq!(finish_reason(Some("tool_use"), true), "tool_calls");
        assert_eq!(finish_reason(Some("max_tokens"), true), "length");
        assert_eq!(finish_reason(Some("refusal"), true), "content_filter");
        assert_eq!(finish_reason(Some("something_new"), true), "stop");
        assert_eq!(finish_reason(Some("end_turn"), false), "end_turn");
        assert_eq!(finish_reason(None, false), "stop");
    }
}
