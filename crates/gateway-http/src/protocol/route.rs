//! Route info as JSON: the one shape both bindings expose (`r.route`) and error fields carry.
//!
//! Declared once as a serializable view of [`RouteInfo`], so the bindings can write the
//! text straight from the route (no `serde_json::Value` map built and dropped: that took
//! a fifth of an in-process call's instructions) and errors can embed it as a value.

use gateway_core::engine::{Attempt, RouteInfo, Skipped};
use gateway_core::hooks::HookReport;
use gateway_core::usage::Usage;
use serde::Serialize;
use serde_json::Value;

/// Route info as a JSON value (for error fields, which embed it).
pub fn route_json(route: &RouteInfo) -> Value {
    let route = route.settled();
    serde_json::to_value(RouteJson::of(&route)).unwrap_or(Value::Null)
}

/// Route info as JSON text (what the bindings hand over, when a caller reads `route`).
pub fn route_json_text(route: &RouteInfo) -> String {
    let route = route.settled();
    serde_json::to_string(&RouteJson::of(&route)).unwrap_or_else(|_| "null".to_owned())
}

/// The JSON shape, in its field order. A stream's usage and cost are known once it has
/// ended: the caller passes the route [`RouteInfo::settled`].
#[derive(Serialize)]
struct RouteJson<'a> {
    provider: &'a Option<String>,
    model: &'a Option<String>,
    option_index: &'a Option<String>,
    retry_count: i32,
    cache_status: &'static str,
    trace_id: &'a Option<String>,
    dropped_params: &'a [String],
    usage: &'a Option<Usage>,
    cost: Option<f64>,
    ttft_ms: Option<f64>,
    skipped: Vec<SkippedJson<'a>>,
    limit: &'a Option<String>,
    prompt: Option<PromptJson<'a>>,
    hook_results: Option<&'a HookReport>,
    attempts: Vec<AttemptJson<'a>>,
}

#[derive(Serialize)]
struct SkippedJson<'a> {
    option_index: &'a str,
    provider: &'a str,
}

#[derive(Serialize)]
struct PromptJson<'a> {
    id: &'a str,
    version: &'a Option<String>,
}

#[derive(Serialize)]
struct AttemptJson<'a> {
    option_index: &'a str,
    provider: &'a str,
    status: u16,
    error: Option<&'static str>,
    duration_ms: f64,
}

impl<'a> RouteJson<'a> {
    fn of(route: &'a RouteInfo) -> Self {
        Self {
            provider: &route.provider,
            model: &route.model,
            option_index: &route.option_index,
            retry_count: route.retry_count,
            cache_status: route.cache_status.as_str(),
            trace_id: &route.trace_id,
            dropped_params: &route.dropped_params,
            usage: &route.usage,
            cost: route.cost,
            ttft_ms: route.ttft.map(|t| t.as_secs_f64() * 1000.0),
            skipped: route.skipped.iter().map(SkippedJson::of).collect(),
            limit: &route.limit,
            prompt: route.prompt.as_ref().map(|p| PromptJson { id: &p.id, version: &p.version }),
            hook_results: route.hooks.as_ref(),
            attempts: route.attempts.iter().map(AttemptJson::of).collect(),
        }
    }
}

impl<'a> SkippedJson<'a> {
    fn of(skipped: &'a Skipped) -> Self {
        Self { option_index: &skipped.option_index, provider: &skipped.provider }
    }
}

impl<'a> AttemptJson<'a> {
    fn of(attempt: &'a Attempt) -> Self {
        Self {
            option_index: &attempt.option_index,
            provider: &attempt.provider,
            status: attempt.status,
            error: attempt.error.map(|c| c.as_str()),
            duration_ms: attempt.duration.as_secs_f64() * 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, SystemTime};

    use gateway_core::ErrorCode;
    use gateway_core::engine::CacheStatus;

    use super::*;

    fn route() -> RouteInfo {
        RouteInfo {
            option_index: Some("1".into()),
            provider: Some("anthropic".into()),
            retry_count: 2,
            cache_status: CacheStatus::Miss,
            attempts: vec![
                Attempt {
                    option_index: "0".into(),
                    provider: "openai".into(),
                    status: 503,
                    error: Some(ErrorCode::UpstreamError),
                    started: SystemTime::UNIX_EPOCH,
                    duration: Duration::from_micros(1500),
                },
                Attempt {
                    option_index: "1".into(),
                    provider: "anthropic".into(),
                    status: 200,
                    error: None,
                    started: SystemTime::UNIX_EPOCH,
                    duration: Duration::from_millis(20),
                },
            ],
            trace_id: Some("trace-1".into()),
            dropped_params: vec!["logit_bias".into()],
            model: Some("claude".into()),
            usage: Some(Usage { input_tokens: 3, output_tokens: 4, total_tokens: 7, ..Usage::default() }),
            cost: Some(0.25),
            ttft: Some(Duration::from_millis(5)),
            skipped: vec![Skipped { option_index: "2".into(), provider: "gemini".into() }],
            limit: None,
            ..RouteInfo::default()
        }
    }

    #[test]
    fn the_text_and_the_value_are_the_same_json_in_the_documented_order() {
        let route = route();
        let text = route_json_text(&route);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, route_json(&route));
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "provider",
                "model",
                "option_index",
                "retry_count",
                "cache_status",
                "trace_id",
                "dropped_params",
                "usage",
                "cost",
                "ttft_ms",
                "skipped",
                "limit",
                "prompt",
                "hook_results",
                "attempts"
            ]
        );
        assert_eq!(value["attempts"][0]["error"], ErrorCode::UpstreamError.as_str());
        assert_eq!(value["attempts"][0]["duration_ms"], 1.5);
        assert_eq!(value["skipped"][0]["provider"], "gemini");
        assert_eq!(value["usage"]["total_tokens"], 7);
        assert_eq!(value["ttft_ms"], 5.0);
        assert_eq!(value["prompt"], Value::Null);
    }
}
