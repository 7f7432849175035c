//! What limits, circuits and the cache cost a request, in memory and in Redis (issue 14).
//!
//! - `engine_request_{plain,limits_memory,circuit_memory}`: a whole non-streamed request
//!   through the engine over a transport that answers at once, with no limits, with a
//!   key's four limits (reserve and settle), and with a circuit on its target.
//! - `reserve_settle_memory`: the limits' own step.
//! - `cache_hit_memory`: a lookup that hits the bounded in-memory cache;
//!   `cache_put_full_memory`: a store into a full one (each evicts).
//! - With `GATEWISE_BENCH_REDIS=redis://127.0.0.1:PORT/0`, the same against that Redis
//!   on loopback: `engine_request_limits_redis`, `reserve_redis`, `cache_hit_redis` (the
//!   round trip is most of it). Without it they are skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gateway_core::cache::{Cache, CachedResponse, InMemoryCache};
use gateway_core::engine::WhenStateDown;
use gateway_core::state::{Estimate, InMemoryState, LimitScope, SharedState, UsageLimits};
use gateway_core::{Config, Endpoint, Engine, GatewayRequest, RequestBody, RequestOptions};
use gateway_tests::fake::Answering;
use serde_json::json;

fn limits() -> UsageLimits {
    UsageLimits {
        requests_per_minute: Some(1_000_000_000),
        tokens_per_minute: Some(1_000_000_000_000),
        usd_per_day: Some(1_000_000.0),
        usd_per_month: Some(1_000_000.0),
    }
}

fn engine() -> Engine {
    let answer = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    });
    Engine::new(Arc::new(Answering(Bytes::from(answer.to_string()))))
}

fn request() -> GatewayRequest {
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]});
    GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::json(Bytes::from(body.to_string())).unwrap())
}

fn options(config: serde_json::Value, limits: bool) -> RequestOptions {
    let scopes: Vec<LimitScope> = if limits { vec![LimitScope::key("bench", limits_for_key())] } else { Vec::new() };
    RequestOptions {
        config: Some(Arc::new(Config::load(&config).unwrap())),
        limits: scopes.into(),
        ..RequestOptions::default()
    }
}

fn limits_for_key() -> UsageLimits {
    limits()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let leaf = json!({"provider": "openai", "api_key": "k"});
    let circuit = json!({"strategy": {"mode": "fallback", "cb_config": {"failure_threshold": 5}},
                         "targets": [{"provider": "openai", "api_key": "k"}]});
    let memory = engine();
    let request = request();
    for (name, options) in [
        ("engine_request_plain", options(leaf.clone(), false)),
        ("engine_request_limits_memory", options(leaf.clone(), true)),
        ("engine_request_circuit_memory", options(circuit, false)),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let response = runtime.block_on(memory.handle(black_box(&request), &options));
                assert_eq!(response.status, 200);
            });
        });
    }

    let state = InMemoryState::new();
    let scope = LimitScope::key("bench", limits());
    let mut charges = Vec::new();
    scope.charges(0, Estimate { tokens: 300, micro_usd: 50 }, 1_796_117_415_250, &mut charges);
    c.bench_function("reserve_settle_memory", |b| {
        b.iter(|| {
            assert_eq!(runtime.block_on(state.reserve(black_box(&charges))).unwrap(), None);
            state.settle(vec![gateway_core::state::Adjustment { key: charges[1].key.clone(), delta: -100 }]);
        });
    });

    let cache = InMemoryCache::default();
    let hit = CachedResponse { body: Bytes::from(vec![b'x'; 1024]) };
    runtime.block_on(cache.put("key", hit, Duration::from_secs(3600)));
    c.bench_function("cache_hit_memory", |b| b.iter(|| runtime.block_on(cache.get(black_box("key"))).unwrap()));
    // A full cache: every put evicts (issue 14: it used to sort every entry under one lock).
    let full = InMemoryCache::default();
    let body = Bytes::from(vec![b'x'; 1024]);
    for i in 0..20_000 {
        runtime.block_on(full.put(&format!("k{i}"), CachedResponse { body: body.clone() }, Duration::from_secs(3600)));
    }
    let mut n = 0u64;
    c.bench_function("cache_put_full_memory", |b| {
        b.iter(|| {
            n += 1;
            let key = format!("new{n}");
            runtime.block_on(full.put(
                black_box(&key),
                CachedResponse { body: body.clone() },
                Duration::from_secs(3600),
            ));
        });
    });

    let Ok(url) = std::env::var("GATEWISE_BENCH_REDIS") else { return };
    let redis = gateway_http::redis_state::RedisState::open(&url).unwrap();
    let with_redis = engine().with_state(redis.clone(), WhenStateDown::Refuse);
    let limited = options(leaf, true);
    c.bench_function("engine_request_limits_redis", |b| {
        b.iter(|| {
            let response = runtime.block_on(with_redis.handle(black_box(&request), &limited));
            assert_eq!(response.status, 200);
        });
    });
    c.bench_function("reserve_redis", |b| {
        b.iter(|| assert_eq!(runtime.block_on(redis.reserve(black_box(&charges))).unwrap(), None));
    });
    let hit = CachedResponse { body: Bytes::from(vec![b'x'; 1024]) };
    runtime.block_on(redis.put("key", hit, Duration::from_secs(3600)));
    std::thread::sleep(Duration::from_millis(200));
    c.bench_function("cache_hit_redis", |b| b.iter(|| runtime.block_on(redis.get(black_box("key"))).unwrap()));
}

criterion_group!(shared_state, benches);
criterion_main!(shared_state);
