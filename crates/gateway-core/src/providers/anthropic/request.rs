//! OpenAI chat parameters → an Anthropic Messages request body.
//!
//! The body is built without `model`: the direct API puts the model in the body, while
//! Anthropic-on-Vertex puts it in the URL (and adds `anthropic_version`), so each caller
//! places it where its API wants it.

use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::providers::structured_output::{AnswerChoice, AnswerTool, ResponseFormat, answer_choice};

/// Parameters this module translates or honours. Anything else the caller sent is left
/// out and reported as dropped.
const HANDLED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stream",
    // Honoured by the stream translator (Anthropic always reports usage).
    "stream_options",
    "user",
    "tools",
    "tool_choice",
    // `false` becomes `tool_choice.disable_parallel_tool_use`.
    "parallel_tool_calls",
    // Anthropic's own extended-thinking object, passed through.
    "thinking",
    // Structured outputs, or the answer tool on models without them.
    "response_format",
];

/// A Messages request body (without `model`) and the parameters left out of it.
#[derive(Debug)]
pub(crate) struct MessagesBody {
    /// The body fields, in a stable order.
    pub(crate) body: Map<String, Value>,
    /// Names of caller parameters Anthropic has no equivalent for.
    pub(crate) dropped: Vec<String>,
}

/// Build the Messages body from OpenAI chat parameters. `model` is only used to pick a
/// default `max_tokens` (the API requires one); it is not written into the body.
pub(crate) fn messages_body(params: &Value, model: &str) -> Result<MessagesBody, GatewayError> {
    let obj = params.as_object().ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
    let get = |key: &str| obj.get(key).filter(|v| !v.is_null());
    let mut body = Map::new();

    let (system, messages) = convert_messages(get("messages"))?;
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(messages));

    // Like OpenAI, `max_completion_tokens` supersedes the older `max_tokens`.
    let max_tokens = get("max_completion_tokens").or_else(|| get("max_tokens")).cloned();
    body.insert("max_tokens".into(), max_tokens.unwrap_or_else(|| default_max_tokens(model).into()));

    let mut dropped_here = Vec::new();
    if let Some(t) = get("temperature") {
        body.insert("temperature".into(), clamp_temperature(t));
    }
    for key in ["top_p", "top_k"] {
        if let Some(v) = get(key) {
            if key == "top_p" && body.contains_key("temperature") && !accepts_temperature_with_top_p(model) {
                dropped_here.push(key.to_owned());
                continue;
            }
            body.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = get("stop") {
        let (sequences, removed) = stop_sequences(stop);
        if removed {
            dropped_here.push("stop".to_owned());
        }
        if sequences.as_array().is_none_or(|s| !s.is_empty()) {
            body.insert("stop_sequences".into(), sequences);
        }
    }
    if let Some(stream) = get("stream") {
        body.insert("stream".into(), stream.clone());
    }
    if let Some(user) = get("user") {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    let mut tools = get("tools").map(convert_tools).transpose()?;
    let parallel = get("parallel_tool_calls").and_then(Value::as_bool).unwrap_or(true);
    let has_tools = get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty());
    let mut choice = tool_choice(get("tool_choice"), parallel, has_tools)?;
    match structured_output(params, model)? {
        Structured::Free => {}
        Structured::Native(schema) => {
            body.insert("output_config".into(), json!({ "format": { "type": "json_schema", "schema": schema } }));
        }
        Structured::AnswerTool(tool, how) => {
            if get("thinking").is_some() {
                return Err(GatewayError::request(
                    "response_format",
                    format!(
                        "`{model}` answers in JSON through a forced tool call, which Claude refuses while \
                         thinking: leave out `thinking`, or use a model with structured outputs (Claude Opus 4.1, \
                         Sonnet 4.5 and later)"
                    ),
                ));
            }
            if how != AnswerChoice::CallersChoice {
                let def = json!({ "name": tool.name, "description": tool.description, "input_schema": tool.schema });
                match &mut tools {
                    Some(Value::Array(list)) => list.push(def),
                    _ => tools = Some(Value::Array(vec![def])),
                }
                let mut forced = match how {
                    AnswerChoice::AnyTool => json!({ "type": "any" }),
                    _ => json!({ "type": "tool", "name": tool.name }),
                };
                // One answer: never several calls of the answer tool.
                if !parallel || how == AnswerChoice::ForceAnswer {
                    forced["disable_parallel_tool_use"] = Value::Bool(true);
                }
                choice = Some(forced);
            }
        }
    }
    if let Some(tools) = tools {
        body.insert("tools".into(), tools);
    }
    if let Some(choice) = choice {
        body.insert("tool_choice".into(), choice);
    }
    if let Some(thinking) = get("thinking") {
        body.insert("thinking".into(), thinking.clone());
    }

    let mut dropped: Vec<String> =
        obj.iter().filter(|(k, v)| !v.is_null() && !HANDLED.contains(&k.as_str())).map(|(k, _)| k.clone()).collect();
    dropped.extend(dropped_here);
    Ok(MessagesBody { body, dropped })
}

/// Documented maximum output per model family, most specific prefix first. A newer
/// minor version falls back to its family's entry, which is never above its real limit.
const MAX_OUTPUT: &[(&str, u64)] = &[
    ("claude-opus-4-6", 128_000),
    ("claude-opus-4-5", 64_000),
    ("claude-opus-4", 32_000),
    ("claude-sonnet-4", 64_000),
    ("claude-haiku-4", 64_000),
    ("claude-3-7-sonnet", 64_000),
    ("claude-3-5-sonnet", 8_192),
    ("claude-3-5-haiku", 8_192),
    ("claude-3-opus", 4_096),
    ("claude-3-sonnet", 4_096),
    ("claude-3-haiku", 4_096),
];

/// The default for unknown models: every Claude model accepts at least this many.
const FALLBACK_MAX_OUTPUT: u64 = 4_096;

/// `max_tokens` to send when the caller gave none (SPEC: the model's documented maximum,
/// else 4096). Provider prefixes (`anthropic.`, `publishers/anthropic/models/`) and
/// version suffixes (`@20240620`, `-latest`) do not matter: matching starts at `claude-`.
pub(crate) fn default_max_tokens(model: &str) -> u64 {
    let Some(start) = model.find("claude-") else {
        return FALLBACK_MAX_OUTPUT;
    };
    let name = &model[start..];
    MAX_OUTPUT.iter().find(|(prefix, _)| name.starts_with(prefix)).map_or(FALLBACK_MAX_OUTPUT, |(_, n)| *n)
}

/// OpenAI's `stop` as Anthropic's `stop_sequences`, and whether any were left out.
///
/// Anthropic takes only an array (OpenAI also allows a bare string) and refuses empty and
/// whitespace-only sequences ("each stop sequence must contain non-whitespace"), which
/// OpenAI clients send for line-based stops (`"\n"`). Those are left out rather than
/// failing the request; non-strings pass through for the upstream to name.
pub(crate) fn stop_sequences(stop: &Value) -> (Value, bool) {
    let usable = |s: &Value| s.as_str().is_none_or(|s| !s.trim().is_empty());
    match stop {
        Value::String(s) if usable(stop) => (json!([s]), false),
        Value::String(_) => (json!([]), true),
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter(|s| usable(s)).cloned().collect();
            let removed = kept.len() != items.len();
            (Value::Array(kept), removed)
        }
        other => (other.clone(), false),
    }
}

