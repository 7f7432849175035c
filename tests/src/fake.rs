//! A scripted transport: each upstream host answers from a queue of replies, every
//! request and sleep is recorded, and time is virtual (sleeping advances the clock
//! instantly), so a 1+2+4+8+16 s backoff schedule is checked exactly in microseconds.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway_core::engine::{HttpResponse, Transport, TransportError, TransportErrorKind};
use gateway_core::providers::HttpRequest;
use http::HeaderMap;

/// One scripted upstream answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, headers, body.
    Status(u16, Vec<(&'static str, String)>, String),
    /// A 200 SSE body delivered as these chunks, then an optional transport error.
    Stream(Vec<String>, Option<TransportErrorKind>),
    /// The send fails.
    Fail(TransportErrorKind),
    /// Never answers (for timeouts).
    Hang,
}

impl Reply {
    /// `200` with a JSON body.
    pub fn ok(body: &str) -> Self {
        Reply::Status(200, vec![("content-type", "application/json".into())], body.to_owned())
    }

    /// An OpenAI-style error.
    pub fn error(status: u16, message: &str) -> Self {
        Reply::Status(
            status,
            vec![("content-type", "application/json".into())],
            serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}})
                .to_string(),
        )
    }
}

/// A recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Virtual time of the call, from the transport's start.
    pub at: Duration,
    /// The request.
    pub request: HttpRequest,
}

#[derive(Default)]
struct State {
    replies: HashMap<String, VecDeque<Reply>>,
    calls: Vec<Call>,
    sleeps: Vec<Duration>,
    elapsed: Duration,
}

/// The fake transport.
pub struct ScriptedTransport {
    start: Instant,
    state: Mutex<State>,
}

impl Default for ScriptedTransport {
    fn default() -> Self {
        Self { start: Instant::now(), state: Mutex::default() }
    }
}

impl ScriptedTransport {
    /// A transport with no scripts: every host fails with "connection refused".
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue replies for `host` (the URL's authority, e.g. `a.test`).
    pub fn script(&self, host: &str, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.state.lock().unwrap().replies.entry(host.to_owned()).or_default().extend(replies);
        self
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Hosts called, in order.
    pub fn hosts(&self) -> Vec<String> {
        self.calls().iter().map(|c| host_of(&c.request.url).to_owned()).collect()
    }

    /// Every sleep so far.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state.lock().unwrap().sleeps.clone()
    }

    /// Let virtual time pass, as if the test waited `duration` between requests.
    pub fn advance(&self, duration: Duration) {
        self.state.lock().unwrap().elapsed += duration;
    }
}

fn host_of(url: &str) -> &str {
    url.split('/').nth(2).unwrap_or("")
}

#[async_trait::async_trait]
impl Transport for ScriptedTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let reply = {
            let mut state = self.state.lock().unwrap();
            let at = state.elapsed;
            let host = host_of(&request.url).to_owned();
            state.calls.push(Call { at, request });
            state.replies.get_mut(&host).and_then(VecDeque::pop_front)
        };
        match reply {
            None => Err(TransportError::new(TransportErrorKind::ConnectionRefused, "no script for host")),
            Some(Reply::Fail(kind)) => Err(TransportError::new(kind, "scripted failure")),
            Some(Reply::Hang) => futures::future::pending().await,
            Some(Reply::Status(status, headers, body)) => {
                let mut map = HeaderMap::new();
                for (k, v) in headers {
                    map.append(k, v.parse().unwrap());
                }
                let body = futures::stream::iter(vec![Ok(Bytes::from(body))]);
                Ok(HttpResponse { status, headers: map, body: Box::pin(body), upgraded: None })
            }
            Some(Reply::Stream(chunks, error)) => {
                let mut items: Vec<Result<Bytes, TransportError>> =
                    chunks.into_iter().map(|c| Ok(Bytes::from(c))).collect();
                if let Some(kind) = error {
                    items.push(Err(TransportError::new(kind, "scripted break")));
                }
                let mut headers = HeaderMap::new();
                headers.insert("content-type", "text/event-stream".parse().unwrap());
                Ok(HttpResponse { status: 200, headers, body: Box::pin(futures::stream::iter(items)), upgraded: None })
            }
        }
    }

    async fn sleep(&self, duration: Duration) {
        let mut state = self.state.lock().unwrap();
        state.sleeps.push(duration);
        state.elapsed += duration;
    }

    fn now(&self) -> Instant {
        self.start + self.state.lock().unwrap().elapsed
    }
}

/// Answers every request at once with the same JSON body (benchmarks: the engine's cost
/// without an upstream's).
#[derive(Debug)]
pub struct Answering(pub Bytes);

#[async_trait::async_trait]
impl Transport for Answering {
    async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", http::HeaderValue::from_static("application/json"));
        let body = futures::stream::iter(vec![Ok(self.0.clone())]);
        Ok(HttpResponse { status: 200, headers, body: Box::pin(body), upgraded: None })
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
