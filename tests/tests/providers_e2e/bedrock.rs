//! Bedrock Converse, SigV4 checked independently, the binary event stream.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use gateway_core::engine::ResponseBody;
use gateway_core::{Config, Endpoint, GatewayRequest, RequestBody, RequestOptions};
use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, Received, start_gateway};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::anthropic::{BOTH_SAMPLING_KNOBS, WHITESPACE_STOP, refuses_temperature_with_top_p};
use crate::common::*;

pub(crate) const AWS_KEY_ID: &str = "AKIDE2EEXAMPLE";
pub(crate) const AWS_SECRET: &str = "e2e/Secret+Key/EXAMPLEKEY";
pub(crate) const AWS_REGION: &str = "eu-west-3";

pub(crate) fn aws_error(status: u16, kind: &str, message: &str) -> MockReply {
    MockReply::Json(
        status,
        vec![("x-amzn-errortype", format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"))],
        json!({"message": message}).to_string(),
    )
}

/// SigV4 from its specification, sharing nothing with the provider's signer: the
/// canonical request is rebuilt from what arrived on the socket (method, raw path, query,
/// the headers named in `SignedHeaders`, the body's own hash).
pub(crate) mod sigv4_check {
    use super::*;

    pub fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }

    pub fn hex(bytes: &[u8]) -> String {
        hex::encode(bytes)
    }

    /// RFC 3986 encoding of everything but unreserved characters (and `/` in paths).
    fn encode(s: &str, keep_slash: bool) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b'/' if keep_slash => "/".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    fn canonical_query(query: &str) -> String {
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (encode(k, false), encode(v, false))
            })
            .collect();
        pairs.sort();
        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
    }

    /// Days since 1970-01-01 of a civil date (for the clock-skew check).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn parse_amz_date(s: &str) -> Option<u64> {
        let n = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok());
        if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
            return None;
        }
        let days = days_from_civil(n(0, 4)?, n(4, 6)?, n(6, 8)?);
        u64::try_from(days * 86_400 + n(9, 11)? * 3600 + n(11, 13)? * 60 + n(13, 15)?).ok()
    }

    fn denied(message: &str) -> MockReply {
        aws_error(403, "InvalidSignatureException", message)
    }

    /// Verify the request the way AWS does; `Err` is AWS's answer.
    pub fn verify(r: &Received, secret: &str, region: &str, service: &str) -> Result<(), MockReply> {
        let auth = r
            .header("authorization")
            .ok_or_else(|| aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token"))?;
        let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
            denied("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        })?;
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for field in rest.split(", ") {
            match field.split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed_headers = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => return Err(denied(&format!("Authorization header has an unexpected field: {field}"))),
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) = (credential, signed_headers, signature) else {
            return Err(denied("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'."));
        };
        ensure!(
            signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            denied("The signature must be 64 lowercase hex digits.")
        );
        let amz_date = r.header("x-amz-date").ok_or_else(|| denied("Missing x-amz-date"))?;
        let signed_at = parse_amz_date(amz_date).ok_or_else(|| denied("x-amz-date is not YYYYMMDD'T'HHMMSS'Z'"))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        ensure!(
            now.abs_diff(signed_at) <= 15 * 60,
            denied(&format!("Signature expired: {amz_date} is now earlier than the allowed window."))
        );
        let scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
        let (key_id, got_scope) = credential.split_once('/').unwrap_or((credential, ""));
        ensure!(
            key_id == AWS_KEY_ID,
            aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        );
        ensure!(
            got_scope == scope,
            denied(&format!(
                "Credential should be scoped to a valid region and service: expected {scope}, got {got_scope}"
            ))
        );
        let names: Vec<&str> = signed_headers.split(';').collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        ensure!(sorted == names, denied("SignedHeaders must be lowercase, sorted and unique."));
        for required in ["content-type", "host", "x-amz-content-sha256", "x-amz-date"] {
            ensure!(names.contains(&required), denied(&format!("'{required}' must be a signed header.")));
        }
        let body_hash = hex(&Sha256::digest(&r.body));
        ensure!(
            r.header("x-amz-content-sha256") == Some(body_hash.as_str()),
            aws_error(
                400,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
        );

        let (path, query) = r.uri.split_once('?').unwrap_or((&r.uri, ""));
        let mut canonical = format!("POST\n{}\n{}\n", encode(path, true), canonical_query(query));
        for name in &names {
            let values: Vec<String> = r
                .headers
                .get_all(*name)
                .iter()
                .map(|v| v.to_str().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            ensure!(!values.is_empty(), denied(&format!("Signed header '{name}' is missing from the request.")));
            canonical.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        canonical.push_str(&format!("\n{signed_headers}\n{body_hash}"));
        let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), &amz_date.as_bytes()[..8]);
        for part in [region, service, "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let expected = hex(&hmac(&key, to_sign.as_bytes()));
        ensure!(
            expected == signature,
            denied(&format!(
                "The request signature we calculated does not match the signature you provided. Check your AWS \
                 Secret Access Key and signing method. Consult the service documentation for details.\n\nThe \
                 Canonical String for this request should have been\n'{canonical}'\n\nThe String-to-Sign should \
                 have been\n'{to_sign}'\n"
            ))
        );
        Ok(())
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn aws_documentation_example_signing_key() {
        // The signing-key example of the SigV4 documentation (20120215 / us-east-1 / iam).
        let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        for part in ["us-east-1", "iam", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        assert_eq!(hex(&key), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_amz_date("20231114T221320Z"), Some(1_700_000_000));
        assert_eq!(parse_amz_date("2023-11-14"), None);
    }
}

pub(crate) const CONVERSE_FIELDS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
    "outputConfig",
];
pub(crate) const CONTENT_BLOCK_KINDS: &[&str] =
    &["text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "reasoningContent", "cachePoint"];

/// Converse's documented validation (the error texts are Bedrock's).
pub(crate) fn check_converse_body(body: &Map<String, Value>) -> Result<(), String> {
    if let Some(key) = unknown_key(body, CONVERSE_FIELDS) {
        return Err(format!(
            "Malformed input request: extraneous key [{key}] is not permitted, please reformat your input and try again."
        ));
    }
    if let Some(Value::Object(config)) = body.get("inferenceConfig")
        && let Some(key) = unknown_key(config, &["maxTokens", "temperature", "topP", "stopSequences"])
    {
        return Err(format!("Malformed input request: extraneous key [{key}] is not permitted in inferenceConfig."));
    }
    if let Some(stop) = body.get("inferenceConfig").and_then(|c| c.get("stopSequences"))
        && !stop.as_array().is_some_and(|s| s.iter().all(|x| x.as_str().is_some_and(|x| !x.is_empty())))
    {
        return Err("inferenceConfig.stopSequences: a list of non-empty strings".into());
    }
    if let Some(system) = body.get("system")
        && !system.as_array().is_some_and(|s| {
            s.iter().all(|b| {
                b["text"].as_str().is_some_and(|t| !t.trim().is_empty())
                    || b.get("cachePoint").is_some()
                    || b.get("guardContent").is_some()
            })
        })
    {
        return Err(
            "The text field in the SystemContentBlock object is blank. Add text to the text field, and try again."
                .into(),
        );
    }
    let messages = body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty());
    let messages = messages.ok_or(
        "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
    )?;
    let mut uses_tools = false;
    let mut open_calls: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        let expected = if i % 2 == 0 { "user" } else { "assistant" };
        if i == 0 && role != "user" {
            return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
        }
        if role != expected {
            return Err("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
        }
        let blocks = m["content"].as_array().filter(|c| !c.is_empty());
        let blocks = blocks.ok_or(format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."))?;
        let mut calls = Vec::new();
        let mut answered = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let kinds: Vec<&str> = CONTENT_BLOCK_KINDS.iter().copied().filter(|k| b.get(*k).is_some()).collect();
            if kinds.len() != 1 || b.as_object().is_some_and(|o| o.len() != 1) {
                return Err(format!("The ContentBlock object at messages.{i}.content.{j} must set exactly one field."));
            }
            match kinds[0] {
                "text" if b["text"].as_str().is_some_and(|t| !t.trim().is_empty()) => {}
                "text" => {
                    return Err(format!(
                        "The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."
                    ));
                }
                "image" => {
                    let img = &b["image"];
                    if role != "user"
                        || !["png", "jpeg", "gif", "webp"].contains(&img["format"].as_str().unwrap_or_default())
                        || img["source"]["bytes"].as_str().is_none_or(|x| x.is_empty())
                    {
                        return Err(format!(
                            "messages.{i}.content.{j}.image: format (png, jpeg, gif, webp) and source.bytes are required in a user message"
                        ));
                    }
                }
                "toolUse" => {
                    uses_tools = true;
                    let u = &b["toolUse"];
                    if role != "assistant"
                        || !u["toolUseId"].is_string()
                        || !u["name"].is_string()
                        || !u["input"].is_object()
                    {
                        return Err(format!(
                            "messages.{i}.content.{j}.toolUse: toolUseId, name and an object input are required in an assistant message"
                        ));
                    }
                    calls.push(u["toolUseId"].as_str().unwrap_or_default().to_owned());
                }
                "toolResult" => {
                    uses_tools = true;
                    let t = &b["toolResult"];
                    let id = t["toolUseId"].as_str().unwrap_or_default();
                    if role != "user" || !open_calls.iter().any(|c| c == id) {
                        return Err(format!(
                            "messages.{i}.content.{j}: toolResult {id} does not answer a toolUse of the previous assistant message"
                        ));
                    }
                    if t["content"].as_array().is_none_or(|c| c.is_empty()) {
                        return Err(format!(
                            "The content field in the ToolResultBlock at messages.{i}.content.{j} is empty."
                        ));
                    }
                    answered.push(id.to_owned());
                }
                _ => {}
            }
        }
        if let Some(missing) = open_calls.iter().find(|c| !answered.contains(c)) {
            return Err(format!("Expected toolResult blocks at messages.{i}.content for the following Ids: {missing}"));
        }
        open_calls = calls;
    }
    if uses_tools && body.get("toolConfig").is_none() {
        return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into());
    }
    if let Some(config) = body.get("toolConfig") {
        let tools = config["tools"].as_array().filter(|t| !t.is_empty());
        // A Tool is a toolSpec, or a cachePoint after one (prompt caching of the tools).
        let spec = |t: &Value| t["toolSpec"]["name"].is_string() && t["toolSpec"]["inputSchema"]["json"].is_object();
        let cache_point =
            |t: &Value| t["cachePoint"]["type"] == "default" && t.as_object().is_some_and(|o| o.len() == 1);
        let ok = tools.is_some_and(|t| spec(&t[0]) && t.iter().all(|t| spec(t) || cache_point(t)));
        if !ok {
            return Err(
                "The toolConfig field must hold at least one tool with a toolSpec (name and inputSchema.json).".into(),
            );
        }
    }
    Ok(())
}

pub(crate) fn check_bedrock(r: &Received, model: &str) -> Result<(), MockReply> {
    // The model id travels as one path segment (`:` → `%3A`).
    let encoded: String = model.replace(':', "%3A");
    let converse = format!("/model/{encoded}/converse");
    let stream = format!("/model/{encoded}/converse-stream");
    ensure!(
        r.method == "POST" && (r.uri == converse || r.uri == stream),
        aws_error(404, "UnknownOperationException", &format!("Unknown operation {}", r.uri))
    );
    ensure!(is_json(r), aws_error(400, "ValidationException", "content-type must be application/json"));
    sigv4_check::verify(r, AWS_SECRET, AWS_REGION, "bedrock")?;
    let body = body_json(r).map_err(|m| aws_error(400, "ValidationException", &m))?;
    let config = &body.get("inferenceConfig").cloned().unwrap_or_default();
    let whitespace_stop = config
        .get("stopSequences")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s.as_str().is_some_and(|s| s.trim().is_empty())));
    ensure!(
        !(model.contains("claude-") && whitespace_stop),
        aws_error(400, "ValidationException", &format!("The model returned the following errors: {WHITESPACE_STOP}"))
    );
    ensure!(
        !(refuses_temperature_with_top_p(model) && config.get("temperature").is_some() && config.get("topP").is_some()),
        aws_error(
            400,
            "ValidationException",
            &format!("The model returned the following errors: {BOTH_SAMPLING_KNOBS}")
        )
    );
    check_converse_body(&body).map_err(|m| aws_error(400, "ValidationException", &m))
}

/// CRC-32 (IEEE), bit by bit: a second implementation beside the provider's table.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// One AWS event-stream message: prelude (lengths + CRC), string headers, payload, CRC.
pub(crate) fn event_frame(event_type: &str, payload: &Value) -> Vec<u8> {
    let mut headers = Vec::new();
    for (name, value) in
        [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")]
    {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let payload = payload.to_string().into_bytes();
    let total = 12 + headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32(&out[..8]).to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&payload);
    out.extend_from_slice(&crc32(&out).to_be_bytes());
    out
}

/// A ConverseStream answer, padded (`p`) as Bedrock pads its events, cut into pieces
/// that straddle frame boundaries.
pub(crate) fn converse_stream(pieces: &[&str]) -> MockReply {
    let pad = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
    let mut bytes = event_frame("messageStart", &json!({"p": &pad[..7], "role": "assistant"}));
    for p in pieces {
        bytes.extend(event_frame(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": p}, "p": &pad[..13]}),
        ));
    }
    bytes.extend(event_frame("contentBlockStop", &json!({"contentBlockIndex": 0, "p": &pad[..3]})));
    bytes.extend(event_frame("messageStop", &json!({"p": pad, "stopReason": "end_turn"})));
    bytes.extend(event_frame(
        "metadata",
        &json!({"metrics": {"latencyMs": 412}, "p": &pad[..5],
                "usage": {"inputTokens": 14, "outputTokens": 6, "totalTokens": 20}}),
    ));
    let chunks = bytes.chunks(37).map(<[u8]>::to_vec).collect();
    MockReply::Chunked { content_type: "application/vnd.amazon.eventstream", chunks, gap: Duration::from_millis(1) }
}

pub(crate) fn bedrock_target(mock: &MockUpstream) -> Value {
    json!({"provider": "bedrock", "aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET,
           "aws_region": AWS_REGION, "custom_host": mock.base})
}

pub(crate) fn converse_answer(text: &str) -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 40, "outputTokens": 9, "totalTokens": 49},
        "metrics": {"latencyMs": 350}
    })
}

