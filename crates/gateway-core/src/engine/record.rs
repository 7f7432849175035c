//! One record per request, for whoever watches the gateway: the request log, metrics,
//! traces, a binding's callback. Made by the engine when the answer is complete — for a
//! stream, when it ends, breaks, or the caller goes away — and only when someone watches.
//!
//! The record's field names are a contract (log shippers and dashboards read them):
//! `trace_id`, `key`, `metadata`, `provider`, `model`, `option_index`, `status`,
//! `error_code`, `retries`, `cache_status`, `latency_ms`, `upstream_latency_ms`, `ttft_ms`,
//! `usage`, `cost_usd`, `attempts`, and when they apply `limit` (the rate limit or budget
//! that refused the request), `skipped` (targets passed over for an open circuit) and
//! `prompt_id` / `prompt_version` (the registry prompt the request was rendered from) and
//! `hooks` (each guardrail hook's id, verdict, deny and the checks that failed or erred,
//! per phase). It never holds a credential: no headers, and error
//! messages are the gateway's (an upstream's, with the request's credentials cut out).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use serde::Serialize;
use serde::ser::SerializeStruct;
use serde_json::Value;

use super::route_info::{Attempt, RouteInfo};
use super::stream::ChunkStream;
use crate::error::{ErrorCode, GatewayError};
use crate::json;
use crate::usage::Usage;

/// Receives a record for every request. Called on the task that finished the request, so
/// an implementation must not block: queue the record and return.
pub trait RequestObserver: Send + Sync + std::fmt::Debug {
    /// A request has finished.
    fn record(&self, record: &RequestRecord);

    /// Whether records should carry request and response bodies (`--log-bodies`).
    fn wants_bodies(&self) -> bool {
        false
    }
}

/// Several observers as one.
#[derive(Debug, Default)]
pub struct Observers(pub Vec<Arc<dyn RequestObserver>>);

impl RequestObserver for Observers {
    fn record(&self, record: &RequestRecord) {
        for observer in &self.0 {
            observer.record(record);
        }
    }

    fn wants_bodies(&self) -> bool {
        self.0.iter().any(|o| o.wants_bodies())
    }
}

/// What happened to one request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// When the request reached the engine.
    pub started: SystemTime,
    /// The request's path (`/v1/chat/completions`).
    pub endpoint: String,
    /// Whether the caller asked for a stream.
    pub stream: bool,
    /// The gateway key's name, when the request brought one.
    pub key: Option<String>,
    /// The request's place in a trace, when it has one.
    pub trace_context: Option<super::TraceContext>,
    /// The request's metadata.
    pub metadata: Arc<Value>,
    /// The status sent to the caller.
    pub status: u16,
    /// The error, when the request failed (for a stream: broke after it began).
    pub error: Option<(ErrorCode, String)>,
    /// The caller went away before the stream ended.
    pub cancelled: bool,
    /// The whole time, from the request reaching the engine to the last byte of the answer.
    pub latency: Duration,
    /// How it was routed, with usage and cost.
    pub route: RouteInfo,
    /// The request body, when bodies are logged (text, or its size for binary bodies).
    pub request_body: Option<Bytes>,
    /// The answer body, when bodies are logged and the answer was not streamed.
    pub response_body: Option<Bytes>,
}

fn ms(d: Duration) -> f64 {
    // Microsecond resolution is plenty and keeps the numbers short.
    (d.as_micros() as f64) / 1000.0
}

struct Attempts<'a>(&'a [Attempt]);

impl Serialize for Attempts<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(AttemptRecord))
    }
}

/// One attempt as the record shows it.
struct AttemptRecord<'a>(&'a Attempt);

impl Serialize for AttemptRecord<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut s = serializer.serialize_struct("Attempt", 5)?;
        s.serialize_field("option_index", &a.option_index)?;
        s.serialize_field("provider", &a.provider)?;
        s.serialize_field("status", &a.status)?;
        s.serialize_field("error_code", &a.error.map(ErrorCode::as_str))?;
        s.serialize_field("latency_ms", &ms(a.duration))?;
        s.end()
    }
}