/// Whether `model` takes `temperature` and `top_p` in one request. Claude models from
/// Opus 4.1 on refuse the pair with a 400 ("cannot both be specified for this model"),
/// while OpenAI clients routinely send both (often `top_p: 1`, a no-op). Only the models
/// known to accept it keep both; for every other model (newer ones, unknown names)
/// `temperature` is kept and `top_p` dropped and reported.
pub(crate) fn accepts_temperature_with_top_p(model: &str) -> bool {
    predates_claude_4_1(model)
}

/// How `response_format` is served for `model`.
enum Structured<'a> {
    /// No JSON asked for.
    Free,
    /// Anthropic's structured outputs (`output_config.format`) with this schema.
    Native(&'a Value),
    /// A forced call of the answer tool (`structured_output`).
    AnswerTool(AnswerTool, AnswerChoice),
}

/// A schema goes to Anthropic's own structured outputs on the models that have them
/// (every Claude from Opus 4.1 and Sonnet 4.5 on); older models, names that are not
/// recognisably Claude's (an alias may be any model) and `json_object` (structured
/// outputs need a schema) get the answer tool, which every Claude model has.
fn structured_output<'a>(params: &'a Value, model: &str) -> Result<Structured<'a>, GatewayError> {
    let format = ResponseFormat::of(params)?;
    Ok(match format {
        ResponseFormat::Text => Structured::Free,
        ResponseFormat::JsonSchema { schema, .. } if model.contains("claude-") && !predates_claude_4_1(model) => {
            Structured::Native(schema)
        }
        _ => match format.answer_tool()? {
            Some(tool) => Structured::AnswerTool(tool, answer_choice(params)),
            None => Structured::Free,
        },
    })
}

