//! The transform fixture runner: `tests/fixtures/transforms/<provider>/<case>/case.json`.
//!
//! A case holds a target config, an OpenAI request, the upstream request the provider
//! must build (method, URL, the listed headers, the JSON body), and then either an
//! upstream answer with the OpenAI answer it must become, or an upstream stream with the
//! chunk payloads it must become. Time and ids are fixed, so outputs are exact. Binding
//! tests read the same files.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gateway_core::config::{Config, Leaf, Node};
use gateway_core::providers::{BuildInput, ResponseContext};
use gateway_core::{Endpoint, GatewayRequest, RequestBody};
use serde_json::{Value, json};

/// The clock every fixture sees: 2023-11-14T22:13:20Z.
pub fn fixture_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// The token every fixture's fetched credential is (e.g. a service-account access token).
pub const FIXTURE_TOKEN: &str = "ya29.fixture-token";

/// The id every fixture sees for answers whose upstream has none.
pub const FIXTURE_ID: &str = "chatcmpl-fixture";

/// Parse an endpoint name as written in fixtures (`chat_completions`, `embeddings`, ...).
pub fn endpoint(name: &str) -> Endpoint {
    match name {
        "chat_completions" => Endpoint::ChatCompletions,
        "completions" => Endpoint::Completions,
        "embeddings" => Endpoint::Embeddings,
        "image_generations" => Endpoint::ImageGenerations,
        "moderations" => Endpoint::Moderations,
        "messages" => Endpoint::Messages,
        "count_tokens" => Endpoint::CountTokens,
        "responses" => Endpoint::Responses,
        "rerank" => Endpoint::Rerank,
        other => panic!("unknown endpoint {other}"),
    }
}

/// One loaded case.
pub struct Case {
    /// `<provider>/<case>`.
    pub name: String,
    /// The parsed case.json.
    pub spec: Value,
    /// The stream bytes, if the case has `upstream_stream.txt` or `upstream_stream.b64`.
    pub stream: Option<Vec<u8>>,
}

/// Every case under tests/fixtures/transforms.
pub fn cases() -> Vec<Case> {
    let root = crate::fixture_path("transforms");
    let mut out = Vec::new();
    let mut providers: Vec<_> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    providers.sort();
    for provider in providers {
        let mut dirs: Vec<_> =
            std::fs::read_dir(&provider).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for dir in dirs {
            let name = format!(
                "{}/{}",
                provider.file_name().unwrap().to_string_lossy(),
                dir.file_name().unwrap().to_string_lossy()
            );
            let text = std::fs::read_to_string(dir.join("case.json")).unwrap_or_else(|e| panic!("{name}: {e}"));
            let spec: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let stream = std::fs::read(dir.join("upstream_stream.txt")).ok().or_else(|| {
                std::fs::read_to_string(dir.join("upstream_stream.b64")).ok().map(|t| base64_decode(t.trim()))
            });
            out.push(Case { name, spec, stream });
        }
    }
    out
}

/// The single leaf of a case's target config.
pub fn leaf(spec: &Value) -> Leaf {
    let config = Config::from_json(&spec["target"]).unwrap_or_else(|e| panic!("target config: {e}"));
    match config.root() {
        Node::Leaf(leaf) => leaf.clone(),
        Node::Group(_) => panic!("a case's target must be a single leaf"),
    }
}

/// The case's request.
pub fn request(spec: &Value) -> GatewayRequest {
    let ep = endpoint(spec["endpoint"].as_str().unwrap_or("chat_completions"));
    let body = RequestBody::json(Bytes::from(spec["request"].to_string())).unwrap();
    let mut request = GatewayRequest::json(ep, body);
    // The caller's own headers (`anthropic-beta`, ...), where a case sends some.
    for (name, value) in spec["request_headers"].as_object().into_iter().flatten() {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers.append(name, http::HeaderValue::from_str(value.as_str().unwrap()).unwrap());
    }
    request
}

