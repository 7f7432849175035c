//! Accepting connections and serving HTTP/1.1 (and HTTP/2 with prior knowledge) on them.
//!
//! Two ways to run, sharing one per-connection path:
//! - [`serve`] on the caller's runtime, for embedding the server in a Rust program;
//! - [`serve_on_threads`], which `gatewise serve` uses: thread-per-core. Each worker
//!   thread runs a single-threaded runtime with its own upstream connection pool, and the
//!   calling thread accepts and hands each connection to the least busy worker. A request
//!   then lives on one thread from the client's socket to the upstream's and back, with no
//!   cross-thread wake-ups; on a loaded 2-core machine that is a large share of a proxy's
//!   cost.
//!
//! Both stop accepting when `shutdown` resolves, then let in-flight requests finish
//! (idle keep-alive connections are closed) before returning.
//!
//! Every connection passes the server's [`super::ConnectionGate`], and must bring its
//! first request within the header-read timeout: hyper's own timeout starts only once a
//! connection has shown which HTTP version it speaks, so a client that sends nothing, or
//! only the HTTP/2 preface, would otherwise hold its socket forever.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Admission, AppState};
use crate::error::HttpError;

/// Serve on the caller's runtime until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let builder = connection_builder(&state);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => serve_connection(&builder, stream, state.clone(), &graceful, ()),
                Err(e) => accept_failed(e).await,
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    state.sessions.close_all().await;
    graceful.shutdown().await;
    Ok(())
}

/// Thread-per-core: one worker thread per entry of `workers` (each state should carry an
/// engine over its own connection pool), connections accepted on the calling thread.
/// Blocks until `shutdown` resolves and every worker has finished its in-flight requests.
pub fn serve_on_threads(
    listener: std::net::TcpListener,
    workers: Vec<AppState>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HttpError> {
    let mut handles = Vec::with_capacity(workers.len());
    let mut threads = Vec::with_capacity(workers.len());
    for (index, state) in workers.into_iter().enumerate() {
        let (sender, connections) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicUsize::new(0));
        let runtime = single_thread_runtime()?;
        threads.push(
            std::thread::Builder::new()
                .name(format!("gatewise-worker-{index}"))
                .spawn(move || runtime.block_on(worker(connections, Arc::new(state))))?,
        );
        handles.push(WorkerHandle { sender, open });
    }
    let acceptor = single_thread_runtime()?;
    let accepted: Result<(), HttpError> = acceptor.block_on(async {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let mut shutdown = std::pin::pin!(shutdown);
        let mut turn = 0usize;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        turn = turn.wrapping_add(1);
                        dispatch(&handles, turn, stream);
                    }
                    Err(e) => accept_failed(e).await,
                },
                () = &mut shutdown => return Ok(()),
            }
        }
    });
    // Closing the channels tells the workers to drain and stop.
    drop(handles);
    for thread in threads {
        if thread.join().is_err() {
            tracing::error!("a worker thread panicked");
        }
    }
    accepted
}

/// A worker thread as the acceptor sees it: where to send connections, and how many it
/// has open.
struct WorkerHandle {
    sender: mpsc::UnboundedSender<(std::net::TcpStream, OpenConnection)>,
    open: Arc<AtomicUsize>,
}

/// Counts as one open connection of a worker until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Hand a connection to the worker with the fewest open ones; `turn` rotates where the
/// search starts, so ties are spread rather than all landing on worker 0.
fn dispatch(workers: &[WorkerHandle], turn: usize, stream: TcpStream) {
    let open: Vec<usize> = workers.iter().map(|w| w.open.load(Ordering::Relaxed)).collect();
    let Some(worker) = least_busy(&open, turn).map(|i| &workers[i]) else {
        return;
    };
    // The worker's own runtime must register the socket, so it travels as a std stream.
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(e) => return tracing::warn!("dropping an accepted connection: {e}"),
    };
    worker.open.fetch_add(1, Ordering::Relaxed);
    let open = OpenConnection(worker.open.clone());
    if worker.sender.send((stream, open)).is_err() {
        tracing::error!("a worker thread has stopped; connection dropped");
    }
}

/// The index of the smallest count, searching from `turn` (mod the length) onwards.
fn least_busy(open: &[usize], turn: usize) -> Option<usize> {
    (0..open.len()).map(|i| (turn + i) % open.len()).min_by_key(|&i| open[i])
}

