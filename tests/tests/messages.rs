//! Anthropic's Messages API served by the real server over loopback: passed through to
//! Anthropic, translated for every other provider, with configs, fallbacks, streams and
//! errors in Anthropic's shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, answer, start_gateway};
use serde_json::{Value, json};

fn anthropic(mock: &MockUpstream) -> Value {
    json!({"provider": "anthropic", "api_key": "sk-ant-mock", "custom_host": mock.v1()})
}

fn openai(mock: &MockUpstream) -> Value {
    json!({"provider": "openai", "api_key": "sk-mock", "custom_host": mock.v1()})
}

fn message_request() -> Value {
    json!({
        "model": "claude-3-5-sonnet-20241022",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hi"}]
    })
}

fn anthropic_answer(text: &str) -> Value {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-sonnet-20241022",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 5, "output_tokens": 2, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 7}
    })
}

async fn post(base: &str, path: &str, config: &Value, extra: &[(&str, &str)], body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("x-portkey-config", config.to_string())
        .header("anthropic-version", "2023-06-01")
        .json(body);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_messages_request_reaches_anthropic_as_sent_with_its_headers() {
    let mock = MockUpstream::start([MockReply::ok(anthropic_answer("Hello"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let r = post(
        &gw.base,
        "/v1/messages",
        &anthropic(&mock),
        &[("anthropic-beta", "prompt-caching-2024-07-31")],
        &message_request(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, anthropic_answer("Hello"));
    let sent = &mock.received()[0];
    assert_eq!(sent.uri, "/v1/messages");
    assert_eq!(sent.json(), message_request());
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-mock"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("anthropic-beta"), Some("prompt-caching-2024-07-31"));
}

#[tokio::test]
async fn a_fallback_from_anthropic_to_openai_answers_in_anthropics_shape() {
    let claude = MockUpstream::start([MockReply::Json(
        529,
        vec![],
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).to_string(),
    )])
    .await;
    let gpt = MockUpstream::start([MockReply::ok(answer("Hello from gpt"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut second = openai(&gpt);
    second["override_params"] = json!({"model": "gpt-4o-mini"});
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [anthropic(&claude), second]});
    let r = post(&gw.base, "/v1/messages", &config, &[], &message_request()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-portkey-last-used-option-index"], "config.targets[1]");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"], json!([{"type": "text", "text": "Hello from gpt"}]));
    assert_eq!(body["stop_reason"], "end_turn");
    let sent = gpt.received()[0].json();
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": [{"type": "text", "text": "Be brief."}]}));
    assert_eq!(sent["max_completion_tokens"], 64);
}

#[tokio::test]
async fn a_streamed_messages_request_to_openai_comes_back_as_anthropic_events() {
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}});
    let gpt = MockUpstream::start([MockReply::Sse {
        chunks: vec![
            chunk(json!({"role": "assistant", "content": "Hel"}), Value::Null),
            chunk(json!({"content": "lo"}), Value::Null),
            chunk(json!({}), json!("length")),
            format!("data: {usage}\n\n"),
            "data: [DONE]\n\n".into(),
        ],
        gap: Duration::from_millis(1),
        then_break: false,
    }])
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut request = message_request();
    request["stream"] = json!(true);
    let r = post(&gw.base, "/v1/messages", &openai(&gpt), &[], &request).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "Anthropic's streams end with message_stop: {text}");
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(event.strip_prefix("event: ").unwrap(), data["type"], "{frame}");
            (data["type"].as_str().unwrap().to_owned(), data)
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let delta = &events[5].1;
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 3);
    assert_eq!(gpt.received()[0].json()["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn errors_on_the_messages_route_are_in_anthropics_shape() {
    let gw = start_gateway(GatewayOptions::default()).await;
    let mock = MockUpstream::start([]).await;
    let mut request = message_request();
    request.as_object_mut().unwrap().remove("max_tokens");
    let r = post(&gw.base, "/v1/messages", &openai(&mock), &[], &request).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "max_tokens", "{body}");
    assert!(mock.received().is_empty());

    // An upstream's own error keeps its status and reads as Anthropic's.
    let busy = MockUpstream::start([MockReply::error(429, "slow down")]).await;
    let r = post(&gw.base, "/v1/messages", &openai(&busy), &[], &message_request()).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn count_tokens_goes_to_anthropic_and_is_refused_where_no_provider_counts() {
    let mock = MockUpstream::start([MockReply::ok(json!({"input_tokens": 14}))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut request = message_request();
    request.as_object_mut().unwrap().remove("max_tokens");
    let r = post(&gw.base, "/v1/messages/count_tokens", &anthropic(&mock), &[], &request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"input_tokens": 14}));
    assert_eq!(mock.received()[0].uri, "/v1/messages/count_tokens");

    let other = MockUpstream::start([]).await;
    let r = post(&gw.base, "/v1/messages/count_tokens", &openai(&other), &[], &request).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(other.received().is_empty());
}
