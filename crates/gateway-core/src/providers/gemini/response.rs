//! Gemini `GenerateContentResponse` / `BatchEmbedContentsResponse` → the OpenAI shape,
//! and the pieces the stream translator shares: finish reasons, usage, tool-call ids.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::{ErrorCode, GatewayError};
use crate::providers::body_text_message;
use crate::providers::{ResponseContext, code_for_status};

/// Gemini finish reason → OpenAI's, per the reference finish-reason table. Unknown and
/// missing values become `stop`, as the table says.
pub fn map_finish_reason(raw: &str) -> &'static str {
    match raw {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "PROHIBITED_CONTENT"
        | "BLOCKLIST"
        | "SPII"
        | "LANGUAGE"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" => "content_filter",
        _ => "stop",
    }
}

/// The `finish_reason` to report. Gemini says `STOP` after function calls; OpenAI clients
/// loop on `tool_calls`, so an answer with calls that stopped normally says that.
pub fn finish_reason(raw: &str, has_tool_calls: bool, strict: bool) -> Value {
    if !strict {
        return Value::String(raw.to_owned());
    }
    if has_tool_calls && raw == "STOP" {
        return "tool_calls".into();
    }
    map_finish_reason(raw).into()
}

/// `usageMetadata` → OpenAI `usage`. Thinking tokens are output tokens billed as such,
/// so they count in `completion_tokens` (as OpenAI counts reasoning tokens) and are
/// also listed in `completion_tokens_details.reasoning_tokens`.
pub fn usage(meta: &Value) -> Value {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64);
    let prompt = n("promptTokenCount").unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    let completion = n("candidatesTokenCount").unwrap_or(0) + thoughts.unwrap_or(0);
    let total = n("totalTokenCount").unwrap_or(prompt + completion);
    let cached = n("cachedContentTokenCount").unwrap_or(0);
    super::super::Usage { prompt, completion, total: Some(total), cached, reasoning: thoughts }.to_openai()
}

/// Deterministic tool-call ids, unique within an answer and (through the per-request
/// fallback id) across the turns of a conversation: `call_<request>_<n>`.
pub fn tool_call_id(fallback_id: &str, n: usize) -> String {
    let tag = fallback_id.strip_prefix("chatcmpl-").unwrap_or(fallback_id);
    format!("call_{tag}_{n}")
}

/// One OpenAI tool call from a Gemini part holding a `functionCall`.
pub fn tool_call(part: &Value, call: &Value, id: String) -> Value {
    let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
    let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
    let mut out = json!({
        "id": id,
        "type": "function",
        "function": { "name": name, "arguments": args.to_string() },
    });
    add_thought_signature(&mut out, part);
    out
}

/// Gemini 3 rejects a later turn whose `functionCall` parts lack the `thoughtSignature`
/// they were answered with, so it travels with the OpenAI tool call the way Google's own
/// OpenAI-compatible API carries it (`extra_content.google.thought_signature`) and comes
/// back in the request (see `request.rs`). Added in strict mode too: without it the
/// conversation cannot continue, and OpenAI SDKs keep unknown fields.
pub fn add_thought_signature(tool_call: &mut Value, part: &Value) {
    if let (Some(signature), Some(obj)) = (thought_signature(part), tool_call.as_object_mut()) {
        obj.insert("extra_content".into(), json!({ "google": { "thought_signature": signature } }));
    }
}