struct SkippedTargets<'a>(&'a [super::route_info::Skipped]);

impl Serialize for SkippedTargets<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(
            |s| serde_json::json!({"option_index": s.option_index, "provider": s.provider, "reason": "circuit_open"}),
        ))
    }
}

/// Hook results as the log shows them: per hook, what failed and what erred.
struct HookSummary<'a>(&'a crate::hooks::HookReport);

impl Serialize for HookSummary<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let phase = |results: &[crate::hooks::HookResult]| -> Vec<Value> {
            results
                .iter()
                .map(|h| {
                    let ids = |f: &dyn Fn(&crate::hooks::CheckResult) -> bool| -> Vec<&str> {
                        h.checks.iter().filter(|c| f(c)).map(|c| c.id.as_str()).collect()
                    };
                    serde_json::json!({
                        "id": h.id,
                        "verdict": h.verdict,
                        "deny": h.deny,
                        "failed_checks": ids(&|c| !c.verdict && c.error.is_none()),
                        "errored_checks": ids(&|c| c.error.is_some()),
                        "transformed": h.transformed,
                        "execution_time_ms": h.execution_time,
                    })
                })
                .collect()
        };
        let mut s = serializer.serialize_struct("Hooks", 2)?;
        s.serialize_field("before_request_hooks", &phase(&self.0.before_request_hooks))?;
        s.serialize_field("after_request_hooks", &phase(&self.0.after_request_hooks))?;
        s.end()
    }
}

/// Bytes as text when they are UTF-8, else as a note of their size.
struct Body<'a>(&'a Bytes);

impl Serialize for Body<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.serialize_str(&format!("<{} bytes of binary>", self.0.len())),
        }
    }
}

impl Serialize for RequestRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let route = &self.route;
        let mut s = serializer.serialize_struct("RequestRecord", 24)?;
        s.serialize_field("time", Rfc3339::new(self.started).as_str())?;
        s.serialize_field("trace_id", &route.trace_id)?;
        s.serialize_field("key", &self.key)?;
        s.serialize_field("metadata", &*self.metadata)?;
        s.serialize_field("endpoint", &self.endpoint)?;
        s.serialize_field("stream", &self.stream)?;
        s.serialize_field("provider", &route.provider)?;
        s.serialize_field("model", &route.model)?;
        s.serialize_field("option_index", &route.option_index)?;
        s.serialize_field("status", &self.status)?;
        s.serialize_field("error_code", &self.error.as_ref().map(|(code, _)| code.as_str()))?;
        s.serialize_field("error_message", &self.error.as_ref().map(|(_, message)| message))?;
        s.serialize_field("cancelled", &self.cancelled)?;
        s.serialize_field("retries", &route.retry_count)?;
        s.serialize_field("cache_status", route.cache_status.as_str())?;
        s.serialize_field("latency_ms", &ms(self.latency))?;
        s.serialize_field("upstream_latency_ms", &route.upstream_latency().map(ms))?;
        s.serialize_field("ttft_ms", &route.ttft.map(ms))?;
        s.serialize_field("usage", &route.usage)?;
        s.serialize_field("cost_usd", &route.cost)?;
        if !route.dropped_params.is_empty() {
            s.serialize_field("dropped_params", &route.dropped_params)?;
        }
        if let Some(limit) = &route.limit {
            s.serialize_field("limit", limit)?;
        }
        if let Some(prompt) = &route.prompt {
            s.serialize_field("prompt_id", &prompt.id)?;
            s.serialize_field("prompt_version", &prompt.version)?;
        }
        if !route.skipped.is_empty() {
            s.serialize_field("skipped", &SkippedTargets(&route.skipped))?;
        }
        if let Some(hooks) = route.hooks.as_ref().filter(|h| !h.is_empty()) {
            s.serialize_field("hooks", &HookSummary(hooks))?;
        }
        s.serialize_field("attempts", &Attempts(&route.attempts))?;
        if let Some(body) = &self.request_body {
            s.serialize_field("request_body", &Body(body))?;
        }
        if let Some(body) = &self.response_body {
            s.serialize_field("response_body", &Body(body))?;
        }
        s.end()
    }
}

