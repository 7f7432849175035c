//! Bedrock answers → the OpenAI shape: Converse → `chat.completion`, Titan / Cohere
//! embeddings → an embedding list, and `{"message"}` errors → [`GatewayError`].

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::request::EmbedFamily;
use super::{NAME, SLUG};
use crate::error::{ErrorCode, GatewayError};
use crate::providers::body_text_message;
use crate::providers::structured_output::{ANSWER_TOOL, answers_through_tool};
use crate::providers::{ResponseContext, code_for_status, effective_params};

/// Converse `stopReason` → OpenAI `finish_reason` (reference 8.2 table). Unknown values
/// become `stop`, as in the reference; `model_context_window_exceeded` is a length stop.
pub(super) fn finish_reason(stop_reason: Option<&str>, strict: bool) -> Value {
    match (stop_reason, strict) {
        (Some(raw), false) => raw.into(),
        (Some("tool_use"), _) => "tool_calls".into(),
        (Some("max_tokens" | "model_context_window_exceeded"), _) => "length".into(),
        (Some("guardrail_intervened" | "content_filtered"), _) => "content_filter".into(),
        _ => "stop".into(),
    }
}

/// Converse `usage` → OpenAI `usage`. `inputTokens` excludes prompt-cache reads and writes
/// (they are counted in `totalTokens`), so both are added back to `prompt_tokens`, and
/// prompt + completion = total as OpenAI clients expect.
pub(super) fn usage(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let input = n("inputTokens").unwrap_or(0);
    let output = n("outputTokens").unwrap_or(0);
    let (read, written) = (n("cacheReadInputTokens").unwrap_or(0), n("cacheWriteInputTokens").unwrap_or(0));
    let prompt = input + read + written;
    let mut usage =
        super::super::Usage { prompt, completion: output, total: n("totalTokens"), cached: read, reasoning: None }
            .to_openai();
    // Cache writes cost more than plain input: both counts are kept, as the Anthropic
    // answer keeps them, when there is something to report.
    if read > 0 || written > 0 {
        usage["cache_read_input_tokens"] = read.into();
        usage["cache_creation_input_tokens"] = written.into();
    }
    usage
}

fn invalid(detail: impl std::fmt::Display) -> GatewayError {
    GatewayError::invalid_upstream_response(SLUG, detail)
}

fn to_bytes(v: &Value) -> Result<Bytes, GatewayError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| GatewayError::new(ErrorCode::Internal, format!("serialising the answer: {e}")))
}

