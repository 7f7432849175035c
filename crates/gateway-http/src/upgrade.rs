//! Opening an upstream WebSocket (a realtime session): the HTTP/1.1 upgrade handshake on a
//! connection of its own, through the transport's connector, so the egress rules, the
//! connect timeout and TLS verification are the same as for every other request.
//!
//! Not through the pool: an upgraded connection never returns to it, and the pool's TLS
//! connections may negotiate HTTP/2, where this upgrade does not exist.

use std::time::Duration;

use bytes::Bytes;
use gateway_core::engine::{HttpResponse, TransportError, TransportErrorKind, Upgraded};
use gateway_core::providers::HttpRequest;
use http::header::{CONNECTION, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION};
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tower_service::Service;

use crate::transport::{Connector, classify, classify_connect, idle_limited};

/// The connection a realtime session's upstream side runs on, as the server takes it
/// back out of [`Upgraded`].
pub type UpstreamSocket = TokioIo<hyper::upgrade::Upgraded>;

/// Send `request` (which asks for `upgrade: websocket`) as a WebSocket handshake. A `101`
/// answer comes back with the connection in [`HttpResponse::upgraded`]; any other answer
/// comes back as it is, for the engine to retry or fall back on.
pub(crate) async fn open(
    connector: &Connector,
    uri: http::Uri,
    request: HttpRequest,
    idle: Duration,
) -> Result<HttpResponse, TransportError> {
    let mut connector = connector.clone();
    let io = connector.call(uri.clone()).await.map_err(|e| classify_connect(&*e))?;
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| classify_connect(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::trace!("upstream WebSocket handshake connection: {e}");
        }
    });
    let key = websocket_key()?;
    let mut outgoing = http::Request::new(Full::new(request.body));
    *outgoing.method_mut() = request.method;
    // The origin form (`/v1/realtime?model=...`): this connection speaks to one host.
    *outgoing.uri_mut() = uri.path_and_query().map_or("/", |p| p.as_str()).parse().unwrap_or_default();
    let mut headers = request.headers;
    if let Some(host) = uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
        headers.insert(HOST, host);
    }
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    headers.insert(SEC_WEBSOCKET_KEY, key.clone());
    *outgoing.headers_mut() = headers;
    let mut response = sender.send_request(outgoing).await.map_err(|e| classify(&e))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = response.into_parts();
        let body = futures::StreamExt::map(body.into_data_stream(), |chunk| chunk.map_err(|e| classify(&e)));
        return Ok(HttpResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: idle_limited(body, idle),
            upgraded: None,
        });
    }
    let expected = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    if response.headers().get(SEC_WEBSOCKET_ACCEPT).is_none_or(|accept| accept.as_bytes() != expected.as_bytes()) {
        return Err(TransportError::new(
            TransportErrorKind::Other,
            "the upstream switched protocols without a valid Sec-WebSocket-Accept",
        ));
    }
    let upgraded = hyper::upgrade::on(&mut response).await.map_err(|e| classify(&e))?;
    Ok(HttpResponse {
        status: 101,
        headers: response.headers().clone(),
        body: Box::pin(futures::stream::empty()),
        upgraded: Some(Upgraded::new(UpstreamSocket::new(upgraded))),
    })
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64.
fn websocket_key() -> Result<HeaderValue, TransportError> {
    use base64::Engine as _;
    let mut nonce = [0u8; 16];
    aws_lc_rs::rand::fill(&mut nonce)
        .map_err(|_| TransportError::new(TransportErrorKind::Other, "no randomness for a WebSocket key"))?;
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    HeaderValue::from_str(&key).map_err(|_| TransportError::new(TransportErrorKind::Other, "bad WebSocket key"))
}
