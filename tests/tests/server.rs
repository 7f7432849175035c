//! The real server over loopback against mock providers on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, answer, hello, start_gateway};
use serde_json::{Value, json};

fn target(mock: &MockUpstream) -> Value {
    json!({"provider": "openai", "api_key": "sk-mock", "custom_host": mock.v1()})
}

async fn post(base: &str, path: &str, headers: &[(&str, String)], body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(format!("{base}{path}")).json(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

fn config_header(config: &Value) -> (&'static str, String) {
    ("x-portkey-config", config.to_string())
}

fn h<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("<absent>")
}

#[tokio::test]
async fn health_answers_200() {
    let gw = start_gateway(GatewayOptions::default()).await;
    let r = reqwest::get(format!("{}/health", gw.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let r = reqwest::Client::new().post(format!("{}/health", gw.base)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_request");
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_after_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let timeout = Duration::from_millis(300);
    let gw = start_gateway(GatewayOptions { header_read_timeout: Some(timeout), ..Default::default() }).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    // Reads until the server closes the connection; returns what it sent and when.
    let until_closed = |mut tcp: tokio::net::TcpStream| async move {
        let started = Instant::now();
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got)).await.expect("closed");
        (String::from_utf8_lossy(&got).into_owned(), started.elapsed())
    };

    // A client that trickles a request's headers and never finishes them.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let (_, after) = until_closed(slow).await;
    assert!(after >= timeout - Duration::from_millis(50) && after < Duration::from_secs(3), "closed after {after:?}");

    // A keep-alive connection left idle after an answer.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (answer, after) = until_closed(idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(after >= timeout - Duration::from_millis(50) && after < Duration::from_secs(3), "closed after {after:?}");
}

#[tokio::test]
async fn concurrent_connections_each_get_their_own_answer() {
    let replies: Vec<MockReply> = (0..16).map(|i| MockReply::ok(answer(&format!("answer {i}")))).collect();
    let mock = MockUpstream::start(replies).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let cfg = target(&mock);
    // Sixteen clients of their own: sixteen connections, dealt to the two workers.
    let calls = (0..16).map(|_| {
        let (base, cfg) = (gw.base.clone(), cfg.clone());
        tokio::spawn(async move {
            let r = post(&base, "/v1/chat/completions", &[config_header(&cfg)], &hello()).await;
            (r.status(), r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"].clone())
        })
    });
    let mut contents = Vec::new();
    for call in calls {
        let (status, content) = call.await.unwrap();
        assert_eq!(status, 200);
        contents.push(content.as_str().unwrap().to_owned());
    }
    contents.sort();
    contents.dedup();
    assert_eq!(contents.len(), 16, "every request got its own answer");
    assert_eq!(mock.received().len(), 16);
}

#[tokio::test]
async fn a_config_header_routes_and_every_route_header_comes_back() {
    let mock =
        MockUpstream::start([MockReply::Json(200, vec![("x-request-id", "req-123".into())], answer("hi").to_string())])
            .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let r = post(
        &gw.base,
        "/v1/chat/completions",
        &[config_header(&target(&mock)), ("x-portkey-trace-id", "trace-7".into())],
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-portkey-last-used-option-index"), "config");
    assert_eq!(h(&r, "x-portkey-provider"), "openai");
    assert_eq!(h(&r, "x-portkey-retry-attempt-count"), "0");
    assert_eq!(h(&r, "x-portkey-trace-id"), "trace-7");
    assert_eq!(h(&r, "x-portkey-cache-status"), "DISABLED");
    assert_eq!(h(&r, "x-request-id"), "req-123", "upstream request ids pass through");
    assert_eq!(h(&r, "content-type"), "application/json");
    assert_eq!(r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"], "hi");
    let got = &mock.received()[0];
    assert_eq!(got.uri, "/v1/chat/completions");
    assert_eq!(got.header("authorization"), Some("Bearer sk-mock"));
    assert_eq!(got.json(), hello(), "the body reaches the upstream untouched");
}

#[tokio::test]
async fn a_trace_id_is_generated_when_absent() {
    let mock = MockUpstream::start([MockReply::ok(answer("x")), MockReply::ok(answer("y"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let a = post(&gw.base, "/v1/chat/completions", &[config_header(&target(&mock))], &hello()).await;
    let b = post(&gw.base, "/v1/chat/completions", &[config_header(&target(&mock))], &hello()).await;
    assert!(h(&a, "x-portkey-trace-id").starts_with("gw-"));
    assert_ne!(h(&a, "x-portkey-trace-id"), h(&b, "x-portkey-trace-id"));
}

#[tokio::test]
async fn provider_header_with_authorization_and_custom_host_header() {
    let mock = MockUpstream::start([MockReply::ok(answer("hi"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let r = post(
        &gw.base,
        "/v1/chat/completions",
        &[
            ("x-portkey-provider", "groq".into()),
            ("authorization", "Bearer gsk-1".into()),
            ("x-portkey-custom-host", mock.v1()),
        ],
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-portkey-provider"), "groq");
    assert_eq!(mock.received()[0].header("authorization"), Some("Bearer gsk-1"));
}

#[tokio::test]
async fn the_custom_host_header_overrides_every_target() {
    let mock = MockUpstream::start([MockReply::ok(answer("hi"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let config = json!({"provider": "openai", "api_key": "k", "custom_host": "http://127.0.0.1:9/v1"});
    let r = post(
        &gw.base,
        "/v1/chat/completions",
        &[config_header(&config), ("x-portkey-custom-host", mock.v1())],
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn azure_headers_build_the_deployment_url() {
    let mock = MockUpstream::start([MockReply::ok(answer("hi"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let r = post(
        &gw.base,
        "/v1/chat/completions",
        &[
            ("x-portkey-provider", "azure-openai".into()),
            ("authorization", "Bearer az".into()),
            ("x-portkey-azure-resource-name", "res".into()),
            ("x-portkey-azure-deployment-id", "dep".into()),
            ("x-portkey-azure-api-version", "2024-06-01".into()),
            ("x-portkey-custom-host", format!("{}/openai/deployments/dep", mock.base)),
        ],
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let got = &mock.received()[0];
    assert_eq!(got.uri, "/openai/deployments/dep/chat/completions?api-version=2024-06-01");
    assert_eq!(got.header("api-key"), Some("az"));
}

#[tokio::test]
async fn named_configs_load_from_the_config_dir_and_a_default_config_applies() {
    let mock = MockUpstream::start([MockReply::ok(answer("named")), MockReply::ok(answer("default"))]).await;
    let dir = std::env::temp_dir().join(format!("gatewise-configs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("prod.json"), target(&mock).to_string()).unwrap();
    let gw = start_gateway(GatewayOptions {
        config_dir: Some(dir.clone()),
        default_config: Some(target(&mock)),
        ..GatewayOptions::default()
    })
    .await;
    let r = post(&gw.base, "/v1/chat/completions", &[("x-portkey-config", "prod".into())], &hello()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"], "named");
    let r = post(&gw.base, "/v1/chat/completions", &[], &hello()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"], "default");
    let r = post(&gw.base, "/v1/chat/completions", &[("x-portkey-config", "missing".into())], &hello()).await;
    assert_eq!(r.status(), 400);
    let r = post(&gw.base, "/v1/chat/completions", &[("x-portkey-config", "../etc/passwd".into())], &hello()).await;
    assert_eq!(r.status(), 400);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn an_edited_config_dir_file_takes_effect_on_the_next_request() {
    let first = MockUpstream::start([MockReply::ok(answer("first"))]).await;
    let second = MockUpstream::start([MockReply::ok(answer("second"))]).await;
    let dir = std::env::temp_dir().join(format!("gatewise-edit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prod.json");
    std::fs::write(&file, target(&first).to_string()).unwrap();
    let gw = start_gateway(GatewayOptions { config_dir: Some(dir.clone()), ..GatewayOptions::default() }).await;
    let named = [("x-portkey-config", "prod".to_owned())];
    let r = post(&gw.base, "/v1/chat/completions", &named, &hello()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"], "first");

    // Rewritten in place, with a modification time that differs even on a filesystem whose
    // clock ticks coarsely, and no restart.
    std::fs::write(&file, target(&second).to_string()).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(later).unwrap();
    let r = post(&gw.base, "/v1/chat/completions", &named, &hello()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"], "second");
    assert_eq!((first.received().len(), second.received().len()), (1, 1));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn metadata_drives_conditional_routing() {
    let pro = MockUpstream::start([MockReply::ok(answer("pro"))]).await;
    let free = MockUpstream::start([MockReply::ok(answer("free"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut p = target(&pro);
    p["name"] = json!("pro");
    let mut f = target(&free);
    f["name"] = json!("free");
    let config = json!({"strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.plan": "pro"}, "then": "pro"}], "default": "free"}, "targets": [f, p]});
    let r = post(
        &gw.base,
        "/v1/chat/completions",
        &[config_header(&config), ("x-portkey-metadata", r#"{"plan":"pro"}"#.into())],
        &hello(),
    )
    .await;
    assert_eq!(h(&r, "x-portkey-last-used-option-index"), "config.targets[1]");
    let r = post(
        &gw.base,
        "/v1/chat/completions",
        &[config_header(&config), ("x-portkey-metadata", r#"{"plan":"free"}"#.into())],
        &hello(),
    )
    .await;
    assert_eq!(h(&r, "x-portkey-last-used-option-index"), "config.targets[0]");
}

#[tokio::test]
async fn fallback_and_retry_end_to_end() {
    let a = MockUpstream::start([MockReply::error(503, "busy"), MockReply::error(503, "still busy")]).await;
    let b = MockUpstream::start([MockReply::ok(answer("from b"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut first = target(&a);
    first["retry"] = json!({"attempts": 1});
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [first, target(&b)]});
    let started = Instant::now();
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&config)], &hello()).await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_secs(1), "one backoff second before the retry");
    assert_eq!(h(&r, "x-portkey-last-used-option-index"), "config.targets[1]");
    assert_eq!(a.received().len(), 2);
    assert_eq!(b.received().len(), 1);
}

#[tokio::test]
async fn upstream_errors_keep_their_status_and_retry_count_reports_exhaustion() {
    let a = MockUpstream::start([
        MockReply::error(429, "slow down"),
        MockReply::Json(429, vec![("retry-after-ms", "50".into())], "{\"error\":{\"message\":\"slow down\"}}".into()),
    ])
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut t = target(&a);
    t["retry"] = json!({"attempts": 1, "use_retry_after_header": true});
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&t)], &hello()).await;
    assert_eq!(r.status(), 429);
    assert_eq!(h(&r, "x-portkey-retry-attempt-count"), "-1");
    assert_eq!(h(&r, "retry-after-ms"), "50");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["message"], "openai error: slow down");
    assert_eq!(body["provider"], "openai");
}

#[tokio::test]
async fn a_request_timeout_header_gives_408_and_falls_back() {
    let slow =
        MockUpstream::start([MockReply::Delay(Duration::from_secs(3), Box::new(MockReply::ok(answer("late"))))]).await;
    let fast = MockUpstream::start([MockReply::ok(answer("fast"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let r = post(
        &gw.base,
        "/v1/chat/completions",
        &[config_header(&target(&slow)), ("x-portkey-request-timeout", "200".into())],
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 408);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Request exceeded the timeout sent in the request: 200ms");
    assert_eq!(body["error"]["type"], "timeout_error");

    let slow =
        MockUpstream::start([MockReply::Delay(Duration::from_secs(3), Box::new(MockReply::ok(answer("late"))))]).await;
    let config =
        json!({"strategy": {"mode": "fallback"}, "request_timeout": 200, "targets": [target(&slow), target(&fast)]});
    let started = Instant::now();
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&config)], &hello()).await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_refused_connection_falls_back() {
    let b = MockUpstream::start([MockReply::ok(answer("b"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    // Port 9 (discard) is closed on loopback: connection refused.
    let dead = json!({"provider": "openai", "api_key": "k", "custom_host": "http://127.0.0.1:9/v1"});
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [dead.clone(), target(&b)]});
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&config)], &hello()).await;
    assert_eq!(r.status(), 200);
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&dead)], &hello()).await;
    assert_eq!(r.status(), 502);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "upstream_connection_error");
}

fn sse_chunks(parts: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = parts
        .iter()
        .map(|p| format!("data: {}\n\n", json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]})))
        .collect();
    out.push(format!("data: {}\n\n", json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})));
    out
}

fn streamed() -> Value {
    json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test]
async fn streams_pass_through_and_end_with_done() {
    let mut chunks = sse_chunks(&["Hel", "lo"]);
    chunks.push("data: [DONE]\n\n".into());
    let mock = MockUpstream::start([MockReply::Sse { chunks, gap: Duration::from_millis(5), then_break: false }]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&target(&mock))], &streamed()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "content-type"), "text/event-stream");
    let text = r.text().await.unwrap();
    let data: Vec<&str> = text.split("\n\n").filter(|s| !s.is_empty()).collect();
    assert_eq!(data.len(), 4, "{text}");
    assert!(data[0].contains("Hel"));
    assert_eq!(data[3], "data: [DONE]");
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_chunk_falls_back() {
    let broken = MockUpstream::start([MockReply::Sse { chunks: vec![], gap: Duration::ZERO, then_break: true }]).await;
    let mut good_chunks = sse_chunks(&["ok"]);
    good_chunks.push("data: [DONE]\n\n".into());
    let good =
        MockUpstream::start([MockReply::Sse { chunks: good_chunks, gap: Duration::ZERO, then_break: false }]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [target(&broken), target(&good)]});
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&config)], &streamed()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "x-portkey-last-used-option-index"), "config.targets[1]");
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn a_stream_that_breaks_midway_ends_with_an_error_event_and_no_done() {
    let chunks = sse_chunks(&["partial"])[..1].to_vec();
    let mock = MockUpstream::start([MockReply::Sse { chunks, gap: Duration::from_millis(5), then_break: true }]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&target(&mock))], &streamed()).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("partial"));
    assert!(text.contains(r#""type":"stream_error""#), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
}

#[tokio::test]
async fn an_upstream_error_on_a_stream_request_is_a_json_error() {
    let mock = MockUpstream::start([MockReply::error(500, "nope")]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&target(&mock))], &streamed()).await;
    assert_eq!(r.status(), 500);
    assert_eq!(h(&r, "content-type"), "application/json");
}

#[tokio::test]
async fn multipart_and_binary_routes_pass_bytes_through() {
    let mock = MockUpstream::start([
        MockReply::ok(json!({"text": "hello world"})),
        MockReply::Binary("audio/mpeg", vec![0xff, 0xfb, 0x90, 0x00, 1, 2, 3]),
    ])
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let form = reqwest::multipart::Form::new().text("model", "whisper-1").part(
        "file",
        reqwest::multipart::Part::bytes(vec![1u8, 2, 3, 4]).file_name("a.wav").mime_str("audio/wav").unwrap(),
    );
    let r = reqwest::Client::new()
        .post(format!("{}/v1/audio/transcriptions", gw.base))
        .header("x-portkey-config", target(&mock).to_string())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["text"], "hello world");
    let got = &mock.received()[0];
    assert_eq!(got.uri, "/v1/audio/transcriptions");
    assert!(got.header("content-type").unwrap().starts_with("multipart/form-data; boundary="));
    assert!(got.body.windows(4).any(|w| w == [1, 2, 3, 4]));

    let r = post(
        &gw.base,
        "/v1/audio/speech",
        &[config_header(&target(&mock))],
        &json!({"model": "tts-1", "input": "hi", "voice": "alloy"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "content-type"), "audio/mpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[0xff, 0xfb, 0x90, 0x00, 1, 2, 3]);
}

#[tokio::test]
async fn files_batches_and_models_routes_are_forwarded() {
    let mock = MockUpstream::start([
        MockReply::ok(json!({"object": "list", "data": []})),
        MockReply::ok(json!({"id": "batch_1", "status": "cancelling"})),
        MockReply::ok(json!({"object": "list", "data": [{"id": "gpt-4o"}]})),
    ])
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/v1/files?purpose=batch", gw.base))
        .header("x-portkey-config", target(&mock).to_string())
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{}/v1/batches/batch_1/cancel", gw.base))
        .header("x-portkey-config", target(&mock).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("{}/v1/models", gw.base))
        .header("x-portkey-config", target(&mock).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["data"][0]["id"], "gpt-4o");
    let got = mock.received();
    assert_eq!((got[0].method.as_str(), got[0].uri.as_str()), ("GET", "/v1/files?purpose=batch"));
    assert_eq!(got[0].header("x-custom"), Some("kept"));
    assert_eq!(got[0].header("x-portkey-config"), None, "gateway headers are not forwarded");
    assert_eq!(got[0].header("authorization"), Some("Bearer sk-mock"));
    assert_eq!((got[1].method.as_str(), got[1].uri.as_str()), ("POST", "/v1/batches/batch_1/cancel"));
    assert_eq!((got[2].method.as_str(), got[2].uri.as_str()), ("GET", "/v1/models"));
}

#[tokio::test]
async fn every_other_openai_route_is_forwarded_with_its_method_path_query_and_body() {
    let ok = |id: &str| MockReply::ok(json!({"id": id}));
    let mock = MockUpstream::start([
        ok("asst_list"),
        ok("run_1"),
        ok("vs_1"),
        ok("upload_1"),
        ok("gpt-4o"),
        ok("users"),
        MockReply::error(503, "overloaded"),
        ok("thread_2"),
    ])
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let client = reqwest::Client::new();
    let mut admin = target(&mock);
    admin["admin_api_key"] = json!("sk-admin-mock");
    let send = |method: reqwest::Method, path: &str, config: &Value, body: Option<&[u8]>| {
        let mut req = client
            .request(method, format!("{}{path}", gw.base))
            .header("x-portkey-config", config.to_string())
            .header("openai-beta", "assistants=v2");
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_vec());
        }
        req.send()
    };
    let run = br#"{"assistant_id": "asst_1",  "stream": false, "additional_instructions": "Be brief."}"#;
    let calls: Vec<(reqwest::Method, &str, &Value, Option<&[u8]>)> = vec![
        (reqwest::Method::GET, "/v1/assistants?limit=2&order=desc", &admin, None),
        (reqwest::Method::POST, "/v1/threads/thread_1/runs", &admin, Some(run)),
        (reqwest::Method::DELETE, "/v1/vector_stores/vs_1", &admin, None),
        (reqwest::Method::POST, "/v1/uploads/upload_1/complete", &admin, Some(br#"{"part_ids":["part_1"]}"#)),
        (reqwest::Method::GET, "/v1/models/gpt-4o", &admin, None),
        (reqwest::Method::GET, "/v1/organization/users?limit=1", &admin, None),
    ];
    for (method, path, config, body) in calls {
        let r = send(method, path, config, body).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // Retries apply as to every route: the 503 is retried and the second answer served.
    let mut retried = target(&mock);
    retried["retry"] = json!({"attempts": 1, "on_status_codes": [503]});
    let r = send(reqwest::Method::POST, "/v1/threads", &retried, Some(b"{}")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], "thread_2");

    let got = mock.received();
    let seen: Vec<(&str, &str)> = got.iter().map(|r| (r.method.as_str(), r.uri.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("GET", "/v1/assistants?limit=2&order=desc"),
            ("POST", "/v1/threads/thread_1/runs"),
            ("DELETE", "/v1/vector_stores/vs_1"),
            ("POST", "/v1/uploads/upload_1/complete"),
            ("GET", "/v1/models/gpt-4o"),
            ("GET", "/v1/organization/users?limit=1"),
            ("POST", "/v1/threads"),
            ("POST", "/v1/threads"),
        ]
    );
    assert_eq!(got[1].body.as_ref(), run, "the body goes through byte for byte");
    assert_eq!(got[0].header("openai-beta"), Some("assistants=v2"));
    assert_eq!(got[0].header("authorization"), Some("Bearer sk-mock"), "the admin key is for the admin API only");
    assert_eq!(got[5].header("authorization"), Some("Bearer sk-admin-mock"));
}

#[tokio::test]
async fn a_route_the_provider_lacks_is_a_400_and_a_crafted_path_never_reaches_it() {
    let mock = MockUpstream::start([]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let client = reqwest::Client::new();
    let anthropic = json!({"provider": "anthropic", "api_key": "sk-ant", "custom_host": mock.v1()});
    let r = client
        .get(format!("{}/v1/assistants", gw.base))
        .header("x-portkey-config", anthropic.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_endpoint", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("/v1/assistants"), "{body}");

    // Dot segments, encoded or not, and encoded slashes would climb out of the base URL
    // (here or once decoded upstream). Sent raw: an HTTP client would normalise them.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let config = target(&mock).to_string();
    for path in
        ["/v1/files/../organization/users", "/v1/files/%2e%2e/organization/users", "/v1/files/a%2fb", "/v1/files//x"]
    {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nx-portkey-config: {config}\r\nConnection: close\r\n\r\n");
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains(r#""param":"url""#), "{path}: {answer}");
    }
    assert!(mock.received().is_empty());
}

#[tokio::test]
async fn forward_headers_and_cache_headers() {
    let mock =
        MockUpstream::start([MockReply::ok(answer("1")), MockReply::ok(answer("2")), MockReply::ok(answer("3"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut t = target(&mock);
    t["cache"] = json!({"mode": "simple", "max_age": 60});
    let base = [config_header(&t), ("x-portkey-forward-headers", "x-user-id".into()), ("x-user-id", "u-1".into())];
    let r = post(&gw.base, "/v1/chat/completions", &base, &hello()).await;
    assert_eq!(h(&r, "x-portkey-cache-status"), "MISS");
    assert_eq!(mock.received()[0].header("x-user-id"), Some("u-1"));
    let r = post(&gw.base, "/v1/chat/completions", &base, &hello()).await;
    assert_eq!(h(&r, "x-portkey-cache-status"), "HIT");
    assert_eq!(r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"], "1");
    let mut refresh = base.to_vec();
    refresh.push(("x-portkey-cache-force-refresh", "true".into()));
    let r = post(&gw.base, "/v1/chat/completions", &refresh, &hello()).await;
    assert_eq!(h(&r, "x-portkey-cache-status"), "REFRESH");
    let mut other_ns = base.to_vec();
    other_ns.push(("x-portkey-cache-namespace", "tenant-b".into()));
    let r = post(&gw.base, "/v1/chat/completions", &other_ns, &hello()).await;
    assert_eq!(h(&r, "x-portkey-cache-status"), "MISS");
    assert_eq!(mock.received().len(), 3);
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_errors_in_the_openai_shape() {
    let mock = MockUpstream::start([]).await;
    let gw = start_gateway(GatewayOptions { body_limit: Some(1024), ..GatewayOptions::default() }).await;
    let client = reqwest::Client::new();
    let cfg = target(&mock).to_string();

    let r = client
        .post(format!("{}/v1/chat/completions", gw.base))
        .header("x-portkey-config", &cfg)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_request");

    let r = post(&gw.base, "/v1/chat/completions", &[("x-portkey-config", "{\"strategy\":".into())], &hello()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_config");

    let bad = json!({"strategy": {"mode": "roundrobin"}, "targets": [target(&mock)]});
    let r = post(&gw.base, "/v1/chat/completions", &[config_header(&bad)], &hello()).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "strategy.mode");
    assert_eq!(body["error"]["code"], "invalid_config");
    assert_eq!(body["error"]["errors"][0]["path"], "strategy.mode", "every bad field is listed");

    let r = post(
        &gw.base,
        "/v1/chat/completions",
        &[("x-portkey-config", cfg.clone()), ("x-portkey-metadata", "[1]".into())],
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "x-portkey-metadata");

    // A bad header value is named by its header, whatever option it sets.
    for (header, value) in
        [("x-portkey-custom-host", "ftp://x"), ("x-portkey-request-timeout", "soon"), ("x-portkey-config", "{")]
    {
        let r = post(&gw.base, "/v1/chat/completions", &[(header, value.into())], &hello()).await;
        assert_eq!(r.status(), 400, "{header}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], header);
    }

    let big = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let r = post(&gw.base, "/v1/chat/completions", &[("x-portkey-config", cfg.clone())], &big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "payload_too_large");

    // Every `/v1/...` route is the provider's to answer; nothing else is routed.
    let r = post(&gw.base, "/nope", &[("x-portkey-config", cfg.clone())], &hello()).await;
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("/nope"));

    let r = post(&gw.base, "/v1/chat/completions", &[], &hello()).await;
    assert_eq!(r.status(), 400, "no config and no provider");

    let r = post(&gw.base, "/v1/chat/completions", &[("x-portkey-provider", "nope".into())], &hello()).await;
    assert_eq!(r.status(), 400);

    let r = post(
        &gw.base,
        "/v1/chat/completions",
        &[("x-portkey-config", cfg), ("x-portkey-request-timeout", "soon".into())],
        &hello(),
    )
    .await;
    assert_eq!(r.status(), 400);

    assert!(mock.received().is_empty(), "no bad request reached the provider");
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    for on_caller_runtime in [false, true] {
        graceful_shutdown(GatewayOptions { on_caller_runtime, ..Default::default() }).await;
    }
}

async fn graceful_shutdown(options: GatewayOptions) {
    let mock =
        MockUpstream::start([MockReply::Delay(Duration::from_millis(500), Box::new(MockReply::ok(answer("done"))))])
            .await;
    let mut gw = start_gateway(options).await;
    let base = gw.base.clone();
    let cfg = target(&mock);
    let in_flight =
        tokio::spawn(async move { post(&base, "/v1/chat/completions", &[config_header(&cfg)], &hello()).await });
    // Shut down only once the request is in flight (it reached the upstream), not after a
    // guessed delay.
    tokio::time::timeout(Duration::from_secs(10), async {
        while mock.received().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the request reached the upstream");
    gw.shutdown.take().unwrap().send(()).unwrap();
    let r = in_flight.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["choices"][0]["message"]["content"], "done");
    tokio::time::timeout(Duration::from_secs(5), gw.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_public_bind_refuses_private_upstreams_unless_allowed() {
    use gateway_http::egress::{AllowedHost, EgressPolicy};
    let mock = MockUpstream::start([MockReply::ok(answer("allowed"))]).await;
    let request = gateway_core::GatewayRequest::json(
        gateway_core::Endpoint::ChatCompletions,
        gateway_core::RequestBody::json(hello().to_string().into()).unwrap(),
    );
    let options = |c: Value| gateway_core::RequestOptions {
        config: Some(std::sync::Arc::new(gateway_core::Config::from_json(&c).unwrap())),
        ..Default::default()
    };
    let strict = gateway_http::engine(gateway_http::TransportOptions {
        egress: EgressPolicy::public_only(vec![]),
        ..Default::default()
    })
    .unwrap();
    let r = strict.handle(&request, &options(target(&mock))).await;
    assert_eq!(r.status, 400);
    let e = r.result.unwrap_err();
    assert_eq!((e.code.as_str(), e.param.as_deref()), ("invalid_request", Some("custom_host")));
    assert!(mock.received().is_empty(), "nothing was sent to the private address");
    let metadata = json!({"provider": "openai", "api_key": "k", "custom_host": "http://metadata.google.internal/v1"});
    assert_eq!(strict.handle(&request, &options(metadata)).await.status, 400);

    let allowed = gateway_http::engine(gateway_http::TransportOptions {
        egress: EgressPolicy::public_only(vec![AllowedHost::parse("127.0.0.1").unwrap()]),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(allowed.handle(&request, &options(target(&mock))).await.status, 200);

    // Narrowed to another port, the same host is refused before anything is sent.
    let other_port = gateway_http::engine(gateway_http::TransportOptions {
        egress: EgressPolicy::public_only(vec![AllowedHost::parse("127.0.0.1:1").unwrap()]),
        ..Default::default()
    })
    .unwrap();
    let r = other_port.handle(&request, &options(target(&mock))).await;
    assert_eq!(r.status, 400, "{:?}", r.error());
    assert!(r.error().unwrap().message.contains("only on the port"), "{:?}", r.error());
    assert_eq!(mock.received().len(), 1);
}

#[tokio::test]
async fn an_upstream_that_goes_silent_mid_stream_hits_the_idle_timeout() {
    use futures::StreamExt;
    let mut chunks = sse_chunks(&["first"])[..1].to_vec();
    chunks.push(sse_chunks(&["late"])[0].clone());
    let mock = MockUpstream::start([MockReply::Sse { chunks, gap: Duration::from_secs(2), then_break: false }]).await;
    let engine = gateway_http::engine(gateway_http::TransportOptions {
        idle_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap();
    let options = gateway_core::RequestOptions {
        config: Some(std::sync::Arc::new(gateway_core::Config::from_json(&target(&mock)).unwrap())),
        ..Default::default()
    };
    let request = gateway_core::GatewayRequest::json(
        gateway_core::Endpoint::ChatCompletions,
        gateway_core::RequestBody::json(streamed().to_string().into()).unwrap(),
    );
    let started = Instant::now();
    let response = engine.handle(&request, &options).await;
    let Ok(gateway_core::Answer { body: gateway_core::ResponseBody::Events(events), .. }) = response.result else {
        panic!("expected a stream")
    };
    let items: Vec<_> = events.collect().await;
    assert!(items[0].is_ok(), "the first chunk arrived");
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.code, gateway_core::ErrorCode::StreamError);
    assert!(error.message.contains("no data from the upstream"), "{}", error.message);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "it gave up after the idle timeout, not the upstream's gap"
    );
}

/// Send a request of `size` body bytes in 64 KiB writes, then read the status line.
async fn post_raw(base: &str, size: usize, chunked: bool) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await?;
    let framing = if chunked { "transfer-encoding: chunked".to_owned() } else { format!("content-length: {size}") };
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let piece = vec![b' '; 64 * 1024];
    for _ in 0..size / piece.len() {
        if chunked {
            stream.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
        }
        stream.write_all(&piece).await?;
        if chunked {
            stream.write_all(b"\r\n").await?;
        }
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n").await?;
    }
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_body_over_the_limit_is_read_to_its_end_so_the_client_still_reads_the_413() {
    let gw = start_gateway(GatewayOptions { body_limit: Some(1024), ..GatewayOptions::default() }).await;
    // Far more than the socket buffers hold: had the server stopped reading and closed,
    // the client's writes would be reset before it could read the answer.
    for chunked in [false, true] {
        let status = post_raw(&gw.base, 16 * 1024 * 1024, chunked).await;
        assert_eq!(status.unwrap(), "HTTP/1.1 413 Payload Too Large", "chunked: {chunked}");
    }
}

#[tokio::test]
async fn connect_timeout_bounds_a_connect_that_never_completes() {
    // A listener that never accepts, with a backlog of 0: once its queue holds one
    // connection, the kernel drops further SYNs, so the next connect hangs.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut parked = Vec::new();
    for _ in 0..4 {
        // Fill the queue (connects beyond it hang; give each a moment, then move on).
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await
        {
            parked.push(s);
        }
    }
    let engine = gateway_http::engine(gateway_http::TransportOptions {
        connect_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap();
    let target = json!({"provider": "openai", "api_key": "k", "custom_host": format!("http://{addr}/v1")});
    let options = gateway_core::RequestOptions {
        config: Some(std::sync::Arc::new(gateway_core::Config::from_json(&target).unwrap())),
        ..Default::default()
    };
    let request = gateway_core::GatewayRequest::json(
        gateway_core::Endpoint::ChatCompletions,
        gateway_core::RequestBody::json(hello().to_string().into()).unwrap(),
    );
    // Without the connect timeout the call would wait for the kernel's SYN retries (minutes).
    let r = tokio::time::timeout(Duration::from_secs(20), engine.handle(&request, &options))
        .await
        .expect("the connect timeout ended the attempt");
    let e = r.result.unwrap_err();
    assert_eq!((e.code, e.status), (gateway_core::ErrorCode::UpstreamConnectionError, 502), "{}", e.message);
    drop(parked);
}
