//! Every native provider, Azure and one OpenAI-compatible table entry, end to end: the real
//! server (engine + hyper transport) over loopback against a mock on 127.0.0.1:0 that
//! checks each request the way the real API does and answers in the provider's own wire
//! format (JSON, SSE, AWS binary event-stream).
//!
//! A request the real API would refuse gets the real API's refusal (400/401/403 in the
//! provider's error shape), so a broken transform fails these tests with the upstream's
//! own message. Per provider: a non-streamed chat, a streamed chat that must end with
//! `data: [DONE]`, and a 429 that must come back as a 429 naming the provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use gateway_core::engine::ResponseBody;
use gateway_core::{Config, Endpoint, GatewayRequest, RequestBody, RequestOptions};
use gateway_tests::mock::{Gateway, GatewayOptions, MockReply, MockUpstream, Received, start_gateway};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------------------

/// Return `Err($reply)` from a check unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $reply:expr) => {
        if !$cond {
            return Err($reply);
        }
    };
}

/// A conversation that exercises what upstream validators are strict about: a system
/// prompt, an image given as a data URL, an assistant turn with empty text beside two
/// parallel tool calls, both results (consecutive `tool` messages), then a new user turn
/// (three user-side messages in a row), a tool definition, a string `stop` and `user`.
fn conversation(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in both cities on this map?"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG_1X1}")}}
            ]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\":21}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "{\"temp_c\":24}"},
            {"role": "user", "content": "Say it in French."}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }}],
        "max_tokens": 200,
        "temperature": 0.3,
        "stop": "END",
        "user": "user-42"
    })
}

/// A 1x1 transparent PNG.
const PNG_1X1: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==";

fn streamed(model: &str) -> Value {
    json!({
        "model": model,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello in French."}
        ]
    })
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

async fn post(gw: &Gateway, path: &str, target: &Value, body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", gw.base))
        .header("x-portkey-config", target.to_string())
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// A non-streamed chat through the server; panics with the upstream's words when the
/// mock refused the request.
async fn chat(gw: &Gateway, mock: &MockUpstream, target: &Value, body: &Value) -> Value {
    let (status, _, text) = post(gw, "/v1/chat/completions", target, body).await;
    assert!(mock.rejected().is_empty(), "the mock refused the request: {:?}", mock.rejected());
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// What a streamed answer came to.
#[derive(Debug)]
struct Streamed {
    content: String,
    finish_reason: Option<String>,
    usage: Option<Value>,
}

/// A streamed chat through the server: every event must be a chunk, the last event must
/// be `[DONE]`, and the chunks must form one well-ordered answer.
async fn stream(gw: &Gateway, mock: &MockUpstream, target: &Value, body: &Value) -> Streamed {
    let (status, headers, text) = post(gw, "/v1/chat/completions", target, body).await;
    assert!(mock.rejected().is_empty(), "the mock refused the request: {:?}", mock.rejected());
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers.get("content-type").unwrap(), "text/event-stream");
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"), "the stream must end with [DONE]:\n{text}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap_or_else(|_| panic!("{e}")))
        .collect();
    summarise(chunks)
}

fn summarise(chunks: Vec<Value>) -> Streamed {
    assert!(!chunks.is_empty());
    let first = &chunks[0];
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant", "the first chunk announces the role: {first}");
    let mut content = String::new();
    let mut finish_reason = None;
    let mut usage = None;
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert_eq!(c["id"], first["id"], "every chunk shares one id");
        assert_eq!(c["created"], first["created"]);
        assert!(usage.is_none(), "nothing may follow the usage chunk: {c}");
        if let Some(u) = c.get("usage").filter(|u| !u.is_null()) {
            assert_eq!(c["choices"], json!([]), "the usage chunk has no choices");
            usage = Some(u.clone());
            continue;
        }
        assert!(finish_reason.is_none(), "no delta after the finish chunk: {c}");
        let choice = &c["choices"][0];
        if let Some(text) = choice["delta"]["content"].as_str() {
            content.push_str(text);
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish_reason = Some(reason.to_owned());
        }
    }
    Streamed { content, finish_reason, usage }
}

/// A 429 from the upstream must reach the caller as a 429 naming the provider.
async fn rate_limited(gw: &Gateway, mock: &MockUpstream, target: &Value, body: &Value, provider: &str) -> Value {
    let (status, headers, text) = post(gw, "/v1/chat/completions", target, body).await;
    assert!(mock.rejected().is_empty(), "the mock refused the request: {:?}", mock.rejected());
    assert_eq!(status, 429, "{text}");
    assert_eq!(headers.get("x-portkey-provider").unwrap(), provider);
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["provider"], provider, "{body}");
    assert!(!body["error"]["code"].is_null(), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("{provider} error: ")), "{message}");
    body
}

fn assert_openai_completion(answer: &Value, content: &str) {
    assert_eq!(answer["object"], "chat.completion", "{answer}");
    assert!(answer["id"].as_str().is_some_and(|id| !id.is_empty()), "{answer}");
    assert!(answer["created"].as_u64().is_some(), "{answer}");
    let choice = &answer["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], content, "{answer}");
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &answer["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap(),
        "{usage}"
    );
}

fn body_json(r: &Received) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err("the request body must be a JSON object".into()),
        Err(e) => Err(format!("the request body is not valid JSON: {e}")),
    }
}

fn unknown_key<'a>(body: &'a Map<String, Value>, allowed: &[&str]) -> Option<&'a str> {
    body.keys().map(String::as_str).find(|k| !allowed.contains(k))
}

fn is_json(r: &Received) -> bool {
    r.header("content-type").is_some_and(|ct| ct.starts_with("application/json"))
}

/// SSE events as a server writes them (`event:` line optional), CRLF or LF.
fn sse(events: &[(Option<&str>, Value)], eol: &str) -> Vec<String> {
    events
        .iter()
        .map(|(event, data)| match event {
            Some(e) => format!("event: {e}{eol}data: {data}{eol}{eol}"),
            None => format!("data: {data}{eol}{eol}"),
        })
        .collect()
}

fn sse_reply(chunks: Vec<String>) -> MockReply {
    MockReply::Sse { chunks, gap: Duration::from_millis(2), then_break: false }
}

// ---------------------------------------------------------------------------------------
// Anthropic (and the Messages body Vertex forwards to Claude)
// ---------------------------------------------------------------------------------------

fn anthropic_error(status: u16, kind: &str, message: &str) -> MockReply {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    MockReply::Json(status, vec![("request-id", "req_mock".into())], body.to_string())
}

const MESSAGES_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
];

/// Claude models from Opus 4.1 on refuse `temperature` and `top_p` together.
const ONE_SAMPLING_KNOB: &[&str] = &[
    "claude-opus-4-1",
    "claude-opus-4-5",
    "claude-opus-4-6",
    "claude-sonnet-4-5",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
];

fn refuses_temperature_with_top_p(model: &str) -> bool {
    ONE_SAMPLING_KNOB.iter().any(|m| model.contains(m))
}

const WHITESPACE_STOP: &str = "stop_sequences: each stop sequence must contain non-whitespace";

const BOTH_SAMPLING_KNOBS: &str =
    "`temperature` and `top_p` cannot both be specified for this model. Please use only one.";

