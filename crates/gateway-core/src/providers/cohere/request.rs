//! OpenAI chat and embedding parameters → Cohere v2 `/v2/chat` and `/v2/embed` bodies.

use serde_json::{Map, Value, json};

use crate::error::GatewayError;

/// Chat parameters translated or honoured; anything else the caller sent is dropped and
/// reported.
const CHAT_HANDLED: &[&str] = &[
    "model",
    "messages",
    "stream",
    // Honoured by the stream translator (Cohere always reports usage).
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "tools",
    "tool_choice",
    "response_format",
];

/// Cohere's own chat parameters, passed through for callers who target Cohere directly.
const CHAT_PASSTHROUGH: &[&str] =
    &["k", "documents", "citation_options", "safety_mode", "thinking", "priority", "strict_tools"];

/// Embedding parameters translated or honoured.
const EMBED_HANDLED: &[&str] = &["model", "input", "encoding_format", "dimensions"];

/// Cohere's own embedding parameters, passed through.
const EMBED_PASSTHROUGH: &[&str] = &["input_type", "truncate"];

/// `input_type` when the caller gives none: OpenAI has no such notion, and documents
/// for a search index are the common case of a bare embeddings call.
const DEFAULT_INPUT_TYPE: &str = "search_document";

/// Cohere's documented range for `p` (top-p): values outside it are rejected, and
/// OpenAI callers routinely send `top_p: 1`.
const P_RANGE: (f64, f64) = (0.01, 0.99);

/// A request body and the caller parameters left out of it.
#[derive(Debug)]
pub(crate) struct CohereBody {
    /// The body fields.
    pub(crate) body: Map<String, Value>,
    /// Names of caller parameters Cohere has no equivalent for.
    pub(crate) dropped: Vec<String>,
}