/// Claude 4.0 and every model before it (Claude 3.x, 2, Instant, Sonnet 4, Opus 4).
///
/// Provider prefixes (`anthropic.`, `us.anthropic.`) and version suffixes (`-20250514`,
/// `@20250514`, `-v1:0`) do not matter: matching starts at `claude-`.
fn predates_claude_4_1(model: &str) -> bool {
    let Some(start) = model.find("claude-") else {
        return false;
    };
    let name = &model[start..];
    if ["claude-3", "claude-2", "claude-instant"].iter().any(|p| name.starts_with(p)) {
        return true;
    }
    // Claude 4.0 (Sonnet 4, Opus 4) still accepts both; a minor version after the family
    // (`claude-opus-4-1`, `claude-sonnet-4-5`) does not. A date (8 digits) is not a
    // minor version.
    ["claude-sonnet-4", "claude-opus-4"].iter().any(|family| {
        name.strip_prefix(family).is_some_and(|rest| match rest.strip_prefix('-') {
            Some(rest) => {
                let segment = rest.split(['-', '@', ':']).next().unwrap_or_default();
                (segment.len() == 8 && segment.bytes().all(|b| b.is_ascii_digit())) || segment.starts_with('v')
            }
            None => rest.is_empty() || rest.starts_with('@'),
        })
    })
}

/// Anthropic's temperature range is [0, 1] (OpenAI's is [0, 2]); clamp as the reference
/// does rather than let the upstream reject the request. Non-numbers pass untouched so
/// the upstream names the problem.
fn clamp_temperature(t: &Value) -> Value {
    match t.as_f64() {
        Some(x) if x > 1.0 => json!(1),
        Some(x) if x < 0.0 => json!(0),
        _ => t.clone(),
    }
}

/// Split OpenAI messages into Anthropic's top-level `system` blocks and `messages`.
fn convert_messages(messages: Option<&Value>) -> Result<(Vec<Value>, Vec<Value>), GatewayError> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::request("messages", "`messages` must be an array"))?;
    let mut system = Vec::new();
    let mut out: Vec<Value> = Vec::new();
    // Whether the last message in `out` holds tool results, so the next one joins it.
    let mut open_tool_turn = false;
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = message.get("content").filter(|c| !c.is_null());
        match role {
            "system" | "developer" => {
                system.extend(system_blocks(content, &at)?);
                continue;
            }
            "user" => out.push(json!({ "role": "user", "content": user_content(content, &at)? })),
            "assistant" => out.push(json!({ "role": "assistant", "content": assistant_content(message, &at)? })),
            "tool" => {
                let block = tool_result(message, content, &at)?;
                if open_tool_turn && let Some(Value::Array(blocks)) = out.last_mut().and_then(|m| m.get_mut("content"))
                {
                    blocks.push(block);
                    continue;
                }
                out.push(json!({ "role": "user", "content": [block] }));
                open_tool_turn = true;
                continue;
            }
            other => {
                return Err(GatewayError::request(
                    format!("{at}.role"),
                    format!("anthropic does not accept messages with role `{other}`"),
                ));
            }
        }
        open_tool_turn = false;
    }
    Ok((system, out))
}

