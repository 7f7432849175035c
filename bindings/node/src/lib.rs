//! `gatewise`'s native half (napi-rs): the Node binding's Rust side.
//!
//! Only conversion and runtime bridging live here (see the Bindings section of the shared
//! STYLE.md): request bodies and route info cross as JSON text, answers as bytes, and every
//! call runs on napi's tokio runtime as a Promise. Errors reject with a message made of
//! [`ERROR_MARKER`] and the facade's `error_json`, which `index.js` turns into a
//! `GatewayError`. Streams are pull-based: each `next()` pulls one item from the Rust
//! stream, and `return()` (a `break` out of `for await`) drops it, which cancels the
//! upstream request.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use gateway_core::engine::RouteInfo;
use gateway_core::{Engine, GatewayError};
use gateway_http::client::{
    CallError, ClientOptions, Created, Gateway, HttpReply, HttpReplyBody, endpoint_from_name, error_json, route_json,
};
use napi::bindgen_prelude::{AsyncGenerator, Buffer};
use napi_derive::napi;

/// Prefix of an error message that carries a gateway error as JSON (index.js parses it).
const ERROR_MARKER: &str = "\u{1}gatewise-error:";

type ItemStream = Pin<Box<dyn Stream<Item = Result<Bytes, GatewayError>> + Send>>;

/// One engine (and connection pool) per process, shared by every client.
fn engine() -> napi::Result<Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| gateway_http::engine(gateway_http::TransportOptions::default()).map_err(|e| e.to_string()))
        .clone()
        .map_err(napi::Error::from_reason)
}

fn to_js_err(error: &GatewayError, route: &RouteInfo) -> napi::Error {
    napi::Error::from_reason(format!("{ERROR_MARKER}{}", error_json(error, route)))
}

fn call_err(e: CallError) -> napi::Error {
    to_js_err(&e.error, &e.route)
}

fn plain_err(e: GatewayError) -> napi::Error {
    to_js_err(&e, &RouteInfo::default())
}

fn parse_json(text: &str, what: &str) -> napi::Result<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| plain_err(GatewayError::request("", format!("{what} is not valid JSON: {e}"))))
}

fn parse_options(options_json: &str) -> napi::Result<ClientOptions> {
    ClientOptions::from_json(parse_json(options_json, "options")?).map_err(plain_err)
}

/// The client: a facade `Gateway` behind an `Arc`, so calls clone a pointer, not options.
#[napi]
pub struct NativeGateway {
    inner: Arc<Gateway>,
}

/// What `create` resolves to: a complete answer (`body`) or a stream (`stream`).
#[napi(object, object_from_js = false)]
pub struct NativeReply {
    /// HTTP status of the answer.
    pub status: u32,
    /// Content type of `body`.
    pub content_type: Option<String>,
    /// The complete body (OpenAI JSON, or binary for audio).
    pub body: Option<Buffer>,
    /// Chunk payloads (JSON text, one per item) for a streamed answer.
    pub stream: Option<NativeStream>,
    /// Route info as JSON text (`route_json`).
    pub route: String,
}

/// What `http` resolves to: status, headers as a flat `[name, value, ...]` list, and either
/// the body or a stream of SSE frames.
#[napi(object, object_from_js = false)]
pub struct NativeHttpReply {
    /// HTTP status.
    pub status: u32,
    /// `[name, value, name, value, ...]`.
    pub headers: Vec<String>,
    /// The complete body.
    pub body: Option<Buffer>,
    /// SSE frames, for a streamed answer.
    pub stream: Option<NativeStream>,
}

