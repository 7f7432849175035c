//! OpenAI, Azure OpenAI and the OpenAI-compatible table, end to end.

use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, Received, start_gateway};
use serde_json::{Value, json};

use crate::common::*;

pub(crate) fn openai_error(status: u16, message: &str, code: &str) -> MockReply {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}});
    MockReply::Json(status, vec![], body.to_string())
}

/// What every OpenAI-style chat endpoint insists on.
pub(crate) fn check_openai_chat(r: &Received) -> Result<(), MockReply> {
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

pub(crate) fn openai_completion(text: &str) -> Value {
    json!({"id": "chatcmpl-e2e", "object": "chat.completion", "created": 1_700_000_000, "model": "m",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}})
}

pub(crate) fn openai_stream(pieces: &[&str]) -> Vec<String> {
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
pub(crate) async fn azure_openai_end_to_end() {
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
pub(crate) async fn openai_compatible_table_entry_end_to_end() {
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

// Awkward but valid requests: whatever the gateway sends, the upstream must accept

#[tokio::test]
async fn every_openai_family_provider_end_to_end() {
    // Azure speaks OpenAI with a URL scheme of its own, tested above; embedding and
    // reranking providers (Voyage, Jina) have no chat.
    let chats = |s: &str| {
        gateway_core::providers::lookup(s).is_some_and(|p| p.supports(gateway_core::Endpoint::ChatCompletions))
    };
    let family: Vec<&str> = gateway_core::providers::slugs()
        .into_iter()
        .filter(|s| gateway_core::providers::speaks_openai(s) && *s != "azure-openai" && chats(s))
        .collect();
    assert!(family.contains(&"openai") && family.contains(&"groq") && family.len() >= 10, "{family:?}");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let gw = start_gateway(GatewayOptions::default()).await;
    for slug in family {
        assert!(readme.contains(&format!("`{slug}`")), "the README's provider table names {slug}");
        let key = format!("key-{slug}");
        let expected_auth = format!("Bearer {key}");
        let mock = MockUpstream::start_checked(
            move |r| {
                ensure!(
                    r.method == "POST" && r.uri == "/v1/chat/completions",
                    openai_error(404, &format!("Unknown request URL: POST {}", r.uri), "unknown_url")
                );
                ensure!(
                    r.header("authorization") == Some(expected_auth.as_str()),
                    openai_error(401, "Invalid API Key", "invalid_api_key")
                );
                check_openai_chat(r)
            },
            [MockReply::ok(openai_completion(slug)), sse_reply(openai_stream(&[slug, "!"]))],
        )
        .await;
        let target = json!({"provider": slug, "api_key": key, "custom_host": mock.v1()});
        let answer = chat(&gw, &mock, &target, &conversation("some-model")).await;
        assert_openai_completion(&answer, slug);
        let s = stream(&gw, &mock, &target, &streamed("some-model")).await;
        assert_eq!(s.content, format!("{slug}!"), "{slug}");
        assert!(mock.rejected().is_empty(), "{slug}: {:?}", mock.rejected());
    }
}
