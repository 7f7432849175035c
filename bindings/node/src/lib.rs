//! `gatewise`'s native half (napi-rs): the Node binding's Rust side.
//!
//! Only conversion and runtime bridging live here (see the Bindings section of the shared
//! STYLE.md): request bodies and route info cross as JSON text, answers as bytes, and every
//! call runs on napi's tokio runtime as a Promise. Errors reject with a message made of
//! [`ERROR_MARKER`] and the error's class (picked by `protocol::ErrorClass`, an
//! exhaustive match on the error code) and fields, which `index.js` turns into an
//! instance of that class. Streams are pull-based: each `next()` pulls one item from the
//! Rust stream, and `return()` (a `break` out of `for await`) drops it at once, which
//! cancels the upstream request.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use gateway_core::engine::{RequestObserver, RequestRecord, RouteInfo};
use gateway_core::{Engine, GatewayError};
use gateway_http::client::{
    CallArgs, CallError, CallOptions, ClosableStream, Created, Gateway, header_name, header_value,
};
use gateway_http::protocol::{
    self, ErrorClass, FilePart, HttpReply, HttpReplyBody, OPTIONS, Options, RESOURCES, error_fields, route_json_text,
};
use napi::bindgen_prelude::{AsyncGenerator, Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

// The engine's own allocations (headers, bodies, futures) go to mimalloc, as in the server:
// glibc's malloc and free were ~18k of a call's 151k instructions. Memory handed to Node
// (a body `Buffer`) is freed by its finalizer through this same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Prefix of an error message that carries a gateway error as JSON (index.js parses it).
const ERROR_MARKER: &str = "\u{1}gatewise-error:";

/// One engine (and connection pool) per process, shared by every client.
fn engine() -> napi::Result<Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| gateway_http::engine(gateway_http::TransportOptions::default()).map_err(|e| e.to_string()))
        .clone()
        .map_err(napi::Error::from_reason)
}

