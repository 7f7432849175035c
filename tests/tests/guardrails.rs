//! Guardrail hooks through the real server, against mock providers and a mock webhook
//! over loopback: refusals (446) before and after the provider, failures that let the
//! answer through (246), registry guardrails by id, held and unheld streams, PII
//! redaction, the webhook's verdicts and failures, logs and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use gateway_http::telemetry::{LogFormat, Metrics, RequestLog, Telemetry};
use gateway_tests::log_lines::Lines;
use gateway_tests::mock::{Gateway, GatewayOptions, MockReply, MockUpstream, answer, hello, start_gateway};
use serde_json::{Value, json};

fn target(mock: &MockUpstream) -> Value {
    json!({"provider": "openai", "api_key": "sk-mock", "custom_host": mock.v1()})
}

/// `target` with hooks (or any other fields) set on it.
fn with(mut node: Value, fields: Value) -> Value {
    for (k, v) in fields.as_object().unwrap() {
        node[k] = v.clone();
    }
    node
}

/// POST `body` to `path` with `config` (inline, or a registry id given as a JSON string).
async fn post(gateway: &Gateway, path: &str, config: &Value, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", gateway.base))
        .header("x-portkey-config", config.as_str().map_or_else(|| config.to_string(), str::to_owned))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn call(gateway: &Gateway, path: &str, config: &Value, body: &Value) -> (u16, Value) {
    let r = post(gateway, path, config, body).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn chat(gateway: &Gateway, config: &Value, body: &Value) -> (u16, Value) {
    call(gateway, "/v1/chat/completions", config, body).await
}

fn asking(text: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})
}

fn no_secrets(deny: bool) -> Value {
    json!({"checks": [{"id": "default.regexMatch", "parameters": {"rule": "sk-[A-Za-z0-9]+", "not": true}}], "deny": deny})
}

async fn gateway() -> Gateway {
    start_gateway(GatewayOptions::default()).await
}

fn sse(parts: &[&str]) -> MockReply {
    let mut chunks: Vec<String> = parts
        .iter()
        .map(|p| format!("data: {}\n\n", json!({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]})))
        .collect();
    chunks.push(format!("data: {}\n\n", json!({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})));
    chunks.push("data: [DONE]\n\n".into());
    MockReply::Sse { chunks, gap: Duration::from_millis(2), then_break: false }
}

#[tokio::test]
async fn a_denying_before_hook_refuses_with_446_and_never_calls_the_provider() {
    let mock = MockUpstream::start([]).await;
    let gw = gateway().await;
    let config =
        with(target(&mock), json!({"before_request_hooks": [with(no_secrets(true), json!({"id": "no-secrets"}))]}));
    let (status, body) = chat(&gw, &config, &asking("my key is sk-abc123")).await;
    assert_eq!(status, 446, "{body}");
    assert_eq!(body["error"]["code"], "hooks_failed");
    let hook = &body["hook_results"]["before_request_hooks"][0];
    assert_eq!(
        (hook["id"].as_str(), hook["verdict"].as_bool(), hook["deny"].as_bool()),
        (Some("no-secrets"), Some(false), Some(true))
    );
    assert_eq!(hook["checks"][0]["id"], "default.regexMatch");
    assert_eq!(hook["checks"][0]["data"]["match"], "sk-abc123");
    assert_eq!(body["hook_results"]["after_request_hooks"], json!([]));
    assert!(mock.received().is_empty(), "the provider is never called");

    // A clean request passes, with the results beside the answer.
    mock.push(MockReply::ok(answer("fine")));
    let (status, body) = chat(&gw, &config, &asking("no secrets here")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "fine");
    assert_eq!(body["hook_results"]["before_request_hooks"][0]["verdict"], true);
}

#[tokio::test]
async fn a_failed_hook_without_deny_answers_246_with_the_results() {
    let mock = MockUpstream::start([MockReply::ok(answer("Sure thing"))]).await;
    let gw = gateway().await;
    let config = with(
        target(&mock),
        json!({"input_guardrails": [{"default.wordCount": {"maxWords": 3}}],
               "output_guardrails": [{"endsWith": {"suffix": "Thanks"}}]}),
    );
    let (status, body) = chat(&gw, &config, &asking("one two three four five")).await;
    assert_eq!(status, 246, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "Sure thing");
    let results = &body["hook_results"];
    assert_eq!(results["before_request_hooks"][0]["id"], "input_guardrail_0");
    assert_eq!(results["before_request_hooks"][0]["checks"][0]["data"]["wordCount"], 5);
    assert_eq!(results["after_request_hooks"][0]["checks"][0]["id"], "default.endsWith", "`default.` added to the key");
    assert_eq!(results["after_request_hooks"][0]["verdict"], false);
    assert_eq!(mock.received().len(), 1);
}