fn system_blocks(content: Option<&Value>, at: &str) -> Result<Vec<Value>, GatewayError> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![json!({ "type": "text", "text": s })]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.get("text").and_then(Value::as_str).is_none_or(|t| !t.is_empty()))
            .map(|(j, p)| match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(text_block(p)),
                _ => Err(GatewayError::request(
                    format!("{at}.content[{j}]"),
                    "system messages may only hold text parts for anthropic",
                )),
            })
            .collect(),
        Some(_) => Err(GatewayError::request(format!("{at}.content"), "`content` must be a string or an array")),
    }
}

/// A text block, keeping a prompt-caching marker when the caller set one.
fn text_block(part: &Value) -> Value {
    let mut block = json!({ "type": "text", "text": part.get("text").cloned().unwrap_or(Value::Null) });
    if let Some(cache) = part.get("cache_control").filter(|c| !c.is_null()) {
        block["cache_control"] = cache.clone();
    }
    block
}

fn user_content(content: Option<&Value>, at: &str) -> Result<Value, GatewayError> {
    match content {
        None => Ok(Value::String(String::new())),
        Some(Value::String(s)) => Ok(Value::String(s.clone())),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| content_part(p, &format!("{at}.content[{j}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Some(_) => Err(GatewayError::request(format!("{at}.content"), "`content` must be a string or an array")),
    }
}

/// One OpenAI user content part as an Anthropic content block.
fn content_part(part: &Value, at: &str) -> Result<Value, GatewayError> {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => Ok(text_block(part)),
        Some("image_url") => {
            let image = part.get("image_url");
            // Some clients send the URL string directly instead of `{url}`.
            let url = image.and_then(|i| i.get("url").or(Some(i))).and_then(Value::as_str).ok_or_else(|| {
                GatewayError::request(format!("{at}.image_url.url"), "an image part needs `image_url.url`")
            })?;
            let mut block = match parse_data_url(url) {
                Some(Ok((media_type, data))) if media_type == "application/pdf" => {
                    json!({ "type": "document", "source": { "type": "base64", "media_type": media_type, "data": data } })
                }
                Some(Ok((media_type, data))) => {
                    json!({ "type": "image", "source": { "type": "base64", "media_type": media_type, "data": data } })
                }
                Some(Err(msg)) => return Err(GatewayError::request(format!("{at}.image_url.url"), msg)),
                None => json!({ "type": "image", "source": { "type": "url", "url": url } }),
            };
            if let Some(cache) = part.get("cache_control").filter(|c| !c.is_null()) {
                block["cache_control"] = cache.clone();
            }
            Ok(block)
        }
        Some("file") => {
            let file_data = part.get("file").and_then(|f| f.get("file_data")).and_then(Value::as_str);
            match file_data.map(parse_data_url) {
                Some(Some(Ok((media_type, data)))) => Ok(
                    json!({ "type": "document", "source": { "type": "base64", "media_type": media_type, "data": data } }),
                ),
                Some(None) => Ok(json!({ "type": "document", "source": { "type": "url", "url": file_data } })),
                Some(Some(Err(msg))) => Err(GatewayError::request(format!("{at}.file.file_data"), msg)),
                None => Err(GatewayError::request(
                    format!("{at}.file"),
                    "anthropic needs the file inline as `file.file_data` (a data URL); file ids cannot be resolved",
                )),
            }
        }
        other => Err(GatewayError::request(
            format!("{at}.type"),
            format!("anthropic does not accept content parts of type `{}`", other.unwrap_or("(none)")),
        )),
    }
}

/// `data:<media type>;base64,<data>` → (media type, data). `None` when `url` is not a
/// data URL at all (an ordinary URL); `Some(Err)` when it is one we cannot send.
pub(crate) fn parse_data_url(url: &str) -> Option<Result<(&str, &str), &'static str>> {
    let rest = url.strip_prefix("data:")?;
    let Some((meta, data)) = rest.split_once(',') else {
        return Some(Err("a data URL needs a `,` before its data"));
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Some(Err("only base64 data URLs are supported (`data:<type>;base64,...`)"));
    };
    if media_type.is_empty() {
        return Some(Err("a data URL needs a media type (`data:image/png;base64,...`)"));
    }
    Some(Ok((media_type, data)))
}