/// The `/v2/chat` body for OpenAI chat parameters.
pub(crate) fn chat_body(params: &Value) -> Result<CohereBody, GatewayError> {
    let obj = params.as_object().ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
    let get = |key: &str| obj.get(key).filter(|v| !v.is_null());
    let mut body = Map::new();
    body.insert("model".into(), get("model").cloned().unwrap_or(Value::Null));
    body.insert("messages".into(), convert_messages(get("messages"))?);
    // `stream` is a required field of the v2 API.
    body.insert("stream".into(), get("stream").and_then(Value::as_bool).unwrap_or(false).into());
    if let Some(max) = get("max_completion_tokens").or_else(|| get("max_tokens")) {
        body.insert("max_tokens".into(), max.clone());
    }
    if let Some(t) = get("temperature") {
        body.insert("temperature".into(), t.clone());
    }
    if let Some(p) = get("top_p") {
        body.insert("p".into(), clamp(p, P_RANGE));
    }
    if let Some(stop) = get("stop") {
        let stop = match stop {
            Value::String(s) => json!([s]),
            other => other.clone(),
        };
        body.insert("stop_sequences".into(), stop);
    }
    for key in ["seed", "frequency_penalty", "presence_penalty"] {
        if let Some(v) = get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    if let Some(tools) = get("tools") {
        let (tools, strict) = convert_tools(tools, get("tool_choice"))?;
        body.insert("tools".into(), tools);
        if strict {
            body.insert("strict_tools".into(), true.into());
        }
    }
    if let Some(choice) = tool_choice(get("tool_choice"))? {
        body.insert("tool_choice".into(), choice.into());
    }
    if let Some(format) = get("response_format") {
        body.insert("response_format".into(), response_format(format));
    }
    for key in CHAT_PASSTHROUGH {
        if let Some(v) = get(key) {
            body.insert((*key).into(), v.clone());
        }
    }
    Ok(CohereBody { body, dropped: dropped(obj, &[CHAT_HANDLED, CHAT_PASSTHROUGH]) })
}

/// The `/v2/embed` body for OpenAI embedding parameters.
pub(crate) fn embed_body(params: &Value) -> Result<CohereBody, GatewayError> {
    let obj = params.as_object().ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
    let get = |key: &str| obj.get(key).filter(|v| !v.is_null());
    let texts = match get("input") {
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.clone(),
        _ => {
            return Err(GatewayError::request(
                "input",
                "cohere embeds text only: `input` must be a string or an array of strings",
            ));
        }
    };
    let mut body = Map::new();
    body.insert("model".into(), get("model").cloned().unwrap_or(Value::Null));
    body.insert("texts".into(), Value::Array(texts));
    body.insert("input_type".into(), get("input_type").cloned().unwrap_or_else(|| DEFAULT_INPUT_TYPE.into()));
    // Float vectors are always requested; `encoding_format: base64` is produced from them
    // by the gateway, in OpenAI's float32 layout.
    body.insert("embedding_types".into(), json!(["float"]));
    if let Some(dimensions) = get("dimensions") {
        body.insert("output_dimension".into(), dimensions.clone());
    }
    if let Some(truncate) = get("truncate") {
        body.insert("truncate".into(), truncate.clone());
    }
    Ok(CohereBody { body, dropped: dropped(obj, &[EMBED_HANDLED, EMBED_PASSTHROUGH]) })
}

fn dropped(obj: &Map<String, Value>, known: &[&[&str]]) -> Vec<String> {
    obj.iter()
        .filter(|(k, v)| !v.is_null() && !known.iter().any(|list| list.contains(&k.as_str())))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Clamp a number into `range`, keeping the caller's value untouched when it fits.
fn clamp(v: &Value, (lo, hi): (f64, f64)) -> Value {
    match v.as_f64() {
        Some(x) if x > hi => json!(hi),
        Some(x) if x < lo => json!(lo),
        _ => v.clone(),
    }
}

/// Cohere v2 messages have OpenAI's roles and tool-call shape; what differs is that each
/// role accepts only its own fields (no `name`, no `refusal`, no audio parts).
fn convert_messages(messages: Option<&Value>) -> Result<Value, GatewayError> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::request("messages", "`messages` must be an array"))?;
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let content = message.get("content").filter(|c| !c.is_null());
        let converted = match message.get("role").and_then(Value::as_str).unwrap_or_default() {
            "system" | "developer" => json!({ "role": "system", "content": text_content(content, &at)? }),
            "user" => json!({ "role": "user", "content": user_content(content, &at)? }),
            "assistant" => assistant(message, content, &at)?,
            "tool" => {
                let id = message.get("tool_call_id").and_then(Value::as_str).ok_or_else(|| {
                    GatewayError::request(format!("{at}.tool_call_id"), "a tool message needs `tool_call_id`")
                })?;
                json!({ "role": "tool", "tool_call_id": id, "content": text_content(content, &at)? })
            }
            other => {
                return Err(GatewayError::request(
                    format!("{at}.role"),
                    format!("cohere does not accept messages with role `{other}`"),
                ));
            }
        };
        out.push(converted);
    }
    Ok(Value::Array(out))
}