#[tokio::test]
pub(crate) async fn bedrock_end_to_end() {
    let model = "anthropic.claude-3-5-haiku-20241022-v1:0";
    let mock = MockUpstream::start_checked(
        move |r| check_bedrock(r, model),
        [
            MockReply::ok(converse_answer("Il fait 21 °C à Paris.")),
            converse_stream(&["Bon", "jour ", "👋"]),
            aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again."),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = bedrock_target(&mock);

    let answer = chat(&gw, &mock, &target, &conversation(model)).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");
    assert_eq!(answer["model"], model);

    let s = stream(&gw, &mock, &target, &streamed(model)).await;
    assert_eq!(s.content, "Bonjour 👋");
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    assert_eq!(s.usage.unwrap()["total_tokens"], 20);

    let err = rate_limited(&gw, &mock, &target, &hello(model), "bedrock").await;
    assert_eq!(err["error"]["code"], "rate_limited");
    assert!(err["error"]["message"].as_str().unwrap().contains("Too many requests"));

    let got = mock.received();
    assert!(got[1].uri.ends_with("/converse-stream"));
    // The host the signature covers is the one that reached the socket.
    assert_eq!(got[0].header("host"), Some(mock.base.trim_start_matches("http://")));
}

#[tokio::test]
pub(crate) async fn bedrock_session_token_is_signed_and_the_engine_stream_completes() {
    let model = "amazon.nova-lite-v1:0";
    let mock = MockUpstream::start_checked(
        move |r| {
            ensure!(
                r.header("x-amz-security-token") == Some("session-e2e"),
                aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
            );
            let auth = r.header("authorization").unwrap_or_default();
            ensure!(
                auth.contains("x-amz-security-token"),
                aws_error(403, "InvalidSignatureException", "'x-amz-security-token' must be a signed header.")
            );
            check_bedrock(r, model)
        },
        [converse_stream(&["Salut", " !"])],
    )
    .await;
    let mut target = bedrock_target(&mock);
    target["aws_session_token"] = json!("session-e2e");

    // In-process: the engine over the hyper transport, no server in between.
    let engine = gateway_http::engine(gateway_http::TransportOptions::default()).unwrap();
    let request = GatewayRequest::json(Endpoint::ChatCompletions, RequestBody::from_value(streamed(model)).unwrap());
    let options = RequestOptions { config: Some(Arc::new(Config::from_json(&target).unwrap())), ..Default::default() };
    let response = engine.handle(&request, &options).await;
    assert!(response.error().is_none(), "{:?} {:?}", response.error(), mock.rejected());
    assert_eq!(response.status, 200);
    let Ok(gateway_core::Answer { body: ResponseBody::Events(mut events), .. }) = response.result else {
        panic!("expected a stream")
    };
    let mut chunks = Vec::new();
    while let Some(item) = events.next().await {
        let bytes: Bytes = item.unwrap_or_else(|e| panic!("the stream failed: {e}"));
        chunks.push(serde_json::from_slice::<Value>(&bytes).unwrap());
    }
    let s = summarise(chunks);
    assert_eq!(s.content, "Salut !");
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    assert!(mock.rejected().is_empty(), "{:?}", mock.rejected());
}

#[tokio::test]
pub(crate) async fn the_bedrock_mock_refuses_a_wrong_secret() {
    // The signature check must be able to fail: the same request signed with another
    // secret is refused with AWS's own 403.
    let model = "anthropic.claude-3-5-haiku-20241022-v1:0";
    let mock =
        MockUpstream::start_checked(move |r| check_bedrock(r, model), [MockReply::ok(converse_answer("unused"))]).await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let mut target = bedrock_target(&mock);
    target["aws_secret_access_key"] = json!("not-the-secret");
    let (status, _, text) = post(&gw, "/v1/chat/completions", &target, &hello(model)).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("signature we calculated does not match"), "{text}");
    assert_eq!(mock.rejected().len(), 1);
}

// Cohere v2

/// What `InvokeModel` checks of a Claude Messages body: the Bedrock version in the body, no
/// `model` or `stream` (the URL says both), Anthropic's own fields as written.
fn check_claude_invoke(r: &Received, model: &str) -> Result<(), MockReply> {
    let encoded: String = model.replace(':', "%3A");
    let invoke = format!("/model/{encoded}/invoke");
    let stream = format!("/model/{encoded}/invoke-with-response-stream");
    ensure!(
        r.method == "POST" && (r.uri == invoke || r.uri == stream),
        aws_error(404, "UnknownOperationException", &format!("Unknown operation {}", r.uri))
    );
    sigv4_check::verify(r, AWS_SECRET, AWS_REGION, "bedrock")?;
    let body = body_json(r).map_err(|m| aws_error(400, "ValidationException", &m))?;
    ensure!(
        body.get("anthropic_version") == Some(&json!("bedrock-2023-05-31")),
        aws_error(400, "ValidationException", "anthropic_version: bedrock-2023-05-31 is required")
    );
    if let Some(key) = ["model", "stream"].into_iter().find(|k| body.contains_key(*k)) {
        return Err(aws_error(400, "ValidationException", &format!("extraneous key [{key}] is not permitted")));
    }
    ensure!(
        body.get("max_tokens").is_some_and(Value::is_u64),
        aws_error(400, "ValidationException", "max_tokens: field required")
    );
    ensure!(r.header("anthropic-version").is_none(), aws_error(400, "ValidationException", "unexpected header"));
    Ok(())
}

/// Anthropic's events as `InvokeModelWithResponseStream` carries them: base64 `bytes` in
/// `chunk` frames, cut into pieces that straddle frame boundaries.
fn claude_event_stream(events: &[Value]) -> MockReply {
    use base64::Engine as _;
    let mut bytes = Vec::new();
    for event in events {
        let encoded = base64::engine::general_purpose::STANDARD.encode(event.to_string());
        bytes.extend(event_frame("chunk", &json!({"bytes": encoded, "p": "abcdef"})));
    }
    let chunks = bytes.chunks(41).map(<[u8]>::to_vec).collect();
    MockReply::Chunked { content_type: "application/vnd.amazon.eventstream", chunks, gap: Duration::from_millis(1) }
}

#[tokio::test]
pub(crate) async fn claude_on_bedrock_serves_a_messages_caller_through_invoke_model() {
    let model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
    let message = json!({"id": "msg_bdrk", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "thinking", "thinking": "Short.", "signature": "sig"}, {"type": "text", "text": "Bonjour !"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 8, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}});
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant",
               "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": null, "stop_sequence": null,
               "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "jour 👋"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": 6}}),
        json!({"type": "message_stop"}),
    ];
    let mock = MockUpstream::start_checked(
        move |r| check_claude_invoke(r, model),
        [MockReply::ok(message.clone()), claude_event_stream(&events)],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = bedrock_target(&mock);
    let request = json!({"model": model, "max_tokens": 1024, "thinking": {"type": "enabled", "budget_tokens": 512},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Say hello in French"}]});

    let (status, _, text) = post(&gw, "/v1/messages", &target, &request).await;
    assert_eq!(status, 200, "{text} {:?}", mock.rejected());
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), message, "Claude's message as it came");

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let (status, _, text) = post(&gw, "/v1/messages", &target, &streamed).await;
    assert_eq!(status, 200, "{text} {:?}", mock.rejected());
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    let data: Vec<Value> =
        text.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(data, events, "every event as Claude sent it");
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));

    let sent = mock.received();
    assert!(sent[0].uri.ends_with("/invoke") && sent[1].uri.ends_with("/invoke-with-response-stream"));
    let body = body_json(&sent[0]).unwrap();
    assert_eq!(body["thinking"], request["thinking"]);
    assert_eq!(body["system"], request["system"], "cache_control intact");
    assert!(mock.rejected().is_empty(), "{:?}", mock.rejected());
}