fn assistant_content(message: &Value, at: &str) -> Result<Value, GatewayError> {
    let tool_calls = message.get("tool_calls").and_then(Value::as_array).filter(|c| !c.is_empty());
    // Non-strict answers carry `content_blocks` (thinking included); sent back, they
    // round-trip exactly, which extended thinking with tools requires.
    let blocks_in = message.get("content_blocks").and_then(Value::as_array);
    let content = message.get("content").filter(|c| !c.is_null());
    if let (None, None, Some(Value::String(s))) = (tool_calls, blocks_in, content) {
        return Ok(Value::String(s.clone()));
    }
    let mut blocks = Vec::new();
    match (blocks_in, content) {
        (Some(given), _) => {
            blocks.extend(given.iter().filter(|b| b.get("type").and_then(Value::as_str) != Some("tool_use")).cloned())
        }
        (None, Some(Value::String(s))) if !s.is_empty() => blocks.push(json!({ "type": "text", "text": s })),
        (None, Some(Value::Array(parts))) => {
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") if part.get("text").and_then(Value::as_str).is_some_and(|t| !t.is_empty()) => {
                        blocks.push(text_block(part))
                    }
                    // A refusal or an empty text has nothing to replay.
                    Some("text" | "refusal") => {}
                    // Anthropic-native blocks (thinking, redacted_thinking) pass as given.
                    _ => blocks.push(part.clone()),
                }
            }
        }
        _ => {}
    }
    for (j, call) in tool_calls.into_iter().flatten().enumerate() {
        let function = call.get("function");
        let name = function.and_then(|f| f.get("name")).and_then(Value::as_str).ok_or_else(|| {
            GatewayError::request(format!("{at}.tool_calls[{j}].function.name"), "a tool call needs a function name")
        })?;
        // Anthropic wants the arguments as an object; unparseable text becomes `{}`
        // rather than failing a whole conversation over one malformed replayed call.
        let input = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        blocks.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or(Value::Null),
            "name": name,
            "input": input,
        }));
    }
    Ok(Value::Array(blocks))
}

fn tool_result(message: &Value, content: Option<&Value>, at: &str) -> Result<Value, GatewayError> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| GatewayError::request(format!("{at}.tool_call_id"), "a tool message needs `tool_call_id`"))?;
    let content = match content {
        None => Value::String(String::new()),
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => Value::Array(
            parts
                .iter()
                .enumerate()
                .map(|(j, p)| content_part(p, &format!("{at}.content[{j}]")))
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(GatewayError::request(format!("{at}.content"), "`content` must be a string or an array"));
        }
    };
    Ok(json!({ "type": "tool_result", "tool_use_id": id, "content": content }))
}

