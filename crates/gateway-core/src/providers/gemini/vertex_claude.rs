//! Claude on Vertex AI: Anthropic's Messages API behind Vertex's `rawPredict`.
//!
//! The body is Anthropic's Messages body with two changes: no `model` (it is in the URL)
//! and `anthropic_version` in the body instead of a header. Answers, streams and the
//! errors Claude raises are Anthropic's own, so the anthropic module's builder, parser and
//! stream translator are reused as they are; only Vertex's own refusals (quota, auth,
//! unknown model) arrive in Google's error shape.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::providers::anthropic::request::{MessagesBody, messages_body};
use crate::providers::anthropic::response::chat_completion;
use crate::providers::anthropic::stream::MessagesEvents;
use crate::providers::openai_compatible::openai_style_error;
use crate::providers::sse_stream::SseTranslator;
use crate::providers::{ResponseContext, StreamTranslator};

/// The Messages API version Vertex expects when the config names none.
pub(super) const DEFAULT_VERSION: &str = "vertex-2023-10-16";

/// Claude model ids as Vertex names them (`claude-sonnet-4@20250514`), also accepted with
/// the `anthropic.` publisher prefix other gateways use.
pub(super) fn is_claude(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m.starts_with("claude-") || m.starts_with("anthropic.")
}

/// The model id as it goes in the URL (without a publisher prefix).
pub(super) fn url_model(model: &str) -> &str {
    model.get(..10).filter(|p| p.eq_ignore_ascii_case("anthropic.")).map_or(model, |_| &model[10..])
}

/// `rawPredict`, or `streamRawPredict` for a stream.
pub(super) fn method(stream: bool) -> &'static str {
    if stream { "streamRawPredict" } else { "rawPredict" }
}

/// The request body and the caller's parameters left out of it.
pub(super) fn body(params: &Value, model: &str, version: &str) -> Result<(Bytes, Vec<String>), GatewayError> {
    let MessagesBody { body, dropped } = messages_body(params, model)?;
    let mut full = Map::with_capacity(body.len() + 1);
    full.insert("anthropic_version".into(), version.into());
    full.extend(body);
    let bytes = crate::providers::body_bytes(&Value::Object(full))?;
    Ok((bytes, dropped))
}

/// A caller's own Messages body as `rawPredict` takes it: without `model` (it is in the
/// URL), with Vertex's `anthropic_version`.
pub(super) fn raw_messages_body(params: &Value, version: &str) -> Result<Bytes, GatewayError> {
    let mut full = Map::new();
    full.insert("anthropic_version".into(), version.into());
    if let Some(obj) = params.as_object() {
        full.extend(
            obj.iter().filter(|(k, _)| *k != "model" && *k != "anthropic_version").map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    crate::providers::body_bytes(&Value::Object(full))
}

/// A `count_tokens` request as Vertex's `count-tokens:rawPredict` takes it: Anthropic's,
/// with the model as Vertex names it.
pub(super) fn count_tokens_body(params: &Value, model: &str) -> Result<Bytes, GatewayError> {
    let mut body = params.as_object().cloned().unwrap_or_default();
    body.insert("model".into(), model.into());
    crate::providers::body_bytes(&Value::Object(body))
}

/// A successful answer: an Anthropic Messages response.
pub(super) fn chat(provider: &str, cx: &ResponseContext<'_>, body: &[u8]) -> Result<Bytes, GatewayError> {
    chat_completion(provider, cx, body)
}

/// The translator for `streamRawPredict`, which streams Anthropic's SSE events unchanged.
pub(super) fn stream_translator(provider: &'static str, cx: &ResponseContext<'_>) -> Box<dyn StreamTranslator> {
    Box::new(SseTranslator::new(MessagesEvents::new(provider, cx)))
}

/// Whether an error body is Claude's own (`{"type":"error","error":{"type","message"}}`)
/// rather than Vertex's (`{"error":{"code","message","status"}}`, possibly in an array).
pub(super) fn is_anthropic_error(body: &[u8]) -> bool {
    let Ok(Value::Object(v)) = crate::json::from_slice::<Value>(body) else {
        return false;
    };
    v.get("type").and_then(Value::as_str) == Some("error")
        || v.get("error").is_some_and(|e| e.get("type").is_some_and(Value::is_string) && e.get("status").is_none())
}

/// Claude's own error, read as the anthropic provider reads it.
pub(super) fn upstream_error(provider: &str, status: u16, body: &[u8]) -> GatewayError {
    openai_style_error(provider, status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_models_are_recognised_with_or_without_the_publisher_prefix() {
        assert!(is_claude("claude-3-5-sonnet-v2@20241022"));
        assert!(is_claude("anthropic.claude-3-5-sonnet@20240620"));
        assert!(is_claude("Claude-opus-4@20250514"));
        assert!(!is_claude("gemini-2.0-flash"));
        assert!(!is_claude("meta.llama3"));
        assert_eq!(url_model("anthropic.claude-3-5-sonnet@20240620"), "claude-3-5-sonnet@20240620");
        assert_eq!(url_model("claude-sonnet-4@20250514"), "claude-sonnet-4@20250514");
        assert_eq!(url_model("anthropic"), "anthropic");
    }

    #[test]
    fn error_shapes() {
        assert!(is_anthropic_error(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#));
        assert!(is_anthropic_error(br#"{"error":{"type":"invalid_request_error","message":"x"}}"#));
        assert!(!is_anthropic_error(br#"{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}"#));
        assert!(!is_anthropic_error(br#"[{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}]"#));
        assert!(!is_anthropic_error(b"<html>502</html>"));
    }
}
