//! ConverseStream (binary event-stream frames) → OpenAI `chat.completion.chunk` payloads.

use bytes::Bytes;
use serde_json::{Value, json};

use super::NAME;
use super::eventstream::{EventStream, Frame, FrameEvents, stream_error};
use super::response::{finish_reason, usage};
use crate::error::GatewayError;
use crate::providers::ResponseContext;
use crate::providers::sse_stream::single_choice_chunk;
use crate::providers::structured_output::{ANSWER_TOOL, answers_through_tool};

/// One ConverseStream answer being translated.
#[derive(Debug)]
pub(super) struct ConverseEvents {
    id: String,
    created: u64,
    model: Value,
    strict: bool,
    include_usage: bool,
    started: bool,
    /// `contentBlockIndex` of each tool-use block → its OpenAI `tool_calls` index.
    tool_blocks: Vec<(u64, usize)>,
    /// The request asked for JSON: a call of the answer tool is the content.
    through_tool: bool,
    /// The `contentBlockIndex` of the answer tool's call, once it started.
    answer_block: Option<u64>,
    /// `messageStop` arrived: the answer is complete (usage may still follow).
    stopped: bool,
    /// `metadata` arrived: nothing more is expected.
    done: bool,
}

/// The translator of one ConverseStream answer.
pub(super) fn translator(cx: &ResponseContext<'_>) -> EventStream<ConverseEvents> {
    EventStream::new(ConverseEvents::new(cx))
}

impl ConverseEvents {
    fn new(cx: &ResponseContext<'_>) -> Self {
        Self {
            id: cx.fallback_id.to_owned(),
            created: cx.created(),
            model: cx.model().map(Value::from).unwrap_or(Value::Null),
            strict: cx.strict(),
            include_usage: cx.include_usage(),
            started: false,
            tool_blocks: Vec::new(),
            through_tool: answers_through_tool(cx),
            answer_block: None,
            stopped: false,
            done: false,
        }
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> Bytes {
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if let (Some(u), Some(obj)) = (usage, v.as_object_mut()) {
            obj.insert("usage".into(), u);
        }
        Bytes::from(v.to_string())
    }

    fn delta(&mut self, delta: Value, out: &mut Vec<Bytes>) {
        self.start(out);
        out.push(single_choice_chunk(&self.id, self.created, &self.model, 0, delta, Value::Null));
    }

    /// The opening `{role: "assistant", content: ""}` chunk, once, even when the upstream
    /// skipped `messageStart`.
    fn start(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            let role = json!({"role": "assistant", "content": ""});
            out.push(single_choice_chunk(&self.id, self.created, &self.model, 0, role, Value::Null));
        }
    }
}

