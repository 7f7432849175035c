//! An incremental decoder for the AWS event-stream binary framing
//! (`application/vnd.amazon.eventstream`), as ConverseStream answers with.
//!
//! Each message is:
//!
//! ```text
//! total_len u32 BE | headers_len u32 BE | prelude_crc u32 BE     (the 12-byte prelude)
//! headers (headers_len bytes) | payload | message_crc u32 BE
//! ```
//!
//! `prelude_crc` is the CRC32 of the first 8 bytes, `message_crc` that of everything before
//! it. Both are checked: a frame that fails either is corruption, not data. Bytes may
//! arrive split anywhere; they are buffered until a whole frame is present.
//!
//! [`EventStream`] turns a stream of frames into a [`StreamTranslator`] for whichever
//! [`FrameEvents`] reads its events.

use bytes::Bytes;
use serde_json::Value;

use super::{NAME, SLUG};
use crate::error::GatewayError;
use crate::providers::StreamTranslator;
use crate::providers::sse_stream::stream_error_verbatim;

/// Smallest possible message: prelude plus message CRC, no headers, no payload.
const MIN_FRAME: usize = 16;
/// The format's limits (16 MiB payload, 128 KiB headers) plus framing; anything larger is
/// a desynchronised or hostile stream, refused before buffering it.
const MAX_FRAME: usize = 16 * 1024 * 1024 + 128 * 1024 + MIN_FRAME;
const MAX_HEADERS: usize = 128 * 1024;

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    /// String-valued headers (`:event-type`, `:message-type`, ...). Other header types are
    /// parsed (to find the next header) and skipped: nothing in Converse needs them.
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The value of the string header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Why the byte stream cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameError(pub String);

