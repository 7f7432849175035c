//! The engine's [`Transport`] over tokio: HTTP/1.1 of our own (h1.rs), HTTP/2
//! and WebSocket upgrades on hyper.
//!
//! Pooled connections, TLS through rustls with the platform's verifier, HTTP/2 where the
//! upstream negotiates it (ALPN), a connect timeout, no whole-request timeout (streams may
//! run long) but an idle timeout between body reads, no redirects (a gateway that follows
//! redirects is an SSRF hole), and failures classified so the engine can retry and fall
//! back. Not reqwest: under load, reqwest's per-request URL parsing and client layers cost
//! a third of the gateway's throughput (see the load benchmark in benches/load), and
//! hyper's own HTTP/1.1 client connection a quarter of its instructions (see h1.rs).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Future, Stream, StreamExt};
use gateway_core::engine::{ByteStream, HttpResponse, Transport, TransportError, TransportErrorKind};
use gateway_core::providers::{CredentialRequest, HttpRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;

use crate::credentials::TokenCache;
use crate::egress::EgressPolicy;
use crate::error::HttpError;
use crate::pool::{Pools, SendError};

/// Transport settings.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Time allowed to open a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Longest silence allowed between two reads of a response body.
    pub idle_timeout: Duration,
    /// Idle pooled connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// Which destinations may be called.
    pub egress: EgressPolicy,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            pool_max_idle_per_host: 64,
            egress: EgressPolicy::permissive(),
        }
    }
}

pub(crate) type Connector = HttpsConnector<HttpConnector<FilteringResolver>>;

/// hyper + rustls + tokio transport.
#[derive(Clone)]
pub struct HyperTransport {
    pools: Arc<Pools>,
    /// HTTP/1.1 only (ALPN), for WebSocket upgrades.
    upgrade_connector: Connector,
    egress: Arc<EgressPolicy>,
    idle_timeout: Duration,
    tokens: Arc<TokenCache>,
}

impl std::fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperTransport").field("egress", &self.egress).field("tokens", &self.tokens).finish()
    }
}

impl HyperTransport {
    /// Build a transport.
    pub fn new(options: TransportOptions) -> Result<Self, HttpError> {
        let egress = Arc::new(options.egress);
        let mut http = HttpConnector::new_with_resolver(FilteringResolver { egress: egress.clone() });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(options.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_platform_verifier()
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http.clone());
        let http1 = hyper_rustls::HttpsConnectorBuilder::new()
            .with_platform_verifier()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            pools: Arc::new(Pools::new(https, options.pool_max_idle_per_host)),
            upgrade_connector: http1,
            egress,
            idle_timeout: options.idle_timeout,
            tokens: Arc::new(TokenCache::default()),
        })
    }

    /// Send one request and wait for the response headers.
    pub(crate) async fn request(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let uri: http::Uri = request.url.parse().map_err(|e| {
            TransportError::new(TransportErrorKind::Forbidden, format!("invalid upstream URL {}: {e}", request.url))
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(TransportError::new(
                TransportErrorKind::Forbidden,
                format!("not an http(s) URL: {}", request.url),
            ));
        }
        if let Some(host) = uri.host() {
            let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
            self.egress.check(host, port).map_err(|why| TransportError::new(TransportErrorKind::Forbidden, why))?;
        }
        if request.headers.get(http::header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket")) {
            return crate::upgrade::open(&self.upgrade_connector, uri, request, self.idle_timeout).await;
        }
        let answer = self.pools.current().send(uri, request.method, request.headers, request.body).await.map_err(
            |e| match e {
                SendError::Connect(e) => classify_connect(&*e),
                SendError::Failed(e) => e,
            },
        )?;
        Ok(HttpResponse {
            status: answer.status.as_u16(),
            headers: answer.headers,
            body: idle_limited(answer.body, self.idle_timeout),
            upgraded: None,
        })
    }
}

