//! Realtime sessions: `GET /v1/realtime` upgraded to a WebSocket.
//!
//! The caller's handshake is checked first; the engine then routes the upstream handshake
//! like any request (configs, retries on its status, fallbacks, limits) and answers with
//! the upstream connection. The caller gets `101` with the route headers, and the session
//! is relayed message by message: text and binary messages pass as they are, each side's
//! pings are answered by its own framing, a close on either side closes the other. The
//! provider's `response.done` events are shown to the session's meter, and the session's
//! record (its length, usage, cost) is logged when it ends.

use futures::{SinkExt, StreamExt};
use gateway_core::engine::{Answer, Session};
use gateway_core::providers::{INSECURE_KEY_PROTOCOL, offered_subprotocols};
use gateway_core::{ErrorCode, GatewayError, Response, ResponseBody};
use http::header::{
    AUTHORIZATION, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::protocol;
use crate::upgrade::UpstreamSocket;

/// The largest message or frame relayed either way. OpenAI takes audio appends of up to
/// 15 MiB; anything larger closes the session (1009) rather than being buffered.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Keeps the caller's connection counted against the server's connection cap while its
/// session lasts: hyper hands an upgraded connection over and forgets it, so the
/// connection's task waits until every hold it gave out is dropped.
#[derive(Clone, Debug)]
pub(super) struct ConnectionHold {
    /// Never sent on: only its drop matters.
    pub(super) _released_on_drop: tokio::sync::mpsc::Sender<()>,
}

/// The sessions a server is relaying: how many, and the signal that closes them when the
/// server shuts down (HTTP connections are drained by hyper; an upgraded one is ours).
#[derive(Debug)]
pub(super) struct Sessions {
    closing: tokio::sync::watch::Sender<bool>,
    open: AtomicUsize,
}

impl Default for Sessions {
    fn default() -> Self {
        Self { closing: tokio::sync::watch::Sender::new(false), open: AtomicUsize::new(0) }
    }
}

/// How long a shutting-down server waits for its sessions to say goodbye.
const CLOSING_GRACE: Duration = Duration::from_secs(5);

impl Sessions {
    /// Close every session (1001, going away), now and any that opens from here on, and
    /// wait for them to have closed, at most [`CLOSING_GRACE`].
    pub(super) async fn close_all(&self) {
        self.closing.send_replace(true);
        let deadline = tokio::time::Instant::now() + CLOSING_GRACE;
        while self.open.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Counts one session as open until dropped.
struct OpenSession<'s>(&'s Sessions);

impl<'s> OpenSession<'s> {
    fn new(sessions: &'s Sessions) -> Self {
        sessions.open.fetch_add(1, Ordering::AcqRel);
        Self(sessions)
    }
}

impl Drop for OpenSession<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a request asks to switch to a WebSocket.
pub(super) fn asks_for_websocket(headers: &HeaderMap) -> bool {
    headers.get(UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// A caller's valid WebSocket handshake, taken out of its request.
pub(super) struct Handshake {
    accept: HeaderValue,
    offered: Vec<String>,
    client: OnUpgrade,
    hold: Option<ConnectionHold>,
}

impl Handshake {
    /// The handshake of a realtime request (`None` for any other request), checked as
    /// RFC 6455 asks. A browser's key sent as a subprotocol becomes its bearer token.
    pub(super) fn take(parts: &mut http::request::Parts) -> Result<Option<Self>, GatewayError> {
        if parts.uri.path() != "/v1/realtime" || parts.method != http::Method::GET {
            return Ok(None);
        }
        let headers = &parts.headers;
        let upgrade_token =
            headers.get(CONNECTION).and_then(|v| v.to_str().ok()).is_some_and(|v| has_token(v, "upgrade"));
        if !asks_for_websocket(headers) || !upgrade_token {
            return Err(protocol::not_relayed());
        }
        if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
            return Err(
                GatewayError::request("sec-websocket-version", "only WebSocket version 13 is spoken").with_status(426)
            );
        }
        let key = headers.get(SEC_WEBSOCKET_KEY).map(HeaderValue::as_bytes).unwrap_or_default();
        if !valid_key(key) {
            return Err(GatewayError::request("sec-websocket-key", "`sec-websocket-key` must be 16 bytes in base64"));
        }
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key);
        let accept =
            HeaderValue::from_str(&accept).map_err(|_| GatewayError::request("sec-websocket-key", "bad key"))?;
        // HTTP/2 has no upgrade: such a request never gets here with one.
        let client = parts.extensions.remove::<OnUpgrade>().ok_or_else(protocol::not_relayed)?;
        let offered: Vec<String> = offered_subprotocols(&parts.headers).map(str::to_owned).collect();
        if !parts.headers.contains_key(AUTHORIZATION)
            && let Some(key) = offered.iter().find_map(|p| p.strip_prefix(INSECURE_KEY_PROTOCOL))
            && let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {key}"))
        {
            parts.headers.insert(AUTHORIZATION, bearer);
        }
        let hold = parts.extensions.remove::<ConnectionHold>();
        Ok(Some(Self { accept, offered, client, hold }))
    }

    /// The caller's answer: `101` and a relayed session when the engine opened one, else
    /// the engine's answer (an error) as for any request.
    pub(super) fn answer(self, response: Response, sessions: &Arc<Sessions>) -> super::HttpResponse {
        let Response { status, mut headers, result, route } = response;
        let session = match result {
            Ok(Answer { body: ResponseBody::Upgraded(session), .. }) => session,
            result => {
                let response = Response { status, headers, result, route };
                return super::into_hyper(protocol::render(response, gateway_core::Dialect::OpenAi));
            }
        };
        let chosen = headers.get(SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).map(str::to_owned);
        for name in [SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_EXTENSIONS] {
            headers.remove(name);
        }
        protocol::route_headers(&route, &mut headers);
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(SEC_WEBSOCKET_ACCEPT, self.accept);
        // Only a subprotocol the caller offered may be named back to it.
        if let Some(chosen) = chosen.filter(|c| self.offered.contains(c))
            && let Ok(value) = HeaderValue::from_str(&chosen)
        {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
        tokio::spawn(relay(self.client, session, self.hold, sessions.clone()));
        let mut out = super::HttpResponse::new(axum::body::Body::empty());
        *out.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        *out.headers_mut() = headers;
        out
    }
}

/// Relay one session until either side closes or breaks, then end its record.
async fn relay(client: OnUpgrade, mut session: Box<Session>, hold: Option<ConnectionHold>, sessions: Arc<Sessions>) {
    let _hold = hold;
    let _open = OpenSession::new(&sessions);
    let closing = sessions.closing.subscribe();
    let upstream = match session.take_upstream().map(|u| u.downcast::<UpstreamSocket>()) {
        Some(Ok(upstream)) => upstream,
        _ => {
            let e = GatewayError::new(ErrorCode::Internal, "the upstream connection is not the server's transport's");
            return session.end(Some(&e));
        }
    };
    let client = match client.await {
        Ok(client) => client,
        Err(e) => {
            let e = GatewayError::request("", format!("the caller's connection did not switch protocols: {e}"));
            return session.end(Some(&e));
        }
    };
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE_BYTES)).max_frame_size(Some(MAX_MESSAGE_BYTES));
    let client = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, Some(config)).await;
    let upstream = WebSocketStream::from_raw_socket(upstream, Role::Client, Some(config)).await;
    let ended = pump(client, upstream, &mut session, closing).await;
    session.end(ended.err().as_ref());
}

