//! Cohere v2 chat, end to end.

use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, Received, start_gateway};
use serde_json::{Map, Value, json};

use crate::common::*;

pub(crate) fn cohere_error(status: u16, message: &str) -> MockReply {
    MockReply::Json(status, vec![], json!({"id": "e2e-err-id", "message": message}).to_string())
}

pub(crate) const COHERE_CHAT_FIELDS: &[&str] = &[
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

pub(crate) fn check_cohere_chat(body: &Map<String, Value>) -> Result<(), String> {
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

pub(crate) fn check_cohere(r: &Received, key: &str) -> Result<(), MockReply> {
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

pub(crate) fn cohere_stream(pieces: &[&str]) -> Vec<String> {
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
pub(crate) async fn cohere_end_to_end() {
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

// The OpenAI wire format: Azure OpenAI and a table entry (groq)
