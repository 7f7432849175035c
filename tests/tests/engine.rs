//! The engine against a scripted in-memory transport with a virtual clock: fallback,
//! nesting, retries and their schedule, Retry-After, timeouts, connection failures,
//! loadbalance distribution, stream peeking and breaks, and the cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::executor::block_on;
use gateway_core::engine::{CacheStatus, TransportErrorKind};
use gateway_core::providers::ProviderTarget;
use gateway_core::rng::SplitMix64;
use gateway_core::{Config, Endpoint, Engine, ErrorCode, GatewayRequest, RequestBody, RequestOptions, ResponseBody};
use gateway_tests::fake::{Reply, ScriptedTransport};
use serde_json::{Value, json};

const OK: &str = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;

fn target(host: &str) -> Value {
    json!({"provider": "openai", "api_key": "k", "custom_host": format!("http://{host}/v1")})
}

fn chat(body: Value) -> GatewayRequest {
    GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::json(Bytes::from(body.to_string())).unwrap())
}

fn hello() -> GatewayRequest {
    chat(json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]}))
}

fn options(config: Value) -> RequestOptions {
    RequestOptions { config: Some(Arc::new(Config::from_json(&config).unwrap())), ..RequestOptions::default() }
}

struct Setup {
    transport: Arc<ScriptedTransport>,
    engine: Engine,
}

fn setup() -> Setup {
    let transport = Arc::new(ScriptedTransport::new());
    let engine = Engine::new(transport.clone()).with_rng(Arc::new(SplitMix64::new(42)));
    Setup { transport, engine }
}

/// The answer's JSON, or for a failed request the OpenAI error JSON the edge would send.
fn body_json(r: &gateway_core::Response) -> Value {
    match &r.result {
        Ok(gateway_core::Answer { body: ResponseBody::Full(b), .. }) => serde_json::from_slice(b).unwrap(),
        Ok(_) => panic!("expected a full body"),
        Err(e) => e.to_openai_json(),
    }
}

#[test]
fn fallback_moves_on_after_a_failure_and_reports_the_answering_target() {
    let s = setup();
    s.transport.script("a", [Reply::error(500, "boom")]).script("b", [Reply::ok(OK)]);
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [target("a"), target("b")]});
    let r = block_on(s.engine.handle(&hello(), &options(config)));
    assert_eq!(r.status, 200);
    assert_eq!(r.route.option_index.as_deref(), Some("config.targets[1]"));
    assert_eq!(r.route.provider.as_deref(), Some("openai"));
    assert_eq!(s.transport.hosts(), ["a", "b"]);
    assert_eq!(r.route.attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [500, 200]);
}

#[test]
fn fallback_with_on_status_codes_stops_on_other_statuses() {
    let s = setup();
    s.transport.script("a", [Reply::error(500, "boom")]).script("b", [Reply::ok(OK)]);
    let config =
        json!({"strategy": {"mode": "fallback", "on_status_codes": [429]}, "targets": [target("a"), target("b")]});
    let r = block_on(s.engine.handle(&hello(), &options(config)));
    assert_eq!(r.status, 500);
    assert_eq!(r.route.option_index.as_deref(), Some("config.targets[0]"));
    assert_eq!(s.transport.hosts(), ["a"]);
    let body = body_json(&r);
    assert_eq!(body["error"]["message"], "openai error: boom");
    assert_eq!(body["provider"], "openai");
}

#[test]
fn when_every_fallback_target_fails_the_last_answer_is_returned() {
    let s = setup();
    s.transport.script("a", [Reply::error(500, "boom")]).script("b", [Reply::error(401, "bad key")]);
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [target("a"), target("b")]});
    let r = block_on(s.engine.handle(&hello(), &options(config)));
    assert_eq!(r.status, 401);
    assert_eq!(r.route.option_index.as_deref(), Some("config.targets[1]"));
    assert_eq!(r.error().unwrap().code, ErrorCode::UpstreamError);
}

#[test]
fn nested_groups_report_the_full_option_path() {
    let s = setup();
    s.transport.script("a", [Reply::error(503, "busy")]).script("b", [Reply::ok(OK)]);
    let config = json!({
        "strategy": {"mode": "loadbalance"},
        "targets": [
            {"weight": 0, "provider": "openai", "api_key": "k", "custom_host": "http://never/v1"},
            {"strategy": {"mode": "fallback"}, "targets": [target("a"), target("b")]}
        ]
    });
    let r = block_on(s.engine.handle(&hello(), &options(config)));
    assert_eq!(r.status, 200);
    assert_eq!(r.route.option_index.as_deref(), Some("config.targets[1].targets[1]"));
}

