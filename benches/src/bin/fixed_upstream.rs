//! A fixed-answer upstream for the load benchmark: every chat completion gets the same
//! small answer, in OpenAI's shape at `/v1/chat/completions` and in Anthropic's at
//! `/v1/messages` (for a translating config), so what is measured is the gateway, not the
//! model. A request with `"stream":true` gets a stream of `chunks` text deltas (the third
//! argument, 20 by default) in the matching shape, written back to back; with a `gap_ms`
//! (the fourth), the first event is written alone and the rest `gap_ms` later, so a client
//! can time the first token, or hold many streams open and idle.
//!
//! ```text
//! fixed_upstream [port] [threads] [chunks] [gap_ms]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;

const MESSAGE: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[{"type":"text","text":"Paris."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":2}}"#;

const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22}}"#;

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(9100);
    let threads: usize = std::env::args().nth(2).and_then(|p| p.parse().ok()).unwrap_or(1);
    let chunks: usize = std::env::args().nth(3).and_then(|p| p.parse().ok()).unwrap_or(20);
    let gap = std::time::Duration::from_millis(std::env::args().nth(4).and_then(|p| p.parse().ok()).unwrap_or(0));
    let openai_stream = Stream::new(openai_stream(chunks), gap);
    let anthropic_stream = Stream::new(anthropic_stream(chunks), gap);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    runtime.block_on(async move {
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(move |body: Bytes| async move { answer(&body, ANSWER, &openai_stream) }),
            )
            .route("/v1/messages", post(move |body: Bytes| async move { answer(&body, MESSAGE, &anthropic_stream) }));
        use axum::serve::ListenerExt;
        // Same socket options as the gateway's server, so the direct baseline is fair.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap().tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
}

/// A fixed stream: its first event, and the rest.
#[derive(Clone)]
struct Stream {
    first: Bytes,
    rest: Bytes,
    gap: std::time::Duration,
}

impl Stream {
    fn new(text: String, gap: std::time::Duration) -> Self {
        let text = Bytes::from(text);
        let split = text.windows(2).position(|w| w == b"\n\n").map_or(text.len(), |at| at + 2);
        Self { first: text.slice(..split), rest: text.slice(split..), gap }
    }

    fn body(&self) -> axum::body::Body {
        if self.gap.is_zero() {
            let mut all = Vec::with_capacity(self.first.len() + self.rest.len());
            all.extend_from_slice(&self.first);
            all.extend_from_slice(&self.rest);
            return axum::body::Body::from(all);
        }
        let (first, rest, gap) = (self.first.clone(), self.rest.clone(), self.gap);
        let parts = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(first) }).chain(
            futures::stream::once(async move {
                tokio::time::sleep(gap).await;
                Ok(rest)
            }),
        );
        axum::body::Body::from_stream(parts)
    }
}

/// The fixed answer, or the fixed stream when the request asks for one.
fn answer(request: &[u8], full: &'static str, stream: &Stream) -> Response {
    let streamed = request.windows(13).any(|w| w == b"\"stream\":true");
    if streamed {
        ([(CONTENT_TYPE, "text/event-stream")], stream.body()).into_response()
    } else {
        ([(CONTENT_TYPE, "application/json")], full).into_response()
    }
}

fn openai_stream(chunks: usize) -> String {
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    let mut out = chunk(r#"{"role":"assistant","content":""}"#, "null");
    for i in 0..chunks {
        out.push_str(&chunk(&format!(r#"{{"content":"tok{i} "}}"#), "null"));
    }
    out.push_str(&chunk("{}", r#""stop""#));
    out.push_str("data: [DONE]\n\n");
    out
}

fn anthropic_stream(chunks: usize) -> String {
    let event = |name: &str, data: &str| format!("event: {name}\ndata: {data}\n\n");
    let mut out = event(
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":1}}}"#,
    );
    out.push_str(&event(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    ));
    for i in 0..chunks {
        out.push_str(&event(
            "content_block_delta",
            &format!(r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"tok{i} "}}}}"#),
        ));
    }
    out.push_str(&event("content_block_stop", r#"{"type":"content_block_stop","index":0}"#));
    out.push_str(&event(
        "message_delta",
        &format!(r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{{"output_tokens":{chunks}}}}}"#),
    ));
    out.push_str(&event("message_stop", r#"{"type":"message_stop"}"#));
    out
}