/// Messages both ways until the session is over; an error says why it broke.
async fn pump<C, U>(
    mut client: WebSocketStream<C>,
    mut upstream: WebSocketStream<U>,
    session: &mut Session,
    mut closing: tokio::sync::watch::Receiver<bool>,
) -> Result<(), GatewayError>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        tokio::select! {
            // The server is shutting down (or was, before this session got going).
            // (The guard `wait_for` answers with is dropped before the closes are awaited.)
            () = async { drop(closing.wait_for(|closing| *closing).await) } => {
                let _ = client.close(Some(close(CloseCode::Away, "the gateway is shutting down"))).await;
                let _ = upstream.close(None).await;
                return Ok(());
            }
            from_client = client.next() => match from_client {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    if let Err(e) = upstream.send(message).await {
                        let _ = client.close(Some(close(CloseCode::Error, "the upstream connection broke"))).await;
                        return Err(upstream_broke(&e));
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let _ = upstream.close(frame).await;
                    let _ = client.close(None).await;
                    return Ok(());
                }
                // Pings and pongs are each side's own: its framing answers them.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let code = if matches!(e, WsError::Capacity(_)) { CloseCode::Size } else { CloseCode::Protocol };
                    let _ = client.close(Some(close(code, "message refused"))).await;
                    let _ = upstream.close(None).await;
                    return Err(GatewayError::request("", format!("the caller's WebSocket failed: {e}")));
                }
                None => {
                    let _ = upstream.close(None).await;
                    return Ok(());
                }
            },
            from_upstream = upstream.next() => match from_upstream {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    if let Message::Text(text) = &message {
                        session.provider_event(text.as_bytes());
                    }
                    if client.send(message).await.is_err() {
                        // The caller went away: nothing to tell it.
                        let _ = upstream.close(None).await;
                        return Ok(());
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let _ = client.close(frame).await;
                    return Ok(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = client.close(Some(close(CloseCode::Error, "the upstream connection broke"))).await;
                    return Err(upstream_broke(&e));
                }
                None => {
                    let _ = client.close(Some(close(CloseCode::Away, "the upstream closed the connection"))).await;
                    return Ok(());
                }
            },
        }
    }
}

fn close(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame { code, reason: reason.into() }
}

fn upstream_broke(e: &WsError) -> GatewayError {
    GatewayError::new(ErrorCode::UpstreamConnectionError, format!("the upstream WebSocket failed: {e}"))
}

/// Whether a comma-separated header value holds `token` (case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// RFC 6455: the key is 16 bytes, base64-encoded (24 characters).
fn valid_key(key: &[u8]) -> bool {
    use base64::Engine as _;
    key.len() == 24 && base64::engine::general_purpose::STANDARD.decode(key).is_ok_and(|k| k.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_connection_tokens_are_checked_as_rfc_6455_asks() {
        assert!(valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZQ"), "not 24 characters");
        assert!(!valid_key(b"dGhlIHNhbXBsZSBub25jZSE="), "17 bytes");
        assert!(has_token("keep-alive, Upgrade", "upgrade"));
        assert!(!has_token("keep-alive", "upgrade"));
    }
}
