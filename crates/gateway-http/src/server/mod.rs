//! The OpenAI-compatible HTTP server (`gatewise serve`).
//!
//! Every `/v1/...` route goes through one handler: read the body (bounded), turn the
//! headers into `RequestOptions` and the request into a `GatewayRequest` through the
//! protocol layer, hand both to the engine, and render its answer through the same layer.
//! The engine decides everything else, so the server and the bindings cannot disagree.

mod gate;
mod listen;
mod realtime;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response as HttpResponse;
use bytes::Bytes;
use gateway_core::{Engine, ErrorCode, GatewayError};
use http::header::CONTENT_TYPE;

use crate::protocol::{self, HttpReply, HttpReplyBody, Options, Resolver};
use crate::telemetry::Telemetry;

pub use gate::{Admission, ConnectionGate, default_max_connections};
pub use listen::{serve, serve_on_threads, shutdown_signal};

/// Default request body limit: 32 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Default longest wait for a request's headers, idle keep-alive time included.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What the request handler needs. A thread-per-core server has one per worker thread,
/// each with an engine over its own connection pool, sharing everything else.
#[derive(Debug)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Headers → request options (the default config, `--config-dir`, the config cache).
    pub resolver: Arc<Resolver>,
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
    /// Longest wait for an HTTP/1 request's headers, counted from when the connection
    /// is ready for it (so an idle keep-alive connection is closed after it too), or
    /// `None` for no limit. Guards against clients that open connections and trickle
    /// bytes (slow loris) or leave them idle forever.
    pub header_read_timeout: Option<Duration>,
    /// The connection count and cap, shared by every worker.
    pub connections: Arc<ConnectionGate>,
    /// The realtime sessions being relayed, shared by every worker: closed with `going away`
    /// when the server shuts down.
    sessions: Arc<realtime::Sessions>,
    /// The request log, metrics and traces (the engine is given their observer).
    pub telemetry: Telemetry,
    trace_ids: Arc<TraceIds>,
    /// This server's id in `x-gatewise-via` (random per process), for loop detection.
    instance_id: http::HeaderValue,
}

/// Generated trace ids: a random per-process prefix and a serial.
#[derive(Debug)]
struct TraceIds {
    prefix: u64,
    /// Mixed into W3C trace and span ids, so two servers never make the same ones.
    salt: u64,
    next: AtomicU64,
}

impl AppState {
    /// State for a server.
    pub fn new(engine: Engine, resolver: Resolver, body_limit: usize) -> Self {
        let random = gateway_core::rng::SplitMix64::from_entropy();
        let prefix = (gateway_core::rng::RandomSource::next_f64(&random) * (u32::MAX as f64)) as u64;
        let salt = (gateway_core::rng::RandomSource::next_f64(&random) * (u32::MAX as f64)) as u64;
        let span_salt = (gateway_core::rng::RandomSource::next_f64(&random) * (u64::MAX as f64)) as u64;
        let trace_ids = Arc::new(TraceIds { prefix, salt: span_salt, next: AtomicU64::new(0) });
        let instance_id = http::HeaderValue::from_str(&gateway_core::hex_id::hex_id("gw-", (prefix << 32) | salt, 16))
            .unwrap_or(http::HeaderValue::from_static("gw"));
        Self {
            engine,
            resolver: Arc::new(resolver),
            body_limit,
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            connections: ConnectionGate::new(default_max_connections()),
            sessions: Arc::default(),
            telemetry: Telemetry::default(),
            trace_ids,
            instance_id,
        }
    }

