//! OpenAI chat and embedding requests → Gemini `GenerateContentRequest` and
//! `BatchEmbedContentsRequest` bodies.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::schema::{clean_schema, is_empty_object};
use crate::error::GatewayError;

/// Chat parameters this transform honours; any other key the caller sent is dropped and
/// reported. `stream` and `stream_options` are honoured by the URL and the translator.
const CHAT_PARAMS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "tools",
    "tool_choice",
    "safety_settings",
];

/// A built body and the caller's parameters it left out.
#[derive(Debug)]
pub struct Built {
    /// The upstream JSON body.
    pub body: Value,
    /// Names of top-level request parameters that were not sent upstream.
    pub dropped: Vec<String>,
}

/// The `GenerateContentRequest` for an OpenAI chat request.
pub fn chat_body(params: &Value) -> Result<Built, GatewayError> {
    let obj = params.as_object().ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::request("messages", "`messages` must be an array"))?;

    let mut body = Map::new();
    let (system, mut contents) = convert_messages(messages)?;
    if model(params).is_ok_and(requires_thought_signatures) {
        sign_unsigned_calls(&mut contents);
    }
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    if let Some(tools) = obj.get("tools").filter(|t| !t.is_null()) {
        let declarations = function_declarations(tools)?;
        if !declarations.is_empty() {
            body.insert("tools".into(), json!([{ "functionDeclarations": declarations }]));
        }
    }
    if let Some(choice) = obj.get("tool_choice").filter(|t| !t.is_null()) {
        body.insert("toolConfig".into(), json!({ "functionCallingConfig": function_calling_config(choice)? }));
    }
    let generation = generation_config(obj)?;
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    if let Some(safety) = obj.get("safety_settings").filter(|s| !s.is_null()) {
        body.insert("safetySettings".into(), safety.clone());
    }
    let dropped = obj.keys().filter(|k| !CHAT_PARAMS.contains(&k.as_str())).cloned().collect();
    Ok(Built { body: Value::Object(body), dropped })
}

/// The model named in the request, without a `models/` prefix.
pub fn model(params: &Value) -> Result<&str, GatewayError> {
    params
        .get("model")
        .and_then(Value::as_str)
        .map(|m| m.strip_prefix("models/").unwrap_or(m))
        .filter(|m| !m.is_empty())
        .ok_or_else(|| GatewayError::request("model", "`model` is required: Gemini takes the model in the URL"))
}

/// The signature Google documents for function calls in histories Gemini did not write
/// (another provider's turns, or a client that lost the signature):
/// <https://ai.google.dev/gemini-api/docs/thought-signatures>.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Gemini 3 models reject a model turn whose first `functionCall` has no
/// `thoughtSignature`; earlier models neither need nor expect one.
fn requires_thought_signatures(model: &str) -> bool {
    model.to_ascii_lowercase().starts_with("gemini-3")
}

/// Gives the first `functionCall` part of each model turn that has none a placeholder
/// signature. Gemini validates only the first call of a step (parallel calls after it
/// are unsigned), so the others stay as they are.
fn sign_unsigned_calls(contents: &mut [Value]) {
    for turn in contents.iter_mut().filter(|t| t.get("role").and_then(Value::as_str) == Some("model")) {
        let Some(Value::Array(parts)) = turn.get_mut("parts") else { continue };
        if let Some(Value::Object(first)) = parts.iter_mut().find(|p| p.get("functionCall").is_some())
            && !first.contains_key("thoughtSignature")
        {
            first.insert("thoughtSignature".into(), SKIP_SIGNATURE.into());
        }
    }
}

/// Appends `parts` as a turn of `role`, merging into the previous turn when it has the
/// same role: consecutive tool results must arrive as one turn answering one model turn.
fn push_turn(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut()
        && last.get("role").and_then(Value::as_str) == Some(role)
        && let Some(Value::Array(existing)) = last.get_mut("parts")
    {
        existing.extend(parts);
        return;
    }
    contents.push(json!({ "role": role, "parts": parts }));
}

