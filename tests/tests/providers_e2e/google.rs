//! Google Gemini API, end to end.

use gateway_tests::mock::{GatewayOptions, MockReply, MockUpstream, Received, start_gateway};
use serde_json::{Map, Value, json};

use crate::common::*;

pub(crate) fn google_error(status: u16, code: &str, message: &str) -> MockReply {
    let body = json!({"error": {"code": status, "message": message, "status": code}});
    MockReply::Json(status, vec![], body.to_string())
}

pub(crate) const GENERATE_FIELDS: &[&str] = &[
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "labels",
];
pub(crate) const GENERATION_CONFIG_FIELDS: &[&str] = &[
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
];
pub(crate) const PART_DATA: &[&str] =
    &["text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"];

/// `GenerateContentRequest` validation (the error texts are Google's). Vertex also
/// insists on a role for every content.
pub(crate) fn check_generate_body(body: &Map<String, Value>, vertex: bool) -> Result<(), String> {
    if let Some(key) = unknown_key(body, GENERATE_FIELDS) {
        return Err(format!("Invalid JSON payload received. Unknown name \"{key}\": Cannot find field."));
    }
    if let Some(Value::Object(config)) = body.get("generationConfig")
        && let Some(key) = unknown_key(config, GENERATION_CONFIG_FIELDS)
    {
        return Err(format!(
            "Invalid JSON payload received. Unknown name \"{key}\" at 'generation_config': Cannot find field."
        ));
    }
    if let Some(stop) = body.get("generationConfig").and_then(|c| c.get("stopSequences"))
        && !stop.as_array().is_some_and(|s| s.len() <= 5 && s.iter().all(Value::is_string))
    {
        return Err("* GenerateContentRequest.generation_config.stop_sequences: a list of at most 5 strings".into());
    }
    if let Some(system) = body.get("systemInstruction") {
        let parts = system["parts"].as_array().filter(|p| !p.is_empty());
        if !parts.is_some_and(|p| p.iter().all(|p| p["text"].is_string())) {
            return Err("* GenerateContentRequest.system_instruction.parts: must hold text parts".into());
        }
    }
    if let Some(tools) = body.get("tools") {
        let ok = tools.as_array().is_some_and(|tools| {
            tools.iter().all(|t| {
                t["functionDeclarations"].as_array().is_none_or(|d| d.iter().all(|f| f["name"].as_str().is_some()))
            })
        });
        if !ok {
            return Err("* GenerateContentRequest.tools[0].function_declarations[0].name: Name cannot be empty.".into());
        }
    }
    let contents = body.get("contents").and_then(Value::as_array).filter(|c| !c.is_empty());
    let contents = contents.ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    let mut previous_calls = 0;
    for (i, c) in contents.iter().enumerate() {
        let role = c["role"].as_str();
        match role {
            Some("user" | "model") => {}
            None if !vertex => {}
            _ => return Err("Please use a valid role: user, model.".into()),
        }
        let parts = c["parts"].as_array().filter(|p| !p.is_empty());
        let parts =
            parts.ok_or(format!("* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."))?;
        let mut calls = 0;
        let mut responses = 0;
        for (j, p) in parts.iter().enumerate() {
            let data: Vec<&str> = PART_DATA.iter().copied().filter(|k| p.get(*k).is_some()).collect();
            if data.len() != 1 {
                return Err(format!(
                    "* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' must have one initialized field"
                ));
            }
            match data[0] {
                "text" if p["text"].as_str() == Some("") => {
                    return Err(format!(
                        "* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field 'data' must have one initialized field"
                    ));
                }
                "functionCall" => calls += 1,
                "functionResponse" => {
                    if !p["functionResponse"]["response"].is_object() || !p["functionResponse"]["name"].is_string() {
                        return Err(format!(
                            "* GenerateContentRequest.contents[{i}].parts[{j}].function_response: name and an object response are required"
                        ));
                    }
                    responses += 1;
                }
                "inlineData" => {
                    let d = &p["inlineData"];
                    if !d["mimeType"].as_str().is_some_and(|m| m.contains('/'))
                        || !d["data"].as_str().is_some_and(|x| !x.is_empty() && !x.starts_with("data:"))
                    {
                        return Err(format!(
                            "* GenerateContentRequest.contents[{i}].parts[{j}].inline_data: mime_type and base64 data are required"
                        ));
                    }
                }
                _ => {}
            }
        }
        if responses > 0 && responses != previous_calls {
            return Err("Please ensure that the number of function response parts is equal to the number of \
                        function call parts of the function call turn."
                .into());
        }
        previous_calls = calls;
    }
    Ok(())
}

