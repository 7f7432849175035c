//! The engine's [`Transport`] over reqwest and tokio.
//!
//! Pooled connections (HTTP/2 where the upstream negotiates it), a connect timeout, no
//! whole-request timeout (streams may run long) but an idle timeout between body reads,
//! no redirects (a gateway that follows redirects is an SSRF hole), and connection
//! failures classified so the engine can retry and fall back.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use gateway_core::engine::{HttpResponse, Transport, TransportError, TransportErrorKind};
use gateway_core::providers::{CredentialRequest, HttpRequest};

use crate::credentials::TokenCache;
use crate::egress::EgressPolicy;
use crate::error::HttpError;

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

/// reqwest + tokio transport.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    egress: Arc<EgressPolicy>,
    tokens: Arc<TokenCache>,
}

impl ReqwestTransport {
    /// Build a transport.
    pub fn new(options: TransportOptions) -> Result<Self, HttpError> {
        let egress = Arc::new(options.egress);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.idle_timeout)
            .pool_max_idle_per_host(options.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .http2_adaptive_window(true)
            .redirect(reqwest::redirect::Policy::none());
        if egress.public_only {
            builder = builder.dns_resolver(Arc::new(FilteringResolver { egress: egress.clone() }));
        }
        let client = builder.build().map_err(|e| HttpError::Transport(e.to_string()))?;
        Ok(Self { client, egress, tokens: Arc::new(TokenCache::default()) })
    }
}

#[async_trait::async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = reqwest::Url::parse(&request.url).map_err(|e| {
            TransportError::new(TransportErrorKind::Forbidden, format!("invalid upstream URL {}: {e}", request.url))
        })?;
        if let Some(host) = url.host_str() {
            self.egress.check_host(host).map_err(|why| TransportError::new(TransportErrorKind::Forbidden, why))?;
        }
        let response = self
            .client
            .request(request.method, url)
            .headers(request.headers)
            .body(request.body)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes_stream().map_err(|e| classify(&e));
        Ok(HttpResponse { status, headers, body: Box::pin(body) })
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    async fn credential(&self, request: &CredentialRequest) -> Result<String, TransportError> {
        match request {
            CredentialRequest::GoogleServiceAccount { account, scope } => {
                self.tokens.google_token(&self.client, account, scope).await
            }
        }
    }
}

/// Map a reqwest error to the engine's classification by walking its causes.
fn classify(e: &reqwest::Error) -> TransportError {
    let mut text = e.to_string();
    let mut source = e.source();
    let mut io_kind = None;
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
    } else if e.is_timeout() && e.is_connect() {
        TransportErrorKind::ConnectTimeout
    } else if e.is_timeout() {
        TransportErrorKind::IdleTimeout
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
            _ if lower.contains("connection closed") || lower.contains("reset") => TransportErrorKind::ConnectionReset,
            _ => TransportErrorKind::Other,
        }
    };
    TransportError::new(kind, text)
}

/// Resolves with the system resolver, then drops addresses the egress policy refuses.
struct FilteringResolver {
    egress: Arc<EgressPolicy>,
}

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.egress.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let by_name = egress.is_allowed_by_name(&host);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| by_name || egress.allows_ip(a.ip())).collect();
            if allowed.is_empty() {
                let msg = format!("{host} resolves only to private or reserved addresses: refused by egress policy");
                return Err(msg.into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