impl RequestRecord {
    /// The record as one line of JSON.
    pub fn to_json_line(&self) -> String {
        let mut out = Vec::with_capacity(640);
        self.write_json_line(&mut out);
        // Everything written is UTF-8 (text fields are `str`, bodies that are not UTF-8 are
        // described, not copied).
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends the record as one line of JSON (no newline): exactly what its `Serialize`
    /// gives `serde_json`, which a test holds it to, written field by field. serde_json
    /// escapes every key byte by byte, and keys are most of a record's bytes: a logged
    /// request's line cost ~8k instructions that way.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        let route = &self.route;
        out.extend_from_slice(b"{\"time\":");
        json::write_str(out, Rfc3339::new(self.started).as_str());
        out.extend_from_slice(b",\"trace_id\":");
        json::write_opt_str(out, route.trace_id.as_deref());
        out.extend_from_slice(b",\"key\":");
        json::write_opt_str(out, self.key.as_deref());
        out.extend_from_slice(b",\"metadata\":");
        json::write(out, &*self.metadata);
        out.extend_from_slice(b",\"endpoint\":");
        json::write_str(out, &self.endpoint);
        out.extend_from_slice(if self.stream { b",\"stream\":true" } else { b",\"stream\":false" });
        out.extend_from_slice(b",\"provider\":");
        json::write_opt_str(out, route.provider.as_deref());
        out.extend_from_slice(b",\"model\":");
        json::write_opt_str(out, route.model.as_deref());
        out.extend_from_slice(b",\"option_index\":");
        json::write_opt_str(out, route.option_index.as_deref());
        out.extend_from_slice(b",\"status\":");
        json::write(out, &self.status);
        out.extend_from_slice(b",\"error_code\":");
        json::write_opt_str(out, self.error.as_ref().map(|(code, _)| code.as_str()));
        out.extend_from_slice(b",\"error_message\":");
        json::write_opt_str(out, self.error.as_ref().map(|(_, message)| message.as_str()));
        out.extend_from_slice(if self.cancelled { b",\"cancelled\":true" } else { b",\"cancelled\":false" });
        out.extend_from_slice(b",\"retries\":");
        json::write(out, &route.retry_count);
        out.extend_from_slice(b",\"cache_status\":");
        json::write_str(out, route.cache_status.as_str());
        out.extend_from_slice(b",\"latency_ms\":");
        json::write(out, &ms(self.latency));
        out.extend_from_slice(b",\"upstream_latency_ms\":");
        json::write(out, &route.upstream_latency().map(ms));
        out.extend_from_slice(b",\"ttft_ms\":");
        json::write(out, &route.ttft.map(ms));
        out.extend_from_slice(b",\"usage\":");
        match &route.usage {
            Some(usage) => write_usage(out, usage),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"cost_usd\":");
        json::write(out, &route.cost);
        if !route.dropped_params.is_empty() {
            out.extend_from_slice(b",\"dropped_params\":");
            json::write(out, &route.dropped_params);
        }
        if let Some(limit) = &route.limit {
            out.extend_from_slice(b",\"limit\":");
            json::write_str(out, limit);
        }
        if let Some(prompt) = &route.prompt {
            out.extend_from_slice(b",\"prompt_id\":");
            json::write_str(out, &prompt.id);
            out.extend_from_slice(b",\"prompt_version\":");
            json::write_opt_str(out, prompt.version.as_deref());
        }
        if !route.skipped.is_empty() {
            out.extend_from_slice(b",\"skipped\":");
            json::write(out, &SkippedTargets(&route.skipped));
        }
        if let Some(hooks) = route.hooks.as_ref().filter(|h| !h.is_empty()) {
            out.extend_from_slice(b",\"hooks\":");
            json::write(out, &HookSummary(hooks));
        }
        out.extend_from_slice(b",\"attempts\":[");
        for (i, a) in route.attempts.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"{\"option_index\":" } else { b",{\"option_index\":" });
            json::write_str(out, &a.option_index);
            out.extend_from_slice(b",\"provider\":");
            json::write_str(out, &a.provider);
            out.extend_from_slice(b",\"status\":");
            json::write(out, &a.status);
            out.extend_from_slice(b",\"error_code\":");
            json::write_opt_str(out, a.error.map(ErrorCode::as_str));
            out.extend_from_slice(b",\"latency_ms\":");
            json::write(out, &ms(a.duration));
            out.push(b'}');
        }
        out.push(b']');
        if let Some(body) = &self.request_body {
            out.extend_from_slice(b",\"request_body\":");
            json::write(out, &Body(body));
        }
        if let Some(body) = &self.response_body {
            out.extend_from_slice(b",\"response_body\":");
            json::write(out, &Body(body));
        }
        out.push(b'}');
    }

    /// A record for a request refused before routing (a bad header, a wrong key).
    pub fn refused(error: &GatewayError, trace_id: Option<String>, endpoint: &str) -> Self {
        Self {
            started: SystemTime::now(),
            endpoint: endpoint.to_owned(),
            stream: false,
            key: None,
            trace_context: None,
            metadata: Arc::new(Value::Object(serde_json::Map::new())),
            status: error.status,
            error: Some((error.code, error.message.clone())),
            cancelled: false,
            latency: Duration::ZERO,
            route: RouteInfo { trace_id, ..RouteInfo::default() },
            request_body: None,
            response_body: None,
        }
    }
}