/// The Messages API's own validation (the error texts are Anthropic's). `vertex`: the
/// rawPredict flavour, where `model` is in the URL and `anthropic_version` in the body.
fn check_messages_body(body: &Map<String, Value>, vertex: bool, model: &str) -> Result<(), String> {
    if refuses_temperature_with_top_p(model) && body.contains_key("temperature") && body.contains_key("top_p") {
        return Err(BOTH_SAMPLING_KNOBS.into());
    }
    for key in body.keys() {
        let allowed = (MESSAGES_FIELDS.contains(&key.as_str()) && !(vertex && key == "model"))
            || (vertex && key == "anthropic_version");
        if !allowed {
            return Err(format!("{key}: Extra inputs are not permitted"));
        }
    }
    if vertex {
        if body.get("anthropic_version").and_then(Value::as_str) != Some("vertex-2023-10-16") {
            return Err("anthropic_version: Input should be 'vertex-2023-10-16'".into());
        }
    } else if body.get("model").and_then(Value::as_str).is_none_or(|m| m.is_empty()) {
        return Err("model: Field required".into());
    }
    if body.get("max_tokens").and_then(Value::as_u64).is_none_or(|n| n < 1) {
        return Err("max_tokens: Field required".into());
    }
    if let Some(t) = body.get("temperature")
        && !t.as_f64().is_some_and(|t| (0.0..=1.0).contains(&t))
    {
        return Err("temperature: Input should be less than or equal to 1".into());
    }
    if let Some(s) = body.get("stream")
        && !s.is_boolean()
    {
        return Err("stream: Input should be a valid boolean".into());
    }
    if let Some(m) = body.get("metadata") {
        let ok = m.as_object().is_some_and(|m| m.keys().all(|k| k == "user_id") && m.values().all(Value::is_string));
        if !ok {
            return Err("metadata: only `user_id` (a string) is permitted".into());
        }
    }
    if let Some(stop) = body.get("stop_sequences") {
        let stop = stop.as_array().ok_or("stop_sequences: Input should be a valid list")?;
        if !stop.iter().all(Value::is_string) {
            return Err("stop_sequences: Input should be a valid list of strings".into());
        }
        if stop.iter().any(|s| s.as_str().is_some_and(|s| s.trim().is_empty())) {
            return Err(WHITESPACE_STOP.into());
        }
    }
    match body.get("system") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            if !blocks.iter().all(|b| b["type"] == "text" && b["text"].as_str().is_some_and(|t| !t.trim().is_empty())) {
                return Err("system: text content blocks must contain non-whitespace text".into());
            }
        }
        Some(_) => return Err("system: Input should be a valid list".into()),
    }
    let tool_names: Vec<&str> = match body.get("tools") {
        None => Vec::new(),
        Some(Value::Array(tools)) => {
            let mut names = Vec::new();
            for (i, t) in tools.iter().enumerate() {
                let name = t["name"].as_str().filter(|n| !n.is_empty());
                if name.is_none() || t["input_schema"]["type"] != "object" {
                    return Err(format!("tools.{i}: a custom tool needs `name` and an object `input_schema`"));
                }
                names.extend(name);
            }
            names
        }
        Some(_) => return Err("tools: Input should be a valid list".into()),
    };
    if let Some(choice) = body.get("tool_choice") {
        match choice["type"].as_str() {
            Some("auto" | "any" | "none") => {}
            Some("tool") if choice["name"].as_str().is_some_and(|n| tool_names.contains(&n)) => {}
            _ => return Err(format!("tool_choice: invalid tool_choice {choice}")),
        }
    }
    let messages = body.get("messages").and_then(Value::as_array).ok_or("messages: Field required")?;
    if messages.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    // tool_use ids of the previous assistant turn that still await their tool_result.
    let mut open_calls: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if role == "system" {
            return Err(format!(
                "messages.{i}.role: Unexpected role \"system\". The Messages API accepts a top-level `system` \
                 parameter, not \"system\" as an input message role."
            ));
        }
        if role != "user" && role != "assistant" {
            return Err(format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
        }
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(s) if s.is_empty() => {
                return Err(format!("messages.{i}: {role} messages must have non-empty content"));
            }
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(b) if b.is_empty() => {
                return Err(format!("messages.{i}: {role} messages must have non-empty content"));
            }
            Value::Array(b) => b.clone(),
            _ => return Err(format!("messages.{i}.content: Input should be a valid list")),
        };
        let mut answered = Vec::new();
        let mut calls = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            match b["type"].as_str() {
                Some("text") if b["text"].as_str().is_some_and(|t| !t.trim().is_empty()) => {}
                Some("text") => {
                    return Err(format!(
                        "messages.{i}.content.{j}: text content blocks must contain non-whitespace text"
                    ));
                }
                Some("image") if role == "user" => {
                    let source = &b["source"];
                    let ok = match source["type"].as_str() {
                        Some("base64") => {
                            ["image/jpeg", "image/png", "image/gif", "image/webp"]
                                .contains(&source["media_type"].as_str().unwrap_or_default())
                                && source["data"].as_str().is_some_and(|d| !d.is_empty() && !d.starts_with("data:"))
                        }
                        Some("url") => source["url"].as_str().is_some_and(|u| u.starts_with("https://")),
                        _ => false,
                    };
                    if !ok {
                        return Err(format!("messages.{i}.content.{j}.image.source: invalid image source {source}"));
                    }
                }
                Some("tool_use") if role == "assistant" => {
                    if !b["input"].is_object() || !b["id"].is_string() {
                        return Err(format!(
                            "messages.{i}.content.{j}.tool_use: `id` and an object `input` are required"
                        ));
                    }
                    calls.push(b["id"].as_str().unwrap_or_default().to_owned());
                }
                Some("tool_result") if role == "user" => {
                    let id = b["tool_use_id"].as_str().unwrap_or_default();
                    if !open_calls.iter().any(|c| c == id) {
                        return Err(format!(
                            "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. \
                             Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        ));
                    }
                    answered.push(id.to_owned());
                }
                other => return Err(format!("messages.{i}.content.{j}: unexpected block type {other:?} for {role}")),
            }
        }
        if let Some(missing) = open_calls.iter().find(|c| !answered.contains(c)) {
            return Err(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {missing}"
            ));
        }
        open_calls = calls;
    }
    Ok(())
}

fn check_anthropic(r: &Received, key: &str) -> Result<(), MockReply> {
    ensure!(r.method == "POST" && r.uri == "/v1/messages", anthropic_error(404, "not_found_error", "Not Found"));
    ensure!(r.header("x-api-key") == Some(key), anthropic_error(401, "authentication_error", "invalid x-api-key"));
    ensure!(
        r.header("anthropic-version").is_some_and(|v| !v.is_empty()),
        anthropic_error(400, "invalid_request_error", "anthropic-version: header is required")
    );
    ensure!(is_json(r), anthropic_error(400, "invalid_request_error", "content-type must be application/json"));
    let body = body_json(r).map_err(|m| anthropic_error(400, "invalid_request_error", &m))?;
    let model = body.get("model").and_then(Value::as_str).unwrap_or_default().to_owned();
    check_messages_body(&body, false, &model).map_err(|m| anthropic_error(400, "invalid_request_error", &m))
}

fn anthropic_message(model: &str, text: &str) -> Value {
    json!({
        "id": "msg_01E2E", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 42, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    })
}

/// A Messages SSE transcript as Anthropic (and Vertex's streamRawPredict) sends it.
fn anthropic_stream(model: &str, pieces: &[&str]) -> Vec<String> {
    let mut events = vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {"id": "msg_01S", "type": "message",
            "role": "assistant", "content": [], "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 17, "output_tokens": 1}}}),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (Some("ping"), json!({"type": "ping"})),
    ];
    for p in pieces {
        events.push((
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
        ));
    }
    events.extend([
        (Some("content_block_stop"), json!({"type": "content_block_stop", "index": 0})),
        (Some("message_delta"), json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 6}})),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ]);
    sse(&events, "\n")
}

#[tokio::test]
async fn anthropic_end_to_end() {
    let model = "claude-sonnet-4-20250514";
    let mock = MockUpstream::start_checked(
        |r| check_anthropic(r, "sk-ant-e2e"),
        [
            MockReply::ok(anthropic_message(model, "Il fait 21 °C à Paris.")),
            sse_reply(anthropic_stream(model, &["Bon", "jour ", "👋"])),
            anthropic_error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = json!({"provider": "anthropic", "api_key": "sk-ant-e2e", "custom_host": mock.v1()});

    let answer = chat(&gw, &mock, &target, &conversation(model)).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");
    assert_eq!(answer["id"], "msg_01E2E");
    assert_eq!(answer["model"], model);
    assert_eq!(answer["usage"]["prompt_tokens"], 42);

    let s = stream(&gw, &mock, &target, &streamed(model)).await;
    assert_eq!(s.content, "Bonjour 👋");
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    assert_eq!(s.usage, Some(json!({"prompt_tokens": 17, "completion_tokens": 6, "total_tokens": 23})));

    let err = rate_limited(&gw, &mock, &target, &hello(model), "anthropic").await;
    assert_eq!(err["error"]["type"], "rate_limit_error");

    let got = mock.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].json().get("stream"), None);
    assert_eq!(got[1].json()["stream"], true);
}

// ---------------------------------------------------------------------------------------
// Gemini: Google AI (`google`) and Vertex AI (`vertex-ai`)
// ---------------------------------------------------------------------------------------