#[test]
fn a_model_fallback_on_one_provider_inherits_provider_and_key() {
    let s = setup();
    s.transport.script("a", [Reply::error(500, "m1 down"), Reply::ok(OK)]);
    let config = json!({
        "provider": "openai", "api_key": "parent-key", "custom_host": "http://a/v1",
        "strategy": {"mode": "fallback"},
        "targets": [{"override_params": {"model": "m1"}}, {"override_params": {"model": "m2"}}]
    });
    let r = block_on(s.engine.handle(&hello(), &options(config)));
    assert_eq!(r.status, 200);
    let calls = s.transport.calls();
    let models: Vec<String> = calls
        .iter()
        .map(|c| serde_json::from_slice::<Value>(&c.request.body).unwrap()["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(models, ["m1", "m2"]);
    assert_eq!(calls[1].request.headers["authorization"], "Bearer parent-key");
}

#[test]
fn retries_follow_the_backoff_schedule_and_report_minus_one_when_exhausted() {
    let s = setup();
    s.transport.script("a", (0..4).map(|_| Reply::error(500, "boom")));
    let mut t = target("a");
    t["retry"] = json!({"attempts": 3});
    let r = block_on(s.engine.handle(&hello(), &options(t)));
    assert_eq!(r.status, 500);
    assert_eq!(r.route.retry_count, -1);
    let at: Vec<u64> = s.transport.calls().iter().map(|c| c.at.as_secs()).collect();
    assert_eq!(at, [0, 1, 3, 7]);
}

#[test]
fn the_full_schedule_of_five_retries_waits_1_2_4_8_16_seconds() {
    let s = setup();
    s.transport.script("a", (0..6).map(|_| Reply::error(503, "busy")));
    let mut t = target("a");
    t["retry"] = json!({"attempts": 5});
    let r = block_on(s.engine.handle(&hello(), &options(t)));
    assert_eq!((r.status, r.route.retry_count), (503, -1));
    let waits: Vec<u64> = s.transport.sleeps().iter().map(Duration::as_secs).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16], "as the README's config reference says");
    assert_eq!(s.transport.calls().len(), 6);
}

#[test]
fn a_retry_that_succeeds_reports_its_count() {
    let s = setup();
    s.transport.script("a", [Reply::error(502, "x"), Reply::error(429, "x"), Reply::ok(OK)]);
    let mut t = target("a");
    t["retry"] = json!({"attempts": 5});
    let r = block_on(s.engine.handle(&hello(), &options(t)));
    assert_eq!(r.status, 200);
    assert_eq!(r.route.retry_count, 2);
    assert_eq!(s.transport.sleeps(), [Duration::from_secs(1), Duration::from_secs(2)]);
}

#[test]
fn statuses_outside_on_status_codes_are_not_retried() {
    let s = setup();
    s.transport.script("a", [Reply::error(401, "no"), Reply::ok(OK)]);
    let mut t = target("a");
    t["retry"] = json!({"attempts": 2});
    let r = block_on(s.engine.handle(&hello(), &options(t)));
    assert_eq!((r.status, r.route.retry_count), (401, 0));
    assert_eq!(s.transport.calls().len(), 1);
}

#[test]
fn retry_after_is_honoured_on_429_and_503_within_the_budget() {
    let s = setup();
    let limited = |h: &'static str, v: &str, status| {
        Reply::Status(status, vec![(h, v.to_owned()), ("content-type", "application/json".into())], "{}".into())
    };
    s.transport.script("a", [limited("retry-after", "2", 429), limited("retry-after-ms", "300", 503), Reply::ok(OK)]);
    let mut t = target("a");
    t["retry"] = json!({"attempts": 3, "use_retry_after_header": true});
    let r = block_on(s.engine.handle(&hello(), &options(t.clone())));
    assert_eq!(r.status, 200);
    assert_eq!(s.transport.sleeps(), [Duration::from_secs(2), Duration::from_millis(300)]);

    // Over the 60 s budget: the error comes back at once, marked exhausted.
    let s = setup();
    s.transport.script("a", [limited("retry-after", "99", 429), Reply::ok(OK)]);
    let r = block_on(s.engine.handle(&hello(), &options(t)));
    assert_eq!((r.status, r.route.retry_count), (429, -1));
    assert_eq!(s.transport.calls().len(), 1);
    assert_eq!(r.headers["retry-after"], "99", "upstream retry-after passes through");
    assert_eq!(r.result.unwrap_err().code, ErrorCode::RateLimited);
}

#[test]
fn retry_after_is_ignored_unless_enabled() {
    let s = setup();
    s.transport.script("a", [Reply::Status(429, vec![("retry-after", "30".into())], "{}".into()), Reply::ok(OK)]);
    let mut t = target("a");
    t["retry"] = json!({"attempts": 1});
    let r = block_on(s.engine.handle(&hello(), &options(t)));
    assert_eq!(r.status, 200);
    assert_eq!(s.transport.sleeps(), [Duration::from_secs(1)]);
}