#[async_trait::async_trait]
impl Transport for HyperTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.request(request).await
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    async fn credential(&self, request: &CredentialRequest) -> Result<String, TransportError> {
        match request {
            CredentialRequest::GoogleServiceAccount { account, scope } => {
                self.tokens.google_token(self, account, scope).await
            }
        }
    }
}

/// A body stream that fails with `IdleTimeout` when no chunk arrives for `idle`.
pub(crate) fn idle_limited(
    body: impl Stream<Item = Result<Bytes, TransportError>> + Send + 'static,
    idle: Duration,
) -> ByteStream {
    Box::pin(IdleLimited { body: Box::pin(body), idle, timer: None, chunk_since_armed: false, done: false })
}

/// The timer is armed only while the body is actually waiting for the upstream, and
/// re-armed only after a chunk arrived: an answer already in memory (most non-streamed
/// ones) never touches the timer wheel.
struct IdleLimited {
    body: ByteStream,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    chunk_since_armed: bool,
    done: bool,
}

impl Stream for IdleLimited {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.body.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => {
                self.chunk_since_armed = true;
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                self.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        let rearm = std::mem::take(&mut self.chunk_since_armed);
        let idle = self.idle;
        let deadline = || tokio::time::Instant::now() + idle;
        let timer = match &mut self.timer {
            Some(timer) => {
                if rearm {
                    timer.as_mut().reset(deadline());
                }
                timer
            }
            empty => empty.insert(Box::pin(tokio::time::sleep_until(deadline()))),
        };
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.done = true;
        let e = TransportError::new(
            TransportErrorKind::IdleTimeout,
            format!("no data from the upstream for {} s", self.idle.as_secs()),
        );
        Poll::Ready(Some(Err(e)))
    }
}

/// Map an error on an open connection to the engine's classification.
pub(crate) fn classify(e: &(dyn std::error::Error + 'static)) -> TransportError {
    classify_as(e, false)
}

/// Map an error opening a connection (the connector's or the handshake's).
pub(crate) fn classify_connect(e: &(dyn std::error::Error + 'static)) -> TransportError {
    classify_as(e, true)
}

/// The classification of `e`, found by walking its causes.
fn classify_as(e: &(dyn std::error::Error + 'static), connect: bool) -> TransportError {
    let mut text = e.to_string();
    let mut source = e.source();
    let mut io_kind = (e.downcast_ref::<std::io::Error>()).map(|io| io.kind());
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        source = s.source();
    }
    let lower = text.to_ascii_lowercase();
    let kind = if lower.contains("refused by egress policy") {
        TransportErrorKind::Forbidden
    } else if connect && (io_kind == Some(std::io::ErrorKind::TimedOut) || lower.contains("timed out")) {
        TransportErrorKind::ConnectTimeout
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        TransportErrorKind::Dns
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        TransportErrorKind::Tls
    } else {
        match io_kind {
            Some(std::io::ErrorKind::ConnectionRefused) => TransportErrorKind::ConnectionRefused,
            Some(
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof,
            ) => TransportErrorKind::ConnectionReset,
            _ if lower.contains("connection closed") || lower.contains("reset") || lower.contains("incomplete") => {
                TransportErrorKind::ConnectionReset
            }
            _ => TransportErrorKind::Other,
        }
    };
    TransportError::new(kind, text)
}

/// Resolves with the system resolver, then drops addresses the egress policy refuses
/// (a public name that resolves to 169.254.169.254 is refused too).
#[derive(Clone)]
pub(crate) struct FilteringResolver {
    egress: Arc<EgressPolicy>,
}

type Resolving =
    Pin<Box<dyn std::future::Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower_service::Service<Name> for FilteringResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let egress = self.egress.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !egress.public_only || egress.is_allowed_by_name(&host) {
                return Ok(addrs.into_iter());
            }
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| egress.allows_ip(a.ip())).collect();
            if allowed.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{host} resolves only to private or reserved addresses: refused by egress policy"
                )));
            }
            Ok(allowed.into_iter())
        })
    }
}
