//! Native provider hot paths (issue 4): building the upstream request for a realistic chat
//! (Anthropic, Gemini, Bedrock with SigV4), and translating recorded upstream streams into
//! OpenAI chunks (bytes per second), a fresh translator per transcript as in production.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gateway_core::config::{Leaf, Node};
use gateway_core::providers::{BuildInput, ResponseContext, for_request};
use gateway_core::{Config, Endpoint, GatewayRequest, RequestBody};
use serde_json::{Value, json};

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn leaf(target: &Value) -> Leaf {
    match Config::from_json(target).unwrap().root() {
        Node::Leaf(leaf) => leaf.clone(),
        Node::Group(_) => panic!("a single target expected"),
    }
}

/// A system prompt, three user turns (one answered by a tool call and its result) and two
/// tools: what an agent framework sends on its third step.
fn realistic_chat(model: &str) -> GatewayRequest {
    let tool = |name: &str, description: &str, properties: Value, required: Value| {
        json!({"type": "function", "function": {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}})
    };
    let body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a travel assistant. Answer briefly, cite prices in EUR, and use the tools for live data."},
            {"role": "user", "content": "I want to spend a long weekend in Lisbon in May. What is the weather usually like?"},
            {"role": "assistant", "content": "Lisbon in May is mild and sunny: highs around 22 °C, lows around 14 °C, little rain."},
            {"role": "user", "content": "Great. Find me a direct flight from Paris on Friday the 16th, leaving after work."},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_flights_1", "type": "function",
                "function": {"name": "search_flights", "arguments": "{\"from\":\"CDG\",\"to\":\"LIS\",\"date\":\"2025-05-16\",\"depart_after\":\"18:00\"}"}}]},
            {"role": "tool", "tool_call_id": "call_flights_1", "content": "[{\"flight\":\"TP441\",\"departs\":\"19:05\",\"arrives\":\"20:50\",\"price_eur\":142},{\"flight\":\"AF1124\",\"departs\":\"20:15\",\"arrives\":\"22:00\",\"price_eur\":168}]"},
            {"role": "user", "content": "Take the cheaper one and check the weather forecast for that weekend."}
        ],
        "tools": [
            tool("search_flights", "Search direct flights between two airports on a date",
                json!({"from": {"type": "string", "description": "IATA code"}, "to": {"type": "string", "description": "IATA code"},
                       "date": {"type": "string", "format": "date"}, "depart_after": {"type": "string", "description": "HH:MM"}}),
                json!(["from", "to", "date"])),
            tool("get_forecast", "Daily weather forecast for a city",
                json!({"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 10}}),
                json!(["city"])),
        ],
        "tool_choice": "auto",
        "temperature": 0.4,
        "max_tokens": 1024
    });
    GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::from_value(body).unwrap())
}

fn request_builds(c: &mut Criterion) {
    let mut group = c.benchmark_group("build_request");
    let targets = [
        ("anthropic", "claude-sonnet-4-20250514", json!({"provider": "anthropic", "api_key": "sk-ant-bench"})),
        ("google", "gemini-2.5-flash", json!({"provider": "google", "api_key": "AIza-bench"})),
        (
            "bedrock_sigv4",
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
            json!({"provider": "bedrock", "aws_access_key_id": "AKIDEXAMPLE",
                   "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "aws_region": "us-east-1"}),
        ),
    ];
    for (name, model, target) in targets {
        let leaf = leaf(&target);
        let provider_target = leaf.provider.clone().unwrap();
        let request = realistic_chat(model);
        let input = BuildInput {
            now: now(),
            request: &request,
            target: &provider_target,
            settings: &leaf.settings,
            custom_host: None,
            forward_headers: &[],
            credential: None,
        };
        // A build that fails would benchmark an error path.
        provider_target.provider.build_request(&input).unwrap();
        group.bench_function(name, |b| b.iter(|| provider_target.provider.build_request(black_box(&input)).unwrap()));
    }
    group.finish();
}

/// Standard base64 (the binary Bedrock transcripts are stored as `.b64`, line-wrapped).
fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).expect("a valid base64 fixture")
}

/// A recorded stream fixture that translates cleanly: its case and transcript bytes.
struct Transcript {
    name: String,
    spec: Value,
    bytes: Vec<u8>,
}

fn transcripts(provider: &str) -> Vec<Transcript> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/transforms").join(provider);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        // `stream_*` chat streams, streams of the caller APIs served through chat
        // (`responses_stream_translated`, ...) and passed on natively (Claude on Bedrock's
        // `messages_stream_native`).
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("stream_") || n.ends_with("_stream_translated") || n.ends_with("_stream_native")
            })
        })
        .collect();
    dirs.sort();
    dirs.into_iter()
        .filter_map(|d| {
            let spec: Value = serde_json::from_str(&std::fs::read_to_string(d.join("case.json")).unwrap()).unwrap();
            // Streams that must fail (cut short, corrupt, in-band errors) measure error paths.
            if spec.get("stream_error").is_some() {
                return None;
            }
            let bytes = std::fs::read(d.join("upstream_stream.txt"))
                .ok()
                .or_else(|| std::fs::read_to_string(d.join("upstream_stream.b64")).ok().map(|t| base64_decode(&t)))?;
            Some(Transcript { name: d.file_name().unwrap().to_string_lossy().into_owned(), spec, bytes })
        })
        .collect()
}