/// Run one case; `Err` describes the first mismatch.
pub fn run(case: &Case, splits: &[usize]) -> Result<(), String> {
    let spec = &case.spec;
    let leaf = leaf(spec);
    let target = leaf.provider.clone().ok_or("target has no provider")?;
    let request = request(spec);
    let input = BuildInput {
        now: fixture_now(),
        request: &request,
        target: &target,
        settings: &leaf.settings,
        custom_host: leaf.settings.custom_host.as_deref(),
        forward_headers: &leaf.settings.forward_headers,
        credential: None,
    };
    // A Messages request to a provider without a Messages API goes through its chat
    // translation, as the engine serves it.
    let served = match gateway_core::providers::for_request(target.provider, &request, &leaf.settings) {
        Ok(served) => served,
        Err(e) => {
            let want = spec.get("build_error").ok_or_else(|| format!("for_request failed: {e}"))?;
            return compare("build error", &json!({"status": e.status, "body": e.to_openai_json()}), want);
        }
    };
    let provider = served.provider();
    // The answers are checked against OpenAI's shape when the provider rebuilds them.
    let openai_answers = request.endpoint.dialect() == gateway_core::Dialect::OpenAi
        && !gateway_core::providers::speaks_openai(provider.slug());
    // A provider that needs a fetched credential gets a fixed one, as the transport would.
    let credential = provider.credential_request(&target).map(|_| FIXTURE_TOKEN);
    let input = BuildInput { credential, ..input };

    // The upstream request.
    let built = provider.build_request(&input);
    if let Some(want_err) = spec.get("build_error") {
        let e = built.err().ok_or("expected build_request to fail")?;
        return compare("build error", &json!({"status": e.status, "body": e.to_openai_json()}), want_err);
    }
    let built = built.map_err(|e| format!("build_request failed: {e}"))?;
    // What the provider leaves out is reported to the caller (route info), so every case
    // states it: `dropped_params`, absent meaning none.
    let want_dropped = spec.get("dropped_params").cloned().unwrap_or_else(|| json!([]));
    compare("dropped_params", &json!(built.dropped_params), &want_dropped)?;
    let want = &spec["upstream_request"];
    if let Some(m) = want.get("method") {
        compare("method", &json!(built.method.as_str()), m)?;
    }
    compare("url", &json!(built.url), &want["url"])?;
    if let Some(Value::Object(headers)) = want.get("headers") {
        for (name, value) in headers {
            let got = built.headers.get(name.as_str()).map(|v| v.to_str().unwrap_or("<binary>").to_owned());
            match value {
                Value::Null if got.is_none() => {}
                Value::String(pattern) if pattern.starts_with("re:") => {
                    let re = regex_lite(&pattern[3..]);
                    if !got.as_deref().is_some_and(&re) {
                        return Err(format!("header {name}: {got:?} does not match {pattern}"));
                    }
                }
                _ => compare(&format!("header {name}"), &json!(got), value)?,
            }
        }
    }
    if let Some(body) = want.get("body") {
        let got: Value = serde_json::from_slice(&built.body).map_err(|e| format!("upstream body is not JSON: {e}"))?;
        compare("upstream body", &got, body)?;
    }

    // The answer.
    let cx = ResponseContext {
        request: &request,
        settings: &leaf.settings,
        now: fixture_now(),
        fallback_id: FIXTURE_ID,
        usage_chunk: false,
    };
    if let Some(stream) = &case.stream {
        let mut translator = provider.stream_translator(&cx);
        let mut out = Vec::new();
        let mut start = 0;
        let mut result = Ok(());
        for &s in splits.iter().chain(std::iter::once(&stream.len())) {
            let s = s.clamp(start, stream.len());
            result = translator.feed(&stream[start..s], &mut out);
            start = s;
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = translator.finish(&mut out);
        }
        let chunks: Vec<Value> = out
            .iter()
            .map(|c| {
                serde_json::from_slice(c).map_err(|e| format!("chunk is not JSON: {e}: {}", String::from_utf8_lossy(c)))
            })
            .collect::<Result<_, _>>()?;
        if openai_answers {
            let content: String =
                chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect();
            let asked_tool = chunks.iter().any(|c| c.pointer("/choices/0/finish_reason") == Some(&json!("tool_calls")));
            structured_content(&spec["request"], (!asked_tool).then_some(content.as_str()))?;
        }
        compare("chunks", &Value::Array(chunks), &spec["chunks"])?;
        if openai_answers {
            chunks_shape(&spec["chunks"])?;
        }
        if let Some(want) = spec.get("usage") {
            // Translated again as the engine does it: with the usage chunk asked for.
            let cx = ResponseContext { usage_chunk: true, ..cx };
            let mut translator = provider.stream_translator(&cx);
            let mut all = Vec::new();
            translator.feed(stream, &mut all).map_err(|e| e.message)?;
            translator.finish(&mut all).map_err(|e| e.message)?;
            // Every chunk's usage taken together, as the engine's meter does.
            let usage =
                all.iter().filter_map(|c| gateway_core::usage::usage_in(c)).reduce(gateway_core::usage::Usage::merged);
            let requested = request.body.value().and_then(|b| b["model"].as_str()).map(str::to_owned);
            let model = all.first().and_then(|c| gateway_core::usage::read_answer(c).model).or(requested);
            compare("usage", &usage_and_cost(provider.slug(), usage, model), want)?;
        }
        let got_error = result.err().map(|e| json!({"code": e.code.as_str(), "message": e.message}));
        let want_error = spec.get("stream_error").cloned().unwrap_or(Value::Null);
        return match (got_error, want_error) {
            (None, Value::Null) => Ok(()),
            (Some(got), Value::Null) => Err(format!("stream failed: {got}")),
            (None, want) => Err(format!("stream succeeded, expected error {want}")),
            (Some(got), want) => compare("stream error code", &got["code"], &want["code"]),
        };
    }
    let upstream = &spec["upstream_response"];
    let status = upstream["status"].as_u64().unwrap_or(200) as u16;
    let body = match &upstream["body"] {
        Value::String(text) => Bytes::from(text.clone()),
        v => Bytes::from(v.to_string()),
    };
    let want = &spec["response"];
    if (200..300).contains(&status) {
        match provider.transform_response(&cx, body) {
            Ok(out) => {
                let got: Value = serde_json::from_slice(&out).map_err(|e| format!("answer is not JSON: {e}"))?;
                compare("status", &json!(200), &want["status"])?;
                compare("answer", &got, &want["body"])?;
                if openai_answers {
                    openai_shape(&got)?;
                    let message = &got["choices"][0]["message"];
                    let asked_tool = message.get("tool_calls").is_some();
                    structured_content(&spec["request"], message["content"].as_str().filter(|_| !asked_tool))?;
                }
                if let Some(want) = spec.get("usage") {
                    let facts = gateway_core::usage::read_answer(&out);
                    compare("usage", &usage_and_cost(provider.slug(), facts.usage, facts.model), want)?;
                }
                Ok(())
            }
            Err(e) => compare("answer error", &json!({"status": e.status, "body": e.to_openai_json()}), want),
        }
    } else {
        let e = provider.upstream_error(status, &body);
        compare("error", &json!({"status": e.status, "body": e.to_openai_json()}), want)
    }
}

