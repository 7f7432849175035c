//! The transport's connection pool, against a bare HTTP/1.1 upstream on loopback that
//! counts its connections and records what it was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway_core::{Config, Endpoint, Engine, GatewayRequest, RequestBody, RequestOptions, ResponseBody};
use gateway_tests::raw_upstream;
use tokio::io::AsyncWriteExt;

const ANSWER: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;

/// What the upstream saw.
#[derive(Default)]
struct Seen {
    heads: Mutex<Vec<String>>,
    /// Connections the gateway closed.
    closed: AtomicUsize,
}

/// A keep-alive upstream on its own thread and runtime; with `close_after_answer`, it closes
/// every connection right after answering, without saying so (as an upstream's idle
/// timeout does), so a pooled connection is found dead when it is reused. The port, the
/// connections it accepted, and what it saw.
fn upstream(close_after_answer: bool) -> (u16, Arc<AtomicUsize>, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let recorder = seen.clone();
    let (port, connections) = raw_upstream::spawn(move |mut socket| {
        let recorder = recorder.clone();
        async move {
            loop {
                let Some((head, _)) = raw_upstream::read_request(&mut socket).await else {
                    recorder.closed.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                recorder.heads.lock().unwrap().push(head);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANSWER}",
                    ANSWER.len()
                );
                socket.get_mut().write_all(answer.as_bytes()).await.unwrap();
                if close_after_answer {
                    return;
                }
            }
        }
    });
    (port, connections, seen)
}

fn call_options(host: &str) -> RequestOptions {
    let config =
        Config::from_json(&serde_json::json!({"provider": "openai", "api_key": "sk-test", "custom_host": host}))
            .unwrap();
    RequestOptions { config: Some(Arc::new(config)), ..Default::default() }
}

async fn call(engine: &Engine, options: &RequestOptions) {
    let body = RequestBody::json(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#.into()).unwrap();
    let request = GatewayRequest::json(Endpoint::ChatCompletions, body);
    let response = tokio::time::timeout(Duration::from_secs(10), engine.handle(&request, options)).await.unwrap();
    let answer = response.result.unwrap();
    let ResponseBody::Full(bytes) = answer.body else { panic!("a complete answer") };
    assert_eq!(&bytes[..], ANSWER.as_bytes());
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection_in_origin_form_with_a_host_header() {
    let (port, connections, seen) = upstream(false);
    let engine = gateway_http::engine(gateway_http::TransportOptions::default()).unwrap();
    let options = call_options(&format!("http://127.0.0.1:{port}/v1"));
    for _ in 0..5 {
        call(&engine, &options).await;
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1, "one kept-alive connection for every request");
    let heads = seen.heads.lock().unwrap();
    assert_eq!(heads.len(), 5);
    for head in heads.iter() {
        assert!(head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"), "origin form: {head}");
        assert!(head.to_ascii_lowercase().contains(&format!("host: 127.0.0.1:{port}\r\n")), "{head}");
    }
}

#[tokio::test]
async fn the_host_header_never_carries_credentials_written_in_the_url() {
    let (port, _, seen) = upstream(false);
    let engine = gateway_http::engine(gateway_http::TransportOptions::default()).unwrap();
    call(&engine, &call_options(&format!("http://user:secret@127.0.0.1:{port}/v1"))).await;
    let heads = seen.heads.lock().unwrap();
    assert!(!heads[0].contains("secret"), "{}", heads[0]);
    assert!(heads[0].to_ascii_lowercase().contains(&format!("host: 127.0.0.1:{port}\r\n")), "{}", heads[0]);
}

#[tokio::test]
async fn a_pooled_connection_the_upstream_closed_is_replaced_without_failing_the_request() {
    let (port, connections, seen) = upstream(true);
    let engine = gateway_http::engine(gateway_http::TransportOptions::default()).unwrap();
    let options = call_options(&format!("http://127.0.0.1:{port}/v1"));
    for _ in 0..4 {
        call(&engine, &options).await;
        // Sometimes the close is seen before the next request, sometimes only when the
        // request is written: both must work.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen.heads.lock().unwrap().len(), 4);
    assert_eq!(connections.load(Ordering::SeqCst), 4);
}

#[test]
fn each_runtime_gets_connections_of_its_own() {
    // A current-thread runtime drives its connections only inside its block_on: one
    // lent to a request on another runtime would never answer.
    let (port, connections, _) = upstream(false);
    let engine = gateway_http::engine(gateway_http::TransportOptions::default()).unwrap();
    let options = call_options(&format!("http://127.0.0.1:{port}/v1"));
    let first = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let second = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    first.block_on(call(&engine, &options));
    second.block_on(call(&engine, &options));
    first.block_on(call(&engine, &options));
    second.block_on(call(&engine, &options));
    assert_eq!(connections.load(Ordering::SeqCst), 2, "one connection per runtime, each reused");
}

#[test]
fn the_connections_of_a_runtime_that_has_gone_are_closed_when_the_next_one_comes() {
    // A Python thread's runtime goes with the thread: its pooled connections are swept
    // (closed) when another runtime next takes its pool, not kept open for the idle expiry.
    let (port, connections, seen) = upstream(false);
    let engine = gateway_http::engine(gateway_http::TransportOptions::default()).unwrap();
    let options = call_options(&format!("http://127.0.0.1:{port}/v1"));
    let gone = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    gone.block_on(call(&engine, &options));
    drop(gone);
    assert_eq!(seen.closed.load(Ordering::SeqCst), 0);
    let next = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    next.block_on(call(&engine, &options));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seen.closed.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(seen.closed.load(Ordering::SeqCst), 1, "the gone runtime's connection was closed");
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}
