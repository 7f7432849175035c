//! The part of every SSE stream translator that does not depend on the provider.
//!
//! Anthropic, Cohere, Gemini and the OpenAI-compatible providers all stream Server-Sent
//! Events, and each translator used to carry its own copy of the decoder, the event
//! buffer and the feed/finish/drain loop. Copies drift: a fix to how a stream that was
//! cut short is reported, or to the buffer's reuse, had to be made four times. Here that
//! machinery exists once and a provider supplies only what differs: what an event means,
//! and what "complete" means. (Bedrock streams binary event-stream frames, not SSE; it
//! shares only the error constructors.)

use std::fmt::Display;

use bytes::Bytes;

use super::StreamTranslator;
use crate::error::{ErrorCode, GatewayError};
use crate::json;
use crate::sse::{SseDecoder, SseEvent};

/// What a provider adds to [`SseTranslator`]: the meaning of its events.
///
/// Events arrive whole and in order whatever the upstream's read boundaries were, so a
/// handler never sees partial input and its output does not depend on how bytes were
/// split. An event is handed over by value so a handler that forwards the payload as it
/// is (OpenAI) moves it out instead of copying it.
pub(crate) trait SseEventHandler: Send {
    /// Translate one event, appending any chunks to `out`. An error ends the stream; the
    /// events decoded after it in the same read are dropped.
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<Bytes>) -> Result<(), GatewayError>;

    /// Whether the answer is complete, so the upstream closing now is a clean end.
    fn is_complete(&self) -> bool;

    /// The error for an upstream that closed before [`Self::is_complete`] (a stream must
    /// never look complete when it is not).
    fn cut_short(&self) -> GatewayError;

    /// The upstream closed after a complete answer. For what can only be said once no
    /// more events can come (Gemini's usage, which later events may still revise).
    fn on_complete(&mut self, _out: &mut Vec<Bytes>) {}
}

/// The largest event an SSE upstream may send (a whole answer fits in a few hundred KiB);
/// past it, a line or an event that never ends breaks the stream rather than the memory.
pub(crate) const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// A [`StreamTranslator`] for an SSE upstream: decodes events and hands them to `H`.
#[derive(Debug)]
pub(crate) struct SseTranslator<H> {
    decoder: SseDecoder,
    /// Events of the current read; kept between reads so its allocation is reused.
    events: Vec<SseEvent>,
    handler: H,
}

impl<H: SseEventHandler> SseTranslator<H> {
    /// A translator for one answer, with `handler` set up for its request.
    pub(crate) fn new(handler: H) -> Self {
        Self { decoder: SseDecoder::new(), events: Vec::new(), handler }
    }

    fn drain(&mut self, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        for event in self.events.drain(..) {
            self.handler.on_event(event, out)?;
        }
        Ok(())
    }
}

impl<H: SseEventHandler> StreamTranslator for SseTranslator<H> {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        self.decoder.feed(bytes, &mut self.events);
        self.drain(out)?;
        if self.decoder.pending_bytes() > MAX_EVENT_BYTES {
            return Err(GatewayError::new(
                ErrorCode::StreamError,
                format!("the upstream sent an event longer than {} MiB", MAX_EVENT_BYTES >> 20),
            )
            .with_status(502));
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        self.decoder.finish(&mut self.events);
        self.drain(out)?;
        if !self.handler.is_complete() {
            return Err(self.handler.cut_short());
        }
        self.handler.on_complete(out);
        Ok(())
    }
}

/// A stream that failed part-way, worded like the provider's other errors:
/// `<provider> error: <message>`. A 502, since the upstream, not the caller, broke it.
pub(crate) fn stream_error(provider: &str, message: impl Display) -> GatewayError {
    stream_error_verbatim(provider, format!("{provider} error: {message}"))
}

/// [`stream_error`] for a message that does not take the `<provider> error:` prefix.
pub(crate) fn stream_error_verbatim(provider: &str, message: String) -> GatewayError {
    GatewayError::new(ErrorCode::StreamError, message).with_provider(provider).with_status(502)
}

/// Writes the `chat.completion.chunk` payloads of one streamed answer: every chunk shares
/// one id, `created` and model, and the role chunk goes out exactly once, before the
/// first delta (OpenAI clients expect it first).
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    /// The chunks' id (the upstream message id once known, else the fallback id).
    pub(crate) id: String,
    /// The model reported in every chunk.
    pub(crate) model: String,
    created: u64,
    /// The role chunk went out.
    pub(crate) started: bool,
}

impl ChunkWriter {
    /// A writer for the answer to the request in `cx`.
    pub(crate) fn new(cx: &super::ResponseContext<'_>) -> Self {
        Self {
            id: cx.fallback_id.to_owned(),
            model: cx.model().unwrap_or_default().to_owned(),
            created: cx.created(),
            started: false,
        }
    }

    /// The role chunk, once, before anything else.
    pub(crate) fn start(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            out.push(self.chunk(serde_json::json!({ "role": "assistant", "content": "" }), serde_json::Value::Null));
        }
    }

    /// A delta chunk (after the role chunk).
    pub(crate) fn delta(&mut self, out: &mut Vec<Bytes>, delta: impl serde::Serialize) {
        self.start(out);
        out.push(self.chunk(delta, serde_json::Value::Null));
    }

    /// `{id, object, created, model}`: the fields every chunk carries.
    pub(crate) fn envelope(&self) -> serde_json::Value {
        serde_json::json!({ "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model })
    }

    /// One chunk with a single choice (index 0).
    pub(crate) fn chunk(&self, delta: impl serde::Serialize, finish_reason: impl serde::Serialize) -> Bytes {
        single_choice_chunk(&self.id, self.created, &self.model, 0, delta, finish_reason)
    }
}

/// A `chat.completion.chunk` with one choice: `{"id", "object", "created", "model",
/// "choices": [{"index", "delta", "logprobs": null, "finish_reason"}]}`, as every
/// translated stream (SSE or Bedrock's frames) writes its deltas.
///
/// Written field by field rather than built as a `Value` and rendered: that cost a chunk
/// translated from Anthropic ~12k instructions of map inserts, key hashing and
/// `fmt::Write` (of ~27k), and a chunk is the unit a stream pays for.
pub(crate) fn single_choice_chunk(
    id: &str,
    created: u64,
    model: &(impl serde::Serialize + ?Sized),
    index: u64,
    delta: impl serde::Serialize,
    finish_reason: impl serde::Serialize,
) -> Bytes {
    let mut out = Vec::with_capacity(160 + id.len());
    out.extend_from_slice(b"{\"id\":");
    json::write_str(&mut out, id);
    out.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
    json::write(&mut out, &created);
    out.extend_from_slice(b",\"model\":");
    json::write(&mut out, model);
    out.extend_from_slice(b",\"choices\":[{\"index\":");
    json::write(&mut out, &index);
    out.extend_from_slice(b",\"delta\":");
    json::write(&mut out, &delta);
    out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
    json::write(&mut out, &finish_reason);
    out.extend_from_slice(b"}]}");
    Bytes::from(out)
}