pub(crate) fn check_google(r: &Received, key: &str, model: &str) -> Result<(), MockReply> {
    let plain = format!("/v1beta/models/{model}:generateContent");
    let streaming = format!("/v1beta/models/{model}:streamGenerateContent?alt=sse");
    ensure!(
        r.method == "POST" && (r.uri == plain || r.uri == streaming),
        google_error(404, "NOT_FOUND", &format!("models/{model} is not found for API version v1beta ({})", r.uri))
    );
    ensure!(
        r.header("x-goog-api-key").is_some() || r.uri.contains("key="),
        google_error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
        )
    );
    ensure!(
        r.header("x-goog-api-key") == Some(key),
        google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
    );
    ensure!(is_json(r), google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."));
    let body = body_json(r).map_err(|m| google_error(400, "INVALID_ARGUMENT", &m))?;
    check_generate_body(&body, false).map_err(|m| google_error(400, "INVALID_ARGUMENT", &m))
}

pub(crate) fn gemini_answer(model: &str, text: &str) -> Value {
    json!({
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 8, "totalTokenCount": 39},
        "modelVersion": model,
        "responseId": "resp-e2e-1"
    })
}

/// `streamGenerateContent?alt=sse`: one whole `GenerateContentResponse` per event, CRLF
/// framed as Google sends it; the last carries the finish reason.
pub(crate) fn gemini_stream(model: &str, pieces: &[&str]) -> Vec<String> {
    let n = pieces.len();
    let events: Vec<(Option<&str>, Value)> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut candidate = json!({"content": {"parts": [{"text": p}], "role": "model"}, "index": 0});
            if i + 1 == n {
                candidate["finishReason"] = json!("STOP");
            }
            let used = 2 * (i as u64 + 1);
            (
                None,
                json!({"candidates": [candidate],
                "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": used, "totalTokenCount": 11 + used},
                "modelVersion": model, "responseId": "resp-e2e-s"}),
            )
        })
        .collect();
    sse(&events, "\r\n")
}

#[tokio::test]
pub(crate) async fn google_end_to_end() {
    let model = "gemini-2.0-flash";
    let mock = MockUpstream::start_checked(
        move |r| check_google(r, "AIza-e2e", model),
        [
            MockReply::ok(gemini_answer(model, "Il fait 21 °C à Paris.")),
            sse_reply(gemini_stream(model, &["Bon", "jour ", "👋"])),
            google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        ],
    )
    .await;
    let gw = start_gateway(GatewayOptions::default()).await;
    let target = json!({"provider": "google", "api_key": "AIza-e2e", "custom_host": format!("{}/v1beta", mock.base)});

    let answer = chat(&gw, &mock, &target, &conversation(model)).await;
    assert_openai_completion(&answer, "Il fait 21 °C à Paris.");
    assert_eq!(answer["id"], "resp-e2e-1");

    let s = stream(&gw, &mock, &target, &streamed(model)).await;
    assert_eq!(s.content, "Bonjour 👋");
    assert_eq!(s.finish_reason.as_deref(), Some("stop"));
    assert_eq!(s.usage.unwrap()["total_tokens"], 17);

    let err = rate_limited(&gw, &mock, &target, &hello(model), "google").await;
    assert_eq!(err["error"]["type"], "RESOURCE_EXHAUSTED");
    assert_eq!(err["error"]["code"], 429);

    let got = mock.received();
    assert!(got[1].uri.ends_with(":streamGenerateContent?alt=sse"));
}