/// A worker thread's loop: serve what the acceptor sends until it stops sending, then
/// finish in-flight requests.
async fn worker(mut connections: mpsc::UnboundedReceiver<(std::net::TcpStream, OpenConnection)>, state: Arc<AppState>) {
    let builder = connection_builder(&state);
    let graceful = GracefulShutdown::new();
    while let Some((stream, open)) = connections.recv().await {
        match TcpStream::from_std(stream) {
            Ok(stream) => serve_connection(&builder, stream, state.clone(), &graceful, open),
            Err(e) => tracing::warn!("dropping an accepted connection: {e}"),
        }
    }
    state.sessions.close_all().await;
    graceful.shutdown().await;
}

/// HTTP/1.1, and HTTP/2 for clients that start with its preface (pinged when idle, so
/// a peer that has gone away is noticed).
fn connection_builder(state: &AppState) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(state.header_read_timeout);
    if let Some(timeout) = state.header_read_timeout {
        builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(timeout)).keep_alive_timeout(timeout);
    }
    builder
}

/// Serve one connection on a task of the current runtime. `guard` is dropped when the
/// connection ends.
fn serve_connection(
    builder: &Builder<TokioExecutor>,
    stream: TcpStream,
    state: Arc<AppState>,
    graceful: &GracefulShutdown,
    guard: impl Send + 'static,
) {
    let (admission, admitted) = state.connections.admit();
    if admission == Admission::Refused {
        tracing::warn!("over the connection limit ({}): connection closed", state.connections.max());
        return;
    }
    let busy = admission == Admission::Busy;
    // Answers are small writes; Nagle would hold them back waiting for an ACK.
    let _ = stream.set_nodelay(true);
    let first_request_within = state.header_read_timeout;
    let seen = Arc::new(AtomicBool::new(false));
    let seen_by_service = seen.clone();
    // Sessions relayed off this connection (WebSockets) hold a sender each; the connection
    // counts until the last is dropped (see `realtime::ConnectionHold`).
    let (hold, mut holds_released) = mpsc::channel::<()>(1);
    let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        seen_by_service.store(true, Ordering::Relaxed);
        if super::realtime::asks_for_websocket(request.headers()) {
            request.extensions_mut().insert(super::realtime::ConnectionHold { _released_on_drop: hold.clone() });
        }
        let state = state.clone();
        async move {
            if busy {
                return Ok::<_, Infallible>(super::busy(&request));
            }
            Ok::<_, Infallible>(super::handle(&state, request).await)
        }
    });
    let connection = graceful.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned());
    tokio::spawn(async move {
        let ended = match first_request_within {
            Some(limit) => tokio::select! {
                ended = connection => Some(ended),
                () = first_request_missing(limit, &seen) => None,
            },
            None => Some(connection.await),
        };
        match ended {
            Some(Err(e)) => tracing::trace!("connection ended with an error: {e}"),
            // Dropping the connection closed it.
            None => tracing::trace!("connection closed: no request within the header-read timeout"),
            Some(Ok(())) => {}
        }
        // Every sender is gone once the connection and the sessions it upgraded to are.
        let _ = holds_released.recv().await;
        drop((guard, admitted));
    });
}

/// Resolves when `limit` has passed without a first request on the connection; never, once
/// one has come.
async fn first_request_missing(limit: Duration, seen: &AtomicBool) {
    tokio::time::sleep(limit).await;
    if seen.load(Ordering::Relaxed) {
        std::future::pending::<()>().await;
    }
}

/// Connection-level accept errors (the peer gave up) are skipped; others (out of file
/// descriptors, say) would fail again at once, so wait a moment first.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn single_thread_runtime() -> Result<tokio::runtime::Runtime, HttpError> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
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

#[cfg(test)]
mod tests {
    use super::least_busy;

    #[test]
    fn connections_go_to_the_least_busy_worker_and_ties_rotate() {
        assert_eq!(least_busy(&[3, 1, 2], 0), Some(1));
        assert_eq!(least_busy(&[3, 1, 2], 7), Some(1));
        let firsts: Vec<_> = (0..4).map(|turn| least_busy(&[0, 0], turn)).collect();
        assert_eq!(firsts, [Some(0), Some(1), Some(0), Some(1)]);
        assert_eq!(least_busy(&[], 0), None);
    }
}