#[test]
fn a_timeout_is_a_408_and_falls_back() {
    let s = setup();
    s.transport.script("a", [Reply::Hang]).script("b", [Reply::ok(OK)]);
    let config =
        json!({"strategy": {"mode": "fallback"}, "request_timeout": 300, "targets": [target("a"), target("b")]});
    let r = block_on(s.engine.handle(&hello(), &options(config.clone())));
    assert_eq!(r.status, 200);
    assert_eq!(r.route.attempts[0].status, 408);
    assert_eq!(s.transport.calls()[1].at, Duration::from_millis(300));

    let s = setup();
    s.transport.script("a", [Reply::Hang]);
    let r = block_on(s.engine.handle(
        &hello(),
        &options(json!({"request_timeout": 300, "provider": "openai", "api_key": "k", "custom_host": "http://a/v1"})),
    ));
    assert_eq!(r.status, 408);
    let body = body_json(&r);
    assert_eq!(body["error"]["message"], "Request exceeded the timeout sent in the request: 300ms");
    assert_eq!(body["error"]["type"], "timeout_error");
}

#[test]
fn timeouts_are_retried_only_when_408_is_listed() {
    let s = setup();
    s.transport.script("a", [Reply::Hang, Reply::Hang]);
    let mut t = target("a");
    t["request_timeout"] = json!(300);
    t["retry"] = json!({"attempts": 1, "on_status_codes": [408]});
    let r = block_on(s.engine.handle(&hello(), &options(t)));
    assert_eq!((r.status, r.route.retry_count), (408, -1));
    let at: Vec<Duration> = s.transport.calls().iter().map(|c| c.at).collect();
    assert_eq!(at, [Duration::ZERO, Duration::from_millis(1300)]);
}

#[test]
fn the_request_timeout_option_overrides_the_config() {
    let s = setup();
    s.transport.script("a", [Reply::Hang]);
    let mut t = target("a");
    t["request_timeout"] = json!(60_000);
    let mut opts = options(t);
    opts.request_timeout = Some(Duration::from_millis(5));
    let r = block_on(s.engine.handle(&hello(), &opts));
    assert_eq!(r.status, 408);
    assert!(r.result.unwrap_err().message.contains("5ms"));
}

#[test]
fn connection_failures_are_retried_whatever_the_status_list_and_then_fall_back() {
    let s = setup();
    s.transport
        .script("a", [Reply::Fail(TransportErrorKind::ConnectionRefused), Reply::Fail(TransportErrorKind::Dns)])
        .script("b", [Reply::ok(OK)]);
    let mut a = target("a");
    a["retry"] = json!({"attempts": 1, "on_status_codes": [418]});
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [a, target("b")]});
    let r = block_on(s.engine.handle(&hello(), &options(config)));
    assert_eq!(r.status, 200);
    assert_eq!(s.transport.hosts(), ["a", "a", "b"]);
    assert_eq!(r.route.attempts[0].error, Some(ErrorCode::UpstreamConnectionError));

    let s = setup();
    let r = block_on(s.engine.handle(&hello(), &options(target("nowhere"))));
    assert_eq!((r.status, r.route.retry_count), (502, 0));
    assert_eq!(r.result.unwrap_err().code, ErrorCode::UpstreamConnectionError);
}

#[test]
fn loadbalance_follows_the_weights_and_never_picks_weight_zero() {
    let s = setup();
    let n = 10_000;
    for host in ["a", "b", "c"] {
        s.transport.script(host, (0..n).map(|_| Reply::ok(OK)));
    }
    let mut a = target("a");
    a["weight"] = json!(1);
    let mut b = target("b");
    b["weight"] = json!(3);
    let mut c = target("c");
    c["weight"] = json!(0);
    let opts = options(json!({"strategy": {"mode": "loadbalance"}, "targets": [a, b, c]}));
    for _ in 0..n {
        block_on(s.engine.handle(&hello(), &opts));
    }
    let hosts = s.transport.hosts();
    let share = |h: &str| hosts.iter().filter(|x| *x == h).count() as f64 / n as f64;
    assert!((share("a") - 0.25).abs() < 0.02, "a: {}", share("a"));
    assert!((share("b") - 0.75).abs() < 0.02, "b: {}", share("b"));
    assert_eq!(share("c"), 0.0);
}

#[test]
fn loadbalance_has_no_failover_inside() {
    let s = setup();
    s.transport.script("a", [Reply::error(500, "down")]);
    let opts = options(json!({"strategy": {"mode": "loadbalance"}, "targets": [target("a")]}));
    let r = block_on(s.engine.handle(&hello(), &opts));
    assert_eq!(r.status, 500);
}