impl FrameEvents for ConverseEvents {
    fn event(&mut self, frame: &Frame, out: &mut Vec<Bytes>) -> Result<(), GatewayError> {
        if self.done {
            return Ok(());
        }
        let event = frame.header(":event-type").unwrap_or("");
        let known =
            ["messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"];
        if !known.contains(&event) {
            return Ok(()); // a new event type: skipped, never fatal
        }
        let p: Value = crate::json::from_slice(&frame.payload)
            .map_err(|e| stream_error(format!("{NAME} error: `{event}` event payload is not JSON: {e}")))?;
        let block_index = p.get("contentBlockIndex").and_then(Value::as_u64);
        match event {
            "messageStart" => self.start(out),
            "contentBlockStart" => {
                let tool = p.pointer("/start/toolUse");
                if tool.is_some_and(|t| self.through_tool && t["name"] == ANSWER_TOOL) {
                    self.answer_block = Some(block_index.unwrap_or(u64::MAX));
                    self.start(out);
                } else if let Some(tool) = tool {
                    let index = self.tool_blocks.len();
                    self.tool_blocks.push((block_index.unwrap_or(u64::MAX), index));
                    let call = json!({
                        "index": index,
                        "id": tool.get("toolUseId").cloned().unwrap_or(Value::Null),
                        "type": "function",
                        "function": {"name": tool.get("name").cloned().unwrap_or(Value::Null), "arguments": ""},
                    });
                    self.delta(json!({"tool_calls": [call]}), out);
                }
            }
            "contentBlockDelta" => {
                let delta = p.get("delta").unwrap_or(&Value::Null);
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        self.delta(json!({"content": text}), out);
                    }
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
                    if self.answer_block.is_some() && self.answer_block == block_index.or(Some(u64::MAX)) {
                        if !input.is_empty() {
                            self.delta(json!({"content": input}), out);
                        }
                        return Ok(());
                    }
                    let index = self
                        .tool_blocks
                        .iter()
                        .find(|(b, _)| Some(*b) == block_index)
                        .or(self.tool_blocks.last())
                        .map(|(_, i)| *i);
                    if let (Some(index), false) = (index, input.is_empty()) {
                        self.delta(json!({"tool_calls": [{"index": index, "function": {"arguments": input}}]}), out);
                    }
                }
                // reasoningContent and citations deltas have no OpenAI chunk field.
            }
            "messageStop" => {
                self.start(out);
                self.stopped = true;
                let mut stop_reason = p.get("stopReason").and_then(Value::as_str);
                // Calling the answer tool was answering, not asking for a tool.
                if self.answer_block.is_some() && self.tool_blocks.is_empty() && stop_reason == Some("tool_use") {
                    stop_reason = Some("end_turn");
                }
                let reason = finish_reason(stop_reason, self.strict);
                out.push(single_choice_chunk(&self.id, self.created, &self.model, 0, json!({}), reason));
            }
            "metadata" => {
                self.done = true;
                if let (true, Some(u)) = (self.include_usage, p.get("usage")) {
                    out.push(self.chunk(json!([]), Some(usage(u))));
                }
            }
            _ => {} // contentBlockStop: nothing to say
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), GatewayError> {
        if !self.stopped {
            return Err(stream_error(format!("{NAME} stream ended before the answer was complete (no messageStop)")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::eventstream::tests::encode;
    use super::*;
    use crate::error::ErrorCode;
    use crate::providers::StreamTranslator;
    use crate::request::{Endpoint, GatewayRequest, RequestBody};
    use crate::settings::TargetSettings;

    fn converse(body: Value) -> EventStream<ConverseEvents> {
        let request = GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::from_value(body).unwrap());
        let settings = TargetSettings { strict_open_ai_compliance: true, ..Default::default() };
        let cx = ResponseContext {
            request: &request,
            settings: &settings,
            now: std::time::UNIX_EPOCH,
            fallback_id: "id-1",
            usage_chunk: false,
        };
        translator(&cx)
    }

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        encode(
            &[(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
            payload.to_string().as_bytes(),
        )
    }

    #[test]
    fn exception_frame_is_a_stream_error() {
        let mut t = converse(json!({"model": "m", "messages": [], "stream": true}));
        let mut bytes = event("messageStart", json!({"role": "assistant"}));
        bytes.extend(encode(
            &[
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            br#"{"message":"Too many requests"}"#,
        ));
        let mut out = Vec::new();
        let err = t.feed(&bytes, &mut out).unwrap_err();
        assert_eq!(err.code, ErrorCode::StreamError);
        assert_eq!(err.message, "bedrock error: throttlingException: Too many requests");
        assert_eq!(out.len(), 1, "the chunk before the exception is still delivered");
        assert!(t.finish(&mut out).is_err());
    }

    #[test]
    fn unknown_events_are_skipped_and_stop_without_metadata_is_complete() {
        let mut t = converse(json!({"model": "m", "messages": [], "stream": true}));
        let mut bytes = event("messageStart", json!({"role": "assistant"}));
        bytes.extend(event("somethingNew", json!({"x": 1})));
        bytes.extend(event("messageStop", json!({"stopReason": "end_turn"})));
        let mut out = Vec::new();
        t.feed(&bytes, &mut out).unwrap();
        t.finish(&mut out).unwrap();
        assert_eq!(out.len(), 2);
    }
}