/// `usage` as its derived `Serialize` writes it, keys as literals (the record's test holds
/// the two to the same bytes).
fn write_usage(out: &mut Vec<u8>, usage: &Usage) {
    let fields: [(&[u8], u64); 6] = [
        (b"{\"input_tokens\":", usage.input_tokens),
        (b",\"output_tokens\":", usage.output_tokens),
        (b",\"total_tokens\":", usage.total_tokens),
        (b",\"cached_input_tokens\":", usage.cached_input_tokens),
        (b",\"reasoning_tokens\":", usage.reasoning_tokens),
        (b",\"cache_write_input_tokens\":", usage.cache_write_input_tokens),
    ];
    for (key, tokens) in fields {
        out.extend_from_slice(key);
        json::write(out, &tokens);
    }
    out.push(b'}');
}

/// `time` as RFC 3339 in UTC with milliseconds (`2026-12-01T04:51:05.123Z`).
pub fn rfc3339(time: SystemTime) -> String {
    let text = Rfc3339::new(time);
    text.as_str().to_owned()
}

/// RFC 3339 text made without the formatting machinery: it is written once per logged
/// request, where `format!` cost more than the rest of the timestamp's share.
struct Rfc3339([u8; 24]);

impl Rfc3339 {
    fn new(time: SystemTime) -> Self {
        let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = crate::state::civil_from_days(days as i64);
        let year = year.clamp(0, 9999) as u64;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month as u64);
        put(8, 2, day as u64);
        put(11, 2, rest / 3600);
        put(14, 2, rest % 3600 / 60);
        put(17, 2, rest % 60);
        put(20, 3, u64::from(since.subsec_millis()));
        Self(out)
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or("1970-01-01T00:00:00.000Z")
    }
}

/// A stream that hands its record to `observer` when it ends, breaks or is dropped.
pub(crate) struct Reported {
    pub events: ChunkStream,
    pub record: Option<RequestRecord>,
    pub observer: Arc<dyn RequestObserver>,
    /// The engine's clock, and its reading at the start of the request.
    pub clock: Arc<dyn super::Transport>,
    pub started: std::time::Instant,
}

impl Reported {
    fn finish(&mut self, error: Option<&GatewayError>, cancelled: bool) {
        let Some(mut record) = self.record.take() else { return };
        record.latency = self.clock.now().saturating_duration_since(self.started);
        record.route = record.route.settled();
        record.error = error.map(|e| (e.code, e.message.clone()));
        record.cancelled = cancelled;
        self.observer.record(&record);
    }
}