/// How long a transcript is made for measuring: a long answer's worth of events, so that
/// MiB/s measures translating chunks rather than setting up a translator.
const TRANSCRIPT_BYTES: usize = 48 * 1024;

/// A TCP segment's payload: the pieces the upstream's bytes arrive in.
const PIECE: usize = 1448;

/// The transcript with its content-delta events repeated until it is
/// [`TRANSCRIPT_BYTES`] long: SSE events (split at blank lines) for Anthropic and Google,
/// binary event-stream frames (split by their length prefix) for Bedrock. Every other
/// event stays once, in place, so the stream still starts and ends as recorded. `None`
/// for a transcript with no content delta (a one-event edge case: nothing to measure).
fn lengthen(provider: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let units: Vec<&[u8]> = if provider == "bedrock" {
        let mut frames = Vec::new();
        let mut rest = bytes;
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            frames.push(&rest[..len]);
            rest = &rest[len..];
        }
        frames
    } else {
        let text = bytes;
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < text.len() {
            // An event ends at a blank line: LF LF, or CR LF CR LF as Google frames it.
            let end = if text[i..].starts_with(b"\n\n") {
                Some(i + 2)
            } else if text[i..].starts_with(b"\r\n\r\n") {
                Some(i + 4)
            } else {
                None
            };
            match end {
                Some(end) => {
                    events.push(&text[start..end]);
                    start = end;
                    i = end;
                }
                None => i += 1,
            }
        }
        events.push(&text[start..]);
        events
    };
    let is_delta = |unit: &[u8]| {
        let text = String::from_utf8_lossy(unit);
        match provider {
            "anthropic" => text.contains("content_block_delta"),
            "google" => text.contains("\"parts\"") && !text.contains("finishReason"),
            // Claude's events ride base64-encoded in `chunk` frames.
            _ if text.contains("\"bytes\"") => claude_event(unit).contains("content_block_delta"),
            _ => text.contains("contentBlockDelta"),
        }
    };
    let first = units.iter().position(|u| is_delta(u))?;
    let last = units.iter().rposition(|u| is_delta(u)).unwrap_or(first);
    let deltas: usize = units[first..=last].iter().map(|u| u.len()).sum();
    let repeats = (TRANSCRIPT_BYTES / deltas.max(1)).max(1);
    let mut out = Vec::with_capacity(TRANSCRIPT_BYTES + bytes.len());
    units[..first].iter().for_each(|u| out.extend_from_slice(u));
    for _ in 0..repeats {
        units[first..=last].iter().for_each(|u| out.extend_from_slice(u));
    }
    units[last + 1..].iter().for_each(|u| out.extend_from_slice(u));
    Some(out)
}

/// The Anthropic event a Bedrock `chunk` frame carries (base64 in its `bytes`).
fn claude_event(frame: &[u8]) -> String {
    let text = String::from_utf8_lossy(frame);
    // `"bytes": "<base64>"`, however it is spaced.
    let after_key = text.split("\"bytes\"").nth(1).unwrap_or("");
    let encoded = after_key.split('"').nth(1).unwrap_or("");
    String::from_utf8_lossy(&base64_decode(encoded)).into_owned()
}

fn stream_translation(c: &mut Criterion) {
    for provider in ["anthropic", "google", "bedrock"] {
        let mut group = c.benchmark_group(format!("stream_translate/{provider}"));
        let mut measured = 0;
        for t in transcripts(provider) {
            let leaf = leaf(&t.spec["target"]);
            let endpoint = match t.spec["endpoint"].as_str() {
                Some("messages") => Endpoint::Messages,
                Some("responses") => Endpoint::Responses,
                _ => Endpoint::ChatCompletions,
            };
            let request =
                GatewayRequest::json(endpoint, RequestBody::json(Bytes::from(t.spec["request"].to_string())).unwrap());
            // A caller API the provider lacks is served through its chat translation.
            let served = for_request(leaf.provider.clone().unwrap().provider, &request, &leaf.settings).unwrap();
            let provider_impl = served.provider();
            let cx = ResponseContext {
                request: &request,
                settings: &leaf.settings,
                now: now(),
                fallback_id: "chatcmpl-b",
                usage_chunk: false,
            };
            // Fed as the bytes arrive from a socket, segment by segment.
            let translate = |bytes: &[u8]| {
                let mut translator = provider_impl.stream_translator(&cx);
                let mut out = Vec::with_capacity(1024);
                for piece in bytes.chunks(PIECE) {
                    translator.feed(piece, &mut out).unwrap();
                }
                translator.finish(&mut out).unwrap();
                out
            };
            let short = translate(&t.bytes).len();
            let Some(long) = lengthen(provider, &t.bytes) else { continue };
            let chunks = translate(&long).len();
            assert!(long.len() >= TRANSCRIPT_BYTES, "{provider}/{}", t.name);
            assert!(chunks > 10 * short.max(1), "{provider}/{}: {chunks} chunks from the long transcript", t.name);
            group.throughput(Throughput::Bytes(long.len() as u64));
            group.bench_function(&t.name, |b| b.iter(|| translate(black_box(&long))));
            measured += 1;
        }
        assert!(measured >= 2, "{provider}: only {measured} transcripts could be lengthened");
        group.finish();
    }
}

criterion_group!(providers, request_builds, stream_translation);
criterion_main!(providers);
