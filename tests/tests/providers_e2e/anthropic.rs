//! Anthropic Messages, end to end.

use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, Received, start_gateway};
use serde_json::{Map, Value, json};

use crate::common::*;

pub(crate) fn anthropic_error(status: u16, kind: &str, message: &str) -> MockReply {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    MockReply::Json(status, vec![("request-id", "req_mock".into())], body.to_string())
}

pub(crate) const MESSAGES_FIELDS: &[&str] = &[
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
    "output_config",
];

/// Claude models from Opus 4.1 on refuse `temperature` and `top_p` together.
pub(crate) const ONE_SAMPLING_KNOB: &[&str] = &[
    "claude-opus-4-1",
    "claude-opus-4-5",
    "claude-opus-4-6",
    "claude-sonnet-4-5",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
];

pub(crate) fn refuses_temperature_with_top_p(model: &str) -> bool {
    ONE_SAMPLING_KNOB.iter().any(|m| model.contains(m))
}

pub(crate) const WHITESPACE_STOP: &str = "stop_sequences: each stop sequence must contain non-whitespace";

pub(crate) const BOTH_SAMPLING_KNOBS: &str =
    "`temperature` and `top_p` cannot both be specified for this model. Please use only one.";

/// The Messages API's own validation (the error texts are Anthropic's). `vertex`: the
/// rawPredict flavour, where `model` is in the URL and `anthropic_version` in the body.
pub(crate) fn check_messages_body(body: &Map<String, Value>, vertex: bool, model: &str) -> Result<(), String> {
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
    if let Some(config) = body.get("output_config") {
        let format = &config["format"];
        if config.as_object().is_none_or(|c| c.keys().any(|k| k != "format" && k != "effort")) {
            return Err("output_config: Extra inputs are not permitted".into());
        }
        if !format.is_null() {
            if format["type"] != "json_schema" || !format["schema"].is_object() {
                return Err("output_config.format: a json_schema format needs an object `schema`".into());
            }
            if !refuses_temperature_with_top_p(model) {
                return Err(format!("'{model}' does not support output format."));
            }
        }
    }
    if let Some(choice) = body.get("tool_choice") {
        if matches!(choice["type"].as_str(), Some("any" | "tool"))
            && body.get("thinking").is_some_and(|t| t["type"] == "enabled")
        {
            return Err("Thinking may not be enabled when tool_choice forces tool use.".into());
        }
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

pub(crate) fn check_anthropic(r: &Received, key: &str) -> Result<(), MockReply> {
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

pub(crate) fn anthropic_message(model: &str, text: &str) -> Value {
    json!({
        "id": "msg_01E2E", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 42, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    })
}

/// A Messages SSE transcript as Anthropic (and Vertex's streamRawPredict) sends it.
pub(crate) fn anthropic_stream(model: &str, pieces: &[&str]) -> Vec<String> {
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
pub(crate) async fn anthropic_end_to_end() {
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
    assert_eq!(
        s.usage,
        Some(json!({"prompt_tokens": 17, "completion_tokens": 6, "total_tokens": 23,
                    "prompt_tokens_details": {"cached_tokens": 0}}))
    );

    let err = rate_limited(&gw, &mock, &target, &hello(model), "anthropic").await;
    assert_eq!(err["error"]["type"], "rate_limit_error");

    let got = mock.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].json().get("stream"), None);
    assert_eq!(got[1].json()["stream"], true);
}

// Gemini: Google AI (`google`) and Vertex AI (`vertex-ai`)