/// System text parts and the `contents` turns.
fn convert_messages(messages: &[Value]) -> Result<(Vec<Value>, Vec<Value>), GatewayError> {
    let mut system = Vec::new();
    let mut contents = Vec::new();
    // tool_call id → function name, from the assistant turns seen so far: Gemini's
    // functionResponse is matched by name, OpenAI's tool message only carries the id.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = message.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                for text in text_parts(content, &path)?.into_iter().filter(|t| !t.is_empty()) {
                    system.push(json!({ "text": text }));
                }
            }
            "user" => {
                let parts = content_parts(content, &path)?;
                push_turn(&mut contents, "user", parts);
            }
            "assistant" => {
                let mut parts = content_parts(content, &path)?;
                if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
                    for (j, call) in calls.iter().enumerate() {
                        let call_path = format!("{path}.tool_calls[{j}]");
                        let function = call.get("function").unwrap_or(&Value::Null);
                        let name = function.get("name").and_then(Value::as_str).ok_or_else(|| {
                            GatewayError::request(format!("{call_path}.function.name"), "a tool call needs a name")
                        })?;
                        let args = parse_arguments(function.get("arguments"), &call_path)?;
                        if let Some(id) = call.get("id").and_then(Value::as_str) {
                            call_names.insert(id.to_owned(), name.to_owned());
                        }
                        let mut part = json!({ "functionCall": { "name": name, "args": args } });
                        // Our answers hand Gemini's signature out as Google's OpenAI-compatible
                        // API does; it goes back where Gemini put it, beside the call.
                        if let (Some(signature), Some(obj)) = (
                            call.pointer("/extra_content/google/thought_signature")
                                .and_then(Value::as_str)
                                .filter(|s| !s.is_empty()),
                            part.as_object_mut(),
                        ) {
                            obj.insert("thoughtSignature".into(), signature.into());
                        }
                        parts.push(part);
                    }
                }
                push_turn(&mut contents, "model", parts);
            }
            "tool" | "function" => {
                let name = match message.get("tool_call_id").and_then(Value::as_str) {
                    Some(id) => call_names
                        .get(id)
                        .map(String::as_str)
                        .or_else(|| message.get("name").and_then(Value::as_str))
                        .ok_or_else(|| {
                            GatewayError::request(
                                format!("{path}.tool_call_id"),
                                format!("no earlier assistant message has a tool call with id `{id}`"),
                            )
                        })?,
                    None => message.get("name").and_then(Value::as_str).ok_or_else(|| {
                        GatewayError::request(format!("{path}.tool_call_id"), "a tool message needs `tool_call_id`")
                    })?,
                };
                let output = text_parts(content, &path)?.concat();
                // The API reference: Content.role is "user" or "model"; function results
                // are user turns ("function" is Portkey's legacy spelling).
                let part = json!({ "functionResponse": { "name": name, "response": { "output": output } } });
                push_turn(&mut contents, "user", vec![part]);
            }
            other => {
                return Err(GatewayError::request(format!("{path}.role"), format!("unknown role `{other}`")));
            }
        }
    }
    Ok((system, contents))
}

/// Tool-call arguments as a JSON object (Gemini's `args` is a Struct).
fn parse_arguments(arguments: Option<&Value>, path: &str) -> Result<Value, GatewayError> {
    let param = format!("{path}.function.arguments");
    match arguments {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(json!({})),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(GatewayError::request(param, "tool call arguments must be a JSON object")),
            Err(e) => Err(GatewayError::request(param, format!("tool call arguments are not valid JSON: {e}"))),
        },
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(GatewayError::request(param, "tool call arguments must be a JSON string")),
    }
}

/// The texts of a content that may only hold text (system and tool messages).
fn text_parts(content: &Value, path: &str) -> Result<Vec<String>, GatewayError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match (part.get("type").and_then(Value::as_str), part.get("text")) {
                (Some("text"), Some(Value::String(t))) => Ok(t.clone()),
                _ => Err(GatewayError::request(
                    format!("{path}.content[{j}]"),
                    "only text parts are supported in system and tool messages",
                )),
            })
            .collect(),
        _ => Err(GatewayError::request(format!("{path}.content"), "content must be a string, an array or null")),
    }
}

