//! What the real server tells its operators, over loopback: the request log (every field
//! of success, retry, fallback, cache hit, error and stream records, and no credential
//! even when an upstream echoes one), `/metrics` after a known sequence of requests, and
//! OTLP spans decoded by a receiver the test runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway_http::telemetry::{LogFormat, Metrics, RequestLog, Telemetry, Traces};
use gateway_tests::log_lines::Lines;
use gateway_tests::mock::{Gateway, GatewayOptions, MockReply, MockUpstream, hello, start_gateway};
use serde_json::{Value, json};

const SECRET: &str = "sk-secret-0123456789";

/// POST `body` to the gateway's chat endpoint with these headers.
async fn post(gateway: &Gateway, headers: &[(&str, String)], body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(format!("{}/v1/chat/completions", gateway.base)).json(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

fn answer(model: &str, input: u64, output: u64) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}})
}

fn echoing_error(status: u16) -> MockReply {
    MockReply::error(status, &format!("Incorrect API key provided: {SECRET}. You can find your key at ..."))
}

fn sse(chunks: &[Value]) -> MockReply {
    let mut frames: Vec<String> = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    frames.push("data: [DONE]\n\n".into());
    MockReply::Sse { chunks: frames, gap: Duration::from_millis(5), then_break: false }
}

/// OpenAI's stream once usage is asked for: `"usage":null` on every chunk, then a usage chunk.
fn stream_with_usage() -> MockReply {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null})
    };
    sse(&[
        chunk(json!({"role": "assistant", "content": "Hel"}), Value::Null),
        chunk(json!({"content": "lo"}), json!("stop")),
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
               "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100,
               "prompt_tokens_details": {"cached_tokens": 200}}}),
    ])
}

/// The server, and the upstreams it must outlive.
struct Scenario {
    gateway: Gateway,
    _upstreams: [MockUpstream; 3],
}

/// The known sequence: a fallback after a retry, the same again served from the cache, an
/// upstream error that echoes the key, and a stream.
async fn run_scenario(telemetry: Telemetry) -> Scenario {
    let flaky = MockUpstream::start((0..5).map(|_| echoing_error(500))).await;
    let backup = MockUpstream::start([MockReply::ok(answer("gpt-4o-mini-2024-07-18", 10, 5))]).await;
    let streaming = MockUpstream::start([stream_with_usage()]).await;
    let gateway = start_gateway(GatewayOptions { telemetry, ..GatewayOptions::default() }).await;
    let fallback = json!({
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai", "api_key": SECRET, "custom_host": flaky.v1(),
             "retry": {"attempts": 1, "on_status_codes": [500]}},
            {"provider": "openai", "api_key": "sk-backup-key-xyz", "custom_host": backup.v1(), "cache": {"mode": "simple"}}
        ]
    });
    for trace in ["t-fallback", "t-cached"] {
        let headers = [
            ("x-portkey-config", fallback.to_string()),
            ("x-portkey-metadata", r#"{"team":"search","_user":"u1"}"#.to_owned()),
            ("x-portkey-trace-id", trace.to_owned()),
        ];
        let r = post(&gateway, &headers, &hello()).await;
        assert_eq!(r.status(), 200);
    }
    let failing = json!({"provider": "openai", "api_key": SECRET, "custom_host": flaky.v1()});
    let headers = [("x-portkey-config", failing.to_string()), ("x-portkey-trace-id", "t-error".to_owned())];
    let r = post(&gateway, &headers, &hello()).await;
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(!body.contains(SECRET), "the caller never sees the key an upstream echoed: {body}");
    assert!(body.contains("[redacted]"), "{body}");

    let streamed = json!({"provider": "openai", "api_key": "sk-stream-key-123", "custom_host": streaming.v1()});
    let mut request = hello();
    request["stream"] = json!(true);
    let headers = [("x-portkey-config", streamed.to_string()), ("x-portkey-trace-id", "t-stream".to_owned())];
    let r = post(&gateway, &headers, &request).await;
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(!text.contains("usage"), "the caller did not ask for usage and sees none: {text}");
    assert_eq!(text.matches("data: ").count(), 3, "two chunks and [DONE]: {text}");
    let sent = streaming.received()[0].json();
    assert_eq!(sent["stream_options"], json!({"include_usage": true}), "the gateway asked for usage");
    Scenario { gateway, _upstreams: [flaky, backup, streaming] }
}