#[test]
fn conditional_routes_on_metadata_and_params_and_fails_clearly_without_a_match() {
    let s = setup();
    s.transport.script("pro", [Reply::ok(OK)]).script("free", [Reply::ok(OK)]);
    let mut pro = target("pro");
    pro["name"] = json!("pro");
    let mut free = target("free");
    free["name"] = json!("free");
    let config = json!({
        "strategy": {"mode": "conditional", "conditions": [
            {"query": {"metadata.user.plan": {"$in": ["pro", "team"]}, "params.model": "m"}, "then": "pro"}
        ]},
        "targets": [free, pro]
    });
    let mut opts = options(config);
    opts.metadata = Arc::new(json!({"user": {"plan": "team"}}));
    let r = block_on(s.engine.handle(&hello(), &opts));
    assert_eq!(r.route.option_index.as_deref(), Some("config.targets[1]"));
    opts.metadata = Arc::new(json!({"user": {"plan": "free"}}));
    let r = block_on(s.engine.handle(&hello(), &opts));
    assert_eq!(r.status, 400);
    assert_eq!(r.result.unwrap_err().code, ErrorCode::NoRouteMatched);
}

fn body_was_parsed(request: &GatewayRequest) -> bool {
    matches!(&request.body, RequestBody::Json { value, .. } if value.get().is_some())
}

#[test]
fn a_pass_through_request_is_forwarded_without_parsing_its_body() {
    let s = setup();
    s.transport.script("a", [Reply::ok(OK), Reply::ok(OK), Reply::ok(OK)]);
    let raw = r#"{"model":"m",  "messages":[{"role":"user","content":"hello"}], "seed": 7}"#;
    let request = GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::json(Bytes::from(raw)).unwrap());
    let r = block_on(s.engine.handle(&request, &options(target("a"))));
    assert_eq!(r.status, 200);
    assert_eq!(s.transport.calls()[0].request.body, Bytes::from(raw), "the caller's bytes, untouched");
    assert!(!body_was_parsed(&request), "validated and routed without building a Value");

    // A metadata-only condition does not need the body either; a params one does.
    let conditional = |query: Value| {
        let mut a = target("a");
        a["name"] = json!("a");
        options(
            json!({"strategy": {"mode": "conditional", "conditions": [{"query": query, "then": "a"}]}, "targets": [a]}),
        )
    };
    let mut by_metadata = conditional(json!({"metadata.plan": "pro"}));
    by_metadata.metadata = Arc::new(json!({"plan": "pro"}));
    assert_eq!(block_on(s.engine.handle(&request, &by_metadata)).status, 200);
    assert!(!body_was_parsed(&request));
    assert_eq!(block_on(s.engine.handle(&request, &conditional(json!({"params.seed": 7})))).status, 200);
    assert!(body_was_parsed(&request), "a params query reads the body");
}

#[test]
fn the_request_provider_fills_leaves_without_one() {
    let s = setup();
    s.transport.script("a", [Reply::ok(OK)]);
    let config = Config::load(&json!({"retry": {"attempts": 1}, "custom_host": "http://a/v1"})).unwrap();
    let mut options_map = serde_json::Map::new();
    options_map.insert("api_key".into(), json!("from-header"));
    let opts = RequestOptions {
        config: Some(Arc::new(config)),
        provider: Some(Arc::new(ProviderTarget::new("openai", options_map).unwrap())),
        ..RequestOptions::default()
    };
    let r = block_on(s.engine.handle(&hello(), &opts));
    assert_eq!(r.status, 200);
    assert_eq!(s.transport.calls()[0].request.headers["authorization"], "Bearer from-header");
}

#[test]
fn malformed_bodies_are_400s_naming_the_field_and_nothing_is_sent() {
    let s = setup();
    let opts = options(target("a"));
    for (body, param) in [
        (json!({"model": "m"}), "messages"),
        (json!({"model": "m", "messages": []}), "messages"),
        (json!({"model": 5, "messages": [{"role": "user", "content": "x"}]}), "model"),
        (json!({"messages": [{"role": "user", "content": 5}]}), "messages[0].content"),
        (json!({"messages": [{"content": "x"}]}), "messages[0].role"),
    ] {
        let r = block_on(s.engine.handle(&chat(body), &opts));
        assert_eq!(r.status, 400);
        let e = r.result.unwrap_err();
        assert_eq!((e.code, e.param.as_deref()), (ErrorCode::InvalidRequest, Some(param)));
    }
    assert!(s.transport.calls().is_empty());
}