fn google_error(status: u16, code: &str, message: &str) -> MockReply {
    let body = json!({"error": {"code": status, "message": message, "status": code}});
    MockReply::Json(status, vec![], body.to_string())
}

const GENERATE_FIELDS: &[&str] = &[
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "labels",
];
const GENERATION_CONFIG_FIELDS: &[&str] = &[
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
];
const PART_DATA: &[&str] =
    &["text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"];

/// `GenerateContentRequest` validation (the error texts are Google's). Vertex also
/// insists on a role for every content.
fn check_generate_body(body: &Map<String, Value>, vertex: bool) -> Result<(), String> {
    if let Some(key) = unknown_key(body, GENERATE_FIELDS) {
        return Err(format!("Invalid JSON payload received. Unknown name \"{key}\": Cannot find field."));
    }
    if let Some(Value::Object(config)) = body.get("generationConfig")
        && let Some(key) = unknown_key(config, GENERATION_CONFIG_FIELDS)
    {
        return Err(format!(
            "Invalid JSON payload received. Unknown name \"{key}\" at 'generation_config': Cannot find field."
        ));
    }
    if let Some(stop) = body.get("generationConfig").and_then(|c| c.get("stopSequences"))
        && !stop.as_array().is_some_and(|s| s.len() <= 5 && s.iter().all(Value::is_string))
    {
        return Err("* GenerateContentRequest.generation_config.stop_sequences: a list of at most 5 strings".into());
    }
    if let Some(system) = body.get("systemInstruction") {
        let parts = system["parts"].as_array().filter(|p| !p.is_empty());
        if !parts.is_some_and(|p| p.iter().all(|p| p["text"].is_string())) {
            return Err("* GenerateContentRequest.system_instruction.parts: must hold text parts".into());
        }
    }
    if let Some(tools) = body.get("tools") {
        let ok = tools.as_array().is_some_and(|tools| {
            tools.iter().all(|t| {
                t["functionDeclarations"].as_array().is_none_or(|d| d.iter().all(|f| f["name"].as_str().is_some()))
            })
        });
        if !ok {
            return Err("* GenerateContentRequest.tools[0].function_declarations[0].name: Name cannot be empty.".into());
        }
    }
    let contents = body.get("contents").and_then(Value::as_array).filter(|c| !c.is_empty());
    let contents = contents.ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    let mut previous_calls = 0;
    for (i, c) in contents.iter().enumerate() {
        let role = c["role"].as_str();
        match role {
            Some("user" | "model") => {}
            None if !vertex => {}
            _ => return Err("Please use a valid role: user, model.".into()),
        }
        let parts = c["parts"].as_array().filter(|p| !p.is_empty());
        let parts =
            parts.ok_or(format!("* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."))?;
        let mut calls = 0;
        let mut responses = 0;
        for (j, p) in parts.iter().enumerate() {
            let data: Vec<&str> = PART_DATA.iter().copied().filter(|k| p.get(*k).is_some()).collect();
            if data.len() != 1 {
                return Err(format!(
                    "* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' must have one initialized field"
                ));
            }
            match data[0] {
                "text" if p["text"].as_str() == Some("") => {
                    return Err(format!(
                        "* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' must have one initialized field"
                    ));
                }
                "functionCall" => calls += 1,
                "functionResponse" => {
                    if !p["functionResponse"]["response"].is_object() || !p["functionResponse"]["name"].is_string() {
                        return Err(format!(
                            "* GenerateContentRequest.contents[{i}].parts[{j}].function_response: name and an object response are required"
                        ));
                    }
                    responses += 1;
                }
                "inlineData" => {
                    let d = &p["inlineData"];
                    if !d["mimeType"].as_str().is_some_and(|m| m.contains('/'))
                        || !d["data"].as_str().is_some_and(|x| !x.is_empty() && !x.starts_with("data:"))
                    {
                        return Err(format!(
                            "* GenerateContentRequest.contents[{i}].parts[{j}].inline_data: mime_type and base64 data are required"
                        ));
                    }
                }
                _ => {}
            }
        }
        if responses > 0 && responses != previous_calls {
            return Err("Please ensure that the number of function response parts is equal to the number of \
                        function call parts of the function call turn."
                .into());
        }
        previous_calls = calls;
    }
    Ok(())
}

fn check_google(r: &Received, key: &str, model: &str) -> Result<(), MockReply> {
    let plain = format!("/v1beta/models/{model}:generateContent");
    let streaming = format!("/v1beta/models/{model}:streamGenerateContent?alt=sse");
    ensure!(
        r.method == "POST" && (r.uri == plain || r.uri == streaming),
        google_error(404, "NOT_FOUND", &format!("models/{model} is not found for API version v1beta ({})", r.uri))
    );
    ensure!(
        r.header("x-goog-api-key").is_some() || r.uri.contains("key="),
        google_error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
        )
    );
    ensure!(
        r.header("x-goog-api-key") == Some(key),
        google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
    );
    ensure!(is_json(r), google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."));
    let body = body_json(r).map_err(|m| google_error(400, "INVALID_ARGUMENT", &m))?;
    check_generate_body(&body, false).map_err(|m| google_error(400, "INVALID_ARGUMENT", &m))
}

fn gemini_answer(model: &str, text: &str) -> Value {
    json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 8, "totalTokenCount": 39},
        "modelVersion": model,
        "responseId": "resp-e2e-1"
    })
}

/// `streamGenerateContent?alt=sse`: one whole `GenerateContentResponse` per event, CRLF
/// framed as Google sends it; the last carries the finish reason.
fn gemini_stream(model: &str, pieces: &[&str]) -> Vec<String> {
    let n = pieces.len();
    let events: Vec<(Option<&str>, Value)> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut candidate = json!({"content": {"parts": [{"text": p}], "role": "model"}, "index": 0});
            if i + 1 == n {
                candidate["finishReason"] = json!("STOP");
            }
            let used = 2 * (i as u64 + 1);
            (
                None,
                json!({"candidates": [candidate],
                "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": used, "totalTokenCount": 11 + used},
                "modelVersion": model, "responseId": "resp-e2e-s"}),
            )
        })
        .collect();
    sse(&events, "\r\n")
}

