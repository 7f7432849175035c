//! A mock provider: a real axum server on `127.0.0.1:0` answering from a script and
//! recording every request it receives, and a helper that starts the real Gatewise
//! server next to it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use gateway_http::protocol::{ConfigNames, ConfigStore, Resolver};
use gateway_http::server::{AppState, DEFAULT_BODY_LIMIT};
use tokio::net::TcpListener;

/// A `chat.completion` saying `content`, as an OpenAI-style upstream answers.
pub fn answer(content: &str) -> serde_json::Value {
    serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
}

/// The smallest chat request.
pub fn hello() -> serde_json::Value {
    serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum MockReply {
    /// Status, extra headers, JSON (or any text) body.
    Json(u16, Vec<(&'static str, String)>, String),
    /// `200 text/event-stream`: these SSE chunks, `gap` apart, then either a clean end or
    /// a dropped connection.
    Sse { chunks: Vec<String>, gap: Duration, then_break: bool },
    /// A binary body with a content type.
    Binary(&'static str, Vec<u8>),
    /// `200` with this content type, the body sent in these pieces, `gap` apart (binary
    /// streams such as AWS event-stream, split wherever the test likes).
    Chunked { content_type: &'static str, chunks: Vec<Vec<u8>>, gap: Duration },
    /// Wait, then answer.
    Delay(Duration, Box<MockReply>),
}

impl MockReply {
    /// `200` with a JSON body.
    pub fn ok(body: serde_json::Value) -> Self {
        MockReply::Json(200, vec![], body.to_string())
    }

    /// An OpenAI-style error.
    pub fn error(status: u16, message: &str) -> Self {
        let body =
            serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}});
        MockReply::Json(status, vec![], body.to_string())
    }
}

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a checking mock runs on every request before answering: `Err(reply)` is the
/// real API's rejection (a 400/401/403 in the provider's own error shape), sent instead
/// of the scripted reply.
pub type Check = Arc<dyn Fn(&Received) -> Result<(), MockReply> + Send + Sync>;

#[derive(Default)]
struct MockState {
    replies: VecDeque<MockReply>,
    received: Vec<Received>,
    check: Option<Check>,
    /// `<status> <body>` of every rejection, so a test can say why it failed.
    rejected: Vec<String>,
}

/// A running mock provider.
#[derive(Clone)]
pub struct MockUpstream {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Mutex<MockState>>,
}

impl MockUpstream {
    /// Start a mock answering from `replies` in order (then 500s).
    pub async fn start(replies: impl IntoIterator<Item = MockReply>) -> Self {
        Self::start_with(replies, None).await
    }

    /// Start a mock that first checks each request the way the real API would (`check`),
    /// answering its rejection instead of the next scripted reply when it fails.
    pub async fn start_checked(
        check: impl Fn(&Received) -> Result<(), MockReply> + Send + Sync + 'static,
        replies: impl IntoIterator<Item = MockReply>,
    ) -> Self {
        Self::start_with(replies, Some(Arc::new(check))).await
    }

    async fn start_with(replies: impl IntoIterator<Item = MockReply>, check: Option<Check>) -> Self {
        let state =
            Arc::new(Mutex::new(MockState { replies: replies.into_iter().collect(), check, ..MockState::default() }));
        let app = axum::Router::new().fallback(reply_to).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base: format!("http://{addr}"), state }
    }

    /// Queue more replies.
    pub fn push(&self, reply: MockReply) {
        self.state.lock().unwrap().replies.push_back(reply);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The rejections a checking mock sent (`<status> <body>`), in order.
    pub fn rejected(&self) -> Vec<String> {
        self.state.lock().unwrap().rejected.clone()
    }

    /// `base` + `/v1`, the usual custom_host for OpenAI-style providers.
    pub fn v1(&self) -> String {
        format!("{}/v1", self.base)
    }
}

async fn reply_to(State(state): State<Arc<Mutex<MockState>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let received =
        Received { method: parts.method.to_string(), uri: parts.uri.to_string(), headers: parts.headers, body };
    let reply = {
        let mut s = state.lock().unwrap();
        // The scripted reply is used up either way, so later requests keep their replies.
        let scripted = s.replies.pop_front();
        let verdict = s.check.as_ref().map_or(Ok(()), |check| check(&received));
        s.received.push(received);
        match verdict {
            Ok(()) => scripted,
            Err(rejection) => {
                if let MockReply::Json(status, _, body) = &rejection {
                    s.rejected.push(format!("{status} {body}"));
                } else {
                    s.rejected.push(format!("{rejection:?}"));
                }
                Some(rejection)
            }
        }
    };
    render(reply.unwrap_or_else(|| MockReply::error(500, "mock has no scripted reply left"))).await
}

fn render(reply: MockReply) -> futures::future::BoxFuture<'static, Response> {
    Box::pin(async move {
        match reply {
            MockReply::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                render(*inner).await
            }
            MockReply::Json(status, headers, body) => {
                let mut b = Response::builder().status(status).header("content-type", "application/json");
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                b.body(Body::from(body)).unwrap()
            }
            MockReply::Binary(ct, bytes) => {
                Response::builder().header("content-type", ct).body(Body::from(bytes)).unwrap()
            }
            MockReply::Chunked { content_type, chunks, gap } => {
                let stream = futures::stream::unfold((chunks.into_iter(), false), move |(mut it, first)| async move {
                    if first {
                        tokio::time::sleep(gap).await;
                    }
                    it.next().map(|c| (Ok::<_, std::io::Error>(Bytes::from(c)), (it, true)))
                });
                Response::builder().header("content-type", content_type).body(Body::from_stream(stream)).unwrap()
            }
            MockReply::Sse { chunks, gap, then_break } => {
                let stream = futures::stream::unfold(
                    (chunks.into_iter(), gap, then_break, false),
                    |(mut it, gap, brk, first)| async move {
                        if first {
                            tokio::time::sleep(gap).await;
                        }
                        match it.next() {
                            Some(c) => Some((Ok::<_, std::io::Error>(Bytes::from(c)), (it, gap, brk, true))),
                            None if brk => {
                                Some((Err(std::io::Error::other("mock drops the connection")), (it, gap, false, true)))
                            }
                            None => None,
                        }
                    },
                );
                Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(stream)).unwrap()
            }
        }
    })
}

