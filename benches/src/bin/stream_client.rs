//! A streaming client for the load benchmarks, over plain HTTP/1.1 on loopback.
//!
//! ```text
//! stream_client ttft <port> <requests> [header:value ...]
//! stream_client idle <port> <streams> [header:value ...]
//! ```
//!
//! - `ttft`: sequential streamed chat completions on one kept-alive connection; prints
//!   `{"ttft_p50_us", "ttft_p99_us", "total_p50_us"}`: the time to the first event
//!   (`data:` in the body) and to the end of the answer.
//! - `idle`: opens `streams` streamed completions at once, each on its own connection, reads
//!   each up to its first event, prints `open <n>` and holds them until killed (the upstream
//!   is to pause after the first event: `fixed_upstream ... <gap_ms>`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BODY: &str =
    r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"What is the capital of France?"}]}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().expect("ttft or idle");
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("a port");
    let count: usize = args.next().and_then(|n| n.parse().ok()).expect("a count");
    let headers: String = args.map(|h| format!("{h}\r\n")).collect();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\nauthorization: Bearer sk-bench\r\n{headers}content-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        match mode.as_str() {
            "ttft" => ttft(port, count, request.as_bytes()).await,
            "idle" => idle(port, count, request.into_bytes()).await,
            other => panic!("unknown mode {other}"),
        }
    });
}

async fn ttft(port: u16, requests: usize, request: &[u8]) {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    socket.set_nodelay(true).unwrap();
    let mut buffer = Vec::with_capacity(1 << 16);
    let mut first = Vec::with_capacity(requests);
    let mut total = Vec::with_capacity(requests);
    for i in 0..requests + requests / 10 {
        let started = Instant::now();
        socket.write_all(request).await.unwrap();
        buffer.clear();
        let mut first_at = None;
        loop {
            let mut chunk = [0u8; 16384];
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed mid-answer");
            buffer.extend_from_slice(&chunk[..n]);
            if first_at.is_none() && contains(&buffer, b"data: ") {
                first_at = Some(started.elapsed());
            }
            // A chunked answer ends with its zero-length chunk.
            if buffer.ends_with(b"\r\n0\r\n\r\n") {
                break;
            }
        }
        assert!(buffer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buffer[..buffer.len().min(200)]));
        if i >= requests / 10 {
            first.push(first_at.unwrap().as_secs_f64() * 1e6);
            total.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    first.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    let at = |xs: &[f64], q: f64| xs[((xs.len() - 1) as f64 * q) as usize].round();
    println!(
        "{}",
        serde_json::json!({"ttft_p50_us": at(&first, 0.5), "ttft_p99_us": at(&first, 0.99), "total_p50_us": at(&total, 0.5)})
    );
}

async fn idle(port: u16, streams: usize, request: Vec<u8>) {
    let request = std::sync::Arc::new(request);
    let mut open = Vec::with_capacity(streams);
    // In batches, so the listen backlog is not overrun.
    for batch in (0..streams).collect::<Vec<_>>().chunks(256) {
        let mut tasks = Vec::with_capacity(batch.len());
        for _ in batch {
            let request = request.clone();
            tasks.push(tokio::spawn(async move {
                let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                socket.write_all(&request).await.unwrap();
                let mut buffer = Vec::new();
                while !contains(&buffer, b"data: ") {
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "closed before the first event");
                    buffer.extend_from_slice(&chunk[..n]);
                }
                socket
            }));
        }
        for task in tasks {
            open.push(task.await.unwrap());
        }
    }
    println!("open {}", open.len());
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