    /// Turn on the request log, metrics and traces: the engine reports to them, and the
    /// server serves `/metrics` and starts or joins traces.
    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        if let Some(observer) = telemetry.observer() {
            self.engine = self.engine.with_observer(observer);
        }
        self.telemetry = telemetry;
        self
    }

    /// The same state over another engine; configs and the trace-id serial stay shared.
    pub fn with_engine(&self, engine: Engine) -> Self {
        Self {
            engine,
            resolver: self.resolver.clone(),
            body_limit: self.body_limit,
            header_read_timeout: self.header_read_timeout,
            connections: self.connections.clone(),
            sessions: self.sessions.clone(),
            telemetry: self.telemetry.clone(),
            trace_ids: self.trace_ids.clone(),
            instance_id: self.instance_id.clone(),
        }
    }

    /// One state per worker thread of [`serve_on_threads`]: the same engine and configs.
    /// Each worker still gets connections of its own: the hyper transport keeps a pool per
    /// runtime, and every worker thread runs one.
    pub fn per_worker(&self, workers: usize) -> Vec<AppState> {
        (0..workers.max(1)).map(|_| self.with_engine(self.engine.clone())).collect()
    }

    /// The request's W3C trace context: the caller's `traceparent` (a malformed one is
    /// ignored, as the spec asks), with a span of our own when spans are exported, or a
    /// new trace when the caller sent none.
    fn trace_context(&self, headers: &http::HeaderMap) -> Option<gateway_core::engine::TraceContext> {
        use gateway_core::engine::{TRACEPARENT, TraceContext};
        // By a `HeaderName`: looked up by text, the name is parsed and checked on every request.
        const NAME: http::HeaderName = http::HeaderName::from_static(TRACEPARENT);
        let caller = headers.get(NAME).and_then(|v| v.to_str().ok()).and_then(TraceContext::parse);
        if self.telemetry.traces.is_none() {
            return caller;
        }
        let n = self.trace_ids.next.fetch_add(1, Ordering::Relaxed);
        let id = |k: u64| mix(self.trace_ids.salt ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k).to_be_bytes();
        let span_id = Some(id(1));
        Some(match caller {
            Some(caller) => TraceContext { span_id, ..caller },
            None => {
                let mut trace_id = [0u8; 16];
                trace_id[..8].copy_from_slice(&id(2));
                trace_id[8..].copy_from_slice(&id(3));
                TraceContext { trace_id, parent_id: None, span_id, sampled: true }
            }
        })
    }

    fn new_trace_id(&self) -> String {
        let n = self.trace_ids.next.fetch_add(1, Ordering::Relaxed);
        let mut id = gateway_core::hex_id::hex_id("gw-", self.trace_ids.prefix, 8);
        id.push('-');
        gateway_core::hex_id::push_hex(&mut id, n, 12);
        id
    }
}

/// SplitMix64's finaliser: spreads a counter into ids that look random.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let z = z ^ (z >> 31);
    if z == 0 { 1 } else { z }
}

/// Answer one HTTP request: `GET /health`, `GET /metrics`, or a call routed through the
/// engine.
pub async fn handle<B>(state: &AppState, request: http::Request<B>) -> HttpResponse
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if request.uri().path() == "/health" {
        return health(request.method());
    }
    if request.uri().path() == "/metrics"
        && let Some(metrics) = &state.telemetry.metrics
    {
        let mut response = HttpResponse::new(Body::from(metrics.render()));
        response.headers_mut().insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        return response;
    }
    state.telemetry.started();
    gateway(state, request).await
}