/// A running Gatewise server.
pub struct Gateway {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Resolve to shut the server down gracefully.
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The serve task (finishes after shutdown once in-flight requests are done).
    pub task: tokio::task::JoinHandle<()>,
}

/// Options for [`start_gateway`].
#[derive(Default)]
pub struct GatewayOptions {
    /// `--config` contents.
    pub default_config: Option<serde_json::Value>,
    /// `--config-dir`.
    pub config_dir: Option<std::path::PathBuf>,
    /// `--body-limit` (default 32 MiB).
    pub body_limit: Option<usize>,
    /// `--header-read-timeout-s` (default 30 s), here at any precision.
    pub header_read_timeout: Option<Duration>,
    /// `--registry`.
    pub registry: Option<std::path::PathBuf>,
    /// `--max-connections` (default: sized to the file-descriptor limit).
    pub max_connections: Option<usize>,
    /// The engine's per-request limits (default: `Limits::default()`).
    pub limits: Option<gateway_core::engine::Limits>,
    /// The request log, metrics and traces (default: all off).
    pub telemetry: gateway_http::telemetry::Telemetry,
    /// Serve on the test's own runtime (`server::serve`, the embedding path) instead of
    /// two worker threads (`server::serve_on_threads`, what `gatewise serve` runs).
    pub on_caller_runtime: bool,
}

/// Start the real server on `127.0.0.1:0` with the hyper transport: by default as
/// `gatewise serve` runs it, thread-per-core with two workers.
pub async fn start_gateway(options: GatewayOptions) -> Gateway {
    let transport = gateway_http::HyperTransport::new(gateway_http::TransportOptions::default()).unwrap();
    let mut state = AppState::new(
        gateway_core::Engine::new(Arc::new(transport.clone())).with_limits(options.limits.unwrap_or_default()),
        Resolver::server(ConfigStore::with_registry(
            options.default_config,
            options.config_dir.map_or(ConfigNames::None, ConfigNames::Dir),
            Arc::new(match &options.registry {
                Some(path) => gateway_http::registry::RegistrySource::open(path).unwrap(),
                None => gateway_http::registry::RegistrySource::none(),
            }),
        )),
        options.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
    )
    .with_telemetry(options.telemetry);
    if let Some(timeout) = options.header_read_timeout {
        state.header_read_timeout = Some(timeout);
    }
    if let Some(max) = options.max_connections {
        state.connections = gateway_http::server::ConnectionGate::new(max);
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = rx.await;
    };
    let (addr, task) = if options.on_caller_runtime {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            gateway_http::server::serve(listener, Arc::new(state), shutdown).await.unwrap();
        });
        (addr, task)
    } else {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let workers = state.per_worker(2);
        let task = tokio::task::spawn_blocking(move || {
            gateway_http::server::serve_on_threads(listener, workers, shutdown).unwrap();
        });
        (addr, task)
    };
    Gateway { base: format!("http://{addr}"), shutdown: Some(tx), task }
}
