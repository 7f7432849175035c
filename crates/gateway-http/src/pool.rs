//! The upstream connection pool: kept-alive HTTP/1.1 connections and shared HTTP/2
//! connections, per scheme and authority.
//!
//! Why not hyper-util's pooled client: on the load benchmark its checkout (a SipHash of the
//! key per lookup, a formatted string, a task spawned per request to watch the connection
//! become idle again) was a sixth of the gateway's instructions per request. This pool is
//! what a gateway needs and no more: a connection is lent to one request at a time
//! (HTTP/1.1) or shared (HTTP/2), an HTTP/1.1 connection comes back when its answer has
//! been read to the end, idle connections expire, and a request that a reused connection
//! could not send (the upstream had closed it) is sent once more on a new one.
//!
//! HTTP/1.1 connections are our own ([`crate::h1`]), driven by the request that uses them;
//! HTTP/2 connections are hyper's, driven by a task. Either way a connection's socket is
//! registered with the runtime that opened it, so a pool belongs to one runtime ([`Pools`]
//! keeps one per runtime): a connection handed to a request on another runtime would wait
//! for that one to be driven (a current-thread runtime is driven only inside its
//! `block_on`). The server's worker threads and the Python binding's callers each run a
//! current-thread runtime, so each gets a pool of its own.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use gateway_core::engine::TransportError;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_service::Service;

use crate::h1;
use crate::transport::{Connector, classify};

/// How long an idle connection is kept.
const IDLE_EXPIRY: Duration = Duration::from_secs(90);

/// Most hosts with pooled connections. Custom hosts come from callers, so the map is bounded:
/// past this many, dead entries are swept and a new host's connections are not kept.
const MAX_HOSTS: usize = 1024;

type Body = Full<Bytes>;
type Hosts = HashMap<Key, Host, foldhash::fast::RandomState>;

/// Where a connection goes: scheme and authority (`Authority` compares host names without
/// case, as DNS does).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    https: bool,
    authority: Authority,
}

/// The connections to one host.
struct Host {
    /// The `Host` header an HTTP/1.1 request to it carries.
    header: Option<HeaderValue>,
    /// Idle HTTP/1.1 connections with the time each was returned; the most recent last
    /// (reused first: its socket is the warmest, and the oldest expire unused).
    idle: Vec<(Instant, h1::Connection)>,
    /// The host's HTTP/2 connection, shared by every request.
    shared: Option<http2::SendRequest<Body>>,
}

impl Host {
    fn new(key: &Key) -> Self {
        Self { header: host_header(key), idle: Vec::new(), shared: None }
    }

    fn is_dead(&mut self, now: Instant) -> bool {
        self.shared.as_ref().is_none_or(|s| s.is_closed())
            && self.idle.iter_mut().all(|(since, c)| now.duration_since(*since) > IDLE_EXPIRY || c.seen_closed())
    }
}

/// A connection taken from the pool or opened for one request.
enum Lent {
    Http1 { connection: h1::Connection, reused: bool },
    Http2(http2::SendRequest<Body>),
}

/// Why a request failed: opening a connection, or on the connection.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Connecting (DNS, TCP, TLS, the egress check) or the HTTP handshake failed.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The request or its answer failed on an open connection.
    Failed(TransportError),
}

/// An upstream's answer whose head has arrived.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: AnswerBody,
}

/// An answer's body. An HTTP/1.1 connection goes back to the pool when its answer has been
/// read to the end (dropped early, the connection goes with it: its unread rest would be in
/// the way).
pub(crate) enum AnswerBody {
    Http1 { body: h1::Body, back_to: Option<(Arc<Pool>, Key)> },
    Http2(BodyDataStream<Incoming>),
}