#[test]
fn an_endpoint_a_provider_lacks_is_a_400_and_falls_back() {
    let s = setup();
    s.transport.script("b", [Reply::ok(r#"{"object":"list","data":[]}"#)]);
    let embed = GatewayRequest::json(
        Endpoint::Embeddings,
        RequestBody::json(Bytes::from(r#"{"model":"e","input":"x"}"#)).unwrap(),
    );
    let only_groq = options(json!({"provider": "groq", "api_key": "k"}));
    let r = block_on(s.engine.handle(&embed, &only_groq));
    assert_eq!((r.status, r.result.unwrap_err().code), (400, ErrorCode::UnsupportedEndpoint));
    let config =
        json!({"strategy": {"mode": "fallback"}, "targets": [{"provider": "groq", "api_key": "k"}, target("b")]});
    let r = block_on(s.engine.handle(&embed, &options(config)));
    assert_eq!(r.status, 200);
}

fn sse(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| format!("data: {e}\n\n")).collect()
}

fn chunk(content: &str, finish: Option<&str>) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
}

fn streamed() -> GatewayRequest {
    chat(json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hello"}]}))
}

fn collect(r: gateway_core::Response) -> (Vec<Value>, Option<gateway_core::GatewayError>) {
    let Ok(gateway_core::Answer { body: ResponseBody::Events(stream), .. }) = r.result else {
        panic!("expected a stream, got {:?}", r.error())
    };
    let items: Vec<_> = block_on(stream.collect());
    let mut chunks = Vec::new();
    let mut error = None;
    for item in items {
        match item {
            Ok(b) => chunks.push(serde_json::from_slice(&b).unwrap()),
            Err(e) => error = Some(e),
        }
    }
    (chunks, error)
}

#[test]
fn a_stream_that_breaks_before_its_first_chunk_falls_back() {
    let s = setup();
    let mut good = sse(&[chunk("hi", None), chunk("", Some("stop"))]);
    good.push("data: [DONE]\n\n".into());
    s.transport
        .script("a", [Reply::Stream(vec![": keep-alive\n\n".into()], Some(TransportErrorKind::ConnectionReset))])
        .script("b", [Reply::Stream(good, None)]);
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [target("a"), target("b")]});
    let r = block_on(s.engine.handle(&streamed(), &options(config)));
    assert_eq!(r.status, 200);
    assert_eq!(r.route.option_index.as_deref(), Some("config.targets[1]"));
    let (chunks, error) = collect(r);
    assert_eq!(chunks.len(), 2);
    assert!(error.is_none());
}

#[test]
fn a_stream_that_breaks_after_it_started_ends_with_an_error_not_a_clean_end() {
    let s = setup();
    s.transport.script(
        "a",
        [Reply::Stream(sse(&[chunk("hi", None), chunk(" there", None)]), Some(TransportErrorKind::ConnectionReset))],
    );
    let r = block_on(s.engine.handle(&streamed(), &options(target("a"))));
    assert_eq!(r.status, 200);
    let (chunks, error) = collect(r);
    assert_eq!(chunks.len(), 2);
    assert_eq!(error.unwrap().code, ErrorCode::StreamError);
}

#[test]
fn the_cache_serves_repeats_never_stores_errors_and_honours_force_refresh() {
    let s = setup();
    s.transport.script("a", [Reply::error(500, "boom"), Reply::ok(OK), Reply::ok(OK)]).script("b", [Reply::ok(OK)]);
    let mut a = target("a");
    a["cache"] = json!({"mode": "simple", "max_age": 60});
    let opts = options(a);
    let r = block_on(s.engine.handle(&hello(), &opts));
    assert_eq!((r.status, r.route.cache_status), (500, CacheStatus::Miss));
    let r = block_on(s.engine.handle(&hello(), &opts));
    assert_eq!((r.status, r.route.cache_status), (200, CacheStatus::Miss), "the error was not stored");
    let r = block_on(s.engine.handle(&hello(), &opts));
    assert_eq!((r.status, r.route.cache_status), (200, CacheStatus::Hit));
    assert_eq!(s.transport.calls().len(), 2);
    assert_eq!(body_json(&r)["choices"][0]["message"]["content"], "hi");

    let mut refresh = opts.clone();
    refresh.cache_force_refresh = true;
    let r = block_on(s.engine.handle(&hello(), &refresh));
    assert_eq!((r.status, r.route.cache_status), (200, CacheStatus::Refresh));
    assert_eq!(s.transport.calls().len(), 3);

    // Another credential never sees this tenant's entry.
    let mut other = target("b");
    other["cache"] = json!({"mode": "simple"});
    other["custom_host"] = json!("http://a/v1");
    other["api_key"] = json!("other-key");
    let r = block_on(s.engine.handle(&hello(), &options(other)));
    assert_eq!(r.route.cache_status, CacheStatus::Miss);
}

#[test]
fn without_a_cache_policy_the_status_is_disabled() {
    let s = setup();
    s.transport.script("a", [Reply::ok(OK)]);
    let r = block_on(s.engine.handle(&hello(), &options(target("a"))));
    assert_eq!(r.route.cache_status, CacheStatus::Disabled);
}

fn cached_target(host: &str) -> Value {
    let mut t = target(host);
    t["cache"] = json!({"mode": "simple", "max_age": 60});
    t
}

fn tool_stream() -> Vec<String> {
    let mut events = sse(&[
        json!({"id": "s1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
        json!({"id": "s1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]}),
        json!({"id": "s1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": null}]}),
        json!({"id": "s1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\":"}}]}, "finish_reason": null}]}),
        json!({"id": "s1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "finish_reason": null}]}),
        json!({"id": "s1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"id": "s1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
    ]);
    events.push("data: [DONE]\n\n".into());
    events
}

#[test]
fn a_streamed_answer_is_cached_as_its_completion_and_serves_plain_requests() {
    let s = setup();
    s.transport.script("a", [Reply::Stream(tool_stream(), None)]);
    let opts = options(cached_target("a"));
    let r = block_on(s.engine.handle(&streamed(), &opts));
    assert_eq!(r.route.cache_status, CacheStatus::Miss);
    let route = r.route.clone();
    let (chunks, error) = collect(r);
    assert!(error.is_none());
    assert_eq!(chunks.len(), 6, "the caller gets the stream without the usage chunk it did not ask for");
    let usage = route.settled().usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens, usage.total_tokens), (3, 4, 7));

    // `stream: false` and an absent `stream` both hit the assembled answer.
    for body in [
        json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]}),
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": "hello"}]}),
    ] {
        let r = block_on(s.engine.handle(&chat(body), &opts));
        assert_eq!(r.route.cache_status, CacheStatus::Hit);
        let answer = body_json(&r);
        assert_eq!(answer["object"], "chat.completion");
        assert_eq!(answer["id"], "s1");
        let message = &answer["choices"][0]["message"];
        assert_eq!(message["content"], "Hello");
        assert_eq!(message["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
        assert_eq!(message["tool_calls"][0]["id"], "call_1");
        assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(answer["usage"]["total_tokens"], 7);
    }
    assert_eq!(s.transport.calls().len(), 1);
}

#[test]
fn a_cached_answer_is_replayed_to_a_streaming_caller() {
    let s = setup();
    s.transport.script(
        "a",
        [Reply::ok(
            &json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "cached"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
            .to_string(),
        )],
    );
    let opts = options(cached_target("a"));
    block_on(s.engine.handle(&hello(), &opts));
    let with_usage = chat(
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hello"}]}),
    );
    let r = block_on(s.engine.handle(&with_usage, &opts));
    assert_eq!((r.status, r.route.cache_status), (200, CacheStatus::Hit));
    assert_eq!(r.result.as_ref().unwrap().content_type.as_deref(), Some("text/event-stream"));
    let (chunks, error) = collect(r);
    assert!(error.is_none());
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "cached");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 2);
    assert_eq!(s.transport.calls().len(), 1);
}

