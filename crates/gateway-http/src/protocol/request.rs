//! HTTP request parts → the engine's [`GatewayRequest`], and the bounded body read.

use std::time::Duration;

use bytes::Bytes;
use gateway_core::{Endpoint, ErrorCode, GatewayError, GatewayRequest, RequestBody};
use http::header::CONTENT_TYPE;
use http_body_util::BodyExt;

/// A routed request from its HTTP parts (the server and the bindings' httpx/fetch hooks).
/// An unknown route is a 404, a malformed JSON body a 400.
pub fn gateway_request(
    method: http::Method,
    uri: &http::Uri,
    headers: http::HeaderMap,
    bytes: Bytes,
) -> Result<GatewayRequest, GatewayError> {
    let path = uri.path().to_owned();
    let Some(endpoint) = Endpoint::from_path(&method, &path) else {
        return Err(GatewayError::new(ErrorCode::InvalidRequest, format!("unknown route {method} {path}"))
            .with_status(404)
            .with_param("url"));
    };
    let body = if endpoint.has_json_body() {
        RequestBody::json(bytes)?
    } else if bytes.is_empty() {
        RequestBody::Empty
    } else {
        let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        RequestBody::Opaque { content_type, raw: bytes }
    };
    Ok(GatewayRequest { endpoint, method, path, query: uri.query().map(str::to_owned), body, headers })
}

/// How much of a too-large body is still read (and thrown away) so that the client, which
/// is still sending, can read the 413: a socket closed with unread data is reset, and
/// most clients then report the reset, not the answer. Past this, or after
/// [`DRAIN_TIME`], the connection is closed anyway.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;
/// See [`DRAIN_BYTES`].
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Read the whole body, refusing more than `limit` bytes with a 413 (after draining what
/// the client is still sending, within bounds).
pub async fn read_body<B>(body: B, headers: &http::HeaderMap, limit: usize) -> Result<Bytes, GatewayError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let too_large =
        || GatewayError::new(ErrorCode::PayloadTooLarge, format!("the request body exceeds the {limit}-byte limit"));
    let declared =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    if declared.is_none_or(|n| n <= limit) {
        loop {
            match body.frame().await {
                None => return Ok(buf.freeze()),
                Some(Err(e)) => return Err(GatewayError::request("", format!("reading the request body failed: {e}"))),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    if buf.len() + data.len() > limit {
                        break;
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    drop(buf);
    // A declared length past what is drained would be reset anyway: don't read for nothing.
    if declared.is_none_or(|n| n <= DRAIN_BYTES) {
        drain(body).await;
    }
    Err(too_large())
}

/// Read and drop the rest of a body, within [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain<B>(mut body: B)
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let read = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > DRAIN_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}