#[tokio::test]
async fn registry_guardrails_are_named_by_id_and_unknown_ones_are_config_errors() {
    let mock = MockUpstream::start([MockReply::ok(answer("ok")), MockReply::ok(answer("ok"))]).await;
    let registry = json!({
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": mock.v1()}},
        "guardrails": {"no-secrets": no_secrets(true)},
        "configs": {"guarded": {"virtual_key": "openai-prod", "input_guardrails": ["no-secrets"]}}
    });
    let path = std::env::temp_dir().join(format!("gatewise-guardrails-{}.json", std::process::id()));
    std::fs::write(&path, registry.to_string()).unwrap();
    let gw = start_gateway(GatewayOptions { registry: Some(path), ..GatewayOptions::default() }).await;

    let (status, body) = chat(&gw, &json!("guarded"), &asking("sk-live1234")).await;
    assert_eq!(status, 446, "{body}");
    assert_eq!(body["hook_results"]["before_request_hooks"][0]["id"], "no-secrets");

    let by_id = json!({"virtual_key": "openai-prod", "before_request_hooks": [{"id": "no-secrets"}]});
    let (status, body) = chat(&gw, &by_id, &asking("sk-live1234")).await;
    assert_eq!(status, 446, "{body}");
    let (status, _) = chat(&gw, &by_id, &asking("hello")).await;
    assert_eq!(status, 200);

    let unknown = json!({"virtual_key": "openai-prod", "before_request_hooks": [{"id": "nope"}]});
    let (status, body) = chat(&gw, &unknown, &hello()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "before_request_hooks[0].id");
    assert!(body["error"]["message"].as_str().unwrap().contains("known: no-secrets"), "{body}");

    let bad_check =
        json!({"virtual_key": "openai-prod", "output_guardrails": [{"default.regexMatchh": {"rule": "x"}}]});
    let (status, body) = chat(&gw, &bad_check, &hello()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown check `default.regexMatchh`"), "{body}");
    assert_eq!(mock.received().len(), 1);
}

#[tokio::test]
async fn a_denying_after_hook_moves_a_fallback_to_its_next_target() {
    let chatty = MockUpstream::start([MockReply::ok(answer("Here is some prose."))]).await;
    let precise = MockUpstream::start([MockReply::ok(answer("{\"answer\": \"42\"}"))]).await;
    let gw = gateway().await;
    let schema = json!({"type": "object", "required": ["answer"]});
    let config = json!({
        "strategy": {"mode": "fallback"},
        "after_request_hooks": [{"id": "json-only", "deny": true, "checks": [{"id": "default.jsonSchema", "parameters": {"schema": schema}}]}],
        "targets": [target(&chatty), target(&precise)]
    });
    let r = post(&gw, "/v1/chat/completions", &config, &asking("answer in JSON")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-portkey-last-used-option-index"], "config.targets[1]");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "{\"answer\": \"42\"}");
    assert_eq!(
        body["hook_results"]["after_request_hooks"][0]["checks"][0]["data"]["matchedJson"],
        json!({"answer": "42"})
    );

    // With one target, the refusal is the answer: the completion is discarded.
    let chatty = MockUpstream::start([MockReply::ok(answer("prose"))]).await;
    let single = with(target(&chatty), json!({"after_request_hooks": config["after_request_hooks"].clone()}));
    let (status, body) = chat(&gw, &single, &asking("x")).await;
    assert_eq!(status, 446, "{body}");
    assert!(body.get("choices").is_none());
    assert_eq!(body["hook_results"]["after_request_hooks"][0]["deny"], true);
}

#[tokio::test]
async fn a_refusal_is_retried_only_when_446_is_among_the_retry_statuses() {
    let mock = MockUpstream::start([MockReply::ok(answer("prose")), MockReply::ok(answer("{\"a\": 1}"))]).await;
    let gw = gateway().await;
    let config = with(
        target(&mock),
        json!({"retry": {"attempts": 1, "on_status_codes": [446]},
               "output_guardrails": [{"default.jsonKeys": {"keys": ["a"], "operator": "all"}, "deny": true}]}),
    );
    let (status, body) = chat(&gw, &config, &asking("x")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "{\"a\": 1}");
    assert_eq!(mock.received().len(), 2);
}

#[tokio::test]
async fn a_stream_is_held_for_a_denying_after_hook_and_passes_through_otherwise() {
    let mock =
        MockUpstream::start([sse(&["The password ", "is hunter2"]), sse(&["All ", "good"]), sse(&["All ", "fine"])])
            .await;
    let lines = Lines::default();
    let log = RequestLog::to_writer(LogFormat::Json, false, lines.clone()).unwrap();
    let gw = start_gateway(GatewayOptions {
        telemetry: Telemetry { log: Some(log), ..Telemetry::default() },
        ..GatewayOptions::default()
    })
    .await;
    let deny = with(
        target(&mock),
        json!({"output_guardrails": [{"default.contains": {"words": ["password"], "operator": "none"}, "deny": true}]}),
    );
    let streamed = |text: &str| with(asking(text), json!({"stream": true}));
    let (status, body) = chat(&gw, &deny, &streamed("x")).await;
    assert_eq!(status, 446, "a held stream is refused whole: {body}");
    assert_eq!(body["hook_results"]["after_request_hooks"][0]["checks"][0]["data"]["foundWords"], json!(["password"]));

    let r = post(&gw, "/v1/chat/completions", &deny, &streamed("x")).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("All ") && text.ends_with("data: [DONE]\n\n"), "{text}");

    // Without deny the stream is not held; the results reach the log when it ends.
    let watch = with(
        target(&mock),
        json!({"output_guardrails": [{"default.contains": {"words": ["fine"], "operator": "none"}}]}),
    );
    let r = post(&gw, "/v1/chat/completions", &watch, &streamed("x")).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("fine"));
    let records = lines.records(3).await;
    let hooks = &records[2]["hooks"]["after_request_hooks"][0];
    assert_eq!(hooks["verdict"], false, "{}", records[2]);
    assert_eq!(hooks["failed_checks"], json!(["default.contains"]));
    assert_eq!(records[0]["status"], 446);
    assert_eq!(records[0]["hooks"]["after_request_hooks"][0]["deny"], true);
}

