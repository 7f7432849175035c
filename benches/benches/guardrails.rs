//! What guardrails and the prompt library cost a request (issue 16).
//!
//! - `checks_before_set_1kb`: the typical before-request check set — a secret-matching
//!   regex, a word count and PII detection — run on a 1 KB prompt (the checks alone);
//!   `check_1kb/<id>`: each of them.
//! - `engine_request_{plain,before_set_1kb,pii_redacted_1kb}`: a whole non-streamed
//!   request with that 1 KB prompt through the engine, over a transport that answers at
//!   once: with no hooks, with the check set as a denying hook, and with PII redaction
//!   that finds an address and rebuilds the body. The difference is the hooks' cost in
//!   the request's path (the body parsed into the checks' view, results in the answer).
//! - `prompt_render`: the issue's `support-reply` prompt rendered with its variables
//!   and a partial.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use gateway_core::config::Node;
use gateway_core::hooks::{Phase, Subject};
use gateway_core::json_path::JsonPath;
use gateway_core::prompts::{Prompt, load_partials};
use gateway_core::{Config, Endpoint, Engine, GatewayRequest, RequestBody, RequestOptions};
use gateway_tests::fake::Answering;
use serde_json::{Map, Value, json};

/// A 1 KB support message, with or without an e-mail address in it.
fn prompt_1kb(with_email: bool) -> String {
    let sentence = "My order arrived yesterday but the blue jacket is the wrong size, could you help me swap it? ";
    let mut text = String::new();
    while text.len() < 1000 {
        text.push_str(sentence);
    }
    if with_email {
        text.push_str("Write to jane.doe@example.com.");
    }
    text
}

fn check_set(extra: Value) -> Value {
    let mut hook = json!({"id": "typical", "deny": true, "checks": [
        {"id": "default.regexMatch", "parameters": {"rule": "sk-[A-Za-z0-9]{20,}", "not": true}},
        {"id": "default.wordCount", "parameters": {"minWords": 1, "maxWords": 2000}},
        {"id": "default.pii", "parameters": {}}
    ]});
    if let Some(pii) = extra.get("pii") {
        hook["checks"][2]["parameters"] = pii.clone();
    }
    hook
}

fn config(hooks: Option<Value>) -> Arc<Config> {
    let mut config = json!({"provider": "openai", "api_key": "sk-bench"});
    if let Some(hook) = hooks {
        config["before_request_hooks"] = json!([hook]);
    }
    Arc::new(Config::load(&config).unwrap())
}

fn request(text: &str) -> GatewayRequest {
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "You help shoppers."}, {"role": "user", "content": text}]});
    GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::json(Bytes::from(body.to_string())).unwrap())
}

fn bench(c: &mut Criterion) {
    // The checks alone, as compiled from a config.
    let compiled = config(Some(check_set(json!({}))));
    let Node::Leaf(leaf) = compiled.root() else { panic!() };
    let hook = leaf.settings.hooks.before[0].clone();
    let text = prompt_1kb(false);
    let request_json = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]});
    let metadata = Map::new();
    let subject = Subject {
        phase: Phase::Before,
        endpoint: Endpoint::ChatCompletions,
        request: &request_json,
        response: None,
        text: &text,
        metadata: &metadata,
        provider: "openai",
    };
    for spec in &hook.checks {
        assert!(spec.check.run(&subject).verdict, "{} passes the clean prompt", spec.id);
    }
    c.bench_function("checks_before_set_1kb", |b| {
        b.iter(|| {
            for spec in &hook.checks {
                black_box(spec.check.run(black_box(&subject)));
            }
        })
    });

    for spec in &hook.checks {
        c.bench_function(&format!("check_1kb/{}", spec.id), |b| {
            b.iter(|| black_box(spec.check.run(black_box(&subject))))
        });
    }

    // Whole requests through the engine.
    let answer = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Of course."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 250, "completion_tokens": 3, "total_tokens": 253}
    });
    let engine = Engine::new(Arc::new(Answering(Bytes::from(answer.to_string()))));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cases = [
        ("engine_request_plain", config(None), prompt_1kb(false)),
        ("engine_request_before_set_1kb", config(Some(check_set(json!({})))), prompt_1kb(false)),
        (
            "engine_request_pii_redacted_1kb",
            config(Some(check_set(json!({"pii": {"redact": true}})))),
            prompt_1kb(true),
        ),
    ];
    for (name, config, text) in cases {
        let options = RequestOptions { config: Some(config), ..RequestOptions::default() };
        let request = request(&text);
        let check = runtime.block_on(engine.handle(&request, &options));
        assert_eq!(check.status, 200, "{name}: {:?}", check.error());
        c.bench_function(name, |b| {
            b.iter(|| runtime.block_on(engine.handle(black_box(&request), black_box(&options))));
        });
    }

    // Rendering a prompt.
    let partials = load_partials(json!({"sig": "Be brief."}).as_object().unwrap(), &JsonPath::root()).unwrap();
    let entry = json!({"virtual_key": "openai-prod", "model": "gpt-4o-mini", "max_tokens": 256,
                       "messages": [{"role": "system", "content": "You help {{product}} users. {{>sig}}"},
                                    {"role": "user", "content": "{{question}}"}]});
    let prompt = Prompt::load("support-reply", &entry, &JsonPath::root(), &partials).unwrap();
    let variables = json!({"product": "Gatewise", "question": "How do I set a fallback between two providers?"});
    let overrides = Map::new();
    assert!(prompt.render(&variables, &overrides, &partials).is_ok());
    c.bench_function("prompt_render", |b| {
        b.iter(|| black_box(prompt.render(black_box(&variables), &overrides, &partials).unwrap()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
