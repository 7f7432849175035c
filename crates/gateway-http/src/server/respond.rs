//! Engine [`Response`] → HTTP response: status, passed-through upstream headers, the
//! `x-portkey-*` route headers, and a JSON body or an SSE stream.

use axum::body::Body;
use axum::response::Response as HttpResponse;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use gateway_core::engine::{ChunkStream, RouteInfo};
use gateway_core::{GatewayError, Response, ResponseBody};
use http::{HeaderName, HeaderValue, StatusCode};

/// Render an engine response.
pub fn into_http(response: Response) -> HttpResponse {
    let Response { status, content_type, headers, body, route, .. } = response;
    let mut out = HttpResponse::new(Body::empty());
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    *out.headers_mut() = headers;
    route_headers(&route, out.headers_mut());
    let content_type = content_type.unwrap_or_else(|| "application/json".to_owned());
    match body {
        ResponseBody::Full(bytes) => {
            set(out.headers_mut(), "content-type", &content_type);
            *out.body_mut() = Body::from(bytes);
        }
        ResponseBody::Events(events) => {
            set(out.headers_mut(), "content-type", "text/event-stream");
            set(out.headers_mut(), "cache-control", "no-cache");
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

/// The `x-portkey-*` response headers for a routed answer.
pub fn route_headers(route: &RouteInfo, headers: &mut http::HeaderMap) {
    if let Some(index) = &route.option_index {
        set(headers, "x-portkey-last-used-option-index", index);
    }
    if let Some(provider) = &route.provider {
        set(headers, "x-portkey-provider", provider);
    }
    set(headers, "x-portkey-retry-attempt-count", &route.retry_count.to_string());
    set(headers, "x-portkey-cache-status", route.cache_status.as_str());
    if let Some(trace) = &route.trace_id {
        set(headers, "x-portkey-trace-id", trace);
    }
}

fn set(headers: &mut http::HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}