#[tokio::test]
async fn google_end_to_end() {
    let model = "gemini-2.0-flash";
    let mock = MockUpstream::start_checked(
        move |r| check_google(r, "AIza-e2e", model),
        [
            MockReply::ok(gemini_answer(model, "Il fait 21 °C à Paris.")),
            sse_reply(gemini_stream(model, &["Bon", "jour ", "👋"])),
            google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = json!({"provider": "google", "api_key": "AIza-e2e", "custom_host": format!("{}/v1beta", mock.base)});

    let answer = chat(&gw, &mock, &target, &conversation(model)).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");
    assert_eq!(answer["id"], "resp-e2e-1");

    let s = stream(&gw, &mock, &target, &streamed(model)).await;
    assert_eq!(s.content, "Bonjour 👋");
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    assert_eq!(s.usage.unwrap()["total_tokens"], 17);

    let err = rate_limited(&gw, &mock, &target, &hello(model), "google").await;
    assert_eq!(err["error"]["type"], "RESOURCE_EXHAUSTED");
    assert_eq!(err["error"]["code"], 429);

    let got = mock.received();
    assert!(got[1].uri.ends_with(":streamGenerateContent?alt=sse"));
}

const PROJECT: &str = "e2e-proj";
const REGION: &str = "us-east5";
const TOKEN: &str = "ya29.e2e-token";

fn vertex_path(publisher: &str, model: &str, method: &str) -> String {
    format!("/v1/projects/{PROJECT}/locations/{REGION}/publishers/{publisher}/models/{model}:{method}")
}

fn vertex_auth(r: &Received) -> Result<(), MockReply> {
    ensure!(
        r.header("authorization") == Some(&format!("Bearer {TOKEN}")),
        google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
        )
    );
    ensure!(
        r.header("x-goog-api-key").is_none(),
        google_error(400, "INVALID_ARGUMENT", "API keys are not supported by this API.")
    );
    ensure!(is_json(r), google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."));
    Ok(())
}

fn check_vertex_gemini(r: &Received, model: &str) -> Result<(), MockReply> {
    let plain = vertex_path("google", model, "generateContent");
    let streaming = format!("{}?alt=sse", vertex_path("google", model, "streamGenerateContent"));
    ensure!(
        r.method == "POST" && (r.uri == plain || r.uri == streaming),
        google_error(404, "NOT_FOUND", &format!("Publisher Model `{}` was not found", r.uri))
    );
    vertex_auth(r)?;
    let body = body_json(r).map_err(|m| google_error(400, "INVALID_ARGUMENT", &m))?;
    check_generate_body(&body, true).map_err(|m| google_error(400, "INVALID_ARGUMENT", &m))
}

fn vertex_target(mock: &MockUpstream) -> Value {
    json!({"provider": "vertex-ai", "api_key": TOKEN, "vertex_project_id": PROJECT, "vertex_region": REGION,
           "custom_host": mock.v1()})
}

#[tokio::test]
async fn vertex_gemini_end_to_end() {
    let model = "gemini-2.0-flash-001";
    let mock = MockUpstream::start_checked(
        move |r| check_vertex_gemini(r, model),
        [
            MockReply::ok(gemini_answer(model, "Il fait 21 °C à Paris.")),
            sse_reply(gemini_stream(model, &["Bon", "jour ", "👋"])),
            // Vertex answers stream requests' errors as a one-element array.
            MockReply::Json(
                429,
                vec![],
                json!([{"error": {"code": 429, "message": "Resource exhausted. Please try again later.", "status": "RESOURCE_EXHAUSTED"}}]).to_string(),
            ),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = vertex_target(&mock);

    let answer = chat(&gw, &mock, &target, &conversation(model)).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");

    let s = stream(&gw, &mock, &target, &streamed(model)).await;
    assert_eq!(s.content, "Bonjour 👋");
    assert!(s.usage.is_some());

    let mut streamed_error = streamed(model);
    streamed_error["messages"] = json!([{"role": "user", "content": "again"}]);
    let err = rate_limited(&gw, &mock, &target, &streamed_error, "vertex-ai").await;
    assert_eq!(err["error"]["type"], "RESOURCE_EXHAUSTED");
    assert_eq!(err["error"]["code"], "429");
}

// ---------------------------------------------------------------------------------------
// Claude on Vertex AI (`vertex-ai`, publisher anthropic)
// ---------------------------------------------------------------------------------------

fn check_vertex_claude(r: &Received, model: &str) -> Result<(), MockReply> {
    let raw = vertex_path("anthropic", model, "rawPredict");
    let streaming = vertex_path("anthropic", model, "streamRawPredict");
    ensure!(
        r.method == "POST" && (r.uri == raw || r.uri == streaming),
        google_error(404, "NOT_FOUND", &format!("Publisher Model `{}` was not found", r.uri))
    );
    vertex_auth(r)?;
    let body = body_json(r).map_err(|m| anthropic_error(400, "invalid_request_error", &m))?;
    // streamRawPredict only streams when the body asks for it, and rawPredict cannot.
    let wants_stream = body.get("stream") == Some(&Value::Bool(true));
    ensure!(
        wants_stream == (r.uri == streaming),
        anthropic_error(
            400,
            "invalid_request_error",
            "stream: must be true on streamRawPredict and absent or false on rawPredict"
        )
    );
    check_messages_body(&body, true, model).map_err(|m| anthropic_error(400, "invalid_request_error", &m))
}

#[tokio::test]
async fn vertex_claude_end_to_end() {
    let model = "claude-sonnet-4@20250514";
    let mock = MockUpstream::start_checked(
        move |r| check_vertex_claude(r, model),
        [
            MockReply::ok(anthropic_message("claude-sonnet-4-20250514", "Il fait 21 °C à Paris.")),
            sse_reply(anthropic_stream("claude-sonnet-4-20250514", &["Bon", "jour ", "👋"])),
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude-sonnet-4. Please submit a quota increase request.",
            ),
            anthropic_error(529, "overloaded_error", "Overloaded"),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = vertex_target(&mock);

    let answer = chat(&gw, &mock, &target, &conversation(model)).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");
    assert_eq!(answer["id"], "msg_01E2E");

    let s = stream(&gw, &mock, &target, &streamed(model)).await;
    assert_eq!(s.content, "Bonjour 👋");
    assert_eq!(s.usage, Some(json!({"prompt_tokens": 17, "completion_tokens": 6, "total_tokens": 23})));

    let err = rate_limited(&gw, &mock, &target, &hello(model), "vertex-ai").await;
    assert_eq!(err["error"]["type"], "RESOURCE_EXHAUSTED");

    // An error Claude itself raises keeps Anthropic's shape and its retryable status.
    let (status, _, text) = post(&gw, "/v1/chat/completions", &target, &hello(model)).await;
    assert_eq!(status, 529, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["type"], "overloaded_error");
    assert_eq!(body["error"]["code"], "overloaded");
    assert_eq!(body["provider"], "vertex-ai");
    assert!(mock.rejected().is_empty(), "{:?}", mock.rejected());
}

// ---------------------------------------------------------------------------------------
// Bedrock: Converse, SigV4 re-verified from scratch, binary event-stream answers
// ---------------------------------------------------------------------------------------

const AWS_KEY_ID: &str = "AKIDE2EEXAMPLE";
const AWS_SECRET: &str = "e2e/Secret+Key/EXAMPLEKEY";
const AWS_REGION: &str = "eu-west-3";

fn aws_error(status: u16, kind: &str, message: &str) -> MockReply {
    MockReply::Json(
        status,
        vec![("x-amzn-errortype", format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"))],
        json!({"message": message}).to_string(),
    )
}

/// SigV4 from its specification, sharing nothing with the provider's signer: the
/// canonical request is rebuilt from what arrived on the socket (method, raw path, query,
/// the headers named in `SignedHeaders`, the body's own hash).
mod sigv4_check {
    use super::*;

    pub fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }

    pub fn hex(bytes: &[u8]) -> String {
        hex::encode(bytes)
    }

    /// RFC 3986 encoding of everything but unreserved characters (and `/` in paths).
    fn encode(s: &str, keep_slash: bool) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b'/' if keep_slash => "/".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    fn canonical_query(query: &str) -> String {
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (encode(k, false), encode(v, false))
            })
            .collect();
        pairs.sort();
        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
    }

    /// Days since 1970-01-01 of a civil date (for the clock-skew check).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn parse_amz_date(s: &str) -> Option<u64> {
        let n = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok());
        if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
            return None;
        }
        let days = days_from_civil(n(0, 4)?, n(4, 6)?, n(6, 8)?);
        u64::try_from(days * 86_400 + n(9, 11)? * 3600 + n(11, 13)? * 60 + n(13, 15)?).ok()
    }

    fn denied(message: &str) -> MockReply {
        aws_error(403, "InvalidSignatureException", message)
    }

    /// Verify the request the way AWS does; `Err` is AWS's answer.
    pub fn verify(r: &Received, secret: &str, region: &str, service: &str) -> Result<(), MockReply> {
        let auth = r
            .header("authorization")
            .ok_or_else(|| aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token"))?;
        let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
            denied("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        })?;
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for field in rest.split(", ") {
            match field.split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed_headers = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => return Err(denied(&format!("Authorization header has an unexpected field: {field}"))),
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) = (credential, signed_headers, signature) else {
            return Err(denied("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'."));
        };
        ensure!(
            signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            denied("The signature must be 64 lowercase hex digits.")
        );
        let amz_date = r.header("x-amz-date").ok_or_else(|| denied("Missing x-amz-date"))?;
        let signed_at = parse_amz_date(amz_date).ok_or_else(|| denied("x-amz-date is not YYYYMMDD'T'HHMMSS'Z'"))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        ensure!(
            now.abs_diff(signed_at) <= 15 * 60,
            denied(&format!("Signature expired: {amz_date} is now earlier than the allowed window."))
        );
        let scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
        let (key_id, got_scope) = credential.split_once('/').unwrap_or((credential, ""));
        ensure!(
            key_id == AWS_KEY_ID,
            aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        );
        ensure!(
            got_scope == scope,
            denied(&format!(
                "Credential should be scoped to a valid region and service: expected {scope}, got {got_scope}"
            ))
        );
        let names: Vec<&str> = signed_headers.split(';').collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        ensure!(sorted == names, denied("SignedHeaders must be lowercase, sorted and unique."));
        for required in ["content-type", "host", "x-amz-content-sha256", "x-amz-date"] {
            ensure!(names.contains(&required), denied(&format!("'{required}' must be a signed header.")));
        }
        let body_hash = hex(&Sha256::digest(&r.body));
        ensure!(
            r.header("x-amz-content-sha256") == Some(body_hash.as_str()),
            aws_error(
                400,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
        );

        let (path, query) = r.uri.split_once('?').unwrap_or((&r.uri, ""));
        let mut canonical = format!("POST\n{}\n{}\n", encode(path, true), canonical_query(query));
        for name in &names {
            let values: Vec<String> = r
                .headers
                .get_all(*name)
                .iter()
                .map(|v| v.to_str().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            ensure!(!values.is_empty(), denied(&format!("Signed header '{name}' is missing from the request.")));
            canonical.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        canonical.push_str(&format!("\n{signed_headers}\n{body_hash}"));
        let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), &amz_date.as_bytes()[..8]);
        for part in [region, service, "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let expected = hex(&hmac(&key, to_sign.as_bytes()));
        ensure!(
            expected == signature,
            denied(&format!(
                "The request signature we calculated does not match the signature you provided. Check your AWS \
                 Secret Access Key and signing method. Consult the service documentation for details.\n\nThe \
                 Canonical String for this request should have been\n'{canonical}'\n\nThe String-to-Sign should \
                 have been\n'{to_sign}'\n"
            ))
        );
        Ok(())
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn aws_documentation_example_signing_key() {
        // The signing-key example of the SigV4 documentation (20120215 / us-east-1 / iam).
        let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        for part in ["us-east-1", "iam", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        assert_eq!(hex(&key), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_amz_date("20231114T221320Z"), Some(1_700_000_000));
        assert_eq!(parse_amz_date("2023-11-14"), None);
    }
}

const CONVERSE_FIELDS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
    "outputConfig",
];
const CONTENT_BLOCK_KINDS: &[&str] =
    &["text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "reasoningContent", "cachePoint"];

/// Converse's documented validation (the error texts are Bedrock's).
fn check_converse_body(body: &Map<String, Value>) -> Result<(), String> {
    if let Some(key) = unknown_key(body, CONVERSE_FIELDS) {
        return Err(format!(
            "Malformed input request: extraneous key [{key}] is not permitted, please reformat your input and try again."
        ));
    }
    if let Some(Value::Object(config)) = body.get("inferenceConfig")
        && let Some(key) = unknown_key(config, &["maxTokens", "temperature", "topP", "stopSequences"])
    {
        return Err(format!("Malformed input request: extraneous key [{key}] is not permitted in inferenceConfig."));
    }
    if let Some(stop) = body.get("inferenceConfig").and_then(|c| c.get("stopSequences"))
        && !stop.as_array().is_some_and(|s| s.iter().all(|x| x.as_str().is_some_and(|x| !x.is_empty())))
    {
        return Err("inferenceConfig.stopSequences: a list of non-empty strings".into());
    }
    if let Some(system) = body.get("system")
        && !system.as_array().is_some_and(|s| {
            s.iter().all(|b| {
                b["text"].as_str().is_some_and(|t| !t.trim().is_empty())
                    || b.get("cachePoint").is_some()
                    || b.get("guardContent").is_some()
            })
        })
    {
        return Err(
            "The text field in the SystemContentBlock object is blank. Add text to the text field, and try again."
                .into(),
        );
    }
    let messages = body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty());
    let messages = messages.ok_or(
        "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
    )?;
    let mut uses_tools = false;
    let mut open_calls: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        let expected = if i % 2 == 0 { "user" } else { "assistant" };
        if i == 0 && role != "user" {
            return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
        }
        if role != expected {
            return Err("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
        }
        let blocks = m["content"].as_array().filter(|c| !c.is_empty());
        let blocks = blocks.ok_or(format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."))?;
        let mut calls = Vec::new();
        let mut answered = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let kinds: Vec<&str> = CONTENT_BLOCK_KINDS.iter().copied().filter(|k| b.get(*k).is_some()).collect();
            if kinds.len() != 1 || b.as_object().is_some_and(|o| o.len() != 1) {
                return Err(format!("The ContentBlock object at messages.{i}.content.{j} must set exactly one field."));
            }
            match kinds[0] {
                "text" if b["text"].as_str().is_some_and(|t| !t.trim().is_empty()) => {}
                "text" => {
                    return Err(format!(
                        "The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."
                    ));
                }
                "image" => {
                    let img = &b["image"];
                    if role != "user"
                        || !["png", "jpeg", "gif", "webp"].contains(&img["format"].as_str().unwrap_or_default())
                        || img["source"]["bytes"].as_str().is_none_or(|x| x.is_empty())
                    {
                        return Err(format!(
                            "messages.{i}.content.{j}.image: format (png, jpeg, gif, webp) and source.bytes are required in a user message"
                        ));
                    }
                }
                "toolUse" => {
                    uses_tools = true;
                    let u = &b["toolUse"];
                    if role != "assistant"
                        || !u["toolUseId"].is_string()
                        || !u["name"].is_string()
                        || !u["input"].is_object()
                    {
                        return Err(format!(
                            "messages.{i}.content.{j}.toolUse: toolUseId, name and an object input are required in an assistant message"
                        ));
                    }
                    calls.push(u["toolUseId"].as_str().unwrap_or_default().to_owned());
                }
                "toolResult" => {
                    uses_tools = true;
                    let t = &b["toolResult"];
                    let id = t["toolUseId"].as_str().unwrap_or_default();
                    if role != "user" || !open_calls.iter().any(|c| c == id) {
                        return Err(format!(
                            "messages.{i}.content.{j}: toolResult {id} does not answer a toolUse of the previous assistant message"
                        ));
                    }
                    if t["content"].as_array().is_none_or(|c| c.is_empty()) {
                        return Err(format!(
                            "The content field in the ToolResultBlock at messages.{i}.content.{j} is empty."
                        ));
                    }
                    answered.push(id.to_owned());
                }
                _ => {}
            }
        }
        if let Some(missing) = open_calls.iter().find(|c| !answered.contains(c)) {
            return Err(format!("Expected toolResult blocks at messages.{i}.content for the following Ids: {missing}"));
        }
        open_calls = calls;
    }
    if uses_tools && body.get("toolConfig").is_none() {
        return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into());
    }
    if let Some(config) = body.get("toolConfig") {
        let tools = config["tools"].as_array().filter(|t| !t.is_empty());
        let ok = tools.is_some_and(|t| {
            t.iter().all(|t| t["toolSpec"]["name"].is_string() && t["toolSpec"]["inputSchema"]["json"].is_object())
        });
        if !ok {
            return Err(
                "The toolConfig field must hold at least one tool with a toolSpec (name and inputSchema.json).".into(),
            );
        }
    }
    Ok(())
}

fn check_bedrock(r: &Received, model: &str) -> Result<(), MockReply> {
    // The model id travels as one path segment (`:` → `%3A`).
    let encoded: String = model.replace(':', "%3A");
    let converse = format!("/model/{encoded}/converse");
    let stream = format!("/model/{encoded}/converse-stream");
    ensure!(
        r.method == "POST" && (r.uri == converse || r.uri == stream),
        aws_error(404, "UnknownOperationException", &format!("Unknown operation {}", r.uri))
    );
    ensure!(is_json(r), aws_error(400, "ValidationException", "content-type must be application/json"));
    sigv4_check::verify(r, AWS_SECRET, AWS_REGION, "bedrock")?;
    let body = body_json(r).map_err(|m| aws_error(400, "ValidationException", &m))?;
    let config = &body.get("inferenceConfig").cloned().unwrap_or_default();
    let whitespace_stop = config
        .get("stopSequences")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s.as_str().is_some_and(|s| s.trim().is_empty())));
    ensure!(
        !(model.contains("claude-") && whitespace_stop),
        aws_error(400, "ValidationException", &format!("The model returned the following errors: {WHITESPACE_STOP}"))
    );
    ensure!(
        !(refuses_temperature_with_top_p(model) && config.get("temperature").is_some() && config.get("topP").is_some()),
        aws_error(
            400,
            "ValidationException",
            &format!("The model returned the following errors: {BOTH_SAMPLING_KNOBS}")
        )
    );
    check_converse_body(&body).map_err(|m| aws_error(400, "ValidationException", &m))
}

/// CRC-32 (IEEE), bit by bit: a second implementation beside the provider's table.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// One AWS event-stream message: prelude (lengths + CRC), string headers, payload, CRC.
fn event_frame(event_type: &str, payload: &Value) -> Vec<u8> {
    let mut headers = Vec::new();
    for (name, value) in
        [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")]
    {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let payload = payload.to_string().into_bytes();
    let total = 12 + headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32(&out[..8]).to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&payload);
    out.extend_from_slice(&crc32(&out).to_be_bytes());
    out
}

/// A ConverseStream answer, padded (`p`) as Bedrock pads its events, cut into pieces
/// that straddle frame boundaries.
fn converse_stream(pieces: &[&str]) -> MockReply {
    let pad = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
    let mut bytes = event_frame("messageStart", &json!({"p": &pad[..7], "role": "assistant"}));
    for p in pieces {
        bytes.extend(event_frame(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": p}, "p": &pad[..13]}),
        ));
    }
    bytes.extend(event_frame("contentBlockStop", &json!({"contentBlockIndex": 0, "p": &pad[..3]})));
    bytes.extend(event_frame("messageStop", &json!({"p": pad, "stopReason": "end_turn"})));
    bytes.extend(event_frame(
        "metadata",
        &json!({"metrics": {"latencyMs": 412}, "p": &pad[..5],
                "usage": {"inputTokens": 14, "outputTokens": 6, "totalTokens": 20}}),
    ));
    let chunks = bytes.chunks(37).map(<[u8]>::to_vec).collect();
    MockReply::Chunked { content_type: "application/vnd.amazon.eventstream", chunks, gap: Duration::from_millis(1) }
}

fn bedrock_target(mock: &MockUpstream) -> Value {
    json!({"provider": "bedrock", "aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET,
           "aws_region": AWS_REGION, "custom_host": mock.base})
}

fn converse_answer(text: &str) -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 40, "outputTokens": 9, "totalTokens": 49},
        "metrics": {"latencyMs": 350}
    })
}