/// A string, or text parts rebuilt as `{type, text}` (extra fields such as
/// `cache_control` are not part of Cohere's schema).
fn text_content(content: Option<&Value>, at: &str) -> Result<Value, GatewayError> {
    match content {
        None => Ok(Value::String(String::new())),
        Some(Value::String(s)) => Ok(Value::String(s.clone())),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({ "type": "text", "text": p.get("text").cloned().unwrap_or(Value::Null) })),
                other => Err(unsupported_part(other, &format!("{at}.content[{j}]"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Some(_) => Err(GatewayError::request(format!("{at}.content"), "`content` must be a string or an array")),
    }
}

fn user_content(content: Option<&Value>, at: &str) -> Result<Value, GatewayError> {
    let Some(Value::Array(parts)) = content else {
        return text_content(content, at);
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, p)| {
            let part_at = format!("{at}.content[{j}]");
            match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({ "type": "text", "text": p.get("text").cloned().unwrap_or(Value::Null) })),
                Some("image_url") => {
                    // Cohere takes the same `{url, detail}` object, web URL or data URL.
                    let image = p.get("image_url");
                    let url =
                        image.and_then(|i| i.get("url").or(Some(i))).and_then(Value::as_str).ok_or_else(|| {
                            GatewayError::request(
                                format!("{part_at}.image_url.url"),
                                "an image part needs `image_url.url`",
                            )
                        })?;
                    let mut out = json!({ "url": url });
                    if let Some(detail) = image.and_then(|i| i.get("detail")).filter(|d| !d.is_null()) {
                        out["detail"] = detail.clone();
                    }
                    Ok(json!({ "type": "image_url", "image_url": out }))
                }
                other => Err(unsupported_part(other, &part_at)),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn unsupported_part(kind: Option<&str>, at: &str) -> GatewayError {
    GatewayError::request(
        format!("{at}.type"),
        format!("cohere does not accept content parts of type `{}` here", kind.unwrap_or("(none)")),
    )
}

fn assistant(message: &Value, content: Option<&Value>, at: &str) -> Result<Value, GatewayError> {
    let mut out = json!({ "role": "assistant" });
    let content = match content {
        // Refusal parts have no Cohere equivalent and nothing to replay.
        Some(Value::Array(parts)) => {
            let texts: Vec<Value> =
                parts.iter().filter(|p| p.get("type").and_then(Value::as_str) != Some("refusal")).cloned().collect();
            Some(text_content(Some(&Value::Array(texts)), at)?)
        }
        Some(c) => Some(text_content(Some(c), at)?),
        None => None,
    };
    let tool_calls = message.get("tool_calls").and_then(Value::as_array).filter(|c| !c.is_empty());
    match (content, tool_calls.is_some()) {
        // Cohere refuses text beside tool calls ("text content is not allowed when
        // tool_calls are provided ... use 'tool_plan'"); its own answers carry that text
        // as `tool_plan`, so a history from another provider ("Let me check." + a call)
        // replays it there.
        (Some(c), true) => {
            let plan = plain_text(&c);
            if !plan.is_empty() {
                out["tool_plan"] = plan.into();
            }
        }
        (Some(c), false) => out["content"] = c,
        (None, _) => {}
    }
    if let Some(calls) = tool_calls {
        // Cohere v2 tool calls have OpenAI's shape; normalise arguments to a JSON string.
        let calls = calls.iter().map(super::response::openai_tool_call).collect();
        out["tool_calls"] = Value::Array(calls);
    }
    Ok(out)
}

/// The text of a string or of `{type: text}` parts, joined.
fn plain_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect(),
        _ => String::new(),
    }
}

/// OpenAI function tools in Cohere's (identical) shape, minus `strict`, which Cohere
/// sets for all tools at once (`strict_tools`). A named `tool_choice` narrows the list
/// to that tool: Cohere can only require *some* tool, so this is how "this one" is kept.
fn convert_tools(tools: &Value, choice: Option<&Value>) -> Result<(Value, bool), GatewayError> {
    let tools = tools.as_array().ok_or_else(|| GatewayError::request("tools", "`tools` must be an array"))?;
    let named = choice.and_then(|c| c.get("function")).and_then(|f| f.get("name")).and_then(Value::as_str);
    let mut out = Vec::with_capacity(tools.len());
    let mut strict = false;
    for (i, tool) in tools.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(GatewayError::request(format!("tools[{i}].type"), "cohere only offers function tools"));
        }
        let function = tool.get("function");
        let name = function.and_then(|f| f.get("name")).and_then(Value::as_str).ok_or_else(|| {
            GatewayError::request(format!("tools[{i}].function.name"), "a function tool needs a name")
        })?;
        if named.is_some_and(|n| n != name) {
            continue;
        }
        strict |= function.and_then(|f| f.get("strict")).and_then(Value::as_bool).unwrap_or(false);
        let mut def = json!({ "name": name });
        if let Some(d) = function.and_then(|f| f.get("description")).filter(|d| !d.is_null()) {
            def["description"] = d.clone();
        }
        // `parameters` is required by Cohere.
        def["parameters"] = function
            .and_then(|f| f.get("parameters"))
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
        out.push(json!({ "type": "function", "function": def }));
    }
    if let (Some(name), true) = (named, out.is_empty()) {
        return Err(GatewayError::request(
            "tool_choice",
            format!("tool_choice names `{name}`, which is not in `tools`"),
        ));
    }
    Ok((Value::Array(out), strict))
}

