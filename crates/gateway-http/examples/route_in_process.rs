//! Route a chat completion in-process: a fallback from a failing target to a working one,
//! with no gateway server in between.
//!
//! Self-contained: two stand-in OpenAI upstreams run on loopback (one answers 503, one
//! answers), so `cargo run --example route_in_process` needs no API key. Point the targets
//! at real providers (drop `custom_host`, set `api_key`) to use it for real.

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::post;
use gateway_core::{Config, Endpoint, GatewayRequest, RequestBody, RequestOptions, ResponseBody};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let down = upstream(StatusCode::SERVICE_UNAVAILABLE, json!({"error": {"message": "overloaded"}})).await?;
    let up = upstream(StatusCode::OK, completion("Hello from the second target")).await?;

    let engine = gateway_http::engine(gateway_http::TransportOptions::default())?;
    let config = Config::from_json(&json!({
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai", "api_key": "sk-first", "custom_host": down},
            {"provider": "openai", "api_key": "sk-second", "custom_host": up}
        ]
    }))?;
    let body = RequestBody::json(r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#.into())?;
    let request = GatewayRequest::json(Endpoint::ChatCompletions, body);
    let options = RequestOptions { config: Some(Arc::new(config)), ..Default::default() };

    let response = engine.handle(&request, &options).await;
    let answer = match &response.result {
        Ok(answer) => answer,
        Err(error) => return Err(error.clone().into()),
    };
    let ResponseBody::Full(bytes) = &answer.body else { return Err("expected a complete answer".into()) };
    let answer: Value = serde_json::from_slice(bytes)?;
    println!("status {} from {:?}", response.status, response.route.option_index.as_deref().unwrap_or(""));
    println!("attempts: {:?}", response.route.attempts.iter().map(|a| a.status).collect::<Vec<_>>());
    println!("answer: {}", answer["choices"][0]["message"]["content"]);
    assert_eq!(response.route.option_index.as_deref(), Some("config.targets[1]"));
    Ok(())
}

/// A stand-in OpenAI upstream on loopback answering every chat request with `body`; its
/// base URL (`http://127.0.0.1:PORT/v1`).
async fn upstream(status: StatusCode, body: Value) -> std::io::Result<String> {
    let app =
        axum::Router::new().route("/v1/chat/completions", post(move || async move { (status, Json(body.clone())) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn completion(content: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}})
}
