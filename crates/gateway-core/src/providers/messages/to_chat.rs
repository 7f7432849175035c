//! An Anthropic Messages request → OpenAI chat parameters, for providers that do not
//! speak Messages themselves.
//!
//! What has no chat equivalent is either reported as dropped (a top-level parameter such
//! as `thinking` or `top_k`, as every translating provider reports its own) or refused
//! with a 400 naming its path (a content block or a server tool: leaving those out would
//! change what the model is asked, silently).

use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::providers::via_chat::{ChatDialect, ChatParams};

/// Top-level Messages parameters translated here.
const HANDLED: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    // Structured outputs: `output_config.format` (its other fields are reported dropped)
    // and the beta's `output_format`.
    "output_config",
    "output_format",
];

/// Translate a Messages request body.
pub(crate) fn chat_params(messages: &Value, dialect: ChatDialect) -> Result<ChatParams, GatewayError> {
    let obj =
        messages.as_object().ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
    let get = |key: &str| obj.get(key).filter(|v| !v.is_null());
    let mut body = Map::new();
    let mut dropped = Vec::new();
    if let Some(model) = get("model") {
        body.insert("model".into(), model.clone());
    }
    let mut out = Vec::new();
    if let Some(system) = get("system") {
        out.push(json!({"role": "system", "content": system_content(system)?}));
    }
    let list = get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::request("messages", "`messages` must be an array"))?;
    for (i, message) in list.iter().enumerate() {
        convert_message(message, i, &mut out)?;
    }
    body.insert("messages".into(), Value::Array(out));

    let max_tokens = get("max_tokens").filter(|v| v.is_u64()).ok_or_else(|| {
        GatewayError::request("max_tokens", "`max_tokens` is required and must be a positive integer")
    })?;
    let key = if dialect.max_completion_tokens { "max_completion_tokens" } else { "max_tokens" };
    body.insert(key.into(), max_tokens.clone());
    for key in ["temperature", "top_p"] {
        if let Some(v) = get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    if let Some(top_k) = get("top_k") {
        if dialect.openai_family {
            dropped.push("top_k".to_owned());
        } else {
            body.insert("top_k".into(), top_k.clone());
        }
    }
    if let Some(stop) = get("stop_sequences") {
        body.insert("stop".into(), stop.clone());
    }
    if let Some(user) = get("metadata").and_then(|m| m.get("user_id")).filter(|u| u.is_string()) {
        body.insert("user".into(), user.clone());
    }
    if let Some(stream) = get("stream") {
        body.insert("stream".into(), stream.clone());
        if stream.as_bool() == Some(true) && dialect.openai_family {
            // The answer's usage ends the Messages stream (`message_delta`).
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    let tools = get("tools").map(convert_tools).transpose()?;
    let has_tools = tools.as_ref().is_some_and(|t| !t.is_empty());
    if let Some(tools) = tools {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = get("tool_choice") {
        let (choice, parallel) = convert_tool_choice(choice)?;
        if let Some(choice) = choice {
            body.insert("tool_choice".into(), choice);
        }
        if parallel == Some(false) && has_tools {
            body.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    let output_config = get("output_config").and_then(Value::as_object);
    if let Some(other) = output_config.and_then(|c| c.keys().find(|k| k.as_str() != "format")) {
        dropped.push(format!("output_config.{other}"));
    }
    let format = output_config.and_then(|c| c.get("format")).or_else(|| get("output_format"));
    if let Some(format) = format.filter(|f| !f.is_null()) {
        let at = if get("output_format").is_some() { "output_format" } else { "output_config.format" };
        body.insert("response_format".into(), response_format(format, at)?);
    }
    dropped.extend(obj.iter().filter(|(k, v)| !v.is_null() && !HANDLED.contains(&k.as_str())).map(|(k, _)| k.clone()));
    Ok(ChatParams { body: Value::Object(body), dropped })
}

/// `system`: a string, or text blocks (kept as text parts).
/// Anthropic's structured-output format → OpenAI's `response_format`. Anthropic decodes
/// to the schema exactly, which is OpenAI's `strict`.
fn response_format(format: &Value, at: &str) -> Result<Value, GatewayError> {
    if format.get("type").and_then(Value::as_str) != Some("json_schema") {
        return Err(GatewayError::request(format!("{at}.type"), "the output format's type must be `json_schema`"));
    }
    let schema = format.get("schema").filter(|s| s.is_object()).ok_or_else(|| {
        GatewayError::request(format!("{at}.schema"), "a json_schema output format needs a `schema` object")
    })?;
    Ok(json!({"type": "json_schema", "json_schema": {"name": "output", "strict": true, "schema": schema}}))
}

fn system_content(system: &Value) -> Result<Value, GatewayError> {
    match system {
        Value::String(_) => Ok(system.clone()),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                let text = block
                    .get("text")
                    .filter(|_| block.get("type").and_then(Value::as_str) == Some("text"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| GatewayError::request(format!("system[{j}]"), "a system block must be text"))?;
                parts.push(json!({"type": "text", "text": text}));
            }
            Ok(Value::Array(parts))
        }
        _ => Err(GatewayError::request("system", "`system` must be a string or an array of text blocks")),
    }
}

/// One Messages message → chat messages. A user message's tool results become `tool`
/// messages, placed first: chat wants them right after the assistant's tool calls.
fn convert_message(message: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), GatewayError> {
    let path = |rest: &str| format!("messages[{i}]{rest}");
    let role = message
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| GatewayError::request(path(".role"), "`role` must be a string"))?;
    if role != "user" && role != "assistant" {
        return Err(GatewayError::request(path(".role"), format!("`role` must be user or assistant, not `{role}`")));
    }
    let blocks = match message.get("content") {
        Some(Value::String(text)) => {
            out.push(json!({"role": role, "content": text}));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => return Err(GatewayError::request(path(".content"), "`content` must be a string or an array of blocks")),
    };
    if role == "assistant" {
        out.push(assistant_message(blocks, &path)?);
        return Ok(());
    }
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = path(&format!(".content[{j}]"));
        match block_type(block, &at)? {
            "tool_result" => out.push(tool_message(block, &at)?),
            _ => parts.push(user_part(block, &at)?),
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn block_type<'a>(block: &'a Value, at: &str) -> Result<&'a str, GatewayError> {
    block.get("type").and_then(Value::as_str).ok_or_else(|| GatewayError::request(at, "a content block needs a `type`"))
}

fn untranslatable(at: &str, kind: &str) -> GatewayError {
    GatewayError::request(
        at,
        format!("a `{kind}` block has no equivalent at this provider; send it to a Claude provider"),
    )
}

/// A user content block as a chat content part.
fn user_part(block: &Value, at: &str) -> Result<Value, GatewayError> {
    let kind = block_type(block, at)?;
    match kind {
        "text" => Ok(json!({"type": "text", "text": text_of(block, at)?})),
        "image" => Ok(json!({"type": "image_url", "image_url": {"url": source_url(block, at)?}})),
        "document" => document_part(block, at),
        other => Err(untranslatable(at, other)),
    }
}

fn text_of<'a>(block: &'a Value, at: &str) -> Result<&'a str, GatewayError> {
    block.get("text").and_then(Value::as_str).ok_or_else(|| GatewayError::request(format!("{at}.text"), "missing text"))
}

/// An image source as a URL: `url` as is, `base64` as a data URL.
fn source_url(block: &Value, at: &str) -> Result<String, GatewayError> {
    let source = block.get("source").ok_or_else(|| GatewayError::request(format!("{at}.source"), "missing source"))?;
    let field = |k: &str| source.get(k).and_then(Value::as_str);
    match field("type") {
        Some("url") => field("url")
            .map(str::to_owned)
            .ok_or_else(|| GatewayError::request(format!("{at}.source.url"), "missing url")),
        Some("base64") => match (field("media_type"), field("data")) {
            (Some(media), Some(data)) => Ok(format!("data:{media};base64,{data}")),
            _ => Err(GatewayError::request(format!("{at}.source"), "a base64 source needs `media_type` and `data`")),
        },
        _ => {
            Err(GatewayError::request(format!("{at}.source.type"), "only `url` and `base64` sources can be translated"))
        }
    }
}

/// A document: plain text becomes text, a base64 PDF a chat `file` part.
fn document_part(block: &Value, at: &str) -> Result<Value, GatewayError> {
    let source = block.get("source").ok_or_else(|| GatewayError::request(format!("{at}.source"), "missing source"))?;
    let field = |k: &str| source.get(k).and_then(Value::as_str);
    match (field("type"), field("media_type")) {
        (Some("text"), _) => Ok(json!({"type": "text", "text": field("data").unwrap_or_default()})),
        (Some("base64"), Some(media)) => {
            let name = block.get("title").and_then(Value::as_str).unwrap_or("document.pdf");
            let data = field("data").unwrap_or_default();
            Ok(json!({"type": "file", "file": {"filename": name, "file_data": format!("data:{media};base64,{data}")}}))
        }
        _ => Err(GatewayError::request(
            format!("{at}.source"),
            "only text and base64 documents can be translated for this provider",
        )),
    }
}

/// A `tool_result` block as a `tool` message (its text; images cannot go in one).
fn tool_message(block: &Value, at: &str) -> Result<Value, GatewayError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| GatewayError::request(format!("{at}.tool_use_id"), "missing tool_use_id"))?;
    let text = match block.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (k, part) in parts.iter().enumerate() {
                let at = format!("{at}.content[{k}]");
                match block_type(part, &at)? {
                    "text" => texts.push(text_of(part, &at)?),
                    other => return Err(untranslatable(&at, other)),
                }
            }
            texts.join("\n")
        }
        Some(_) => return Err(GatewayError::request(format!("{at}.content"), "must be a string or blocks")),
    };
    let error = block.get("is_error").and_then(Value::as_bool) == Some(true);
    let content = if error { format!("Error: {text}") } else { text };
    Ok(json!({"role": "tool", "tool_call_id": id, "content": content}))
}

