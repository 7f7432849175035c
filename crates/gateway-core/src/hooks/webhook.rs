//! The webhook check, as Portkey's `default.webhook`: the check's context is posted to the
//! user's service, which answers `{"verdict": bool, "data"?, "transformedData"?}`. This
//! module reads its settings, makes the request and reads the answer; the engine sends it through its
//! transport (egress policy, timeout, size limit).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value, json};

use super::params::Params;
use super::{CheckRun, Phase, Rewrite, Subject, text};
use crate::json_path::JsonPath;
use crate::providers::HttpRequest;

/// The longest a webhook may be given to answer.
pub const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// A webhook check's settings.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Where the check's context is posted.
    pub url: String,
    /// Headers sent with it.
    pub headers: Vec<(String, String)>,
    /// How long the service has to answer.
    pub timeout: Duration,
}

/// A webhook check's settings from its parameters.
pub(super) fn settings(p: &Params<'_>) -> Result<Webhook, (JsonPath, String)> {
    let url = p.required_str("webhookURL")?;
    match url.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() => {}
        _ => return Err((p.path("webhookURL"), "must be an absolute http:// or https:// URL".to_owned())),
    }
    let headers = match p.map.get("headers") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        // Portkey's UI stores headers as a JSON string.
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => map,
            _ => return Err((p.path("headers"), "headers given as a string must be a JSON object".to_owned())),
        },
        Some(_) => return Err((p.path("headers"), "`headers` must be an object of strings".to_owned())),
    };
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value =
            value.as_str().ok_or_else(|| (p.path("headers").key(&name), "a header value is a string".to_owned()))?;
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() || http::HeaderValue::from_str(value).is_err() {
            return Err((p.path("headers").key(&name), "not a valid HTTP header".to_owned()));
        }
        out.push((name, value.to_owned()));
    }
    let timeout = match p.map.get("timeout") {
        None | Some(Value::Null) => Duration::from_millis(3000),
        Some(value) => match value.as_u64() {
            Some(ms) if ms > 0 && Duration::from_millis(ms) <= MAX_WEBHOOK_TIMEOUT => Duration::from_millis(ms),
            _ => {
                return Err((
                    p.path("timeout"),
                    format!("milliseconds, from 1 to {}", MAX_WEBHOOK_TIMEOUT.as_millis()),
                ));
            }
        },
    };
    Ok(Webhook { url: url.to_owned(), headers: out, timeout })
}

/// The most of a webhook's answer that is read.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The POST to the webhook: the request (without its headers, which may hold keys), the
/// answer in an after-request check, and where the request is going.
pub fn request(webhook: &Webhook, subject: &Subject<'_>) -> HttpRequest {
    let (request_text, response_text) = match subject.phase {
        Phase::Before => (subject.text.to_owned(), String::new()),
        Phase::After => (text::request_text(subject.request), subject.text.to_owned()),
    };
    let body = json!({
        "request": {"json": subject.request, "text": request_text},
        "response": {"json": subject.response, "text": response_text},
        "provider": subject.provider,
        "requestType": subject.endpoint.openai_path().trim_start_matches('/'),
        "metadata": subject.metadata,
        "eventType": subject.phase.event_type(),
    });
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in &webhook.headers {
        // Checked when the config was compiled.
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.insert(name, value);
        }
    }
    HttpRequest {
        method: Method::POST,
        url: webhook.url.clone(),
        headers,
        body: Bytes::from(body.to_string()),
        stream: false,
        dropped_params: Vec::new(),
    }
}

/// What the webhook's answer says.
pub fn verdict(phase: Phase, status: u16, body: &[u8]) -> CheckRun {
    if !(200..300).contains(&status) {
        return CheckRun::error(format!("the webhook answered with status {status}"));
    }
    let Ok(answer) = crate::json::from_slice::<Value>(body) else {
        return CheckRun::error("the webhook's answer is not JSON");
    };
    let Some(verdict) = answer.get("verdict").and_then(Value::as_bool) else {
        return CheckRun::error("the webhook's answer has no boolean `verdict`");
    };
    let side = match phase {
        Phase::Before => "request",
        Phase::After => "response",
    };
    let rewrite = answer
        .get("transformedData")
        .and_then(|t| t.get(side))
        .and_then(|s| s.get("json"))
        .filter(|json| json.is_object())
        .map(|json| Rewrite::Texts(json.clone()));
    CheckRun { verdict, error: None, data: answer.get("data").cloned().unwrap_or(Value::Null), rewrite }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_answer_decides_and_anything_else_is_an_error() {
        let run = verdict(Phase::Before, 200, br#"{"verdict": false, "data": {"why": "x"}}"#);
        assert!(!run.verdict && run.error.is_none());
        assert_eq!(run.data, json!({"why": "x"}));
        assert!(verdict(Phase::Before, 200, br#"{"verdict": true}"#).verdict);
        assert!(verdict(Phase::Before, 500, br#"{"verdict": true}"#).error.is_some());
        assert!(verdict(Phase::Before, 200, b"<html>").error.is_some());
        assert!(verdict(Phase::Before, 200, br#"{"verdict": "yes"}"#).error.is_some());
        let run = verdict(
            Phase::After,
            200,
            br#"{"verdict": true, "transformedData": {"response": {"json": {"choices": []}}}}"#,
        );
        assert_eq!(run.rewrite, Some(Rewrite::Texts(json!({"choices": []}))));
    }
}
