//! An OpenAI chat answer → an OpenAI Responses `response` object, and the pieces the
//! stream translator shares (items, usage, status).

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::{ErrorCode, GatewayError};
use crate::providers::via_chat::unreadable_answer;

/// The request fields a `response` repeats (OpenAI's answers echo them), with OpenAI's
/// defaults for the ones the caller left out.
pub(super) fn echo(request: &Value) -> Map<String, Value> {
    let get = |key: &str| request.get(key).filter(|v| !v.is_null()).cloned();
    let mut echo = Map::new();
    let mut put = |key: &str, value: Value| {
        echo.insert(key.to_owned(), value);
    };
    put("instructions", get("instructions").unwrap_or(Value::Null));
    put("max_output_tokens", get("max_output_tokens").unwrap_or(Value::Null));
    put("metadata", get("metadata").unwrap_or_else(|| json!({})));
    put("parallel_tool_calls", get("parallel_tool_calls").unwrap_or(Value::Bool(true)));
    put("previous_response_id", Value::Null);
    put("reasoning", json!({"effort": null, "summary": null}));
    // Served statelessly: nothing is stored, whatever was asked.
    put("store", Value::Bool(false));
    put("temperature", get("temperature").unwrap_or_else(|| json!(1.0)));
    put("text", get("text").unwrap_or_else(|| json!({"format": {"type": "text"}})));
    put("tool_choice", get("tool_choice").unwrap_or_else(|| json!("auto")));
    put("tools", get("tools").unwrap_or_else(|| json!([])));
    put("top_p", get("top_p").unwrap_or_else(|| json!(1.0)));
    put("truncation", json!("disabled"));
    put("user", get("user").unwrap_or(Value::Null));
    echo
}

/// A `response` object. `usage` is null until the answer is complete.
pub(super) fn response(
    id: &str,
    created_at: &Value,
    model: &Value,
    status: Status,
    output: Vec<Value>,
    usage: Value,
    echo: &Map<String, Value>,
) -> Value {
    let mut out = Map::with_capacity(echo.len() + 10);
    out.insert("id".into(), format!("resp_{id}").into());
    out.insert("object".into(), "response".into());
    out.insert("created_at".into(), created_at.clone());
    out.insert("status".into(), status.as_str().into());
    out.insert("error".into(), Value::Null);
    out.insert(
        "incomplete_details".into(),
        status.incomplete_reason().map_or(Value::Null, |reason| json!({"reason": reason})),
    );
    out.insert("model".into(), model.clone());
    out.insert("output".into(), Value::Array(output));
    out.insert("usage".into(), usage);
    out.extend(echo.iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::Object(out)
}

/// Where a response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Still being streamed.
    InProgress,
    /// Done.
    Completed,
    /// Stopped by the token limit.
    MaxTokens,
    /// Stopped by the provider's content filter.
    ContentFilter,
}

impl Status {
    /// From a chat `finish_reason`.
    pub(super) fn of(finish: Option<&str>) -> Self {
        match finish {
            Some("length") => Self::MaxTokens,
            Some("content_filter") => Self::ContentFilter,
            _ => Self::Completed,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::MaxTokens | Self::ContentFilter => "incomplete",
        }
    }

    fn incomplete_reason(self) -> Option<&'static str> {
        match self {
            Self::MaxTokens => Some("max_output_tokens"),
            Self::ContentFilter => Some("content_filter"),
            _ => None,
        }
    }
}

/// The id of the message item at `output_index`.
pub(super) fn message_id(id: &str, output_index: usize) -> String {
    if output_index == 0 { format!("msg_{id}") } else { format!("msg_{id}_{output_index}") }
}

/// An assistant `message` item holding one content part.
pub(super) fn message_item(id: &str, status: &str, part: Option<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": part.into_iter().collect::<Vec<_>>()})
}

/// An `output_text` content part.
pub(super) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `function_call` item.
pub(super) fn function_call_item(call_id: &Value, name: &Value, arguments: &str, status: &str) -> Value {
    let id = format!("fc_{}", call_id.as_str().unwrap_or_default());
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id, "name": name, "arguments": arguments})
}

/// Chat `usage` → Responses `usage`.
pub(super) fn usage(chat: Option<&Value>) -> Value {
    let Some(u) = chat.filter(|u| u.is_object()) else { return Value::Null };
    let n = |pointer: &str| u.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (n("/prompt_tokens"), n("/completion_tokens"));
    let total = u.get("total_tokens").and_then(Value::as_u64).unwrap_or(input + output);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": n("/prompt_tokens_details/cached_tokens")},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": n("/completion_tokens_details/reasoning_tokens")},
        "total_tokens": total,
    })
}

/// Translate a complete chat answer.
pub(super) fn answer(provider: &str, chat: &[u8], echo: &Map<String, Value>) -> Result<Bytes, GatewayError> {
    let answer: Value = crate::json::from_slice(chat).map_err(|e| unreadable_answer(provider, &e.to_string()))?;
    let choice = answer.pointer("/choices/0").ok_or_else(|| unreadable_answer(provider, "it has no choices"))?;
    let reply = choice.get("message").ok_or_else(|| unreadable_answer(provider, "its choice has no message"))?;
    let id = answer.get("id").and_then(Value::as_str).unwrap_or("gatewise");
    let mut output = Vec::new();
    let refusal = reply.get("refusal").and_then(Value::as_str).filter(|r| !r.is_empty());
    let text = reply.get("content").and_then(Value::as_str).filter(|t| !t.is_empty());
    let part = match (text, refusal) {
        (Some(text), _) => Some(text_part(text)),
        (None, Some(refusal)) => Some(json!({"type": "refusal", "refusal": refusal})),
        (None, None) => None,
    };
    if part.is_some() {
        output.push(message_item(&message_id(id, 0), "completed", part));
    }
    for call in reply.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let function = call.get("function").unwrap_or(&Value::Null);
        let arguments = function.get("arguments").and_then(Value::as_str).unwrap_or("{}");
        output.push(function_call_item(
            call.get("id").unwrap_or(&Value::Null),
            function.get("name").unwrap_or(&Value::Null),
            arguments,
            "completed",
        ));
    }
    let status = Status::of(choice.get("finish_reason").and_then(Value::as_str));
    let created = answer.get("created").cloned().unwrap_or(Value::Null);
    let model = answer.get("model").cloned().unwrap_or(Value::Null);
    let out = response(id, &created, &model, status, output, usage(answer.get("usage")), echo);
    serde_json::to_vec(&out).map(Bytes::from).map_err(|e| GatewayError::new(ErrorCode::Internal, e.to_string()))
}
