//! Embed the Gatewise server in an axum application: your own routes beside the gateway's
//! OpenAI-compatible `/v1/*` (and `/health`), in one process and one listener.
//!
//! `cargo run --example embed_server` serves on a loopback port, calls both routes once
//! (the gateway one against a stand-in upstream) and exits.

use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::routing::{any, get, post};
use gateway_http::protocol::{ConfigNames, ConfigStore, Resolver};
use gateway_http::server::{AppState, DEFAULT_BODY_LIMIT};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let upstream = stand_in_upstream().await?;

    // The gateway's state: an engine, and configs resolved as the server resolves them
    // (here a default config, so callers need send none).
    let default_config = json!({"provider": "openai", "api_key": "sk-held-by-the-server", "custom_host": upstream});
    let resolver = Resolver::server(ConfigStore::new(Some(default_config), ConfigNames::None));
    let engine = gateway_http::engine(gateway_http::TransportOptions::default())?;
    let gateway = Arc::new(AppState::new(engine, resolver, DEFAULT_BODY_LIMIT));

    let serve_gateway = move |request: Request| {
        let gateway = gateway.clone();
        async move { gateway_http::server::handle(&gateway, request).await }
    };
    let app = axum::Router::new()
        .route("/my-app/status", get(|| async { "my own route" }))
        .route("/v1/{*rest}", any(serve_gateway.clone()))
        .route("/health", get(serve_gateway));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("serving on {base}");

    let own = call(&base, "GET", "/my-app/status", None).await?;
    println!("GET /my-app/status -> {own}");
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]});
    let answer = call(&base, "POST", "/v1/chat/completions", Some(body.to_string())).await?;
    println!("POST /v1/chat/completions -> {answer}");
    assert!(answer.contains("embedded hello"), "{answer}");
    Ok(())
}

/// A minimal HTTP/1.1 call over a fresh connection (the example needs no HTTP client).
async fn call(base: &str, method: &str, path: &str, body: Option<String>) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await?;
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    Ok(reply.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

async fn stand_in_upstream() -> std::io::Result<String> {
    let answer = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "embedded hello"}, "finish_reason": "stop"}]});
    let app = axum::Router::new().route("/v1/chat/completions", post(move || async move { Json(answer.clone()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
