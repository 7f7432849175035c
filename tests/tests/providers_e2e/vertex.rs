//! Vertex AI: Gemini and Claude models, with service-account tokens.

use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, Received, start_gateway};
use serde_json::{Value, json};

use crate::anthropic::{anthropic_error, anthropic_message, anthropic_stream, check_messages_body};
use crate::common::*;
use crate::google::{check_generate_body, gemini_answer, gemini_stream, google_error};

pub(crate) const PROJECT: &str = "e2e-proj";
pub(crate) const REGION: &str = "us-east5";
pub(crate) const TOKEN: &str = "ya29.e2e-token";

pub(crate) fn vertex_path(publisher: &str, model: &str, method: &str) -> String {
    format!("/v1/projects/{PROJECT}/locations/{REGION}/publishers/{publisher}/models/{model}:{method}")
}

pub(crate) fn vertex_auth(r: &Received) -> Result<(), MockReply> {
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

pub(crate) fn check_vertex_gemini(r: &Received, model: &str) -> Result<(), MockReply> {
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

pub(crate) fn vertex_target(mock: &MockUpstream) -> Value {
    json!({"provider": "vertex-ai", "api_key": TOKEN, "vertex_project_id": PROJECT, "vertex_region": REGION,
           "custom_host": mock.v1()})
}

#[tokio::test]
pub(crate) async fn vertex_gemini_end_to_end() {
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

// Claude on Vertex AI (`vertex-ai`, publisher anthropic)

pub(crate) fn check_vertex_claude(r: &Received, model: &str) -> Result<(), MockReply> {
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
pub(crate) async fn vertex_claude_end_to_end() {
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
    assert_eq!(
        s.usage,
        Some(json!({"prompt_tokens": 17, "completion_tokens": 6, "total_tokens": 23,
                    "prompt_tokens_details": {"cached_tokens": 0}}))
    );

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

// Bedrock: Converse, SigV4 re-verified from scratch, binary event-stream answers
