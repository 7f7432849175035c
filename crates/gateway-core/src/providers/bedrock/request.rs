//! OpenAI request → Bedrock request bodies: Converse for chat, the model's own `invoke`
//! format for embeddings (Titan, Cohere).

use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::providers::anthropic::request::{accepts_temperature_with_top_p, stop_sequences};
use crate::providers::structured_output::{AnswerChoice, AnswerTool, ResponseFormat, answer_choice};

/// A body and the caller's parameters it had to leave out.
pub(super) struct Body {
    pub body: Value,
    pub dropped: Vec<String>,
}

/// Chat parameters Converse takes (or that shape the request itself: `model` goes in the
/// URL, `stream` picks the operation, `stream_options` is read when answering).
const CHAT_HANDLED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "stream",
    "stream_options",
];

/// Build the Converse / ConverseStream body.
pub(super) fn converse(params: &Value) -> Result<Body, GatewayError> {
    let mut dropped = unhandled(params, CHAT_HANDLED);
    let messages = params
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::request("messages", "`messages` must be an array"))?;
    let (system, turns) = messages_to_converse(messages)?;

    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(turns.into_iter().map(Turn::into_value).collect()));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let inference = inference_config(params, &mut dropped);
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    let has_tool_blocks = body["messages"].as_array().is_some_and(|turns| {
        turns
            .iter()
            .flat_map(|t| t["content"].as_array().into_iter().flatten())
            .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some())
    });
    let mut tool_config = tool_config(params, has_tool_blocks)?;
    match ResponseFormat::of(params)? {
        ResponseFormat::Text => {}
        ResponseFormat::JsonSchema { schema, name, description } => {
            body.insert("outputConfig".into(), native_output_config(schema, name, description));
        }
        // Converse's structured output needs a schema: any JSON object is asked for
        // through the answer tool.
        format @ ResponseFormat::JsonObject => {
            if let Some(tool) = format.answer_tool()? {
                answer_through_tool(&mut tool_config, tool, answer_choice(params));
            }
        }
    }
    if let Some(tool_config) = tool_config {
        body.insert("toolConfig".into(), tool_config);
    }
    Ok(Body { body: Value::Object(body), dropped })
}

/// Top-level keys the caller sent (non-null) that are not in `handled`.
fn unhandled(params: &Value, handled: &[&str]) -> Vec<String> {
    params
        .as_object()
        .map(|o| o.iter().filter(|(k, v)| !v.is_null() && !handled.contains(&k.as_str())).map(|(k, _)| k.clone()))
        .into_iter()
        .flatten()
        .collect()
}

/// One Converse message under construction.
struct Turn {
    role: &'static str,
    content: Vec<Value>,
}

impl Turn {
    fn into_value(self) -> Value {
        json!({"role": self.role, "content": self.content})
    }
}

/// Converse wants user and assistant turns to alternate, tool results inside a user
/// turn: consecutive messages of one role are merged (tool results and the user text
/// after them become one user turn).
fn push_turn(turns: &mut Vec<Turn>, role: &'static str, content: Vec<Value>) {
    if content.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.content.extend(content),
        _ => turns.push(Turn { role, content }),
    }
}

fn messages_to_converse(messages: &[Value]) -> Result<(Vec<Value>, Vec<Turn>), GatewayError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.extend(text_blocks(content, &path, CachePoints::Kept)?),
            "user" => push_turn(&mut turns, "user", user_blocks(content, &path)?),
            "assistant" => {
                let mut blocks = text_blocks(content, &path, CachePoints::Kept)?;
                blocks.extend(tool_uses(m, &path)?);
                push_turn(&mut turns, "assistant", blocks);
            }
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).ok_or_else(|| {
                    GatewayError::request(format!("{path}.tool_call_id"), "a `tool` message needs `tool_call_id`")
                })?;
                // A tool result's content takes no cache point.
                let result = text_blocks(content, &path, CachePoints::Dropped)?;
                push_turn(&mut turns, "user", vec![json!({"toolResult": {"toolUseId": id, "content": result}})]);
            }
            other => {
                return Err(GatewayError::request(
                    format!("{path}.role"),
                    format!("bedrock does not support the message role `{other}`"),
                ));
            }
        }
    }
    Ok((system, turns))
}

/// Whether a part's `cache_control` becomes a Converse cache point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CachePoints {
    Kept,
    Dropped,
}