#[napi]
impl NativeGateway {
    /// `optionsJson`: the facade's `ClientOptions` as a JSON object (snake_case keys).
    #[napi(constructor)]
    pub fn new(options_json: String) -> napi::Result<Self> {
        let options = parse_options(&options_json)?;
        let inner = Gateway::new(engine()?, options).map_err(plain_err)?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// A client with these options replacing ours.
    #[napi]
    pub fn with_options(&self, options_json: String) -> napi::Result<NativeGateway> {
        let overrides = parse_options(&options_json)?;
        let inner = self.inner.with_options(&overrides).map_err(plain_err)?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Call `endpoint` (`chat.completions`, `embeddings`, ...) with an OpenAI body (JSON text).
    #[napi]
    pub async fn create(&self, endpoint: String, body_json: String) -> napi::Result<NativeReply> {
        let endpoint = endpoint_from_name(&endpoint).map_err(plain_err)?;
        let body = parse_json(&body_json, "the request body")?;
        let inner = self.inner.clone();
        Ok(match inner.create(endpoint, body).await.map_err(call_err)? {
            Created::Reply(reply) => NativeReply {
                status: u32::from(reply.status),
                content_type: reply.content_type,
                body: Some(Buffer::from(Vec::from(reply.body))),
                stream: None,
                route: route_json(&reply.route).to_string(),
            },
            Created::Stream(events, route) => NativeReply {
                status: 200,
                content_type: Some("text/event-stream".to_owned()),
                body: None,
                stream: Some(NativeStream::new(events)),
                route: route_json(&route).to_string(),
            },
        })
    }

    /// The dry-run plan as JSON text: `{"targets": [...]}`. Nothing is sent.
    #[napi]
    pub fn route(
        &self,
        endpoint: String,
        body_json: String,
        metadata_json: Option<String>,
        seed: Option<i64>,
    ) -> napi::Result<String> {
        let endpoint = endpoint_from_name(&endpoint).map_err(plain_err)?;
        let body = parse_json(&body_json, "the request body")?;
        let metadata = metadata_json.map(|m| parse_json(&m, "metadata")).transpose()?;
        let seed = seed
            .map(u64::try_from)
            .transpose()
            .map_err(|_| plain_err(GatewayError::request("seed", "seed must be a non-negative integer")))?;
        let plan = self.inner.route(endpoint, body, metadata, seed).map_err(plain_err)?;
        Ok(serde_json::json!({ "targets": plan }).to_string())
    }

    /// Serve an HTTP-shaped request in-process (for `fetch`). `headers` is a flat
    /// `[name, value, ...]` list.
    #[napi]
    pub async fn http(
        &self,
        method: String,
        url: String,
        headers: Vec<String>,
        body: Option<Buffer>,
    ) -> napi::Result<NativeHttpReply> {
        let headers = header_map(&headers)?;
        let body = body.map(|b| Bytes::copy_from_slice(&b)).unwrap_or_default();
        let inner = self.inner.clone();
        Ok(http_reply(inner.http(&method, &url, headers, body).await))
    }
}

fn header_map(flat: &[String]) -> napi::Result<http::HeaderMap> {
    let mut map = http::HeaderMap::with_capacity(flat.len() / 2);
    for pair in flat.chunks_exact(2) {
        let (name, value) = (&pair[0], &pair[1]);
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| plain_err(GatewayError::request("headers", format!("invalid header name {name:?}"))))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| plain_err(GatewayError::request("headers", format!("invalid value for header {name}"))))?;
        map.append(name, value);
    }
    Ok(map)
}

fn http_reply(reply: HttpReply) -> NativeHttpReply {
    let mut headers = Vec::with_capacity(reply.headers.len() * 2);
    for (name, value) in &reply.headers {
        headers.push(name.as_str().to_owned());
        headers.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let (body, stream) = match reply.body {
        HttpReplyBody::Full(bytes) => (Some(Buffer::from(Vec::from(bytes))), None),
        HttpReplyBody::Stream(frames) => (None, Some(NativeStream::new(Box::pin(frames.map(Ok))))),
    };
    NativeHttpReply { status: u32::from(reply.status), headers, body, stream }
}

/// A pull-based stream of byte items (chunk JSON, or SSE frames), usable with `for await`.
/// `return()` drops the Rust stream, which drops the upstream response and so cancels the
/// upstream request — also while a `next()` is waiting for the upstream.
#[napi(async_iterator)]
pub struct NativeStream {
    state: Arc<StreamState>,
}

struct StreamState {
    stream: tokio::sync::Mutex<Option<ItemStream>>,
    closed: AtomicBool,
    close: tokio::sync::Notify,
}

impl NativeStream {
    fn new(stream: ItemStream) -> Self {
        Self {
            state: Arc::new(StreamState {
                stream: tokio::sync::Mutex::new(Some(stream)),
                closed: AtomicBool::new(false),
                close: tokio::sync::Notify::new(),
            }),
        }
    }
}

async fn next_item(state: Arc<StreamState>) -> Result<Option<Bytes>, GatewayError> {
    // Registered before the flag is read, so a close() in between still wakes us.
    let closing = state.close.notified();
    tokio::pin!(closing);
    if state.closed.load(Ordering::Acquire) {
        return Ok(None);
    }
    let mut guard = tokio::select! {
        guard = state.stream.lock() => guard,
        () = &mut closing => return Ok(None),
    };
    let Some(stream) = guard.as_mut() else { return Ok(None) };
    let item = tokio::select! {
        item = stream.next() => item,
        () = &mut closing => None,
    };
    match item {
        Some(Ok(bytes)) => Ok(Some(bytes)),
        Some(Err(e)) => {
            *guard = None;
            Err(e)
        }
        None => {
            *guard = None;
            Ok(None)
        }
    }
}

#[napi]
impl AsyncGenerator for NativeStream {
    type Yield = Buffer;
    type Next = ();
    type Return = ();

    fn next(&mut self, _value: Option<()>) -> impl Future<Output = napi::Result<Option<Buffer>>> + Send + 'static {
        let state = self.state.clone();
        async move {
            match next_item(state).await {
                Ok(item) => Ok(item.map(|bytes| Buffer::from(Vec::from(bytes)))),
                Err(e) => Err(plain_err(e)),
            }
        }
    }

    fn complete(&mut self, _value: Option<()>) -> impl Future<Output = napi::Result<Option<Buffer>>> + Send + 'static {
        let state = self.state.clone();
        async move {
            state.closed.store(true, Ordering::Release);
            state.close.notify_waiters();
            // Dropping the stream drops the upstream response: the request is cancelled.
            state.stream.lock().await.take();
            Ok(None)
        }
    }
}
