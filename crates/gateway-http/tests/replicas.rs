//! More than one replica: two real `gatewise serve` processes sharing a real
//! `redis-server` (started here on a free loopback port; `scripts/redis.sh` installs it)
//! hold one combined rate limit and one budget, share cache hits and open a circuit
//! together. Redis stopped and restarted mid-test: requests keep succeeding and the
//! sharing comes back. The in-memory backend (one process) passes the same scenarios.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` of our own: no persistence, loopback only, killed on drop.
struct Redis {
    port: u16,
    process: Option<Child>,
}

/// A free port for Redis below the kernel's ephemeral range. Every other port of the test
/// run (`free_port()`, the mock upstreams' port-0 binds) comes from that range, so while a
/// test has its Redis stopped, nothing else can be handed the port it restarts on.
fn redis_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    // A random start, so that tests running at once try different ports.
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
    for _ in 0..1000 {
        let port = low + u16::try_from(seed % u64::from(high - low)).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    }
    panic!("no free port below the ephemeral range ({low}..{high})");
}

impl Redis {
    fn start() -> Self {
        let mut redis = Self { port: redis_port(), process: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed (scripts/redis.sh installs Debian's package)");
        self.process = Some(child);
        // Ready when it answers PING, and it is ours while our process is alive.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            let exited = self.process.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "redis-server exited on port {} ({exited:?}): was the port taken?", self.port);
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 7];
        socket.write_all(b"PING\r\n").is_ok() && socket.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An OpenAI-shaped upstream: answers with 10 input and 1000 output tokens of `gpt-4o`
/// (0.010025 USD at list prices), or 500 while `failing`.
#[derive(Clone, Default)]
struct Upstream {
    calls: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    base: String,
}

impl Upstream {
    async fn start() -> Self {
        let mut upstream = Self::default();
        let state = upstream.clone();
        let app = axum::Router::new().fallback(move || {
            let state = state.clone();
            async move {
                state.calls.fetch_add(1, Ordering::SeqCst);
                if state.failing.load(Ordering::SeqCst) {
                    let body = json!({"error": {"message": "down", "type": "server_error"}});
                    return (http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body));
                }
                let body = json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 1000, "total_tokens": 1010}
                });
                (http::StatusCode::OK, axum::Json(body))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        upstream.base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        upstream
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The registry every gateway of a test reads: a key per scenario, so counters of one
/// scenario never meet another's.
fn registry(dir: &std::path::Path, healthy: &Upstream, flaky: &Upstream) -> std::path::PathBuf {
    let hash = |key: &str| gateway_core::registry::key_hash(key);
    let registry = json!({
        "providers": {
            "healthy": {"provider": "openai", "api_key": "sk-healthy", "custom_host": healthy.base},
            "flaky": {"provider": "openai", "api_key": "sk-flaky", "custom_host": flaky.base},
            "capped": {"provider": "openai", "api_key": "sk-capped", "custom_host": healthy.base,
                       "limits": {"requests_per_minute": 3}}
        },
        "configs": {
            "plain": {"virtual_key": "healthy"},
            "cached": {"virtual_key": "healthy", "cache": {"mode": "simple"}},
            "breaker": {"strategy": {"mode": "fallback", "cb_config": {"failure_threshold": 2, "cooldown_interval": 1500}},
                        "targets": [{"virtual_key": "flaky"}]},
            "capped-then-healthy": {"strategy": {"mode": "fallback"},
                                    "targets": [{"virtual_key": "capped"}, {"virtual_key": "flaky"}]}
        },
        "keys": {
            "rpm": {"hash": hash("gw-rpm"), "config": "cached", "limits": {"requests_per_minute": 4}},
            "rpm-again": {"hash": hash("gw-rpm-again"), "config": "plain", "limits": {"requests_per_minute": 4}},
            "budget": {"hash": hash("gw-budget"), "config": "plain", "limits": {"usd_per_day": 0.02}},
            "users": {"hash": hash("gw-users"), "config": "plain", "limits_by_metadata": {"_user": {"requests_per_minute": 2}}},
            "open": {"hash": hash("gw-open")}
        }
    });
    let path = dir.join("registry.json");
    std::fs::write(&path, registry.to_string()).unwrap();
    path
}

/// A running `gatewise serve`, its request log collected.
struct Gatewise {
    base: String,
    process: Child,
    log: Arc<Mutex<Vec<Value>>>,
}

impl Gatewise {
    fn start(registry: &std::path::Path, extra: &[&str]) -> Self {
        // A free port can be taken again before the server binds it (another test restarts
        // its Redis on the port it had): the server then exits, and whatever holds the port
        // does not answer `/health`. Such a start is tried again on another port.
        for _ in 0..5 {
            let port = free_port();
            let mut process = Command::new(env!("CARGO_BIN_EXE_gatewise"))
                .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "2"])
                .args(["--log-format", "json", "--registry"])
                .arg(registry)
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            if serves_health(port, &mut process) {
                return Self::reading_log(port, process);
            }
            let _ = process.kill();
            let _ = process.wait();
        }
        panic!("gatewise serve never answered /health on a port of its own");
    }

    fn reading_log(port: u16, mut process: Child) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = std::io::BufReader::new(process.stdout.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
            }
        });
        Self { base: format!("http://127.0.0.1:{port}"), process, log }
    }

    fn log(&self) -> Vec<Value> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Gatewise {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Whether `process` came to answer `GET /health` on `port` (false once it has exited, or
/// after 20 s).
fn serves_health(port: u16, process: &mut Child) -> bool {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if !matches!(process.try_wait(), Ok(None)) {
            return false;
        }
        if let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
            let mut answer = Vec::new();
            if tcp.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").is_ok()
                && tcp.read_to_end(&mut answer).is_ok()
                && answer.starts_with(b"HTTP/1.1 200")
            {
                return matches!(process.try_wait(), Ok(None));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One chat request with gateway key `key` and these extra headers.
async fn ask(base: &str, key: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("x-portkey-api-key", key)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

/// Settlements, circuit reports and cache stores reach Redis after the answer.
async fn let_updates_land() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// The scenarios, against two gateways `a` and `b` (the same one for the in-memory
/// backend).
async fn combined_rate_limit(a: &Gatewise, b: &Gatewise) {
    let mut statuses = Vec::new();
    for i in 0..6 {
        let gateway = if i % 2 == 0 { a } else { b };
        let (status, headers, body) = ask(&gateway.base, "gw-rpm", &[]).await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("key rpm: requests_per_minute"), "{body}");
            let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 4, "one limit of 4 for both: {statuses:?}");
    assert_eq!(&statuses[4..], [429, 429], "{statuses:?}");
    let_updates_land().await;
    let logged = a.log().into_iter().chain(b.log()).any(|r| r["limit"] == "key rpm: requests_per_minute");
    assert!(logged, "the refusing limit is in the request log");
}

async fn per_user_limits(a: &Gatewise, b: &Gatewise) {
    let user = |name: &'static str| {
        [("x-portkey-metadata", if name == "ann" { r#"{"_user":"ann"}"# } else { r#"{"_user":"bob"}"# })]
    };
    let mut ann = Vec::new();
    for gateway in [a, b, a] {
        ann.push(ask(&gateway.base, "gw-users", &user("ann")).await.0);
    }
    assert_eq!(ann, [200, 200, 429], "two a minute for ann, across both");
    assert_eq!(ask(&b.base, "gw-users", &user("bob")).await.0, 200, "bob has his own");
}

async fn combined_budget(a: &Gatewise, b: &Gatewise) {
    // 0.010025 USD an answer against 0.02 a day: two answers, then the budget is spent.
    let mut statuses = Vec::new();
    for gateway in [a, b, a, b] {
        let (status, _, body) = ask(&gateway.base, "gw-budget", &[]).await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
        }
        statuses.push(status);
        let_updates_land().await;
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
}

async fn shared_cache(a: &Gatewise, b: &Gatewise, upstream: &Upstream) {
    let before = upstream.calls();
    // A namespace of its own: earlier scenarios cached this body too.
    let namespace =
        format!("ns-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let config = [("x-portkey-config", "cached"), ("x-portkey-cache-namespace", namespace.as_str())];
    let (status, headers, _) = ask(&a.base, "gw-open", &config).await;
    assert_eq!((status, headers["x-portkey-cache-status"].to_str().unwrap()), (200, "MISS"));
    let_updates_land().await;
    let (status, headers, body) = ask(&b.base, "gw-open", &config).await;
    assert_eq!((status, headers["x-portkey-cache-status"].to_str().unwrap()), (200, "HIT"), "{body}");
    assert_eq!(upstream.calls(), before + 1, "the second answer came from the shared cache");
}

async fn circuit_opens_together(a: &Gatewise, b: &Gatewise, flaky: &Upstream) {
    let config = [("x-portkey-config", "breaker")];
    flaky.failing.store(true, Ordering::SeqCst);
    assert_eq!(ask(&a.base, "gw-open", &config).await.0, 500);
    let_updates_land().await;
    assert_eq!(ask(&b.base, "gw-open", &config).await.0, 500);
    let_updates_land().await;
    let calls = flaky.calls();
    for gateway in [a, b] {
        let (status, headers, body) = ask(&gateway.base, "gw-open", &config).await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("circuit_open")), "{body}");
        assert!(headers.contains_key("retry-after"));
    }
    assert_eq!(flaky.calls(), calls, "no replica sent to the open circuit");
    let_updates_land().await;
    let skipped = b.log().into_iter().any(|r| r["skipped"][0]["provider"] == "openai");
    assert!(skipped, "the skipped target is in the request log");

    // After the cool-down one probe goes through; its success closes the circuit.
    flaky.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ask(&a.base, "gw-open", &config).await.0, 200, "the probe");
    let_updates_land().await;
    assert_eq!(ask(&b.base, "gw-open", &config).await.0, 200, "closed for every replica");
}

async fn provider_limit_falls_back(a: &Gatewise, b: &Gatewise) {
    // `capped` allows 3 a minute; the fallback then goes to the next target.
    let config = [("x-portkey-config", "capped-then-healthy")];
    let mut providers = Vec::new();
    for gateway in [a, b, a, b] {
        let (status, headers, _) = ask(&gateway.base, "gw-open", &config).await;
        assert_eq!(status, 200);
        providers.push(headers["x-portkey-last-used-option-index"].to_str().unwrap().to_owned());
    }
    assert_eq!(providers, ["config.targets[0]", "config.targets[0]", "config.targets[0]", "config.targets[1]"]);
}

struct World {
    _dir: tempfile::TempDir,
    registry: std::path::PathBuf,
    healthy: Upstream,
    flaky: Upstream,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let healthy = Upstream::start().await;
    let flaky = Upstream::start().await;
    let registry = registry(dir.path(), &healthy, &flaky);
    World { _dir: dir, registry, healthy, flaky }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_sharing_redis_hold_one_limit_one_budget_one_cache_and_one_circuit() {
    let world = world().await;
    let redis = Redis::start();
    let url = redis.url();
    let a = Gatewise::start(&world.registry, &["--redis", &url]);
    let b = Gatewise::start(&world.registry, &["--redis", &url]);
    combined_rate_limit(&a, &b).await;
    per_user_limits(&a, &b).await;
    combined_budget(&a, &b).await;
    shared_cache(&a, &b, &world.healthy).await;
    circuit_opens_together(&a, &b, &world.flaky).await;
    provider_limit_falls_back(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_in_memory_backend_passes_the_same_scenarios_in_one_process() {
    let world = world().await;
    let only = Gatewise::start(&world.registry, &[]);
    combined_rate_limit(&only, &only).await;
    per_user_limits(&only, &only).await;
    combined_budget(&only, &only).await;
    shared_cache(&only, &only, &world.healthy).await;
    circuit_opens_together(&only, &only, &world.flaky).await;
    provider_limit_falls_back(&only, &only).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_stopped_requests_keep_succeeding_and_sharing_returns_when_it_restarts() {
    let world = world().await;
    let mut redis = Redis::start();
    let url = redis.url();
    let a = Gatewise::start(&world.registry, &["--redis", &url]);
    let b = Gatewise::start(&world.registry, &["--redis", &url]);
    let strict = Gatewise::start(&world.registry, &["--redis", &url, "--redis-down", "refuse"]);
    assert_eq!(ask(&a.base, "gw-rpm-again", &[]).await.0, 200);

    redis.stop();
    for gateway in [&a, &b, &a, &b, &a, &b] {
        // Limits allow (the default rule), the cache misses, the circuit stays closed.
        let (status, _, body) = ask(&gateway.base, "gw-rpm-again", &[("x-portkey-config", "cached")]).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = ask(&strict.base, "gw-rpm-again", &[]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("limits_unavailable")), "{body}");

    redis.restart();
    // The connection comes back by itself; a fresh Redis starts with empty counters.
    let deadline = Instant::now() + Duration::from_secs(15);
    for probe in 0.. {
        // A user of its own each time, so the probes use up no limit.
        let metadata = format!(r#"{{"_user":"probe-{probe}"}}"#);
        let (status, _, body) = ask(&strict.base, "gw-users", &[("x-portkey-metadata", &metadata)]).await;
        if status == 200 {
            break;
        }
        assert_eq!(body["error"]["code"], "limits_unavailable", "{body}");
        assert!(Instant::now() < deadline, "never reconnected: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut statuses = Vec::new();
    while statuses.iter().filter(|s| **s == 200).count() < 4 {
        assert!(Instant::now() < deadline, "{statuses:?}");
        let gateway = if statuses.len() % 2 == 0 { &a } else { &b };
        statuses.push(ask(&gateway.base, "gw-rpm-again", &[]).await.0);
    }
    for gateway in [&a, &b] {
        assert_eq!(ask(&gateway.base, "gw-rpm-again", &[]).await.0, 429, "one limit again: {statuses:?}");
    }
    shared_cache(&a, &b, &world.healthy).await;
}
