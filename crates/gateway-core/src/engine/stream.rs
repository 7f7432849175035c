//! Streamed answers: peek the first chunk before committing, then translate lazily.
//!
//! Pull-based end to end: nothing is spawned, nothing buffers without bound, and
//! dropping the returned stream drops the upstream body, which cancels the request.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::transport::{ByteStream, TransportError};
use crate::error::{ErrorCode, GatewayError};
use crate::providers::StreamTranslator;

/// OpenAI chunk payloads (JSON text, one per `data:` event). The stream ends after the
/// last chunk when the answer is complete; a break yields one `Err` and then ends.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, GatewayError>> + Send>>;

/// Why a stream failed before its first chunk (the attempt can still be retried or fall back).
#[derive(Debug)]
pub enum EarlyFailure {
    /// The connection broke.
    Transport(TransportError),
    /// The upstream sent an error in-band or an incomplete stream.
    Upstream(GatewayError),
}

/// Read until the translator produces its first chunk (or the stream ends cleanly), then
/// return a stream that starts with what was read.
pub async fn open(
    mut body: ByteStream,
    mut translator: Box<dyn StreamTranslator>,
) -> Result<ChunkStream, EarlyFailure> {
    let mut out = Vec::new();
    let mut finished = false;
    while out.is_empty() {
        match body.next().await {
            Some(Ok(bytes)) => translator.feed(&bytes, &mut out).map_err(EarlyFailure::Upstream)?,
            Some(Err(e)) => return Err(EarlyFailure::Transport(e)),
            None => {
                translator.finish(&mut out).map_err(EarlyFailure::Upstream)?;
                finished = true;
                break;
            }
        }
    }
    let state = State { body: (!finished).then_some(body), translator, pending: out.into_iter().map(Ok).collect() };
    Ok(Box::pin(futures::stream::unfold(state, State::next)))
}

struct State {
    /// `None` once the upstream has ended or broken.
    body: Option<ByteStream>,
    translator: Box<dyn StreamTranslator>,
    /// Translated chunks (and at most one final error) not yet handed out.
    pending: VecDeque<Result<Bytes, GatewayError>>,
}

impl State {
    async fn next(mut self) -> Option<(Result<Bytes, GatewayError>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            let body = self.body.as_mut()?;
            let mut out = Vec::new();
            let step = match body.next().await {
                Some(Ok(bytes)) => self.translator.feed(&bytes, &mut out),
                Some(Err(e)) => {
                    Err(GatewayError::new(ErrorCode::StreamError, format!("the upstream stream broke: {}", e.message))
                        .with_status(502))
                }
                None => {
                    self.body = None;
                    self.translator.finish(&mut out)
                }
            };
            self.pending.extend(out.into_iter().map(Ok));
            if let Err(e) = step {
                // Hand out what was translated, then the error, then end.
                self.body = None;
                self.pending.push_back(Err(e));
            }
        }
    }
}
