//! Core hot paths: config load, query match, routing plan, OpenAI request build.
//! Goal (issue 2): plan + build ≤ 5 µs.
//!
//! `plan_plus_build_best_case` is the cheapest path: no condition matches, the default
//! leaf forwards the caller's bytes, and the body was parsed outside the loop.
//! `plan_plus_build_realistic` pays for everything a real request does: the body read
//! from bytes and validated, parsed again because the config's queries read `params`, a
//! matching condition, and `override_params` that make the body be rebuilt.
//! `plan_plus_build_translating` is the same with an Anthropic leaf, whose request is
//! rewritten into the Messages API.
//!
//! `config_compile_at_the_limits` is the most a caller's inline config can cost to
//! compile (issue 11): the most targets and conditions allowed, and the most `$regex`
//! operators, each the costliest pattern that still compiles under the size limit.
//! `config_compile_refused_regexes` is the same with patterns that compile too big.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::SystemTime;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gateway_core::config::Node;
use gateway_core::providers::BuildInput;
use gateway_core::query::{Query, QueryContext};
use gateway_core::rng::SplitMix64;
use gateway_core::router::plan;
use gateway_core::{Config, Endpoint, GatewayRequest, RequestBody};
use serde_json::{Value, json};

fn conditional_config() -> Value {
    json!({
        "strategy": {"mode": "conditional", "default": "base", "conditions": [
            {"query": {"metadata.user.plan": {"$in": ["enterprise"]}}, "then": "premium"},
            {"query": {"$and": [{"params.model": {"$regex": "^gpt-4"}}, {"metadata.region": "eu"}]}, "then": "eu"},
            {"query": {"params.stream": true, "metadata.tier": {"$ne": "free"}}, "then": "fast"}
        ]},
        "retry": {"attempts": 2},
        "targets": [
            {"name": "premium", "provider": "openai", "api_key": "k1", "override_params": {"model": "gpt-4o"}},
            {"name": "eu", "provider": "azure-openai", "api_key": "k2", "resource_name": "r", "deployment_id": "d"},
            {"name": "fast", "provider": "groq", "api_key": "k3"},
            {"name": "base", "strategy": {"mode": "fallback"}, "targets": [
                {"provider": "openai", "api_key": "k4"},
                {"provider": "together-ai", "api_key": "k5"}
            ]}
        ]
    })
}

/// A conditional config with the most conditions and targets allowed; its first
/// `MAX_REGEXES` conditions use `\w{n}` with the largest `n` that compiles (or, in the
/// second config, one that does not).
fn configs_at_the_limits() -> (Value, Value) {
    use gateway_core::config::{MAX_CONDITIONS, MAX_REGEXES, MAX_TARGETS};
    let compiles = |n: usize| Query::compile(&json!({"metadata.x": {"$regex": format!("\\w{{{n}}}")}})).is_ok();
    let largest = (1..200).rev().find(|n| compiles(*n)).unwrap();
    let config = |n: usize| {
        let conditions: Vec<Value> = (0..MAX_CONDITIONS)
            .map(|i| {
                let query = if i < MAX_REGEXES {
                    json!({"metadata.x": {"$regex": format!("\\w{{{n}}}{i}")}})
                } else {
                    json!({"metadata.x": {"$in": [i, "a", "b"]}})
                };
                json!({"query": query, "then": format!("t{}", i % (MAX_TARGETS - 1))})
            })
            .collect();
        let targets: Vec<Value> = (0..MAX_TARGETS - 1)
            .map(|i| json!({"name": format!("t{i}"), "provider": "openai", "api_key": "k"}))
            .collect();
        json!({"strategy": {"mode": "conditional", "conditions": conditions}, "targets": targets})
    };
    (config(largest), config(largest * 4))
}

fn chat_body() -> Bytes {
    Bytes::from(
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the capital of France? Answer in one word."}
            ],
            "temperature": 0.2
        })
        .to_string(),
    )
}