/// The answer on a connection past the cap: `/health` as usual, else 503 `server_busy`
/// with `Retry-After`, and the connection closed after it.
pub fn busy<B>(request: &http::Request<B>) -> HttpResponse {
    if request.uri().path() == "/health" {
        return health(request.method());
    }
    let error = GatewayError::new(ErrorCode::ServerBusy, "the server is at its connection limit; retry shortly");
    let mut response = into_hyper(protocol::error(error, None, protocol::dialect_of(request.uri().path())));
    let headers = response.headers_mut();
    headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    headers.insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

fn health(method: &http::Method) -> HttpResponse {
    if method == http::Method::GET || method == http::Method::HEAD {
        let mut response = HttpResponse::new(Body::from(r#"{"status":"ok"}"#));
        response.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        return response;
    }
    into_hyper(protocol::error(
        GatewayError::new(ErrorCode::InvalidRequest, format!("{method} is not allowed on /health")).with_status(405),
        None,
        gateway_core::Dialect::OpenAi,
    ))
}

/// Every routed endpoint.
async fn gateway<B>(state: &AppState, request: http::Request<B>) -> HttpResponse
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (mut parts, body) = request.into_parts();
    let trace_id = match parts.headers.get(protocol::TRACE_ID).and_then(|v| v.to_str().ok()) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => state.new_trace_id(),
    };
    let path = parts.uri.path().to_owned();
    let fail = |e: GatewayError| {
        state.telemetry.refused(&gateway_core::engine::RequestRecord::refused(&e, Some(trace_id.clone()), &path));
        into_hyper(protocol::error(e, Some(trace_id.clone()), protocol::dialect_of(&path)))
    };
    // The body first: an answer sent while the client is still sending is lost to it
    // (its socket is reset), so every refusal below comes after the body was read.
    let bytes = match protocol::read_body(body, &parts.headers, state.body_limit).await {
        Ok(bytes) => bytes,
        Err(e) => return fail(e),
    };
    // A request that has been here before is refused before anything else is looked at.
    let via = match protocol::next_hop(&parts.headers, &state.instance_id) {
        Ok(via) => via,
        Err(e) => return fail(e),
    };
    let realtime = match realtime::Handshake::take(&mut parts) {
        Ok(realtime) => realtime,
        Err(e) => return fail(e),
    };
    let view = state.resolver.registry();
    let key = match protocol::authenticate(&parts.headers, &view) {
        Ok(key) => key,
        Err(e) => return fail(e),
    };
    let mut options = match Options::from_headers(&parts.headers) {
        Ok(options) => options,
        Err(e) => return fail(e),
    };
    if let Some(key) = key {
        protocol::apply_key(key, &parts.headers, &mut options);
    }
    let trace_context = state.trace_context(&parts.headers);
    let mut prompt = None;
    let built = match protocol::PromptCall::of(&parts.method, &path) {
        Some(protocol::PromptCall::Render(id)) if key.is_some() => {
            return match render_in_scope(id, &view, &bytes, parts.headers, options, key, state) {
                Ok(reply) => into_hyper(reply),
                Err(e) => fail(e),
            };
        }
        Some(call) => match protocol::prompt_request(call, &view, &bytes, parts.headers, &mut options) {
            Ok(protocol::PromptOutcome::Rendered(body)) => return into_hyper(protocol::rendered_reply(body)),
            Ok(protocol::PromptOutcome::Completion(request, rendered_from)) => {
                prompt = Some(rendered_from);
                Ok(request)
            }
            Err(e) => Err(e),
        },
        None => protocol::gateway_request(parts.method, &parts.uri, parts.headers, bytes),
    };
    let mut request = match built {
        Ok(request) => request,
        Err(e) => return fail(e),
    };
    let mut options = match routed(&mut request, options, key, state, &view) {
        Ok(options) => options,
        Err(e) => return fail(e),
    };
    options.trace_context = trace_context;
    options.trace_id = Some(trace_id);
    options.prompt = prompt;
    options.via = Some(via);
    if let Some(key) = key {
        options.key = Some(Arc::from(key.name.as_str()));
        options.limits = key.limit_scopes(options.metadata.as_object().unwrap_or(&serde_json::Map::new())).into();
    }
    let response = state.engine.handle(&request, &options).await;
    match realtime {
        Some(handshake) => handshake.answer(response, &state.sessions),
        None => into_hyper(protocol::render(response, request.endpoint.dialect())),
    }
}

/// `/v1/prompts/{id}/render` for a caller with a gateway key, who sees only the prompts it
/// may run: the completion the prompt makes is checked against the key's scope (its
/// providers, configs and models) before the rendered body is answered.
fn render_in_scope(
    id: &str,
    view: &protocol::RegistryView,
    bytes: &[u8],
    headers: http::HeaderMap,
    options: Options,
    key: Option<&gateway_core::registry::GatewayKey>,
    state: &AppState,
) -> Result<HttpReply, GatewayError> {
    let mut scoped = options;
    let completion = protocol::PromptCall::Completions(id);
    if let protocol::PromptOutcome::Completion(mut request, _) =
        protocol::prompt_request(completion, view, bytes, headers.clone(), &mut scoped)?
    {
        routed(&mut request, scoped, key, state, view)?;
    }
    match protocol::prompt_request(protocol::PromptCall::Render(id), view, bytes, headers, &mut Options::default())? {
        protocol::PromptOutcome::Rendered(body) => Ok(protocol::rendered_reply(body)),
        protocol::PromptOutcome::Completion(..) => {
            Err(GatewayError::new(gateway_core::ErrorCode::Internal, "a render call made a completion"))
        }
    }
}

/// The request's options resolved against the registry (`@slug/model` in the body names
/// the request's provider).
fn routed(
    request: &mut gateway_core::GatewayRequest,
    mut options: Options,
    key: Option<&gateway_core::registry::GatewayKey>,
    state: &AppState,
    view: &protocol::RegistryView,
) -> Result<gateway_core::RequestOptions, GatewayError> {
    protocol::address_model(request, &mut options, view)?;
    let resolved = state.resolver.resolve_in(options, view)?;
    if let Some(key) = key {
        // The body (a realtime session's query) is read for the model only when the key
        // restricts models.
        let realtime_model = key
            .models
            .as_ref()
            .filter(|_| request.endpoint == gateway_core::Endpoint::Realtime)
            .and_then(|_| request.query_param("model"));
        let model = match &realtime_model {
            Some(model) => Some(model.as_str()),
            None => key.models.as_ref().and_then(|_| request.body.value()?.get("model")?.as_str()),
        };
        protocol::check_scope(key, &resolved.options, resolved.request.config.as_deref(), model, view)?;
    }
    Ok(resolved.request)
}

/// A rendered reply as a hyper response; a stream is pulled by hyper as it writes.
fn into_hyper(reply: HttpReply) -> HttpResponse {
    let HttpReply { status, headers, body } = reply;
    let body = match body {
        HttpReplyBody::Full(bytes) => Body::from(bytes),
        HttpReplyBody::Stream(frames) => {
            Body::from_stream(futures::StreamExt::map(frames, Ok::<_, std::convert::Infallible>))
        }
    };
    let mut out = HttpResponse::new(body);
    *out.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    *out.headers_mut() = headers;
    out
}