fn tool_choice(choice: Option<&Value>) -> Result<Option<&'static str>, GatewayError> {
    match choice {
        None => Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            // Cohere's default is "the model decides": nothing to send.
            "auto" => Ok(None),
            "none" => Ok(Some("NONE")),
            "required" => Ok(Some("REQUIRED")),
            other => Err(GatewayError::request("tool_choice", format!("unknown tool_choice `{other}`"))),
        },
        // A named function: the tool list was narrowed to it, so requiring a tool
        // requires that one.
        Some(obj) if obj.get("function").is_some() => Ok(Some("REQUIRED")),
        Some(_) => Err(GatewayError::request("tool_choice", "tool_choice must be a string or name a function")),
    }
}

/// OpenAI `response_format` → Cohere's: `json_schema` becomes `json_object` with the
/// schema in `json_schema` (Cohere's field holds the bare schema, not OpenAI's wrapper).
fn response_format(format: &Value) -> Value {
    match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => match format.get("json_schema").and_then(|j| j.get("schema")).filter(|s| !s.is_null()) {
            Some(schema) => json!({ "type": "json_object", "json_schema": schema }),
            None => json!({ "type": "json_object" }),
        },
        Some("json_object") => json!({ "type": "json_object" }),
        Some("text") => json!({ "type": "text" }),
        _ => format.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn top_p_is_clamped_into_cohere_range() {
        let body = chat_body(&json!({"model": "m", "messages": [], "top_p": 1})).unwrap().body;
        assert_eq!(body["p"], json!(0.99));
        let body = chat_body(&json!({"model": "m", "messages": [], "top_p": 0.5})).unwrap().body;
        assert_eq!(body["p"], json!(0.5));
        let body = chat_body(&json!({"model": "m", "messages": [], "top_p": 0})).unwrap().body;
        assert_eq!(body["p"], json!(0.01));
    }

    #[test]
    fn named_tool_choice_narrows_the_tool_list() {
        let params = json!({"model": "m", "messages": [],
            "tools": [{"type": "function", "function": {"name": "a"}},
                      {"type": "function", "function": {"name": "b", "strict": true, "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "b"}}});
        let body = chat_body(&params).unwrap().body;
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {"name": "b", "parameters": {"type": "object"}}}])
        );
        assert_eq!(body["tool_choice"], "REQUIRED");
        assert_eq!(body["strict_tools"], true);
        let bad = json!({"model": "m", "messages": [], "tools": [{"type": "function", "function": {"name": "a"}}],
            "tool_choice": {"type": "function", "function": {"name": "zzz"}}});
        assert_eq!(chat_body(&bad).unwrap_err().param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn dropped_params_are_the_ones_cohere_lacks() {
        let params = json!({"model": "m", "messages": [], "user": "u", "n": 1, "logprobs": true, "k": 5,
            "parallel_tool_calls": false, "stream_options": {"include_usage": true}, "seed": null});
        let out = chat_body(&params).unwrap();
        assert_eq!(out.dropped, ["user", "n", "logprobs", "parallel_tool_calls"]);
        assert_eq!(out.body["k"], 5);
        assert_eq!(out.body["stream"], false);
    }

    #[test]
    fn embeddings_take_text_only() {
        let body = embed_body(&json!({"model": "e", "input": "hi"})).unwrap().body;
        assert_eq!(body["texts"], json!(["hi"]));
        assert_eq!(body["input_type"], "search_document");
        assert!(embed_body(&json!({"model": "e", "input": [[1, 2, 3]]})).is_err());
    }
}