/// Gemini parts for user and assistant content. Empty text is left out: Gemini rejects
/// an empty text part, and clients often send `content: ""` next to tool calls.
fn content_parts(content: &Value, path: &str) -> Result<Vec<Value>, GatewayError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({ "text": s })]),
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let part_path = format!("{path}.content[{j}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let text = part.get("text").and_then(Value::as_str).unwrap_or_default();
                        if !text.is_empty() {
                            out.push(json!({ "text": text }));
                        }
                    }
                    Some("image_url") => out.push(image_part(part, &part_path)?),
                    Some("input_audio") => {
                        let audio = part.get("input_audio").unwrap_or(&Value::Null);
                        let data = audio.get("data").and_then(Value::as_str).unwrap_or_default();
                        let format = audio.get("format").and_then(Value::as_str).unwrap_or("wav");
                        out.push(json!({ "inlineData": { "mimeType": format!("audio/{format}"), "data": data } }));
                    }
                    Some("file") => {
                        let file = part.get("file").unwrap_or(&Value::Null);
                        match file.get("file_data").and_then(Value::as_str).and_then(parse_data_url) {
                            Some((mime, data)) => out.push(json!({ "inlineData": { "mimeType": mime, "data": data } })),
                            None => {
                                return Err(GatewayError::request(
                                    format!("{part_path}.file"),
                                    "only files sent inline as a base64 `file_data` data URL are supported",
                                ));
                            }
                        }
                    }
                    // The assistant declining is text in the transcript; nothing to send.
                    Some("refusal") => {}
                    other => {
                        return Err(GatewayError::request(
                            format!("{part_path}.type"),
                            format!("content part type {} is not supported by Gemini", other.unwrap_or("(missing)")),
                        ));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(GatewayError::request(format!("{path}.content"), "content must be a string, an array or null")),
    }
}

fn image_part(part: &Value, path: &str) -> Result<Value, GatewayError> {
    let image = part.get("image_url").unwrap_or(&Value::Null);
    // Both `{"image_url": {"url": ...}}` and the older bare-string form.
    let url = image.get("url").and_then(Value::as_str).or_else(|| image.as_str()).ok_or_else(|| {
        GatewayError::request(format!("{path}.image_url.url"), "an image_url part needs `image_url.url`")
    })?;
    if url.starts_with("data:") {
        let (mime, data) = parse_data_url(url).ok_or_else(|| {
            GatewayError::request(
                format!("{path}.image_url.url"),
                "a data URL must look like `data:<mime>;base64,<data>`",
            )
        })?;
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    let scheme_ok =
        ["https://", "http://", "gs://"].iter().any(|s| url.len() > s.len() && url[..s.len()].eq_ignore_ascii_case(s));
    if !scheme_ok {
        return Err(GatewayError::request(
            format!("{path}.image_url.url"),
            "an image URL must be https://, http://, gs:// or a base64 data URL",
        ));
    }
    let mime = image.get("mime_type").and_then(Value::as_str).map_or_else(|| mime_from_extension(url), str::to_owned);
    Ok(json!({ "fileData": { "mimeType": mime, "fileUri": url } }))
}

/// `data:<mime>;base64,<data>` → (mime, data).
fn parse_data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let mime = if mime.is_empty() { "application/octet-stream" } else { mime };
    Some((mime.to_owned(), data.to_owned()))
}

/// Gemini needs a MIME type for `fileData`; guess it from the path's extension.
pub fn mime_from_extension(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let mime = match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "webm" => "video/webm",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "txt" => "text/plain",
        _ => "image/jpeg",
    };
    mime.to_owned()
}

