//! Awkward but valid requests: whatever the gateway sends, the upstream must accept.

use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, Received, start_gateway};
use serde_json::{Value, json};

use crate::anthropic::{anthropic_message, check_anthropic};
use crate::bedrock::{bedrock_target, check_bedrock, converse_answer};
use crate::cohere::check_cohere;
use crate::common::*;
use crate::google::{check_google, gemini_answer};
use crate::vertex::{check_vertex_claude, check_vertex_gemini, vertex_target};

/// OpenAI requests that real clients send and that upstream validators are picky about.
/// Every provider below can serve each of them, so each must come back 200: neither the
/// provider's API nor the gateway itself may refuse one.
pub(crate) fn awkward_requests(model: &str) -> Vec<(&'static str, Value)> {
    let weather = conversation(model)["tools"].clone();
    let user = |text: &str| json!({"role": "user", "content": text});
    vec![
        (
            "json_schema with $defs and a required tool choice, parallel calls off",
            json!({"model": model, "messages": [user("List two cities.")], "tools": weather,
                   "tool_choice": "required", "parallel_tool_calls": false,
                   "response_format": {"type": "json_schema", "json_schema": {"name": "cities", "strict": true, "schema": {
                       "type": "object", "additionalProperties": false, "required": ["cities"],
                       "properties": {"cities": {"type": "array", "items": {"$ref": "#/$defs/city"}}},
                       "$defs": {"city": {"type": "object", "additionalProperties": false, "required": ["name"],
                                          "properties": {"name": {"type": "string"}}}}}}}}),
        ),
        (
            "system, developer and a late system message; a whitespace stop; max_completion_tokens; top_p",
            json!({"model": model, "messages": [
                {"role": "developer", "content": "Answer in French."},
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                user("Hi"),
                {"role": "assistant", "content": [{"type": "text", "text": "Bonjour."}]},
                {"role": "system", "content": "Now be polite."},
                user("Again")
            ], "stop": ["\n\n", "END"], "max_completion_tokens": 50, "top_p": 1, "temperature": 0}),
        ),
        (
            "tool results given as text parts, tool_choice none with tools in history",
            json!({"model": model, "tools": weather, "tool_choice": "none", "messages": [
                user("Weather?"),
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "{\"temp_c\":3}"}]}
            ]}),
        ),
        (
            "a conversation that ends on a tool result (no user text after it)",
            json!({"model": model, "tools": weather, "messages": [
                user("Weather?"),
                {"role": "assistant", "content": "Let me check.", "tool_calls": [
                    {"id": "c9", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c9", "content": "sunny"}
            ]}),
        ),
        (
            "prompt caching marks (cache_control) on a system part, a user part and a tool",
            json!({"model": model, "tools": [{"type": "function", "cache_control": {"type": "ephemeral"},
                       "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}],
                   "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Policy.", "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": [{"type": "text", "text": "A long document.", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "Summarise it."}]}
            ]}),
        ),
        (
            "json_object with a seed, n = 1, user, and explicit nulls",
            json!({"model": model, "messages": [user("JSON please")], "response_format": {"type": "json_object"},
                   "seed": 3, "n": 1, "user": "u-1", "stop": null, "tools": null, "temperature": null}),
        ),
    ]
}

pub(crate) struct Upstream {
    name: &'static str,
    model: &'static str,
    check: fn(&Received, &str) -> Result<(), MockReply>,
    answer: fn() -> MockReply,
    target: fn(&MockUpstream) -> Value,
}

#[tokio::test]
pub(crate) async fn awkward_requests_are_never_refused_upstream() {
    let upstreams = [
        Upstream {
            name: "anthropic",
            model: "claude-3-5-haiku-20241022",
            check: |r, _| check_anthropic(r, "sk-ant-e2e"),
            answer: || MockReply::ok(anthropic_message("claude-3-5-haiku-20241022", "ok")),
            target: |m| json!({"provider": "anthropic", "api_key": "sk-ant-e2e", "custom_host": m.v1()}),
        },
        Upstream {
            name: "anthropic (sonnet 4.5)",
            model: "claude-sonnet-4-5-20250929",
            check: |r, _| check_anthropic(r, "sk-ant-e2e"),
            answer: || MockReply::ok(anthropic_message("claude-sonnet-4-5-20250929", "ok")),
            target: |m| json!({"provider": "anthropic", "api_key": "sk-ant-e2e", "custom_host": m.v1()}),
        },
        Upstream {
            name: "google",
            model: "gemini-2.5-flash",
            check: |r, model| check_google(r, "AIza-e2e", model),
            answer: || MockReply::ok(gemini_answer("gemini-2.5-flash", "ok")),
            target: |m| json!({"provider": "google", "api_key": "AIza-e2e", "custom_host": format!("{}/v1beta", m.base)}),
        },
        Upstream {
            name: "vertex-ai (gemini)",
            model: "gemini-2.5-flash",
            check: |r, model| check_vertex_gemini(r, model),
            answer: || MockReply::ok(gemini_answer("gemini-2.5-flash", "ok")),
            target: vertex_target,
        },
        Upstream {
            name: "vertex-ai (claude)",
            model: "claude-3-5-haiku@20241022",
            check: |r, model| check_vertex_claude(r, model),
            answer: || MockReply::ok(anthropic_message("claude-3-5-haiku-20241022", "ok")),
            target: vertex_target,
        },
        Upstream {
            name: "vertex-ai (claude opus 4.1)",
            model: "claude-opus-4-1@20250805",
            check: |r, model| check_vertex_claude(r, model),
            answer: || MockReply::ok(anthropic_message("claude-opus-4-1-20250805", "ok")),
            target: vertex_target,
        },
        Upstream {
            name: "bedrock (haiku 4.5 inference profile)",
            model: "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            check: |r, model| check_bedrock(r, model),
            answer: || MockReply::ok(converse_answer("ok")),
            target: bedrock_target,
        },
        Upstream {
            name: "bedrock",
            model: "anthropic.claude-3-5-haiku-20241022-v1:0",
            check: |r, model| check_bedrock(r, model),
            answer: || MockReply::ok(converse_answer("ok")),
            target: bedrock_target,
        },
        Upstream {
            name: "cohere",
            model: "command-a-03-2025",
            check: |r, _| check_cohere(r, "co-e2e"),
            answer: || {
                MockReply::ok(json!({"id": "c1", "finish_reason": "COMPLETE",
                    "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                    "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1}}}))
            },
            target: |m| json!({"provider": "cohere", "api_key": "co-e2e", "custom_host": m.base}),
        },
    ];
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut problems = Vec::new();
    for upstream in &upstreams {
        let requests = awkward_requests(upstream.model);
        let (check, model) = (upstream.check, upstream.model);
        let mock = MockUpstream::start_checked(
            move |r| check(r, model),
            (0..requests.len()).map(|_| (upstream.answer)()).collect::<Vec<_>>(),
        )
        .await;
        let target = (upstream.target)(&mock);
        for (what, body) in &requests {
            let before = mock.rejected().len();
            let (status, _, text) = post(&gw, "/v1/chat/completions", &target, body).await;
            let rejected = mock.rejected();
            if rejected.len() > before {
                problems.push(format!("{} / {what}: the upstream refused: {}", upstream.name, rejected[before]));
            } else if status != 200 {
                // Every provider takes every one of these: a refusal of the gateway's own
                // would be a regression too, not an acceptable answer.
                problems.push(format!("{} / {what}: {status} {text}", upstream.name));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