/// Anthropic-style prompt caching: a part (or tool) marked with `cache_control` ends a
/// cached prefix, which Converse marks with a `cachePoint` block right after it. A cache
/// point needs content before it.
fn cache_point_after(part: &Value, out: &mut Vec<Value>) {
    if !out.is_empty() && part.get("cache_control").is_some_and(|c| !c.is_null()) {
        out.push(json!({"cachePoint": {"type": "default"}}));
    }
}

/// `{text}` blocks of a string or an array of text parts; empty texts are left out
/// (Converse rejects blank text blocks).
fn text_blocks(content: &Value, path: &str, cache: CachePoints) -> Result<Vec<Value>, GatewayError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({"text": s})]),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                out.extend(text_part(part, &format!("{path}.content[{j}]"))?);
                if cache == CachePoints::Kept {
                    cache_point_after(part, &mut out);
                }
            }
            Ok(out)
        }
        _ => Err(GatewayError::request(format!("{path}.content"), "`content` must be a string or an array of parts")),
    }
}

/// A `text` (or `refusal`) part as a `{text}` block; `None` when empty.
fn text_part(part: &Value, path: &str) -> Result<Option<Value>, GatewayError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
    let text = match kind {
        "text" => part.get("text"),
        "refusal" => part.get("refusal"),
        _ => return Err(GatewayError::request(path, format!("bedrock does not accept a `{kind}` part here"))),
    };
    match text.and_then(Value::as_str) {
        Some("") => Ok(None),
        Some(t) => Ok(Some(json!({"text": t}))),
        None => Err(GatewayError::request(format!("{path}.{kind}"), format!("a {kind} part needs a string `{kind}`"))),
    }
}

fn user_blocks(content: &Value, path: &str) -> Result<Vec<Value>, GatewayError> {
    let Value::Array(parts) = content else {
        return text_blocks(content, path, CachePoints::Kept);
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let part_path = format!("{path}.content[{j}]");
        match part.get("type").and_then(Value::as_str) {
            Some("image_url") => {
                let url =
                    part.get("image_url").and_then(|i| i.get("url").or(Some(i))).and_then(Value::as_str).ok_or_else(
                        || GatewayError::request(format!("{part_path}.image_url.url"), "missing image URL"),
                    )?;
                out.push(image_block(url, &format!("{part_path}.image_url.url"))?);
            }
            _ => out.extend(text_part(part, &part_path)?),
        }
        cache_point_after(part, &mut out);
    }
    Ok(out)
}

/// An image block. Converse takes the bytes inline (or an S3 location); it cannot fetch an
/// https URL, and fetching is I/O this layer does not do.
fn image_block(url: &str, path: &str) -> Result<Value, GatewayError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| GatewayError::request(path, "malformed data URL (no `,` before the data)"))?;
        let mime = meta.strip_suffix(";base64").ok_or_else(|| {
            GatewayError::request(path, "bedrock needs base64 data URLs (`data:image/png;base64,...`)")
        })?;
        let format = image_format(mime).ok_or_else(|| {
            GatewayError::request(
                path,
                format!("bedrock does not support images of type `{mime}` (png, jpeg, gif and webp are supported)"),
            )
        })?;
        return Ok(json!({"image": {"format": format, "source": {"bytes": data}}}));
    }
    if url.starts_with("s3://") {
        let ext = url.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        let format = image_format(&format!("image/{ext}")).ok_or_else(|| {
            GatewayError::request(path, "an S3 image URL must end in .png, .jpg, .jpeg, .gif or .webp")
        })?;
        return Ok(json!({"image": {"format": format, "source": {"s3Location": {"uri": url}}}}));
    }
    Err(GatewayError::request(
        path,
        "bedrock (Converse) does not fetch image URLs: send the image inline as a base64 data URL \
         (`data:image/png;base64,...`) or as an s3:// URI",
    ))
}

fn image_format(mime: &str) -> Option<&'static str> {
    match mime.to_ascii_lowercase().as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