#[tokio::test]
async fn bedrock_end_to_end() {
    let model = "anthropic.claude-3-5-haiku-20241022-v1:0";
    let mock = MockUpstream::start_checked(
        move |r| check_bedrock(r, model),
        [
            MockReply::ok(converse_answer("Il fait 21 °C à Paris.")),
            converse_stream(&["Bon", "jour ", "👋"]),
            aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again."),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = bedrock_target(&mock);

    let answer = chat(&gw, &mock, &target, &conversation(model)).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");
    assert_eq!(answer["model"], model);

    let s = stream(&gw, &mock, &target, &streamed(model)).await;
    assert_eq!(s.content, "Bonjour 👋");
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    assert_eq!(s.usage.unwrap()["total_tokens"], 20);

    let err = rate_limited(&gw, &mock, &target, &hello(model), "bedrock").await;
    assert_eq!(err["error"]["code"], "rate_limited");
    assert!(err["error"]["message"].as_str().unwrap().contains("Too many requests"));

    let got = mock.received();
    assert!(got[1].uri.ends_with("/converse-stream"));
    // The host the signature covers is the one that reached the socket.
    assert_eq!(got[0].header("host"), Some(mock.base.trim_start_matches("http://")));
}

#[tokio::test]
async fn bedrock_session_token_is_signed_and_the_engine_stream_completes() {
    let model = "amazon.nova-lite-v1:0";
    let mock = MockUpstream::start_checked(
        move |r| {
            ensure!(
                r.header("x-amz-security-token") == Some("session-e2e"),
                aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
            );
            let auth = r.header("authorization").unwrap_or_default();
            ensure!(
                auth.contains("x-amz-security-token"),
                aws_error(403, "InvalidSignatureException", "'x-amz-security-token' must be a signed header.")
            );
            check_bedrock(r, model)
        },
        [converse_stream(&["Salut", " !"])],
    )
    .await;
    let mut target = bedrock_target(&mock);
    target["aws_session_token"] = json!("session-e2e");

    // In-process: the engine over the hyper transport, no server in between.
    let engine = gateway_http::engine(gateway_http::TransportOptions::default()).unwrap();
    let request = GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::from_value(streamed(model)).unwrap());
    let options = RequestOptions { config: Some(Arc::new(Config::from_json(&target).unwrap())), ..Default::default() };
    let response = engine.handle(&request, &options).await;
    assert!(response.error().is_none(), "{:?} {:?}", response.error(), mock.rejected());
    assert_eq!(response.status, 200);
    let Ok(gateway_core::Answer { body: ResponseBody::Events(mut events), .. }) = response.result else {
        panic!("expected a stream")
    };
    let mut chunks = Vec::new();
    while let Some(item) = events.next().await {
        let bytes: Bytes = item.unwrap_or_else(|e| panic!("the stream failed: {e}"));
        chunks.push(serde_json::from_slice::<Value>(&bytes).unwrap());
    }
    let s = summarise(chunks);
    assert_eq!(s.content, "Salut !");
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    assert!(mock.rejected().is_empty(), "{:?}", mock.rejected());
}

#[tokio::test]
async fn the_bedrock_mock_refuses_a_wrong_secret() {
    // The signature check must be able to fail: the same request signed with another
    // secret is refused with AWS's own 403.
    let model = "anthropic.claude-3-5-haiku-20241022-v1:0";
    let mock =
        MockUpstream::start_checked(move |r| check_bedrock(r, model), [MockReply::ok(converse_answer("unused"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut target = bedrock_target(&mock);
    target["aws_secret_access_key"] = json!("not-the-secret");
    let (status, _, text) = post(&gw, "/v1/chat/completions", &target, &hello(model)).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("signature we calculated does not match"), "{text}");
    assert_eq!(mock.rejected().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Cohere v2
// ---------------------------------------------------------------------------------------

fn cohere_error(status: u16, message: &str) -> MockReply {
    MockReply::Json(status, vec![], json!({"id": "e2e-err-id", "message": message}).to_string())
}

const COHERE_CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "tools",
    "strict_tools",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "logprobs",
    "tool_choice",
    "thinking",
    "priority",
];

fn check_cohere_chat(body: &Map<String, Value>) -> Result<(), String> {
    if let Some(key) = unknown_key(body, COHERE_CHAT_FIELDS) {
        return Err(format!("invalid request: unknown field `{key}`"));
    }
    if body.get("model").and_then(Value::as_str).is_none_or(|m| m.is_empty()) {
        return Err("invalid request: model must not be empty".into());
    }
    if !body.get("stream").is_some_and(Value::is_boolean) {
        return Err("invalid request: stream is required and must be a boolean".into());
    }
    if let Some(p) = body.get("p").and_then(Value::as_f64)
        && !(0.01..=0.99).contains(&p)
    {
        return Err("invalid request: p must be between 0.01 and 0.99".into());
    }
    let messages = body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty());
    let messages = messages.ok_or("invalid request: messages must not be empty")?;
    let mut call_ids: Vec<&str> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m["role"].as_str() {
            Some(role @ ("system" | "user")) => {
                let ok = match &m["content"] {
                    Value::String(_) => true,
                    Value::Array(parts) => parts.iter().all(|p| match p["type"].as_str() {
                        Some("text") => p["text"].is_string(),
                        Some("image_url") => role == "user" && p["image_url"]["url"].is_string(),
                        _ => false,
                    }),
                    _ => false,
                };
                if !ok {
                    return Err(format!(
                        "invalid request: messages[{i}].content must be a string or text/image_url parts"
                    ));
                }
            }
            Some("assistant") => {
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    if call["type"] != "function" || !call["function"]["arguments"].is_string() {
                        return Err(format!(
                            "invalid request: messages[{i}].tool_calls must be function calls with string arguments"
                        ));
                    }
                    call_ids.extend(call["id"].as_str());
                }
                if m["tool_calls"].is_null() && m["content"].is_null() {
                    return Err(format!("invalid request: messages[{i}] needs content or tool_calls"));
                }
                if !m["tool_calls"].is_null() && !m["content"].is_null() {
                    return Err(format!(
                        "invalid request: text content is not allowed when tool_calls are provided. If you wish to \
                         pass a tool plan, either pass thinking content (with thinking enabled) or use 'tool_plan': \
                         'messages[{i}].content'"
                    ));
                }
                if m.get("tool_plan").is_some_and(|p| !p.is_string() || m["tool_calls"].is_null()) {
                    return Err(format!("invalid request: messages[{i}].tool_plan must be a string beside tool_calls"));
                }
            }
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                if !call_ids.contains(&id) {
                    return Err(format!("invalid request: messages[{i}].tool_call_id `{id}` answers no tool call"));
                }
            }
            other => {
                return Err(format!(
                    "invalid request: messages[{i}].role {other:?} is not one of system, user, assistant, tool"
                ));
            }
        }
    }
    Ok(())
}

fn check_cohere(r: &Received, key: &str) -> Result<(), MockReply> {
    ensure!(r.method == "POST" && (r.uri == "/v2/chat" || r.uri == "/v2/embed"), cohere_error(404, "not found"));
    ensure!(r.header("authorization") == Some(&format!("Bearer {key}")), cohere_error(401, "invalid api token"));
    ensure!(is_json(r), cohere_error(400, "invalid request: content-type must be application/json"));
    let body = body_json(r).map_err(|m| cohere_error(400, &format!("invalid request: {m}")))?;
    if r.uri == "/v2/embed" {
        ensure!(
            unknown_key(
                &body,
                &[
                    "model",
                    "texts",
                    "images",
                    "inputs",
                    "input_type",
                    "embedding_types",
                    "output_dimension",
                    "truncate",
                    "max_tokens"
                ]
            )
            .is_none(),
            cohere_error(400, "invalid request: unknown field")
        );
        ensure!(
            body.get("input_type").is_some_and(Value::is_string),
            cohere_error(400, "invalid request: valid input_type must be provided with the provided model")
        );
        ensure!(
            body.get("texts")
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty() && t.iter().all(Value::is_string)),
            cohere_error(400, "invalid request: one of texts, images or inputs must be specified")
        );
        return Ok(());
    }
    check_cohere_chat(&body).map_err(|m| cohere_error(400, &m))
}

