//! The transport's own HTTP/1.1 client (gateway-http's `h1`), against a scripted upstream on
//! loopback that answers each request with raw bytes, written in pieces: framings, reuse,
//! and upstreams that misbehave.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gateway_core::{Config, Endpoint, Engine, GatewayRequest, RequestBody, RequestOptions, ResponseBody};
use gateway_tests::raw_upstream;
use tokio::io::AsyncWriteExt;

const ANSWER: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;

/// How the upstream answers one request: the pieces it writes (a short pause between
/// them), and whether it then closes the connection (at once).
struct Script {
    pieces: Vec<Vec<u8>>,
    close: bool,
}

/// An upstream on its own thread and runtime that answers every request by `script`; its
/// port and the connections it accepted.
fn upstream(script: impl Fn() -> Script + Send + Sync + 'static) -> (u16, Arc<AtomicUsize>) {
    let script = Arc::new(script);
    raw_upstream::spawn(move |mut socket| {
        let script = script.clone();
        async move {
            while raw_upstream::read_request(&mut socket).await.is_some() {
                let Script { pieces, close } = script();
                for (i, piece) in pieces.iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    if socket.get_mut().write_all(piece).await.is_err() {
                        return;
                    }
                }
                if close {
                    return;
                }
            }
        }
    })
}

fn options(port: u16) -> RequestOptions {
    let host = format!("http://127.0.0.1:{port}/v1");
    let config =
        Config::from_json(&serde_json::json!({"provider": "openai", "api_key": "sk-test", "custom_host": host}))
            .unwrap();
    RequestOptions { config: Some(Arc::new(config)), ..Default::default() }
}

