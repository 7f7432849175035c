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

use super::eventstream::{EventStream, Frame, FrameEvents, stream_error};
use super::{NAME, SLUG};
use crate::error::GatewayError;
use crate::providers::BuildInput;
use crate::providers::body_bytes;
use crate::providers::own_events::OwnEvents;
use crate::providers::sse_stream::SseEventHandler;
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
    body_bytes(&invoke_body(input, params))
}

/// A `count_tokens` request as `CountTokens` takes it: the `InvokeModel` body it would
/// be, base64 in `input.invokeModel.body`. That body must be a valid invocation, so it
/// gets the `max_tokens` a count request has no use for (it does not change the count).
pub(super) fn count_tokens_body(input: &BuildInput<'_>, params: &Value) -> Result<Bytes, GatewayError> {
    let mut body = invoke_body(input, params);
    if let Value::Object(map) = &mut body {
        map.entry("max_tokens").or_insert(Value::from(1));
    }
    let invoke = base64::engine::general_purpose::STANDARD.encode(body_bytes(&body)?);
    body_bytes(&serde_json::json!({"input": {"invokeModel": {"body": invoke}}}))
}

/// `CountTokens`' answer (`{"inputTokens": n}`) as Anthropic's (`{"input_tokens": n}`).
pub(super) fn token_count(body: &[u8]) -> Result<Bytes, GatewayError> {
    let answer: Value = crate::json::from_slice(body)
        .map_err(|e| GatewayError::invalid_upstream_response(NAME, format!("not JSON: {e}")))?;
    let tokens = answer
        .get("inputTokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| GatewayError::invalid_upstream_response(NAME, "no `inputTokens` in the token count"))?;
    body_bytes(&serde_json::json!({"input_tokens": tokens}))
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
/// own stream is (an `error` event ends it as an error).
#[derive(Debug)]
pub(super) struct ClaudeEvents(OwnEvents);

/// The translator of one Claude stream for a Messages caller.
pub(super) fn translator() -> EventStream<ClaudeEvents> {
    EventStream::new(ClaudeEvents(OwnEvents::messages(SLUG)))
}

impl FrameEvents for ClaudeEvents {
    fn event(&mut self, frame: &Frame, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        if frame.header(":event-type") != Some("chunk") {
            return Ok(());
        }
        let chunk: Value = crate::json::from_slice(&frame.payload)
            .map_err(|e| stream_error(format!("{NAME} sent a chunk that is not JSON: {e}")))?;
        let encoded = chunk.get("bytes").and_then(Value::as_str).unwrap_or("");
        let event = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| stream_error(format!("{NAME} sent a chunk without base64 `bytes`")))?;
        self.0.on_event(SseEvent { event: String::new(), data: event, id: None }, out)
    }

    fn finish(&mut self) -> Result<(), GatewayError> {
        if self.0.is_complete() { Ok(()) } else { Err(self.0.cut_short()) }
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