fn cohere_stream(pieces: &[&str]) -> Vec<String> {
    let mut events = vec![
        (
            Some("message-start"),
            json!({"id": "c-stream-1", "type": "message-start", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        ),
        (
            Some("content-start"),
            json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        ),
    ];
    for p in pieces {
        events.push((
            Some("content-delta"),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": p}}}}),
        ));
    }
    events.extend([
        (Some("content-end"), json!({"type": "content-end", "index": 0})),
        (Some("message-end"), json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE",
            "usage": {"billed_units": {"input_tokens": 9, "output_tokens": 4}, "tokens": {"input_tokens": 70, "output_tokens": 4}}}})),
    ]);
    sse(&events, "\n")
}

#[tokio::test]
async fn cohere_end_to_end() {
    let model = "command-a-03-2025";
    let mock = MockUpstream::start_checked(
        |r| check_cohere(r, "co-e2e"),
        [
            MockReply::ok(json!({
                "id": "c-chat-1", "finish_reason": "COMPLETE",
                "message": {"role": "assistant", "content": [{"type": "text", "text": "Il fait 21 °C à Paris."}]},
                "usage": {"billed_units": {"input_tokens": 30, "output_tokens": 8}, "tokens": {"input_tokens": 120, "output_tokens": 8}}
            })),
            sse_reply(cohere_stream(&["Bon", "jour ", "👋"])),
            cohere_error(429, "You are using a Trial key, which is limited to 10 API calls / minute."),
            MockReply::ok(json!({
                "id": "c-embed-1", "response_type": "embeddings_by_type",
                "embeddings": {"float": [[0.25, -0.5, 1.0], [0.0, 0.125, -1.0]]},
                "texts": ["a", "b"],
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}}
            })),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = json!({"provider": "cohere", "api_key": "co-e2e", "custom_host": mock.base});

    let answer = chat(&gw, &mock, &target, &conversation(model)).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");
    assert_eq!(answer["id"], "c-chat-1");

    let s = stream(&gw, &mock, &target, &streamed(model)).await;
    assert_eq!(s.content, "Bonjour 👋");
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    assert!(s.usage.is_some());

    rate_limited(&gw, &mock, &target, &hello(model), "cohere").await;

    let (status, _, text) =
        post(&gw, "/v1/embeddings", &target, &json!({"model": "embed-v4.0", "input": ["a", "b"]})).await;
    assert!(mock.rejected().is_empty(), "{:?}", mock.rejected());
    assert_eq!(status, 200, "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][1]["index"], 1);
    assert_eq!(list["data"][1]["embedding"], json!([0.0, 0.125, -1.0]));
    assert_eq!(list["usage"]["prompt_tokens"], 2);

    let got = mock.received();
    assert_eq!(got[0].json()["stream"], false, "Cohere's `stream` is always sent");
    assert_eq!(got[1].json()["stream"], true);
    assert_eq!(got[3].uri, "/v2/embed");
}

// ---------------------------------------------------------------------------------------
// The OpenAI wire format: Azure OpenAI and a table entry (groq)
// ---------------------------------------------------------------------------------------

fn openai_error(status: u16, message: &str, code: &str) -> MockReply {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}});
    MockReply::Json(status, vec![], body.to_string())
}

