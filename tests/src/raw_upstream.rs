//! A bare HTTP/1.1 upstream for the transport's connection tests: a TCP listener on
//! loopback, on a thread and runtime of its own (so the gateway's runtime never drives it),
//! that counts the connections it accepts and serves each with the test's own code.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;

/// Listen on a free loopback port and hand every accepted connection to `serve`; the
/// port, and the number of connections accepted so far.
pub fn spawn<F, Fut>(serve: F) -> (u16, Arc<AtomicUsize>)
where
    F: Fn(BufReader<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let connections = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = connections.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(BufReader::new(socket)));
            }
        });
    });
    (port, connections)
}

/// The next request on the connection: its head (request line and headers, without the
/// blank line) and its `content-length` body; `None` once the client has closed it.
pub async fn read_request(socket: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        head.push_str(&line);
    }
    let mut body = vec![0; length];
    socket.read_exact(&mut body).await.unwrap();
    Some((head, body))
}