fn log_telemetry(format: LogFormat, bodies: bool) -> (Telemetry, Lines) {
    let lines = Lines::default();
    let log = RequestLog::to_writer(format, bodies, lines.clone()).unwrap();
    (Telemetry { log: Some(log), ..Telemetry::default() }, lines)
}

#[tokio::test]
async fn the_request_log_has_a_record_of_every_request_and_never_a_key() {
    let (telemetry, lines) = log_telemetry(LogFormat::Json, false);
    let scenario = run_scenario(telemetry).await;
    let records = lines.records(4).await;
    let fields = [
        "trace_id",
        "key",
        "metadata",
        "provider",
        "model",
        "option_index",
        "status",
        "error_code",
        "retries",
        "cache_status",
        "latency_ms",
        "upstream_latency_ms",
        "ttft_ms",
        "usage",
        "cost_usd",
        "attempts",
    ];
    for record in &records {
        for field in fields {
            assert!(record.get(field).is_some(), "{field} missing from {record}");
        }
        assert!(record["latency_ms"].as_f64().unwrap() > 0.0, "{record}");
        assert!(record.get("request_body").is_none(), "no bodies unless asked for");
    }
    assert!(!lines.text().contains(SECRET), "no key in the log, even echoed by an upstream");
    assert!(!lines.text().contains("sk-backup-key-xyz"));
    let by_trace = |t: &str| records.iter().find(|r| r["trace_id"] == t).unwrap_or_else(|| panic!("no {t}"));

    let fallback = by_trace("t-fallback");
    assert_eq!(fallback["status"], 200);
    assert_eq!((&fallback["provider"], &fallback["model"]), (&json!("openai"), &json!("gpt-4o-mini-2024-07-18")));
    assert_eq!(fallback["option_index"], "config.targets[1]", "the second target answered");
    assert_eq!(fallback["metadata"], json!({"team": "search", "_user": "u1"}));
    assert_eq!(fallback["key"], Value::Null);
    assert_eq!(fallback["cache_status"], "MISS");
    assert_eq!(fallback["error_code"], Value::Null);
    let statuses: Vec<_> = fallback["attempts"].as_array().unwrap().iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, vec![json!(500), json!(500), json!(200)], "a retry, then the fallback");
    assert_eq!(fallback["attempts"][0]["error_code"], "upstream_error");
    assert_eq!(
        fallback["usage"],
        json!({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15, "cached_input_tokens": 0,
               "reasoning_tokens": 0, "cache_write_input_tokens": 0})
    );
    // gpt-4o-mini: $0.15 in, $0.60 out per million.
    assert!((fallback["cost_usd"].as_f64().unwrap() - (10.0 * 0.15 + 5.0 * 0.6) / 1e6).abs() < 1e-12);
    assert!(fallback["upstream_latency_ms"].as_f64().is_some());
    assert_eq!(fallback["ttft_ms"], Value::Null, "not a stream");

    let cached = by_trace("t-cached");
    assert_eq!((&cached["cache_status"], &cached["cost_usd"]), (&json!("HIT"), &json!(0.0)), "a hit costs nothing");
    assert_eq!(cached["usage"]["input_tokens"], 10, "the cached answer's usage");

    let error = by_trace("t-error");
    assert_eq!((&error["status"], &error["error_code"]), (&json!(500), &json!("upstream_error")));
    assert!(error["error_message"].as_str().unwrap().contains("[redacted]"), "{error}");
    assert_eq!((&error["usage"], &error["cost_usd"]), (&Value::Null, &Value::Null));

    let stream = by_trace("t-stream");
    assert_eq!((&stream["stream"], &stream["status"]), (&json!(true), &json!(200)));
    assert_eq!(stream["usage"]["input_tokens"], 1000);
    assert_eq!(stream["usage"]["cached_input_tokens"], 200);
    assert_eq!(stream["model"], "gpt-4o-2024-08-06");
    // gpt-4o: $2.50 in, $1.25 cached, $10 out per million.
    let cost = (800.0 * 2.5 + 200.0 * 1.25 + 100.0 * 10.0) / 1e6;
    assert!((stream["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12, "{stream}");
    assert!(stream["ttft_ms"].as_f64().unwrap() > 0.0);
    assert!(stream["latency_ms"].as_f64().unwrap() >= stream["ttft_ms"].as_f64().unwrap());
    drop(scenario);
}

#[tokio::test]
async fn bodies_are_logged_only_when_asked_and_text_lines_are_readable() {
    let (telemetry, lines) = log_telemetry(LogFormat::Json, true);
    let backup = MockUpstream::start([MockReply::ok(answer("gpt-4o-mini", 1, 1))]).await;
    let gateway = start_gateway(GatewayOptions { telemetry, ..GatewayOptions::default() }).await;
    let config = json!({"provider": "openai", "api_key": "sk-k-123456789", "custom_host": backup.v1()});
    post(&gateway, &[("x-portkey-config", config.to_string())], &hello()).await;
    let record = &lines.records(1).await[0];
    assert!(record["request_body"].as_str().unwrap().contains("hello"), "{record}");
    assert!(record["response_body"].as_str().unwrap().contains("chat.completion"), "{record}");
    assert!(!lines.text().contains("sk-k-123456789"));

    let (telemetry, lines) = log_telemetry(LogFormat::Text, false);
    let backup = MockUpstream::start([MockReply::ok(answer("gpt-4o-mini", 1000, 10))]).await;
    let gateway = start_gateway(GatewayOptions { telemetry, ..GatewayOptions::default() }).await;
    let config = json!({"provider": "openai", "api_key": "sk-k-123456789", "custom_host": backup.v1()});
    let headers = [("x-portkey-config", config.to_string()), ("x-portkey-trace-id", "t-text".to_owned())];
    post(&gateway, &headers, &hello()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lines.text().ends_with('\n') {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let line = lines.text();
    assert!(line.contains(" t-text 200 openai/gpt-4o-mini "), "{line}");
    assert!(line.contains("tokens=1000+10 cost=$0.000156 cache=DISABLED retries=0"), "{line}");
}

/// `name{labels} value` lines of an exposition, as (name with labels, value).
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn sample(samples: &[(String, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, _)| {
            n.split('{').next() == Some(name) && labels.iter().all(|(k, v)| n.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn metrics_count_the_known_sequence_with_bounded_labels() {
    let metrics = Arc::new(Metrics::new(&["team".to_owned()]));
    let telemetry = Telemetry { metrics: Some(metrics), ..Telemetry::default() };
    let scenario = run_scenario(telemetry).await;
    let r = reqwest::get(format!("{}/metrics", scenario.gateway.base)).await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    let s = samples(&text);
    let ok = [("provider", "openai"), ("model", "gpt-4o-mini-2024-07-18"), ("status", "200")];
    assert_eq!(sample(&s, "gatewise_requests_total", &ok), 2.0, "{text}");
    assert_eq!(sample(&s, "gatewise_requests_total", &[("metadata_team", "search")]), 2.0, "{text}");
    assert_eq!(sample(&s, "gatewise_requests_total", &[("status", "500"), ("error_code", "upstream_error")]), 1.0);
    assert_eq!(sample(&s, "gatewise_requests_total", &[]), 4.0);
    assert_eq!(sample(&s, "gatewise_request_duration_seconds_count", &[]), 4.0);
    assert_eq!(sample(&s, "gatewise_time_to_first_token_seconds_count", &[]), 1.0);
    assert_eq!(sample(&s, "gatewise_tokens_total", &[("type", "input")]), 10.0 + 10.0 + 1000.0);
    assert_eq!(sample(&s, "gatewise_tokens_total", &[("type", "cached_input")]), 200.0);
    let spent = sample(&s, "gatewise_cost_usd_total", &[]);
    let expected = (10.0 * 0.15 + 5.0 * 0.6) / 1e6 + (800.0 * 2.5 + 200.0 * 1.25 + 100.0 * 10.0) / 1e6;
    assert!((spent - expected).abs() < 1e-12, "{spent} {expected}");
    assert_eq!(sample(&s, "gatewise_cache_lookups_total", &[("result", "miss")]), 1.0);
    assert_eq!(sample(&s, "gatewise_cache_lookups_total", &[("result", "hit")]), 1.0);
    assert_eq!(sample(&s, "gatewise_fallbacks_total", &[]), 2.0);
    assert_eq!(sample(&s, "gatewise_upstream_attempts_total", &[("status", "500")]), 5.0, "2 retried twice, 1 error");
    assert_eq!(sample(&s, "gatewise_in_flight_requests", &[]), 0.0);
    assert!(!text.contains("t-fallback") && !text.contains("u1"), "no trace ids or unlisted metadata in labels");
}

#[tokio::test]
async fn a_refused_request_is_logged_and_counted_too() {
    let (mut telemetry, lines) = log_telemetry(LogFormat::Json, false);
    telemetry.metrics = Some(Arc::new(Metrics::new(&[])));
    let gateway = start_gateway(GatewayOptions { telemetry, ..GatewayOptions::default() }).await;
    let r = post(&gateway, &[("x-portkey-config", "{not json".to_owned())], &hello()).await;
    assert_eq!(r.status(), 400);
    let record = &lines.records(1).await[0];
    assert_eq!((&record["status"], &record["error_code"]), (&json!(400), &json!("invalid_config")));
    let text = reqwest::get(format!("{}/metrics", gateway.base)).await.unwrap().text().await.unwrap();
    let s = samples(&text);
    assert_eq!(sample(&s, "gatewise_requests_total", &[("status", "400")]), 1.0, "{text}");
    assert_eq!(sample(&s, "gatewise_in_flight_requests", &[]), 0.0);
}

/// An OTLP/HTTP receiver: every export request, decoded.
async fn otlp_receiver()
-> (String, Arc<Mutex<Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>>>) {
    use prost::Message;
    let got = Arc::new(Mutex::new(Vec::new()));
    let state = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: bytes::Bytes| {
            let state = state.clone();
            async move {
                let request =
                    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body).unwrap();
                state.lock().unwrap().push(request);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

fn attribute(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> Option<Value> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    let value = span.attributes.iter().find(|a| a.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match value {
        V::StringValue(s) => json!(s),
        V::IntValue(i) => json!(i),
        V::DoubleValue(d) => json!(d),
        V::BoolValue(b) => json!(b),
        _ => Value::Null,
    })
}

#[tokio::test]
async fn spans_follow_the_genai_conventions_and_the_callers_trace() {
    let (endpoint, exported) = otlp_receiver().await;
    let traces = Arc::new(Traces::otlp(&endpoint).unwrap());
    let telemetry = Telemetry { traces: Some(traces.clone()), ..Telemetry::default() };
    let failing = MockUpstream::start([MockReply::error(503, "overloaded")]).await;
    let backup =
        MockUpstream::start([MockReply::ok(answer("gpt-4o-mini", 7, 3)), MockReply::ok(answer("gpt-4o-mini", 1, 1))])
            .await;
    let gateway = start_gateway(GatewayOptions { telemetry, ..GatewayOptions::default() }).await;
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "openai", "api_key": "sk-a-123456789", "custom_host": failing.v1()},
        {"provider": "openai", "api_key": "sk-b-123456789", "custom_host": backup.v1()}]});
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    let r = post(&gateway, &[("x-portkey-config", config.to_string()), ("traceparent", traceparent)], &hello()).await;
    assert_eq!(r.status(), 200);
    // A request without traceparent starts a trace of its own.
    let single = json!({"provider": "openai", "api_key": "sk-b-123456789", "custom_host": backup.v1()});
    post(&gateway, &[("x-portkey-config", single.to_string())], &hello()).await;
    // Blocks until the export is answered, by a receiver on this test's runtime.
    tokio::task::spawn_blocking(move || traces.shutdown()).await.unwrap();

    let spans: Vec<_> = exported
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter().cloned())
        .collect();
    assert_eq!(spans.len(), 5, "a span per request and per attempt");
    let in_callers: Vec<_> = spans.iter().filter(|s| hex::encode(&s.trace_id) == caller_trace).collect();
    assert_eq!(in_callers.len(), 3, "the first request joined the caller's trace");
    let request = in_callers.iter().find(|s| hex::encode(&s.parent_span_id) == caller_span).unwrap();
    assert_eq!(request.name, "chat gpt-4o-mini");
    assert_eq!(request.kind, 2, "SERVER");
    assert_eq!(attribute(request, "gen_ai.operation.name"), Some(json!("chat")));
    assert_eq!(attribute(request, "gen_ai.provider.name"), Some(json!("openai")));
    assert_eq!(attribute(request, "gen_ai.request.model"), Some(json!("gpt-4o-mini")));
    assert_eq!(attribute(request, "gen_ai.response.model"), Some(json!("gpt-4o-mini")));
    assert_eq!(attribute(request, "gen_ai.usage.input_tokens"), Some(json!(7)));
    assert_eq!(attribute(request, "gen_ai.usage.output_tokens"), Some(json!(3)));
    let attempts: Vec<_> = in_callers.iter().filter(|s| s.parent_span_id == request.span_id).collect();
    assert_eq!(attempts.len(), 2, "both attempts are children of the request span");
    assert!(attempts.iter().all(|s| s.kind == 3), "CLIENT");
    // Each upstream saw its attempt's span as its parent.
    for (upstream, status) in [(&failing, 503), (&backup, 200)] {
        let sent = upstream.received()[0].header("traceparent").unwrap().to_owned();
        let span = attempts.iter().find(|s| attribute(s, "http.response.status_code") == Some(json!(status))).unwrap();
        assert_eq!(sent, format!("00-{caller_trace}-{}-01", hex::encode(&span.span_id)));
    }
    let failed = attempts.iter().find(|s| attribute(s, "error.type").is_some()).unwrap();
    assert_eq!(failed.status.as_ref().unwrap().code, 2, "ERROR");
    let own: Vec<_> = spans.iter().filter(|s| hex::encode(&s.trace_id) != caller_trace).collect();
    assert_eq!(own.len(), 2);
    assert!(own.iter().any(|s| s.parent_span_id.is_empty()), "a root span of its own");
    let sent = backup.received()[1].header("traceparent").unwrap().to_owned();
    assert!(sent.starts_with(&format!("00-{}-", hex::encode(&own[0].trace_id))), "{sent}");
}

#[tokio::test]
async fn without_export_a_callers_traceparent_is_passed_on_unchanged() {
    let backup =
        MockUpstream::start([MockReply::ok(answer("gpt-4o-mini", 1, 1)), MockReply::ok(answer("m", 1, 1))]).await;
    let gateway = start_gateway(GatewayOptions::default()).await;
    let config = json!({"provider": "openai", "api_key": "sk-b-123456789", "custom_host": backup.v1()});
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    post(&gateway, &[("x-portkey-config", config.to_string()), ("traceparent", traceparent.to_owned())], &hello())
        .await;
    post(&gateway, &[("x-portkey-config", config.to_string())], &hello()).await;
    let received = backup.received();
    assert_eq!(received[0].header("traceparent"), Some(traceparent));
    assert_eq!(received[1].header("traceparent"), None, "no trace is started when nothing is exported");
}

#[tokio::test]
async fn a_registry_entrys_prices_win_and_the_key_name_is_logged() {
    let upstream = MockUpstream::start([MockReply::ok(answer("gpt-4o-mini", 1_000_000, 0))]).await;
    let dir = std::env::temp_dir().join(format!("gatewise-observability-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("registry.json");
    let registry = json!({
        "providers": {"negotiated": {"provider": "openai", "api_key": "sk-negotiated-1234", "custom_host": upstream.v1(),
                                     "pricing": {"gpt-4o-mini": {"input": 0.05, "output": 0.2}}}},
        "keys": {"team-a": {"hash": gateway_core::registry::key_hash("gw-team-a-key")}}
    });
    std::fs::write(&path, registry.to_string()).unwrap();
    let (telemetry, lines) = log_telemetry(LogFormat::Json, false);
    let gateway = start_gateway(GatewayOptions { telemetry, registry: Some(path), ..GatewayOptions::default() }).await;
    let mut body = hello();
    body["model"] = json!("@negotiated/gpt-4o-mini");
    let r = post(&gateway, &[("authorization", "Bearer gw-team-a-key".to_owned())], &body).await;
    assert_eq!(r.status(), 200);
    let record = &lines.records(1).await[0];
    assert_eq!(record["key"], "team-a");
    assert_eq!(record["cost_usd"], 0.05, "the entry's price, not the table's $0.15: {record}");
    assert!(!lines.text().contains("gw-team-a-key") && !lines.text().contains("sk-negotiated-1234"));
}