/// Assistant `tool_calls` → `toolUse` blocks (`input` is the parsed arguments object).
fn tool_uses(message: &Value, path: &str) -> Result<Vec<Value>, GatewayError> {
    let Some(calls) = message.get("tool_calls").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(calls.len());
    for (k, call) in calls.iter().enumerate() {
        let call_path = format!("{path}.tool_calls[{k}]");
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| GatewayError::request(format!("{call_path}.id"), "a tool call needs an `id`"))?;
        let function = call.get("function").unwrap_or(&Value::Null);
        let name = function.get("name").and_then(Value::as_str).ok_or_else(|| {
            GatewayError::request(format!("{call_path}.function.name"), "a tool call needs a function name")
        })?;
        let input = match function.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(s)) if s.trim().is_empty() => json!({}),
            Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
                GatewayError::request(
                    format!("{call_path}.function.arguments"),
                    format!("tool call arguments are not valid JSON: {e}"),
                )
            })?,
            Some(other) => other.clone(),
        };
        out.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
    }
    Ok(out)
}

fn inference_config(params: &Value, dropped: &mut Vec<String>) -> Map<String, Value> {
    let mut out = Map::new();
    let model = params.get("model").and_then(Value::as_str).unwrap_or_default();
    let present = |k: &str| params.get(k).filter(|v| !v.is_null());
    if let Some(max) = present("max_completion_tokens").or_else(|| present("max_tokens")) {
        out.insert("maxTokens".into(), max.clone());
    }
    if let Some(t) = present("temperature") {
        out.insert("temperature".into(), t.clone());
    }
    if let Some(p) = present("top_p") {
        // Claude behind Converse keeps Anthropic's rule: models from Opus 4.1 on refuse
        // `temperature` and `top_p` together, so `temperature` wins. Other model families
        // (and ARNs that do not name the model) keep both.
        if out.contains_key("temperature") && model.contains("claude-") && !accepts_temperature_with_top_p(model) {
            dropped.push("top_p".into());
        } else {
            out.insert("topP".into(), p.clone());
        }
    }
    if let Some(stop) = present("stop") {
        // Empty sequences stop nothing (and the Converse reference sets a minimum length
        // of 1), so they go for every model; Claude behind Converse also refuses
        // whitespace-only ones (`"\n"`, common from OpenAI clients).
        let (sequences, removed) = if model.contains("claude-") {
            stop_sequences(stop)
        } else {
            let non_empty = |s: &&Value| s.as_str() != Some("");
            match stop {
                Value::String(s) if s.is_empty() => (json!([]), true),
                Value::String(s) => (json!([s]), false),
                Value::Array(a) => {
                    let kept: Vec<Value> = a.iter().filter(non_empty).cloned().collect();
                    let removed = kept.len() != a.len();
                    (Value::Array(kept), removed)
                }
                other => (other.clone(), false),
            }
        };
        if removed {
            dropped.push("stop".into());
        }
        if sequences.as_array().is_none_or(|s| !s.is_empty()) {
            out.insert("stopSequences".into(), sequences);
        }
    }
    out
}

/// `toolConfig`, or `None` when there are no tools or the caller chose `none`.
///
/// Converse has no "none" choice, so `none` leaves the tools out, except when the history
/// holds toolUse/toolResult blocks: Converse then requires `toolConfig`, so the tools stay
/// and only the choice is left out.
fn tool_config(params: &Value, history_has_tools: bool) -> Result<Option<Value>, GatewayError> {
    let Some(tools) = params.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut specs = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("function");
        if kind != "function" {
            return Err(GatewayError::request(
                format!("tools[{i}].type"),
                format!("bedrock supports only function tools, not `{kind}`"),
            ));
        }
        let function = tool.get("function").unwrap_or(&Value::Null);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| GatewayError::request(format!("tools[{i}].function.name"), "a tool needs a name"))?;
        let mut spec = Map::new();
        spec.insert("name".into(), name.into());
        if let Some(d) = function.get("description").and_then(Value::as_str) {
            spec.insert("description".into(), d.into());
        }
        let schema = function
            .get("parameters")
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        spec.insert("inputSchema".into(), json!({"json": schema}));
        specs.push(json!({"toolSpec": spec}));
        cache_point_after(tool, &mut specs);
    }
    let choice = match params.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" => Some(json!({"any": {}})),
            "none" if history_has_tools => None,
            "none" => return Ok(None),
            other => {
                return Err(GatewayError::request("tool_choice", format!("unknown tool_choice `{other}`")));
            }
        },
        Some(obj) => {
            let name = obj.get("function").and_then(|f| f.get("name")).and_then(Value::as_str).ok_or_else(|| {
                GatewayError::request("tool_choice", "tool_choice must be auto, none, required or {function: {name}}")
            })?;
            Some(json!({"tool": {"name": name}}))
        }
    };
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(specs));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

