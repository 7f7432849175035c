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
//! A connection is driven by a task on the runtime that opened it, so a pool belongs to
//! one runtime ([`Pools`] keeps one per runtime): a connection handed to a request on
//! another runtime would wait for that one to be driven (a current-thread runtime is
//! driven only inside its `block_on`). The server's worker threads and the Python binding's
//! callers each run a current-thread runtime, so each gets a pool of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_service::Service;

use crate::transport::Connector;

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
struct Key {
    https: bool,
    authority: Authority,
}

/// The connections to one host.
struct Host {
    /// The `Host` header an HTTP/1.1 request to it carries.
    header: Option<HeaderValue>,
    /// Idle HTTP/1.1 connections with the time each was returned; the most recent last
    /// (reused first: its socket is the warmest, and the oldest expire unused).
    idle: Vec<(Instant, http1::SendRequest<Body>)>,
    /// The host's HTTP/2 connection, shared by every request.
    shared: Option<http2::SendRequest<Body>>,
}

impl Host {
    fn new(key: &Key) -> Self {
        Self { header: host_header(key), idle: Vec::new(), shared: None }
    }

    fn is_dead(&self, now: Instant) -> bool {
        self.shared.as_ref().is_none_or(|s| s.is_closed())
            && self.idle.iter().all(|(since, s)| s.is_closed() || now.duration_since(*since) > IDLE_EXPIRY)
    }
}

/// A connection taken from the pool or opened for one request.
enum Lent {
    Http1 { sender: http1::SendRequest<Body>, reused: bool },
    Http2(http2::SendRequest<Body>),
}

/// Why a request failed: opening a connection, or on the connection.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Connecting (DNS, TCP, TLS, the egress check) or the HTTP handshake failed.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The request or its answer failed on an open connection.
    Http(hyper::Error),
}

/// An HTTP/1.1 connection to give back once its answer has been read to the end.
pub(crate) struct Returnable {
    pool: Arc<Pool>,
    key: Key,
    sender: http1::SendRequest<Body>,
}

impl Returnable {
    /// Back to the pool: the answer was read to the end, so the connection is free.
    pub(crate) fn give_back(self) {
        self.pool.put(self.key, self.sender);
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
        // A runtime that has gone dropped its connections' tasks: its pool holds only
        // closed connections, and goes when another runtime comes.
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

    /// Send `request` to `uri` (absolute) on a pooled connection or a new one. An HTTP/1.1
    /// answer comes with the connection to give back when its body has been read.
    pub(crate) async fn send(
        self: &Arc<Self>,
        uri: Uri,
        mut request: Request<Body>,
    ) -> Result<(Response<Incoming>, Option<Returnable>), SendError> {
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
                *request.uri_mut() = uri;
                sender.ready().await.map_err(SendError::Http)?;
                Ok((sender.send_request(request).await.map_err(SendError::Http)?, None))
            }
            Lent::Http1 { sender, reused } => {
                set_origin_form(&uri, host.or_else(|| host_header(&key)), &mut request);
                match self.send_http1(&key, sender, request).await {
                    Ok(sent) => Ok(sent),
                    // The upstream closed a kept-alive connection as it was reused, before the
                    // request went out: once more, on a connection of its own.
                    Err(Http1Failure::Unsent(request, _)) if reused => {
                        let Lent::Http1 { sender, .. } = Box::pin(self.connect(&key, &uri)).await? else {
                            return Err(SendError::Connect(
                                "the upstream switched to HTTP/2 between two requests".into(),
                            ));
                        };
                        Box::pin(self.send_http1(&key, sender, *request)).await.map_err(Http1Failure::into_error)
                    }
                    Err(failure) => Err(failure.into_error()),
                }
            }
        }
    }

    async fn send_http1(
        self: &Arc<Self>,
        key: &Key,
        mut sender: http1::SendRequest<Body>,
        request: Request<Body>,
    ) -> Result<(Response<Incoming>, Option<Returnable>), Http1Failure> {
        if let Err(e) = sender.ready().await {
            return Err(Http1Failure::Unsent(Box::new(request), e));
        }
        match sender.try_send_request(request).await {
            Ok(response) => Ok((response, Some(Returnable { pool: self.clone(), key: key.clone(), sender }))),
            Err(mut e) => match e.take_message() {
                Some(request) => Err(Http1Failure::Unsent(Box::new(request), e.into_error())),
                None => Err(Http1Failure::Failed(e.into_error())),
            },
        }
    }

    /// Whether every pooled connection has closed or expired.
    fn is_dead(&self, now: Instant) -> bool {
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner).values().all(|host| host.is_dead(now))
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
        while let Some((since, sender)) = host.idle.pop() {
            if !sender.is_closed() && now.duration_since(since) <= IDLE_EXPIRY {
                return (Some(Lent::Http1 { sender, reused: true }), host.header.clone());
            }
        }
        (None, host.header.clone())
    }

    /// An HTTP/1.1 connection whose answer has been read: idle again.
    fn put(&self, key: Key, sender: http1::SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(host) = self.host_entry(&mut hosts, key) else { return };
        if host.idle.len() >= self.max_idle_per_host {
            // The oldest goes: it is the likeliest to have been closed by the upstream.
            if self.max_idle_per_host == 0 {
                return;
            }
            host.idle.remove(0);
        }
        host.idle.push((Instant::now(), sender));
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
        let (sender, connection) =
            http1::Builder::new().handshake(io).await.map_err(|e| SendError::Connect(Box::new(e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!("upstream connection ended: {e}");
            }
        });
        Ok(Lent::Http1 { sender, reused: false })
    }
}

/// How an HTTP/1.1 request failed.
enum Http1Failure {
    /// Before it was sent (the connection had closed): it can go again on another.
    /// (Boxed: a failure is rare, and this travels in every send's result.)
    Unsent(Box<Request<Body>>, hyper::Error),
    /// After it was sent, or while its answer was read.
    Failed(hyper::Error),
}

impl Http1Failure {
    fn into_error(self) -> SendError {
        match self {
            Self::Unsent(_, e) | Self::Failed(e) => SendError::Http(e),
        }
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

/// HTTP/1.1 wants the origin form (`/v1/chat/completions`) and a `Host` header.
fn set_origin_form(uri: &Uri, host: Option<HeaderValue>, request: &mut Request<Body>) {
    if let Some(host) = host
        && !request.headers().contains_key(HOST)
    {
        request.headers_mut().insert(HOST, host);
    }
    let origin = uri.path_and_query().map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
    *request.uri_mut() = origin;
}
