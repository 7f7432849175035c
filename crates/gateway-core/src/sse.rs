//! An incremental Server-Sent Events decoder: bytes in any split → whole events.
//!
//! Follows the WHATWG event-stream rules: lines end in `\n`, `\r\n` or `\r`; a blank
//! line dispatches; `data` lines join with `\n`; a leading space after the colon is
//! dropped; lines starting with `:` are comments. Bytes are buffered until a line is
//! complete, so a multi-byte UTF-8 character split across reads is never corrupted.

/// One decoded event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field; empty means the default `message`.
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// `id:` field, if any.
    pub id: Option<String>,
}

/// The decoder state.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous byte was `\r`: a following `\n` belongs to the same line end.
    after_cr: bool,
    event: SseEvent,
    has_data: bool,
}

impl SseDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; complete events are appended to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) {
        while !bytes.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\n', b'\r', bytes) {
                Some(pos) => {
                    self.line.extend_from_slice(&bytes[..pos]);
                    self.after_cr = bytes[pos] == b'\r';
                    bytes = &bytes[pos + 1..];
                    self.end_line(out);
                }
                None => {
                    self.line.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
        }
    }

    /// Bytes held for the event being read (its unfinished line and its data so far). An
    /// upstream that never ends a line or an event makes this grow; the caller bounds it.
    pub fn pending_bytes(&self) -> usize {
        self.line.len() + self.event.data.len()
    }

    /// The stream ended: an unterminated final event is dispatched (servers often omit
    /// the last blank line).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (&line[..], &b""[..]),
        };
        // `from_utf8` first: its check is several times faster than the lossy decoder's,
        // and upstreams send valid UTF-8.
        let value = match std::str::from_utf8(value) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(value),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event.event = value.into_owned(),
            b"id" => self.event.id = Some(value.into_owned()),
            _ => {}
        }
        // Reuse the line's allocation.
        self.line = line;
        self.line.clear();
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(std::mem::take(&mut self.event));
        } else {
            self.event = SseEvent::default();
        }
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], splits: &[usize]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &s in splits.iter().chain(std::iter::once(&input.len())) {
            let s = s.clamp(start, input.len());
            d.feed(&input[start..s], &mut out);
            start = s;
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let input =
            "event: a\r\ndata: héllo\r\ndata: wörld\r\n\r\n: comment\n\ndata:{\"x\":1}\r\rid: 7\ndata: [DONE]\n\n"
                .as_bytes();
        let whole = decode_split(input, &[]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].event, "a");
        assert_eq!(whole[0].data, "héllo\nwörld");
        assert_eq!(whole[1].data, "{\"x\":1}");
        assert_eq!(whole[2].id.as_deref(), Some("7"));
        // Deterministic pseudo-random splits, including mid-UTF-8 and between \r and \n.
        let mut seed = 0x1234_5678_u64;
        for _ in 0..500 {
            let mut splits = Vec::new();
            for _ in 0..4 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                splits.push((seed >> 33) as usize % (input.len() + 1));
            }
            splits.sort_unstable();
            assert_eq!(decode_split(input, &splits), whole, "splits {splits:?}");
        }
        for i in 0..=input.len() {
            assert_eq!(decode_split(input, &[i]), whole, "split at {i}");
        }
    }

    #[test]
    fn unterminated_last_event_is_dispatched() {
        assert_eq!(decode_split(b"data: x", &[]).len(), 1);
    }
}