/// Normalised usage and its cost, as a fixture's `usage` states them.
fn usage_and_cost(provider: &str, usage: Option<gateway_core::usage::Usage>, model: Option<String>) -> Value {
    let Some(usage) = usage else { return Value::Null };
    let cost = model.and_then(|m| gateway_core::pricing::cost(provider, &m, &usage, None));
    let mut out = serde_json::to_value(usage).unwrap_or_default();
    // Rounded to a billionth of a dollar, so float noise never fails a fixture.
    out["cost"] = cost.map_or(Value::Null, |c| json!((c * 1e9).round() / 1e9));
    out
}

/// OpenAI's published shape of the answers a translating provider builds, written once
/// and checked for every provider: every choice of a `chat.completion` has `index`,
/// `message`, `logprobs` (null: not requested) and `finish_reason`; every `usage` has the
/// three counts and `prompt_tokens_details.cached_tokens`. (OpenAI-family answers are the
/// upstream's own bytes and are not rebuilt.)
fn openai_shape(answer: &Value) -> Result<(), String> {
    if answer["object"] == "chat.completion" {
        for choice in answer["choices"].as_array().ok_or("an answer without choices")? {
            let mut keys: Vec<&str> =
                choice.as_object().ok_or("a choice is not an object")?.keys().map(String::as_str).collect();
            keys.sort_unstable();
            if keys != ["finish_reason", "index", "logprobs", "message"] {
                return Err(format!("a choice is not OpenAI's shape: {choice}"));
            }
        }
    }
    match answer.get("usage") {
        Some(usage) if answer["object"] != "list" => usage_shape(usage),
        _ => Ok(()),
    }
}