/// Converse structured output (`outputConfig.textFormat`, the schema as a JSON string).
fn native_output_config(schema: &Value, name: Option<&str>, description: Option<&str>) -> Value {
    let mut def = Map::new();
    def.insert("schema".into(), schema.to_string().into());
    for (key, value) in [("name", name), ("description", description)] {
        if let Some(v) = value {
            def.insert(key.into(), v.into());
        }
    }
    json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": def}}})
}

/// Offer the answer tool in `toolConfig` and make the model call it (or any tool, when the
/// caller's tools are on offer with `auto`); with `required` or a named tool the caller's
/// choice stands and the answer is that tool call.
fn answer_through_tool(config: &mut Option<Value>, tool: AnswerTool, how: AnswerChoice) {
    let choice = match how {
        AnswerChoice::CallersChoice => return,
        AnswerChoice::AnyTool => json!({"any": {}}),
        AnswerChoice::ForceAnswer => json!({"tool": {"name": tool.name}}),
    };
    let spec = json!({"toolSpec": {"name": tool.name, "description": tool.description,
        "inputSchema": {"json": tool.schema}}});
    let config = config.get_or_insert_with(|| json!({"tools": []}));
    if let Some(tools) = config.get_mut("tools").and_then(Value::as_array_mut) {
        tools.push(spec);
    }
    config["toolChoice"] = choice;
}

/// The embedding model families Bedrock serves through `invoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EmbedFamily {
    /// `amazon.titan-embed-text-v1`, `amazon.titan-embed-text-v2:0`, ...
    Titan { v2: bool },
    /// `cohere.embed-english-v3`, `cohere.embed-multilingual-v3`, `cohere.embed-v4:0`.
    Cohere { v4: bool },
}

impl EmbedFamily {
    pub(super) fn of(model: &str) -> Option<Self> {
        // Inference profile ids carry a region prefix (`us.cohere.embed-v4:0`), ARNs a path.
        let base = model.rsplit('/').next().unwrap_or(model);
        if base.contains("amazon.titan-embed") {
            Some(Self::Titan { v2: base.contains("titan-embed-text-v2") })
        } else if base.contains("cohere.embed") {
            Some(Self::Cohere { v4: base.contains("embed-v4") })
        } else {
            None
        }
    }
}

