//! What watching a request costs the thread that served it (issue 13's goal: logs and
//! metrics together within 10% of a pass-through request's CPU, about 3 µs on the load
//! benchmark; the load script measures the whole).
//!
//! - `usage_read_answer`: an answer's usage and model read off its bytes (every request,
//!   watched or not).
//! - `record_json_line`: a request's record written as a JSON line into a thread's buffer.
//! - `metrics_tally`: a record counted into the thread's metric tallies.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use gateway_core::engine::{Attempt, CacheStatus, RequestObserver, RequestRecord, RouteInfo};
use gateway_core::usage::Usage;
use gateway_http::telemetry::{LogFormat, Metrics, RequestLog};
use serde_json::json;

fn record() -> RequestRecord {
    let route = RouteInfo {
        option_index: Some("config.targets[0]".into()),
        provider: Some("openai".into()),
        retry_count: 0,
        cache_status: CacheStatus::Disabled,
        attempts: vec![Attempt {
            option_index: "config.targets[0]".into(),
            provider: "openai".into(),
            status: 200,
            error: None,
            started: SystemTime::now(),
            duration: Duration::from_micros(850),
        }],
        trace_id: Some("gw-1a2b3c4d-000000000042".into()),
        model: Some("gpt-4o-mini-2024-07-18".into()),
        usage: Some(Usage { input_tokens: 25, output_tokens: 9, total_tokens: 34, ..Usage::default() }),
        cost: Some(0.0000091),
        ..RouteInfo::default()
    };
    RequestRecord {
        started: SystemTime::now(),
        endpoint: "/v1/chat/completions".into(),
        stream: false,
        key: Some("search-team".into()),
        trace_context: None,
        metadata: Arc::new(json!({"team": "search", "_user": "u-123"})),
        status: 200,
        error: None,
        cancelled: false,
        latency: Duration::from_micros(1020),
        route,
        request_body: None,
        response_body: None,
    }
}

fn benches(c: &mut Criterion) {
    let answer =
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 25, "completion_tokens": 9, "total_tokens": 34,
                  "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}})
        .to_string();
    c.bench_function("usage_read_answer", |b| {
        b.iter(|| gateway_core::usage::read_answer(black_box(answer.as_bytes())))
    });

    let record = record();
    let log = RequestLog::to_writer(LogFormat::Json, false, std::io::sink()).unwrap();
    // Written out (to a sink) every 256 records, as the log's thread does every 20 ms.
    let mut n = 0u32;
    c.bench_function("record_json_line", |b| {
        b.iter(|| {
            log.record(black_box(&record));
            n = n.wrapping_add(1);
            if n.is_multiple_of(256) {
                log.flush();
            }
        })
    });

    let metrics = Metrics::new(&[]);
    c.bench_function("metrics_tally", |b| {
        b.iter(|| {
            metrics.started();
            metrics.record(black_box(&record));
        })
    });
}

criterion_group!(observability, benches);
criterion_main!(observability);