fn benches(c: &mut Criterion) {
    let config_json = conditional_config();
    c.bench_function("config_parse_compile_4_targets", |b| {
        b.iter(|| Config::from_json(black_box(&config_json)).unwrap())
    });

    let (accepted, refused) = configs_at_the_limits();
    c.bench_function("config_compile_at_the_limits", |b| b.iter(|| Config::load(black_box(&accepted)).unwrap()));
    c.bench_function("config_compile_refused_regexes", |b| b.iter(|| Config::load(black_box(&refused)).unwrap_err()));

    let query = Query::compile(&json!({
        "$or": [{"metadata.user.plan": {"$in": ["pro", "enterprise"]}}, {"params.model": {"$regex": "^gpt-4"}}],
        "metadata.region": {"$ne": "cn"}
    }))
    .unwrap();
    let metadata = json!({"user": {"plan": "free"}, "region": "eu"});
    let params = json!({"model": "gpt-4o-mini", "messages": []});
    let ctx = QueryContext { metadata: &metadata, params: &params, pathname: "/v1/chat/completions" };
    c.bench_function("query_match", |b| b.iter(|| black_box(&query).matches(black_box(&ctx))));

    let config = Config::from_json(&config_json).unwrap();
    let rng = SplitMix64::new(1);
    let metadata = json!({"user": {"plan": "team"}, "region": "us", "tier": "free"});
    let request = GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::json(chat_body()).unwrap());
    let params = request.body.value().unwrap().clone();
    let ctx = QueryContext { metadata: &metadata, params: &params, pathname: "/v1/chat/completions" };
    c.bench_function("plan_conditional_4_targets", |b| b.iter(|| plan(black_box(&config), &ctx, &rng).unwrap()));

    let leaf = match config.root() {
        Node::Group(g) => match &g.targets[2] {
            Node::Leaf(l) => l.clone(),
            Node::Group(_) => unreachable!(),
        },
        Node::Leaf(_) => unreachable!(),
    };
    let target = leaf.provider.clone().unwrap();
    let build = |request: &GatewayRequest| {
        let input = BuildInput {
            now: SystemTime::now(),
            request,
            target: &target,
            settings: &leaf.settings,
            custom_host: None,
            forward_headers: &[],
            credential: None,
        };
        target.provider.build_request(&input).unwrap()
    };
    c.bench_function("openai_request_build_passthrough", |b| b.iter(|| build(black_box(&request))));

    let plan_and_build = |config: &Config, request: &GatewayRequest, metadata: &Value| {
        static NULL: Value = Value::Null;
        let params = if config.reads_params() { request.body.value().unwrap_or(&NULL) } else { &NULL };
        let ctx = QueryContext { metadata, params, pathname: "/v1/chat/completions" };
        let leaves = plan(config, &ctx, &rng).unwrap();
        let target = leaves[0].provider.as_ref().unwrap();
        let input = BuildInput {
            now: SystemTime::now(),
            request,
            target,
            settings: &leaves[0].settings,
            custom_host: None,
            forward_headers: &[],
            credential: None,
        };
        target.provider.build_request(&input).unwrap()
    };
    c.bench_function("plan_plus_build_best_case", |b| {
        b.iter(|| plan_and_build(black_box(&config), black_box(&request), &metadata))
    });

    // From the caller's bytes, every step a request takes.
    let realistic = |config: &Config, raw: &Bytes, metadata: &Value| {
        let body = RequestBody::json(raw.clone()).unwrap();
        gateway_core::request::validate_body(Endpoint::ChatCompletions, &body).unwrap();
        let request = GatewayRequest::json(Endpoint::ChatCompletions, body);
        plan_and_build(config, &request, metadata)
    };
    let raw = chat_body();
    let enterprise = json!({"user": {"plan": "enterprise"}, "region": "us", "tier": "pro"});
    let built = realistic(&config, &raw, &enterprise);
    assert!(built.url.ends_with("/chat/completions") && built.body != raw, "the premium leaf rewrote the body");
    c.bench_function("plan_plus_build_realistic", |b| {
        b.iter(|| realistic(black_box(&config), black_box(&raw), &enterprise))
    });

    let mut translating = conditional_config();
    translating["targets"][0] = json!({"name": "premium", "provider": "anthropic", "api_key": "k1", "override_params": {"model": "claude-3-5-haiku-20241022"}});
    let translating = Config::from_json(&translating).unwrap();
    assert!(realistic(&translating, &raw, &enterprise).url.ends_with("/messages"));
    c.bench_function("plan_plus_build_translating", |b| {
        b.iter(|| realistic(black_box(&translating), black_box(&raw), &enterprise))
    });

    c.bench_function("request_parse_and_validate", |b| {
        let raw = chat_body();
        b.iter(|| {
            let body = RequestBody::json(black_box(raw.clone())).unwrap();
            gateway_core::request::validate_body(Endpoint::ChatCompletions, &body).unwrap();
            body
        })
    });
}

criterion_group!(core, benches);
criterion_main!(core);