/// The `invoke` body for an embeddings request.
pub(super) fn embeddings(model: &str, params: &Value) -> Result<Body, GatewayError> {
    let family = EmbedFamily::of(model).ok_or_else(|| {
        GatewayError::request(
            "model",
            format!("bedrock embeddings support amazon.titan-embed-* and cohere.embed-* models, not `{model}`"),
        )
    })?;
    let input = params.get("input").unwrap_or(&Value::Null);
    let mut handled = vec!["model", "input", "encoding_format"];
    let mut body = Map::new();
    match family {
        EmbedFamily::Titan { v2 } => {
            let text = match input {
                Value::String(s) => s.as_str(),
                Value::Array(items) if items.len() == 1 && items[0].is_string() => items[0].as_str().unwrap_or(""),
                Value::Array(_) => {
                    return Err(GatewayError::request(
                        "input",
                        "Titan embeds one text per call: send `input` as a single string (or make one request per text)",
                    ));
                }
                _ => return Err(GatewayError::request("input", "`input` must be a string")),
            };
            body.insert("inputText".into(), text.into());
            if v2 && let Some(d) = params.get("dimensions").filter(|d| !d.is_null()) {
                body.insert("dimensions".into(), d.clone());
                handled.push("dimensions");
            }
        }
        EmbedFamily::Cohere { v4 } => {
            let texts: Vec<Value> = match input {
                Value::String(s) => vec![s.as_str().into()],
                Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => items.clone(),
                _ => {
                    return Err(GatewayError::request(
                        "input",
                        "Cohere on bedrock embeds strings: a string or an array of strings",
                    ));
                }
            };
            body.insert("texts".into(), Value::Array(texts));
            let input_type = params.get("input_type").and_then(Value::as_str).unwrap_or("search_document");
            body.insert("input_type".into(), input_type.into());
            handled.push("input_type");
            if v4 && let Some(d) = params.get("dimensions").filter(|d| !d.is_null()) {
                body.insert("output_dimension".into(), d.clone());
                handled.push("dimensions");
            }
        }
    }
    Ok(Body { body: Value::Object(body), dropped: unhandled(params, &handled) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn none_keeps_tools_when_history_has_tool_blocks() {
        let params = json!({
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": "none",
        });
        assert_eq!(tool_config(&params, false).unwrap(), None);
        let kept = tool_config(&params, true).unwrap().unwrap();
        assert!(kept.get("toolChoice").is_none());
        assert_eq!(kept["tools"][0]["toolSpec"]["name"], "f");
    }

    #[test]
    fn consecutive_roles_merge_and_empty_messages_vanish() {
        let messages = json!([
            {"role": "user", "content": "a"},
            {"role": "user", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "c"},
        ]);
        let (_, turns) = messages_to_converse(messages.as_array().unwrap()).unwrap();
        let turns: Vec<Value> = turns.into_iter().map(Turn::into_value).collect();
        assert_eq!(
            Value::Array(turns),
            json!([
                {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                {"role": "assistant", "content": [{"text": "c"}]},
            ])
        );
    }

    #[test]
    fn images() {
        assert_eq!(
            image_block("data:image/jpg;base64,AAAA", "p").unwrap(),
            json!({"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}})
        );
        assert_eq!(
            image_block("s3://bucket/cat.PNG", "p").unwrap(),
            json!({"image": {"format": "png", "source": {"s3Location": {"uri": "s3://bucket/cat.PNG"}}}})
        );
        assert_eq!(image_block("data:image/bmp;base64,AAAA", "p").unwrap_err().param.as_deref(), Some("p"));
        assert!(image_block("data:image/png,raw", "p").is_err());
        assert!(image_block("https://x/cat.png", "p").unwrap_err().message.contains("data URL"));
    }

    #[test]
    fn dropped_params_are_the_ones_sent_and_unsupported() {
        let params = json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 7, "user": "u",
            "n": 1, "logprobs": true, "frequency_penalty": null, "unknown_param": "x",
            "response_format": {"type": "json_object"}, "stream": true, "stream_options": {"include_usage": true},
            "temperature": 1.5,
        });
        let built = converse(&params).unwrap();
        assert_eq!(built.dropped, ["seed", "user", "n", "logprobs", "unknown_param"]);
        assert_eq!(built.body["inferenceConfig"], json!({"temperature": 1.5}), "not clamped");
        assert_eq!(built.body["toolConfig"]["toolChoice"], json!({"tool": {"name": "json_answer"}}), "json_object");

        let schema = json!({"model": "m", "messages": [], "response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}}}});
        let built = converse(&schema).unwrap();
        assert!(built.dropped.is_empty());
        assert_eq!(
            built.body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"],
            "{\"type\":\"object\"}"
        );

        let titan = embeddings(
            "amazon.titan-embed-text-v1",
            &json!({"model": "m", "input": "x", "dimensions": 256, "user": "u"}),
        );
        assert_eq!(titan.unwrap().dropped, ["dimensions", "user"], "v1 has no dimensions");
        let cohere = embeddings(
            "cohere.embed-v4:0",
            &json!({"model": "m", "input": "x", "dimensions": 256, "input_type": "search_query"}),
        );
        let cohere = cohere.unwrap();
        assert!(cohere.dropped.is_empty());
        assert_eq!(cohere.body, json!({"texts": ["x"], "input_type": "search_query", "output_dimension": 256}));
    }

    #[test]
    fn bad_tool_arguments_name_their_path() {
        let params = json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]},
        ]});
        let e = converse(&params).err().unwrap();
        assert_eq!(e.param.as_deref(), Some("messages[1].tool_calls[0].function.arguments"));
        assert_eq!(e.status, 400);
    }

    #[test]
    fn embed_families() {
        assert_eq!(EmbedFamily::of("amazon.titan-embed-text-v2:0"), Some(EmbedFamily::Titan { v2: true }));
        assert_eq!(EmbedFamily::of("amazon.titan-embed-text-v1"), Some(EmbedFamily::Titan { v2: false }));
        assert_eq!(EmbedFamily::of("us.cohere.embed-v4:0"), Some(EmbedFamily::Cohere { v4: true }));
        assert_eq!(EmbedFamily::of("cohere.embed-english-v3"), Some(EmbedFamily::Cohere { v4: false }));
        assert_eq!(EmbedFamily::of("anthropic.claude-3-haiku-20240307-v1:0"), None);
    }
}
