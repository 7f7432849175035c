//! The mocks' request validators are the proof behind every end-to-end test here: each
//! is shown to accept a well-formed request and to refuse known-bad ones with the
//! provider's own words, so a validator that accepts everything cannot pass.

use serde_json::{Map, Value, json};

use crate::anthropic::check_messages_body;
use crate::cohere::check_cohere_chat;
use crate::google::check_generate_body;

fn object(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else { panic!("an object") };
    map
}

/// `good` is accepted; every `(bad, refusal)` is refused with that refusal.
fn check(validator: impl Fn(&Map<String, Value>) -> Result<(), String>, good: Value, bad: &[(Value, &str)]) {
    assert_eq!(validator(&object(good.clone())), Ok(()), "{good}");
    for (body, refusal) in bad {
        let got = validator(&object(body.clone()));
        assert!(got.as_ref().is_err_and(|m| m.contains(refusal)), "{body}: {got:?}, expected `{refusal}`");
    }
}

const HAIKU: &str = "claude-3-5-haiku-20241022";

#[test]
fn the_anthropic_validator_refuses_what_the_messages_api_refuses() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    check(
        |b| check_messages_body(b, false, HAIKU),
        json!({"model": HAIKU, "max_tokens": 10, "messages": messages}),
        &[
            (json!({"model": HAIKU, "messages": messages}), "max_tokens: Field required"),
            (json!({"max_tokens": 10, "messages": messages}), "model: Field required"),
            (
                json!({"model": HAIKU, "max_tokens": 10, "messages": messages, "n": 1}),
                "n: Extra inputs are not permitted",
            ),
            (json!({"model": HAIKU, "max_tokens": 10, "messages": messages, "temperature": 1.5}), "temperature"),
            (
                json!({"model": HAIKU, "max_tokens": 10, "messages": messages, "stop_sequences": [" "]}),
                "stop_sequences",
            ),
        ],
    );
}

#[test]
fn the_vertex_claude_validator_wants_the_vertex_version_and_no_model() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    check(
        |b| check_messages_body(b, true, HAIKU),
        json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 10, "messages": messages}),
        &[
            (json!({"max_tokens": 10, "messages": messages}), "anthropic_version: Input should be 'vertex-2023-10-16'"),
            (
                json!({"anthropic_version": "vertex-2023-10-16", "model": HAIKU, "max_tokens": 10, "messages": messages}),
                "model: Extra inputs are not permitted",
            ),
        ],
    );
}

#[test]
fn the_gemini_validator_refuses_what_generate_content_refuses() {
    let contents = json!([{"role": "user", "parts": [{"text": "hi"}]}]);
    for vertex in [false, true] {
        check(
            |b| check_generate_body(b, vertex),
            json!({"contents": contents}),
            &[
                (json!({"contents": contents, "messages": []}), "Unknown name \"messages\""),
                (json!({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}), "Please use a valid role"),
            ],
        );
    }
}

#[test]
fn the_cohere_validator_refuses_what_v2_chat_refuses() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    check(
        check_cohere_chat,
        json!({"model": "command-a-03-2025", "messages": messages, "stream": false}),
        &[
            (json!({"model": "command-a-03-2025", "messages": messages}), "stream is required"),
            (json!({"model": "", "messages": messages, "stream": false}), "model must not be empty"),
            (json!({"model": "command-a-03-2025", "messages": messages, "stream": false, "n": 1}), "unknown field `n`"),
        ],
    );
}
