//! Cohere v2 answers → OpenAI `chat.completion` and embedding lists.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::providers::ResponseContext;

use super::SLUG;

/// Translate a `/v2/chat` answer. Cohere names no model in its answers, so the requested
/// one is reported.
pub(crate) fn chat_completion(cx: &ResponseContext<'_>, body: &[u8]) -> Result<Bytes, GatewayError> {
    let answer: Value = crate::json::from_slice(body).map_err(|e| GatewayError::invalid_upstream_response(SLUG, e))?;
    let message = answer.get("message").ok_or_else(|| GatewayError::invalid_upstream_response(SLUG, "no `message`"))?;
    let text = joined_text(message.get("content"));
    let tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| calls.iter().map(openai_tool_call).collect::<Vec<_>>());
    let tool_calls = tool_calls.filter(|c| !c.is_empty());

    let mut out_message = Map::new();
    out_message.insert("role".into(), "assistant".into());
    let content = if text.is_empty() && tool_calls.is_some() { Value::Null } else { Value::String(text) };
    out_message.insert("content".into(), content);
    if let Some(calls) = tool_calls {
        out_message.insert("tool_calls".into(), Value::Array(calls));
    }
    let out = json!({
        "id": answer.get("id").and_then(Value::as_str).unwrap_or(cx.fallback_id),
        "object": "chat.completion",
        "created": cx.created(),
        "model": cx.model().unwrap_or_default(),
        "choices": [{
            "index": 0,
            "message": out_message,
            "logprobs": null,
            "finish_reason": finish_reason(answer.get("finish_reason").and_then(Value::as_str), cx.strict()),
        }],
        "usage": usage(answer.get("usage")),
    });
    Ok(Bytes::from(out.to_string()))
}

/// The text parts of a Cohere content array, joined (thinking parts are not the answer).
fn joined_text(content: Option<&Value>) -> String {
    let mut text = String::new();
    for part in content.and_then(Value::as_array).into_iter().flatten() {
        if part.get("type").and_then(Value::as_str) == Some("text") {
            text.push_str(part.get("text").and_then(Value::as_str).unwrap_or_default());
        }
    }
    text
}

/// A tool call in OpenAI's shape with `arguments` as a JSON string (Cohere's shape is the
/// same, so requests and answers share this).
pub(super) fn openai_tool_call(call: &Value) -> Value {
    let function = call.get("function");
    let arguments = match function.and_then(|f| f.get("arguments")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "{}".to_owned(),
    };
    json!({
        "id": call.get("id").cloned().unwrap_or(Value::Null),
        "type": "function",
        "function": { "name": function.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null), "arguments": arguments },
    })
}

/// Translate a `/v2/embed` answer (`embedding_types: ["float"]`) into OpenAI's list,
/// base64-encoding the vectors when the caller asked for `encoding_format: base64`.
pub(crate) fn embedding_list(cx: &ResponseContext<'_>, body: &[u8]) -> Result<Bytes, GatewayError> {
    let answer: Value = crate::json::from_slice(body).map_err(|e| GatewayError::invalid_upstream_response(SLUG, e))?;
    let vectors = answer
        .get("embeddings")
        .and_then(|e| e.get("float"))
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::invalid_upstream_response(SLUG, "no `embeddings.float` array"))?;
    let base64 = request_param(cx, "encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 { Value::String(super::super::f32_base64(v)) } else { v.clone() };
            json!({ "object": "embedding", "index": i, "embedding": embedding })
        })
        .collect();
    let tokens = answer.pointer("/meta/billed_units/input_tokens").and_then(count).unwrap_or(0);
    let out = json!({
        "object": "list",
        "data": data,
        "model": cx.model().unwrap_or_default(),
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    });
    Ok(Bytes::from(out.to_string()))
}

/// A request parameter as sent upstream (`override_params` win over the body).
fn request_param<'a>(cx: &ResponseContext<'a>, key: &str) -> Option<&'a Value> {
    cx.settings.override_params.get(key).or_else(|| cx.request.body.value().and_then(|v| v.get(key)))
}

/// Cohere `finish_reason` → OpenAI's (reference 8.2) in strict mode, else the raw value.
pub(crate) fn finish_reason(raw: Option<&str>, strict: bool) -> Value {
    let Some(raw) = raw else {
        return "stop".into();
    };
    if !strict {
        return raw.into();
    }
    match raw {
        "MAX_TOKENS" => "length",
        "TOOL_CALL" => "tool_calls",
        // COMPLETE, STOP_SEQUENCE, ERROR, TIMEOUT and anything newer.
        _ => "stop",
    }
    .into()
}

/// Cohere `usage` → OpenAI's. `tokens` counts what the model saw (prompt template
/// included) and is preferred; `billed_units` is the fallback, as in the reference.
pub(crate) fn usage(usage: Option<&Value>) -> Value {
    let pick = |key: &str| {
        usage
            .and_then(|u| u.get("tokens"))
            .and_then(|t| t.get(key))
            .and_then(count)
            .or_else(|| usage.and_then(|u| u.get("billed_units")).and_then(|b| b.get(key)).and_then(count))
            .unwrap_or(0)
    };
    let (prompt, completion) = (pick("input_tokens"), pick("output_tokens"));
    let cached = usage.and_then(|u| u.get("cached_tokens")).and_then(count).unwrap_or(0);
    super::super::Usage { prompt, completion, total: None, cached, reasoning: None }.to_openai()
}

/// Cohere documents its counts as doubles; accept `5` and `5.0` alike.
fn count(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_prefers_tokens_and_reads_doubles() {
        let u = json!({"billed_units": {"input_tokens": 5, "output_tokens": 2},
            "tokens": {"input_tokens": 70.0, "output_tokens": 2}, "cached_tokens": 64});
        assert_eq!(
            usage(Some(&u)),
            json!({"prompt_tokens": 70, "completion_tokens": 2, "total_tokens": 72,
                "prompt_tokens_details": {"cached_tokens": 64}})
        );
        let billed = json!({"billed_units": {"input_tokens": 5, "output_tokens": 2}});
        assert_eq!(
            usage(Some(&billed)),
            json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 0}})
        );
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("COMPLETE"), true), "stop");
        assert_eq!(finish_reason(Some("MAX_TOKENS"), true), "length");
        assert_eq!(finish_reason(Some("TOOL_CALL"), true), "tool_calls");
        assert_eq!(finish_reason(Some("TIMEOUT"), true), "stop");
        assert_eq!(finish_reason(Some("TOOL_CALL"), false), "TOOL_CALL");
    }
}