/// One chat completion: its complete body, or the error's code.
async fn call(engine: &Engine, port: u16) -> Result<Vec<u8>, String> {
    let body = RequestBody::json(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#.into()).unwrap();
    let request = GatewayRequest::json(Endpoint::ChatCompletions, body);
    let response =
        tokio::time::timeout(Duration::from_secs(10), engine.handle(&request, &options(port))).await.expect("no hang");
    match response.result {
        Ok(answer) => {
            let ResponseBody::Full(bytes) = answer.body else { panic!("a complete answer") };
            Ok(bytes.to_vec())
        }
        Err(e) => Err(format!("{} {}", e.code, e.message)),
    }
}

fn engine() -> Engine {
    gateway_http::engine(gateway_http::TransportOptions::default()).unwrap()
}

/// `text` in chunks of `size`, each a chunk of the chunked coding, in its own piece.
fn chunked(text: &str, size: usize) -> Vec<Vec<u8>> {
    let mut pieces: Vec<Vec<u8>> = text
        .as_bytes()
        .chunks(size)
        .map(|chunk| [format!("{:x};ext=1\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat())
        .collect();
    pieces.push(b"0\r\nx-trailer: t\r\n\r\n".to_vec());
    pieces
}

#[tokio::test]
async fn a_chunked_answer_in_pieces_is_read_whole_and_its_connection_reused() {
    let (port, connections) = upstream(|| {
        let mut pieces = vec![b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n".to_vec()];
        pieces.push(b"transfer-encoding: chunked\r\n\r\n".to_vec());
        pieces.extend(chunked(ANSWER, 7));
        Script { pieces, close: false }
    });
    let engine = engine();
    for _ in 0..3 {
        assert_eq!(call(&engine, port).await.unwrap(), ANSWER.as_bytes());
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_answer_that_says_connection_close_is_not_reused() {
    let (port, connections) = upstream(|| {
        let head = format!("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", ANSWER.len());
        Script { pieces: vec![head.into_bytes(), ANSWER.as_bytes().to_vec()], close: true }
    });
    let engine = engine();
    for _ in 0..3 {
        assert_eq!(call(&engine, port).await.unwrap(), ANSWER.as_bytes());
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_answer_without_a_length_ends_when_the_upstream_closes() {
    let (port, connections) = upstream(|| {
        let (first, rest) = ANSWER.split_at(20);
        let pieces = vec![b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), first.into(), rest.into()];
        Script { pieces, close: true }
    });
    let engine = engine();
    for _ in 0..2 {
        assert_eq!(call(&engine, port).await.unwrap(), ANSWER.as_bytes());
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_interim_answer_is_skipped() {
    let (port, _) = upstream(|| {
        let head = format!("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", ANSWER.len());
        Script { pieces: vec![head.into_bytes(), ANSWER.as_bytes().to_vec()], close: false }
    });
    assert_eq!(call(&engine(), port).await.unwrap(), ANSWER.as_bytes());
}

#[tokio::test]
async fn a_close_the_runtime_has_not_yet_seen_is_found_before_the_connection_is_reused() {
    // The upstream closes just after answering, and the caller's thread then blocks, so
    // the close reaches the socket while the runtime is not looking: the pool must find it
    // on the socket itself, not only in the runtime's last news of it, or the next request
    // would be written into a closed connection and fail.
    let (port, connections) = upstream(|| {
        let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{ANSWER}", ANSWER.len());
        Script { pieces: vec![answer.into_bytes()], close: true }
    });
    let engine = engine();
    for _ in 0..10 {
        assert_eq!(call(&engine, port).await.unwrap(), ANSWER.as_bytes());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(connections.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn an_answer_cut_short_is_an_error_and_not_a_shorter_answer() {
    let (port, _) = upstream(|| {
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", ANSWER.len());
        Script { pieces: vec![head.into_bytes(), ANSWER.as_bytes()[..30].to_vec()], close: true }
    });
    let error = call(&engine(), port).await.unwrap_err();
    assert!(error.contains("closed the connection before the answer was complete"), "{error}");
}

#[tokio::test]
async fn an_upstream_that_never_ends_its_head_gets_an_error_not_our_memory() {
    let (port, _) = upstream(|| {
        let mut pieces = vec![b"HTTP/1.1 200 OK\r\n".to_vec()];
        pieces.extend((0..20).map(|i| format!("x-filler-{i}: {}\r\n", "y".repeat(4000)).into_bytes()));
        Script { pieces, close: false }
    });
    let error = call(&engine(), port).await.unwrap_err();
    assert!(error.contains("answer head is over 64 KiB"), "{error}");
}

#[tokio::test]
async fn an_endless_chunk_size_line_is_an_error() {
    let (port, _) = upstream(|| {
        let mut pieces = vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec()];
        pieces.extend((0..3).map(|_| vec![b'1'; 2000]));
        Script { pieces, close: false }
    });
    let error = call(&engine(), port).await.unwrap_err();
    assert!(error.contains("chunk-size line from the upstream is over 4 KiB"), "{error}");
}

#[tokio::test]
async fn an_upstream_that_answers_before_reading_a_large_body_is_heard() {
    // The upstream refuses on the head alone (as a size or auth check does) and closes
    // without reading the 8 MB body: the caller gets its 413, not a broken pipe.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for socket in listener.incoming() {
            let mut socket = std::io::BufReader::new(socket.unwrap());
            let mut line = String::new();
            while socket.read_line(&mut line).unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
            let error = r#"{"error":{"message":"too large","type":"invalid_request_error"}}"#;
            let answer = format!(
                "HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{error}",
                error.len()
            );
            socket.get_mut().write_all(answer.as_bytes()).unwrap();
        }
    });
    let content = "x".repeat(8 << 20);
    let body =
        RequestBody::json(format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{content}"}}]}}"#).into())
            .unwrap();
    let request = GatewayRequest::json(Endpoint::ChatCompletions, body);
    let response = tokio::time::timeout(Duration::from_secs(10), engine().handle(&request, &options(port)))
        .await
        .expect("no hang");
    assert_eq!(response.status, 413, "{:?}", response.result.err());
}
