//! An OpenAI chat answer → an Anthropic Messages answer.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::{ErrorCode, GatewayError};
use crate::providers::via_chat::unreadable_answer;

/// Chat `finish_reason` → Messages `stop_reason`.
pub(crate) fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Chat `usage` → Messages `usage`: `input_tokens` without the cache reads, which
/// Anthropic counts apart.
pub(crate) fn usage(chat: Option<&Value>) -> Value {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let usage = chat.filter(|u| u.is_object());
    let prompt = n(usage.and_then(|u| u.get("prompt_tokens")));
    let cached = n(usage.and_then(|u| u.pointer("/prompt_tokens_details/cached_tokens")));
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "output_tokens": n(usage.and_then(|u| u.get("completion_tokens"))),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    })
}

/// Translate a complete chat answer.
pub(crate) fn message(provider: &str, chat: &[u8]) -> Result<Bytes, GatewayError> {
    let answer: Value = crate::json::from_slice(chat).map_err(|e| unreadable_answer(provider, &e.to_string()))?;
    let choice = answer.pointer("/choices/0").ok_or_else(|| unreadable_answer(provider, "it has no choices"))?;
    let reply = choice.get("message").ok_or_else(|| unreadable_answer(provider, "its choice has no message"))?;
    let mut content = Vec::new();
    let refusal = reply.get("refusal").and_then(Value::as_str).filter(|r| !r.is_empty());
    if let Some(text) = reply.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()).or(refusal) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in reply.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let function = call.get("function");
        let arguments = function.and_then(|f| f.get("arguments")).and_then(Value::as_str).unwrap_or_default();
        let input: Value = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| unreadable_answer(provider, "a tool call's arguments are not a JSON object"))?
        };
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or(Value::Null),
            "name": function.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null),
            "input": input,
        }));
    }
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let stop = if refusal.is_some() { "refusal" } else { stop_reason(finish) };
    let out = json!({
        "id": answer.get("id").cloned().unwrap_or(Value::Null),
        "type": "message",
        "role": "assistant",
        "model": answer.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage(answer.get("usage")),
    });
    serde_json::to_vec(&out).map(Bytes::from).map_err(|e| GatewayError::new(ErrorCode::Internal, e.to_string()))
}