fn convert_tools(tools: &Value) -> Result<Value, GatewayError> {
    let tools = tools.as_array().ok_or_else(|| GatewayError::request("tools", "`tools` must be an array"))?;
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            // Anthropic's own tool definitions (web search, computer use, ...) pass as given.
            out.push(tool.clone());
            continue;
        }
        let function = tool.get("function");
        let name = function.and_then(|f| f.get("name")).and_then(Value::as_str).ok_or_else(|| {
            GatewayError::request(format!("tools[{i}].function.name"), "a function tool needs a name")
        })?;
        let mut schema = function
            .and_then(|f| f.get("parameters"))
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
        // `input_schema.type` is required and must be "object".
        if let Value::Object(s) = &mut schema {
            s.entry("type").or_insert_with(|| "object".into());
        }
        let mut def = json!({ "name": name });
        if let Some(d) = function.and_then(|f| f.get("description")).filter(|d| !d.is_null()) {
            def["description"] = d.clone();
        }
        def["input_schema"] = schema;
        if let Some(cache) = tool.get("cache_control").filter(|c| !c.is_null()) {
            def["cache_control"] = cache.clone();
        }
        out.push(def);
    }
    Ok(Value::Array(out))
}

fn tool_choice(choice: Option<&Value>, parallel: bool, has_tools: bool) -> Result<Option<Value>, GatewayError> {
    let mut out = match choice {
        None if !parallel && has_tools => json!({ "type": "auto" }),
        None => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "none" => json!({ "type": "none" }),
            "required" => json!({ "type": "any" }),
            other => {
                return Err(GatewayError::request("tool_choice", format!("unknown tool_choice `{other}`")));
            }
        },
        Some(obj) => match obj.get("function").and_then(|f| f.get("name")).and_then(Value::as_str) {
            Some(name) => json!({ "type": "tool", "name": name }),
            // Already Anthropic-shaped (`{"type":"any"}`): pass as given.
            None => obj.clone(),
        },
    };
    if !parallel && out.get("type").and_then(Value::as_str) != Some("none") {
        out["disable_parallel_tool_use"] = Value::Bool(true);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn whitespace_stop_sequences_are_left_out() {
        assert_eq!(stop_sequences(&json!("END")), (json!(["END"]), false));
        assert_eq!(stop_sequences(&json!("\n")), (json!([]), true));
        assert_eq!(stop_sequences(&json!(["\n\n", "END", "", " \t"])), (json!(["END"]), true));
        assert_eq!(stop_sequences(&json!(["A", "B"])), (json!(["A", "B"]), false));
        assert_eq!(stop_sequences(&json!([1])), (json!([1]), false));
    }

    #[test]
    fn only_models_before_opus_4_1_take_temperature_with_top_p() {
        for model in [
            "claude-3-5-sonnet-20241022",
            "claude-3-7-sonnet@20250219",
            "claude-3-haiku-20240307",
            "claude-sonnet-4-20250514",
            "claude-sonnet-4@20250514",
            "claude-opus-4-20250514",
            "anthropic.claude-sonnet-4-20250514-v1:0",
            "us.anthropic.claude-opus-4-20250514-v1:0",
            "claude-sonnet-4",
        ] {
            assert!(accepts_temperature_with_top_p(model), "{model}");
        }
        for model in [
            "claude-opus-4-1-20250805",
            "claude-opus-4-1@20250805",
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "claude-opus-4-6",
            "claude-next-model",
            "some-unknown-model",
        ] {
            assert!(!accepts_temperature_with_top_p(model), "{model}");
        }
    }

    #[test]
    fn a_schema_goes_to_structured_outputs_only_on_models_that_have_them() {
        let params = json!({"messages": [], "response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}}}});
        for model in ["claude-sonnet-4-5", "claude-opus-4-1@20250805", "us.anthropic.claude-haiku-4-5-20251001-v1:0"] {
            let body = messages_body(&params, model).unwrap().body;
            assert_eq!(body["output_config"]["format"]["type"], "json_schema", "{model}");
            assert!(body.get("tools").is_none(), "{model}");
        }
        for model in ["claude-3-5-haiku-20241022", "claude-sonnet-4-20250514", "my-finetune"] {
            let body = messages_body(&params, model).unwrap().body;
            assert!(body.get("output_config").is_none(), "{model}");
            assert_eq!(body["tool_choice"]["name"], "json_answer", "{model}");
        }
    }

    #[test]
    fn default_max_tokens_follows_the_model_family() {
        assert_eq!(default_max_tokens("claude-3-5-haiku-20241022"), 8192);
        assert_eq!(default_max_tokens("claude-3-5-sonnet-latest"), 8192);
        assert_eq!(default_max_tokens("claude-3-7-sonnet-20250219"), 64_000);
        assert_eq!(default_max_tokens("claude-sonnet-4-20250514"), 64_000);
        assert_eq!(default_max_tokens("claude-sonnet-4-5"), 64_000);
        assert_eq!(default_max_tokens("claude-opus-4-1-20250805"), 32_000);
        assert_eq!(default_max_tokens("claude-opus-4-5-20251101"), 64_000);
        assert_eq!(default_max_tokens("claude-3-opus-20240229"), 4096);
        assert_eq!(default_max_tokens("claude-3-haiku-20240307"), 4096);
        // Vertex and Bedrock spellings.
        assert_eq!(default_max_tokens("claude-3-5-sonnet-v2@20241022"), 8192);
        assert_eq!(default_max_tokens("anthropic.claude-3-7-sonnet-20250219-v1:0"), 64_000);
        assert_eq!(default_max_tokens("claude-2.1"), 4096);
        assert_eq!(default_max_tokens("my-finetune"), 4096);
    }

    #[test]
    fn data_urls() {
        assert_eq!(parse_data_url("https://x/y.png"), None);
        assert_eq!(parse_data_url("data:image/png;base64,AAA="), Some(Ok(("image/png", "AAA="))));
        assert!(matches!(parse_data_url("data:image/png,AAA="), Some(Err(_))));
        assert!(matches!(parse_data_url("data:;base64,AAA="), Some(Err(_))));
        assert!(matches!(parse_data_url("data:image/png;base64"), Some(Err(_))));
    }

    #[test]
    fn consecutive_tool_results_share_one_user_turn() {
        let params = json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                {"id": "b", "type": "function", "function": {"name": "f", "arguments": "not json"}}
            ]},
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": "2"},
            {"role": "user", "content": "thanks"},
            {"role": "tool", "tool_call_id": "c", "content": "3"}
        ]});
        let body = messages_body(&params, "claude-3-haiku").unwrap().body;
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 5);
        assert_eq!(messages[1]["content"][1]["input"], json!({}));
        assert_eq!(messages[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(messages[2]["content"][1]["tool_use_id"], "b");
        assert_eq!(messages[3]["content"], "thanks");
        assert_eq!(messages[4]["content"][0]["tool_use_id"], "c");
    }

    #[test]
    fn parallel_tool_calls_false_disables_parallel_use() {
        let params = json!({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "parallel_tool_calls": false});
        let body = messages_body(&params, "m").unwrap().body;
        assert_eq!(body["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
        assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object", "properties": {}}));
    }

    #[test]
    fn only_parameters_anthropic_lacks_are_reported_dropped() {
        let params = json!({"model": "m", "messages": [], "stream": true, "stream_options": {"include_usage": true},
            "response_format": {"type": "json_object"}, "seed": 1, "logprobs": true, "parallel_tool_calls": true,
            "frequency_penalty": 0.5, "user": "u"});
        let out = messages_body(&params, "m").unwrap();
        assert_eq!(out.dropped, ["seed", "logprobs", "frequency_penalty"]);
        assert!(out.body.get("response_format").is_none() && out.body.get("stream_options").is_none());
        assert_eq!(out.body["tool_choice"]["name"], "json_answer", "json_object goes through the answer tool");
        assert!(out.body.get("model").is_none(), "the caller places the model");
    }

    #[test]
    fn temperature_is_clamped_and_nulls_are_absent() {
        let params = json!({"messages": [], "temperature": 1.5, "seed": null, "n": 1, "max_tokens": null});
        let out = messages_body(&params, "claude-3-opus").unwrap();
        assert_eq!(out.body["temperature"], json!(1));
        assert_eq!(out.body["max_tokens"], json!(4096));
        assert_eq!(out.dropped, vec!["n".to_owned()]);
    }
}