/// A part's `thoughtSignature`, when it has a usable one.
fn thought_signature(part: &Value) -> Option<&str> {
    part.get("thoughtSignature").and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Whether a part is model "thinking", which is not answer text.
pub fn is_thought(part: &Value) -> bool {
    part.get("thought").and_then(Value::as_bool).unwrap_or(false)
}

/// The answer's id and model: the upstream's when given, else ours.
pub fn id_and_model(v: &Value, cx: &ResponseContext<'_>) -> (String, String) {
    pick_id_and_model(v, cx.fallback_id, cx.model().unwrap_or_default())
}

/// [`id_and_model`] for callers that keep the fallbacks themselves (the stream).
pub fn pick_id_and_model(v: &Value, fallback_id: &str, requested_model: &str) -> (String, String) {
    let id = v.get("responseId").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or(fallback_id);
    let model = v.get("modelVersion").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or(requested_model);
    (id.to_owned(), model.to_owned())
}

/// `generateContent` answer → `chat.completion`.
pub fn chat_completion(provider: &str, cx: &ResponseContext<'_>, body: &[u8]) -> Result<Bytes, GatewayError> {
    let v: Value = crate::json::from_slice(body).map_err(|e| GatewayError::invalid_upstream_response(provider, e))?;
    let (id, model) = id_and_model(&v, cx);
    let mut next_call = 0;
    let mut choices = Vec::new();
    match v.get("candidates").and_then(Value::as_array).filter(|c| !c.is_empty()) {
        Some(candidates) => {
            for (position, candidate) in candidates.iter().enumerate() {
                let index = candidate.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
                let parts =
                    candidate.pointer("/content/parts").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
                let mut text: Option<String> = None;
                let mut calls = Vec::new();
                for part in parts {
                    if let Some(call) = part.get("functionCall") {
                        calls.push(tool_call(part, call, tool_call_id(cx.fallback_id, next_call)));
                        next_call += 1;
                    } else if let Some(t) = part.get("text").and_then(Value::as_str)
                        && !is_thought(part)
                    {
                        text.get_or_insert_with(String::new).push_str(t);
                    }
                }
                let raw = candidate.get("finishReason").and_then(Value::as_str).unwrap_or("STOP");
                let mut message = Map::new();
                message.insert("role".into(), "assistant".into());
                message.insert("content".into(), text.map_or(Value::Null, Value::String));
                let has_calls = !calls.is_empty();
                if has_calls {
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                choices.push(json!({
                    "index": index,
                    "message": message,
                    "logprobs": null,
                    "finish_reason": finish_reason(raw, has_calls, cx.strict()),
                }));
            }
        }
        None => {
            // No candidates: the prompt itself was blocked. Say so the OpenAI way rather
            // than failing, so clients see `content_filter`.
            let Some(block) = v.pointer("/promptFeedback/blockReason").and_then(Value::as_str) else {
                return Err(GatewayError::invalid_upstream_response(provider, "no candidates and no promptFeedback"));
            };
            let reason = if cx.strict() { "content_filter".into() } else { Value::String(block.to_owned()) };
            choices.push(json!({
                "index": 0,
                "message": { "role": "assistant", "content": null },
                "logprobs": null,
                "finish_reason": reason,
            }));
        }
    }
    let mut out = json!({
        "id": id,
        "object": "chat.completion",
        "created": cx.created(),
        "model": model,
        "choices": choices,
    });
    if let (Some(meta), Some(obj)) = (v.get("usageMetadata"), out.as_object_mut()) {
        obj.insert("usage".into(), usage(meta));
    }
    serde_json::to_vec(&out)
        .map(Bytes::from)
        .map_err(|e| GatewayError::new(ErrorCode::Internal, format!("serialising the answer: {e}")))
}

/// `batchEmbedContents` answer → OpenAI embedding list.
pub fn embedding_list(provider: &str, cx: &ResponseContext<'_>, body: &[u8]) -> Result<Bytes, GatewayError> {
    let v: Value = crate::json::from_slice(body).map_err(|e| GatewayError::invalid_upstream_response(provider, e))?;
    let embeddings = v
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::invalid_upstream_response(provider, "no `embeddings`"))?;
    let base64 = cx
        .request
        .body
        .value()
        .and_then(|b| b.get("encoding_format"))
        .and_then(Value::as_str)
        .is_some_and(|f| f == "base64");
    let data: Vec<Value> = embeddings
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let values = e.get("values").cloned().unwrap_or_else(|| json!([]));
            let embedding = if base64 { Value::String(super::super::f32_base64(&values)) } else { values };
            json!({ "object": "embedding", "index": i, "embedding": embedding })
        })
        .collect();
    // batchEmbedContents reports no token counts; zeros keep the OpenAI shape, whose
    // clients expect a `usage` object.
    let out = json!({
        "object": "list",
        "data": data,
        "model": cx.model().unwrap_or_default(),
        "usage": { "prompt_tokens": 0, "total_tokens": 0 },
    });
    serde_json::to_vec(&out)
        .map(Bytes::from)
        .map_err(|e| GatewayError::new(ErrorCode::Internal, format!("serialising the answer: {e}")))
}

/// Which form `error.code` takes in our error body: Google AI Studio keeps the number,
/// Vertex's is stringified (reference 6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeStyle {
    /// `code: 429`.
    Number,
    /// `code: "429"`.
    String,
}

/// Google's `{"error":{"code","message","status"}}` (Vertex streams wrap it in an
/// array) → a [`GatewayError`] with the upstream status, `type` = `status`.
pub fn upstream_error(provider: &str, style: CodeStyle, status: u16, body: &[u8]) -> GatewayError {
    let parsed: Option<Value> = crate::json::from_slice(body).ok();
    let root = match &parsed {
        Some(Value::Array(items)) => items.first(),
        other => other.as_ref(),
    };
    let error = root.and_then(|r| r.get("error")).filter(|e| e.is_object());
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| body_text_message(status, body));
    let mut err = GatewayError::new(code_for_status(status), format!("{provider} error: {message}"))
        .with_status(status)
        .with_provider(provider);
    if let Some(e) = error {
        err.error_type = e.get("status").and_then(Value::as_str).map(str::to_owned);
        err.upstream_code = e.get("code").filter(|c| !c.is_null()).map(|c| match (style, c) {
            (CodeStyle::String, Value::Number(n)) => Value::String(n.to_string()),
            (_, c) => c.clone(),
        });
    }
    err
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("STOP", true, true), json!("tool_calls"));
        assert_eq!(finish_reason("STOP", false, true), json!("stop"));
        assert_eq!(finish_reason("MAX_TOKENS", true, true), json!("length"));
        assert_eq!(finish_reason("SAFETY", false, true), json!("content_filter"));
        assert_eq!(finish_reason("SOMETHING_NEW", false, true), json!("stop"));
        assert_eq!(finish_reason("SAFETY", false, false), json!("SAFETY"));
    }

    #[test]
    fn usage_counts_thoughts_as_completion() {
        let u = usage(&json!({"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 3,
            "totalTokenCount": 18, "cachedContentTokenCount": 4}));
        assert_eq!(
            u,
            json!({"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18,
                "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 3}})
        );
    }

    #[test]
    fn vertex_array_errors_and_string_codes() {
        let body = br#"[{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}]"#;
        let e = upstream_error("vertex-ai", CodeStyle::String, 429, body);
        assert_eq!(e.message, "vertex-ai error: Quota");
        assert_eq!(e.upstream_code, Some(json!("429")));
        assert_eq!(e.error_type.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(e.code, ErrorCode::RateLimited);
    }
}