fn to_js_err(error: &GatewayError, route: &RouteInfo) -> napi::Error {
    let mut fields = error_fields(error, route);
    fields["class"] = ErrorClass::of(error).name().into();
    napi::Error::from_reason(format!("{ERROR_MARKER}{fields}"))
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

fn parse_options(options_json: &str) -> napi::Result<Options> {
    Options::from_json(parse_json(options_json, "options")?).map_err(plain_err)
}

/// A file field of an upload (`audio.transcriptions.create`, `images.edit`, ...).
#[napi(object)]
pub struct NativeFile {
    /// The form field.
    pub field: String,
    /// The file name.
    pub filename: String,
    /// Its content type.
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Buffer,
}

/// One option as the engine declares it (`OPTIONS`).
#[napi(object, object_from_js = false)]
pub struct NativeOption {
    /// snake_case name.
    pub name: String,
    /// camelCase name.
    pub camel: String,
    /// The `x-portkey-*` header, if a request can set it by header.
    pub header: Option<String>,
    /// The TypeScript type.
    pub typescript_type: String,
    /// Docs.
    pub doc: String,
}

/// Every option, as the engine declares it.
#[napi]
pub fn options() -> Vec<NativeOption> {
    OPTIONS
        .iter()
        .map(|o| NativeOption {
            name: o.name.into(),
            camel: o.camel.into(),
            header: o.header.map(Into::into),
            typescript_type: o.typescript_type.into(),
            doc: o.doc.into(),
        })
        .collect()
}

/// Every resource: `[method path, body kind]` (`["chat.completions.create", "json"]`).
#[napi]
pub fn resources() -> Vec<Vec<String>> {
    RESOURCES.iter().map(|r| vec![r.method.to_owned(), r.body.as_str().to_owned()]).collect()
}

/// Every error class: `[name, parent name]`, parents first.
#[napi]
pub fn error_classes() -> Vec<Vec<String>> {
    ErrorClass::ALL
        .iter()
        .map(|c| vec![c.name().to_owned(), c.parent().map_or("GatewayError", ErrorClass::name).to_owned()])
        .collect()
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
    /// How a complete answer was routed (a stream knows its own: `routeJson()`).
    pub route: Option<NativeRoute>,
}

/// How a complete answer was routed, rendered as JSON text only when asked for: most
/// callers never read `route`, and writing it on every call cost more than the rest of
/// the binding's own work.
#[napi]
pub struct NativeRoute(RouteInfo);

#[napi]
impl NativeRoute {
    /// The route as JSON text.
    #[napi]
    pub fn json(&self) -> String {
        route_json_text(&self.0)
    }
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
    /// `optionsJson`: the client options as a JSON object (snake_case or camelCase keys).
    /// `onLog`: called with each request's record as JSON text (index.js parses it).
    #[napi(constructor)]
    pub fn new(options_json: String, on_log: Option<Function<String, ()>>) -> napi::Result<Self> {
        let mut engine = engine()?;
        if let Some(callback) = on_log {
            // Weak: a log callback must not keep the process alive.
            let callback =
                callback.build_threadsafe_function::<String>().callee_handled::<false>().weak::<true>().build()?;
            engine = engine.with_observer(Arc::new(LogCallback(callback)));
        }
        let inner = Gateway::from_json(engine, parse_json(&options_json, "options")?).map_err(plain_err)?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// A client with these options replacing ours.
    #[napi]
    pub fn with_options(&self, options_json: String) -> napi::Result<NativeGateway> {
        let overrides = parse_options(&options_json)?;
        let inner = self.inner.with_options(&overrides).map_err(plain_err)?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Call a resource (`chat.completions.create`, ...) with its params (JSON text), the
    /// files of an upload, and the per-call options (JSON text).
    #[napi]
    pub async fn create(
        &self,
        method: String,
        params_json: String,
        files: Vec<NativeFile>,
        call_json: String,
    ) -> napi::Result<NativeReply> {
        let resource = protocol::resource(&method).map_err(plain_err)?;
        let files = files
            .into_iter()
            .map(|f| FilePart {
                field: f.field,
                filename: f.filename,
                content_type: f.content_type,
                data: Bytes::copy_from_slice(&f.data),
            })
            .collect();
        let args = CallArgs { params: params_json, files };
        let call = CallOptions::from_json(parse_json(&call_json, "call options")?).map_err(plain_err)?;
        let inner = self.inner.clone();
        Ok(match inner.create(resource, args, call).await.map_err(call_err)? {
            Created::Reply(reply) => NativeReply {
                status: u32::from(reply.status),
                content_type: reply.content_type,
                body: Some(Buffer::from(Vec::from(reply.body))),
                stream: None,
                route: Some(NativeRoute(reply.route)),
            },
            Created::Stream(events, route) => NativeReply {
                status: 200,
                content_type: Some("text/event-stream".to_owned()),
                body: None,
                route: None,
                stream: Some(NativeStream { inner: ClosableStream::new(events), route: Some(route) }),
            },
        })
    }

    /// The dry-run plan as JSON text: `{"targets": [...]}`. Nothing is sent.
    #[napi]
    pub fn route(
        &self,
        method: String,
        params_json: String,
        metadata_json: Option<String>,
        seed: Option<i64>,
    ) -> napi::Result<String> {
        let resource = protocol::resource(&method).map_err(plain_err)?;
        let metadata = metadata_json.map(|m| parse_json(&m, "metadata")).transpose()?;
        let seed = seed
            .map(u64::try_from)
            .transpose()
            .map_err(|_| plain_err(GatewayError::request("seed", "seed must be a non-negative integer")))?;
        let plan = self.inner.route(resource, params_json, metadata, seed).map_err(plain_err)?;
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
        map.append(header_name(name).map_err(plain_err)?, header_value(name, value).map_err(plain_err)?);
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
        HttpReplyBody::Stream(frames) => {
            (None, Some(NativeStream { inner: ClosableStream::new(Box::pin(frames.map(Ok))), route: None }))
        }
    };
    NativeHttpReply { status: u32::from(reply.status), headers, body, stream }
}

/// A pull-based stream of byte items (chunk JSON, or SSE frames), usable with `for await`.
/// `return()` closes it at once — also while a `next()` is waiting for the upstream — and
/// drops the upstream response, which cancels the upstream request.
#[napi(async_iterator)]
pub struct NativeStream {
    inner: Arc<ClosableStream>,
    /// How a `create` stream was routed (usage and cost once it has ended).
    route: Option<RouteInfo>,
}

/// Calls run on a one-worker runtime: a request, its upstream connection's task and the
/// answer then stay on one thread, instead of two workers passing them back and forth
/// (the JS thread cannot run them: it must not block).
#[napi_derive::module_init]
fn one_worker_runtime() {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(runtime) => napi::bindgen_prelude::create_custom_tokio_runtime(runtime),
        // napi starts its default runtime instead.
        Err(e) => eprintln!("gatewise: could not start a one-worker runtime: {e}"),
    }
}

/// Most items one `nextBatch()` carries.
const MAX_BATCH: usize = 256;

#[napi]
impl NativeStream {
    /// The next items, waiting for the first: every one already read from the upstream
    /// comes in the same call (one thread crossing instead of one per chunk); an empty
    /// array at the end.
    #[napi]
    pub async fn next_batch(&self) -> napi::Result<Vec<Buffer>> {
        let items = self.inner.next_batch(MAX_BATCH).await.map_err(plain_err)?;
        Ok(items.into_iter().map(|bytes| Buffer::from(Vec::from(bytes))).collect())
    }

    /// The route as JSON text, with the usage and cost of a stream that has ended.
    #[napi]
    pub fn route_json(&self) -> Option<String> {
        self.route.as_ref().map(route_json_text)
    }
}

/// A JS function that gets every request's record (as JSON text), called on the JS thread.
struct LogCallback(ThreadsafeFunction<String, (), String, napi::Status, false, true>);

impl std::fmt::Debug for LogCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogCallback")
    }
}

impl RequestObserver for LogCallback {
    fn record(&self, record: &RequestRecord) {
        self.0.call(record.to_json_line(), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

#[napi]
impl AsyncGenerator for NativeStream {
    type Yield = Buffer;
    type Next = ();
    type Return = ();

    fn next(&mut self, _value: Option<()>) -> impl Future<Output = napi::Result<Option<Buffer>>> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            match inner.next().await {
                Ok(item) => Ok(item.map(|bytes| Buffer::from(Vec::from(bytes)))),
                Err(e) => Err(plain_err(e)),
            }
        }
    }

    fn complete(&mut self, _value: Option<()>) -> impl Future<Output = napi::Result<Option<Buffer>>> + Send + 'static {
        self.inner.close();
        async { Ok(None) }
    }
}
