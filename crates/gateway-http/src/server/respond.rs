//! Engine [`Response`] → HTTP response: status, passed-through upstream headers, the
//! `x-portkey-*` route headers, and a JSON body or an SSE stream.

use axum::body::Body;
use axum::response::Response as HttpResponse;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use gateway_core::engine::{ChunkStream, RouteInfo};
use gateway_core::{GatewayError, Response, ResponseBody};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, StatusCode};

/// Render an engine response.
pub fn into_http(response: Response) -> HttpResponse {
    let Response { status, content_type, headers, body, route, .. } = response;
    let mut out = HttpResponse::new(Body::empty());
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    *out.headers_mut() = headers;
    route_headers(&route, out.headers_mut());
    match body {
        ResponseBody::Full(bytes) => {
            let content_type = match content_type {
                Some(ct) => HeaderValue::from_str(&ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
                None => HeaderValue::from_static("application/json"),
            };
            out.headers_mut().insert(CONTENT_TYPE, content_type);
            *out.body_mut() = Body::from(bytes);
        }
        ResponseBody::Events(events) => {
            out.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            out.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            // Pulled by hyper as it writes: a slow client slows the upstream read, nothing
            // piles up in between (back-pressure end to end).
            let sse = sse_frames(events).map(Ok::<_, std::convert::Infallible>);
            *out.body_mut() = Body::from_stream(sse);
        }
    }
    out
}

/// OpenAI SSE framing of a chunk stream: `data: <chunk>` events, then `data: [DONE]` on a
/// clean end, or one `stream_error` event and no `[DONE]` when the stream broke (it must
/// never look complete).
pub fn sse_frames(events: ChunkStream) -> impl futures::Stream<Item = Bytes> + Send {
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

/// A gateway-made error before routing (bad header, bad body, unknown route).
pub fn error(e: GatewayError, trace_id: Option<String>) -> HttpResponse {
    into_http(Response::from_error(e, RouteInfo { trace_id, ..RouteInfo::default() }))
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
pub(crate) const TRACE_ID: HeaderName = HeaderName::from_static("x-portkey-trace-id");

/// The `x-portkey-*` response headers for a routed answer.
pub fn route_headers(route: &RouteInfo, headers: &mut http::HeaderMap) {
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