impl Stream for AnswerBody {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Self::Http1 { body, back_to } => match body.poll_next_unpin(cx) {
                Poll::Ready(None) => {
                    if let (Some((pool, key)), Some(connection)) = (back_to.take(), body.reusable()) {
                        pool.put(key, connection);
                    }
                    Poll::Ready(None)
                }
                Poll::Ready(Some(item)) => Poll::Ready(Some(item.map_err(|e| classify(&e)))),
                Poll::Pending => Poll::Pending,
            },
            Self::Http2(body) => body.poll_next_unpin(cx).map(|item| item.map(|chunk| chunk.map_err(|e| classify(&e)))),
        }
    }
}

/// A pool per tokio runtime.
pub(crate) struct Pools {
    connector: Connector,
    max_idle_per_host: usize,
    /// Few entries (a runtime per worker or calling thread), so a list.
    by_runtime: Mutex<Vec<(Option<tokio::runtime::Id>, Arc<Pool>)>>,
}

impl Pools {
    pub(crate) fn new(connector: Connector, max_idle_per_host: usize) -> Self {
        Self { connector, max_idle_per_host, by_runtime: Mutex::default() }
    }

    /// The pool of the runtime this runs on.
    pub(crate) fn current(&self) -> Arc<Pool> {
        let runtime = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        let mut pools = self.by_runtime.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, pool)) = pools.iter().find(|(id, _)| *id == runtime) {
            return pool.clone();
        }
        // A runtime that has gone can no longer drive its pool's connections (they report
        // closed): the pool and its sockets go when another runtime comes.
        let now = Instant::now();
        pools.retain(|(_, pool)| !pool.is_dead(now));
        let pool = Pool::new(self.connector.clone(), self.max_idle_per_host);
        pools.push((runtime, pool.clone()));
        pool
    }
}

/// The pool of one runtime.
pub(crate) struct Pool {
    connector: Connector,
    max_idle_per_host: usize,
    /// foldhash, seeded per process: this map is read twice a request, and SipHash over
    /// the authority was a measurable share of a request's instructions.
    hosts: Mutex<Hosts>,
}

impl Pool {
    pub(crate) fn new(connector: Connector, max_idle_per_host: usize) -> Arc<Self> {
        Arc::new(Self { connector, max_idle_per_host, hosts: Mutex::default() })
    }

    /// Send a request to `uri` (absolute) on a pooled connection or a new one.
    pub(crate) async fn send(
        self: &Arc<Self>,
        uri: Uri,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, SendError> {
        let key = Key {
            https: uri.scheme() == Some(&Scheme::HTTPS),
            authority: uri.authority().cloned().ok_or_else(|| SendError::Connect("the URL has no host".into()))?,
        };
        let (lent, host) = self.take(&key);
        let lent = match lent {
            Some(lent) => lent,
            // Boxed: opening a connection (TLS, the HTTP/2 handshake) is a large future,
            // and this one is moved on every request.
            None => Box::pin(self.connect(&key, &uri)).await?,
        };
        match lent {
            Lent::Http2(mut sender) => {
                let mut request = Request::new(Full::new(body));
                *request.method_mut() = method;
                *request.headers_mut() = headers;
                *request.uri_mut() = uri;
                let failed = |e: hyper::Error| SendError::Failed(classify(&e));
                sender.ready().await.map_err(failed)?;
                let (parts, body) = sender.send_request(request).await.map_err(failed)?.into_parts();
                Ok(Answer {
                    status: parts.status,
                    headers: parts.headers,
                    body: AnswerBody::Http2(body.into_data_stream()),
                })
            }
            Lent::Http1 { connection, reused } => {
                // HTTP/1.1 wants the origin form (`/v1/chat/completions`) and a `Host` header.
                let host = host.or_else(|| host_header(&key));
                let target = uri.path_and_query().map_or("/", |p| p.as_str());
                let head = h1::RequestHead { method: &method, target, host: host.as_ref(), headers: &headers };
                let sent = match connection.send(&head, &body).await {
                    // The upstream closed a kept-alive connection as it was reused, and the
                    // request could not be written: once more, on a connection of its own.
                    Err(h1::SendFailure::Unwritten(_)) if reused => {
                        let Lent::Http1 { connection, .. } = Box::pin(self.connect(&key, &uri)).await? else {
                            return Err(SendError::Connect(
                                "the upstream switched to HTTP/2 between two requests".into(),
                            ));
                        };
                        Box::pin(connection.send(&head, &body)).await
                    }
                    sent => sent,
                };
                let answer = sent.map_err(|(h1::SendFailure::Unwritten(e) | h1::SendFailure::Failed(e))| {
                    SendError::Failed(classify(&e))
                })?;
                let back_to = Some((self.clone(), key));
                Ok(Answer {
                    status: answer.status,
                    headers: answer.headers,
                    body: AnswerBody::Http1 { body: answer.body, back_to },
                })
            }
        }
    }

    /// Whether every pooled connection has closed or expired.
    fn is_dead(&self, now: Instant) -> bool {
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner).values_mut().all(|host| host.is_dead(now))
    }