#[tokio::test]
async fn pii_is_refused_or_redacted_before_it_leaves() {
    let mock = MockUpstream::start([MockReply::ok(answer("noted"))]).await;
    let gw = gateway().await;
    let text = "I am jane@example.com, card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, +1 415 555 0132";
    let block = with(target(&mock), json!({"input_guardrails": [{"default.pii": {}, "deny": true}]}));
    let (status, body) = chat(&gw, &block, &asking(text)).await;
    assert_eq!(status, 446, "{body}");
    let found = &body["hook_results"]["before_request_hooks"][0]["checks"][0]["data"]["found"];
    assert_eq!(found, &json!(["email", "credit_card", "iban", "phone"]));
    assert!(mock.received().is_empty());

    let redact = with(target(&mock), json!({"input_guardrails": [{"default.pii": {"redact": true}, "deny": true}]}));
    let mut body = asking(text);
    body["messages"] =
        json!([{"role": "system", "content": "Support for bob@corp.io"}, {"role": "user", "content": text}]);
    let (status, answer) = chat(&gw, &redact, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["hook_results"]["before_request_hooks"][0]["transformed"], true);
    let sent = mock.received()[0].json();
    assert_eq!(sent["messages"][0]["content"], "Support for [REDACTED_EMAIL]", "every message is redacted");
    assert_eq!(
        sent["messages"][1]["content"],
        "I am [REDACTED_EMAIL], card [REDACTED_CREDIT_CARD], IBAN [REDACTED_IBAN], [REDACTED_PHONE]"
    );
    assert_eq!(sent["model"], "gpt-4o-mini");
}

