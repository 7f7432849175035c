//! Loop detection. Every upstream call a server makes carries `x-gatewise-via`: the ids of
//! the gateways the request has passed through, this one last. A server that finds its own
//! id there (it called itself, directly or through other gateways), or a chain longer than
//! [`MAX_HOPS`], refuses at once with `loop_detected` (508) instead of calling again; a
//! self-referencing config otherwise opens connections until file descriptors run out.

use gateway_core::{ErrorCode, GatewayError};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The header, on the way in and on every upstream call.
pub const VIA: HeaderName = HeaderName::from_static(gateway_core::engine::VIA_HEADER);

/// The longest chain of gateways a request may pass through.
pub const MAX_HOPS: usize = 8;

/// The chain to send upstream (`incoming, own_id`), or `loop_detected`. `own_id` is this
/// gateway's id as a header value, returned as is (no copy) for a first hop.
pub fn next_hop(headers: &HeaderMap, own_id: &HeaderValue) -> Result<HeaderValue, GatewayError> {
    if !headers.contains_key(VIA) {
        return Ok(own_id.clone());
    }
    let own_id = own_id.to_str().unwrap_or_default();
    let mut chain = String::new();
    let mut hops = 0;
    for value in headers.get_all(VIA) {
        let Ok(text) = value.to_str() else { continue };
        for id in text.split(',').map(str::trim).filter(|id| !id.is_empty()) {
            if id == own_id {
                return Err(looped("the request came back to this gateway (a config or custom host points at it)"));
            }
            hops += 1;
            if hops >= MAX_HOPS {
                return Err(looped(&format!("the request passed through {MAX_HOPS} gateways")));
            }
            chain.push_str(id);
            chain.push_str(", ");
        }
    }
    chain.push_str(own_id);
    HeaderValue::from_str(&chain).map_err(|_| looped("the x-gatewise-via header is not a list of gateway ids"))
}

fn looped(why: &str) -> GatewayError {
    GatewayError::new(ErrorCode::LoopDetected, format!("loop detected: {why}")).with_param(VIA.as_str())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn via(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(VIA, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_gateway_finds_itself_or_a_long_chain_and_otherwise_adds_itself() {
        let me = HeaderValue::from_static("me");
        assert_eq!(next_hop(&HeaderMap::new(), &me).unwrap(), "me");
        assert_eq!(next_hop(&via("a, b"), &me).unwrap(), "a, b, me");
        let e = next_hop(&via("a, me, b"), &me).unwrap_err();
        assert_eq!((e.code, e.status), (ErrorCode::LoopDetected, 508));
        let long = (0..MAX_HOPS).map(|i| format!("g{i}")).collect::<Vec<_>>().join(",");
        assert_eq!(next_hop(&via(&long), &me).unwrap_err().code, ErrorCode::LoopDetected);
    }
}
