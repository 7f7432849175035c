//! A mock realtime provider: a real WebSocket server on `127.0.0.1:0` that records every
//! handshake it receives and plays a small part of OpenAI's Realtime API.
//!
//! On a session it sends `session.created` (naming the `?model=`), answers every
//! `response.create` with a `response.done` carrying usage, echoes any other text event
//! as `{"type": "echo", "received": <event>}` and binary messages as they came, and
//! closes (1000, "bye") when asked with `{"type": "test.close"}`.

use std::sync::{Arc, Mutex};

use http::HeaderMap;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// One handshake as the mock received it.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// Path and query.
    pub uri: String,
    /// Every header.
    pub headers: HeaderMap,
}

impl Handshake {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The usage each `response.done` reports.
pub fn response_usage() -> Value {
    json!({"total_tokens": 180, "input_tokens": 120, "output_tokens": 60,
           "input_token_details": {"cached_tokens": 20, "text_tokens": 40, "audio_tokens": 80},
           "output_token_details": {"text_tokens": 10, "audio_tokens": 50}})
}

/// A running mock.
pub struct MockRealtime {
    base: String,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
}

impl MockRealtime {
    /// Accept sessions.
    pub async fn start() -> Self {
        Self::spawn(None).await
    }

    /// Refuse every handshake with `status` and an OpenAI-style error.
    pub async fn refusing(status: u16) -> Self {
        Self::spawn(Some(status)).await
    }

    async fn spawn(refuse: Option<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let seen = handshakes.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut model = String::new();
                    let callback = |request: &Request, mut response: Response| {
                        let uri = request.uri().to_string();
                        model = request
                            .uri()
                            .query()
                            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("model=")))
                            .unwrap_or("")
                            .to_owned();
                        seen.lock().unwrap().push(Handshake { uri, headers: request.headers().clone() });
                        if let Some(status) = refuse {
                            let body = json!({"error": {"message": "mock refuses", "type": "server_error"}});
                            let mut refusal = ErrorResponse::new(Some(body.to_string()));
                            *refusal.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            return Err(refusal);
                        }
                        let offered = request.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
                        if offered.is_some_and(|o| o.split(',').any(|p| p.trim() == "realtime")) {
                            response.headers_mut().insert("sec-websocket-protocol", "realtime".parse().unwrap());
                        }
                        response.headers_mut().insert("x-request-id", "req_mock_realtime".parse().unwrap());
                        Ok(response)
                    };
                    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
                    session(&mut socket, &model).await;
                });
            }
        });
        Self { base, handshakes }
    }

    /// The base URL a target's `custom_host` names (`http://127.0.0.1:PORT/v1`).
    pub fn v1(&self) -> String {
        format!("{}/v1", self.base)
    }

    /// Every handshake so far.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().unwrap().clone()
    }
}

async fn session(socket: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, model: &str) {
    use futures::{SinkExt, StreamExt};
    let created = json!({"type": "session.created", "event_id": "event_1", "session": {"model": model}});
    if socket.send(Message::text(created.to_string())).await.is_err() {
        return;
    }
    let mut responses = 0;
    while let Some(Ok(message)) = socket.next().await {
        let reply = match message {
            Message::Text(text) => {
                let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match event["type"].as_str() {
                    Some("response.create") => {
                        responses += 1;
                        let done = json!({"type": "response.done", "event_id": format!("event_done_{responses}"),
                            "response": {"id": format!("resp_{responses}"), "status": "completed",
                                         "usage": response_usage()}});
                        Message::text(done.to_string())
                    }
                    Some("test.close") => {
                        let frame = CloseFrame { code: CloseCode::Normal, reason: Utf8Bytes::from_static("bye") };
                        let _ = socket.close(Some(frame)).await;
                        return;
                    }
                    _ => Message::text(json!({"type": "echo", "received": event}).to_string()),
                }
            }
            binary @ Message::Binary(_) => binary,
            Message::Close(_) => return,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}
