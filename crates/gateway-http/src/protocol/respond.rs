//! Engine [`Response`] → an HTTP-shaped reply: status, passed-through upstream headers,
//! the `x-portkey-*` route headers, and a body — the answer, SSE frames, or the OpenAI
//! error JSON. The server sends it; the bindings' SDK hooks (httpx transport, `fetch`)
//! hand it to the SDK. This is the only place an error becomes JSON for a caller.

use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use gateway_core::engine::{Answer, ChunkStream, RouteInfo};
use gateway_core::{Dialect, GatewayError, Response, ResponseBody};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};

/// An HTTP-shaped answer.
pub struct HttpReply {
    /// Status.
    pub status: u16,
    /// Headers, `x-portkey-*` route headers and content type included.
    pub headers: HeaderMap,
    /// The body.
    pub body: HttpReplyBody,
}

/// Body of an [`HttpReply`].
pub enum HttpReplyBody {
    /// Complete.
    Full(Bytes),
    /// SSE frames, ending in `[DONE]` or a `stream_error` event. Pulled as the caller
    /// reads: a slow reader slows the upstream read, nothing piles up in between.
    Stream(Pin<Box<dyn Stream<Item = Bytes> + Send>>),
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Render an engine response in the caller's dialect (the request's
/// [`gateway_core::Endpoint::dialect`]).
pub fn render(response: Response, dialect: Dialect) -> HttpReply {
    let Response { mut status, mut headers, result, route } = response;
    route_headers(&route, &mut headers);
    let body = match result {
        Ok(Answer { content_type, body: ResponseBody::Full(bytes) }) => {
            let content_type = match content_type {
                Some(ct) => HeaderValue::from_str(&ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
                None => JSON,
            };
            headers.insert(CONTENT_TYPE, content_type);
            HttpReplyBody::Full(bytes)
        }
        Ok(Answer { body: ResponseBody::Events(events), .. }) => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            HttpReplyBody::Stream(match dialect {
                Dialect::OpenAi => Box::pin(sse_frames(events)),
                Dialect::Anthropic => Box::pin(anthropic_frames(events)),
                Dialect::Responses => Box::pin(responses_frames(events)),
            })
        }
        // Only the server relays a session (it holds the caller's connection); anywhere
        // else the upstream connection is closed as the session is dropped here.
        Ok(Answer { body: ResponseBody::Upgraded(_), .. }) => {
            let error = not_relayed();
            status = error.status;
            headers.insert(CONTENT_TYPE, JSON);
            HttpReplyBody::Full(Bytes::from(error.to_json(dialect).to_string()))
        }
        Err(error) => {
            headers.insert(CONTENT_TYPE, JSON);
            HttpReplyBody::Full(Bytes::from(error.to_json(dialect).to_string()))
        }
    };
    HttpReply { status, headers, body }
}

/// A realtime session asked for where it cannot be relayed (in-process, or over plain
/// HTTP without a WebSocket handshake).
pub fn not_relayed() -> GatewayError {
    GatewayError::new(
        gateway_core::ErrorCode::UnsupportedEndpoint,
        "`/v1/realtime` is a WebSocket: connect to `gatewise serve` with a WebSocket client (GET with `upgrade: websocket`)",
    )
    .with_param("url")
}

/// A gateway-made error before routing (bad header, bad body, unknown route).
pub fn error(e: GatewayError, trace_id: Option<String>, dialect: Dialect) -> HttpReply {
    render(Response::from_error(e, RouteInfo { trace_id, ..RouteInfo::default() }), dialect)
}

/// The dialect of a request path, for errors made before the request is parsed
/// (`/v1/messages` callers read Anthropic's error shape).
pub fn dialect_of(path: &str) -> Dialect {
    match path.strip_prefix("/v1/messages") {
        Some("" | "/count_tokens") => Dialect::Anthropic,
        _ if path == "/v1/responses" => Dialect::Responses,
        _ => Dialect::OpenAi,
    }
}

/// Anthropic SSE framing of a Messages event stream: `event: <type>` and `data: <event>`
/// (Anthropic's SDKs dispatch on the event name), no `[DONE]`; a broken stream ends with
/// an `error` event in Anthropic's shape.
pub fn anthropic_frames(events: ChunkStream) -> impl Stream<Item = Bytes> + Send {
    named_frames(events, |e| e.to_anthropic_json())
}

/// Responses SSE framing: each event named by its `type` (`event:
/// response.output_text.delta`), no `[DONE]`; a broken stream ends with an `error` event
/// that OpenAI's SDKs raise (it carries an `error` object), never a terminal event.
pub fn responses_frames(events: ChunkStream) -> impl Stream<Item = Bytes> + Send {
    named_frames(events, |e| {
        serde_json::json!({"type": "error", "code": e.code.as_str(), "message": e.message, "param": null,
            "error": {"type": "stream_error", "code": e.code.as_str(), "message": e.message}})
    })
}

/// Events named by their `type`, and `error_event` for a broken stream, which ends it.
fn named_frames(
    events: ChunkStream,
    error_event: fn(&GatewayError) -> serde_json::Value,
) -> impl Stream<Item = Bytes> + Send {
    futures::stream::unfold(Some(events), move |events| async move {
        let mut events = events?;
        match events.next().await {
            Some(Ok(event)) => {
                let kind = std::str::from_utf8(&event).ok().and_then(gateway_core::providers::event_type);
                Some((named_frame(kind.as_deref().unwrap_or("message"), &event), Some(events)))
            }
            Some(Err(e)) => Some((named_frame("error", error_event(&e).to_string().as_bytes()), None)),
            None => None,
        }
    })
}

fn named_frame(name: &str, data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(name.len() + data.len() + 16);
    buf.put_slice(b"event: ");
    buf.put_slice(name.as_bytes());
    buf.put_slice(b"\ndata: ");
    buf.put_slice(data);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

/// OpenAI SSE framing of a chunk stream: `data: <chunk>` events, then `data: [DONE]` on a
/// clean end, or one `stream_error` event and no `[DONE]` when the stream broke (it must
/// never look complete).
pub fn sse_frames(events: ChunkStream) -> impl Stream<Item = Bytes> + Send {
    futures::stream::unfold(Some(events), |events| async move {
        let mut events = events?;
        let (frame, more) = match events.next().await {
            Some(Ok(chunk)) => (frame(&chunk), true),
            Some(Err(e)) => (frame(stream_error(&e).as_bytes()), false),
            None => (Bytes::from_static(b"data: [DONE]\n\n"), false),
        };
        Some((frame, more.then_some(events)))
    })
}

fn frame(data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(data.len() + 8);
    buf.put_slice(b"data: ");
    buf.put_slice(data);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

fn stream_error(e: &GatewayError) -> String {
    serde_json::json!({"error": {"message": e.message, "type": "stream_error", "param": null, "code": "stream_error"}})
        .to_string()
}

// Built at compile time: every answer carries these.
const LAST_USED_OPTION_INDEX: HeaderName = HeaderName::from_static("x-portkey-last-used-option-index");
const PROVIDER: HeaderName = HeaderName::from_static("x-portkey-provider");
const RETRY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-portkey-retry-attempt-count");
const CACHE_STATUS: HeaderName = HeaderName::from_static("x-portkey-cache-status");
/// The trace id header, on requests and answers.
pub const TRACE_ID: HeaderName = HeaderName::from_static("x-portkey-trace-id");

/// The `x-portkey-*` response headers for a routed answer.
pub fn route_headers(route: &RouteInfo, headers: &mut HeaderMap) {
    headers.reserve(5);
    let text = |value: &str| HeaderValue::from_str(value).ok();
    if let Some(index) = route.option_index.as_deref().and_then(text) {
        headers.insert(LAST_USED_OPTION_INDEX, index);
    }
    if let Some(provider) = route.provider.as_deref().and_then(text) {
        headers.insert(PROVIDER, provider);
    }
    headers.insert(RETRY_ATTEMPT_COUNT, HeaderValue::from(route.retry_count));
    headers.insert(CACHE_STATUS, HeaderValue::from_static(route.cache_status.as_str()));
    if let Some(trace) = route.trace_id.as_deref().and_then(text) {
        headers.insert(TRACE_ID, trace);
    }
}