/// What every OpenAI-style chat endpoint insists on.
fn check_openai_chat(r: &Received) -> Result<(), MockReply> {
    ensure!(is_json(r), openai_error(400, "We could not parse the JSON body of your request.", "invalid_json"));
    let body = body_json(r).map_err(|m| openai_error(400, &m, "invalid_json"))?;
    ensure!(
        body.get("model").and_then(Value::as_str).is_some_and(|m| !m.is_empty()),
        openai_error(400, "you must provide a model parameter", "missing_model")
    );
    ensure!(
        body.get("messages").and_then(Value::as_array).is_some_and(|m| !m.is_empty()),
        openai_error(400, "'messages' must contain at least one message", "invalid_value")
    );
    Ok(())
}

fn openai_completion(text: &str) -> Value {
    json!({"id": "chatcmpl-e2e", "object": "chat.completion", "created": 1_700_000_000, "model": "m",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}})
}

fn openai_stream(pieces: &[&str]) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![(None, chunk(json!({"role": "assistant", "content": ""}), Value::Null))];
    events.extend(pieces.iter().map(|p| (None, chunk(json!({"content": p}), Value::Null))));
    events.push((None, chunk(json!({}), json!("stop"))));
    events.push((
        None,
        json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "m",
               "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}),
    ));
    let mut chunks = sse(&events, "\n");
    chunks.push("data: [DONE]\n\n".into());
    chunks
}

#[tokio::test]
async fn azure_openai_end_to_end() {
    let mock = MockUpstream::start_checked(
        |r| {
            ensure!(
                r.method == "POST" && r.uri == "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
                MockReply::Json(404, vec![], json!({"error": {"code": "404", "message": format!("Resource not found: {}", r.uri)}}).to_string())
            );
            ensure!(
                r.header("api-key") == Some("az-e2e") && r.header("authorization").is_none(),
                MockReply::Json(401, vec![], json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}).to_string())
            );
            check_openai_chat(r)
        },
        [
            MockReply::ok(openai_completion("Il fait 21 °C à Paris.")),
            sse_reply(openai_stream(&["Bon", "jour ", "👋"])),
            MockReply::Json(
                429,
                vec![("retry-after", "3".into())],
                json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current tier. Please retry after 3 seconds."}}).to_string(),
            ),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = json!({"provider": "azure-openai", "api_key": "az-e2e", "resource_name": "e2e-res",
                        "deployment_id": "gpt4o-prod", "api_version": "2024-10-21",
                        "custom_host": format!("{}/openai/deployments/gpt4o-prod", mock.base)});

    let answer = chat(&gw, &mock, &target, &conversation("gpt-4o")).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");

    let s = stream(&gw, &mock, &target, &streamed("gpt-4o")).await;
    assert_eq!(s.content, "Bonjour 👋");
    assert_eq!(s.usage.unwrap()["total_tokens"], 8);

    let (status, headers, text) = post(&gw, "/v1/chat/completions", &target, &hello("gpt-4o")).await;
    assert_eq!(status, 429, "{text}");
    assert_eq!(headers.get("retry-after").unwrap(), "3");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["provider"], "azure-openai");
    assert_eq!(body["error"]["code"], "429");
    assert!(mock.rejected().is_empty(), "{:?}", mock.rejected());
}

