//! The engine's only window on the world: send a request, sleep, read a clock.

use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;

use crate::providers::{CredentialRequest, HttpRequest};

/// A body that arrives piece by piece. Dropping it cancels the upstream request.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>> + Send>>;

/// An upstream answer whose headers have arrived.
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, pulled on demand.
    pub body: ByteStream,
    /// For `101 Switching Protocols` to a request that asked to upgrade (`upgrade:
    /// websocket`), the connection in its new protocol.
    pub upgraded: Option<super::Upgraded>,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse").field("status", &self.status).field("headers", &self.headers).finish()
    }
}

/// Why a request got no answer. All kinds but `Forbidden` are retryable and fallback-worthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// Connection refused.
    ConnectionRefused,
    /// Connection reset or closed mid-request.
    ConnectionReset,
    /// Name resolution failed.
    Dns,
    /// TLS handshake or certificate failure.
    Tls,
    /// Connecting took too long.
    ConnectTimeout,
    /// No bytes arrived within the idle timeout while reading the body.
    IdleTimeout,
    /// Any other I/O failure.
    Other,
    /// The body is longer than the reader accepts (see [`collect_body`]).
    TooLarge,
    /// The destination is refused by policy (SSRF rules) or the URL is unusable: the
    /// caller's configuration problem, not a network failure, so never retried.
    Forbidden,
}

/// A failed send or a broken body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct TransportError {
    /// The classification.
    pub kind: TransportErrorKind,
    /// Detail for logs and error messages.
    pub message: String,
}

impl TransportError {
    /// A new error.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

/// The I/O the engine needs, supplied by `gateway-http` (hyper + tokio) or by a fake in
/// tests. Keeping sleep and the clock here makes the engine runtime-agnostic and lets
/// tests run a 31-second backoff schedule in microseconds.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Send a request; resolve when the response headers arrive.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;

    /// Sleep for `duration`.
    async fn sleep(&self, duration: Duration);

    /// Fetch a credential a provider asked for (an OAuth token exchange, say). Transports
    /// that cannot refuse with `Forbidden`; implementations should cache what they fetch.
    async fn credential(&self, request: &CredentialRequest) -> Result<String, TransportError> {
        let _ = request;
        Err(TransportError::new(TransportErrorKind::Forbidden, "this transport cannot fetch credentials"))
    }

    /// Monotonic now (attempt timings).
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Wall-clock now (request signing, `created`, HTTP-date `Retry-After`).
    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Read a whole body of at most `limit` bytes; a longer one fails with `TooLarge` as soon
/// as it passes the limit (dropping the body then cancels the upstream request).
pub async fn collect_body(mut body: ByteStream, limit: usize) -> Result<Bytes, TransportError> {
    use futures::StreamExt;
    // The pieces are kept as they came and joined once at the end: growing one buffer by
    // doubling would hold up to twice the limit, and copy it as it went.
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(TransportError::new(
                TransportErrorKind::TooLarge,
                format!("the answer is larger than {limit} bytes"),
            ));
        }
        if !chunk.is_empty() {
            pieces.push(chunk);
        }
    }
    Ok(match pieces.len() {
        0 => Bytes::new(),
        // One-chunk bodies (the common case) are returned without a copy.
        1 => pieces.swap_remove(0),
        _ => {
            let mut whole = Vec::with_capacity(total);
            for piece in &pieces {
                whole.extend_from_slice(piece);
            }
            Bytes::from(whole)
        }
    })
}

/// Durations used by the retry loop.
pub(crate) fn backoff(retry_number: u32) -> Duration {
    // 1 s, 2 s, 4 s, 8 s, 16 s before retries 1..=5 (Portkey's schedule).
    Duration::from_millis(1000u64 << retry_number.saturating_sub(1).min(10))
}