/// A Converse answer as a `chat.completion`. Converse gives no id, so the fallback id is
/// used; the model is the one requested.
pub(super) fn chat(cx: &ResponseContext<'_>, body: &[u8]) -> Result<Bytes, GatewayError> {
    let v: Value = crate::json::from_slice(body).map_err(|e| invalid(format!("not JSON ({e})")))?;
    let blocks = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("no output.message.content"))?;
    // Text blocks are joined with nothing between them, exactly as the streamed deltas
    // concatenate (the reference joins with "\n", which makes the two disagree).
    let through_tool = answers_through_tool(cx);
    let mut text: Option<String> = None;
    let mut answer_json = None;
    let mut tool_calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tu) = block.get("toolUse").filter(|tu| through_tool && tu["name"] == ANSWER_TOOL) {
            // The JSON answer asked for through the answer tool is the message content.
            answer_json =
                Some(tu.get("input").filter(|i| !i.is_null()).map_or_else(|| "{}".to_owned(), Value::to_string));
        } else if let Some(tu) = block.get("toolUse") {
            let arguments = match tu.get("input") {
                None | Some(Value::Null) => "{}".to_owned(),
                Some(input) => input.to_string(),
            };
            tool_calls.push(json!({
                "id": tu.get("toolUseId").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {"name": tu.get("name").cloned().unwrap_or(Value::Null), "arguments": arguments},
            }));
        }
        // reasoningContent, citations, guard content: no OpenAI field to carry them.
    }
    let mut stop_reason = v.get("stopReason").and_then(Value::as_str);
    if answer_json.is_some() {
        text = answer_json;
        if tool_calls.is_empty() && stop_reason == Some("tool_use") {
            stop_reason = Some("end_turn");
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert("content".into(), text.map(Value::String).unwrap_or(Value::Null));
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let mut out = Map::new();
    out.insert("id".into(), cx.fallback_id.into());
    out.insert("object".into(), "chat.completion".into());
    out.insert("created".into(), cx.created().into());
    out.insert("model".into(), cx.model().map(Value::from).unwrap_or(Value::Null));
    out.insert(
        "choices".into(),
        json!([{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(stop_reason, cx.strict()),
        }]),
    );
    if let Some(u) = v.get("usage") {
        out.insert("usage".into(), usage(u));
    }
    to_bytes(&Value::Object(out))
}

/// A Titan or Cohere `invoke` answer as an OpenAI embedding list.
pub(super) fn embeddings(cx: &ResponseContext<'_>, body: &[u8]) -> Result<Bytes, GatewayError> {
    let v: Value = crate::json::from_slice(body).map_err(|e| invalid(format!("not JSON ({e})")))?;
    let model = cx.model().unwrap_or("");
    let params = effective_params(&cx.request.body, cx.settings).unwrap_or(Value::Null);
    let base64 = params.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let (vectors, tokens): (Vec<&Value>, u64) = match EmbedFamily::of(model) {
        Some(EmbedFamily::Titan { .. }) => {
            let e = v.get("embedding").ok_or_else(|| invalid("no `embedding`"))?;
            (vec![e], v.get("inputTextTokenCount").and_then(Value::as_u64).unwrap_or(0))
        }
        Some(EmbedFamily::Cohere { .. }) => {
            // Plain floats, or `{"float": [...]}` when embedding types were requested.
            let e = v.get("embeddings").map(|e| e.get("float").unwrap_or(e));
            let list = e.and_then(Value::as_array).ok_or_else(|| invalid("no `embeddings` list"))?;
            let tokens = v.pointer("/meta/billed_units/input_tokens").and_then(Value::as_u64).unwrap_or(0);
            (list.iter().collect(), tokens)
        }
        None => return Err(invalid(format!("`{model}` is not a known embedding model"))),
    };
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let embedding = if base64 { Value::String(super::super::f32_base64(e)) } else { e.clone() };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    to_bytes(&json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

/// A Bedrock error answer: `{"message": "..."}` (some services spell it `Message`), the
/// error type in the `x-amzn-errortype` header. Type and code are not copied (reference
/// 6.4); the status is kept and mapped to our code.
pub(super) fn upstream_error(status: u16, body: &[u8]) -> GatewayError {
    let parsed: Option<Value> = crate::json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| body_text_message(status, body));
    GatewayError::new(code_for_status(status), format!("{NAME} error: {message}"))
        .with_status(status)
        .with_provider(SLUG)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usage_with_cache() {
        // The reference's observed example: in 10, out 5, total 25, read 6, write 4.
        let u = usage(&json!({
            "inputTokens": 10, "outputTokens": 5, "totalTokens": 25,
            "cacheReadInputTokens": 6, "cacheWriteInputTokens": 4
        }));
        assert_eq!(
            u,
            json!({"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
                   "prompt_tokens_details": {"cached_tokens": 6},
                   "cache_read_input_tokens": 6, "cache_creation_input_tokens": 4})
        );
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("end_turn"), true), "stop");
        assert_eq!(finish_reason(Some("stop_sequence"), true), "stop");
        assert_eq!(finish_reason(Some("tool_use"), true), "tool_calls");
        assert_eq!(finish_reason(Some("max_tokens"), true), "length");
        assert_eq!(finish_reason(Some("guardrail_intervened"), true), "content_filter");
        assert_eq!(finish_reason(Some("content_filtered"), true), "content_filter");
        assert_eq!(finish_reason(Some("something_new"), true), "stop");
        assert_eq!(finish_reason(None, true), "stop");
        assert_eq!(finish_reason(Some("end_turn"), false), "end_turn");
    }
}