/// An assistant message: its text joined, its `tool_use` blocks as tool calls. Thinking
/// blocks are the model's own scratch work, signed for Claude; other models cannot read
/// them, so they stay out.
fn assistant_message(blocks: &[Value], path: &dyn Fn(&str) -> String) -> Result<Value, GatewayError> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = path(&format!(".content[{j}]"));
        match block_type(block, &at)? {
            "text" => text.push_str(text_of(block, &at)?),
            "tool_use" => {
                let field = |k: &str| block.get(k).and_then(Value::as_str);
                let (Some(id), Some(name)) = (field("id"), field("name")) else {
                    return Err(GatewayError::request(at, "a tool_use block needs `id` and `name`"));
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(
                    json!({"id": id, "type": "function", "function": {"name": name, "arguments": input.to_string()}}),
                );
            }
            "thinking" | "redacted_thinking" => {}
            other => return Err(untranslatable(&at, other)),
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Ok(message)
}

/// Client tools as chat functions. Anthropic's server tools (web search, code execution,
/// ...) run at Anthropic and cannot be translated.
fn convert_tools(tools: &Value) -> Result<Vec<Value>, GatewayError> {
    let list = tools.as_array().ok_or_else(|| GatewayError::request("tools", "`tools` must be an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        if let Some(kind) = tool.get("type").and_then(Value::as_str).filter(|k| *k != "custom") {
            return Err(GatewayError::request(
                format!("{at}.type"),
                format!("`{kind}` is an Anthropic server tool; only Claude providers run it"),
            ));
        }
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| GatewayError::request(format!("{at}.name"), "a tool needs a `name`"))?;
        let mut function = json!({"name": name, "parameters": tool.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"}))});
        if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
            function["description"] = description.clone();
        }
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(out)
}

/// `tool_choice` → chat's, and `disable_parallel_tool_use` → `parallel_tool_calls`.
fn convert_tool_choice(choice: &Value) -> Result<(Option<Value>, Option<bool>), GatewayError> {
    let parallel = choice.get("disable_parallel_tool_use").and_then(Value::as_bool).map(|d| !d);
    let converted = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| GatewayError::request("tool_choice.name", "a `tool` choice needs a `name`"))?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => return Err(GatewayError::request("tool_choice.type", "`type` must be auto, any, tool or none")),
    };
    Ok((Some(converted), parallel))
}