#[test]
fn a_broken_stream_is_never_cached() {
    let s = setup();
    let mut partial = tool_stream();
    partial.truncate(3);
    s.transport.script("a", [Reply::Stream(partial, Some(TransportErrorKind::ConnectionReset)), Reply::ok(OK)]);
    let opts = options(cached_target("a"));
    let (_, error) = collect(block_on(s.engine.handle(&streamed(), &opts)));
    assert!(error.is_some());
    let r = block_on(s.engine.handle(&hello(), &opts));
    assert_eq!(r.route.cache_status, CacheStatus::Miss);
    assert_eq!(s.transport.calls().len(), 2);
}

#[test]
fn cached_answers_expire_after_max_age_and_after_24_hours_by_default() {
    for (cache, lifetime) in [
        (json!({"mode": "simple", "max_age": 60}), Duration::from_secs(60)),
        (json!({"mode": "simple"}), Duration::from_secs(24 * 3600)),
    ] {
        let transport = Arc::new(ScriptedTransport::new());
        let clock = transport.clone();
        let cache_store = gateway_core::cache::InMemoryCache::with_clock(
            100,
            Arc::new(move || gateway_core::Transport::now(&*clock)),
        );
        let engine = Engine::new(transport.clone()).with_cache(Arc::new(cache_store));
        transport.script("a", [Reply::ok(OK), Reply::ok(OK)]);
        let mut t = target("a");
        t["cache"] = cache;
        let opts = options(t);
        assert_eq!(block_on(engine.handle(&hello(), &opts)).route.cache_status, CacheStatus::Miss);
        transport.advance(lifetime - Duration::from_secs(1));
        assert_eq!(block_on(engine.handle(&hello(), &opts)).route.cache_status, CacheStatus::Hit, "{lifetime:?}");
        transport.advance(Duration::from_secs(2));
        assert_eq!(block_on(engine.handle(&hello(), &opts)).route.cache_status, CacheStatus::Miss, "{lifetime:?}");
        assert_eq!(transport.calls().len(), 2, "the expired entry was fetched again");
    }
}