#[tokio::test]
async fn openai_compatible_table_entry_end_to_end() {
    let mock = MockUpstream::start_checked(
        |r| {
            ensure!(
                r.method == "POST" && r.uri == "/openai/v1/chat/completions",
                openai_error(404, &format!("Unknown request URL: POST {}", r.uri), "unknown_url")
            );
            ensure!(
                r.header("authorization") == Some("Bearer gsk-e2e"),
                openai_error(401, "Invalid API Key", "invalid_api_key")
            );
            check_openai_chat(r)
        },
        [
            MockReply::ok(openai_completion("Il fait 21 °C à Paris.")),
            sse_reply(openai_stream(&["Bon", "jour ", "👋"])),
            MockReply::Json(
                429,
                vec![("retry-after", "2".into())],
                json!({"error": {"message": "Rate limit reached for model `llama-3.3-70b-versatile` on tokens per minute (TPM).", "type": "tokens", "code": "rate_limit_exceeded"}}).to_string(),
            ),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = json!({"provider": "groq", "api_key": "gsk-e2e", "custom_host": format!("{}/openai/v1", mock.base)});
    let model = "llama-3.3-70b-versatile";

    let answer = chat(&gw, &mock, &target, &conversation(model)).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");
    let s = stream(&gw, &mock, &target, &streamed(model)).await;
    assert_eq!(s.content, "Bonjour 👋");
    let err = rate_limited(&gw, &mock, &target, &hello(model), "groq").await;
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    assert_eq!(mock.received()[0].json(), conversation(model), "an OpenAI-style body goes upstream untouched");
}

// ---------------------------------------------------------------------------------------
// Awkward but valid requests: whatever the gateway sends, the upstream must accept
// ---------------------------------------------------------------------------------------

/// OpenAI requests that real clients send and that upstream validators are picky about.
/// For each, the gateway may refuse up front with a clear 400 of its own (a feature the
/// provider lacks), but it must never send something the provider's API refuses.
fn awkward_requests(model: &str) -> Vec<(&'static str, Value)> {
    let weather = conversation(model)["tools"].clone();
    let user = |text: &str| json!({"role": "user", "content": text});
    vec![
        (
            "json_schema with $defs and a required tool choice, parallel calls off",
            json!({"model": model, "messages": [user("List two cities.")], "tools": weather,
                   "tool_choice": "required", "parallel_tool_calls": false,
                   "response_format": {"type": "json_schema", "json_schema": {"name": "cities", "strict": true, "schema": {
                       "type": "object", "additionalProperties": false, "required": ["cities"],
                       "properties": {"cities": {"type": "array", "items": {"$ref": "#/$defs/city"}}},
                       "$defs": {"city": {"type": "object", "additionalProperties": false, "required": ["name"],
                                          "properties": {"name": {"type": "string"}}}}}}}}),
        ),
        (
            "system, developer and a late system message; a whitespace stop; max_completion_tokens; top_p",
            json!({"model": model, "messages": [
                {"role": "developer", "content": "Answer in French."},
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                user("Hi"),
                {"role": "assistant", "content": [{"type": "text", "text": "Bonjour."}]},
                {"role": "system", "content": "Now be polite."},
                user("Again")
            ], "stop": ["\n\n", "END"], "max_completion_tokens": 50, "top_p": 1, "temperature": 0}),
        ),
        (
            "tool results given as text parts, tool_choice none with tools in history",
            json!({"model": model, "tools": weather, "tool_choice": "none", "messages": [
                user("Weather?"),
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "{\"temp_c\":3}"}]}
            ]}),
        ),
        (
            "a conversation that ends on a tool result (no user text after it)",
            json!({"model": model, "tools": weather, "messages": [
                user("Weather?"),
                {"role": "assistant", "content": "Let me check.", "tool_calls": [
                    {"id": "c9", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c9", "content": "sunny"}
            ]}),
        ),
        (
            "json_object with a seed, n = 1, user, and explicit nulls",
            json!({"model": model, "messages": [user("JSON please")], "response_format": {"type": "json_object"},
                   "seed": 3, "n": 1, "user": "u-1", "stop": null, "tools": null, "temperature": null}),
        ),
    ]
}

struct Upstream {
    name: &'static str,
    model: &'static str,
    check: fn(&Received, &str) -> Result<(), MockReply>,
    answer: fn() -> MockReply,
    target: fn(&MockUpstream) -> Value,
}

#[tokio::test]
async fn awkward_requests_are_never_refused_upstream() {
    let upstreams = [
        Upstream {
            name: "anthropic",
            model: "claude-3-5-haiku-20241022",
            check: |r, _| check_anthropic(r, "sk-ant-e2e"),
            answer: || MockReply::ok(anthropic_message("claude-3-5-haiku-20241022", "ok")),
            target: |m| json!({"provider": "anthropic", "api_key": "sk-ant-e2e", "custom_host": m.v1()}),
        },
        Upstream {
            name: "anthropic (sonnet 4.5)",
            model: "claude-sonnet-4-5-20250929",
            check: |r, _| check_anthropic(r, "sk-ant-e2e"),
            answer: || MockReply::ok(anthropic_message("claude-sonnet-4-5-20250929", "ok")),
            target: |m| json!({"provider": "anthropic", "api_key": "sk-ant-e2e", "custom_host": m.v1()}),
        },
        Upstream {
            name: "google",
            model: "gemini-2.5-flash",
            check: |r, model| check_google(r, "AIza-e2e", model),
            answer: || MockReply::ok(gemini_answer("gemini-2.5-flash", "ok")),
            target: |m| json!({"provider": "google", "api_key": "AIza-e2e", "custom_host": format!("{}/v1beta", m.base)}),
        },
        Upstream {
            name: "vertex-ai (gemini)",
            model: "gemini-2.5-flash",
            check: |r, model| check_vertex_gemini(r, model),
            answer: || MockReply::ok(gemini_answer("gemini-2.5-flash", "ok")),
            target: vertex_target,
        },
        Upstream {
            name: "vertex-ai (claude)",
            model: "claude-3-5-haiku@20241022",
            check: |r, model| check_vertex_claude(r, model),
            answer: || MockReply::ok(anthropic_message("claude-3-5-haiku-20241022", "ok")),
            target: vertex_target,
        },
        Upstream {
            name: "vertex-ai (claude opus 4.1)",
            model: "claude-opus-4-1@20250805",
            check: |r, model| check_vertex_claude(r, model),
            answer: || MockReply::ok(anthropic_message("claude-opus-4-1-20250805", "ok")),
            target: vertex_target,
        },
        Upstream {
            name: "bedrock (haiku 4.5 inference profile)",
            model: "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            check: |r, model| check_bedrock(r, model),
            answer: || MockReply::ok(converse_answer("ok")),
            target: bedrock_target,
        },
        Upstream {
            name: "bedrock",
            model: "anthropic.claude-3-5-haiku-20241022-v1:0",
            check: |r, model| check_bedrock(r, model),
            answer: || MockReply::ok(converse_answer("ok")),
            target: bedrock_target,
        },
        Upstream {
            name: "cohere",
            model: "command-a-03-2025",
            check: |r, _| check_cohere(r, "co-e2e"),
            answer: || {
                MockReply::ok(json!({"id": "c1", "finish_reason": "COMPLETE",
                    "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                    "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1}}}))
            },
            target: |m| json!({"provider": "cohere", "api_key": "co-e2e", "custom_host": m.base}),
        },
    ];
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut problems = Vec::new();
    for upstream in &upstreams {
        let requests = awkward_requests(upstream.model);
        let (check, model) = (upstream.check, upstream.model);
        let mock = MockUpstream::start_checked(
            move |r| check(r, model),
            (0..requests.len()).map(|_| (upstream.answer)()).collect::<Vec<_>>(),
        )
        .await;
        let target = (upstream.target)(&mock);
        for (what, body) in &requests {
            let before = mock.rejected().len();
            let (status, _, text) = post(&gw, "/v1/chat/completions", &target, body).await;
            let rejected = mock.rejected();
            if rejected.len() > before {
                problems.push(format!("{} / {what}: the upstream refused: {}", upstream.name, rejected[before]));
            } else if status != 200 {
                let code = serde_json::from_str::<Value>(&text).map(|v| v["error"]["code"].clone()).unwrap_or_default();
                // The gateway may refuse what the provider cannot do, clearly and up front.
                if !(status == 400 && code == "invalid_request") {
                    problems.push(format!("{} / {what}: {status} {text}", upstream.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
