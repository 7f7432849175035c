//! What the registry adds to a request (issue 12's goal: under 1 µs each).
//!
//! - `registry_resolve_slug_model`: a received body whose `model` is
//!   `@openai-prod/gpt-4o-mini` is routed: the entry found, the body's model rewritten
//!   (spliced), the options resolved to the entry's single-leaf config. Beside it,
//!   `registry_resolve_plain`: the same request with `x-portkey-provider: openai` +
//!   `Authorization` and no registry, what routing a request to a provider costs anyway.
//! - `gateway_key_check`: the presented key hashed and compared with all 16 stored keys
//!   in constant time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gateway_core::registry::{Registry, key_hash};
use gateway_core::{Endpoint, GatewayRequest, RequestBody};
use gateway_http::protocol::{ConfigNames, ConfigStore, Options, Resolver, address_model};
use gateway_http::registry::RegistrySource;
use serde_json::json;

fn body(model: &str) -> Bytes {
    Bytes::from(
        json!({"model": model, "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France? Answer in one word."}
        ], "temperature": 0.2})
        .to_string(),
    )
}

fn benches(c: &mut Criterion) {
    let keys: serde_json::Map<String, serde_json::Value> =
        (0..16).map(|i| (format!("team-{i}"), json!({"hash": key_hash(&format!("gw-key-{i}"))}))).collect();
    let registry = Registry::load(&json!({
        "providers": {"openai-prod": {"provider": "openai", "api_key": "sk-prod"}},
        "keys": keys
    }))
    .unwrap();
    let resolver = Resolver::server(ConfigStore::with_registry(
        None,
        ConfigNames::None,
        Arc::new(RegistrySource::fixed(registry.clone())),
    ));
    let plain_resolver = Resolver::server(ConfigStore::new(None, ConfigNames::None));

    let named = body("@openai-prod/gpt-4o-mini");
    let request =
        |raw: &Bytes| GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::json(raw.clone()).unwrap());
    c.bench_function("registry_resolve_slug_model", |b| {
        b.iter_batched(
            || request(&named),
            |mut request| {
                let view = resolver.registry();
                let mut options = Options::default();
                address_model(&mut request, &mut options, &view).unwrap();
                black_box((resolver.resolve_in(options, &view).unwrap(), request))
            },
            BatchSize::SmallInput,
        )
    });
    let plain = body("gpt-4o-mini");
    let mut headers = http::HeaderMap::new();
    headers.insert("x-portkey-provider", "openai".parse().unwrap());
    headers.insert("authorization", "Bearer sk-caller".parse().unwrap());
    c.bench_function("registry_resolve_plain", |b| {
        b.iter_batched(
            || request(&plain),
            |mut request| {
                let view = plain_resolver.registry();
                let mut options = Options::from_headers(&headers).unwrap();
                address_model(&mut request, &mut options, &view).unwrap();
                black_box((plain_resolver.resolve_in(options, &view).unwrap(), request))
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("gateway_key_check", |b| b.iter(|| registry.key(black_box("gw-key-11")).unwrap().name.len()));
}

criterion_group!(registry, benches);
criterion_main!(registry);