#[test]
fn forward_headers_never_copy_framing_hop_by_hop_or_a_second_authorization() {
    // Each provider with the header its own key travels in.
    let providers = [
        ("openai", target("a"), "authorization"),
        ("anthropic", json!({"provider": "anthropic", "api_key": "k", "custom_host": "http://a/v1"}), "x-api-key"),
        ("google", json!({"provider": "google", "api_key": "k", "custom_host": "http://a/v1beta"}), "x-goog-api-key"),
    ];
    for (name, mut t, key_header) in providers {
        let s = setup();
        s.transport.script("a", [Reply::error(500, "stop")]);
        t["forward_headers"] = json!([
            "content-length",
            "transfer-encoding",
            "host",
            "connection",
            "te",
            "upgrade",
            "authorization",
            "x-api-key",
            "x-goog-api-key",
            "x-user"
        ]);
        let mut request = hello();
        for (header, value) in [
            ("content-length", "999999"),
            ("transfer-encoding", "chunked"),
            ("host", "evil.example"),
            ("connection", "upgrade"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("authorization", "Bearer caller"),
            ("x-api-key", "caller"),
            ("x-goog-api-key", "caller"),
            ("x-user", "u-1"),
        ] {
            request.headers.insert(http::HeaderName::from_static(header), http::HeaderValue::from_static(value));
        }
        block_on(s.engine.handle(&request, &options(t)));
        let sent = &s.transport.calls()[0].request.headers;
        for hop in ["content-length", "transfer-encoding", "host", "connection", "te", "upgrade"] {
            assert!(sent.get(hop).is_none(), "{name}: {hop} was forwarded");
        }
        for auth in ["authorization", "x-api-key", "x-goog-api-key"] {
            assert!(sent.get_all(auth).iter().count() <= 1, "{name}: two {auth} headers");
        }
        let key = sent[key_header].to_str().unwrap();
        assert!(key.ends_with('k') && !key.contains("caller"), "{name}: the caller's {key_header} replaced the key");
        assert_eq!(sent["x-user"], "u-1", "{name}: other named headers are forwarded");
    }
}

// ---- What one request may cost (issue 11): attempts, deadline, answer size, garbage.

fn limited(limits: gateway_core::engine::Limits) -> Setup {
    let s = setup();
    Setup { engine: s.engine.with_limits(limits), transport: s.transport }
}

/// A fallback tree `depth` levels deep, `width` targets a level, every leaf retried
/// `retries` times: without a cap it makes (width^depth) * (retries + 1) calls.
fn fan_out(depth: usize, width: usize, retries: u8) -> Value {
    if depth == 0 {
        let mut leaf = target("a");
        leaf["retry"] = json!({"attempts": retries, "on_status_codes": [500]});
        return leaf;
    }
    json!({"strategy": {"mode": "fallback"}, "targets": (0..width).map(|_| fan_out(depth - 1, width, retries)).collect::<Vec<_>>()})
}

#[test]
fn upstream_attempts_are_capped_across_retries_and_fallbacks() {
    let s = setup();
    s.transport.script("a", (0..1000).map(|_| Reply::error(500, "boom")));
    // 5 × 5 × 5 leaves, each tried 6 times: 750 calls uncapped.
    let r = block_on(s.engine.handle(&hello(), &options(fan_out(3, 5, 5))));
    let cap = gateway_core::engine::Limits::default().max_attempts;
    assert_eq!(s.transport.calls().len(), cap);
    assert_eq!(r.route.attempts.len(), cap);
    let e = r.error().unwrap();
    assert_eq!((e.code, r.status), (ErrorCode::AttemptLimitReached, 502), "{}", e.message);
    assert!(e.message.contains(&format!("{cap} upstream attempts")), "{}", e.message);

    let s = limited(gateway_core::engine::Limits { max_attempts: 3, ..Default::default() });
    s.transport.script("a", (0..10).map(|_| Reply::error(500, "boom")));
    block_on(s.engine.handle(&hello(), &options(fan_out(1, 4, 0))));
    assert_eq!(s.transport.calls().len(), 3);
}

#[test]
fn the_deadline_bounds_retries_waits_and_a_hanging_upstream() {
    // Backoff 1+2+4+8+16 s would take 31 s; the deadline of 10 s stops it after the 4 s wait.
    let s = limited(gateway_core::engine::Limits { deadline: Duration::from_secs(10), ..Default::default() });
    s.transport.script("a", (0..6).map(|_| Reply::error(500, "boom")));
    let mut t = target("a");
    t["retry"] = json!({"attempts": 5, "on_status_codes": [500]});
    let r = block_on(s.engine.handle(&hello(), &options(t)));
    assert_eq!(r.status, 500);
    assert_eq!(s.transport.sleeps(), [1, 2, 4].map(Duration::from_secs));
    assert_eq!(r.route.retry_count, -1);

    // An upstream that never answers, with no request_timeout: the deadline ends it.
    let s = limited(gateway_core::engine::Limits { deadline: Duration::from_secs(10), ..Default::default() });
    s.transport.script("a", [Reply::Hang]);
    let r = block_on(s.engine.handle(&hello(), &options(target("a"))));
    let e = r.error().unwrap();
    assert_eq!((e.code, r.status), (ErrorCode::DeadlineExceeded, 504), "{}", e.message);
    assert_eq!(s.transport.sleeps(), [Duration::from_secs(10)]);
}

#[test]
fn an_upstream_that_never_answers_times_out_without_a_request_timeout() {
    let s = setup();
    s.transport.script("a", [Reply::Hang]);
    let r = block_on(s.engine.handle(&hello(), &options(target("a"))));
    let e = r.error().unwrap();
    assert_eq!((e.code, r.status), (ErrorCode::Timeout, 408));
    assert!(e.message.contains("default attempt timeout"), "{}", e.message);
    assert_eq!(s.transport.sleeps(), [gateway_core::engine::Limits::default().attempt_timeout]);
}

#[test]
fn an_answer_over_the_size_limit_is_a_502_and_never_cached() {
    let s = limited(gateway_core::engine::Limits { max_response_bytes: 1000, ..Default::default() });
    let huge = format!(r#"{{"id":"x","pad":"{}"}}"#, "x".repeat(2000));
    let declared = Reply::Status(200, vec![("content-length", huge.len().to_string())], huge.clone());
    s.transport.script("a", [Reply::ok(&huge), declared, Reply::ok(OK)]);
    let config = cached_target("a");
    for _ in 0..2 {
        let r = block_on(s.engine.handle(&hello(), &options(config.clone())));
        let e = r.error().unwrap();
        assert_eq!((e.code, r.status), (ErrorCode::UpstreamResponseTooLarge, 502), "{}", e.message);
        assert!(e.message.contains("1000 bytes"), "{}", e.message);
    }
    let r = block_on(s.engine.handle(&hello(), &options(config)));
    assert_eq!(r.status, 200);
    assert_eq!(s.transport.calls().len(), 3);
}

#[test]
fn a_translated_providers_200_that_is_not_json_is_a_502_and_nothing_invalid_is_cached() {
    let s = setup();
    s.transport.script("a", [Reply::ok("<html>oops</html>")]);
    let anthropic = json!({"provider": "anthropic", "api_key": "k", "custom_host": "http://a/v1"});
    let r = block_on(s.engine.handle(&hello(), &options(anthropic)));
    let e = r.error().unwrap();
    assert_eq!((e.code, r.status, e.provider.as_deref()), (ErrorCode::InvalidUpstreamResponse, 502, Some("anthropic")));
    assert_eq!(body_json(&r)["error"]["code"], "invalid_upstream_response");

    // A pass-through provider's garbage goes to the caller as it came, but is not cached.
    s.transport.script("b", [Reply::ok("not json"), Reply::ok(OK)]);
    let config = cached_target("b");
    let first = block_on(s.engine.handle(&hello(), &options(config.clone())));
    assert_eq!(first.status, 200);
    let second = block_on(s.engine.handle(&hello(), &options(config)));
    assert_eq!((second.status, second.route.cache_status), (200, CacheStatus::Miss));
    assert_eq!(body_json(&second)["id"], "x");
}

#[test]
fn a_stream_longer_than_the_answer_limit_is_passed_through_but_not_cached() {
    let s = limited(gateway_core::engine::Limits { max_response_bytes: 300, ..Default::default() });
    s.transport.script("a", [Reply::Stream(tool_stream(), None), Reply::Stream(tool_stream(), None)]);
    let opts = options(cached_target("a"));
    for _ in 0..2 {
        let r = block_on(s.engine.handle(&streamed(), &opts));
        assert_eq!(r.route.cache_status, CacheStatus::Miss);
        let (chunks, error) = collect(r);
        assert_eq!((chunks.len(), error.is_none()), (6, true), "the caller still gets the whole stream");
    }
    assert_eq!(s.transport.calls().len(), 2);
}
