//! The Realtime API's WebSocket handshake as OpenAI and Azure take it: which of the
//! caller's headers go upstream, and the `?model=` a target's `override_params` sets.
//!
//! The handshake's own mechanics (the key, the version, `connection: upgrade`) are the
//! transport's: a provider only says "upgrade this GET to a WebSocket".

use http::header::{SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{HeaderMap, HeaderValue};

use super::{BuildInput, passthrough_headers};
use crate::request::with_query_param;

/// The subprotocol a browser sends its key in (`openai-insecure-api-key.<key>`; browsers
/// cannot set headers on a WebSocket). The server reads a caller's key from it; upstream
/// the provider's credential travels in its own header, never in a subprotocol.
pub const INSECURE_KEY_PROTOCOL: &str = "openai-insecure-api-key.";

/// Headers of the caller's own handshake, which the transport makes anew upstream.
const HANDSHAKE_HEADERS: &[&str] =
    &["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept"];

/// The caller's headers as a pass-through route forwards them, less the caller's own
/// handshake and any key in a subprotocol, with `upgrade: websocket` asked for.
pub(crate) fn handshake_headers(input: &BuildInput<'_>, headers: &mut HeaderMap) {
    passthrough_headers(input.request, headers);
    for name in HANDSHAKE_HEADERS {
        headers.remove(*name);
    }
    let protocols: Vec<&str> =
        offered_subprotocols(&input.request.headers).filter(|p| !p.starts_with(INSECURE_KEY_PROTOCOL)).collect();
    headers.remove(SEC_WEBSOCKET_PROTOCOL);
    if let Ok(value) = HeaderValue::from_str(&protocols.join(", "))
        && !protocols.is_empty()
    {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
}

/// The subprotocols a WebSocket handshake offers (`sec-websocket-protocol`, comma
/// separated, possibly over several header lines), in order.
pub fn offered_subprotocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The query to send: the caller's, with `model` set to the target's `override_params`
/// model when it has one, and without the parameters `drop` names (Azure names the
/// deployment instead of the model).
pub(crate) fn query(input: &BuildInput<'_>, drop: &[&str]) -> Option<String> {
    let query = match input.settings.override_params.get("model").and_then(|m| m.as_str()) {
        Some(model) => with_query_param(input.request.query.as_deref().unwrap_or(""), "model", model),
        None => input.request.query.clone()?,
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !drop.contains(&pair.split_once('=').map_or(*pair, |(key, _)| key)))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}
