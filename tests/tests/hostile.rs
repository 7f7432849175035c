//! The hostile-input suite: the real server over loopback, attacked the way issue 11 lists.
//! Upstreams that misbehave on purpose (endless, stalled, huge, garbage, echoing the
//! request back to the gateway), callers that try to steer the server's keys, and clients
//! that idle, trickle or open too many connections. Every test fails without its fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use gateway_core::engine::Limits;
use gateway_tests::mock::{Gateway, GatewayOptions, MockReply, MockUpstream, answer, hello, start_gateway};
use serde_json::{Value, json};
use tokio::net::TcpListener;

async fn post(base: &str, headers: &[(&str, String)], body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new().post(format!("{base}/v1/chat/completions")).json(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

async fn gateway_with(default_config: Value) -> Gateway {
    start_gateway(GatewayOptions { default_config: Some(default_config), ..GatewayOptions::default() }).await
}

// ---- Credentials and caller-chosen hosts

#[tokio::test]
async fn the_servers_key_never_goes_to_a_host_the_caller_names() {
    let home = MockUpstream::start([MockReply::ok(answer("home")), MockReply::ok(answer("home"))]).await;
    let attacker = MockUpstream::start([MockReply::ok(answer("stolen")), MockReply::ok(answer("own key"))]).await;
    let gw = gateway_with(json!({"provider": "openai", "api_key": "sk-server", "custom_host": home.v1()})).await;

    let (status, _, body) = post(&gw.base, &[("x-portkey-custom-host", attacker.v1())], &hello()).await;
    assert_eq!((status, code(&body)), (403, "forbidden_custom_host"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("bring your own key"), "{body}");
    assert!(attacker.received().is_empty(), "nothing, and no key, reached the caller's host");

    // The configured host itself may be named.
    let (status, _, _) = post(&gw.base, &[("x-portkey-custom-host", format!("{}/", home.v1()))], &hello()).await;
    assert_eq!(status, 200);
    assert_eq!(home.received()[0].header("authorization"), Some("Bearer sk-server"));

    // With its own provider and key, the request goes where it asks, with its key.
    let own = [
        ("x-portkey-provider", "openai".to_owned()),
        ("authorization", "Bearer sk-caller".to_owned()),
        ("x-portkey-custom-host", attacker.v1()),
    ];
    let (status, _, body) = post(&gw.base, &own, &hello()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(attacker.received()[0].header("authorization"), Some("Bearer sk-caller"));
    assert_eq!(home.received().len(), 1);
}

#[tokio::test]
async fn named_configs_keys_stay_home_and_an_inline_configs_own_key_may_go_anywhere() {
    let home = MockUpstream::start([]).await;
    let elsewhere = MockUpstream::start([MockReply::ok(answer("inline"))]).await;
    let dir = std::env::temp_dir().join(format!("gatewise-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let named = json!({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "openai", "api_key": "sk-server-1", "custom_host": home.v1()},
        {"provider": "anthropic", "api_key": "sk-server-2", "custom_host": home.v1()}]});
    std::fs::write(dir.join("prod.json"), named.to_string()).unwrap();
    let gw = start_gateway(GatewayOptions { config_dir: Some(dir.clone()), ..GatewayOptions::default() }).await;

    let headers = [("x-portkey-config", "prod".to_owned()), ("x-portkey-custom-host", elsewhere.v1())];
    let (status, _, body) = post(&gw.base, &headers, &hello()).await;
    assert_eq!((status, code(&body)), (403, "forbidden_custom_host"), "{body}");
    assert!(home.received().is_empty() && elsewhere.received().is_empty());

    let inline = json!({"provider": "openai", "api_key": "sk-inline", "custom_host": home.v1()});
    let headers = [("x-portkey-config", inline.to_string()), ("x-portkey-custom-host", elsewhere.v1())];
    let (status, _, _) = post(&gw.base, &headers, &hello()).await;
    assert_eq!(status, 200);
    assert_eq!(elsewhere.received()[0].header("authorization"), Some("Bearer sk-inline"));
}

#[tokio::test]
async fn a_request_with_its_own_provider_and_key_is_not_routed_with_the_default_configs_key() {
    let home = MockUpstream::start([MockReply::ok(answer("home"))]).await;
    let own_host = MockUpstream::start([MockReply::ok(answer("own"))]).await;
    let gw = gateway_with(json!({"provider": "openai", "api_key": "sk-server", "custom_host": home.v1()})).await;
    let own = [
        ("x-portkey-provider", "openai".to_owned()),
        ("authorization", "Bearer sk-caller".to_owned()),
        ("x-portkey-custom-host", own_host.v1()),
    ];
    let (status, _, body) = post(&gw.base, &own, &hello()).await;
    assert_eq!(status, 200, "{body}");
    assert!(home.received().is_empty());
    assert_eq!(own_host.received()[0].header("authorization"), Some("Bearer sk-caller"));

    // A default config that leaves the provider to the request still applies (its retry
    // settings here), with the request's key.
    let flaky = MockUpstream::start([MockReply::error(503, "busy"), MockReply::ok(answer("second try"))]).await;
    let gw = gateway_with(json!({"retry": {"attempts": 1, "on_status_codes": [503]}})).await;
    let own = [
        ("x-portkey-provider", "openai".to_owned()),
        ("authorization", "Bearer sk-caller".to_owned()),
        ("x-portkey-custom-host", flaky.v1()),
    ];
    let (status, headers, _) = post(&gw.base, &own, &hello()).await;
    assert_eq!((status, headers["x-portkey-retry-attempt-count"].to_str().unwrap()), (200, "1"));
}

// ---- One request must not take the server down

#[tokio::test]
async fn a_gateway_that_calls_itself_is_refused_at_once() {
    let gw = start_gateway(GatewayOptions::default()).await;
    let to_self = json!({"provider": "openai", "api_key": "sk-caller", "custom_host": format!("{}/v1", gw.base)});
    let (status, _, body) = post(&gw.base, &[("x-portkey-config", to_self.to_string())], &hello()).await;
    // The first hop calls the gateway again; that second hop finds its own id and refuses.
    assert_eq!((status, code(&body)), (508, "loop_detected"), "{body}");

    // Through a second gateway: A -> B -> A, B sending everything to A by its default config.
    let b = gateway_with(json!({"provider": "openai", "api_key": "k", "custom_host": format!("{}/v1", gw.base)})).await;
    let to_b = json!({"provider": "openai", "api_key": "k", "custom_host": format!("{}/v1", b.base)});
    let (status, _, body) = post(&gw.base, &[("x-portkey-config", to_b.to_string())], &hello()).await;
    assert_eq!((status, code(&body)), (508, "loop_detected"), "{body}");
}

/// An upstream answering 200 with a body of `size` bytes of `x` (`None`: endless, and no
/// line ever ends), produced as it is sent, counting the bytes it managed to send.
async fn big_upstream(size: Option<u64>, declare_length: bool, content_type: &'static str) -> (String, Arc<AtomicU64>) {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            const PIECE: usize = 64 * 1024;
            let piece = Bytes::from(vec![b'x'; PIECE]);
            let stream = futures::stream::unfold(0u64, move |at| {
                let (piece, counter) = (piece.clone(), counter.clone());
                async move {
                    if size.is_some_and(|s| at >= s) {
                        return None;
                    }
                    counter.fetch_add(PIECE as u64, Ordering::Relaxed);
                    Some((Ok::<_, std::io::Error>(piece), at + PIECE as u64))
                }
            });
            let mut response = axum::response::Response::new(Body::from_stream(stream));
            response.headers_mut().insert("content-type", content_type.parse().unwrap());
            if let (true, Some(size)) = (declare_length, size) {
                response.headers_mut().insert("content-length", size.to_string().parse().unwrap());
            }
            response
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, sent)
}

#[tokio::test]
async fn huge_and_endless_answers_are_cut_off_at_the_limit() {
    let limits = Limits { max_response_bytes: 4 * 1024 * 1024, ..Limits::default() };
    let gw = start_gateway(GatewayOptions { limits: Some(limits), ..GatewayOptions::default() }).await;
    for (size, declared) in [(Some(1u64 << 30), true), (Some(1u64 << 30), false), (None, false)] {
        let (base, sent) = big_upstream(size, declared, "application/json").await;
        let config = json!({"provider": "openai", "api_key": "k", "custom_host": format!("{base}/v1")});
        let (status, _, body) = post(&gw.base, &[("x-portkey-config", config.to_string())], &hello()).await;
        assert_eq!((status, code(&body)), (502, "upstream_response_too_large"), "{body}");
        // The gateway stopped reading: far less than the gigabyte was ever sent.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = sent.load(Ordering::Relaxed);
        assert!(sent < 256 * 1024 * 1024, "{size:?} declared={declared}: the upstream sent {sent} bytes");
    }
}

#[tokio::test]
async fn an_endless_event_in_a_stream_breaks_the_stream_not_the_memory() {
    let (base, sent) = big_upstream(None, false, "text/event-stream").await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let config = json!({"provider": "openai", "api_key": "k", "custom_host": format!("{base}/v1")});
    let mut streamed = hello();
    streamed["stream"] = json!(true);
    let (status, _, body) = post(&gw.base, &[("x-portkey-config", config.to_string())], &streamed).await;
    assert_eq!((status, code(&body)), (502, "stream_error"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("event longer than 16 MiB"), "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sent.load(Ordering::Relaxed) < 64 * 1024 * 1024);
}

#[tokio::test]
async fn a_stalled_upstream_times_out_without_a_request_timeout() {
    let stalled =
        MockUpstream::start([MockReply::Delay(Duration::from_secs(3600), Box::new(MockReply::ok(answer("late"))))])
            .await;
    let limits = Limits { attempt_timeout: Duration::from_millis(300), ..Limits::default() };
    let gw = start_gateway(GatewayOptions { limits: Some(limits), ..GatewayOptions::default() }).await;
    let config = json!({"provider": "openai", "api_key": "k", "custom_host": stalled.v1()});
    let (status, _, body) = post(&gw.base, &[("x-portkey-config", config.to_string())], &hello()).await;
    assert_eq!((status, code(&body)), (408, "timeout"), "{body}");

    // The overall deadline ends a retry schedule that would outlast it.
    let limits = Limits { deadline: Duration::from_millis(1500), ..Limits::default() };
    let gw = start_gateway(GatewayOptions { limits: Some(limits), ..GatewayOptions::default() }).await;
    let failing = MockUpstream::start((0..6).map(|_| MockReply::error(500, "boom"))).await;
    let config = json!({"provider": "openai", "api_key": "k", "custom_host": failing.v1(),
                        "retry": {"attempts": 5, "on_status_codes": [500]}});
    let started = std::time::Instant::now();
    let (status, _, _) = post(&gw.base, &[("x-portkey-config", config.to_string())], &hello()).await;
    assert_eq!(status, 500);
    assert!(started.elapsed() < Duration::from_secs(10), "the 31 s backoff schedule was cut short");
    assert_eq!(failing.received().len(), 2, "tried, waited 1 s, tried; a 2 s wait would pass the deadline");
}

#[tokio::test]
async fn a_translated_providers_garbage_200_is_a_502_and_never_cached() {
    let garbage = MockUpstream::start([
        MockReply::Json(200, vec![], "<html>proxy error</html>".into()),
        MockReply::Json(200, vec![], "not json either".into()),
        MockReply::Json(200, vec![], "still not json".into()),
    ])
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let anthropic = json!({"provider": "anthropic", "api_key": "k", "custom_host": garbage.v1()});
    let (status, _, body) = post(&gw.base, &[("x-portkey-config", anthropic.to_string())], &hello()).await;
    assert_eq!((status, code(&body), body["provider"].as_str()), (502, "invalid_upstream_response", Some("anthropic")));

    let cached = json!({"provider": "openai", "api_key": "k", "custom_host": garbage.v1(),
                        "cache": {"mode": "simple"}});
    for _ in 0..2 {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", gw.base))
            .header("x-portkey-config", cached.to_string())
            .json(&hello())
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-portkey-cache-status"], "MISS");
    }
    assert_eq!(garbage.received().len(), 3);
}

#[tokio::test]
async fn an_inline_config_that_would_be_costly_to_compile_is_refused_by_its_size() {
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = json!({"name": "a", "provider": "openai", "api_key": "k", "custom_host": "http://127.0.0.1:9/v1"});
    // 150 heavy regexes: 10 s of a worker's CPU per request before the limits.
    let conditions: Vec<Value> =
        (0..150).map(|i| json!({"query": {"metadata.x": {"$regex": format!("\\w{{100}}{i}")}}, "then": "a"})).collect();
    let config = json!({"strategy": {"mode": "conditional", "conditions": conditions}, "targets": [target.clone()]});
    for _ in 0..2 {
        let (status, _, body) = post(&gw.base, &[("x-portkey-config", config.to_string())], &hello()).await;
        assert_eq!((status, code(&body)), (400, "invalid_config"), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("$regex operators"), "{body}");
    }
    // Within the count, a pattern that compiles too big is refused by the size limit.
    let conditions = vec![json!({"query": {"metadata.x": {"$regex": "\\w{100}"}}, "then": "a"})];
    let config = json!({"strategy": {"mode": "conditional", "conditions": conditions}, "targets": [target.clone()]});
    let (status, _, body) = post(&gw.base, &[("x-portkey-config", config.to_string())], &hello()).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("compiles too big"), "{body}");
    assert_eq!(body["error"]["param"], r#"strategy.conditions[0].query["metadata.x"].$regex"#, "{body}");
    // Nesting past the limit.
    let mut deep = target;
    for _ in 0..=gateway_core::config::MAX_NESTING {
        deep = json!({"strategy": {"mode": "fallback"}, "targets": [deep]});
    }
    let (status, _, body) = post(&gw.base, &[("x-portkey-config", deep.to_string())], &hello()).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("levels of nested targets"), "{body}");
}

// ---- One client must not take the server down

/// Reads until the server closes the connection (or 5 s pass); returns what it sent.
async fn until_closed(mut tcp: tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn a_connection_that_sends_nothing_or_only_the_http2_preface_is_closed() {
    use tokio::io::AsyncWriteExt;
    let timeout = Duration::from_millis(300);
    let gw = start_gateway(GatewayOptions { header_read_timeout: Some(timeout), ..GatewayOptions::default() }).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();

    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(until_closed(silent).await.is_some(), "a silent connection is closed");

    let mut preface = tokio::net::TcpStream::connect(&addr).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    assert!(until_closed(preface).await.is_some(), "a preface-only HTTP/2 connection is closed");

    // A connection that does send a request in time is served as usual.
    let mut prompt = tokio::net::TcpStream::connect(&addr).await.unwrap();
    prompt.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    assert!(until_closed(prompt).await.unwrap().starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn past_the_connection_cap_requests_get_503_with_retry_after_and_health_still_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mock = MockUpstream::start([MockReply::ok(answer("served"))]).await;
    let gw = start_gateway(GatewayOptions { max_connections: Some(2), ..GatewayOptions::default() }).await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    // Two keep-alive connections, each answered once so the server surely counts them.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(tcp);
    }
    let config = json!({"provider": "openai", "api_key": "k", "custom_host": mock.v1()});
    let client = || reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.base))
        .header("x-portkey-config", config.to_string())
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()), (503, "1"));
    assert_eq!(code(&r.json().await.unwrap()), "server_busy");
    assert_eq!(client().get(format!("{}/health", gw.base)).send().await.unwrap().status(), 200);
    assert!(mock.received().is_empty());

    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _, body) = post(&gw.base, &[("x-portkey-config", config.to_string())], &hello()).await;
    assert_eq!(status, 200, "{body}");
}
