//! The floor for in-process calls: `Engine::handle` over the hyper transport, called from
//! Rust, sequentially, against an upstream on loopback. The Python and Node overhead
//! benches run it beside their own calls, on their own upstream, so the cost a binding
//! adds over the engine shows as a difference of two figures measured side by side.
//!
//! ```text
//! inprocess_floor <base url, e.g. http://127.0.0.1:9100/v1> <calls> [caller|pool|spawn] [stream]
//! ```
//!
//! How the call is driven:
//! - `caller`: a current-thread runtime on the calling thread. The request, the upstream
//!   connection's task and the answer all run on one thread: no hand-off at all.
//! - `pool` (the default): `block_on` on the calling thread over a multi-thread runtime,
//!   as the Python binding's sync API does; the pooled connection is driven by the
//!   runtime's workers, so each call crosses threads and back.
//! - `spawn`: the call spawned onto a one-worker runtime and its answer sent back over a
//!   channel, as a Node call is (the JS thread may not block).
//!
//! `stream` asks for a streamed answer and reads every chunk. After `calls / 10` warm-up
//! calls it prints one JSON line: `{"mode", "calls", "mean_us", "p50_us", "p99_us",
//! "chunks"}` (chunks per call, 0 when not streaming).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use gateway_core::{Config, Endpoint, Engine, GatewayRequest, RequestBody, RequestOptions, ResponseBody};

const BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"temperature":0.2}"#;
const STREAM_BODY: &str = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"temperature":0.2}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().expect("usage: inprocess_floor <base url> <calls> [caller|pool|spawn] [stream]");
    let calls: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(4000);
    let mode = args.next().unwrap_or_else(|| "pool".to_owned());
    let stream = args.next().as_deref() == Some("stream");

    let config =
        Config::from_json(&serde_json::json!({"provider": "openai", "api_key": "sk-bench", "custom_host": base}))
            .expect("config");
    let options = RequestOptions { config: Some(Arc::new(config)), ..Default::default() };
    let request = GatewayRequest::json(
        Endpoint::ChatCompletions,
        RequestBody::json(if stream { STREAM_BODY } else { BODY }.into()).unwrap(),
    );
    let engine = gateway_http::engine(gateway_http::TransportOptions::default()).unwrap();
    let call = Call { engine, request: Arc::new(request), options: Arc::new(options) };

    let runner: Box<dyn FnMut() -> usize> = match mode.as_str() {
        "caller" => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let call = call.clone();
            Box::new(move || runtime.block_on(call.clone().run()))
        }
        "pool" => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            let call = call.clone();
            Box::new(move || runtime.block_on(call.clone().run()))
        }
        "spawn" => {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let call = call.clone();
            Box::new(move || {
                let (sender, receiver) = std::sync::mpsc::sync_channel(1);
                let call = call.clone();
                runtime.spawn(async move { sender.send(call.run().await).unwrap() });
                receiver.recv().unwrap()
            })
        }
        other => panic!("unknown mode {other}: caller, pool or spawn"),
    };
    let mut runner = runner;
    let mut chunks = 0;
    for _ in 0..(calls / 10).max(1) {
        chunks = runner();
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        runner();
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{}",
        serde_json::json!({"mode": mode, "calls": calls, "mean_us": round(mean), "p50_us": round(at(0.5)), "p99_us": round(at(0.99)), "chunks": if stream { chunks } else { 0 }})
    );
}

fn round(us: f64) -> f64 {
    (us * 10.0).round() / 10.0
}

#[derive(Clone)]
struct Call {
    engine: Engine,
    request: Arc<GatewayRequest>,
    options: Arc<RequestOptions>,
}

impl Call {
    /// One call, its answer read to the end; the number of chunks when streamed.
    async fn run(self) -> usize {
        let response = self.engine.handle(&self.request, &self.options).await;
        let answer = match response.result {
            Ok(answer) => answer,
            Err(e) => panic!("the call failed: {e}"),
        };
        match answer.body {
            ResponseBody::Full(bytes) => {
                assert!(!bytes.is_empty());
                0
            }
            ResponseBody::Events(mut events) => {
                let mut n = 0;
                while let Some(chunk) = events.next().await {
                    chunk.unwrap();
                    n += 1;
                }
                n
            }
            ResponseBody::Upgraded(_) => panic!("not a realtime call"),
        }
    }
}
