//! A `Transport` of your own: the engine does no I/O, so anything that can send an
//! `HttpRequest` and sleep can carry it — a test double, a recording proxy, an HTTP stack
//! you already run. This one answers from memory and records what it was sent, and shows a
//! retry on 429 and a fallback without any network.
//!
//! `cargo run --example custom_transport`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gateway_core::engine::{HttpResponse, Transport, TransportError};
use gateway_core::providers::HttpRequest;
use gateway_core::{Config, Endpoint, Engine, GatewayRequest, RequestBody, RequestOptions};
use serde_json::json;

/// Answers by host: `rate-limited.example` always says 429, every other host answers.
#[derive(Debug, Default)]
struct InMemory {
    sent: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Transport for InMemory {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(request.url.clone());
        let (status, body) = if request.url.contains("rate-limited.example") {
            (429, json!({"error": {"message": "slow down", "type": "rate_limit"}}))
        } else {
            (
                200,
                json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "from memory"},
                                      "finish_reason": "stop"}]}),
            )
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        let body = futures::stream::iter([Ok(Bytes::from(body.to_string()))]);
        Ok(HttpResponse { status, headers, body: Box::pin(body), upgraded: None })
    }

    async fn sleep(&self, _duration: Duration) {
        // Backoff between retries takes no time here.
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let transport = Arc::new(InMemory::default());
    let engine = Engine::new(transport.clone());
    let config = Config::from_json(&json!({
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai", "api_key": "k", "custom_host": "https://rate-limited.example/v1",
             "retry": {"attempts": 2, "on_status_codes": [429]}},
            {"provider": "groq", "api_key": "k"}
        ]
    }))?;
    let body = RequestBody::json(r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#.into())?;
    let request = GatewayRequest::json(Endpoint::ChatCompletions, body);
    let options = RequestOptions { config: Some(Arc::new(config)), ..Default::default() };
    let response = engine.handle(&request, &options).await;

    let sent = transport.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    println!("status {} via {:?}", response.status, response.route.provider);
    for url in &sent {
        println!("sent: {url}");
    }
    assert_eq!(response.status, 200);
    assert_eq!(sent.len(), 4, "three tries on the rate-limited host, then the fallback");
    Ok(())
}
