//! A fixed-answer upstream for the load benchmark: every chat completion gets the same
//! small answer, in OpenAI's shape at `/v1/chat/completions` and in Anthropic's at
//! `/v1/messages` (for a translating config), so what is measured is the gateway, not the
//! model.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;

const MESSAGE: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[{"type":"text","text":"Paris."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":2}}"#;

const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22}}"#;

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(9100);
    let threads: usize = std::env::args().nth(2).and_then(|p| p.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    runtime.block_on(async move {
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(|_body: Bytes| async { ([(CONTENT_TYPE, "application/json")], ANSWER) }),
            )
            .route("/v1/messages", post(|_body: Bytes| async { ([(CONTENT_TYPE, "application/json")], MESSAGE) }));
        use axum::serve::ListenerExt;
        // Same socket options as the gateway's server, so the direct baseline is fair.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap().tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
}
