//! OpenAI's Responses API served by the real server over loopback: passed through to
//! OpenAI, translated through chat for every other provider, with configs, fallbacks,
//! named stream events and errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, answer, start_gateway};
use serde_json::{Value, json};

fn target(provider: &str, mock: &MockUpstream) -> Value {
    json!({"provider": provider, "api_key": "sk-mock", "custom_host": mock.v1()})
}

async fn post(base: &str, config: &Value, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/responses"))
        .header("x-portkey-config", config.to_string())
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The `(event name, data)` of every SSE frame, checking that each is named by its type.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            let name = event.strip_prefix("event: ").unwrap().to_owned();
            assert_eq!(name, data["type"], "{frame}");
            (name, data)
        })
        .collect()
}

fn chat_chunk(delta: Value, finish: Value) -> String {
    let c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "llama-3.3-70b",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

#[tokio::test]
async fn a_responses_request_reaches_openai_as_sent_and_its_events_come_back_named() {
    let response = json!({"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-4.1",
        "output": [], "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}});
    let sse = |kind: &str, n: u64| {
        let mut data = json!({"type": kind, "sequence_number": n});
        if kind == "response.completed" {
            data["response"] = response.clone();
        }
        format!("event: {kind}\ndata: {data}\n\n")
    };
    let mock = MockUpstream::start([
        MockReply::ok(response.clone()),
        MockReply::Sse {
            chunks: vec![
                sse("response.created", 0),
                sse("response.output_text.delta", 1),
                sse("response.completed", 2),
            ],
            gap: Duration::from_millis(1),
            then_break: false,
        },
    ])
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let request = json!({"model": "gpt-4.1", "input": "Hi", "previous_response_id": "resp_0",
        "tools": [{"type": "web_search"}]});
    let r = post(&gw.base, &target("openai", &mock), &request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), response);
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let r = post(&gw.base, &target("openai", &mock), &streamed).await;
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    let kinds: Vec<String> = events(&text).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["response.created", "response.output_text.delta", "response.completed"]);
    let sent = mock.received();
    assert_eq!((sent[0].uri.as_str(), sent[0].json()), ("/v1/responses", request));
    assert_eq!(sent[1].json(), streamed);
}

#[tokio::test]
async fn a_fallback_to_a_chat_only_provider_streams_a_translated_response() {
    let openai = MockUpstream::start([MockReply::error(503, "overloaded")]).await;
    let groq = MockUpstream::start([MockReply::Sse {
        chunks: vec![
            chat_chunk(json!({"role": "assistant", "content": "Hel"}), Value::Null),
            chat_chunk(json!({"content": "lo"}), Value::Null),
            chat_chunk(json!({}), json!("stop")),
            format!(
                "data: {}\n\n",
                json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "llama-3.3-70b",
                    "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
            ),
            "data: [DONE]\n\n".into(),
        ],
        gap: Duration::from_millis(1),
        then_break: false,
    }])
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut second = target("groq", &groq);
    second["override_params"] = json!({"model": "llama-3.3-70b"});
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [target("openai", &openai), second]});
    let request = json!({"model": "gpt-4.1", "instructions": "Be brief.", "input": "Hi", "stream": true});
    let r = post(&gw.base, &config, &request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-portkey-last-used-option-index"], "config.targets[1]");
    let events = events(&r.text().await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let done = &events[9].1["response"];
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["usage"]["input_tokens"], 9);
    assert_eq!(done["instructions"], "Be brief.");
    let sent = groq.received()[0].json();
    assert_eq!(sent["model"], "llama-3.3-70b");
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn stateful_requests_off_openai_and_broken_streams_are_errors_never_answers() {
    let groq = MockUpstream::start([
        MockReply::ok(answer("unused")),
        MockReply::Sse {
            chunks: vec![chat_chunk(json!({"role": "assistant", "content": "Hel"}), Value::Null)],
            gap: Duration::from_millis(1),
            then_break: true,
        },
    ])
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let r =
        post(&gw.base, &target("groq", &groq), &json!({"model": "m", "input": "And?", "previous_response_id": "r"}))
            .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "previous_response_id", "{body}");
    assert!(groq.received().is_empty());

    // Served once the history is sent whole, then the stream breaks: an `error` event
    // ends it, never `response.completed`.
    let r = post(&gw.base, &target("groq", &groq), &json!({"model": "m", "input": "Hi"})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["output"][0]["content"][0]["text"], "unused");
    let r = post(&gw.base, &target("groq", &groq), &json!({"model": "m", "input": "Hi", "stream": true})).await;
    let events = events(&r.text().await.unwrap());
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(data["error"]["code"], "stream_error", "{data}");
    assert!(events.iter().all(|(k, _)| k != "response.completed"));
}
