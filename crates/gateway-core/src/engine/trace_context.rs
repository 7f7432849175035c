//! W3C trace context (`traceparent`): read from the caller, sent to every upstream.
//!
//! When the gateway exports spans, each upstream attempt is a span of its own and the
//! upstream sees that span as its parent; when it does not, the caller's `traceparent`
//! is passed on unchanged, so the upstream still joins the caller's trace.

use http::HeaderValue;

/// The header.
pub const TRACEPARENT: &str = "traceparent";

/// One request's place in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace.
    pub trace_id: [u8; 16],
    /// The caller's span, when the caller sent `traceparent`.
    pub parent_id: Option<[u8; 8]>,
    /// The gateway's span for this request, when spans are exported.
    pub span_id: Option<[u8; 8]>,
    /// The caller's sampled flag (or set, for a trace the gateway starts).
    pub sampled: bool,
}

impl TraceContext {
    /// A `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`); `None` if malformed, or
    /// with an all-zero id, as the W3C spec requires.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four parts; a later version may add more, which we ignore.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex_bytes(trace)?;
        let parent_id: [u8; 8] = hex_bytes(parent)?;
        let [flags]: [u8; 1] = hex_bytes(flags)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, parent_id: Some(parent_id), span_id: None, sampled: flags & 1 == 1 })
    }

    /// The span id of upstream attempt `n` (0-based): derived from the request's span id,
    /// so the exporter and the header agree without storing it.
    pub fn attempt_span_id(&self, n: usize) -> Option<[u8; 8]> {
        let base = u64::from_be_bytes(self.span_id?);
        let mut z = base.wrapping_add((n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Some(if z == 0 { 1 } else { z }.to_be_bytes())
    }

    /// The `traceparent` upstream attempt `n` carries: the attempt's span as parent when
    /// spans are exported, else the caller's.
    pub fn traceparent(&self, n: usize) -> Option<HeaderValue> {
        let parent = self.attempt_span_id(n).or(self.parent_id)?;
        let text = format!("00-{}-{}-{:02x}", hex::encode(self.trace_id), hex::encode(parent), u8::from(self.sampled));
        HeaderValue::from_str(&text).ok()
    }
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_w3c_example_and_refuses_bad_ones() {
        let t = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(hex::encode(t.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(t.sampled);
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn upstreams_get_the_attempt_span_or_the_callers() {
        let caller = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            caller.traceparent(0).unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "not exporting: passed on unchanged"
        );
        let ours = TraceContext { span_id: Some([7; 8]), ..caller };
        let (a, b) = (ours.attempt_span_id(0).unwrap(), ours.attempt_span_id(1).unwrap());
        assert_ne!(a, b);
        assert_eq!(
            ours.traceparent(1).unwrap(),
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", hex::encode(b)).as_str()
        );
    }
}