fn usage_shape(usage: &Value) -> Result<(), String> {
    let counted = |k: &str| usage[k].is_u64();
    if ["prompt_tokens", "completion_tokens", "total_tokens"].iter().all(|k| counted(k))
        && usage["prompt_tokens_details"]["cached_tokens"].is_u64()
    {
        Ok(())
    } else {
        Err(format!("usage is not OpenAI's shape: {usage}"))
    }
}

/// A caller who asked for JSON (`response_format`) gets JSON: the answer's content (a
/// stream's joined content deltas) parses, is an object for `json_object`, and validates
/// against a `json_schema`. An answer that is a tool call of the caller's has no content
/// to check (`None`).
fn structured_content(request: &Value, content: Option<&str>) -> Result<(), String> {
    let format = &request["response_format"];
    let kind = format["type"].as_str().unwrap_or("text");
    let Some(content) = content.filter(|_| kind != "text") else { return Ok(()) };
    let answer: Value = serde_json::from_str(content)
        .map_err(|e| format!("asked for {kind}, got content that is not JSON ({e}): {content}"))?;
    if !answer.is_object() {
        return Err(format!("asked for {kind}, got JSON that is not an object: {content}"));
    }
    if let Some(schema) = format.pointer("/json_schema/schema") {
        let validator = jsonschema::validator_for(schema).map_err(|e| format!("the fixture's schema: {e}"))?;
        if let Some(error) = validator.iter_errors(&answer).next() {
            return Err(format!("the content does not validate against the schema: {error}: {content}"));
        }
    }
    Ok(())
}

/// The same for a stream: every chunk's choices carry `logprobs`, and a usage chunk's
/// usage is complete.
fn chunks_shape(chunks: &Value) -> Result<(), String> {
    for chunk in chunks.as_array().into_iter().flatten() {
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            if choice.get("logprobs").is_none() {
                return Err(format!("a chunk's choice has no logprobs: {choice}"));
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            usage_shape(usage)?;
        }
    }
    Ok(())
}

fn compare(what: &str, got: &Value, want: &Value) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what} differs\n  got:  {}\n  want: {}",
            serde_json::to_string(got).unwrap_or_default(),
            serde_json::to_string(want).unwrap_or_default()
        ))
    }
}

/// A tiny matcher for `re:` header patterns: `^`/`$` anchors and `.*` wildcards only,
/// enough for signatures whose shape, not value, is fixed.
fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool {
    let anchored_start = pattern.starts_with('^');
    let anchored_end = pattern.ends_with('$');
    let core = pattern.trim_start_matches('^').trim_end_matches('$').to_owned();
    move |s: &str| {
        let parts: Vec<&str> = core.split(".*").collect();
        let mut rest = s;
        for (i, part) in parts.iter().enumerate() {
            if i == 0 && anchored_start {
                match rest.strip_prefix(part) {
                    Some(r) => rest = r,
                    None => return false,
                }
            } else if let Some(pos) = rest.find(part) {
                rest = &rest[pos + part.len()..];
            } else {
                return false;
            }
        }
        !anchored_end || rest.is_empty() || parts.last().is_some_and(|p| p.is_empty())
    }
}

/// Standard base64 (for binary stream fixtures, which may be line-wrapped).
pub fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).expect("a valid base64 fixture")
}
