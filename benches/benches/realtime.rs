//! What relaying a realtime session costs (issue 15): one event's round trip over
//! loopback WebSockets, caller → mock realtime provider → caller, straight to the mock
//! (`realtime_round_trip_direct`) and through the real server's relay
//! (`realtime_round_trip_relayed`, two WebSocket hops more). The difference is what the
//! gateway adds per message each way, framing both sides of it included.
//!
//! The event is a 1 KiB `input_audio_buffer.append`-like text message; the mock echoes it
//! inside a small envelope.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::{SinkExt, StreamExt};
use gateway_tests::mock::{GatewayOptions, start_gateway};
use gateway_tests::realtime_mock::MockRealtime;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = WebSocketStream<TcpStream>;

async fn open(origin: &str, headers: &[(&str, String)]) -> Socket {
    let host = origin.trim_start_matches("http://");
    let mut request = format!("ws://{host}/v1/realtime?model=gpt-realtime").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    let stream = TcpStream::connect(host).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await.unwrap();
    // session.created
    socket.next().await.unwrap().unwrap();
    socket
}

async fn round_trips(socket: &mut Socket, event: &str, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        socket.send(Message::text(event)).await.unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert!(matches!(echoed, Message::Text(_)));
    }
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (mock, gateway) =
        runtime.block_on(async { (MockRealtime::start().await, start_gateway(GatewayOptions::default()).await) });
    let mock_origin = mock.v1().trim_end_matches("/v1").to_owned();
    let audio = "A".repeat(1000);
    let event = format!(r#"{{"type":"input_audio_buffer.append","audio":"{audio}"}}"#);

    let mut direct = runtime.block_on(open(&mock_origin, &[]));
    c.bench_function("realtime_round_trip_direct", |b| {
        b.iter_custom(|n| runtime.block_on(round_trips(&mut direct, &event, n)))
    });

    let headers = [
        ("x-portkey-provider", "openai".to_owned()),
        ("x-portkey-custom-host", mock.v1()),
        ("authorization", "Bearer sk-bench".to_owned()),
    ];
    let mut relayed = runtime.block_on(open(&gateway.base, &headers));
    c.bench_function("realtime_round_trip_relayed", |b| {
        b.iter_custom(|n| runtime.block_on(round_trips(&mut relayed, &event, n)))
    });
}

criterion_group!(realtime, benches);
criterion_main!(realtime);
