//! Shared plumbing: the conversation every provider is driven with, and calls through
//! the real server.

use std::time::Duration;

use gateway_tests::mock::{Gateway, MockReply, MockUpstream, Received};
use serde_json::{Map, Value, json};

/// A conversation that exercises what upstream validators are strict about: a system
/// prompt, an image given as a data URL, an assistant turn with empty text beside two
/// parallel tool calls, both results (consecutive `tool` messages), then a new user turn
/// (three user-side messages in a row), a tool definition, a string `stop` and `user`.
pub(crate) fn conversation(model: &str) -> Value {
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
pub(crate) const PNG_1X1: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==";

pub(crate) fn streamed(model: &str) -> Value {
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

pub(crate) fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

pub(crate) async fn post(
    gw: &Gateway,
    path: &str,
    target: &Value,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, String) {
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
pub(crate) async fn chat(gw: &Gateway, mock: &MockUpstream, target: &Value, body: &Value) -> Value {
    let (status, _, text) = post(gw, "/v1/chat/completions", target, body).await;
    assert!(mock.rejected().is_empty(), "the mock refused the request: {:?}", mock.rejected());
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// What a streamed answer came to.
#[derive(Debug)]
pub(crate) struct Streamed {
    pub(crate) content: String,
    pub(crate) finish_reason: Option<String>,
    pub(crate) usage: Option<Value>,
}

/// A streamed chat through the server: every event must be a chunk, the last event must
/// be `[DONE]`, and the chunks must form one well-ordered answer.
pub(crate) async fn stream(gw: &Gateway, mock: &MockUpstream, target: &Value, body: &Value) -> Streamed {
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

pub(crate) fn summarise(chunks: Vec<Value>) -> Streamed {
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
pub(crate) async fn rate_limited(
    gw: &Gateway,
    mock: &MockUpstream,
    target: &Value,
    body: &Value,
    provider: &str,
) -> Value {
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

pub(crate) fn assert_openai_completion(answer: &Value, content: &str) {
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

pub(crate) fn body_json(r: &Received) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err("the request body must be a JSON object".into()),
        Err(e) => Err(format!("the request body is not valid JSON: {e}")),
    }
}

pub(crate) fn unknown_key<'a>(body: &'a Map<String, Value>, allowed: &[&str]) -> Option<&'a str> {
    body.keys().map(String::as_str).find(|k| !allowed.contains(k))
}

pub(crate) fn is_json(r: &Received) -> bool {
    r.header("content-type").is_some_and(|ct| ct.starts_with("application/json"))
}

/// SSE events as a server writes them (`event:` line optional), CRLF or LF.
pub(crate) fn sse(events: &[(Option<&str>, Value)], eol: &str) -> Vec<String> {
    events
        .iter()
        .map(|(event, data)| match event {
            Some(e) => format!("event: {e}{eol}data: {data}{eol}{eol}"),
            None => format!("data: {data}{eol}{eol}"),
        })
        .collect()
}

pub(crate) fn sse_reply(chunks: Vec<String>) -> MockReply {
    MockReply::Sse { chunks, gap: Duration::from_millis(2), then_break: false }
}

// Anthropic (and the Messages body Vertex forwards to Claude)