    /// A pooled connection for `key`, if a live one is idle (or shared), and the host's
    /// `Host` header if it is known.
    fn take(&self, key: &Key) -> (Option<Lent>, Option<HeaderValue>) {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(host) = hosts.get_mut(key) else { return (None, None) };
        if let Some(shared) = &host.shared {
            if !shared.is_closed() {
                return (Some(Lent::Http2(shared.clone())), None);
            }
            host.shared = None;
        }
        let now = Instant::now();
        while let Some((since, mut connection)) = host.idle.pop() {
            if now.duration_since(since) <= IDLE_EXPIRY && !connection.is_closed() {
                return (Some(Lent::Http1 { connection, reused: true }), host.header.clone());
            }
        }
        (None, host.header.clone())
    }

    /// An HTTP/1.1 connection whose answer has been read: idle again.
    fn put(&self, key: Key, connection: h1::Connection) {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(host) = self.host_entry(&mut hosts, key) else { return };
        if host.idle.len() >= self.max_idle_per_host {
            // The oldest goes: it is the likeliest to have been closed by the upstream.
            if self.max_idle_per_host == 0 {
                return;
            }
            host.idle.remove(0);
        }
        host.idle.push((Instant::now(), connection));
    }

    /// The entry for `key`, made if there is room for one more host.
    fn host_entry<'a>(&self, hosts: &'a mut Hosts, key: Key) -> Option<&'a mut Host> {
        if hosts.len() >= MAX_HOSTS && !hosts.contains_key(&key) {
            let now = Instant::now();
            hosts.retain(|_, host| !host.is_dead(now));
            if hosts.len() >= MAX_HOSTS {
                return None;
            }
        }
        Some(hosts.entry(key).or_insert_with_key(Host::new))
    }

    /// Open a connection to `uri` through the connector (egress rules, connect timeout,
    /// TLS with ALPN) and shake hands in the protocol it negotiated.
    async fn connect(&self, key: &Key, uri: &Uri) -> Result<Lent, SendError> {
        let io = self.connector.clone().call(uri.clone()).await.map_err(SendError::Connect)?;
        if io.connected().is_negotiated_h2() {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|e| SendError::Connect(Box::new(e)))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::trace!("upstream HTTP/2 connection ended: {e}");
                }
            });
            let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(host) = self.host_entry(&mut hosts, key.clone()) {
                host.shared = Some(sender.clone());
            }
            return Ok(Lent::Http2(sender));
        }
        Ok(Lent::Http1 { connection: h1::Connection::new(io), reused: false })
    }
}

/// The `Host` header for `key`: the host, and the port unless it is the scheme's default
/// (as hyper-util's client made it). Not the authority as written: it may carry
/// `user:password@`.
fn host_header(key: &Key) -> Option<HeaderValue> {
    match key.authority.port_u16() {
        Some(port) if port != if key.https { 443 } else { 80 } => {
            HeaderValue::from_str(&format!("{}:{port}", key.authority.host())).ok()
        }
        _ => HeaderValue::from_str(key.authority.host()).ok(),
    }
}