fn function_declarations(tools: &Value) -> Result<Vec<Value>, GatewayError> {
    let tools = tools.as_array().ok_or_else(|| GatewayError::request("tools", "`tools` must be an array"))?;
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("function");
        if kind != "function" {
            return Err(GatewayError::request(
                format!("{path}.type"),
                format!("tool type `{kind}` is not supported by Gemini; only `function` tools are"),
            ));
        }
        let function = tool.get("function").unwrap_or(&Value::Null);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| GatewayError::request(format!("{path}.function.name"), "a function tool needs a name"))?;
        let mut declaration = Map::new();
        declaration.insert("name".into(), name.into());
        if let Some(description) = function.get("description").filter(|d| d.is_string()) {
            declaration.insert("description".into(), description.clone());
        }
        if let Some(parameters) = function.get("parameters").filter(|p| !p.is_null()) {
            let cleaned = clean_schema(parameters)
                .map_err(|e| GatewayError::request(format!("{path}.function.parameters"), e))?;
            if !is_empty_object(&cleaned) {
                declaration.insert("parameters".into(), cleaned);
            }
        }
        out.push(Value::Object(declaration));
    }
    Ok(out)
}

fn function_calling_config(choice: &Value) -> Result<Value, GatewayError> {
    let invalid =
        || GatewayError::request("tool_choice", "`tool_choice` must be auto, none, required or a named function");
    match choice {
        Value::String(s) => {
            let mode = match s.as_str() {
                "auto" => "AUTO",
                "none" => "NONE",
                "required" | "any" => "ANY",
                _ => return Err(invalid()),
            };
            Ok(json!({ "mode": mode }))
        }
        Value::Object(o) => {
            let name = o.get("function").and_then(|f| f.get("name")).and_then(Value::as_str).ok_or_else(invalid)?;
            Ok(json!({ "mode": "ANY", "allowedFunctionNames": [name] }))
        }
        _ => Err(invalid()),
    }
}

fn generation_config(obj: &Map<String, Value>) -> Result<Map<String, Value>, GatewayError> {
    let mut config = Map::new();
    let present = |k: &str| obj.get(k).filter(|v| !v.is_null());
    for (ours, theirs) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("n", "candidateCount"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = present(ours) {
            config.insert(theirs.into(), v.clone());
        }
    }
    // max_completion_tokens is the current name; it wins when both are sent.
    if let Some(v) = present("max_completion_tokens").or_else(|| present("max_tokens")) {
        config.insert("maxOutputTokens".into(), v.clone());
    }
    match present("stop") {
        Some(Value::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            config.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(format) = present("response_format") {
        match format.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                config.insert("responseMimeType".into(), "application/json".into());
            }
            Some("json_schema") => {
                config.insert("responseMimeType".into(), "application/json".into());
                if let Some(schema) = format.get("json_schema").and_then(|j| j.get("schema")).filter(|s| !s.is_null()) {
                    let cleaned = clean_schema(schema)
                        .map_err(|e| GatewayError::request("response_format.json_schema.schema", e))?;
                    config.insert("responseSchema".into(), cleaned);
                }
            }
            Some("text") | None => {}
            Some(other) => {
                return Err(GatewayError::request(
                    "response_format.type",
                    format!("response_format type `{other}` is not supported by Gemini"),
                ));
            }
        }
    }
    Ok(config)
}