impl Stream for Reported {
    type Item = Result<Bytes, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = self.events.as_mut().poll_next(cx);
        match &item {
            Poll::Ready(Some(Err(e))) => self.finish(Some(e), false),
            Poll::Ready(None) => self.finish(None, false),
            _ => {}
        }
        item
    }
}

impl Drop for Reported {
    fn drop(&mut self) {
        self.finish(None, true);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::route_info::{CacheStatus, Skipped};
    use crate::hooks::{CheckResult, HookReport, HookResult};
    use crate::prompts::PromptRef;

    fn attempt(error: Option<ErrorCode>) -> Attempt {
        Attempt {
            option_index: "config.targets[0]".into(),
            provider: "open\"ai".into(),
            status: 502,
            error,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_micros(1234),
        }
    }

    #[test]
    fn the_json_line_is_what_serialize_gives_serde_json() {
        let check = CheckResult {
            id: "pii".into(),
            verdict: false,
            data: Value::Null,
            error: None,
            execution_time: 3,
            transformed: false,
            created_at: "t".into(),
            log: Value::Null,
            fail_on_error: false,
        };
        let hook = HookResult {
            verdict: false,
            id: "guard".into(),
            transformed: true,
            checks: vec![check],
            feedback: None,
            execution_time: 4,
            is_async: false,
            kind: "guardrail",
            created_at: "t".into(),
            deny: true,
        };
        let full = RequestRecord {
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_100_665_123),
            endpoint: "/v1/chat/completions".into(),
            stream: true,
            key: Some("team-\u{e9}".into()),
            trace_context: None,
            metadata: Arc::new(serde_json::json!({"user": "a\nb", "n": [1, 2.5, null]})),
            status: 429,
            error: Some((ErrorCode::RateLimited, "too \"many\" \\ requests\t".into())),
            cancelled: true,
            latency: Duration::from_nanos(12_345_678),
            route: RouteInfo {
                option_index: Some("config.targets[1]".into()),
                provider: Some("anthropic".into()),
                retry_count: -1,
                cache_status: CacheStatus::Hit,
                attempts: vec![attempt(Some(ErrorCode::UpstreamError)), attempt(None)],
                trace_id: Some("gw-\u{1}".into()),
                dropped_params: vec!["logit_bias".into()],
                model: Some("claude-\u{2603}".into()),
                usage: Some(Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                    total_tokens: 15,
                    cached_input_tokens: 1,
                    reasoning_tokens: 2,
                    cache_write_input_tokens: 3,
                }),
                cost: Some(4.2000000000000004e-6),
                ttft: Some(Duration::from_micros(777)),
                skipped: vec![Skipped { option_index: "config.targets[2]".into(), provider: "groq".into() }],
                limit: Some("key team-a: requests_per_minute".into()),
                prompt: Some(Arc::new(PromptRef { id: "welcome".into(), version: Some("v2".into()) })),
                hooks: Some(HookReport { before_request_hooks: vec![hook.clone()], after_request_hooks: vec![hook] }),
                ..RouteInfo::default()
            },
            request_body: Some(Bytes::from_static(b"{\"model\":\"m\"}")),
            response_body: Some(Bytes::from_static(b"\xff\xfe")),
        };
        let bare = RequestRecord::refused(&GatewayError::new(ErrorCode::InvalidRequest, "bad"), None, "/v1/x");
        let no_version = RequestRecord {
            route: RouteInfo {
                prompt: Some(Arc::new(PromptRef { id: "p".into(), version: None })),
                attempts: vec![attempt(None)],
                ..RouteInfo::default()
            },
            ..RequestRecord::refused(&GatewayError::new(ErrorCode::InvalidRequest, "bad"), Some("t".into()), "/")
        };
        for record in [full, bare, no_version] {
            assert_eq!(record.to_json_line(), serde_json::to_string(&record).unwrap());
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_100_665_123);
        assert_eq!(rfc3339(t), "2026-12-01T04:51:05.123Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
