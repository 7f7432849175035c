//! Claude on Bedrock for a Messages caller: Anthropic's Messages API behind Bedrock's
//! `InvokeModel` (`/model/{id}/invoke`) and `InvokeModelWithResponseStream`
//! (`/invoke-with-response-stream`), so the request reaches Claude as the caller wrote it —
//! `cache_control`, `thinking`, documents, tools, betas — rather than through Converse.
//!
//! The body is the caller's with three changes: no `model` (it is in the URL), no
//! `stream` (the operation says it), and `anthropic_version` / `anthropic_beta` in the body
//! where Anthropic's API takes headers. The answer is Anthropic's own message; a stream is
//! Anthropic's events, each carried base64-encoded in a `chunk` event-stream frame.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::eventstream::{Frame, FrameDecoder};
use super::{NAME, SLUG, json_bytes};
use crate::error::GatewayError;
use crate::providers::own_events::OwnEvents;
use crate::providers::sse_stream::{SseEventHandler, stream_error_verbatim};
use crate::providers::{BuildInput, StreamTranslator};
use crate::sse::SseEvent;

/// The Messages API version Bedrock expects when the config names none.
const DEFAULT_VERSION: &str = "bedrock-2023-05-31";

/// Whether a Bedrock model id (a foundation model, a cross-region inference profile, or
/// an ARN naming either) is Claude.
pub(super) fn is_claude(model: &str) -> bool {
    model.to_ascii_lowercase().contains("anthropic.claude")
}

/// `invoke`, or `invoke-with-response-stream` for a stream.
pub(super) fn operation(stream: bool) -> &'static str {
    if stream { "invoke-with-response-stream" } else { "invoke" }
}

/// The caller's Messages body as `InvokeModel` takes it.
pub(super) fn body(input: &BuildInput<'_>, params: &Value) -> Result<Bytes, GatewayError> {
    json_bytes(&invoke_body(input, params))
}

/// A `count_tokens` request as `CountTokens` takes it: the `InvokeModel` body it would
/// be, base64 in `input.invokeModel.body`. That body must be a valid invocation, so it
/// gets the `max_tokens` a count request has no use for (it does not change the count).
pub(super) fn count_tokens_body(input: &BuildInput<'_>, params: &Value) -> Result<Bytes, GatewayError> {
    let mut body = invoke_body(input, params);
    if let Value::Object(map) = &mut body {
        map.entry("max_tokens").or_insert(Value::from(1));
    }
    let invoke = base64::engine::general_purpose::STANDARD.encode(json_bytes(&body)?);
    json_bytes(&serde_json::json!({"input": {"invokeModel": {"body": invoke}}}))
}

/// `CountTokens`' answer (`{"inputTokens": n}`) as Anthropic's (`{"input_tokens": n}`).
pub(super) fn token_count(body: &[u8]) -> Result<Bytes, GatewayError> {
    let answer: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid_upstream_response(NAME, format!("not JSON: {e}")))?;
    let tokens = answer
        .get("inputTokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| GatewayError::invalid_upstream_response(NAME, "no `inputTokens` in the token count"))?;
    json_bytes(&serde_json::json!({"input_tokens": tokens}))
}

fn invoke_body(input: &BuildInput<'_>, params: &Value) -> Value {
    let version = input.target.option("anthropic_version").unwrap_or(DEFAULT_VERSION);
    let mut body = Map::new();
    body.insert("anthropic_version".into(), version.into());
    let betas = crate::providers::anthropic::betas(input);
    if !betas.is_empty() {
        body.insert("anthropic_beta".into(), betas.into());
    }
    if let Some(params) = params.as_object() {
        let kept = params.iter().filter(|(k, _)| !matches!(k.as_str(), "model" | "stream" | "anthropic_version"));
        body.extend(kept.map(|(k, v)| (k.clone(), v.clone())));
    }
    Value::Object(body)
}

/// `InvokeModelWithResponseStream` frames → Anthropic's events, passed on as Anthropic's
/// own stream is (an `error` event or a Bedrock exception ends it as an error).
#[derive(Debug)]
pub(super) struct ClaudeEvents {
    decoder: FrameDecoder,
    frames: Vec<Frame>,
    events: OwnEvents,
    failed: Option<GatewayError>,
}

impl ClaudeEvents {
    pub(super) fn new() -> Self {
        Self { decoder: FrameDecoder::new(), frames: Vec::new(), events: OwnEvents::messages(SLUG), failed: None }
    }

    fn handle(&mut self, frame: &Frame, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        match frame.header(":message-type").unwrap_or("event") {
            "event" if frame.header(":event-type") == Some("chunk") => {}
            "event" => return Ok(()),
            "exception" => {
                let kind = frame.header(":exception-type").unwrap_or("exception");
                let message = serde_json::from_slice::<Value>(&frame.payload)
                    .ok()
                    .and_then(|v| {
                        v.get("message").or_else(|| v.get("Message")).and_then(Value::as_str).map(str::to_owned)
                    })
                    .unwrap_or_else(|| String::from_utf8_lossy(&frame.payload).into_owned());
                return Err(stream_error(format!("{NAME} error: {kind}: {message}")));
            }
            other => {
                let code = frame.header(":error-code").unwrap_or(other);
                let message = frame.header(":error-message").unwrap_or("");
                return Err(stream_error(format!("{NAME} error: {code}: {message}")));
            }
        }
        let chunk: Value = serde_json::from_slice(&frame.payload)
            .map_err(|e| stream_error(format!("{NAME} sent a chunk that is not JSON: {e}")))?;
        let encoded = chunk.get("bytes").and_then(Value::as_str).unwrap_or("");
        let event = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| stream_error(format!("{NAME} sent a chunk without base64 `bytes`")))?;
        self.events.on_event(SseEvent { event: String::new(), data: event, id: None }, out)
    }
}

fn stream_error(message: String) -> GatewayError {
    stream_error_verbatim(SLUG, message)
}

impl StreamTranslator for ClaudeEvents {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let decoded = self.decoder.feed(bytes, &mut self.frames);
        let frames = std::mem::take(&mut self.frames);
        // Frames decoded before a corrupt one are still delivered, then the error.
        let result = frames
            .iter()
            .try_for_each(|frame| self.handle(frame, out))
            .and(decoded.map_err(|e| stream_error(format!("{NAME} error: {}", e.0))));
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
        if !self.events.is_complete() {
            return Err(self.events.cut_short());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_is_recognised_in_every_form_of_model_id() {
        assert!(is_claude("anthropic.claude-sonnet-4-5-20250929-v1:0"));
        assert!(is_claude("us.anthropic.claude-3-7-sonnet-20250219-v1:0"));
        assert!(is_claude("arn:aws:bedrock:us-east-1:1:inference-profile/global.anthropic.claude-opus-4-1-v1:0"));
        assert!(!is_claude("meta.llama3-70b-instruct-v1:0"));
        assert!(!is_claude("amazon.nova-pro-v1:0"));
    }
}
