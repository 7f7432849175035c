//! The OpenAI-compatible HTTP server (`gatewise serve`).
//!
//! Every `/v1/...` route goes through one handler: parse the headers into
//! `RequestOptions`, read the body (bounded), hand both to the engine, render its answer.
//! The engine decides everything else, so the server and the bindings cannot disagree.

mod configs;
mod headers;
pub mod respond;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response as HttpResponse;
use axum::routing::get;
use bytes::Bytes;
use gateway_core::{Endpoint, Engine, ErrorCode, GatewayError, GatewayRequest, RequestBody};
use http::header::CONTENT_TYPE;

pub use configs::ConfigStore;
pub use headers::request_options;

use crate::error::HttpError;

/// Default request body limit: 32 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Config resolution and cache.
    pub configs: ConfigStore,
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
    trace_ids: AtomicU64,
    trace_prefix: u64,
}

impl AppState {
    /// State for a server.
    pub fn new(engine: Engine, configs: ConfigStore, body_limit: usize) -> Self {
        let prefix = gateway_core::rng::SplitMix64::from_entropy();
        let trace_prefix = (gateway_core::rng::RandomSource::next_f64(&prefix) * (u32::MAX as f64)) as u64;
        Self { engine, configs, body_limit, trace_ids: AtomicU64::new(0), trace_prefix }
    }

    fn new_trace_id(&self) -> String {
        let n = self.trace_ids.fetch_add(1, Ordering::Relaxed);
        format!("gw-{:08x}-{n:012x}", self.trace_prefix)
    }
}

/// The application router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .fallback(gateway)
        .with_state(state)
}

/// Serve until `shutdown` resolves, then finish in-flight requests and return.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    use axum::serve::ListenerExt;
    // Answers are small writes; Nagle would hold them back waiting for an ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Every routed endpoint.
async fn gateway(State(state): State<Arc<AppState>>, request: Request) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let trace_id = match parts.headers.get("x-portkey-trace-id").and_then(|v| v.to_str().ok()) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => state.new_trace_id(),
    };
    let fail = |e: GatewayError| respond::error(e, Some(trace_id.clone()));
    let mut options = match request_options(&parts.headers, &state.configs) {
        Ok(options) => options,
        Err(e) => return fail(e),
    };
    options.trace_id = Some(trace_id.clone());
    let bytes = match read_body(body, &parts.headers, state.body_limit).await {
        Ok(bytes) => bytes,
        Err(e) => return fail(e),
    };
    let request = match gateway_request(parts.method, &parts.uri, parts.headers, bytes) {
        Ok(request) => request,
        Err(e) => return fail(e),
    };
    let response = state.engine.handle(&request, &options).await;
    tracing::debug!(
        trace_id,
        status = response.status,
        option_index = response.route.option_index.as_deref().unwrap_or("-"),
        attempts = response.route.attempts.len(),
        "routed"
    );
    respond::into_http(response)
}

/// A routed request from its HTTP parts (the server and the bindings' httpx/fetch hooks).
/// An unknown route is a 404, a malformed JSON body a 400.
pub fn gateway_request(
    method: http::Method,
    uri: &http::Uri,
    headers: http::HeaderMap,
    bytes: Bytes,
) -> Result<GatewayRequest, GatewayError> {
    let path = uri.path().to_owned();
    let Some(endpoint) = Endpoint::from_path(&method, &path) else {
        return Err(GatewayError::new(ErrorCode::InvalidRequest, format!("unknown route {method} {path}"))
            .with_status(404)
            .with_param("url"));
    };
    let body = if endpoint.has_json_body() {
        RequestBody::json(bytes)?
    } else if bytes.is_empty() {
        RequestBody::Empty
    } else {
        let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        RequestBody::Opaque { content_type, raw: bytes }
    };
    Ok(GatewayRequest { endpoint, method, path, query: uri.query().map(str::to_owned), body, headers })
}

/// Read the whole body, refusing more than `limit` bytes with a 413.
async fn read_body(body: Body, headers: &http::HeaderMap, limit: usize) -> Result<Bytes, GatewayError> {
    let too_large =
        || GatewayError::new(ErrorCode::PayloadTooLarge, format!("the request body exceeds the {limit}-byte limit"));
    let declared =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = s.source();
        }
        GatewayError::request("", format!("reading the request body failed: {e}"))
    })
}

/// Bind `addr` and serve with the default shutdown signal (used by the CLI).
pub async fn run(addr: SocketAddr, state: Arc<AppState>) -> Result<(), HttpError> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("gatewise listening on http://{}", listener.local_addr()?);
    serve(listener, state, shutdown_signal()).await
}