#[tokio::test]
async fn the_webhooks_verdict_decides_and_its_failures_pass_unless_fail_on_error() {
    let webhook = MockUpstream::start([
        MockReply::ok(json!({"verdict": false, "data": {"reason": "off-topic"}})),
        MockReply::Delay(Duration::from_millis(800), Box::new(MockReply::ok(json!({"verdict": false})))),
        MockReply::Json(200, vec![], "not json".into()),
        MockReply::error(500, "down"),
        MockReply::ok(json!({"verdict": true, "transformedData": {"request": {"json": {"messages": [{"role": "user", "content": "rewritten"}]}}}})),
    ])
    .await;
    let mock =
        MockUpstream::start([MockReply::ok(answer("a")), MockReply::ok(answer("b")), MockReply::ok(answer("c"))]).await;
    let gw = gateway().await;
    let hook = |fail_on_error: bool| {
        let parameters = json!({"webhookURL": format!("{}/check", webhook.v1()), "headers": {"x-webhook-key": "wk-1"},
                                "timeout": 200, "failOnError": fail_on_error});
        with(
            target(&mock),
            json!({"before_request_hooks": [{"id": "topic", "deny": true, "checks": [{"id": "default.webhook", "parameters": parameters}]}]}),
        )
    };
    let mut request = asking("hello");
    request["temperature"] = json!(0.5);
    let (status, body) = chat(&gw, &hook(false), &request).await;
    assert_eq!(status, 446, "{body}");
    assert_eq!(body["hook_results"]["before_request_hooks"][0]["checks"][0]["data"], json!({"reason": "off-topic"}));
    let posted = &webhook.received()[0];
    assert_eq!(posted.header("x-webhook-key"), Some("wk-1"));
    let context = posted.json();
    assert_eq!(context["eventType"], "beforeRequestHook");
    assert_eq!(context["request"]["json"]["temperature"], 0.5);
    assert_eq!(context["request"]["text"], "hello");
    assert_eq!(context["provider"], "openai");
    assert!(context["request"].get("headers").is_none(), "the caller's headers are never posted");

    // Slow: the timeout is an error, which passes…
    let (status, body) = chat(&gw, &hook(false), &request).await;
    assert_eq!(status, 200, "{body}");
    let check = &body["hook_results"]["before_request_hooks"][0]["checks"][0];
    assert!(check["error"]["message"].as_str().unwrap().contains("did not answer within 200 ms"), "{check}");
    // …as does a malformed answer…
    let (status, body) = chat(&gw, &hook(false), &request).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["hook_results"]["before_request_hooks"][0]["checks"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
    // …unless the check fails on errors.
    let (status, body) = chat(&gw, &hook(true), &request).await;
    assert_eq!(status, 446, "{body}");
    // The service may rewrite the request's texts.
    let (status, _) = chat(&gw, &hook(false), &request).await;
    assert_eq!(status, 200);
    assert_eq!(mock.received().last().unwrap().json()["messages"][0]["content"], "rewritten");
}

#[tokio::test]
async fn a_messages_caller_reads_the_refusal_in_anthropics_shape_with_the_results() {
    let mock = MockUpstream::start([]).await;
    let gw = gateway().await;
    let config = with(
        target(&mock),
        json!({"input_guardrails": [{"default.contains": {"words": ["forbidden"], "operator": "none"}, "deny": true}]}),
    );
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": "a forbidden word"}]}]});
    let (status, answer) = call(&gw, "/v1/messages", &config, &body).await;
    assert_eq!(status, 446, "{answer}");
    assert_eq!(answer["type"], "error");
    assert_eq!(answer["error"]["code"], "hooks_failed");
    assert_eq!(answer["hook_results"]["before_request_hooks"][0]["verdict"], false);
}

#[tokio::test]
async fn metrics_count_check_results_by_phase_check_and_result() {
    let mock = MockUpstream::start([MockReply::ok(answer("Thanks")), MockReply::ok(answer("x"))]).await;
    let metrics = Arc::new(Metrics::new(&[]));
    let telemetry = Telemetry { metrics: Some(metrics), ..Telemetry::default() };
    let gw = start_gateway(GatewayOptions { telemetry, ..GatewayOptions::default() }).await;
    let config = with(
        target(&mock),
        json!({"input_guardrails": [{"default.wordCount": {"maxWords": 2}}], "output_guardrails": [{"default.endsWith": {"suffix": "Thanks"}}]}),
    );
    assert_eq!(chat(&gw, &config, &asking("hi")).await.0, 200);
    assert_eq!(chat(&gw, &config, &asking("one two three")).await.0, 246);
    let text = reqwest::get(format!("{}/metrics", gw.base)).await.unwrap().text().await.unwrap();
    for line in [
        r#"gatewise_guardrail_checks_total{phase="before_request",check="default.wordCount",result="pass"} 1"#,
        r#"gatewise_guardrail_checks_total{phase="before_request",check="default.wordCount",result="fail"} 1"#,
        r#"gatewise_guardrail_checks_total{phase="after_request",check="default.endsWith",result="pass"} 1"#,
        r#"gatewise_guardrail_checks_total{phase="after_request",check="default.endsWith",result="fail"} 1"#,
        r#"gatewise_requests_total{provider="openai",model="m",status="246",error_code=""} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}