/// The `batchEmbedContents` body for an OpenAI embeddings request (`model` without the
/// `models/` prefix).
pub fn embed_body(params: &Value, model: &str) -> Result<Built, GatewayError> {
    let obj = params.as_object().ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
    let inputs: Vec<&str> = match obj.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    GatewayError::request(
                        format!("input[{i}]"),
                        "Gemini embeds text only: `input` items must be strings",
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(GatewayError::request("input", "`input` must be a string or a non-empty array of strings")),
    };
    let dimensions = obj.get("dimensions").filter(|d| !d.is_null());
    let requests: Vec<Value> = inputs
        .into_iter()
        .map(|text| {
            let mut r = json!({ "model": format!("models/{model}"), "content": { "parts": [{ "text": text }] } });
            if let (Some(d), Some(r)) = (dimensions, r.as_object_mut()) {
                r.insert("outputDimensionality".into(), d.clone());
            }
            r
        })
        .collect();
    // encoding_format is honoured in the answer (base64 is encoded there).
    let dropped = obj
        .keys()
        .filter(|k| !["model", "input", "dimensions", "encoding_format"].contains(&k.as_str()))
        .cloned()
        .collect();
    Ok(Built { body: json!({ "requests": requests }), dropped })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mime_guesses() {
        assert_eq!(mime_from_extension("https://x.com/a.PNG?size=2#f"), "image/png");
        assert_eq!(mime_from_extension("https://x.com/a.jpeg"), "image/jpeg");
        assert_eq!(mime_from_extension("gs://b/v.mp4"), "video/mp4");
        assert_eq!(mime_from_extension("https://x.com/image"), "image/jpeg");
        assert_eq!(mime_from_extension("https://x.com.au/dir.d/image"), "image/jpeg");
    }

    #[test]
    fn data_urls() {
        assert_eq!(parse_data_url("data:image/png;base64,AAA=").unwrap(), ("image/png".into(), "AAA=".into()));
        assert!(parse_data_url("data:text/plain,hello").is_none());
    }

    #[test]
    fn tool_results_take_the_name_of_the_latest_matching_call() {
        let msgs = json!([
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "b", "content": "2"},
            {"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": "1"}]}
        ]);
        let (_, contents) = convert_messages(msgs.as_array().unwrap()).unwrap();
        assert_eq!(contents.len(), 3);
        assert_eq!(
            contents[2],
            json!({"role": "user", "parts": [
                {"functionResponse": {"name": "g", "response": {"output": "2"}}},
                {"functionResponse": {"name": "f", "response": {"output": "1"}}}
            ]})
        );
        let unknown = json!([{"role": "tool", "tool_call_id": "zz", "content": "x"}]);
        let err = convert_messages(unknown.as_array().unwrap()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].tool_call_id"));
    }

    #[test]
    fn only_sent_unsupported_params_are_reported_dropped() {
        let built = chat_body(&json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true,
            "stream_options": {"include_usage": true}, "temperature": 1, "user": "u", "logprobs": true,
            "parallel_tool_calls": false, "brand_new_param": 1
        }))
        .unwrap();
        assert_eq!(built.dropped, ["user", "logprobs", "parallel_tool_calls", "brand_new_param"]);
        let embed =
            embed_body(&json!({"model": "m", "input": "x", "user": "u", "encoding_format": "float"}), "m").unwrap();
        assert_eq!(embed.dropped, ["user"]);
    }

    #[test]
    fn thought_signatures_go_back_and_placeholders_only_for_gemini_3() {
        let call = |id: &str, sig: Option<&str>| {
            let mut c = json!({"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}});
            if let Some(sig) = sig {
                c["extra_content"] = json!({"google": {"thought_signature": sig}});
            }
            c
        };
        let request = |model: &str, calls: Vec<Value>| {
            json!({"model": model, "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": "thinking aloud", "tool_calls": calls},
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "assistant", "content": null, "tool_calls": [call("c", None)]},
                {"role": "tool", "tool_call_id": "c", "content": "3"}
            ]})
        };
        let signatures = |body: &Value| -> Vec<Vec<Option<String>>> {
            body["contents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["role"] == "model")
                .map(|t| {
                    t["parts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p["thoughtSignature"].as_str().map(str::to_owned))
                        .collect()
                })
                .collect()
        };
        let sig = |s: &str| Some(s.to_owned());

        let signed = chat_body(&request("gemini-3-pro-preview", vec![call("a", Some("S1")), call("b", None)])).unwrap();
        assert_eq!(signatures(&signed.body), [vec![None, sig("S1"), None], vec![sig(SKIP_SIGNATURE)]]);
        assert!(!signed.body.to_string().contains("extra_content"));

        let unsigned = chat_body(&request("models/gemini-3-flash", vec![call("a", None), call("b", None)])).unwrap();
        assert_eq!(signatures(&unsigned.body), [vec![None, sig(SKIP_SIGNATURE), None], vec![sig(SKIP_SIGNATURE)]]);

        let older = chat_body(&request("gemini-2.5-pro", vec![call("a", Some("S1")), call("b", None)])).unwrap();
        assert_eq!(signatures(&older.body), [vec![None, sig("S1"), None], vec![None]]);
    }

    #[test]
    fn bad_arguments_name_the_field() {
        let msgs = json!([{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{oops"}}]}]);
        let err = convert_messages(msgs.as_array().unwrap()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].tool_calls[0].function.arguments"));
    }
}
