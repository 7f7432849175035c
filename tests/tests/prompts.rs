//! The prompt library through the real server: a registry prompt rendered
//! (`/v1/prompts/{id}/render`) and run (`/v1/prompts/{id}/completions`) on the provider
//! entry it names, against a mock provider over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gateway_http::telemetry::{LogFormat, RequestLog, Telemetry};
use gateway_tests::log_lines::Lines;
use gateway_tests::mock::{Gateway, GatewayOptions, MockReply, MockUpstream, answer, start_gateway};
use serde_json::{Value, json};

async fn call(gateway: &Gateway, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{}{path}", gateway.base)).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn library(mock: &MockUpstream, other: &MockUpstream) -> Gateway {
    library_logged(mock, other, Telemetry::default()).await
}

async fn library_logged(mock: &MockUpstream, other: &MockUpstream, telemetry: Telemetry) -> Gateway {
    let registry = json!({
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": mock.v1()},
                      "other": {"provider": "openai", "api_key": "sk-other", "custom_host": other.v1()}},
        "prompts": {"support-reply": {"virtual_key": "openai-prod", "version": "7", "model": "gpt-4o-mini", "max_tokens": 256,
                                      "messages": [{"role": "system", "content": "You help {{product}} users. {{>sig}}"},
                                                   {"role": "user", "content": "{{question}}"}]}},
        "partials": {"sig": "Be brief."}
    });
    static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("gatewise-prompts-{}-{serial}.json", std::process::id()));
    std::fs::write(&path, registry.to_string()).unwrap();
    start_gateway(GatewayOptions { registry: Some(path), telemetry, ..GatewayOptions::default() }).await
}

#[tokio::test]
async fn a_prompt_renders_to_the_request_body_it_stands_for() {
    let (mock, other) = (MockUpstream::start([]).await, MockUpstream::start([]).await);
    let gateway = library(&mock, &other).await;
    let variables = json!({"product": "Gatewise", "question": "Is {{product}} fast?"});
    let (status, body) =
        call(&gateway, "/v1/prompts/support-reply/render", &[], &json!({"variables": variables, "temperature": 0.2}))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"success": true, "data": {"model": "gpt-4o-mini", "max_tokens": 256, "temperature": 0.2,
            "messages": [{"role": "system", "content": "You help Gatewise users. Be brief."},
                         {"role": "user", "content": "Is {{product}} fast?"}]}}),
        "a value is never read as a template"
    );
    assert!(mock.received().is_empty(), "rendering sends nothing");
}

#[tokio::test]
async fn a_prompt_completion_runs_on_its_entry_with_the_callers_overrides() {
    let mock = MockUpstream::start([MockReply::ok(answer("Yes.")), MockReply::ok(answer("Other."))]).await;
    let other = MockUpstream::start([MockReply::ok(answer("Other."))]).await;
    let lines = Lines::default();
    let log = RequestLog::to_writer(LogFormat::Json, false, lines.clone()).unwrap();
    let gateway = library_logged(&mock, &other, Telemetry { log: Some(log), ..Telemetry::default() }).await;
    let call_body = json!({"variables": {"product": "Gatewise", "question": "Fast?"}, "max_tokens": 32, "prompt_id": "support-reply"});
    let (status, body) = call(&gateway, "/v1/prompts/support-reply/completions", &[], &call_body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "Yes.");
    let sent = mock.received()[0].json();
    assert_eq!(mock.received()[0].header("authorization"), Some("Bearer sk-prod"), "the prompt's entry");
    assert_eq!(sent["max_tokens"], 32, "the call's override wins");
    assert_eq!(sent.get("prompt_id"), None, "the id is the route's, never sent upstream");
    assert_eq!(sent["messages"][0]["content"], "You help Gatewise users. Be brief.");
    assert_eq!(sent["messages"][1], json!({"role": "user", "content": "Fast?"}));

    // The caller's own choice of provider wins over the prompt's.
    let headers = [("x-portkey-virtual-key", "other")];
    let (status, body) = call(&gateway, "/v1/prompts/support-reply/completions", &headers, &call_body).await;
    assert_eq!((status, &body["choices"][0]["message"]["content"]), (200, &json!("Other.")));
    assert_eq!(other.received().len(), 1);

    for record in lines.records(2).await {
        assert_eq!(
            (&record["prompt_id"], &record["prompt_version"]),
            (&json!("support-reply"), &json!("7")),
            "{record}"
        );
        assert_eq!(record["endpoint"], "/v1/chat/completions");
    }
}

#[tokio::test]
async fn missing_variables_and_unknown_prompts_are_400s_naming_them() {
    let (mock, other) = (MockUpstream::start([]).await, MockUpstream::start([]).await);
    let gateway = library(&mock, &other).await;
    let (status, body) =
        call(&gateway, "/v1/prompts/support-reply/completions", &[], &json!({"variables": {"product": "G"}})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "variables.question");
    assert!(body["error"]["message"].as_str().unwrap().contains("question"));
    let (status, body) = call(&gateway, "/v1/prompts/nope/render", &[], &json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
    let (status, _) = call(&gateway, "/v1/prompts/support-reply/render", &[], &json!(["not an object"])).await;
    assert_eq!(status, 400);
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn a_gateway_key_renders_only_the_prompts_it_may_run() {
    let mock = MockUpstream::start([]).await;
    let registry = json!({
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod", "custom_host": mock.v1()},
                      "other": {"provider": "openai", "api_key": "sk-other", "custom_host": mock.v1()}},
        "keys": {"team-a": {"hash": gateway_core::registry::key_hash("gw-a"), "providers": ["openai-prod"]},
                 "team-b": {"hash": gateway_core::registry::key_hash("gw-b"), "providers": ["other"]}},
        "prompts": {"support-reply": {"virtual_key": "openai-prod", "model": "gpt-4o-mini",
                                      "messages": [{"role": "user", "content": "{{question}}"}]}}
    });
    let path = std::env::temp_dir().join(format!("gatewise-prompts-keys-{}.json", std::process::id()));
    std::fs::write(&path, registry.to_string()).unwrap();
    let gateway = start_gateway(GatewayOptions { registry: Some(path), ..GatewayOptions::default() }).await;
    let body = json!({"variables": {"question": "Hi?"}});
    let (status, answer) =
        call(&gateway, "/v1/prompts/support-reply/render", &[("authorization", "Bearer gw-a")], &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["messages"][0]["content"], "Hi?");
    let (status, answer) =
        call(&gateway, "/v1/prompts/support-reply/render", &[("authorization", "Bearer gw-b")], &body).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "forbidden");
    let (status, _) = call(&gateway, "/v1/prompts/support-reply/render", &[], &body).await;
    assert_eq!(status, 401);
    assert!(mock.received().is_empty());
}
