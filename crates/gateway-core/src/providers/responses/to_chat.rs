//! An OpenAI Responses request → OpenAI chat parameters, for providers without the
//! Responses API.
//!
//! Served statelessly: what needs OpenAI's store (`previous_response_id`, a
//! `conversation`, `background`, stored prompts, item references, files by id) is refused
//! with a 400 naming it, as are OpenAI's built-in tools; a parameter chat has no place for
//! is reported dropped, as every translating provider reports its own.

use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::providers::via_chat::{ChatDialect, ChatParams};

/// Top-level Responses parameters translated (or refused) here.
const HANDLED: &[&str] = &[
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "stream",
    "user",
    "safety_identifier",
    "store",
    "background",
    "previous_response_id",
    "conversation",
    "prompt",
];

/// Parameters that need OpenAI's server-side state.
const STATEFUL: &[(&str, &str)] = &[
    ("previous_response_id", "continuing a stored response"),
    ("conversation", "a stored conversation"),
    ("prompt", "a stored prompt"),
];

/// Translate a Responses request body.
pub(crate) fn chat_params(request: &Value, dialect: ChatDialect) -> Result<ChatParams, GatewayError> {
    let obj = request.as_object().ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
    let get = |key: &str| obj.get(key).filter(|v| !v.is_null());
    for (key, what) in STATEFUL {
        if get(key).is_some() {
            return Err(GatewayError::request(
                *key,
                format!("{what} needs OpenAI's store; this provider is served statelessly (send the whole input)"),
            ));
        }
    }
    if get("background").and_then(Value::as_bool) == Some(true) {
        return Err(GatewayError::request("background", "background responses need OpenAI's store"));
    }
    let mut body = Map::new();
    let mut dropped = Vec::new();
    if let Some(model) = get("model") {
        body.insert("model".into(), model.clone());
    }

    let mut messages = Vec::new();
    if let Some(instructions) = get("instructions") {
        let text = instructions
            .as_str()
            .ok_or_else(|| GatewayError::request("instructions", "`instructions` must be a string"))?;
        messages.push(json!({"role": "system", "content": text}));
    }
    match get("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                convert_item(item, i, &mut messages, &mut dropped)?;
            }
        }
        _ => return Err(GatewayError::request("input", "`input` must be a string or a list of items")),
    }
    body.insert("messages".into(), Value::Array(messages));

    if let Some(max) = get("max_output_tokens") {
        let key = if dialect.max_completion_tokens { "max_completion_tokens" } else { "max_tokens" };
        body.insert(key.into(), max.clone());
    }
    for key in ["temperature", "top_p", "parallel_tool_calls"] {
        if let Some(v) = get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    if let Some(user) = get("safety_identifier").or_else(|| get("user")) {
        body.insert("user".into(), user.clone());
    }
    if let Some(stream) = get("stream") {
        body.insert("stream".into(), stream.clone());
        if stream.as_bool() == Some(true) && dialect.openai_family {
            // The answer's usage ends the Responses stream (`response.completed`).
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    if let Some(tools) = get("tools") {
        let tools = convert_tools(tools)?;
        if !tools.is_empty() {
            body.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = get("tool_choice") {
        body.insert("tool_choice".into(), convert_tool_choice(choice)?);
    }
    if let Some(text) = get("text") {
        if let Some(format) = text.get("format").filter(|f| !f.is_null())
            && let Some(format) = response_format(format)?
        {
            body.insert("response_format".into(), format);
        }
        if text.get("verbosity").is_some_and(|v| !v.is_null()) {
            dropped.push("text.verbosity".to_owned());
        }
    }
    if let Some(reasoning) = get("reasoning") {
        match reasoning.get("effort").filter(|e| !e.is_null()) {
            Some(effort) if dialect.openai_family => {
                body.insert("reasoning_effort".into(), effort.clone());
            }
            _ => dropped.push("reasoning".to_owned()),
        }
    }
    // Nothing is stored: say so when the caller asked for it.
    if get("store").and_then(Value::as_bool) == Some(true) {
        dropped.push("store".to_owned());
    }
    dropped.extend(obj.iter().filter(|(k, v)| !v.is_null() && !HANDLED.contains(&k.as_str())).map(|(k, _)| k.clone()));
    Ok(ChatParams { body: Value::Object(body), dropped })
}

/// One input item → chat messages. A `function_call` joins the assistant turn just
/// before it, as chat keeps a turn's text and tool calls in one message.
fn convert_item(item: &Value, i: usize, out: &mut Vec<Value>, dropped: &mut Vec<String>) -> Result<(), GatewayError> {
    let at = |field: &str| format!("input[{i}]{field}");
    let kind = match item.get("type").and_then(Value::as_str) {
        Some(kind) => kind,
        None if item.get("role").is_some() => "message",
        None => return Err(GatewayError::request(at(".type"), "an input item needs a `type`")),
    };
    match kind {
        "message" => out.push(message(item, i)?),
        "function_call" => {
            let text = |key: &str| {
                item.get(key).and_then(Value::as_str).ok_or_else(|| {
                    GatewayError::request(at(&format!(".{key}")), format!("a function_call needs `{key}`"))
                })
            };
            let call = json!({"id": text("call_id")?, "type": "function",
                "function": {"name": text("name")?, "arguments": text("arguments")?}});
            match out.last_mut() {
                Some(last) if last["role"] == "assistant" => match last.get_mut("tool_calls") {
                    Some(Value::Array(calls)) => calls.push(call),
                    _ => last["tool_calls"] = json!([call]),
                },
                _ => out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let call_id = item
                .get("call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| GatewayError::request(at(".call_id"), "a function_call_output needs `call_id`"))?;
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect()
                }
                _ => return Err(GatewayError::request(at(".output"), "`output` must be a string or a list of parts")),
            };
            out.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
        }
        // The model's own reasoning from an earlier turn: chat has no place for it.
        "reasoning" => {
            if !dropped.iter().any(|d| d == "input.reasoning") {
                dropped.push("input.reasoning".to_owned());
            }
        }
        "item_reference" => {
            return Err(GatewayError::request(at(".type"), "an item reference needs OpenAI's store"));
        }
        other => {
            return Err(GatewayError::request(
                at(".type"),
                format!("`{other}` items belong to OpenAI's built-in tools; only OpenAI and Azure serve them"),
            ));
        }
    }
    Ok(())
}

/// A `message` item → a chat message.
fn message(item: &Value, i: usize) -> Result<Value, GatewayError> {
    let role = item.get("role").and_then(Value::as_str).unwrap_or_default();
    if !matches!(role, "user" | "system" | "developer" | "assistant") {
        return Err(GatewayError::request(
            format!("input[{i}].role"),
            "role must be user, system, developer or assistant",
        ));
    }
    let content = match item.get("content") {
        Some(Value::String(text)) => Value::String(text.clone()),
        Some(Value::Array(parts)) if role == "assistant" => {
            // Earlier answers: their text (a refusal is text the model said).
            let text: String = parts
                .iter()
                .filter_map(|p| p.get("text").or_else(|| p.get("refusal")).and_then(Value::as_str))
                .collect();
            Value::String(text)
        }
        Some(Value::Array(parts)) => Value::Array(
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| content_part(part, &format!("input[{i}].content[{j}]")))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(GatewayError::request(
                format!("input[{i}].content"),
                "`content` must be a string or a list of parts",
            ));
        }
    };
    Ok(json!({"role": role, "content": content}))
}

/// An input content part → a chat content part.
fn content_part(part: &Value, at: &str) -> Result<Value, GatewayError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
    let by_id = || GatewayError::request(format!("{at}.file_id"), "a file by id needs OpenAI's file store");
    match kind {
        "input_text" | "output_text" | "text" => {
            let text = part
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| GatewayError::request(format!("{at}.text"), "a text part needs `text`"))?;
            Ok(json!({"type": "text", "text": text}))
        }
        "input_image" => {
            if part.get("file_id").is_some_and(|f| !f.is_null()) {
                return Err(by_id());
            }
            let url = part
                .get("image_url")
                .and_then(Value::as_str)
                .ok_or_else(|| GatewayError::request(format!("{at}.image_url"), "an image part needs `image_url`"))?;
            let mut image = json!({"url": url});
            if let Some(detail) = part.get("detail").filter(|d| d.is_string()) {
                image["detail"] = detail.clone();
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        "input_file" => {
            if part.get("file_id").is_some_and(|f| !f.is_null()) {
                return Err(by_id());
            }
            let data = part.get("file_data").and_then(Value::as_str).ok_or_else(|| {
                GatewayError::request(format!("{at}.file_data"), "a file part needs `file_data` (a data URL)")
            })?;
            let mut file = json!({"file_data": data});
            if let Some(name) = part.get("filename").filter(|n| n.is_string()) {
                file["filename"] = name.clone();
            }
            Ok(json!({"type": "file", "file": file}))
        }
        "input_audio" => {
            let audio = part.get("input_audio").filter(|a| a.is_object()).ok_or_else(|| {
                GatewayError::request(format!("{at}.input_audio"), "an audio part needs `input_audio` {data, format}")
            })?;
            Ok(json!({"type": "input_audio", "input_audio": audio}))
        }
        other => Err(GatewayError::request(format!("{at}.type"), format!("unknown content part type `{other}`"))),
    }
}

/// Responses tools (flat: `{type, name, parameters}`) → chat tools (`{type, function}`).
fn convert_tools(tools: &Value) -> Result<Vec<Value>, GatewayError> {
    let tools = tools.as_array().ok_or_else(|| GatewayError::request("tools", "`tools` must be a list"))?;
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = tool
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| GatewayError::request(format!("tools[{i}].name"), "a function tool needs a name"))?;
                let mut function = json!({"name": name});
                for key in ["description", "parameters", "strict"] {
                    if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
                        function[key] = v.clone();
                    }
                }
                out.push(json!({"type": "function", "function": function}));
            }
            other => {
                return Err(GatewayError::request(
                    format!("tools[{i}].type"),
                    format!(
                        "`{}` is one of OpenAI's built-in tools; only OpenAI and Azure run them",
                        other.unwrap_or("(none)")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

fn convert_tool_choice(choice: &Value) -> Result<Value, GatewayError> {
    match choice {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => Ok(choice.clone()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| GatewayError::request("tool_choice.name", "a function tool choice needs a name"))?;
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        _ => Err(GatewayError::request(
            "tool_choice",
            "tool_choice must be auto, none, required or {type: function, name} for this provider",
        )),
    }
}

/// `text.format` → chat's `response_format` (`None` for plain text).
fn response_format(format: &Value) -> Result<Option<Value>, GatewayError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let schema = format.get("schema").filter(|s| s.is_object()).ok_or_else(|| {
                GatewayError::request("text.format.schema", "a json_schema format needs a `schema` object")
            })?;
            let mut spec =
                json!({"name": format.get("name").and_then(Value::as_str).unwrap_or("output"), "schema": schema});
            for key in ["description", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    spec[key] = v.clone();
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": spec})))
        }
        _ => {
            Err(GatewayError::request("text.format.type", "text.format.type must be text, json_object or json_schema"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OPENAI: ChatDialect = ChatDialect { openai_family: true, max_completion_tokens: true };
    const OTHER: ChatDialect = ChatDialect { openai_family: false, max_completion_tokens: true };

    #[test]
    fn a_conversation_with_tool_calls_becomes_chat() {
        let request = json!({"model": "m", "instructions": "Be brief.", "max_output_tokens": 50, "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{\"x\":1}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "reasoning", "id": "rs_1", "summary": []}
        ], "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}, "strict": true}],
           "tool_choice": {"type": "function", "name": "w"}, "text": {"format": {"type": "json_object"}}});
        let out = chat_params(&request, OTHER).unwrap();
        assert_eq!(
            out.body["messages"],
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}},
                    {"id": "c2", "type": "function", "function": {"name": "w", "arguments": "{\"x\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
            ])
        );
        assert_eq!(out.body["max_completion_tokens"], 50);
        assert_eq!(
            out.body["tools"],
            json!([{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}, "strict": true}}])
        );
        assert_eq!(out.body["tool_choice"], json!({"type": "function", "function": {"name": "w"}}));
        assert_eq!(out.body["response_format"], json!({"type": "json_object"}));
        assert_eq!(out.dropped, ["input.reasoning"]);
    }

    #[test]
    fn what_needs_a_store_or_openais_tools_is_refused_by_path() {
        let refused = |request: Value| chat_params(&request, OPENAI).unwrap_err().param.unwrap();
        assert_eq!(refused(json!({"input": "x", "previous_response_id": "resp_1"})), "previous_response_id");
        assert_eq!(refused(json!({"input": "x", "background": true})), "background");
        assert_eq!(refused(json!({"input": [{"type": "item_reference", "id": "msg_1"}]})), "input[0].type");
        assert_eq!(refused(json!({"input": "x", "tools": [{"type": "web_search"}]})), "tools[0].type");
        let by_id = json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]});
        assert_eq!(refused(by_id), "input[0].content[0].file_id");
        assert_eq!(refused(json!({"input": 3})), "input");
    }

    #[test]
    fn sampling_stream_and_what_chat_lacks() {
        let request = json!({"model": "m", "input": "hi", "stream": true, "temperature": 0.2, "store": true,
            "reasoning": {"effort": "low"}, "text": {"verbosity": "low"}, "metadata": {"a": "b"}, "user": "u"});
        let openai = chat_params(&request, OPENAI).unwrap();
        assert_eq!(openai.body["stream_options"], json!({"include_usage": true}));
        assert_eq!(openai.body["reasoning_effort"], "low");
        assert_eq!(openai.body["user"], "u");
        assert_eq!(openai.dropped, ["text.verbosity", "store", "metadata"]);
        let other = chat_params(&request, OTHER).unwrap();
        assert!(other.body.get("stream_options").is_none() && other.body.get("reasoning_effort").is_none());
        assert_eq!(other.dropped, ["text.verbosity", "reasoning", "store", "metadata"]);
    }
}