/// The decoder state: bytes not yet consumed.
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`; compacted lazily so byte-at-a-time feeding
    /// stays linear.
    start: usize,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; complete frames are appended to `out`. After an error the stream is
    /// unusable (there is no way to resynchronise a corrupt framing).
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            let pending = &self.buf[self.start..];
            if pending.len() < 12 {
                return Ok(());
            }
            let total = be_u32(&pending[0..4]) as usize;
            let headers_len = be_u32(&pending[4..8]) as usize;
            let prelude_crc = be_u32(&pending[8..12]);
            // Check the prelude before trusting its lengths.
            if crc32(&pending[..8]) != prelude_crc {
                return Err(FrameError("event-stream prelude CRC mismatch".into()));
            }
            if !(MIN_FRAME..=MAX_FRAME).contains(&total) || headers_len > MAX_HEADERS || headers_len > total - MIN_FRAME
            {
                return Err(FrameError(format!(
                    "event-stream frame with impossible lengths (total {total}, headers {headers_len})"
                )));
            }
            if pending.len() < total {
                return Ok(());
            }
            let frame = &pending[..total];
            let message_crc = be_u32(&frame[total - 4..]);
            if crc32(&frame[..total - 4]) != message_crc {
                return Err(FrameError("event-stream message CRC mismatch".into()));
            }
            let headers = parse_headers(&frame[12..12 + headers_len])?;
            let payload = frame[12 + headers_len..total - 4].to_vec();
            out.push(Frame { headers, payload });
            self.start += total;
        }
    }

    /// Whether a partial frame is still buffered (the upstream stopped mid-message).
    pub fn has_partial(&self) -> bool {
        self.start < self.buf.len()
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Headers: `name_len u8 | name | type u8 | value`, the value's size set by its type.
fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, String)>, FrameError> {
    let truncated = || FrameError("event-stream header runs past its section".into());
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = usize::from(b[0]);
        let name = b.get(1..1 + name_len).ok_or_else(truncated)?;
        let name = String::from_utf8_lossy(name).into_owned();
        let kind = *b.get(1 + name_len).ok_or_else(truncated)?;
        b = &b[2 + name_len..];
        let fixed = |n: usize| if b.len() >= n { Ok(n) } else { Err(truncated()) };
        let used = match kind {
            0 | 1 => 0, // bool true / false: the type is the value
            2 => fixed(1)?,
            3 => fixed(2)?,
            4 => fixed(4)?,
            5 | 8 => fixed(8)?, // i64, timestamp
            9 => fixed(16)?,    // uuid
            6 | 7 => {
                // byte array / string: u16 BE length, then the bytes.
                let len = b.get(..2).map(|l| usize::from(u16::from_be_bytes([l[0], l[1]]))).ok_or_else(truncated)?;
                let value = b.get(2..2 + len).ok_or_else(truncated)?;
                if kind == 7 {
                    out.push((name, String::from_utf8_lossy(value).into_owned()));
                }
                2 + len
            }
            other => return Err(FrameError(format!("event-stream header `{name}` has unknown type {other}"))),
        };
        b = &b[used..];
    }
    Ok(out)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as the event-stream format uses.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// What one kind of Bedrock stream makes of its event frames (ConverseStream's events,
/// or Claude's Messages events in `chunk` frames).
pub(super) trait FrameEvents: Send {
    /// One `:message-type: event` frame.
    fn event(&mut self, frame: &Frame, out: &mut Vec<Bytes>) -> Result<(), GatewayError>;

    /// The framing ended cleanly: the answer is complete, or why it is not.
    fn finish(&mut self) -> Result<(), GatewayError>;
}

/// A Bedrock event stream as a [`StreamTranslator`]: frames decoded across any split,
/// exception and error frames turned into stream errors, events handed to `E`, and a
/// stream that stops mid-frame or before its answer is complete never ending cleanly.
#[derive(Debug)]
pub(super) struct EventStream<E> {
    decoder: FrameDecoder,
    frames: Vec<Frame>,
    events: E,
    failed: Option<GatewayError>,
}

impl<E: FrameEvents> EventStream<E> {
    pub(super) fn new(events: E) -> Self {
        Self { decoder: FrameDecoder::new(), frames: Vec::new(), events, failed: None }
    }

    fn handle(&mut self, frame: &Frame, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        match frame.header(":message-type").unwrap_or("event") {
            "event" => self.events.event(frame, out),
            "exception" => {
                let kind = frame.header(":exception-type").unwrap_or("exception");
                let message = crate::json::from_slice::<Value>(&frame.payload)
                    .ok()
                    .and_then(|v| {
                        v.get("message").or_else(|| v.get("Message")).and_then(Value::as_str).map(str::to_owned)
                    })
                    .unwrap_or_else(|| String::from_utf8_lossy(&frame.payload).into_owned());
                Err(stream_error(format!("{NAME} error: {kind}: {message}")))
            }
            "error" => {
                let code = frame.header(":error-code").unwrap_or("error");
                let message = frame.header(":error-message").unwrap_or("");
                Err(stream_error(format!("{NAME} error: {code}: {message}")))
            }
            _ => Ok(()),
        }
    }
}

impl<E: FrameEvents> StreamTranslator for EventStream<E> {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let decoded = self.decoder.feed(bytes, &mut self.frames);
        let mut frames = std::mem::take(&mut self.frames);
        // Frames decoded before a corrupt one are still delivered, then the error.
        let result = frames
            .drain(..)
            .try_for_each(|frame| self.handle(&frame, out))
            .and(decoded.map_err(|e| stream_error(format!("{NAME} error: {}", e.0))));
        // Kept for its capacity (the drain emptied it, even when a frame failed).
        self.frames = frames;
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn finish(&mut self, _out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.decoder.has_partial() {
            return Err(stream_error(format!("{NAME} stream ended in the middle of an event-stream message")));
        }
        self.events.finish()
    }
}

/// Verbatim: the messages name the provider by `NAME`, which need not be the slug.
pub(super) fn stream_error(message: String) -> GatewayError {
    stream_error_verbatim(SLUG, message)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Encode a frame with string headers (a test-side encoder, independent of the decoder).
    pub(crate) fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        for (name, value) in headers {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(7);
            h.extend_from_slice(&(value.len() as u16).to_be_bytes());
            h.extend_from_slice(value.as_bytes());
        }
        encode_raw(&h, payload)
    }

    fn encode_raw(headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = 12 + headers.len() + payload.len() + 4;
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let prelude_crc = crc32(&out);
        out.extend_from_slice(&prelude_crc.to_be_bytes());
        out.extend_from_slice(headers);
        out.extend_from_slice(payload);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn aws_spec_example_frames() {
        // From the AWS event-stream encoding test vectors (awslabs/aws-c-event-stream):
        // an empty message is 16 bytes with prelude CRC 0x05c248eb and message CRC 0x7d98c8ff.
        let empty = [0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff];
        let mut out = Vec::new();
        FrameDecoder::new().feed(&empty, &mut out).unwrap();
        assert_eq!(out, vec![Frame { headers: vec![], payload: vec![] }]);
        assert_eq!(encode(&[], b""), empty);
        // ...and a 29-byte message whose payload is `{'foo':'bar'}`.
        let foo = [
            0, 0, 0, 0x1d, 0, 0, 0, 0, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27, 0x66, 0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62,
            0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36,
        ];
        let mut out = Vec::new();
        FrameDecoder::new().feed(&foo, &mut out).unwrap();
        assert_eq!(out[0].payload, b"{'foo':'bar'}");
    }

    #[test]
    fn every_split_gives_the_same_frames() {
        let mut bytes =
            encode(&[(":event-type", "messageStart"), (":message-type", "event")], b"{\"role\":\"assistant\"}");
        bytes.extend(encode(&[(":event-type", "contentBlockDelta")], "{\"t\":\"h\u{e9}\"}".as_bytes()));
        let mut whole = Vec::new();
        FrameDecoder::new().feed(&bytes, &mut whole).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].header(":event-type"), Some("messageStart"));
        for cut in 0..=bytes.len() {
            let mut d = FrameDecoder::new();
            let mut out = Vec::new();
            d.feed(&bytes[..cut], &mut out).unwrap();
            d.feed(&bytes[cut..], &mut out).unwrap();
            assert_eq!(out, whole, "cut at {cut}");
            assert!(!d.has_partial());
        }
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        for b in &bytes {
            d.feed(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(out, whole);
    }

    #[test]
    fn non_string_headers_are_skipped() {
        let mut h = Vec::new();
        let mut push = |name: &str, kind: u8, value: &[u8]| {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(kind);
            h.extend_from_slice(value);
        };
        push("t", 0, &[]);
        push("f", 1, &[]);
        push("b", 2, &[7]);
        push("s", 3, &[0, 1]);
        push("i", 4, &[0, 0, 0, 1]);
        push("l", 5, &[0; 8]);
        push("ba", 6, &[0, 2, 0xff, 0xfe]);
        push("ts", 8, &[0; 8]);
        push("u", 9, &[0; 16]);
        push(":event-type", 7, &[0, 8, b'm', b'e', b's', b's', b'a', b'g', b'e', b'S']);
        let bytes = encode_raw(&h, b"{}");
        let mut out = Vec::new();
        FrameDecoder::new().feed(&bytes, &mut out).unwrap();
        assert_eq!(out[0].headers, vec![(":event-type".to_owned(), "messageS".to_owned())]);
        assert_eq!(out[0].payload, b"{}");
    }

    #[test]
    fn corruption_is_an_error() {
        let good = encode(&[(":event-type", "messageStop")], b"{\"stopReason\":\"end_turn\"}");
        let mut payload_flip = good.clone();
        payload_flip[good.len() - 6] ^= 1;
        let mut out = Vec::new();
        let err = FrameDecoder::new().feed(&payload_flip, &mut out).unwrap_err();
        assert!(err.0.contains("message CRC"), "{err:?}");
        let mut length_flip = good.clone();
        length_flip[3] ^= 1;
        let err = FrameDecoder::new().feed(&length_flip, &mut out).unwrap_err();
        assert!(err.0.contains("prelude CRC"), "{err:?}");
        // An absurd length with a valid prelude CRC is refused before buffering it.
        let mut huge = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        let crc = crc32(&huge);
        huge.extend_from_slice(&crc.to_be_bytes());
        assert!(FrameDecoder::new().feed(&huge, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn a_partial_frame_is_reported() {
        let good = encode(&[(":event-type", "messageStop")], b"{}");
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        d.feed(&good[..good.len() - 1], &mut out).unwrap();
        assert!(out.is_empty());
        assert!(d.has_partial());
    }
}
